"""The built-in models build, run a forward pass and are named as advertised; load_model resolves SPECs."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest
import torch
from torch import nn

from paramwise.models import MODELS, ModelSpecError, load_model


@pytest.mark.parametrize("name", ["tiny_convnet", "tiny_vit", "tiny_mlp"])
def test_builtin_model_builds_and_runs_forward(name: str) -> None:
    model = MODELS.get(name)()
    assert isinstance(model, nn.Module)
    out = model(torch.randn(4, *model.input_shape))
    assert out.shape == (4, model.num_classes)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_builtin_models_have_the_layers_configs_target() -> None:
    convnet = load_model("tiny_convnet")
    names = [n for n, _ in convnet.named_parameters()]
    assert {n.split(".")[0] for n in names} == {"backbone", "neck", "head"}
    assert any(isinstance(m, nn.BatchNorm2d) for m in convnet.modules())
    assert any(isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1 for m in convnet.modules())

    vit = load_model("tiny_vit")
    names = [n for n, _ in vit.named_parameters()]
    assert {"cls_token", "pos_embed", "head.weight", "blocks.0.attn.qkv.weight", "blocks.0.norm1.weight"} <= set(names)
    assert any(isinstance(m, nn.LayerNorm) for m in vit.modules())


def test_model_args_reach_the_factory() -> None:
    model = load_model("tiny_mlp", {"num_classes": 3, "hidden": 8})
    assert model(torch.randn(2, 32)).shape == (2, 3)
    with pytest.raises(ModelSpecError, match="with arguments .*'hiden'"):
        load_model("tiny_mlp", {"hiden": 8})


def test_unknown_builtin_name_suggests_the_close_one() -> None:
    with pytest.raises(ModelSpecError, match="Did you mean 'tiny_convnet'") as info:
        load_model("tiny_convnt")
    assert info.value.spec == "tiny_convnt"
    assert isinstance(info.value, ValueError)


def test_import_path_spec(tmp_path, monkeypatch) -> None:
    (tmp_path / "pw_user_models.py").write_text(textwrap.dedent("""
        from torch import nn

        def build(width=4):
            return nn.Linear(width, 2)

        def not_a_model():
            return 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pw_user_models", raising=False)
    assert load_model("pw_user_models:build", {"width": 5}).in_features == 5
    assert isinstance(load_model("pw_user_models.build"), nn.Linear)  # the dotted form works too
    with pytest.raises(ModelSpecError, match="Did you mean 'build'"):
        load_model("pw_user_models:biuld")
    with pytest.raises(ModelSpecError, match="not a torch.nn.Module"):
        load_model("pw_user_models:not_a_model")
    with pytest.raises(ModelSpecError, match="no module named 'no_such_pkg'"):
        load_model("no_such_pkg.models:build")


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_spec_without_timm_says_how_to_install() -> None:
    with pytest.raises(ModelSpecError, match="pip install timm"):
        load_model("timm:resnet18")


@pytest.mark.parametrize("tied", [False, True])
def test_tiny_gpt_is_a_causal_language_model(tied: bool) -> None:
    model = load_model("tiny_gpt", {"tied": tied})
    tokens = torch.randint(0, model.num_classes, (3, *model.input_shape))
    logits = model(tokens)
    assert logits.shape == (3, model.input_shape[0], model.num_classes)
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % model.num_classes
    assert torch.equal(model(changed)[:, :-1], logits[:, :-1])  # causal: a later token changes no earlier logit
    assert model.get_input_embeddings() is model.embed_tokens
    assert (model.get_output_embeddings().weight is model.embed_tokens.weight) is tied
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())

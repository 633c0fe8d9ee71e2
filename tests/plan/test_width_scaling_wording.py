"""The width-scaling readout warning reads as a sentence for one weight and for several."""

from __future__ import annotations

import warnings

import mup
import pytest
from torch import nn

import paramwise


class TwoHeads(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.fc = nn.Linear(12, width)
        self.hidden = nn.Linear(width, width)
        self.heads = nn.ModuleList([nn.Linear(width, 5) for _ in range(heads)])


def readout_warning(heads: int) -> str:
    base = {k: list(v) for k, v in mup.get_shapes(TwoHeads(16, heads)).items()}
    cfg = dict(type="AdamW", lr=1e-3, weight_decay=0.01, paramwise_cfg=dict(width_scaling=dict(base_shapes=base)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paramwise.plan_params(TwoHeads(64, heads), cfg)
    [message] = [str(w.message) for w in caught if "fixed size" in str(w.message)]
    return message


def test_one_readout_is_singular() -> None:
    message = readout_warning(1)
    assert message.startswith("width_scaling: 'heads.0.weight' maps a width to a fixed size (a readout) in a "
                              "plain nn.Linear. ")
    assert "name it in width_scaling['readout']" in message and "initialise it to zero" in message
    assert " them " not in message


@pytest.mark.parametrize("heads", [2, 3])
def test_several_readouts_are_plural(heads: int) -> None:
    message = readout_warning(heads)
    names = ", ".join(repr(f"heads.{i}.weight") for i in range(heads))
    assert message.startswith(f"width_scaling: {heads} weights ({names}) map a width to a fixed size (readouts) "
                              "in plain nn.Linear layers. ")
    assert "name them in width_scaling['readout']" in message and "initialise them to zero" in message

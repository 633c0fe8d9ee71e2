"""The demo's hybrid part: routes with reasons, training that learns, resume by name into both layouts."""

from __future__ import annotations

import re

import pytest

from paramwise.cli import main
from paramwise.demo.hybrid import run_hybrid_demo


def test_the_hybrid_part_routes_trains_and_resumes() -> None:
    result = run_hybrid_demo(steps=30, seed=1)
    routes = "\n".join(result.routes)
    assert "route 'Muon' -> Muon: 12 parameters, 24,576 elements: hidden matrix (12)" in routes
    assert "embedding (nn.Embedding) (2)" in routes and "get_output_embeddings()" in routes
    start, end = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", result.training).groups())  # type: ignore[union-attr]
    assert end < start - 0.5
    assert "20 parameters got their state back, bit for bit" in result.resumes[0]
    assert "12 parameters moved from Muon and start fresh in AdamW; 8 others got their state back" in result.resumes[1]


@pytest.mark.slow
def test_the_default_demo_runs_it_and_a_given_config_does_not(capsys: pytest.CaptureFixture[str]) -> None:
    from paramwise.demo.run import DEFAULT_CONFIG

    assert main(["demo", "--steps", "4"]) == 0
    assert "hybrid: hybrid.py, Muon for the hidden matrices" in capsys.readouterr().out
    assert main(["demo", "--steps", "4", "--no-hybrid"]) == 0
    assert "hybrid:" not in capsys.readouterr().out
    assert main(["demo", "--steps", "4", "--config", str(DEFAULT_CONFIG)]) == 0
    assert "hybrid:" not in capsys.readouterr().out

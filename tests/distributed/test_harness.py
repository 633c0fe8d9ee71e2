"""The harness itself: every rank runs, results come back by rank, a rank's error fails the test with its traceback."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from distributed.harness import run_ranks


def _all_reduce(rank: int, world_size: int, base: float) -> float:
    t = torch.tensor([base + rank])
    dist.all_reduce(t)
    return float(t)


def _fails_on_one(rank: int, world_size: int) -> int:
    if rank == 1:
        raise ValueError("rank one refuses")
    return rank


def test_results_come_back_by_rank() -> None:
    assert run_ranks(_all_reduce, 2, 10.0) == [21.0, 21.0]


def test_a_rank_error_is_reported() -> None:
    with pytest.raises(AssertionError, match="rank 1: ValueError: rank one refuses"):
        run_ranks(_fails_on_one, 2)


def _transport_failure_once(rank: int, world_size: int, flag: str) -> int:
    import os

    if not os.path.exists(flag):
        dist.barrier()
        if rank == 0:
            open(flag, "w").close()
        raise RuntimeError("[gloo] Gloo connectFullMesh failed with Connection closed by peer")
    return rank


def test_a_transport_failure_is_run_again_once(tmp_path: object) -> None:
    import os

    flag = os.path.join(str(tmp_path), "failed-once")
    assert run_ranks(_transport_failure_once, 2, flag) == [0, 1]

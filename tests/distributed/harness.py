"""Run a function on N gloo processes (CPU) and collect what each rank returns: the distributed tests' one harness.

``run_ranks(fn, world_size, *args)`` starts ``world_size`` processes with ``torch.multiprocessing``
(spawn), each with a gloo process group over a file store in a fresh temporary folder, calls
``fn(rank, world_size, *args)`` and returns the list of results by rank (they must pickle). A rank
that raises fails the call with every failing rank's traceback; a run past ``timeout`` seconds is killed.
``fn`` must be importable by name (a module-level function in a test module or here).
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["run_ranks"]


def _entry(rank: int, world_size: int, store: str, out: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
        result: Any = ("ok", fn(rank, world_size, *args))
    except BaseException as e:  # sent back whole to the test process
        result = ("error", f"rank {rank}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        try:
            dist.destroy_process_group()
        except Exception:  # a broken group after an error: the error above is what matters
            pass
    Path(out, f"{rank}.pkl").write_bytes(pickle.dumps(result))
    # The result is written: leave without the interpreter's teardown, where a C++ thread still joinable
    # (gloo's, DTensor's) aborts the process ("terminate called without an active exception").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


#: gloo's transport failures on a loaded machine (a peer's socket closed while connecting): not the test's
_TRANSPORT = ("connectFullMesh", "Connection closed by peer", "Connection reset by peer", "Socket Timeout")


def run_ranks(fn: Callable[..., Any], world_size: int, *args: Any, timeout: float = 120.0) -> list[Any]:
    """``fn(rank, world_size, *args)`` on ``world_size`` gloo processes; their results, by rank.

    A run whose every failing rank failed in gloo's transport (connecting on a loaded machine) is
    started once more; any other failure is the test's.
    """
    try:
        return _run_once(fn, world_size, args, timeout)
    except AssertionError as e:
        if not all(any(marker in part for marker in _TRANSPORT) for part in str(e).split("\nrank ")):
            raise
        return _run_once(fn, world_size, args, timeout)


def _run_once(fn: Callable[..., Any], world_size: int, args: tuple[Any, ...], timeout: float) -> list[Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "store")
        context = mp.start_processes(_entry, args=(world_size, store, folder, fn, args), nprocs=world_size,
                                     join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        while not context.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f"{world_size} ranks of {fn.__name__} ran past {timeout} s")
        outcomes = [pickle.loads(Path(folder, f"{rank}.pkl").read_bytes()) for rank in range(world_size)]
        errors = [value for status, value in outcomes if status != "ok"]
        if errors:  # every rank's: one rank's failure often breaks the others' collectives too
            raise AssertionError("\n".join(errors))
        return [value for _, value in outcomes]

"""What the benchmark scripts share: timing a client command, and timing several in turn.

A script puts bench/ on sys.path (as it does tests/) and imports `from benchlib import ...`."""

from __future__ import annotations

import subprocess
import time


def timed(argv: list[str], env: dict[str, str], timeout: float = 120) -> float:
    """Wall-clock seconds of one run of `argv` (its output captured); a failure raises with
    the end of what it printed."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return dt


def interleaved(cases: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, list[float]]:
    """Seconds of `runs` runs of each case (argv, env), taken in turn (A, B, ..., A, B, ...)
    so that load changes on the machine hit every case alike; first one uncounted run of
    each (page cache, byte-code)."""
    for argv, env in cases.values():
        timed(argv, env)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for k, (argv, env) in cases.items():
            times[k].append(timed(argv, env))
    return times

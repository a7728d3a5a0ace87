"""Helpers shared by the benchmark scripts in this directory.

``agent_speed.py`` and ``run.py`` import them; the scripts are run as
``python benchmarks/<script>.py``, which puts this directory on ``sys.path``.

- ``Run``: one timed execution of a case (wall time, customers, events).
- The naive reference model of ``shared/bench/naive_reference.py`` (a sibling of the
  repository, optional): ``load_naive`` and ``naive_journeys``, which reads SimPy's own
  scheduled-event count of the naive model's Environment.
- Peak memory of one run in the current process: ``measure_rss`` (VmHWM of
  /proc/self/status, reset through /proc/self/clear_refs just before the run; the
  ``getrusage`` fallback where /proc is missing).
- The machine: ``environment``, ``machine_busy_seconds``, ``load_average``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import simpy

MB = 1_000_000  # bytes; memory is reported in decimal megabytes
REPO = Path(__file__).resolve().parents[1]
NAIVE_DIR = REPO.parent / "shared" / "bench"
NAIVE_FILE = NAIVE_DIR / "naive_reference.py"


@dataclass
class Run:
    """One timed execution of a case."""

    seconds: float  # wall time, perf_counter
    n_customers: int | None  # customers simulated (None: the case has no customers)
    n_events: int  # SimPy scheduled events, next(env._eid), unless event_count says otherwise
    event_count: str = "scheduled"  # or "own": the model's own count of timeouts
    cpu_seconds: float | None = None  # CPU time of the same span, where measured


# ------------------------------------------------------------------- naive reference
def load_naive() -> ModuleType | None:
    """The naive reference module beside the repository, or None when it is not there."""
    if not NAIVE_FILE.is_file():
        return None
    spec = importlib.util.spec_from_file_location("naive_reference", NAIVE_FILE)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _SimpyWithRecordedEnvironments:
    """Stands in for the ``simpy`` module inside the naive module: same names, but it keeps
    every Environment it creates so that its scheduled-event count can be read afterwards."""

    def __init__(self) -> None:
        self.created: list[simpy.Environment] = []

    def Environment(self, *args: Any, **kwargs: Any) -> simpy.Environment:
        env = simpy.Environment(*args, **kwargs)
        self.created.append(env)
        return env

    def __getattr__(self, name: str) -> Any:
        return getattr(simpy, name)


@contextlib.contextmanager
def _recording_environments(module: ModuleType) -> Iterator[_SimpyWithRecordedEnvironments]:
    """Swap ``module.simpy`` for a recorder for the duration of the block."""
    recorder = _SimpyWithRecordedEnvironments()
    original = getattr(module, "simpy", None)
    module.simpy = recorder  # type: ignore[attr-defined]
    try:
        yield recorder
    finally:
        module.simpy = original  # type: ignore[attr-defined]


def naive_journeys(module: ModuleType, n_customers: int, replications: int = 1) -> Run:
    """``module.simpy_journeys(n_customers, seed)`` for seeds 1..replications, summed.

    The reference times only its ``env.run``. Events are the Environment's scheduled-event
    count; should the module stop creating it through ``simpy.Environment``, its own count
    of timeouts is used instead and ``Run.event_count`` says so.
    """
    seconds, n_events, event_count = 0.0, 0, "scheduled"
    for r in range(replications):
        with _recording_environments(module) as recorder:
            dt, stats = module.simpy_journeys(n_customers, seed=1 + r)
        seconds += dt
        if recorder.created:
            n_events += sum(next(env._eid) for env in recorder.created)
        else:
            event_count = "own"
            n_events += int(stats["events"])
    return Run(seconds, n_customers * replications, n_events, event_count)


# ----------------------------------------------------------------------------- memory
def proc_status_bytes(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux) in bytes, or None without /proc."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; Linux >= 4.0 only."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def ru_maxrss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """getrusage(who).ru_maxrss in bytes (it is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def measure_rss(run: Callable[[], Run]) -> tuple[int, int, int | None, str]:
    """Run ``run()`` once in this process: (RSS before, peak RSS, customers, method).

    The peak mark is reset just before the run, so the peak read after it belongs to the
    run. On Linux ``ru_maxrss`` cannot be used for that: it keeps the parent's resident
    size at fork time across ``exec`` (``VmHWM`` of /proc/self/status does not), so it is
    the fallback only where /proc is missing. Call it in a fresh process, so that no
    earlier run's heap is counted.
    """
    gc.collect()
    if reset_peak_rss() and (rss_before := proc_status_bytes("VmRSS")) is not None:
        n_customers = run().n_customers
        rss_peak = proc_status_bytes("VmHWM") or 0
        method = "VmHWM of /proc/self/status, reset via /proc/self/clear_refs before the run"
    else:
        rss_before = ru_maxrss_bytes()
        n_customers = run().n_customers
        rss_peak = ru_maxrss_bytes()
        method = "getrusage(RUSAGE_SELF).ru_maxrss (includes the parent's RSS at fork)"
    return rss_before, rss_peak, n_customers, method


# ---------------------------------------------------------------------------- machine
def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs have spent busy since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class BusyMeter:
    """How busy other work kept the machine over a span of this process's timing.

    Made before timing, ``note(env_info, notes)`` after it: records the CPUs kept
    busy by everything else (other processes, the hypervisor's steal) in
    ``env_info["other_cpus_busy_while_timing"]`` and, above a quarter of a CPU, says so in
    ``notes``.
    """

    def __init__(self) -> None:
        self.busy, self.cpu, self.wall = (machine_busy_seconds(), time.process_time(),
                                          time.perf_counter())

    def note(self, env_info: dict, notes: list[str]) -> None:
        busy, cpu, wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        if self.busy is None or busy is None:
            return
        others = max(0.0, (busy - self.busy) - (cpu - self.cpu)) / (wall - self.wall)
        env_info["other_cpus_busy_while_timing"] = round(others, 2)
        if others > 0.25:
            notes.append(f"other work kept {others:.2f} of {os.cpu_count()} CPUs busy while "
                         "timing: absolute rates are noisy, the interleaved ratios less so")


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return None


def cpu_model() -> str | None:
    """The CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def memory_total_bytes() -> int | None:
    """Physical memory (MemTotal of /proc/meminfo), or None without /proc."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the repository, or None without git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    """Interpreter, library versions and machine, for the record."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "simpy": simpy.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, spec)


def format_rows(head: tuple[str, ...], body: list[tuple[str, ...]], left: int = 1) -> str:
    """A plain-text table; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(c) for c in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths, strict=True)))
             for line in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

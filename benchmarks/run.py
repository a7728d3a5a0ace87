"""Scale benchmark: the fast engine against the agent engine and the naive model, 10k to 1M.

For every market size N of ``--sizes`` (default 10,000, 100,000 and 1,000,000) these cases
run, all in one invocation so that the ratios are measured on the same machine state:

``fast``
    The fast engine on the full baseline workload: ``compose_config(["market.size=N",
    "run.engine=fast"])``, ``build_spec``, then ``sim.engine.simulate(spec, spec.seed, 0)``.
    Timed: model construction (awareness thresholds, the per-customer arrays), the run
    (two-year horizon, life after the first purchase, the service desk) and building the
    result tables. Composing the config and building the spec are not timed.
``agent``
    The same with ``run.engine=agent`` (one SimPy process per aware customer). Skipped
    above ``--skip-agent-above N``; by default it runs at every size (about 30 s and 2 GB
    at 1,000,000).
``naive_simpy``
    ``simpy_journeys(N)`` of ``../shared/bench/naive_reference.py`` (beside the
    repository; skipped with a note when missing): one SimPy process per customer, a fixed
    four-step funnel and repeat purchases over one year, nothing recorded. As in the
    reference and in ``agent_speed.py`` only its ``env.run`` is timed (creating the N
    processes is not). This is "the naive model" of the fast/naive ratio.
``naive_numpy``
    ``numpy_journeys(N)`` of the same file: that naive journey vectorised with numpy, for
    information (the floor of vectorising a much simpler model); it times itself.

How things are counted
    customers: for the engines, customers who became aware, ``result.n_customers`` (as in
    ``agent_speed.py``; about 84 % of the market over the two-year baseline horizon); for
    the naive model, all N customers it starts. customers/s = customers / best time.

    events: what each model calls an event, so events/s compare badly across models
    (customers/s is the comparable rate):

    - agent: ``result.n_sim_events`` = SimPy's scheduled-event count ``next(env._eid)``:
      timeouts, interrupts, each process's start and end, desk requests.
    - fast: ``result.n_sim_events`` = ``next(env._eid)`` + ``FastModel.n_batched_events``:
      SimPy's scheduled events (one stop event per tick from ``env.run(until=...)`` and the
      desk's ticket timeouts, requests and releases) plus the customer events processed in
      vectorised batches, one per customer step: an arrival (awareness), a stage
      exit, a checkout, a cart recovery, a purchase, a renewal, the step after a ticket.
    - naive_simpy: SimPy's scheduled-event count of its Environment.
    - naive_numpy: its own count of journey steps.

Timing
    One untimed warm-up of every case at the smallest size (at most 10,000), then, size by
    size, ``--repeats`` interleaved rounds (default 3 below 1,000,000 customers and 1 from
    there on), each running every case once; the best wall time (``perf_counter``) of each
    case is kept. ``gc.collect()`` runs before every timed run, outside the timing.
    ``cpu s`` is the least CPU time (``time.process_time``) of this process over the same
    rounds and the same span (the naive reference's own ``perf_counter`` span is read
    through a stand-in ``time`` module). With other work on the machine it is the
    steadier number, so every ratio is printed by wall time (the targets) and by CPU time.

Memory
    Each (size, case) runs once more in a fresh ``spawn``ed child process: peak RSS is the
    peak resident set size of that whole child (interpreter and imports included), read
    from ``VmHWM`` in /proc/self/status after resetting it just before the run; RSS B/cust
    is (peak RSS - RSS before the run) / customers. That run's wall time is shown too
    (``child s``): a second timing, in a fresh process, of every case.

CLI check (``--cli``, on by default)
    ``python -m sim market.size=1000000 run.replications=1 run.engine=fast run.plots=false
    hydra.run.dir=<temporary directory>`` in a subprocess: wall time, exit status and peak
    RSS. The peak is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a small launcher
    process that only starts the CLI, so that the launcher's own size (not this process's
    gigabytes) is what the CLI inherits at fork time in ``ru_maxrss``.

Targets (PASS or FAIL; ``--check`` makes any FAIL the exit status 1)
    - fast customers/s >= 50 x agent customers/s, at the largest size both engines ran
      (the ratio is printed for every size);
    - fast time(1,000,000) / time(100,000) <= 12 (the largest pair of sizes 10x apart);
    - fast RSS bytes per customer <= 300 at 1,000,000 (the largest size run);
    - the 1,000,000-customer CLI run completes (exit status 0).

Run ``python benchmarks/run.py --help`` for the options; nothing is written unless
``--json PATH`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    MB,
    NAIVE_FILE,
    REPO,
    BusyMeter,
    Run,
    cpu_model,
    environment,
    fmt,
    format_rows,
    git_revision,
    load_average,
    load_naive,
    measure_rss,
    memory_total_bytes,
    naive_journeys,
)

from sim.engine import simulate
from sim.model.config import compose_config
from sim.model.spec import ModelSpec, build_spec

SIZES = (10_000, 100_000, 1_000_000)
CASES = ("fast", "agent", "naive_simpy", "naive_numpy")
TARGET_FAST_OVER_AGENT = 50.0  # customers/s ratio, at the largest size both engines ran
TARGET_SCALING = 12.0  # fast time(N) / time(N / 10)
TARGET_BYTES_PER_CUSTOMER = 300.0  # fast (peak RSS - RSS before) / customers, at 1M
CLI_SIZE = 1_000_000
EVENT_COUNTS = {
    "fast": "SimPy scheduled events + customer events processed in vectorised batches",
    "agent": "SimPy scheduled events, next(env._eid)",
    "naive_simpy": "SimPy scheduled events of its Environment",
    "naive_numpy": "its own count of journey steps",
}


# ----------------------------------------------------------------------------- cases
def engine_spec(engine: str, market_size: int) -> ModelSpec:
    """The full baseline spec, as the CLI composes it, at ``market_size`` on ``engine``."""
    return build_spec(compose_config([f"market.size={market_size}", f"run.engine={engine}"]))


def engine_run(spec: ModelSpec) -> Run:
    """One replication (0) of ``spec`` on its engine: construction, run and result tables."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = simulate(spec, spec.seed, 0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Run(seconds, result.n_customers, result.n_sim_events, spec.engine, cpu)


class _ClockRecorder:
    """Stands in for the ``time`` module inside the naive module: its ``perf_counter`` also
    notes this process's CPU time, so that the CPU seconds of the span the reference times
    for itself can be read afterwards."""

    def __init__(self) -> None:
        self.cpu: list[float] = []

    def perf_counter(self) -> float:
        self.cpu.append(time.process_time())
        return time.perf_counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def _cpu_clock(module: Any) -> Iterator[_ClockRecorder]:
    """Swap ``module.time`` for a ``_ClockRecorder`` for the duration of the block."""
    recorder, original = _ClockRecorder(), module.time
    module.time = recorder
    try:
        yield recorder
    finally:
        module.time = original


def naive_simpy(module: Any, n_customers: int) -> Run:
    """``naive_journeys`` of ``_common`` (SimPy's event count), plus the CPU time."""
    with _cpu_clock(module) as clock:
        run = naive_journeys(module, n_customers)
    run.cpu_seconds = clock.cpu[-1] - clock.cpu[0] if len(clock.cpu) >= 2 else None
    return run


def naive_numpy(module: Any, n_customers: int) -> Run:
    """``module.numpy_journeys(n, seed=1)``, timed by itself; events: its own count."""
    with _cpu_clock(module) as clock:
        seconds, stats = module.numpy_journeys(n_customers, seed=1)
    cpu = clock.cpu[-1] - clock.cpu[0] if len(clock.cpu) >= 2 else None
    return Run(seconds, n_customers, int(stats["events"]), "own", cpu)


def make_case(case: str, market_size: int, naive: Any = None) -> Callable[[], Run]:
    """A callable that runs ``case`` once at ``market_size``; the setup happens here."""
    if case in ("fast", "agent"):
        spec = engine_spec(case, market_size)
        return lambda: engine_run(spec)
    if naive is None:
        naive = load_naive()
        if naive is None:
            raise FileNotFoundError(NAIVE_FILE.name)
    if case == "naive_simpy":
        return lambda: naive_simpy(naive, market_size)
    if case == "naive_numpy":
        return lambda: naive_numpy(naive, market_size)
    raise ValueError(f"unknown case {case!r}")


def time_cases(cases: dict[str, Callable[[], Run]], repeats: int) -> dict[str, list[Run]]:
    """``repeats`` interleaved rounds, each running every case once; per case every run.
    Interleaving spreads a burst of outside load over all cases."""
    runs: dict[str, list[Run]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            gc.collect()
            runs[name].append(case())
    return runs


# ---------------------------------------------------------------------------- memory
@dataclass
class Memory:
    rss_before: int  # bytes resident before the run (interpreter, imports, inputs)
    rss_peak: int  # bytes: peak resident set size of the whole child during the run
    n_customers: int | None
    method: str
    seconds: float  # wall time of that run, a cross-check of the timing in a fresh process


def _memory_child(case: str, market_size: int) -> Memory:
    run, done = make_case(case, market_size), []

    def run_and_keep() -> Run:
        done.append(run())
        return done[-1]

    return Memory(*measure_rss(run_and_keep), seconds=done[-1].seconds)


def measure_memory(case: str, market_size: int) -> Memory:
    """One run of ``case`` in a fresh spawned process, so no earlier run's heap counts."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_memory_child, case, market_size).result()


# ------------------------------------------------------------------------------- CLI
_LAUNCHER = """\
import json, resource, subprocess, sys, time
log = open(sys.argv[1], "w")
t0 = time.perf_counter()
try:
    rc = subprocess.run(sys.argv[3:], stdout=log, stderr=subprocess.STDOUT,
                        timeout=float(sys.argv[2])).returncode
except subprocess.TimeoutExpired:
    rc = None
seconds = time.perf_counter() - t0
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"returncode": rc, "seconds": seconds,
                  "maxrss_bytes": maxrss if sys.platform == "darwin" else maxrss * 1024}))
"""


@dataclass
class CliResult:
    command: str
    returncode: int | None  # None: timed out
    seconds: float  # wall time of the CLI process, interpreter start-up included
    peak_rss_mb: float
    output_mb: float  # size of everything written into the run directory
    files: list[str] = field(default_factory=list)
    tail: str = ""  # the last lines of its output


def run_cli(market_size: int, timeout: float) -> CliResult:
    """The CLI at ``market_size``, one replication, fast engine, no plots, in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        out_dir, log = Path(tmp) / "run", Path(tmp) / "cli-output.txt"
        args = [f"market.size={market_size}", "run.replications=1", "run.engine=fast",
                "run.plots=false", f"hydra.run.dir={out_dir}"]
        launcher = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(log), str(timeout),
             sys.executable, "-m", "sim", *args],
            cwd=REPO, capture_output=True, text=True, check=False)
        if launcher.returncode != 0:
            raise RuntimeError(f"CLI launcher failed: {launcher.stderr.strip()}")
        report = json.loads(launcher.stdout)
        files = sorted(p for p in out_dir.rglob("*") if p.is_file()) if out_dir.exists() else []
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        return CliResult(
            command="python -m sim " + " ".join(args[:-1]) + " hydra.run.dir=<tmpdir>",
            returncode=report["returncode"],
            seconds=report["seconds"],
            peak_rss_mb=report["maxrss_bytes"] / MB,
            output_mb=sum(p.stat().st_size for p in files) / MB,
            files=[str(p.relative_to(out_dir)) for p in files],
            tail=tail,
        )


# --------------------------------------------------------------------------- report
@dataclass
class Row:
    """Best-of-repeats speed and child-process peak memory of one case at one size."""

    size: int
    case: str
    seconds: float
    seconds_all: list[float]
    n_customers: int | None
    n_events: int
    event_count: str
    customers_per_s: float | None
    events_per_s: float
    cpu_seconds: float | None  # the least CPU time of the repeats (this process only)
    peak_rss_mb: float | None = None
    rss_before_mb: float | None = None
    rss_bytes_per_customer: float | None = None
    child_seconds: float | None = None  # the memory run's wall time, in a fresh process


def make_row(size: int, case: str, runs: list[Run]) -> Row:
    """The row of one case at one size from its timed runs: the best wall time."""
    best = min(runs, key=lambda r: r.seconds)
    cpus = [r.cpu_seconds for r in runs if r.cpu_seconds is not None]
    return Row(size, case, best.seconds, [r.seconds for r in runs], best.n_customers,
               best.n_events, EVENT_COUNTS[case],
               None if best.n_customers is None else best.n_customers / best.seconds,
               best.n_events / best.seconds, min(cpus) if cpus else None)


def add_memory(row: Row, memory: Memory) -> None:
    row.peak_rss_mb = memory.rss_peak / MB
    row.rss_before_mb = memory.rss_before / MB
    row.child_seconds = memory.seconds
    if memory.n_customers:
        row.rss_bytes_per_customer = (memory.rss_peak - memory.rss_before) / memory.n_customers


HEAD = ("market", "case", "customers", "events", "best s", "cpu s", "customers/s", "events/s",
        "peak RSS MB", "RSS B/cust", "child s")


def _cells(r: Row) -> tuple[str, ...]:
    return (f"{r.size:,}", r.case, fmt(r.n_customers), fmt(r.n_events), f"{r.seconds:.3f}",
            fmt(r.cpu_seconds, ".3f"), fmt(r.customers_per_s), fmt(r.events_per_s),
            fmt(r.peak_rss_mb, ",.1f"), fmt(r.rss_bytes_per_customer),
            fmt(r.child_seconds, ".3f"))


def format_table(rows: list[Row]) -> str:
    return format_rows(HEAD, [_cells(r) for r in rows], left=2)


def format_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(HEAD) - 2)) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _per_cpu_s(r: Row) -> float | None:
    """Customers per CPU second of this process: less sensitive to other load."""
    return _ratio(r.n_customers, r.cpu_seconds)


@dataclass
class Check:
    name: str
    value: float | None
    target: str
    passed: bool | None  # None: not measured (a case or size was not run)
    detail: str = ""

    def line(self) -> str:
        verdict = "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")
        value = "n/a" if self.value is None else f"{self.value:,.3g}"
        return f"{verdict:4}  {self.name} = {value} (target {self.target}){self.detail}"


def checks(rows: list[Row], cli: CliResult | None, cli_size: int) -> tuple[list[Check], dict]:
    """The target checks and every ratio, from the measured rows."""
    by = {(r.size, r.case): r for r in rows}
    sizes = sorted({r.size for r in rows})
    others = ("agent", "naive_simpy", "naive_numpy")
    ratios: dict[str, dict[str, float | None]] = {f"fast_over_{c}": {} for c in others}
    cpu_ratios: dict[str, dict[str, float | None]] = {f"fast_over_{c}": {} for c in others}
    for n in sizes:
        fast = by.get((n, "fast"))
        for case in others:
            other = by.get((n, case))
            if fast is not None and other is not None:
                ratios[f"fast_over_{case}"][str(n)] = _ratio(fast.customers_per_s,
                                                              other.customers_per_s)
                cpu_ratios[f"fast_over_{case}"][str(n)] = _ratio(_per_cpu_s(fast),
                                                                  _per_cpu_s(other))
    out: list[Check] = []
    both = [n for n in sizes if ratios["fast_over_agent"].get(str(n)) is not None]
    if both:
        n = both[-1]
        value = ratios["fast_over_agent"][str(n)]
        out.append(Check(f"fast/agent customers/s at {n:,}", value,
                         f">= {TARGET_FAST_OVER_AGENT:g}", value >= TARGET_FAST_OVER_AGENT,
                         f"; by CPU time {fmt(cpu_ratios['fast_over_agent'][str(n)], '.3g')}"))
    else:
        out.append(Check("fast/agent customers/s", None, f">= {TARGET_FAST_OVER_AGENT:g}", None,
                         " (the agent engine did not run at any fast size)"))
    scaling: dict[str, float] = {}
    cpu_scaling: dict[str, float] = {}
    pairs = [(n, 10 * n) for n in sizes if (10 * n) in sizes]
    for lo, hi in pairs:
        for case in CASES:
            a, b = by.get((hi, case)), by.get((lo, case))
            if a is not None and b is not None:
                scaling[f"{case} {hi}/{lo}"] = a.seconds / b.seconds
                cpu = _ratio(a.cpu_seconds, b.cpu_seconds)
                if cpu is not None:
                    cpu_scaling[f"{case} {hi}/{lo}"] = cpu
    if pairs and (by.get((pairs[-1][1], "fast")) and by.get((pairs[-1][0], "fast"))):
        lo, hi = pairs[-1]
        value = scaling[f"fast {hi}/{lo}"]
        out.append(Check(f"fast time({hi:,}) / time({lo:,})", value,
                         f"<= {TARGET_SCALING:g}", value <= TARGET_SCALING,
                         f"; by CPU time {fmt(cpu_scaling.get(f'fast {hi}/{lo}'), '.3g')}"))
    else:
        out.append(Check("fast time(10 N) / time(N)", None, f"<= {TARGET_SCALING:g}", None,
                         " (needs two sizes 10x apart)"))
    top = by.get((sizes[-1], "fast")) if sizes else None
    if top is not None and top.rss_bytes_per_customer is not None:
        value = top.rss_bytes_per_customer
        note = "" if top.size == 1_000_000 else " (the target is stated for 1,000,000)"
        out.append(Check(f"fast RSS bytes per customer at {top.size:,}", value,
                         f"<= {TARGET_BYTES_PER_CUSTOMER:g}", value <= TARGET_BYTES_PER_CUSTOMER,
                         f"; peak RSS {top.peak_rss_mb:,.0f} MB, {top.rss_before_mb:,.0f} MB "
                         f"before the run{note}"))
    else:
        out.append(Check("fast RSS bytes per customer", None,
                         f"<= {TARGET_BYTES_PER_CUSTOMER:g}", None, " (memory not measured)"))
    if cli is not None:
        ok = cli.returncode == 0
        status = "timed out" if cli.returncode is None else f"exit status {cli.returncode}"
        out.append(Check(f"CLI run at {cli_size:,}, wall seconds", cli.seconds,
                         "completes, exit status 0", ok,
                         f"; {status}, peak RSS {cli.peak_rss_mb:,.0f} MB, "
                         f"{cli.output_mb:,.0f} MB written"))
    else:
        out.append(Check(f"CLI run at {cli_size:,}", None, "completes", None, " (--no-cli)"))
    return out, {"customers_per_s": ratios, "customers_per_cpu_s": cpu_ratios,
                 "time_scaling": scaling, "cpu_time_scaling": cpu_scaling}


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", type=lambda s: [int(x.replace("_", "")) for x in s.split(",")],
                   default=list(SIZES), metavar="N,N,...",
                   help="market sizes, comma separated (default 10000,100000,1000000)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per size; the best time per case is kept "
                        "(default 3 below 1,000,000 customers, 1 from there on)")
    p.add_argument("--skip-agent-above", type=int, default=None, metavar="N",
                   help="leave the agent engine out at market sizes above N")
    p.add_argument("--no-naive", action="store_true", help="leave the naive model out")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the child processes that measure peak memory")
    p.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True,
                   help="run the 1,000,000-customer CLI check (default: on)")
    p.add_argument("--cli-size", type=int, default=CLI_SIZE, help=argparse.SUPPRESS)
    p.add_argument("--cli-timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="give up on the CLI run after this long (default 3600)")
    p.add_argument("--markdown", action="store_true",
                   help="also print the table as Markdown")
    p.add_argument("--check", action="store_true", help="exit with status 1 on any FAIL")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write the numbers to PATH as JSON")
    args = p.parse_args(argv)
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes must be positive integers")
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be >= 1")
    args.sizes = sorted(set(args.sizes))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    naive = None if args.no_naive else load_naive()
    notes: list[str] = []
    if naive is None and not args.no_naive:
        notes.append(f"naive cases skipped: {NAIVE_FILE.name} not found beside the repository")
    env_info = environment()
    mem_total = memory_total_bytes()
    env_info.update(cpu_model=cpu_model(), memory_gb=None if mem_total is None else
                    round(mem_total / 2**30, 1), revision=git_revision(),
                    load_average_start=load_average())
    print("journey-sim scale benchmark: full baseline workload, one replication; market "
          f"sizes {', '.join(f'{n:,}' for n in args.sizes)}")
    print("  " + ", ".join(f"{k} {v}" for k, v in env_info.items()))

    def cases_at(n: int) -> list[str]:
        out = ["fast"]
        if args.skip_agent_above is None or n <= args.skip_agent_above:
            out.append("agent")
        if naive is not None:
            out += ["naive_simpy", "naive_numpy"]
        return out

    warm = min(10_000, args.sizes[0])
    for case in cases_at(warm):  # warm-up: imports, caches, allocator arenas
        make_case(case, warm, naive)()

    rows: list[Row] = []
    meter = BusyMeter()
    for n in args.sizes:
        repeats = args.repeats or (3 if n < 1_000_000 else 1)
        print(f"  timing {n:,} customers: {', '.join(cases_at(n))}; best of {repeats}",
              flush=True)
        timed = time_cases({c: make_case(c, n, naive) for c in cases_at(n)}, repeats)
        rows += [make_row(n, case, runs) for case, runs in timed.items()]
        gc.collect()
    meter.note(env_info, notes)
    if not args.no_memory:
        for row in rows:
            print(f"  memory {row.size:,} {row.case} (fresh child)", flush=True)
            add_memory(row, measure_memory(row.case, row.size))
    cli = None
    if args.cli:
        print(f"  CLI run at {args.cli_size:,} customers", flush=True)
        cli = run_cli(args.cli_size, args.cli_timeout)
        if cli.returncode != 0:
            notes.append("CLI output (last lines):\n" + cli.tail)
    env_info["load_average_end"] = load_average()

    print()
    print(format_table(rows))
    if args.markdown:
        print()
        print(format_markdown(rows))
    print()
    print("customers: engines = customers who became aware (result.n_customers); naive = "
          "all N started")
    print("events: fast = SimPy scheduled events (tick stops, desk) + customer events "
          "processed in vectorised batches; agent = SimPy scheduled events next(env._eid); "
          "naive_simpy = SimPy scheduled events; naive_numpy = its own step count")
    print("times: wall, best of the interleaved rounds after a warm-up; construction and "
          "result tables included for the engines, env.run only for naive_simpy; cpu s = "
          "least CPU time of this process over the same rounds (same span)")
    print("memory: " + ("not measured (--no-memory)" if args.no_memory else
                        "a fresh spawned child per row; peak RSS of the whole child; "
                        "RSS B/cust = (peak RSS - RSS before the run) / customers; child s = "
                        "wall time of that run (fresh process, a cross-check of best s)"))
    for note in notes:
        print("note: " + note)

    results, ratios = checks(rows, cli, args.cli_size)
    print()
    for key, title in (("customers_per_s", "ratios of customers/s (wall time)"),
                       ("customers_per_cpu_s", "ratios of customers per CPU second")):
        print(title + ":")
        for name, per_size in ratios[key].items():
            if per_size:
                print(f"  {name.replace('_over_', '/')}: " + ", ".join(
                    f"{int(n):,}: {fmt(v, '.3g')}" for n, v in per_size.items()))
    for key, title in (("time_scaling", "wall time"), ("cpu_time_scaling", "CPU time")):
        if ratios[key]:
            print(f"{title}(10 N) / {title}(N): " + ", ".join(
                f"{k}: {v:.2f}" for k, v in ratios[key].items()))
    print()
    for c in results:
        print(c.line())
    failed = any(c.passed is False for c in results)

    if args.json is not None:
        payload = {
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
            "environment": env_info,
            "sizes": args.sizes,
            "event_counts": EVENT_COUNTS,
            "rows": [asdict(r) for r in rows],
            "ratios": ratios,
            "checks": [asdict(c) for c in results],
            "cli": None if cli is None else asdict(cli),
            "notes": notes,
        }
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(args.json)
        print(f"wrote {args.json}")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())

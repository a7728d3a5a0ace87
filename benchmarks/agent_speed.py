"""Speed and memory of the agent engine, measured against SimPy's own floor in one run.

Three cases, each timed in this process (one untimed warm-up of every case, then
``--repeats`` interleaved rounds, the best wall time of each case kept) and measured for
peak memory in a fresh child process:

``raw_timeouts``
    SimPy's raw timeout loop: processes of 100 timeouts of 1.0 day each, 1,000,000 timeouts
    in all, no model logic: the cheapest events SimPy processes on this interpreter and
    machine, and so the yardstick of the target.
``naive_simpy``
    The naive per-customer SimPy model of ``shared/bench/naive_reference.py`` (a sibling of
    the repository, optional: the row is skipped with a note when it is missing).
``agent``
    The agent engine on the full baseline workload: ``compose_config`` with the default
    baseline config (optionally ``market.size=N``), ``build_spec``, then
    ``AgentModel(spec, seed, replication).run()``, model construction and result building
    included.

Events are counted the same way in every case: SimPy's own count of scheduled events,
``next(env._eid)`` after the run. That is what ``SimulationResult.n_sim_events`` holds; it
counts timeouts, interrupts, each process's start (``Initialize``) and end, and events
scheduled beyond the horizon. The raw loop therefore counts 1,020,000 events: 1,000,000
timeouts plus the start and end of each of its 10,000 processes.

Run ``python benchmarks/agent_speed.py --help`` for the options. Nothing is written unless
``--json PATH`` is given.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import simpy
from _common import (
    MB,
    NAIVE_FILE,
    BusyMeter,
    Run,
    environment,
    fmt,
    load_naive,
    measure_rss,
    naive_journeys,
)

from sim.engine.agent import AgentModel
from sim.model.config import compose_config
from sim.model.spec import ModelSpec, build_spec

RAW_EVENTS = 1_000_000  # timeouts in the raw loop, as in naive_reference.raw_timeouts
RAW_PER_PROCESS = 100  # timeouts per process
TARGET_EVENT_RATIO = 0.5  # agent events/s over raw timeout events/s
MEMORY_METHOD = (
    "one run in a fresh spawned child process per case; peak RSS = peak resident set size "
    "of that whole process (interpreter and imports included); RSS B/cust = (peak RSS - RSS "
    "before the run) / customers; traced B/cust = tracemalloc peak of a second run / customers"
)


# ----------------------------------------------------------------------------- cases
def raw_timeouts(n_events: int = RAW_EVENTS, per_process: int = RAW_PER_PROCESS) -> Run:
    """SimPy's raw timeout loop: ``n_events // per_process`` processes of 1.0-day timeouts.

    Only ``env.run()`` is timed, as in ``naive_reference.raw_timeouts``: creating the
    processes is left out, which makes the floor (and so the target) slightly harder.
    """
    env = simpy.Environment()

    def proc(env: simpy.Environment, k: int) -> Iterator[simpy.Event]:
        for _ in range(k):
            yield env.timeout(1.0)

    for _ in range(n_events // per_process):
        env.process(proc(env, per_process))
    t0 = time.perf_counter()
    env.run()
    seconds = time.perf_counter() - t0
    return Run(seconds, None, next(env._eid))  # SimPy's scheduled-event count


def agent_spec(market_size: int | None = None) -> ModelSpec:
    """The baseline spec, as the CLI composes it, with an optional ``market.size``."""
    overrides = [] if market_size is None else [f"market.size={market_size}"]
    return build_spec(compose_config(overrides))


def agent_runs(spec: ModelSpec, replications: int = 1) -> Run:
    """Replications 0..replications-1 of the agent engine, summed.

    Timed: ``AgentModel(spec, seed, replication).run()``, i.e. drawing the awareness
    thresholds and exit tables, the SimPy run and building the result tables.
    """
    seconds, n_customers, n_events = 0.0, 0, 0
    for rep in range(replications):
        t0 = time.perf_counter()
        result = AgentModel(spec, spec.seed, rep).run()
        seconds += time.perf_counter() - t0
        n_customers += result.n_customers  # customers who became aware
        n_events += result.n_sim_events  # next(env._eid), see AgentModel.run
    return Run(seconds, n_customers, n_events)


def time_cases(cases: dict[str, Callable[[], Run]],
               repeats: int) -> dict[str, tuple[Run, list[float]]]:
    """One untimed warm-up of every case, then ``repeats`` interleaved rounds.

    Each round runs every case once, so a burst of load from another process slows all
    cases alike instead of one, and the ratios stay fair. Returns, per case, its fastest
    run and every timed wall time.
    """
    for case in cases.values():
        case()  # warm-up: imports, caches, allocator arenas
    runs: dict[str, list[Run]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            runs[name].append(case())
    return {name: (min(rs, key=lambda r: r.seconds), [r.seconds for r in rs])
            for name, rs in runs.items()}


# ---------------------------------------------------------------------------- memory
@dataclass
class Memory:
    """Memory of one run of a case, measured in a fresh child process."""

    rss_before: int  # bytes resident before the run (interpreter, imports, inputs)
    rss_peak: int  # bytes: peak resident set size of the whole process during the run
    traced_peak: int  # bytes: tracemalloc peak of the run's Python (and numpy) allocations
    n_customers: int | None
    rss_method: str

    @property
    def rss_bytes_per_customer(self) -> float | None:
        return (self.rss_peak - self.rss_before) / self.n_customers if self.n_customers else None

    @property
    def traced_bytes_per_customer(self) -> float | None:
        return self.traced_peak / self.n_customers if self.n_customers else None


def _memory_child(case: str, market_size: int) -> Memory:
    """In a fresh process: the peak memory of one run of ``case``, measured twice.

    First the resident set size: the peak mark is reset just before the run, so the peak
    read after it belongs to the run. On Linux ``ru_maxrss`` cannot be used for that: it
    keeps the parent's resident size at fork time across ``exec`` (``VmHWM`` of
    /proc/self/status does not), so it is the fallback only where /proc is missing. Then,
    in a second run, the tracemalloc peak of the run's allocations (numpy arrays included);
    tracing slows the run down, which is why it is not the one whose RSS is read.
    """
    if case == "raw_timeouts":
        def run() -> Run:
            return raw_timeouts()
    elif case == "naive_simpy":
        module = load_naive()
        if module is None:
            raise FileNotFoundError(NAIVE_FILE.name)

        def run() -> Run:
            return naive_journeys(module, market_size)
    elif case == "agent":
        spec = agent_spec(market_size)

        def run() -> Run:
            return agent_runs(spec)
    else:
        raise ValueError(f"unknown case {case!r}")

    rss_before, rss_peak, n_customers, rss_method = measure_rss(run)
    gc.collect()
    tracemalloc.start()
    run()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Memory(rss_before, rss_peak, traced_peak, n_customers, rss_method)


def measure_memory(case: str, market_size: int) -> Memory:
    """Run ``_memory_child`` in a fresh spawned process, so no earlier run's heap is counted."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_memory_child, case, market_size).result()


# --------------------------------------------------------------------------- report
@dataclass
class CaseResult:
    """Best-of-repeats speed and child-process peak memory of one case."""

    case: str
    seconds: float  # the best wall time
    seconds_all: list[float]  # every timed repeat
    n_customers: int | None
    n_events: int
    event_count: str  # "scheduled": next(env._eid); "own": the model's own timeout count
    customers_per_s: float | None
    events_per_s: float
    peak_rss_mb: float | None = None
    rss_before_mb: float | None = None
    rss_bytes_per_customer: float | None = None
    traced_peak_mb: float | None = None
    traced_bytes_per_customer: float | None = None
    rss_method: str | None = None


def _result(case: str, best: Run, all_seconds: list[float], memory: Memory | None) -> CaseResult:
    res = CaseResult(
        case=case,
        seconds=best.seconds,
        seconds_all=all_seconds,
        n_customers=best.n_customers,
        n_events=best.n_events,
        event_count=best.event_count,
        customers_per_s=None if best.n_customers is None else best.n_customers / best.seconds,
        events_per_s=best.n_events / best.seconds,
    )
    if memory is not None:
        res.peak_rss_mb = memory.rss_peak / MB
        res.rss_before_mb = memory.rss_before / MB
        res.rss_bytes_per_customer = memory.rss_bytes_per_customer
        res.traced_peak_mb = memory.traced_peak / MB
        res.traced_bytes_per_customer = memory.traced_bytes_per_customer
        res.rss_method = memory.rss_method
    return res


def format_table(rows: list[CaseResult]) -> str:
    """A plain-text table: case, customers/s, events/s, peak memory, bytes per customer."""
    head = ("case", "customers", "events", "best s", "customers/s", "events/s",
            "peak RSS MB", "RSS B/cust", "traced MB", "traced B/cust")
    body = [(r.case, fmt(r.n_customers), fmt(r.n_events), f"{r.seconds:.3f}",
             fmt(r.customers_per_s), fmt(r.events_per_s), fmt(r.peak_rss_mb, ".1f"),
             fmt(r.rss_bytes_per_customer), fmt(r.traced_peak_mb, ".1f"),
             fmt(r.traced_bytes_per_customer)) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths, strict=True)))
             for line in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--market-size", type=int, default=None,
                   help="market.size override (default: the baseline config, 20,000)")
    p.add_argument("--replications", type=int, default=1,
                   help="replications per timed run of the agent engine (0..R-1) and of the "
                        "naive model (seeds 1..R); default 1")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed rounds after one warm-up; each round runs every case once and "
                        "the best time per case is kept (default 3)")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 when the events/s target is missed")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the child processes that measure peak memory")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="also write the numbers to PATH as JSON")
    args = p.parse_args(argv)
    for name in ("replications", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.market_size is not None and args.market_size < 1:
        p.error("--market-size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the table and the ratios; the exit status (see ``--check``)."""
    args = parse_args(argv)
    spec = agent_spec(args.market_size)
    market_size = spec.market_size
    naive = load_naive()
    memory = not args.no_memory

    print(f"journey-sim agent engine benchmark: market.size={market_size:,}, "
          f"replications={args.replications}, best of {args.repeats} interleaved rounds "
          "after one warm-up")
    env_info = environment()
    print("  " + ", ".join(f"{k} {v}" for k, v in env_info.items()))

    notes: list[str] = []
    cases: dict[str, Callable[[], Run]] = {"raw_timeouts": raw_timeouts}
    if naive is None:
        notes.append(f"naive_simpy skipped: {NAIVE_FILE.name} not found beside the repository")
    else:
        cases["naive_simpy"] = lambda: naive_journeys(naive, market_size, args.replications)
    cases["agent"] = lambda: agent_runs(spec, args.replications)

    meter = BusyMeter()
    timed = time_cases(cases, args.repeats)
    meter.note(env_info, notes)
    rows = [_result(name, best, times,
                    measure_memory(name, market_size) if memory else None)
            for name, (best, times) in timed.items()]
    if any(r.event_count != "scheduled" for r in rows):
        notes.append("naive_simpy events are its own timeout count, not SimPy's")
    print()
    print(format_table(rows))
    print()
    print("events: SimPy's scheduled-event count next(env._eid) after each run "
          "(timeouts, interrupts, process starts and ends)")
    print("customers: agent = customers who became aware; naive = customers started "
          f"(market size); times: best of {args.repeats} interleaved rounds after a warm-up")
    print("memory: " + (MEMORY_METHOD if memory else "not measured (--no-memory)"))
    for note in notes:
        print("note: " + note)

    by_case = {r.case: r for r in rows}
    agent, raw = by_case["agent"], by_case["raw_timeouts"]
    event_ratio = agent.events_per_s / raw.events_per_s
    passed = event_ratio >= TARGET_EVENT_RATIO
    print()
    print(f"agent events/s / raw timeout events/s = {event_ratio:.3f} "
          f"(target >= {TARGET_EVENT_RATIO}): {'PASS' if passed else 'FAIL'}")
    customer_ratio = None
    naive_row = by_case.get("naive_simpy")
    if naive_row is not None and agent.customers_per_s and naive_row.customers_per_s:
        customer_ratio = agent.customers_per_s / naive_row.customers_per_s
        print(f"agent customers/s / naive customers/s = {customer_ratio:.3f}")
    else:
        print("agent customers/s / naive customers/s = n/a (naive reference not found)")

    if args.json is not None:
        payload = {
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(["python", "benchmarks/agent_speed.py", *sys.argv[1:]]),
            "environment": env_info,
            "market_size": market_size,
            "replications": args.replications,
            "repeats": args.repeats,
            "event_count": "SimPy scheduled events, next(env._eid) after the run",
            "memory_method": MEMORY_METHOD if memory else None,
            "cases": [asdict(r) for r in rows],
            "ratios": {
                "agent_events_per_s_over_raw": event_ratio,
                "target": TARGET_EVENT_RATIO,
                "pass": passed,
                "agent_customers_per_s_over_naive": customer_ratio,
            },
            "notes": notes,
        }
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(args.json)  # atomic: a reader never sees half a file
        print(f"wrote {args.json}")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())

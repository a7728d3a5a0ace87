"""Replications of one scenario: spec -> engine runs -> per-replication metrics."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy import special
from tqdm import tqdm

from sim.engine import OUTCOMES, TICKET_OUTCOMES, SimulationResult, simulate
from sim.measure.metrics import customer_values, daily_table, replication_metrics
from sim.model.spec import DAYS_PER_MONTH, ModelSpec

__all__ = ["ExperimentResult", "estimated_memory_bytes", "estimated_work_seconds", "extend",
           "parallel_map", "progress_shown", "run_experiment", "run_replications"]

T = TypeVar("T")


@dataclass
class ExperimentResult:
    """All replications of one scenario.

    Attributes
    ----------
    spec : the model that ran.
    results : one ``SimulationResult`` per replication (records and tables).
    metrics : one flat dict of headline metrics per replication, same keys.
    """

    spec: ModelSpec
    results: list[SimulationResult]
    metrics: list[dict[str, float]]

    @property
    def n_replications(self) -> int:
        return len(self.results)

    def metric(self, name: str) -> np.ndarray:
        """One metric across replications."""
        return np.array([m[name] for m in self.metrics])

    def customers(self) -> pd.DataFrame:
        """One row per customer who became aware, all replications, readable names."""
        frames = []
        for r in self.results:
            c = r.customers
            df = pd.DataFrame({"replication": r.replication, **c})
            df["segment"] = pd.Categorical.from_codes(c["segment"], categories=list(r.segments))
            df["channel"] = pd.Categorical.from_codes(c["channel"], categories=list(r.channels))
            df["state"] = pd.Categorical.from_codes(c["state"], categories=list(r.states))
            df["outcome"] = pd.Categorical.from_codes(c["outcome"], categories=list(OUTCOMES))
            values = customer_values(r, self.spec)
            df["active_days"] = values["active_days"]
            df["costs"] = values["costs"]
            df["ltv"] = values["ltv"]
            df["residual"] = values["residual"]
            df["clv"] = values["clv"]
            frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def _table(self, name: str) -> pd.DataFrame:
        return pd.concat([pd.DataFrame({"replication": r.replication, **getattr(r, name)})
                          for r in self.results], ignore_index=True)

    def purchases(self) -> pd.DataFrame:
        """Every order, all replications: customer, time (days), value, discount, revenue,
        margin (the transaction log)."""
        return self._table("purchases")

    def tickets(self) -> pd.DataFrame:
        """Every service-desk ticket, all replications; times in days, waits in minutes."""
        df = self._table("tickets")
        served = df["outcome"] < 2
        df["wait_minutes"] = (df["start"].where(served, df["end"]) - df["arrival"]) * 1440
        df["handling_minutes"] = (df["end"] - df["start"]) * 1440
        df["outcome"] = pd.Categorical.from_codes(df["outcome"], categories=list(TICKET_OUTCOMES))
        return df

    def referrals(self) -> pd.DataFrame:
        """Every referral, all replications: referrer, referred customer, time (days)."""
        return self._table("referrals")

    def daily(self) -> pd.DataFrame:
        """Per replication and day: entries, occupancy, spend, revenue (long format)."""
        return pd.concat(
            [pd.DataFrame({"replication": r.replication, **daily_table(r)}) for r in self.results],
            ignore_index=True,
        )

    def event_log(self) -> pd.DataFrame:
        """Every state entry of every customer, all replications, one customer's journey
        after another in the order it happened: replication, customer, time (days),
        ``state`` entered, ``from_state`` (the state left, empty for the first entry: the
        stage a lost prospect dropped out of, the step before a purchase), the customer's
        ``channel`` and ``segment``, and the ``experience`` score on entering."""
        frames = []
        for r in self.results:
            ev, c, states = r.events, r.customers, list(r.states)
            # both engines append a customer's entries in the order they happen
            order = np.argsort(ev["customer"], kind="stable")
            customer, state = ev["customer"][order], ev["state"][order]
            first = np.ones(customer.size, dtype=bool)
            first[1:] = customer[1:] != customer[:-1]
            previous = np.where(first, -1, np.roll(state, 1))
            frames.append(pd.DataFrame({
                "replication": r.replication,
                "customer": customer,
                "time": ev["time"][order],
                "state": pd.Categorical.from_codes(state, categories=states),
                "from_state": pd.Categorical.from_codes(previous, categories=states),
                "channel": pd.Categorical.from_codes(c["channel"][customer],
                                                     categories=list(r.channels)),
                "segment": pd.Categorical.from_codes(c["segment"][customer],
                                                     categories=list(r.segments)),
                "experience": ev["score"][order],
            }))
        return pd.concat(frames, ignore_index=True)

    def events(self, replication: int = 0) -> pd.DataFrame:
        """Every state entry of one replication: customer, time (days), state name."""
        r = self.results[replication]
        return pd.DataFrame({
            "customer": r.events["customer"],
            "time": r.events["time"],
            "state": pd.Categorical.from_codes(r.events["state"], categories=list(r.states)),
            "experience": r.events["score"],
        })


def _replicate(spec: ModelSpec, replication: int) -> tuple[SimulationResult, dict[str, float]]:
    result = simulate(spec, spec.seed, replication)
    return result, replication_metrics(result, spec)


def progress_shown(wanted: bool) -> bool:
    """A bar only for a person watching: on a terminal, never in CI or when piped."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return wanted and not ci and sys.stderr.isatty()


def run_replications(spec: ModelSpec, replications: Sequence[int],
                     n_jobs: int = 1) -> list[tuple[SimulationResult, dict[str, float]]]:
    """Run the given replications of ``spec``, in ``n_jobs`` worker processes.

    Replication i always uses the streams of (seed, i), so the results are the same, and in
    the same order, whatever ``n_jobs`` and however the workers are scheduled. A progress
    bar (replications done, customers per second) shows on a terminal. On Ctrl-C
    (``KeyboardInterrupt``) or any other error the workers are stopped at once, and the
    exception goes on to the caller.
    """
    reps = list(replications)
    bar = tqdm(total=len(reps), desc=spec.scenario_name, unit="rep", leave=False,
               disable=not progress_shown(spec.progress), file=sys.stderr)
    start, customers, done = time.perf_counter(), 0, []
    # closed here, not when garbage-collected: an exception's traceback would keep the
    # generator, and with it the worker processes, alive
    with bar, contextlib.closing(_replications(spec, reps, n_jobs)) as items:
        for item in items:
            done.append(item)
            customers += item[0].n_customers
            bar.update()  # then the postfix, whose refresh shows the new count at once
            bar.set_postfix_str(f"{customers / (time.perf_counter() - start):,.0f} customers/s")
    return done


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent: a terminal sends SIGINT to the whole process
    group, and each worker would print its own KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: drop the queued replications and terminate the running ones
    (``shutdown`` alone waits for every running replication to finish)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.terminate()
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            process.join(timeout=2)
    # Let the pool's manager thread finish closing its wake-up pipe now: on Python 3.11 the
    # interpreter's exit hook (concurrent.futures.process._python_exit) can otherwise write
    # to that pipe while the thread closes it, and print a traceback after a Ctrl-C.
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=2)


def _replications(spec: ModelSpec, reps: list[int], n_jobs: int
                  ) -> Iterator[tuple[SimulationResult, dict[str, float]]]:
    yield from parallel_map(_replicate, [(spec, i) for i in reps], n_jobs)


def _worker_start(setup: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
    _ignore_interrupts()
    if setup is not None:
        setup(*args)


def parallel_map(fn: Callable[..., T], items: Sequence[tuple[Any, ...]], n_jobs: int,
                 setup: Callable[..., None] | None = None, setup_args: tuple[Any, ...] = (),
                 chunksize: int = 1) -> Iterator[T]:
    """``fn(*item)`` for every item, in order, in ``n_jobs`` worker processes (in this one
    when ``n_jobs`` is 1); ``setup(*setup_args)`` runs first in each worker (and here).
    Workers ignore Ctrl-C; on Ctrl-C or any error here they are stopped at once."""
    if n_jobs <= 1 or len(items) <= 1:
        if setup is not None:
            setup(*setup_args)
        yield from (fn(*item) for item in items)
        return
    pool = ProcessPoolExecutor(max_workers=min(n_jobs, len(items)), initializer=_worker_start,
                               initargs=(setup, setup_args))
    try:
        yield from pool.map(fn, *zip(*items, strict=True), chunksize=chunksize)
    except BaseException:  # Ctrl-C, an error, or the caller stopped early (GeneratorExit)
        _stop_workers(pool)
        raise
    pool.shutdown()


def run_experiment(spec: ModelSpec, replications: Sequence[int] | None = None,
                   n_jobs: int | None = None) -> ExperimentResult:
    """Run ``spec``'s replications (``spec.replication_ids``, or those given)."""
    reps = spec.replication_ids if replications is None else replications
    done = run_replications(spec, reps, spec.n_jobs if n_jobs is None else n_jobs)
    return ExperimentResult(spec, [r for r, _ in done], [m for _, m in done])


# Memory per person in the market, measured with benchmarks/run.py at 100k and 1M people
# on the baseline (peak resident set of one replication minus the interpreter's, and the
# tables a finished replication keeps), rounded up by about a quarter for other configs.
ENGINE_BYTES_PER_PERSON = {"agent": 2300, "fast": 300}
RESULT_BYTES_PER_PERSON = 250
BASE_BYTES = 400_000_000  # the interpreter with numpy, scipy, simpy, pandas, matplotlib


def estimated_memory_bytes(spec: ModelSpec, replications: int | None = None) -> int:
    """Peak memory estimate of running ``spec``: the engines working at once (one per
    worker), plus the result tables every replication keeps until the run is summarised."""
    n = spec.replications if replications is None else replications
    workers = min(spec.n_jobs, n)
    m = spec.market_size
    return int(BASE_BYTES + workers * (ENGINE_BYTES_PER_PERSON[spec.engine] * m + BASE_BYTES)
               + n * RESULT_BYTES_PER_PERSON * m)


# Work per unit, seconds of one core, measured with sim.run and Run.write on the baseline:
# the agent engine at 1,000 to 20,000 people, the fast one at 100 to 200,000 people and
# ticks of 0.1 to 1 day, horizons of 1 to 60 years. On eight such runs the CPU time was 0.4
# (a market of 100 over 60 years: not every cohort month has buyers) to 1.5 times the
# estimate (tests/test_ranges.py checks a factor of 3); wall time on a loaded machine is
# longer.
WORK_SECONDS = {
    "agent_per_aware": 20e-6,  # a customer's arrival, records and metrics ...
    "agent_per_visit": 15e-6,  # ... and each visit of a prospect stage
    "agent_per_purchase": 20e-6,  # a purchase, its ticket at the desk, the next gap
    # the fast engine's cost per tick (a few hundred numpy calls), from 0.1 ms in a market
    # of a hundred people to 1.1 ms from about 2,000 aware on
    "fast_per_tick": 0.1e-3,
    "fast_per_tick_busy": 1.0e-3,
    "fast_per_aware": 8e-6,
    "fast_per_visit": 6e-6,
    "fast_per_purchase": 10e-6,
    "per_customer_row": 10e-6,  # customers.csv and the per-customer tables
    "per_day": 50e-6,  # daily.csv and the payback curve, per day and replication
    "per_cohort_point": 150e-6,  # cohorts.csv, its plot and the LTV tables, per replication
    "per_replication": 0.05,
    "per_run": 3.0,  # the summary, the finance tables and the figures
}


def _journey_visits_and_checkout(spec: ModelSpec) -> tuple[float, float]:
    """Expected prospect-stage visits of a customer aware at the first stage and the chance
    that they reach the checkout (the journey as an absorbing Markov chain, no odds shifts)."""
    n = spec.n_stages
    q, to_checkout = np.zeros((n, n)), np.zeros(n)
    for i, st in enumerate(spec.stages):
        for target, p in zip(st.targets, st.probs, strict=True):
            if target < n:
                q[i, target] += p
            else:
                to_checkout[i] += p if spec.states[target] == "checkout" else 0.0
    try:
        visits = np.linalg.solve(np.eye(n) - q.T, np.eye(n)[0])  # expected visits per stage
    except np.linalg.LinAlgError:  # a stage nobody leaves: bounded by the horizon instead
        return float(spec.horizon_days), 1.0
    if not np.isfinite(visits).all() or (visits < 0).any():
        return float(spec.horizon_days), 1.0
    return float(visits.sum()), float(min(1.0, visits @ to_checkout))


def _purchases_per_buyer(spec: ModelSpec) -> float:
    """Expected orders of a buyer over the half horizon a buyer has on average: the first,
    then repeats (or renewals) at the mean rate lambda, each followed by drop-out with
    probability p, about lambda T / (1 + lambda T p) of them, averaged over the Beta
    distribution of p (at its quantiles: with a small Beta shape many buyers almost never
    drop out, which the mean p would hide)."""
    ret, loy = spec.retention, spec.loyalty
    shares = np.asarray(spec.segment_shares)
    if ret.model == "none":
        return 1.0
    member = 1.0 + (loy.enrol_prob * (loy.rate_multiplier - 1.0) if loy.enabled else 0.0)
    churn = float(shares @ np.asarray(spec.segment_churn))
    if ret.model == "subscription":
        rate, a, b = 1.0 / ret.period_days, ret.sub_alpha, ret.sub_beta
    else:
        rate = (ret.r / ret.alpha_days * float(shares @ np.asarray(spec.segment_purchase_rate))
                * ret.rate_multiplier * member)
        a, b = ret.a, ret.b
    exposure = rate * spec.horizon_days / 2
    p = special.betaincinv(a, b, (np.arange(64) + 0.5) / 64)
    return 1.0 + float(np.mean(exposure / (1.0 + exposure * np.minimum(1.0, p * churn))))


def estimated_work_seconds(spec: ModelSpec, replications: int | None = None,
                           outputs: bool = True) -> float:
    """Rough seconds of one core that running ``spec`` takes, outputs included (without
    ``outputs``: the engine and each replication's metrics only, as in a study).

    Per replication: the engine (customers who become aware, times the prospect-stage
    visits each makes; purchases and renewals; the fast engine's ticks), the per-customer
    and per-day tables, and the cohort curves, whose points grow with the square of the
    horizon in months; per run, the summary and the figures. The aware share counts channel
    reach only (word of mouth and referrals add a little), so the estimate is rough: within
    a factor of about 2 of the CPU time of a measured run (``WORK_SECONDS``).
    """
    n = spec.replications if replications is None else replications
    w = WORK_SECONDS
    days = math.ceil(spec.horizon_days)
    hazard = float(spec.reach_per_day[:days].sum())  # channel reach over the horizon
    aware = spec.market_size * -math.expm1(-hazard)
    visits, p_checkout = _journey_visits_and_checkout(spec)
    co = spec.checkout
    buyers = aware * p_checkout * (1.0 - co.abandon_prob * (1.0 - co.recovery_prob))
    purchases = buyers * _purchases_per_buyer(spec) * (1.0 + spec.support.issue_prob)
    if spec.engine == "fast":
        per_tick = w["fast_per_tick"] + w["fast_per_tick_busy"] * min(1.0, aware / 2000)
        engine = (math.ceil(spec.horizon_days / spec.tick_days) * per_tick
                  + aware * (w["fast_per_aware"] + visits * w["fast_per_visit"])
                  + purchases * w["fast_per_purchase"])
    else:
        engine = (aware * (w["agent_per_aware"] + visits * w["agent_per_visit"])
                  + purchases * w["agent_per_purchase"])
    # a cohort curve for every month up to the last first purchase, each to the horizon: the
    # points grow with the square of the horizon in months (the whole triangle, an upper
    # bound: a late first purchase, by word of mouth or a long journey, is enough)
    months = math.ceil(days / DAYS_PER_MONTH)
    points = months * (months + 1) / 2
    tables = (aware * w["per_customer_row"] + days * w["per_day"]
              + points * w["per_cohort_point"])
    if not outputs:
        return n * (w["per_replication"] + engine)
    return w["per_run"] + n * (w["per_replication"] + engine + tables)


def extend(exp: ExperimentResult, more: Sequence[int], n_jobs: int = 1) -> ExperimentResult:
    """The experiment with replications ``more`` added."""
    done = run_replications(exp.spec, more, n_jobs)
    return ExperimentResult(exp.spec, exp.results + [r for r, _ in done],
                            exp.metrics + [m for _, m in done])

"""Replications of one scenario: spec -> engine runs -> per-replication metrics."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.engine import OUTCOMES, TICKET_OUTCOMES, SimulationResult, simulate
from sim.metrics import customer_values, daily_table, replication_metrics
from sim.spec import ModelSpec

__all__ = ["ExperimentResult", "extend", "run_experiment", "run_replications"]


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


def run_replications(spec: ModelSpec, replications: Sequence[int],
                     n_jobs: int = 1) -> list[tuple[SimulationResult, dict[str, float]]]:
    """Run the given replications of ``spec``, in ``n_jobs`` worker processes.

    Replication i always uses the streams of (seed, i), so the results are the same, and in
    the same order, whatever ``n_jobs`` and however the workers are scheduled.
    """
    if n_jobs <= 1 or len(replications) <= 1:
        return [_replicate(spec, i) for i in replications]
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(replications))) as pool:
        return list(pool.map(_replicate, [spec] * len(replications), replications))


def run_experiment(spec: ModelSpec, replications: Sequence[int] | None = None,
                   n_jobs: int | None = None) -> ExperimentResult:
    """Run replications 0 .. ``spec.replications`` - 1 (or those given) of ``spec``."""
    reps = range(spec.replications) if replications is None else replications
    done = run_replications(spec, reps, spec.n_jobs if n_jobs is None else n_jobs)
    return ExperimentResult(spec, [r for r, _ in done], [m for _, m in done])


def extend(exp: ExperimentResult, more: Sequence[int], n_jobs: int = 1) -> ExperimentResult:
    """The experiment with replications ``more`` added."""
    done = run_replications(exp.spec, more, n_jobs)
    return ExperimentResult(exp.spec, exp.results + [r for r, _ in done],
                            exp.metrics + [m for _, m in done])

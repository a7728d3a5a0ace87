"""The analyses' designs: which points a PSA, a tornado and Sobol indices run, and their
results together.

- PSA: ``draws`` points from the assumptions' joint distribution (scrambled Sobol' points
  by default), every option on every draw, draw d on its own streams.
- Tornado: the base point (every key at its config value) and, per assumption, the point
  with it at its low and at its high percentile, every option of interest on the same
  streams (replications 0 .. R - 1) at every point.
- Sobol indices: Saltelli's design (``scipy.stats.sobol_indices``) on the same shared
  streams, of one option's difference from the reference; the simulation noise's share of
  the output's variance is measured on extra replications of the base point.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.decide import analysis
from sim.decide.study import Study, StudyError, run_study
from sim.model.uncertainty import Uncertainty

__all__ = ["PsaResult", "run_psa", "run_sobol", "run_tornado", "summarise_psa", "tornado_design"]


@dataclass
class PsaResult:
    """A probabilistic sensitivity analysis and what was derived from it."""

    runs: pd.DataFrame  # one row per run: point, option, replication, the study metrics
    points: pd.DataFrame  # one row per draw (indexed by point): the draw-unit values
    reference: str
    metric: str
    summary: pd.DataFrame
    acceptability: pd.DataFrame
    evppi: pd.DataFrame
    evpi: float
    noise_share: float  # of the best option's difference; NaN with one replication a draw
    settings: dict[str, Any] = field(default_factory=dict)
    tornado: pd.DataFrame | None = None
    tornado_runs: pd.DataFrame | None = None
    sobol: pd.DataFrame | None = None

    @property
    def assumptions(self) -> list[str]:
        """Every assumption's distribution, in words."""
        return list(self.settings.get("assumptions", []))

    @property
    def recommended(self) -> str:
        return str(self.summary.loc[self.summary["recommended"], "option"].iloc[0])

    @property
    def challenger(self) -> str:
        """The option of the tornado and Sobol indices: the best by expected value, or the
        second best when the reference is best."""
        order = [o for o in self.summary["option"] if o != self.reference]
        return order[0] if order else self.reference


def _check(configs: Mapping[str, Any], reference: str, metric: str) -> None:
    if reference not in configs:
        raise StudyError(f"psa.reference={reference!r}: not an option of this analysis; "
                         f"the options are {', '.join(configs)}")
    if len(configs) < 2:
        raise StudyError("a PSA compares options: name the scenarios with compare=[...] "
                         "(they all run against the baseline on every draw)")
    from sim.decide.study import STUDY_METRICS

    if metric not in STUDY_METRICS:
        raise StudyError(f"compare_rank={metric!r}: a PSA decides by one of "
                         f"{', '.join(STUDY_METRICS)}")


def run_psa(configs: Mapping[str, Mapping[str, Any]], uncertainty: Uncertainty, draws: int,
            seed: int, replications: int = 1, design: str = "sobol",
            reference: str = "baseline", metric: str = "npv",
            groups: Mapping[str, Sequence[str]] | None = None, n_jobs: int = 1,
            journal: Path | None = None, block: int = 0, blocks: int = 1,
            progress: bool = True) -> PsaResult:
    """Draw ``draws`` points, run every option on each (``replications`` each), and
    summarise: expected values, probability best, expected loss, acceptability, EVPI and
    EVPPI per assumption (and per group). With ``blocks`` > 1 only the draws d with
    d % blocks == block run (their analysis is that of the block alone until merged)."""
    _check(configs, reference, metric)
    unknown = [m for ms in (groups or {}).values() for m in ms if m not in uncertainty.names]
    if unknown:
        raise StudyError(f"psa.groups: {unknown[0]!r} is not an uncertain assumption; they "
                         f"are {', '.join(uncertainty.names) or 'none'}")
    all_points = uncertainty.sample(draws, seed, design)
    ids = tuple(d for d in range(draws) if d % blocks == block)
    study = Study(configs, uncertainty, all_points[list(ids)], replications, seed,
                  "per_point", ids)
    runs = run_study(study, n_jobs, journal, progress, label="psa")
    points = pd.DataFrame(all_points[list(ids)], index=pd.Index(ids, name="point"),
                          columns=uncertainty.names)
    settings = {"draws": draws, "replications_per_draw": replications, "design": design,
                "seed": seed, "reference": reference, "metric": metric, "block": block,
                "blocks": blocks, "points_run": len(ids),
                "assumptions": uncertainty.describe(), "groups": dict(groups or {})}
    return summarise_psa(runs, points, settings)


def summarise_psa(runs: pd.DataFrame, points: pd.DataFrame, settings: Mapping[str, Any]
                  ) -> PsaResult:
    """The analysis of a PSA's runs (one row per run, as ``run_study`` returns them) and
    draws (indexed by point): of one study, or of the blocks of a split study merged.
    ``settings`` holds at least ``reference``, ``metric`` and ``groups``."""
    reference, metric = str(settings["reference"]), str(settings["metric"])
    nb = analysis.net_benefit(runs, metric)
    summary = analysis.psa_summary(nb, reference)
    cost = analysis.run_costs(runs)
    top = max(float(summary["difference_high"].max()), 0.0)
    extra = (cost.to_numpy() - cost[[reference]].to_numpy()).clip(0).mean(axis=0).max()
    hurdle = 3.0 if extra <= 0 else max(3.0, min(50.0, 2 * top / extra))
    accept = analysis.acceptability(nb, cost, reference, np.linspace(0, hurdle, 41))
    result = PsaResult(
        runs=runs, points=points, reference=reference, metric=metric, summary=summary,
        acceptability=accept,
        evppi=analysis.evppi_table(nb, points, reference, settings.get("groups") or {}),
        evpi=analysis.evpi(nb), noise_share=math.nan, settings=dict(settings))
    if nb.shape[1] > 1:
        result.noise_share = analysis.noise_share(runs, metric, result.challenger, reference)
    return result


def _marginals(u: Uncertainty) -> list[tuple[str, str | None, Any]]:
    """(name, option, object with ppf) of every assumption, in the order of ``u.names``,
    joint ones by their lognormal margins."""
    out: list[tuple[str, str | None, Any]] = [(a.name, a.option, a) for a in u.assumptions]
    for j in u.joints:
        sd = np.sqrt(np.diag(np.asarray(j.log_cov)))
        for name, m, s in zip(j.names, j.median, sd, strict=True):
            out.append((name, j.option, stats.lognorm(s, scale=m) if s > 0 else _Point(m)))
    return out


@dataclass(frozen=True)
class _Point:
    value: float

    def ppf(self, u: Any) -> Any:
        return np.full(np.shape(u), self.value)


def tornado_design(u: Uncertainty, low: float = 10.0, high: float = 90.0,
                   options: Sequence[str] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The tornado's points (NaN: the key keeps its config value) and their description:
    ``point``, ``assumption``, ``end`` (base, low, high), ``value`` (draw units). With
    ``options``, a scenario's own assumptions only for those options (another scenario's
    cannot move them)."""
    names = u.names
    rows = [np.full(len(names), np.nan)]
    design = [{"point": 0, "assumption": None, "end": "base", "value": math.nan}]
    for j, (name, option, dist) in enumerate(_marginals(u)):
        if options is not None and option is not None and option not in options:
            continue
        for end, q in (("low", low), ("high", high)):
            value = float(np.asarray(dist.ppf(np.array([q / 100.0])))[0])
            row = np.full(len(names), np.nan)
            row[j] = value
            rows.append(row)
            design.append({"point": len(design), "assumption": name, "end": end,
                           "value": value})
    return np.array(rows), pd.DataFrame(design)


def run_tornado(configs: Mapping[str, Mapping[str, Any]], uncertainty: Uncertainty,
                option: str, reference: str, seed: int, replications: int,
                metric: str = "npv", low: float = 10.0, high: float = 90.0, n_jobs: int = 1,
                journal: Path | None = None, progress: bool = True
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tornado of ``option`` - ``reference`` and its runs (the two options only, on
    shared streams at every point)."""
    pair = {k: configs[k] for k in dict.fromkeys(["baseline", reference, option])}
    points, design = tornado_design(uncertainty, low, high, list(pair))
    runs = run_study(Study(pair, uncertainty, points, replications, seed, "shared"),
                     n_jobs, journal, progress, label="tornado")
    return analysis.tornado(runs, design, option, reference, metric), runs


def run_sobol(configs: Mapping[str, Mapping[str, Any]], uncertainty: Uncertainty,
              option: str, reference: str, seed: int, n: int, replications: int = 1,
              metric: str = "npv", n_jobs: int = 1, noise_replications: int = 10,
              progress: bool = True) -> pd.DataFrame:
    """First-order and total Sobol indices of ``option`` - ``reference`` (``metric``, the
    mean over ``replications`` shared streams) over the independent assumptions, with 95%
    bootstrap intervals; one row per assumption, largest total index first. The row
    ``simulation noise`` gives the noise's share of the output's variance (the variance of
    the difference over ``noise_replications`` independent replications of the base point,
    over the output's variance across the design)."""
    if uncertainty.joints:
        raise StudyError("Sobol indices need independent assumptions; a fitted joint "
                         "distribution (joint_lognormal) is correlated: use the EVPPI (the "
                         "PSA) to rank those")
    if n < 2 or n & (n - 1):
        raise StudyError(f"psa.sobol_indices={n}: a power of 2 (e.g. 64, 128, 256)")
    pair = {k: configs[k] for k in dict.fromkeys(["baseline", reference, option])}
    names = uncertainty.names

    outputs: list[np.ndarray] = []

    def func(x: np.ndarray) -> np.ndarray:
        study = Study(pair, uncertainty, x.T, replications, seed, "shared")
        runs = run_study(study, n_jobs, None, progress, label="sobol")
        nb = analysis.net_benefit(runs, metric)
        outputs.append(np.array(nb[option] - nb[reference], dtype=float))
        return outputs[-1][None, :]

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x50B,)))
    res = stats.sobol_indices(func=func, n=n, dists=list(uncertainty.assumptions), rng=rng)
    with warnings.catch_warnings():  # an index that is exactly 0 on every resample
        warnings.simplefilter("ignore")
        boot = res.bootstrap(confidence_level=0.95, n_resamples=999)
    # every point of the design is a draw from the assumptions' distribution: the output's
    # variance across them, against the noise's
    noise = _noise_variance(pair, uncertainty, option, reference, seed, replications,
                            noise_replications, metric, n_jobs, progress)
    total_var = float(np.var(np.concatenate(outputs), ddof=1))
    def row(x: Any, fill: Any = None) -> np.ndarray:  # one output: scipy returns (d,) arrays
        out = np.atleast_2d(np.asarray(x, dtype=float))[0]
        # every resample gave the same index (e.g. 0 for an assumption that does not
        # enter): the bootstrap interval is that value
        return out if fill is None else np.where(np.isnan(out), row(fill), out)

    first, total = boot.first_order.confidence_interval, boot.total_order.confidence_interval
    table = pd.DataFrame({
        "assumption": names,
        "first_order": row(res.first_order), "first_low": row(first.low, res.first_order),
        "first_high": row(first.high, res.first_order),
        "total_order": row(res.total_order), "total_low": row(total.low, res.total_order),
        "total_high": row(total.high, res.total_order)})
    table = table.sort_values("total_order", ascending=False, kind="stable")
    share = noise / total_var if total_var > 0 else math.nan
    noise_row = pd.DataFrame([{"assumption": "simulation noise", "first_order": share,
                               "total_order": share}])
    table = pd.concat([table, noise_row], ignore_index=True)
    table["option"], table["reference"], table["metric"], table["base_draws"] = (
        option, reference, metric, n)
    return table


def _noise_variance(pair: Mapping[str, Mapping[str, Any]], u: Uncertainty, option: str,
                    reference: str, seed: int, replications: int, k: int, metric: str,
                    n_jobs: int, progress: bool) -> float:
    """The variance of the output (the mean over ``replications``) from simulation noise
    alone: at the base point, over ``k`` independent groups of replications."""
    base = np.full((k, len(u.names)), np.nan)
    study = Study(pair, u, base, replications, seed, "per_point",
                  tuple(range(1_000_000, 1_000_000 + k)))
    runs = run_study(study, n_jobs, None, progress, label="noise")
    nb = analysis.net_benefit(runs, metric)
    return float((nb[option] - nb[reference]).var(ddof=1))

"""The finance view across replications: unit economics, LTV by group, cohort curves and
the payback curve, each with t intervals (see ``sim.measure.stats``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sim.measure.experiment import ExperimentResult
from sim.measure.metrics import (
    DAYS_PER_MONTH,
    FINANCE_CONVENTION,
    PNL_COLUMNS,
    cohort_curves,
    cohort_grid,
    ltv_groups,
    metric_range,
    monthly_pnl,
    payback_curve,
)
from sim.measure.stats import Estimate, estimate, metric_values, paired
from sim.model.spec import ModelSpec

__all__ = ["FINANCE_METRICS", "cohort_table", "finance_table", "ltv_comparison", "ltv_table",
           "payback_table", "pnl_table"]

# ------------------------------------------------------------------ the finance view
# finance.csv column: headline metric (one value per replication)
FINANCE_METRICS = {
    "customers": "purchases",
    "ltv_mean": "ltv.mean",
    "ltv_p10": "ltv.p10",
    "ltv_p50": "ltv.p50",
    "ltv_p90": "ltv.p90",
    "clv_mean": "clv.mean",
    "cac": "cac",
    "ltv_to_cac": "ltv_to_cac",
    "payback_days": "payback_days",
    "paid_back_share": "paid_back",
    "npv": "npv",
    "npv_clv": "npv_clv",
    "revenue": "revenue",
    "gross_margin": "gross_margin",
    "acquisition_spend": "spend.total",
    "profit": "profit",
}
# with an installed base: the new customers' and the base's parts of the totals
BASE_FINANCE_METRICS = {
    "new_npv": "new.npv",
    "new_revenue": "new.revenue",
    "base_customers": "base.customers",
    "base_active_at_horizon": "base.active",
    "base_value_mean": "base.ltv.mean",
    "base_npv": "base.npv",
    "base_revenue": "base.revenue",
}


def _with_ci(out: dict[str, object], name: str, values: np.ndarray, level: float = 0.95,
             within: tuple[float, float] = (-math.inf, math.inf)) -> None:
    """Columns ``name`` (mean across replications), ``name_ci_low``, ``name_ci_high``
    (t interval cut at ``within``, see ``estimate``) from ``values`` of shape
    (replications, rows)."""
    est = [estimate(values[:, j], level, within) for j in range(values.shape[1])]
    out[name] = [e.mean for e in est]
    out[f"{name}_ci_low"] = [e.low for e in est]
    out[f"{name}_ci_high"] = [e.high for e in est]


def _mean(values: np.ndarray) -> np.ndarray:
    """Mean across replications (axis 0), NaNs left out; NaN where every value is."""
    ok = ~np.isnan(values)
    total = np.where(ok, values, 0.0).sum(axis=0)
    n = ok.sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _per_customer(total: np.ndarray, customers: np.ndarray) -> np.ndarray:
    return np.where(customers > 0, total / np.where(customers > 0, customers, 1), np.nan)


def _stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-replication tables (same rows) as (replications, rows) arrays per column."""
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def ltv_table(exp: ExperimentResult, level: float = 0.95,
              groups: list[dict[str, np.ndarray]] | None = None) -> pd.DataFrame:
    """LTV by acquisition cohort, segment and source channel, across replications.

    One row per group of ``sim.measure.metrics.ltv_groups`` (``dimension`` total, cohort, segment,
    channel; ``group`` its label). Every value is the mean across replications of the
    replication's value; ``*_ci_low`` / ``*_ci_high`` its t interval (``estimate``).
    Totals per replication (``customers``, ``ltv_total``, ``margin_total``,
    ``revenue_total``, ``spend``) add up over the groups of a dimension to the run's totals;
    per-customer values (``ltv_mean``, the percentiles, ``discounted_margin_per_customer``,
    ``retention_costs_per_customer``) are the replication's group means, averaged over the
    replications in which the group had customers (``n_replications``). The ``total`` row
    repeats the headline metrics (``ltv.mean``, ``ltv.p10`` ... ``cac``, ``ltv_to_cac``).
    ``groups``: the replications' ``ltv_groups``, when the caller has them already.
    """
    reps = groups if groups is not None else [ltv_groups(r, exp.spec) for r in exp.results]
    x = _stack(reps)
    first = reps[0]
    cohort = first["dimension"] == "cohort"
    month = np.where(cohort, first["acquisition_month"], 0)
    grid = cohort_grid(exp.spec.horizon_days)
    last = np.zeros(int(month.max()) + 1, dtype=np.int64)  # last point of each cohort curve
    np.maximum.at(last, grid["acquisition_month"], grid["months_since_acquisition"])
    start = month * DAYS_PER_MONTH
    out: dict[str, object] = {
        "dimension": first["dimension"],
        "group": first["group"],
        "acquisition_month": pd.array(np.where(cohort, month, 0), dtype="Int64"),
        "cohort_start_day": np.where(cohort, start, np.nan),
        "cohort_end_day": np.where(cohort, np.minimum(start + DAYS_PER_MONTH,
                                                      exp.spec.horizon_days), np.nan),
        "months_observed": pd.array(last[month], dtype="Int64"),
    }
    for key in ("acquisition_month", "months_observed"):
        out[key][~cohort] = pd.NA
    n = x["customers"]
    _with_ci(out, "customers", n, level, (0.0, math.inf))
    _with_ci(out, "ltv_mean", x["ltv_mean"], level)
    for q in (10, 50, 90):
        out[f"ltv_p{q}"] = _mean(x[f"ltv_p{q}"])
    out["ltv_total"] = _mean(x["ltv_sum"])
    _with_ci(out, "clv_mean", x["clv_mean"], level)
    out["clv_total"] = _mean(x["clv_sum"])
    out["discounted_margin_per_customer"] = _mean(_per_customer(x["discounted_margin_sum"], n))
    out["retention_costs_per_customer"] = _mean(_per_customer(x["retention_costs_sum"], n))
    out["margin_total"] = _mean(x["margin_sum"])
    out["revenue_total"] = _mean(x["revenue_sum"])
    out["spend"] = _mean(x["spend"])
    _with_ci(out, "cac", x["cac"], level, metric_range("cac"))
    _with_ci(out, "ltv_to_cac", x["ltv_to_cac"], level)
    out["n_replications"] = (~np.isnan(x["ltv_mean"])).sum(axis=0)
    return pd.DataFrame(out)


def ltv_comparison(experiments: Mapping[str, ExperimentResult], baseline: str = "baseline",
                   level: float = 0.95) -> pd.DataFrame:
    """``ltv.csv`` of a comparison: each scenario's ``ltv_table`` (column ``scenario``
    first, the baseline's rows first) with the paired differences from the baseline.

    For every group (total, cohort, segment, channel) the scenario has in common with the
    baseline, replication by replication (common random numbers):
    ``ltv_mean_difference`` (per-customer LTV; replications where either side has no
    customer in the group are left out) and ``ltv_total_difference`` (the group's summed
    LTV, which moves with both the number of customers and their value; a group without
    customers counts 0), each with its t interval. Summed over the groups of a dimension,
    ``ltv_total_difference`` is the total's. NaN for a group the baseline lacks.
    """
    groups = {k: [ltv_groups(r, e.spec) for r in e.results] for k, e in experiments.items()}
    base = _stack(groups[baseline])
    base_row = {key: j for j, key in enumerate(zip(base["dimension"][0], base["group"][0],
                                                   strict=True))}
    order = [baseline, *(k for k in experiments if k != baseline)]
    frames = []
    for name in order:
        table = ltv_table(experiments[name], level, groups[name])
        x = _stack(groups[name])
        if x["ltv_mean"].shape[0] != base["ltv_mean"].shape[0]:
            raise ValueError(f"paired comparison needs the same replications: {name!r} has "
                             f"{x['ltv_mean'].shape[0]}, {baseline!r} "
                             f"{base['ltv_mean'].shape[0]}")
        rows = [base_row.get(key, -1) for key in zip(x["dimension"][0], x["group"][0],
                                                       strict=True)]
        diffs: dict[str, list[float]] = {}
        for column, metric, empty in (("ltv_mean", "ltv_mean", np.nan),
                                      ("ltv_total", "ltv_sum", 0.0)):
            est = [estimate(np.nan_to_num(x[metric][:, i], nan=empty)
                            - np.nan_to_num(base[metric][:, j], nan=empty), level)
                   if j >= 0 else Estimate(np.nan, np.nan, 0, np.nan, np.nan, np.nan)
                   for i, j in enumerate(rows)]
            diffs[f"{column}_difference"] = [e.mean for e in est]
            diffs[f"{column}_difference_ci_low"] = [e.low for e in est]
            diffs[f"{column}_difference_ci_high"] = [e.high for e in est]
        frames.append(pd.concat([pd.DataFrame({"scenario": name}, index=table.index), table,
                                 pd.DataFrame(diffs, index=table.index)], axis=1))
    return pd.concat(frames, ignore_index=True)


def cohort_table(exp: ExperimentResult, level: float = 0.95) -> pd.DataFrame:
    """Cumulative value curves of the acquisition cohorts, censored, across replications.

    One row per point of ``sim.measure.metrics.cohort_grid``: a cohort (``acquisition_month``, its
    first purchases fell in [``cohort_start_day``, ``cohort_end_day``)) at
    ``months_since_acquisition`` (age ``age_days``). A cohort's curve stops at the last
    month every one of its customers could reach by the horizon, so each point averages
    over the whole cohort. Columns: ``customers`` (the cohort's size, mean per
    replication), ``active_share`` (of the cohort, still active at that age),
    ``discounted_margin_per_customer`` and ``ltv_to_date_per_customer`` (cumulative since
    the first purchase and discounted to it; the latter net of retention costs), each the
    mean across replications with its t interval (``*_ci_low``, ``*_ci_high``), and
    ``n_replications`` in which the cohort had customers.
    """
    x = _stack([cohort_curves(r, exp.spec) for r in exp.results])
    n = x["customers"].astype(float)
    out: dict[str, object] = {k: x[k][0] for k in (
        "acquisition_month", "cohort_start_day", "cohort_end_day",
        "months_since_acquisition", "age_days")}
    out["customers"] = n.mean(axis=0)
    _with_ci(out, "active_share", _per_customer(x["active"], n), level, (0.0, 1.0))
    _with_ci(out, "discounted_margin_per_customer", _per_customer(x["discounted_margin"], n),
             level)
    _with_ci(out, "ltv_to_date_per_customer", _per_customer(x["ltv_to_date"], n), level)
    out["n_replications"] = (n > 0).sum(axis=0)
    return pd.DataFrame(out)


def payback_table(exp: ExperimentResult, level: float = 0.95) -> pd.DataFrame:
    """The payback curve across replications: per whole age (days since the first
    purchase), the customers observable that long (``customers_observable``, mean per
    replication: the number at risk), their mean discounted net value
    (``ltv_to_date_per_customer``, with its t interval) and the run's CAC (constant, with
    its interval). ``payback_days`` (a headline metric) is, in each replication, the first
    age at which the replication's curve reaches its CAC.
    """
    x = _stack([payback_curve(r, exp.spec) for r in exp.results])
    out: dict[str, object] = {"age_days": x["age_days"][0],
                              "customers_observable": x["customers_observable"].mean(axis=0)}
    _with_ci(out, "ltv_to_date_per_customer", x["ltv_to_date_per_customer"], level)
    cac = estimate(exp.metric("cac"), level, metric_range("cac"))
    out |= {"cac": cac.mean, "cac_ci_low": cac.low, "cac_ci_high": cac.high}
    out["n_replications"] = (~np.isnan(x["ltv_to_date_per_customer"])).sum(axis=0)
    return pd.DataFrame(out)


def finance_table(per_replication: Mapping[str, Sequence[Mapping[str, float]]],
                  specs: Mapping[str, ModelSpec | Mapping[str, float]] | None = None,
                  baseline: str = "baseline",
                  level: float = 0.95) -> pd.DataFrame:
    """The finance summary: one row per scenario, its unit economics with t intervals.

    Parameters
    ----------
    per_replication : scenario name -> the per-replication metrics of its run.
    specs : scenario name -> its spec, or a mapping with ``horizon_days`` and
        ``annual_discount_rate`` (such as a run's ``metrics.json``), for those two
        columns (NaN where not given).
    baseline : with more than one scenario and this one among them, add the paired
        differences from it (``ltv_mean_difference``, ``npv_difference``, each with its
        interval; common random numbers, as in ``compare``).

    Columns: ``scenario``, ``replications``, ``horizon_days``, ``annual_discount_rate``,
    ``discounting`` (the convention, in words), then for each column of
    ``FINANCE_METRICS`` its mean across replications and ``*_ci_low``, ``*_ci_high``; with
    an installed base also those of ``BASE_FINANCE_METRICS`` (and the differences of
    ``new_npv`` and ``base_npv``): ``npv``, ``revenue`` and ``profit`` are then the whole
    business's, the customer and LTV columns the new customers'.
    ``payback_days`` averages the replications that paid back within the horizon;
    ``paid_back_share`` is their share.
    """
    specs = specs or {}
    rows = []
    for name, metrics in per_replication.items():
        spec = specs.get(name)
        if isinstance(spec, ModelSpec):
            terms = (spec.horizon_days, math.expm1(spec.discount_rate_per_day * 365))
        else:
            terms = tuple(float(spec[k]) if spec and k in spec else float("nan")
                          for k in ("horizon_days", "annual_discount_rate"))
        row: dict[str, object] = {
            "scenario": name,
            "replications": len(metrics),
            "horizon_days": terms[0],
            "annual_discount_rate": terms[1],
            "discounting": FINANCE_CONVENTION,
        }
        base = "base.npv" in metrics[0]
        for column, metric in (FINANCE_METRICS | (BASE_FINANCE_METRICS if base else {})).items():
            e = estimate(metric_values(metrics, metric), level, metric_range(metric))
            row |= {column: e.mean, f"{column}_ci_low": e.low, f"{column}_ci_high": e.high}
        if len(per_replication) > 1 and baseline in per_replication:
            differences = [("ltv_mean", "ltv.mean"), ("clv_mean", "clv.mean"), ("npv", "npv"),
                           ("npv_clv", "npv_clv")]
            if base and "base.npv" in per_replication[baseline][0]:
                differences += [("new_npv", "new.npv"), ("base_npv", "base.npv")]
            for column, metric in differences:
                d = paired(per_replication[baseline], metrics, metric)
                row |= {f"{column}_difference": d["difference"],
                        f"{column}_difference_ci_low": d["difference_low"],
                        f"{column}_difference_ci_high": d["difference_high"]}
        rows.append(row)
    return pd.DataFrame(rows)


def pnl_table(exp: ExperimentResult, level: float = 0.95) -> pd.DataFrame:
    """The monthly profit and loss (``sim.measure.metrics.monthly_pnl``), across
    replications: one row per month of the run, each column the mean over replications
    (undiscounted currency units; new customers and the installed base apart), ``profit``
    with its t interval, and ``cumulative_profit`` (the running sum of the mean profit)."""
    x = _stack([monthly_pnl(r, exp.spec) for r in exp.results])
    first = monthly_pnl(exp.results[0], exp.spec)
    out: dict[str, object] = {k: first[k] for k in ("month", "start_day", "end_day")}
    for column in PNL_COLUMNS:
        out[column] = _mean(x[column])
    _with_ci(out, "profit", x["profit"], level)
    out["cumulative_profit"] = np.cumsum(out["profit"])
    return pd.DataFrame(out)

"""Decisions under uncertainty: pure functions of a study's table.

The net benefit of an option at a point is its metric (NPV by default) averaged over the
point's replications. With the points drawn from the assumptions' distributions (a PSA),
the spread of net benefits across points covers the assumptions' uncertainty and the
simulation noise together; the expected values average both out.

- ``psa_summary``: per option the expected value with the 2.5-97.5 percentile range across
  draws, the difference from a reference option, the probability of beating it and of being
  best, the expected opportunity loss, and the option the expected values recommend.
- ``acceptability``: the probability each option is best when an option must return at least
  a required amount per unit of its extra cost.
- ``evpi`` and ``evppi``: the expected value of perfect information, of all assumptions and
  of one or a group (Strong and Oakley's regression method: the net benefit differences are
  regressed on the assumption(s); a penalised regression spline with the smoothing chosen by
  generalised cross-validation for one assumption, a quadratic response surface for a group;
  bootstrap standard errors).
- ``tornado``: one-way sensitivity from a study with shared streams.
- ``noise_share``: the share of the variance across draws that is simulation noise (from
  the replications within each draw).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import interpolate

from sim.measure.stats import COST_KEYS, estimate

__all__ = ["acceptability", "evpi", "evppi", "evppi_table", "metrics_table", "net_benefit",
           "noise_share", "psa_summary", "run_costs", "tornado", "unit_normal_loss"]


def net_benefit(runs: pd.DataFrame, metric: str = "npv") -> pd.DataFrame:
    """Points x options: ``metric`` averaged over each point's replications (columns in the
    order the options first appear)."""
    order = list(dict.fromkeys(runs["option"]))
    nb = runs.pivot_table(index="point", columns="option", values=metric, aggfunc="mean")
    return nb[order]


def run_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """Points x options: every cost of the run (``stats.COST_KEYS``, undiscounted), averaged
    over each point's replications."""
    cost = runs.assign(_cost=runs[list(COST_KEYS)].sum(axis=1))
    return net_benefit(cost, "_cost")


def psa_summary(nb: pd.DataFrame, reference: str = "baseline") -> pd.DataFrame:
    """One row per option (best expected value first).

    Columns: ``expected`` (mean across draws) with ``expected_se`` (its Monte Carlo
    standard error), ``low``/``high`` (2.5 and 97.5 percentiles across draws: the range of
    outcomes under the assumptions' uncertainty and the simulation noise), ``difference``
    from the reference with ``difference_low``/``difference_high`` (percentiles) and
    ``difference_se``, ``prob_beats_reference``, ``prob_best`` with ``prob_best_se``
    (binomial), ``expected_loss`` (the mean shortfall from the best option of each draw:
    what choosing this option costs, on average, against knowing the truth), ``rank`` by
    expected value and ``recommended`` (the option with the highest expected value).
    """
    if reference not in nb.columns:
        raise KeyError(reference)
    values = nb.to_numpy(dtype=float)
    n = values.shape[0]
    best = values.max(axis=1, keepdims=True)
    winner = values.argmax(axis=1)
    ref = nb[reference].to_numpy(dtype=float)
    rows = []
    for j, name in enumerate(nb.columns):
        v = values[:, j]
        d = v - ref
        p_best = float(np.mean(winner == j))
        rows.append({
            "option": name,
            "expected": float(v.mean()),
            "expected_se": float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
            "low": float(np.percentile(v, 2.5)),
            "high": float(np.percentile(v, 97.5)),
            "difference": float(d.mean()),
            "difference_se": float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
            "difference_low": float(np.percentile(d, 2.5)),
            "difference_high": float(np.percentile(d, 97.5)),
            "prob_beats_reference": float(np.mean(d > 0)) if name != reference else math.nan,
            "prob_best": p_best,
            "prob_best_se": math.sqrt(p_best * (1 - p_best) / n),
            "expected_loss": float((best[:, 0] - v).mean()),
        })
    table = pd.DataFrame(rows).sort_values("expected", ascending=False, kind="stable")
    table.insert(1, "rank", np.arange(1, len(table) + 1))
    table["recommended"] = table["rank"] == 1
    table["draws"] = n
    return table.reset_index(drop=True)


def metrics_table(runs: pd.DataFrame, reference: str = "baseline",
                  metrics: Mapping[str, bool] | None = None) -> pd.DataFrame:
    """The headline metrics under the PSA: one row per option and metric (``stats.HEADLINE``
    by default, a metric to whether higher is better): ``expected`` (mean over the draws),
    ``low``/``high`` (2.5 and 97.5 percentiles across draws), the ``difference`` from the
    reference with its percentiles, and ``prob_better``, the share of draws in which the
    option did better than the reference on that metric (NaN for the reference)."""
    from sim.measure.stats import HEADLINE

    rows = []
    for metric, higher in (metrics or HEADLINE).items():
        nb = net_benefit(runs, metric)
        ref = nb[reference].to_numpy(float)
        for name in nb.columns:
            v = nb[name].to_numpy(float)
            d = v - ref
            ok = ~np.isnan(d)
            better = (d[ok] > 0) if higher else (d[ok] < 0)
            rows.append({
                "option": name, "metric": metric,
                "expected": float(np.nanmean(v)) if (~np.isnan(v)).any() else math.nan,
                "low": float(np.nanpercentile(v, 2.5)) if (~np.isnan(v)).any() else math.nan,
                "high": float(np.nanpercentile(v, 97.5)) if (~np.isnan(v)).any() else math.nan,
                "difference": float(d[ok].mean()) if ok.any() else math.nan,
                "difference_low": float(np.percentile(d[ok], 2.5)) if ok.any() else math.nan,
                "difference_high": float(np.percentile(d[ok], 97.5)) if ok.any() else math.nan,
                "prob_better": (float(better.mean()) if name != reference and ok.any()
                                else math.nan),
                "draws": int(ok.sum())})
    return pd.DataFrame(rows)


def acceptability(nb: pd.DataFrame, cost: pd.DataFrame, reference: str = "baseline",
                  returns: Sequence[float] | None = None) -> pd.DataFrame:
    """The probability each option is best when an option must return at least ``r`` per
    unit of its extra cost over the reference: option i scores
    ``NB_i - NB_ref - r * max(cost_i - cost_ref, 0)``, so r = 0 is the plain comparison of
    net benefits and a larger r favours the options that need less money. One row per
    required return and option: ``required_return``, ``option``, ``prob_best``."""
    extra = np.maximum(cost.to_numpy(float) - cost[[reference]].to_numpy(float), 0.0)
    diff = nb.to_numpy(float) - nb[[reference]].to_numpy(float)
    if returns is None:
        returns = np.linspace(0.0, 3.0, 31)
    rows = []
    for r in returns:
        score = diff - r * extra
        winner = score.argmax(axis=1)
        for j, name in enumerate(nb.columns):
            rows.append({"required_return": float(r), "option": name,
                         "prob_best": float(np.mean(winner == j))})
    return pd.DataFrame(rows)


def unit_normal_loss(mu: float, sigma: float) -> float:
    """E[max(D, 0)] - max(E D, 0) for D ~ Normal(mu, sigma^2): the EVPI of a choice between
    two options whose net benefit difference is D."""
    if sigma == 0:
        return 0.0
    from scipy import stats

    z = abs(mu) / sigma
    return float(sigma * (stats.norm.pdf(z) - z * stats.norm.sf(z)))


def evpi(nb: pd.DataFrame) -> float:
    """E[max_i NB_i] - max_i E[NB_i] over the draws (a draw's simulation noise is part of
    its NB: with few replications per draw this overstates the EVPI somewhat)."""
    v = nb.to_numpy(float)
    return max(float(v.max(axis=1).mean() - v.mean(axis=0).max()), 0.0)


SEGMENTS = 10  # the P-spline's basis: cubic B-splines on 10 equal segments (13 functions)
GCV_GAMMA = 1.4  # each effective degree of freedom counted 1.4 times: GCV's overfitting
LAMBDAS = np.logspace(-6, 6, 49)  # the smoothing searched, on the [0, 1] scale of x
BOOTSTRAP = 50  # resamples of the draws for the standard errors of the EVPI and EVPPI


def _basis(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cubic B-spline basis at x in [0, 1] and the second-difference penalty."""
    k = 3
    inner = np.linspace(0.0, 1.0, SEGMENTS + 1)
    h = inner[1] - inner[0]
    knots = np.concatenate([inner[0] - h * np.arange(k, 0, -1), inner,
                            inner[-1] + h * np.arange(1, k + 1)])
    b = interpolate.BSpline.design_matrix(np.clip(x, 0.0, 1.0), knots, k).toarray()
    diff = np.diff(np.eye(b.shape[1]), n=2, axis=0)
    return b, diff.T @ diff


def _spline_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """E[y | x] at each x: a penalised cubic regression spline (a P-spline: cubic
    B-splines on ten equal segments, a second-difference penalty, the smoothing chosen by
    generalised cross-validation with each degree of freedom counted 1.4 times, as a GAM's
    smooth term s(x) would be). On a standard scale (x to [0, 1], y to unit sd), so the
    answer does not depend on units. With fewer than five distinct values of x, the mean
    of y at each value."""
    ux, inverse = np.unique(x, return_inverse=True)
    if ux.size < 5:
        counts = np.bincount(inverse)
        return (np.bincount(inverse, weights=y) / counts)[inverse]
    centre, scale = y.mean(), y.std() or 1.0
    z = (y - centre) / scale
    b, penalty = _basis((x - ux[0]) / (ux[-1] - ux[0]))
    btb, bty = b.T @ b, b.T @ z
    n, best = len(z), (math.inf, None)
    for lam in LAMBDAS:
        inverse_ = np.linalg.solve(btb + lam * penalty, np.column_stack([bty, btb]))
        coef, edf = inverse_[:, 0], float(np.trace(inverse_[:, 1:]))
        rss = float(np.sum((z - b @ coef) ** 2))
        gcv = n * rss / max(n - GCV_GAMMA * edf, 1e-9) ** 2
        if gcv < best[0]:
            best = (gcv, coef)
    return centre + scale * (b @ best[1])


def _surface_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """E[y | x] for several columns of x: least squares on a quadratic response surface
    (linear, square and pairwise product terms of the standardised columns); with too few
    draws for that (under ten per term), linear and square terms only."""
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    k = z.shape[1]
    terms = [np.ones(len(z)), *z.T, *(z ** 2).T]
    pairs = [z[:, a] * z[:, b] for a in range(k) for b in range(a + 1, k)]
    if len(z) >= 10 * (len(terms) + len(pairs)):
        terms += pairs
    basis = np.column_stack(terms)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return basis @ coef


def evppi(nb: pd.DataFrame, inputs: np.ndarray, reference: str | None = None) -> float:
    """The expected value of partial perfect information about the assumption(s) whose
    draws are the column(s) of ``inputs`` (n draws x k): each option's net benefit
    difference from the reference is regressed on them (``_spline_fit`` for one,
    ``_surface_fit`` for several), and EVPPI = mean over draws of the best fitted difference
    - the best mean fitted difference. Never negative by construction; up to Monte Carlo
    and fitting error, at most the EVPI."""
    v = nb.to_numpy(float)
    ref = v[:, list(nb.columns).index(reference)] if reference is not None else v[:, 0]
    return _evppi(v - ref[:, None], np.asarray(inputs, dtype=float))


def _evppi(d: np.ndarray, x: np.ndarray) -> float:
    x = x[:, None] if x.ndim == 1 else x
    fit = _spline_fit if x.shape[1] == 1 else _surface_fit
    g = np.column_stack([fit(x[:, 0] if x.shape[1] == 1 else x, d[:, j])
                         if np.ptp(d[:, j]) > 0 else d[:, j] for j in range(d.shape[1])])
    return float(max(g.max(axis=1).mean() - g.mean(axis=0).max(), 0.0))


def _evpi(d: np.ndarray) -> float:
    return max(float(d.max(axis=1).mean() - d.mean(axis=0).max()), 0.0)


def evppi_table(nb: pd.DataFrame, points: pd.DataFrame, reference: str = "baseline",
                groups: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """EVPPI of every assumption (a column of ``points``, indexed like ``nb``) and of each
    group, in currency units and as a share of the EVPI, largest first: what perfect
    knowledge of it is worth before the decision."""
    v = nb.to_numpy(float)
    d = v - v[:, [list(nb.columns).index(reference)]]
    x = points.loc[nb.index]
    inputs = {name: ("one", x[name].to_numpy(float)) for name in x.columns}
    for gname, members in (groups or {}).items():
        inputs[gname] = (f"group of {len(members)}", x[list(members)].to_numpy(float))
    # standard errors: the draws resampled with replacement, the regressions fitted again
    # (fixed resamples: the same answer every time)
    rng = np.random.default_rng(0)
    resamples = [rng.integers(0, len(d), len(d)) for _ in range(BOOTSTRAP)] if len(d) > 2 \
        else []
    total = _evpi(d)
    total_se = float(np.std([_evpi(d[i]) for i in resamples], ddof=1)) if resamples \
        else math.nan
    rows = []
    for name, (kind, xs) in inputs.items():
        value = _evppi(d, xs)
        se = (float(np.std([_evppi(d[i], xs[i]) for i in resamples], ddof=1))
              if resamples and value > 0 else (0.0 if resamples else math.nan))
        rows.append({"assumptions": name, "kind": kind, "evppi": value, "evppi_se": se})
    table = pd.DataFrame(rows, columns=["assumptions", "kind", "evppi", "evppi_se"])
    table["share_of_evpi"] = table["evppi"] / total if total > 0 else math.nan
    table["evpi"], table["evpi_se"] = total, total_se
    # an estimate above the EVPI is Monte Carlo and fitting error (more draws settle it)
    table["above_evpi"] = table["evppi"] > total
    return table.sort_values("evppi", ascending=False, kind="stable").reset_index(drop=True)


def noise_share(runs: pd.DataFrame, metric: str, option: str, reference: str) -> float:
    """The share of the variance of the option's difference from the reference across
    draws that is simulation noise: the mean within-draw variance of the difference (over
    the draw's replications) divided by its replication-level variance across all draws.
    NaN with one replication per draw (the noise cannot be told from the draws)."""
    wide = runs.pivot_table(index=["point", "replication"], columns="option", values=metric)
    d = (wide[option] - wide[reference]).rename("d").reset_index()
    per = d.groupby("point")["d"]
    if per.size().min() < 2:
        return math.nan
    within = float(per.var(ddof=1).mean())
    total = float(d["d"].var(ddof=1))
    return within / total if total > 0 else math.nan


def tornado(runs: pd.DataFrame, design: pd.DataFrame, option: str, reference: str,
            metric: str = "npv") -> pd.DataFrame:
    """One row per assumption, largest swing first: the paired difference ``option`` -
    ``reference`` of ``metric`` (mean and 95% t interval over the replications) with the
    assumption at its low and at its high value and every other at its point value, and
    ``swing``, the absolute difference of the two. ``design`` describes the study's points:
    ``point``, ``assumption`` (None for the base point), ``end`` (low, high or base),
    ``value``."""
    wide = runs.pivot_table(index=["point", "replication"], columns="option", values=metric)
    diff = (wide[option] - wide[reference]).rename("d").reset_index()
    base_point = design.loc[design["end"] == "base", "point"]
    base = estimate(diff.loc[diff["point"].isin(base_point), "d"].to_numpy(float))
    rows = []
    for name, part in design[design["end"] != "base"].groupby("assumption", sort=False):
        row = {"assumption": name}
        for end in ("low", "high"):
            p = part.loc[part["end"] == end]
            e = estimate(diff.loc[diff["point"] == int(p["point"].iloc[0]), "d"]
                         .to_numpy(float))
            row |= {f"{end}_value": float(p["value"].iloc[0]), end: e.mean,
                    f"{end}_low": e.low, f"{end}_high": e.high}
        row["swing"] = abs(row["high"] - row["low"])
        rows.append(row)
    table = pd.DataFrame(rows)
    table["base"], table["base_low"], table["base_high"] = base.mean, base.low, base.high
    table["option"], table["reference"], table["metric"] = option, reference, metric
    return table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)

"""How much, and which setting: response curves, budget allocation and goal seeking.

Every question here is a study (``sim.decide.study``) of one config: the settings tried are
its points, every point runs on the same replications (shared streams: common random
numbers), so the difference between two settings is paired replication by replication and
the curve through the points is smooth where the model is. The settings are the values of
numeric config keys ("levers"), applied to the composed config as a PSA applies its draws.
Every interval here covers the simulation noise, given the assumptions; a PSA covers the
assumptions' uncertainty.

- ``run_curves``: the study metrics against each key's value, with 95% t intervals, and the
  marginal return of the objective per unit of the key between neighbouring values (for a
  channel's spend: per currency unit of spend over the horizon, discounted as NPV is: the
  marginal ROI, net of the spend itself), and where it crosses a threshold (0: break-even).
- ``run_seek``: the value of a key at which a metric's mean reaches a target: a coarse grid
  brackets the first crossing (or proves the target out of reach, with the range reached),
  then the Illinois variant of regula falsi narrows the bracket on the common-random-number
  mean curve to a tolerance; the root's interval is the delta method's (the metric's
  interval at the root over the local slope, measured paired at the root +/- a step).
- ``run_allocate``: the daily spend of the listed channels that maximises the objective
  under a total budget, per-channel bounds and floors on other metrics. A metamodel: a
  quadratic response surface with one level per replication (the common random numbers'
  shared part) fitted to a scrambled Sobol' design around the budget, maximised with
  SLSQP under the constraints within the region the round designed (a trust region: the
  surface is not extrapolated); the next round designs a region half as wide around that
  optimum. The answer is verified against today's allocation on replications the search did
  not see (paired interval, share of replications better); each channel's marginal ROI at
  the optimum comes from the last surface's gradient with its delta-method interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import qmc

from sim.decide.study import STUDY_METRICS, Study, StudyError, long_table, run_study
from sim.measure.metrics import metric_range
from sim.measure.stats import estimate
from sim.model.config import Range, launched, to_container
from sim.model.spec import SpecError, build_spec
from sim.model.uncertainty import Assumption, Uncertainty, _numeric_keys

__all__ = ["AllocationResult", "CurveResult", "SeekResult", "annuity", "levers",
           "marginal_returns", "run_allocate", "run_curves", "run_seek"]

OPTION = "baseline"  # the one option of these studies (its config is the one composed)
SEEK_REACH = 10.0  # a goal seek's default range: at most this far either side of the value


# ------------------------------------------------------------------------------ levers
def levers(cfg: Mapping[str, Any], keys: Sequence[str], where: str) -> Uncertainty:
    """The numeric keys a study sets, as assumptions whose draw is the key's value.

    Raises
    ------
    SpecError : a key that is not a numeric key of the model, named under ``where``.
    """
    import difflib

    numeric = _numeric_keys(cfg)
    problems = []
    out = Uncertainty()
    for key in keys:
        if not isinstance(key, str) or key not in numeric:
            close = difflib.get_close_matches(str(key), list(numeric), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append((where, key, "a numeric key of the model, e.g. "
                             f"channels.search.spend_per_day or checkout.base_logit{hint} "
                             "(every key: python -m sim --cfg job)"))
            continue
        point, allowed = numeric[key]
        out.assumptions.append(Assumption(key, "uniform", {"low": allowed.lo, "high": allowed.hi},
                                          "value", None, float(point), allowed))
    if problems:
        raise SpecError(problems)
    return out


def _spend_key(key: str) -> bool:
    parts = key.split(".")
    return len(parts) == 3 and parts[0] == "channels" and parts[2] == "spend_per_day"


def annuity(cfg: Mapping[str, Any]) -> float:
    """What one currency unit of always-on daily spend costs over the horizon, discounted
    to day 0 as NPV discounts it (spend at the start of each day)."""
    spec = build_spec(cfg)
    days = math.ceil(spec.horizon_days)  # the days a run charges (engine.records)
    return float(np.exp(-spec.discount_rate_per_day * np.arange(days)).sum())


def runnable(cfg: Any, where: str) -> dict[str, Any]:
    """``cfg`` (composed, or a plain dict) checked and completed with the schema's defaults,
    as the plain dict a study applies its points to.

    Raises
    ------
    SpecError : the config is invalid, or launches a scenario during the run.
    """
    if launched(cfg):
        raise SpecError([(where, "a scenario launched during the run",
                          "a config that runs from day 0: these studies set keys of one "
                          "config; drop scenario.start_day and scenario.ramp_days")])
    build_spec(cfg)
    return to_container(cfg)


def _metrics(*names: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*STUDY_METRICS, *names]))


def _study(cfg: Mapping[str, Any], u: Uncertainty, points: np.ndarray, replications: int,
           seed: int, metrics: tuple[str, ...], n_jobs: int, progress: bool, label: str,
           first: int = 0) -> pd.DataFrame:
    study = Study({OPTION: cfg}, u, np.atleast_2d(points), replications, seed, "shared",
                  first=first, metrics=metrics)
    runs = run_study(study, n_jobs, None, progress, label=label)
    return runs.assign(option=cfg["scenario"]["name"])  # the config's own name


def _by_point(runs: pd.DataFrame, metric: str) -> np.ndarray:
    """(points, replications) of ``metric``, points in order, replications in order."""
    table = runs.pivot_table(index="point", columns="replication", values=metric,
                             aggfunc="first", dropna=False)
    return table.sort_index().to_numpy(dtype=float)


# ---------------------------------------------------------------------- response curves
@dataclass
class CurveResult:
    """Response curves of one config: each key swept alone, the others at their values."""

    table: pd.DataFrame  # key, value, metric, mean, low, high
    marginal: pd.DataFrame  # key, from, to, at, marginal, low, high, unit
    crossings: pd.DataFrame  # key, threshold, value, note
    runs: pd.DataFrame  # the study's long table
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(self.table["key"]))


def marginal_returns(values: np.ndarray, y: np.ndarray, per_unit: float = 1.0
                     ) -> pd.DataFrame:
    """Between neighbouring values: the change of ``y`` ((points, replications), paired
    across points) per unit of the key, divided by ``per_unit``, with its 95% t interval
    over replications."""
    rows = []
    for a in range(len(values) - 1):
        step = (values[a + 1] - values[a]) * per_unit
        e = estimate((y[a + 1] - y[a]) / step)
        rows.append({"from": values[a], "to": values[a + 1],
                     "at": (values[a] + values[a + 1]) / 2, "marginal": e.mean,
                     "low": e.low, "high": e.high})
    return pd.DataFrame(rows, columns=["from", "to", "at", "marginal", "low", "high"])


def _crossing(marginal: pd.DataFrame, threshold: float) -> tuple[float, str]:
    """Where the marginal return first crosses ``threshold`` (linear between midpoints)."""
    at, m = marginal["at"].to_numpy(), marginal["marginal"].to_numpy() - threshold
    for a in range(len(m) - 1):
        if np.sign(m[a]) != np.sign(m[a + 1]) and m[a] != 0:
            x = at[a] + (at[a + 1] - at[a]) * m[a] / (m[a] - m[a + 1])
            way = "falls below" if m[a] > 0 else "rises above"
            return float(x), f"the marginal return {way} the threshold here"
    if len(m) and np.all(m > 0):
        return math.nan, "above the threshold over the whole range tried"
    if len(m) and np.all(m < 0):
        return math.nan, "below the threshold over the whole range tried"
    return math.nan, "no crossing between the values tried"


def _as_key_value(v: float, allowed: Range) -> float | int:
    """``v`` as the key holds it: an integer key's whole numbers as int (1.0 -> 1)."""
    v = float(v)
    return int(v) if allowed.integer and v.is_integer() else v


def curve_values(cfg: Mapping[str, Any], key: str, values: Sequence[float],
                 low: float | None, high: float | None, points: int) -> np.ndarray:
    """The values a response curve of ``key`` runs at, checked against its allowed range.

    Raises
    ------
    SpecError : naming ``curve.values``, ``curve.low`` or ``curve.high``.
    """
    point, allowed = _numeric_keys(cfg)[key]
    if values:
        x = np.array(sorted(set(float(v) for v in values)))
        where = "curve.values"
    else:
        lo = max(allowed.lo, 0.0) if low is None else float(low)
        hi = 2 * float(point) if high is None else float(high)
        if high is None and hi <= lo:
            raise SpecError([("curve.high", None, f"a value above curve.low ({lo:g}): "
                              f"{key} is {point:g} in the config, so twice it is no range")])
        if not hi > lo:
            raise SpecError([("curve.high", high, f"above curve.low ({lo:g})")])
        x = np.linspace(lo, hi, points)
        if allowed.integer:
            x = np.unique(np.round(x))
        where = "curve.low" if _as_key_value(x[0], allowed) not in allowed else "curve.high"
    bad = [v for v in x if _as_key_value(v, allowed) not in allowed]
    if bad or len(x) < 2:
        raise SpecError([(where, float(bad[0]) if bad else [float(v) for v in x],
                          f"two or more values of {key}, each {allowed.describe()}")])
    if allowed.integer:
        x = np.unique(np.round(x))
    return x


def run_curves(cfg: Mapping[str, Any], values: Mapping[str, Sequence[float]],
               objective: str = "npv_clv", threshold: float = 0.0, replications: int = 10,
               seed: int = 0, metrics: Sequence[str] = (), n_jobs: int = 1,
               progress: bool = True) -> CurveResult:
    """Response curves: every key of ``values`` at each of its values (the other keys at
    their config values), ``replications`` each, every point on the same streams.

    ``cfg``: a composed config as a plain dict (``to_container``). ``metrics``: metric
    names tabulated besides the study metrics (the headline ones, costs, finance) and
    the objective.
    """
    keys = list(values)
    values = {k: sorted({float(v) for v in values[k]}) for k in keys}  # neighbours in order
    cfg = runnable(cfg, "curve.keys")
    u = levers(cfg, keys, "curve.keys")
    rows, owner = [], []
    for j, key in enumerate(keys):
        for v in values[key]:
            row = np.full(len(keys), np.nan)
            row[j] = float(v)
            rows.append(row)
            owner.append((key, float(v)))
    metrics = _metrics(objective, *metrics)
    runs = _study(cfg, u, np.array(rows), replications, seed, metrics, n_jobs, progress,
                  "curve")
    unit_cost = annuity(cfg) if any(_spend_key(k) for k in keys) else 1.0
    table, marginal, crossings = [], [], []
    for key in keys:
        idx = [i for i, (k, _) in enumerate(owner) if k == key]
        x = np.array([owner[i][1] for i in idx])
        part = runs[runs["point"].isin(idx)]
        for metric in metrics:
            y = _by_point(part, metric)
            for v, row in zip(x, y, strict=True):
                e = estimate(row, within=metric_range(metric))
                table.append({"key": key, "value": v, "metric": metric, "mean": e.mean,
                              "low": e.low, "high": e.high})
        spend = _spend_key(key)
        m = marginal_returns(x, _by_point(part, objective), unit_cost if spend else 1.0)
        m.insert(0, "key", key)
        m["unit"] = (f"{objective} per currency unit of discounted spend: the marginal ROI"
                     if spend else f"{objective} per unit of {key}")
        marginal.append(m)
        value, note = _crossing(m, threshold)
        crossings.append({"key": key, "threshold": threshold, "value": value, "note": note})
    points = pd.DataFrame([[o[1] if o[0] == k else np.nan for k in keys] for o in owner],
                          columns=keys).rename_axis("point")
    settings = {"objective": objective, "threshold": threshold, "replications": replications,
                "seed": seed, "runs": len(runs), "keys": keys,
                "values": {k: [float(v) for v in values[k]] for k in keys},
                "spend_annuity": unit_cost,
                "config_values": {a.key: a.point for a in u.assumptions},
                "covers": "simulation noise, given the assumptions (95% t intervals over "
                          "replications; every value on the same replications)"}
    return CurveResult(pd.DataFrame(table), pd.concat(marginal, ignore_index=True),
                       pd.DataFrame(crossings), long_table(runs, points, metrics), settings)


# ------------------------------------------------------------------------- goal seeking
@dataclass
class SeekResult:
    """The value of ``key`` at which the mean of ``metric`` reaches ``target``."""

    key: str
    metric: str
    target: float
    value: float
    low: float  # the 95% interval of the value (simulation noise, delta method)
    high: float
    reached: float  # the metric's mean at ``value``
    reached_low: float
    reached_high: float
    slope: float  # d metric / d key at the value
    evaluations: pd.DataFrame  # value, mean, low, high: every setting tried, in order
    runs: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


class OutOfReach(StudyError):
    """The target is not reached anywhere in the range searched."""


def seek_range(cfg: Mapping[str, Any], key: str, low: float | None, high: float | None
               ) -> tuple[float, float]:
    """Where a goal seek looks: ``low`` .. ``high``, by default the key's allowed range cut
    to ``SEEK_REACH`` either side of the key's value (a log-odds key allows -100 .. 100,
    far beyond any useful setting)."""
    point, allowed = _numeric_keys(cfg)[key]
    lo = max(allowed.lo, point - SEEK_REACH) if low is None else low
    hi = min(allowed.hi, point + SEEK_REACH) if high is None else high
    problems = []
    for name, v in (("seek.low", lo), ("seek.high", hi)):
        if not (math.isfinite(v) and _as_key_value(v, allowed) in allowed):
            problems.append((name, v, f"a value {key} may take: {allowed.describe()}"))
    if not problems and not hi > lo:
        problems.append(("seek.high", hi, f"above seek.low ({lo:g})"))
    if problems:
        raise SpecError(problems)
    return float(lo), float(hi)


def run_seek(cfg: Mapping[str, Any], key: str, metric: str, target: float,
             low: float, high: float, tolerance: float | None = None,
             replications: int = 10, seed: int = 0, max_runs: int = 400, grid: int = 5,
             n_jobs: int = 1, progress: bool = True) -> SeekResult:
    """Goal seeking on the mean of ``metric`` over ``replications`` common replications.

    Raises
    ------
    OutOfReach : the target lies outside the range of means the grid over ``low`` ..
        ``high`` reaches (the message names that range).
    """
    cfg = runnable(cfg, "seek.key")
    u = levers(cfg, [key], "seek.key")
    allowed: Range = u.assumptions[0].allowed
    tol = (high - low) / 10_000 if tolerance is None else float(tolerance)
    metrics = _metrics(metric)
    tried: dict[float, np.ndarray] = {}  # value -> the metric per replication
    order: list[float] = []  # the values in the order they ran (the study's points)
    frames = []

    def evaluate(xs: Sequence[float]) -> None:
        xs = [round(x) if allowed.integer else float(x) for x in xs]
        new = [x for x in dict.fromkeys(xs) if x not in tried]
        if not new:
            return
        runs = _study(cfg, u, np.array(new)[:, None], replications, seed, metrics, n_jobs,
                      progress, "seek")
        for i, x in enumerate(new):
            tried[x] = runs.loc[runs["point"] == i, metric].to_numpy(dtype=float)
        frames.append(runs.assign(point=runs["point"] + len(order)))
        order.extend(new)

    def mean(x: float) -> float:
        return float(np.nanmean(tried[round(x) if allowed.integer else x]))

    xs = list(np.linspace(low, high, grid))
    evaluate(xs)
    means = np.array([mean(x) for x in xs])
    if not (np.nanmin(means) <= target <= np.nanmax(means)):
        raise OutOfReach(
            f"seek.target={target:g}: out of reach. With {key} from {low:g} to {high:g}, "
            f"the mean {metric} over {replications} replications ranges from "
            f"{np.nanmin(means):.6g} to {np.nanmax(means):.6g} (at {key} = "
            f"{', '.join(f'{x:g}' for x in xs)}: {', '.join(f'{m:.4g}' for m in means)}); "
            f"widen seek.low/seek.high within what {key} allows ({allowed.describe()}) or "
            "choose a target in that range")
    # the first bracket where the mean crosses the target
    f = means - target
    a = next(i for i in range(grid) if f[i] == 0 or (i + 1 < grid and f[i] * f[i + 1] < 0))
    xa, fa = xs[a], f[a]
    xb, fb = (xs[a + 1], f[a + 1]) if fa != 0 else (xs[a], fa)
    while fa != 0 and abs(xb - xa) > tol and len(tried) * replications < max_runs:
        x = xb - fb * (xb - xa) / (fb - fa)  # regula falsi; Illinois: halve the stuck end
        x = min(max(x, min(xa, xb) + tol / 4), max(xa, xb) - tol / 4)
        if allowed.integer and round(x) in (round(xa), round(xb)):
            break
        evaluate([x])
        fx = mean(x) - target
        if fx == 0:
            xa = xb = x
            break
        if fx * fb < 0:
            xa, fa = xb, fb
        else:
            fa /= 2
        xb, fb = x, fx
    best = min((xa, xb), key=lambda v: abs(mean(v) - target))
    value = round(best) if allowed.integer else float(best)
    # the local slope, paired at value +/- a step, for the root's interval
    step = max(4 * tol, (high - low) / 50)
    below, above = max(low, value - step), min(high, value + step)
    evaluate([below, above])
    y_lo, y_hi = tried[round(below) if allowed.integer else below], \
        tried[round(above) if allowed.integer else above]
    slope = estimate((y_hi - y_lo) / (above - below))
    at = estimate(tried[value], within=metric_range(metric))
    hw = at.half_width / abs(slope.mean) if slope.mean else math.inf
    if not math.isfinite(hw):
        hw = math.inf
    within = metric_range(metric)
    evaluations = pd.DataFrame([{"value": x, "mean": e.mean, "low": e.low, "high": e.high}
                                for x, e in ((x, estimate(y, within=within))
                                             for x, y in tried.items())])
    points = pd.DataFrame({key: order}).rename_axis("point")
    runs = long_table(pd.concat(frames, ignore_index=True), points, metrics)
    settings = {"key": key, "metric": metric, "target": target, "low": low, "high": high,
                "tolerance": tol, "replications": replications, "seed": seed,
                "runs": len(tried) * replications, "bracket": [min(xa, xb), max(xa, xb)],
                "converged": bool(abs(xb - xa) <= tol or mean(value) == target),
                "covers": "simulation noise, given the assumptions (the metric's 95% t "
                          "interval at the value over the local slope: delta method)"}
    return SeekResult(key, metric, target, value, value - hw, value + hw, at.mean, at.low,
                      at.high, slope.mean, evaluations, runs, settings)


# -------------------------------------------------------------------- budget allocation
@dataclass
class AllocationResult:
    """The allocation of daily spend the search proposes, verified against today's."""

    channels: list[str]
    current: np.ndarray
    proposed: np.ndarray
    objective: str
    gain: float  # proposed - current, mean over the verification's replications
    gain_low: float
    gain_high: float
    better: int  # replications (of the verification's) where the proposal did better
    verify_replications: int
    table: pd.DataFrame  # per channel: current, proposed, bounds, at a bound, marginal ROI
    verification: pd.DataFrame  # per metric: current, proposed, difference with interval
    rounds: pd.DataFrame  # per round: region, runs, the surface's optimum and its value
    runs: pd.DataFrame  # every run of the search and the verification (long table)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_runs(self) -> int:
        return int(self.settings.get("runs", 0))


def _quadratic(x: np.ndarray) -> np.ndarray:
    """Columns 1, x_j, x_j x_k (j <= k) of a quadratic surface in scaled spends."""
    n, k = x.shape
    cols = [np.ones(n), *x.T]
    cols += [x[:, j] * x[:, m] for j in range(k) for m in range(j, k)]
    return np.column_stack(cols)


def _quadratic_grad(x: np.ndarray) -> np.ndarray:
    """(k, p): the gradient of every column of ``_quadratic`` at one point ``x``."""
    k = x.size
    p = 1 + k + k * (k + 1) // 2
    g = np.zeros((k, p))
    for j in range(k):
        g[j, 1 + j] = 1.0
    c = 1 + k
    for j in range(k):
        for m in range(j, k):
            if j == m:
                g[j, c] = 2 * x[j]
            else:
                g[j, c] += x[m]
                g[m, c] += x[j]
            c += 1
    return g


@dataclass
class _Surface:
    """y = level of the replication + quadratic(x / scale), least squares."""

    beta: np.ndarray  # the quadratic's coefficients (the replication levels dropped)
    cov: np.ndarray  # their covariance (OLS)
    scale: float

    def __call__(self, s: np.ndarray) -> float:
        return float(_quadratic(np.atleast_2d(s) / self.scale)[0] @ self.beta)

    def grad(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The gradient at ``s`` (per unit of spend) and its standard errors."""
        g = _quadratic_grad(np.asarray(s, dtype=float) / self.scale) / self.scale
        return g @ self.beta, np.sqrt(np.einsum("ip,pq,iq->i", g, self.cov, g))


def fit_surface(s: np.ndarray, y: np.ndarray, scale: float) -> _Surface:
    """Fit ``y`` ((points, replications)) at spends ``s`` ((points, k)): a quadratic in
    ``s / scale`` plus one level per replication (what every point of a replication shares
    under common random numbers)."""
    n_p, n_r = y.shape
    q = _quadratic(s / scale)[:, 1:]  # the levels replace the intercept
    x = np.vstack([np.hstack([np.eye(n_r)[r][None, :].repeat(n_p, 0), q]) for r in range(n_r)])
    yy = np.concatenate([y[:, r] for r in range(n_r)])
    ok = np.isfinite(yy)
    x, yy = x[ok], yy[ok]
    beta, *_ = np.linalg.lstsq(x, yy, rcond=None)
    dof = max(len(yy) - x.shape[1], 1)
    sigma2 = float(((yy - x @ beta) ** 2).sum() / dof)
    cov = sigma2 * np.linalg.pinv(x.T @ x)
    levels = beta[:n_r]
    full = np.concatenate([[levels.mean()], beta[n_r:]])
    c = np.zeros((len(full), len(full)))
    c[1:, 1:] = cov[n_r:, n_r:]
    c[0, 0] = cov[:n_r, :n_r].mean()
    return _Surface(full, c, scale)


def project(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, total: float) -> np.ndarray:
    """The point nearest ``x`` with lo <= s <= hi and sum(s) = total (bisection on the
    shift; ``total`` must lie between sum(lo) and sum(hi))."""
    def excess(shift: float) -> float:
        return float(np.clip(x + shift, lo, hi).sum() - total)

    a, b = float(lo.min() - x.max()) - 1.0, float(hi.max() - x.min()) + 1.0
    shift = optimize.brentq(excess, a, b, xtol=1e-12)
    return np.clip(x + shift, lo, hi)


def _design(n: int, lo: np.ndarray, hi: np.ndarray, total_lo: float, total_hi: float,
            seed: int, round_: int) -> np.ndarray:
    """``n`` spends in the box lo .. hi whose totals lie between ``total_lo`` and
    ``total_hi`` (spread evenly across that band), from scrambled Sobol' points."""
    k = len(lo)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xA11, round_)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        u = qmc.Sobol(k + 1, scramble=True, seed=rng).random(n)
    out = []
    for row in u:
        x = lo + row[:k] * (hi - lo)
        total = total_lo + row[k] * (total_hi - total_lo)
        total = min(max(total, lo.sum()), hi.sum())
        out.append(project(x, lo, hi, total))
    return np.array(out)


def design_size(k: int) -> int:
    """The fewest designed allocations per round a quadratic surface in ``k`` spends needs
    (its coefficients), one more being the round's centre."""
    return k + k * (k + 1) // 2 + 1


def check_allocation(channels: Sequence[str], known: Sequence[str], current: np.ndarray,
                     budget: float | None, mode: str, bounds: Mapping[str, Sequence[float]],
                     design_points: int | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """The budget and bounds of an allocation, checked before anything runs.

    Raises
    ------
    SpecError : every problem, naming ``allocate.<key>``.
    """
    problems = []
    unknown = [c for c in channels if c not in known]
    if not channels or unknown:
        problems.append(("allocate.channels", unknown or list(channels),
                         f"one or more of the config's channels: {', '.join(known)}"))
    if len(set(channels)) < len(channels):
        problems.append(("allocate.channels", list(channels), "each channel once"))
    if mode not in ("fixed", "at_most"):
        problems.append(("allocate.budget_mode", mode, "fixed or at_most"))
    for name in bounds:
        if name not in channels:
            problems.append((f"allocate.bounds.{name}", bounds[name],
                             f"bounds of a channel listed in allocate.channels "
                             f"({', '.join(channels)})"))
    if design_points is not None and channels and design_points < design_size(len(channels)):
        problems.append(("allocate.design_points", design_points,
                         f"at least {design_size(len(channels))} for {len(channels)} channels "
                         "(the coefficients of a quadratic surface in their spends)"))
    if problems:
        raise SpecError(problems)
    total = float(current.sum()) if budget is None else float(budget)
    lo, hi = np.zeros(len(channels)), np.full(len(channels), total)
    for j, name in enumerate(channels):
        b = bounds.get(name)
        if b is None:
            continue
        if (len(b) != 2 or not all(isinstance(v, int | float) and math.isfinite(v) for v in b)
                or not 0 <= b[0] <= b[1]):
            problems.append((f"allocate.bounds.{name}", list(b),
                             "[lowest, highest] spend per day, 0 <= lowest <= highest"))
            continue
        lo[j], hi[j] = float(b[0]), min(float(b[1]), total)
        if b[0] > total:
            problems.append((f"allocate.bounds.{name}", list(b),
                             f"a lowest spend within the budget ({total:g} per day)"))
    if not problems and lo.sum() > total:
        problems.append(("allocate.budget", total, f"at least the sum of the channels' lowest "
                         f"spends ({lo.sum():g} per day: "
                         f"{', '.join(f'{c} {v:g}' for c, v in zip(channels, lo, strict=True))})"))
    if not problems and mode == "fixed" and hi.sum() < total:
        problems.append(("allocate.budget", total, f"at most the sum of the channels' highest "
                         f"spends ({hi.sum():g} per day), or allocate.budget_mode=at_most"))
    if not problems and total <= 0:
        problems.append(("allocate.budget", total, "a positive daily budget"))
    if problems:
        raise SpecError(problems)
    return total, lo, hi


def _maximise(obj: _Surface, floors: Mapping[str, tuple[_Surface, float]], lo: np.ndarray,
              hi: np.ndarray, total: float, mode: str, starts: Sequence[np.ndarray]
              ) -> tuple[np.ndarray, bool]:
    """The surface's maximum under the constraints (SLSQP from several starts); whether
    the floors can be met."""
    cons = [{"type": "eq" if mode == "fixed" else "ineq",
             "fun": (lambda s: total - s.sum()), "jac": lambda s: -np.ones_like(s)}]
    for surface, floor in floors.values():
        cons.append({"type": "ineq", "fun": lambda s, f=surface, m=floor: f(s) - m,
                     "jac": lambda s, f=surface: f.grad(s)[0]})
    best, best_value, feasible = None, -math.inf, False
    for x0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = optimize.minimize(lambda s: -obj(s), x0, jac=lambda s: -obj.grad(s)[0],
                                    bounds=list(zip(lo, hi, strict=True)), constraints=cons,
                                    method="SLSQP", options={"maxiter": 200, "ftol": 1e-10})
        s = np.clip(res.x, lo, hi)
        if mode == "fixed":
            s = project(s, lo, hi, total)
        ok = all(f(s) >= m - 1e-6 * max(1.0, abs(m)) for f, m in floors.values())
        value = obj(s)
        if (ok, value) > (feasible, best_value):
            best, best_value, feasible = s, value, ok
    assert best is not None
    return best, feasible


def run_allocate(cfg: Mapping[str, Any], channels: Sequence[str], budget: float | None = None,
                 mode: str = "fixed", bounds: Mapping[str, Sequence[float]] | None = None,
                 objective: str = "npv_clv", minimum: Mapping[str, float] | None = None,
                 design_points: int = 24, rounds: int = 3, replications: int = 4,
                 verify_replications: int = 20, seed: int = 0, n_jobs: int = 1,
                 progress: bool = True) -> AllocationResult:
    """Choose the channels' ``spend_per_day`` to maximise ``objective`` (see the module).

    Raises
    ------
    SpecError : a channel, budget or bound that cannot be (before anything runs).
    StudyError : the floors in ``minimum`` are not met anywhere the search looked (after
        the first round; the message names the most each floor's metric reached).
    """
    bounds, minimum = dict(bounds or {}), dict(minimum or {})
    cfg = runnable(cfg, "allocate.channels")
    known = list(cfg["channels"])
    channels = list(channels)
    current = np.array([float(cfg["channels"][c]["spend_per_day"]) if c in known else 0.0
                        for c in channels])
    total, lo, hi = check_allocation(channels, known, current, budget, mode, bounds,
                                     design_points)
    keys = [f"channels.{c}.spend_per_day" for c in channels]
    u = levers(cfg, keys, "allocate.channels")
    metrics = _metrics(objective, *minimum)
    scale = max(total / len(channels), 1.0)
    box_lo, box_hi = lo.copy(), hi.copy()
    centre = project(np.clip(current, lo, hi), lo, hi, total) if mode == "fixed" else \
        np.clip(current, lo, hi)
    frames, round_rows, tried = [], [], []  # tried: (round, spends) of every point run
    proposed, surface = centre, None
    for r in range(rounds):
        band = (0.9 * total, min(1.1 * total, hi.sum())) if mode == "fixed" else (
            0.0, min(1.1 * total, hi.sum()))
        s = _design(design_points, box_lo, box_hi, *band, seed, r)
        s = np.vstack([s, centre[None, :]])
        runs = _study(cfg, u, s, replications, seed, metrics, n_jobs, progress,
                      f"allocate {r + 1}/{rounds}")
        frames.append(runs.assign(point=runs["point"] + len(tried)))
        tried.extend((r + 1, x) for x in s)
        surface = fit_surface(s, _by_point(runs, objective), scale)
        floors = {m: (fit_surface(s, _by_point(runs, m), scale), float(v))
                  for m, v in minimum.items()}
        # the surface is trusted only where it was fitted: this round's box
        starts = [centre, *s[np.argsort([-surface(x) for x in s])[:3]]]
        proposed, feasible = _maximise(surface, floors, box_lo, box_hi, total, mode, starts)
        if not feasible:
            reached = {m: max(f(x) for x in s) for m, (f, _) in floors.items()}
            raise StudyError(
                "allocate.minimum: cannot be met with this budget and these bounds: "
                + "; ".join(f"{m} at least {minimum[m]:g} asked, at most about "
                            f"{reached[m]:.6g} reached by the surface fitted to round "
                            f"{r + 1}'s runs" for m in minimum)
                + ". Lower the floor, raise allocate.budget, or widen allocate.bounds")
        round_rows.append({"round": r + 1, "runs": len(s) * replications,
                           **{f"{c}.low": a for c, a in zip(channels, box_lo, strict=True)},
                           **{f"{c}.high": b for c, b in zip(channels, box_hi, strict=True)},
                           **{c: v for c, v in zip(channels, proposed, strict=True)},
                           "surface": surface(proposed)})
        width = (box_hi - box_lo) / 2
        box_lo = np.maximum(lo, proposed - width / 2)
        box_hi = np.minimum(hi, proposed + width / 2)
        centre = proposed
    assert surface is not None
    # verification: today's allocation against the proposal, on fresh replications
    first = replications
    ver = _study(cfg, u, np.vstack([current, proposed]), verify_replications, seed, metrics,
                 n_jobs, progress, "verify", first=first)
    frames.append(ver.assign(point=ver["point"] + len(tried)))
    tried.extend([("verify: today", current), ("verify: proposed", proposed)])
    diff_rows = []
    for metric in metrics:
        y = _by_point(ver, metric)
        a, b, d = estimate(y[0]), estimate(y[1]), estimate(y[1] - y[0])
        diff_rows.append({"metric": metric, "current": a.mean, "proposed": b.mean,
                          "difference": d.mean, "low": d.low, "high": d.high})
    y = _by_point(ver, objective)
    gain = estimate(y[1] - y[0])
    better = int((y[1] > y[0]).sum())
    grad, se = surface.grad(proposed)
    unit = annuity(cfg)
    z = 1.959963984540054
    at_bound = ["lowest" if abs(p - a) < 1e-6 * max(1, total) else
                "highest" if abs(p - b) < 1e-6 * max(1, total) else ""
                for p, a, b in zip(proposed, lo, hi, strict=True)]
    table = pd.DataFrame({
        "channel": channels, "current": current, "proposed": proposed, "change": proposed
        - current, "lowest": lo, "highest": hi, "at_bound": at_bound,
        "marginal_roi": grad / unit, "marginal_roi_low": (grad - z * se) / unit,
        "marginal_roi_high": (grad + z * se) / unit})
    all_runs = pd.concat(frames, ignore_index=True)
    points = pd.DataFrame([[str(r), *x] for r, x in tried],
                          columns=["round", *keys]).rename_axis("point")
    runs = long_table(all_runs, points, metrics)
    settings = {"objective": objective, "budget": total, "budget_mode": mode,
                "bounds": {c: [float(a), float(b)] for c, a, b in zip(channels, lo, hi,
                                                                      strict=True)},
                "minimum": minimum, "design_points": design_points, "rounds": rounds,
                "replications": replications, "verify_replications": verify_replications,
                "seed": seed, "runs": len(all_runs), "spend_annuity": unit,
                "method": "quadratic response surface with replication levels on a scrambled "
                          "Sobol' design, maximised by SLSQP; each round half as wide around "
                          "the last optimum; verified on fresh replications",
                "covers": "simulation noise, given the assumptions"}
    return AllocationResult(channels, current, proposed, objective, gain.mean, gain.low,
                            gain.high, better, verify_replications, table,
                            pd.DataFrame(diff_rows), pd.DataFrame(round_rows), runs, settings)

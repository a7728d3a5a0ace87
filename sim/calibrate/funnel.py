"""The pre-purchase funnel fitted from a journey event log by maximum likelihood.

The simulator's prospect stages work visit by visit: a visit lasts a dwell time (a family
of ``sim.model.distributions``), then the prospect takes one exit (a stage, itself, or the
checkout) or is lost, independently of how long the visit took. The likelihood of one
stage is therefore

    prod_completed f(d_i) * prod_exits pi_j^n_j * pi_lost^n_lost * prod_open P(open_i)

where a completed visit has a length ``d_i`` and an exit, and an open visit is the last
one of a customer who was still in the stage when the data end, ``c_i`` days before. When
the log records losses (a ``lost`` entry), P(open) = S(c), the visit is simply censored.
When it does not, a customer whose log stops may still be in the stage or may have left
and been lost: P(open) = S(c) + F(c) pi_lost, and pi_lost is estimated jointly with the
dwell time. Visits recorded with zero length (timestamps of a coarse resolution) are
interval-censored: F(resolution). Each dwell family is fitted and the one with the lowest
AIC (the likelihood penalised by its number of parameters) is chosen. Standard errors come
from the Hessian of the full log-likelihood (dwell parameters and exit probabilities).

References
----------
Klein, J. P. & Moeschberger, M. L. (2003). *Survival Analysis*, 2nd ed., ch. 3
(censoring and likelihood construction).
Maller, R. A. & Zhou, X. (1996). *Survival Analysis with Long-Term Survivors*. Wiley
(mixture likelihoods S(c) + F(c) pi for subjects who may never have the event).
Akaike, H. (1974). A new look at the statistical model identification. *IEEE Transactions
on Automatic Control* 19(6), 716-723.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from sim.calibrate.mle import CalibrationError, delta_se, numerical_hessian
from sim.model.distributions import CV_RANGE
from sim.model.spec import odds_shift

__all__ = [
    "FIT_KINDS",
    "LOST",
    "DwellFit",
    "ExitEstimate",
    "StageFit",
    "StageVisits",
    "channel_multiplier",
    "dwell_logpdf",
    "dwell_logsf",
    "fit_stage",
    "stage_visits",
]

LOST = "lost"
FIT_KINDS = ("exponential", "gamma", "lognormal", "weibull")
Z95 = 1.959964


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class StageVisits:
    """Every visit to one prospect stage.

    Attributes
    ----------
    name : the stage.
    durations : lengths (days) of the completed visits that lasted a positive time.
    n_instant : completed visits recorded with zero length (shorter than the resolution).
    targets, counts : exits of the completed visits (stages or checkout, not lost) and how
        many visits took each.
    n_lost : completed visits that ended in a recorded loss.
    open_days : unfinished visits (the customer's last entry): days in the stage when the
        data end.
    lost_recorded : losses appear in the log; otherwise they are inferred.
    resolution_days : the timestamps' resolution; a zero-length visit was shorter.
    """

    name: str
    durations: np.ndarray
    n_instant: int
    targets: tuple[str, ...]
    counts: np.ndarray
    n_lost: int
    open_days: np.ndarray
    lost_recorded: bool
    resolution_days: float

    @property
    def n_completed(self) -> int:
        return int(self.durations.size + self.n_instant)


def stage_visits(customer: np.ndarray, stage: np.ndarray, time_days: np.ndarray,
                 end_days: float, prospect: Sequence[str], checkout: frozenset[str],
                 lost: str | None, resolution_days: float) -> dict[str, StageVisits]:
    """Cut each customer's entries into visits of the prospect stages.

    The arrays are one entry per row, sorted by customer then time (ties in file order).
    A customer's path ends at the first entry into a ``checkout`` stage (the exit
    ``checkout``) or into ``lost``; later entries are not part of the funnel. The last
    visit of a customer whose path has not ended is open until ``end_days``.
    ``lost`` is None when the log does not record losses.
    """
    names = list(prospect)
    index = {s: i for i, s in enumerate(names)}
    durations: list[list[float]] = [[] for _ in names]
    exits: list[dict[str, int]] = [{} for _ in names]
    lost_count = [0] * len(names)
    open_days: list[list[float]] = [[] for _ in names]
    n = customer.size
    i = 0
    while i < n:
        j = i
        while j < n and customer[j] == customer[i]:
            j += 1
        k = i
        while k < j:
            s = stage[k]
            if s in checkout or s == lost or s not in index:
                break
            si = index[s]
            if k + 1 < j:
                nxt = stage[k + 1]
                durations[si].append(float(time_days[k + 1] - time_days[k]))
                if nxt == lost:
                    lost_count[si] += 1
                else:
                    target = "checkout" if nxt in checkout else nxt
                    exits[si][target] = exits[si].get(target, 0) + 1
            else:
                open_days[si].append(float(end_days - time_days[k]))
            k += 1
        i = j
    out = {}
    for si, name in enumerate(names):
        d = np.asarray(durations[si])
        targets = tuple(sorted(exits[si], key=lambda t: (-exits[si][t], t)))
        out[name] = StageVisits(
            name=name, durations=d[d > 0], n_instant=int((d <= 0).sum()), targets=targets,
            counts=np.array([exits[si][t] for t in targets], dtype=float),
            n_lost=lost_count[si], open_days=np.asarray(open_days[si]),
            lost_recorded=lost is not None, resolution_days=float(resolution_days))
    return out


# ------------------------------------------------------------------ dwell families
def dwell_logpdf(kind: str, theta: Sequence[float], d: np.ndarray) -> np.ndarray:
    """Log density of the dwell family ``kind`` with native parameters ``theta``:
    exponential (scale), gamma (shape, scale), lognormal (sigma, scale = e^mu),
    weibull (shape, scale); days."""
    d = np.asarray(d, dtype=float)
    if kind == "exponential":
        (s,) = theta
        return -math.log(s) - d / s
    if kind == "gamma":
        k, s = theta
        return (k - 1) * np.log(d) - d / s - special.gammaln(k) - k * math.log(s)
    if kind == "lognormal":
        sigma, s = theta
        z = (np.log(d) - math.log(s)) / sigma
        return -np.log(d) - math.log(sigma) - 0.5 * math.log(2 * math.pi) - 0.5 * z * z
    k, s = theta
    y = d / s
    return math.log(k) - math.log(s) + (k - 1) * np.log(y) - y**k


def dwell_logsf(kind: str, theta: Sequence[float], c: np.ndarray) -> np.ndarray:
    """Log survival function log P(dwell > c)."""
    c = np.asarray(c, dtype=float)
    if kind == "exponential":
        return -c / theta[0]
    if kind == "gamma":
        return np.log(np.maximum(special.gammaincc(theta[0], c / theta[1]), 1e-300))
    if kind == "lognormal":
        return special.log_ndtr(-(np.log(np.maximum(c, 1e-300)) - math.log(theta[1]))
                                / theta[0])
    return -((c / theta[1]) ** theta[0])


def dwell_logcdf(kind: str, theta: Sequence[float], c: np.ndarray) -> np.ndarray:
    """Log distribution function log P(dwell <= c)."""
    c = np.asarray(c, dtype=float)
    if kind == "exponential":
        return np.log(np.maximum(-np.expm1(-c / theta[0]), 1e-300))
    if kind == "gamma":
        return np.log(np.maximum(special.gammainc(theta[0], c / theta[1]), 1e-300))
    if kind == "lognormal":
        return special.log_ndtr((np.log(np.maximum(c, 1e-300)) - math.log(theta[1]))
                                / theta[0])
    return np.log(np.maximum(-np.expm1(-((c / theta[1]) ** theta[0])), 1e-300))


def _exp(x: float) -> float:
    """``math.exp`` that gives infinity instead of raising ``OverflowError`` (a parameter far
    out in a flat likelihood, or an interval without an upper end)."""
    return math.inf if x >= 709.0 else math.exp(x)


def _cv_of_log(d: float) -> float:
    """sqrt(exp(d) - 1): the cv from log(1 + cv^2), infinite when that overflows and 0 for
    a rounding error below zero."""
    return math.inf if d >= 709.0 else math.sqrt(max(math.expm1(d), 0.0))


def _mean_cv(kind: str, theta: Sequence[float]) -> tuple[float, float]:
    if kind == "exponential":
        return float(theta[0]), 1.0
    if kind == "gamma":
        return float(theta[0] * theta[1]), float(1 / math.sqrt(theta[0]))
    if kind == "lognormal":
        sigma, s = theta
        return float(s * _exp(sigma**2 / 2)), _cv_of_log(sigma**2)
    k, s = theta
    g1, g2 = special.gammaln(1 + 1 / k), special.gammaln(1 + 2 / k)
    return float(s * _exp(g1)), _cv_of_log(float(g2 - 2 * g1))


def _starts(kind: str, mean: float, cv: float) -> list[np.ndarray]:
    """Native parameters matching a mean and a cv, for a few cvs around the sample's."""
    out = []
    for v in dict.fromkeys((cv, cv * 0.6, cv * 1.6)):
        v = min(max(v, 0.1), 5.0)
        if kind == "exponential":
            out.append(np.array([mean]))
            break
        if kind == "gamma":
            k = 1 / v**2
            out.append(np.array([k, mean / k]))
        elif kind == "lognormal":
            sigma = math.sqrt(math.log1p(v * v))
            out.append(np.array([sigma, mean * math.exp(-sigma**2 / 2)]))
        else:
            k = v**-1.086
            out.append(np.array([k, mean / math.exp(special.gammaln(1 + 1 / k))]))
    return out


# ------------------------------------------------------------------------- fits
@dataclass(frozen=True)
class DwellFit:
    """One dwell family fitted to a stage: mean and cv (days) with standard errors."""

    kind: str
    mean_days: float
    cv: float
    mean_se: float
    cv_se: float
    loglik: float  # of the whole stage (dwell and exits)
    aic: float
    theta: tuple[float, ...]  # native parameters (see ``dwell_logpdf``)
    lost_prob: float  # the probability of being lost under this fit

    def interval(self, z: float = Z95) -> dict[str, tuple[float, float]]:
        """Wald intervals on the log scale (means and cvs are positive)."""
        out = {}
        for key, est, se in (("mean_days", self.mean_days, self.mean_se),
                             ("cv", self.cv, self.cv_se)):
            f = _exp(z * se / est) if est > 0 else math.nan
            out[key] = (est / f, est * f)
        return out


@dataclass(frozen=True)
class ExitEstimate:
    """An exit probability with standard error and a 95% interval (logit-scale Wald, or
    Clopper-Pearson when the estimate is 0 or 1)."""

    target: str
    prob: float
    se: float
    low: float
    high: float
    count: int  # completed visits observed to take it (losses: only when recorded)


@dataclass(frozen=True)
class StageFit:
    """A stage's fitted dwell time (the chosen family and every candidate) and exits."""

    name: str
    dwell: DwellFit
    candidates: dict[str, DwellFit]
    exits: tuple[ExitEstimate, ...]  # to stages and checkout, then LOST
    n_completed: int
    n_open: int
    lost_recorded: bool
    warnings: tuple[str, ...]

    @property
    def probs(self) -> dict[str, float]:
        return {e.target: e.prob for e in self.exits}


def _logit_interval(p: float, se: float, z: float) -> tuple[float, float]:
    if not 0 < p < 1 or not np.isfinite(se):
        return p, p
    half = z * se / (p * (1 - p))
    centre = math.log(p / (1 - p))
    return float(special.expit(centre - half)), float(special.expit(centre + half))


def _stage_loglik(v: StageVisits, kind: str, theta: Sequence[float], probs: np.ndarray,
                  p_lost: float) -> float:
    """The stage's full log-likelihood: dwell, exits and open visits."""
    ll = float(dwell_logpdf(kind, theta, v.durations).sum())
    if v.n_instant:
        ll += v.n_instant * float(dwell_logcdf(kind, theta, np.array([v.resolution_days]))[0])
    if np.any(probs <= 0) or p_lost < 0 or (v.n_lost and p_lost <= 0):
        return -math.inf
    ll += float(v.counts @ np.log(probs)) + (v.n_lost * math.log(p_lost) if v.n_lost else 0.0)
    if v.open_days.size:
        logsf = dwell_logsf(kind, theta, v.open_days)
        if v.lost_recorded or p_lost == 0:
            ll += float(logsf.sum())
        elif p_lost < 1:  # S + F p_lost = p_lost + (1 - p_lost) S (1 when p_lost = 1)
            ll += float(np.logaddexp(math.log(p_lost), math.log1p(-p_lost) + logsf).sum())
    return ll


def _fit_kind(v: StageVisits, kind: str, z: float) -> tuple[DwellFit, tuple[ExitEstimate, ...],
                                                            list[str]]:
    n_exit = float(v.counts.sum())
    all_d = np.r_[v.durations, np.full(v.n_instant, v.resolution_days / 2)]
    mean0 = float(all_d.mean())
    cv0 = float(all_d.std() / mean0) if all_d.size > 1 and mean0 > 0 else 1.0
    share = v.counts / n_exit if n_exit else v.counts
    infer = not v.lost_recorded and v.open_days.size > 0
    n_theta = 1 if kind == "exponential" else 2

    def split(u: np.ndarray) -> tuple[np.ndarray, float]:
        theta = np.exp(u[:n_theta])
        if infer:
            return theta, float(special.expit(u[n_theta]))
        total = n_exit + v.n_lost
        return theta, (v.n_lost / total if total else 0.0)

    def profile(u: np.ndarray) -> float:
        theta, p_lost = split(u)
        with np.errstate(all="ignore"):
            ll = _stage_loglik(v, kind, theta, share * (1 - p_lost), p_lost)
        return -ll if np.isfinite(ll) else 1e300

    starts = []
    for theta0 in _starts(kind, mean0, cv0):
        for lost0 in ((0.1, 0.5) if infer else (None,)):
            u0 = np.log(theta0)
            starts.append(np.r_[u0, special.logit(lost0)] if lost0 is not None else u0)
    # the two most promising starting points, each polished by Nelder-Mead
    best = None
    for u0 in sorted(starts, key=profile)[:2]:
        with np.errstate(all="ignore"):
            res = optimize.minimize(profile, u0, method="Nelder-Mead",
                                    options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 8000,
                                             "maxfev": 16000})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    if not best.fun < 1e299:
        raise CalibrationError(f"stage {v.name!r}: the likelihood of the {kind} dwell time is "
                               "zero at every starting point")
    theta, p_lost = split(best.x)
    warnings = []
    lost_free = infer and p_lost > 1e-7
    if infer and not lost_free:
        p_lost = 0.0
    if v.lost_recorded and v.n_lost:
        lost_free = True

    # the full parameter vector: log theta, then every exit probability but the reference
    # (the most taken exit) and lost when it can happen; the rest sums to one
    outcomes = [*v.targets, LOST] if lost_free else list(v.targets)
    values = np.r_[share * (1 - p_lost), [p_lost] if lost_free else []]
    ref = 0 if outcomes else -1
    free = [i for i in range(len(outcomes)) if i != ref]

    def full(phi: np.ndarray) -> float:
        th = np.exp(phi[:n_theta])
        pr = values.copy()
        pr[free] = phi[n_theta:]
        if ref >= 0:
            pr[ref] = 1.0 - pr[free].sum()
        pl = pr[-1] if lost_free else 0.0
        with np.errstate(all="ignore"):
            return _stage_loglik(v, kind, th, pr[:len(v.targets)], pl)

    phi0 = np.r_[np.log(theta), values[free]]
    with np.errstate(all="ignore"):
        hess = -numerical_hessian(full, phi0, step=1e-5)
    ok = np.all(np.isfinite(hess)) and np.linalg.eigvalsh(hess).min() > 0
    if not ok:
        raise CalibrationError(
            f"stage {v.name!r}: the {kind} dwell-time fit is not a proper maximum "
            f"({v.n_completed} completed and {v.open_days.size} unfinished visits are too "
            "few or too alike)")
    cov = np.linalg.inv(hess)
    loglik = full(phi0)

    def mean_of(phi: np.ndarray) -> float:
        return _mean_cv(kind, np.exp(phi[:n_theta]))[0]

    def cv_of(phi: np.ndarray) -> float:
        return _mean_cv(kind, np.exp(phi[:n_theta]))[1]

    mean, cv = _mean_cv(kind, theta)
    fit = DwellFit(kind, mean, cv, delta_se(mean_of, phi0, cov),
                   0.0 if kind == "exponential" else delta_se(cv_of, phi0, cov),
                   loglik, 2 * n_theta - 2 * loglik, tuple(float(t) for t in theta),
                   float(p_lost))

    exits = []
    n_visits = v.n_completed + (v.open_days.size if infer else 0)
    for i, target in enumerate(outcomes):
        grad = np.zeros(phi0.size)
        if i in free:
            grad[n_theta + free.index(i)] = 1.0
        else:  # the reference: one minus the others
            grad[n_theta:] = -1.0
        se = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
        p = float(values[i])
        low, high = _logit_interval(p, se, z)
        if len(outcomes) == 1:  # the only outcome: 1 for sure, Clopper-Pearson bound
            low, high = (1 - special.ndtr(z)) ** (1 / max(n_visits, 1)), 1.0
        count = int(v.counts[i]) if i < len(v.targets) else v.n_lost
        exits.append(ExitEstimate(target, p, se, low, high, count))
    if not lost_free:  # never lost: estimate 0, Clopper-Pearson upper bound
        upper = 1 - (1 - special.ndtr(z)) ** (1 / max(n_visits, 1))
        exits.append(ExitEstimate(LOST, 0.0, 0.0, 0.0, float(upper), 0))
    return fit, tuple(exits), warnings


def fit_stage(v: StageVisits, kinds: Sequence[str] = FIT_KINDS, z: float = Z95) -> StageFit:
    """Fit each dwell family (with the stage's exits) and keep the lowest AIC.

    ``fixed`` is chosen when every completed visit lasted exactly the same positive time.

    Raises
    ------
    CalibrationError : a stage without completed visits, or a fit that is not a proper
        maximum.
    """
    if v.n_completed == 0:
        raise CalibrationError(f"stage {v.name!r}: no completed visit (every visit is still "
                               "open at the end of the data), so its dwell time and exits "
                               "cannot be estimated")
    warnings = []
    d = v.durations
    if d.size >= 2 and v.n_instant == 0 and np.ptp(d) <= 1e-9 * d.max():
        return _fit_fixed(v, float(d[0]), z)
    distinct = np.unique(np.r_[d, np.zeros(1 if v.n_instant else 0)]).size
    if distinct < 3:
        kinds = ("exponential",)
        warnings.append(f"stage {v.name!r}: fewer than three distinct visit lengths, so only "
                        "the exponential dwell time is fitted")
    candidates: dict[str, DwellFit] = {}
    exit_sets = {}
    problems = []
    for kind in kinds:
        try:
            candidates[kind], exit_sets[kind], more = _fit_kind(v, kind, z)
        except CalibrationError as err:
            problems.append(str(err))
            continue
        warnings += more
    if not candidates:
        raise CalibrationError(problems[0])
    best = min(candidates, key=lambda k: candidates[k].aic)
    chosen = candidates[best]
    lo, hi = CV_RANGE.get(best, (0.0, math.inf))
    if not lo <= chosen.cv <= hi:
        warnings.append(f"stage {v.name!r}: fitted cv {chosen.cv:.3g} of the {best} dwell "
                        f"time is outside the simulator's range [{lo:g}, {hi:g}]; the config "
                        "uses the nearest allowed value")
    return StageFit(v.name, chosen, candidates, exit_sets[best], v.n_completed,
                    int(v.open_days.size), v.lost_recorded, tuple(warnings))


def _fit_fixed(v: StageVisits, length: float, z: float) -> StageFit:
    """Every completed visit lasted ``length``: a fixed dwell; open visits older than that
    were lost (when losses are not recorded), younger ones are still in the stage."""
    n_exit = float(v.counts.sum())
    gone = int((v.open_days >= length).sum()) if not v.lost_recorded else 0
    n_lost = v.n_lost + gone
    total = n_exit + n_lost
    outcomes = [*v.targets, LOST]
    counts = np.r_[v.counts, n_lost]
    exits = []
    for target, k in zip(outcomes, counts, strict=True):
        p = float(k / total)
        se = math.sqrt(p * (1 - p) / total)
        low, high = _logit_interval(p, se, z)
        if p in (0.0, 1.0):
            tail = (1 - special.ndtr(z)) ** (1 / total)
            low, high = (0.0, 1 - tail) if p == 0 else (tail, 1.0)
        exits.append(ExitEstimate(target, p, se, low, high, int(k)))
    fit = DwellFit("fixed", length, 0.0, 0.0, 0.0, math.nan, math.nan, (length,),
                   float(n_lost / total))
    return StageFit(v.name, fit, {"fixed": fit}, tuple(exits), v.n_completed,
                    int(v.open_days.size), v.lost_recorded, ())


def channel_multiplier(fits: dict[str, StageFit], visits: dict[str, StageVisits],
                       order: Sequence[str], z: float = Z95) -> tuple[float, float, float, float]:
    """Odds multiplier on the forward exits (to a later stage or the checkout) of one
    channel's prospects against the pooled fit, as the simulator's channel ``quality``.

    ``visits`` are the channel's own visits; the dwell times and the pooled exit
    probabilities are held fixed and the multiplier m shifts them as in
    ``sim.model.spec.odds_shift``. Returns (m, standard error, low, high), a log-scale interval.
    """
    pos = {s: i for i, s in enumerate(order)}
    terms = []
    for name, v in visits.items():
        fit = fits[name]
        probs = fit.probs
        targets = [t for t in probs if t != LOST]
        base = np.array([probs[t] for t in targets])
        forward = np.array([t == "checkout" or pos.get(t, -1) > pos[name] for t in targets])
        counts = np.array([v.counts[v.targets.index(t)] if t in v.targets else 0.0
                           for t in targets])
        extra = [t for t in v.targets if t not in targets]
        if extra:
            raise CalibrationError(f"stage {name!r}: exit {extra[0]!r} of a channel is not in "
                                   "the pooled fit")
        if v.open_days.size and not v.lost_recorded and fit.dwell.kind != "fixed":
            surv = np.exp(dwell_logsf(fit.dwell.kind, fit.dwell.theta, v.open_days))
        elif v.open_days.size and not v.lost_recorded:
            surv = (v.open_days < fit.dwell.mean_days).astype(float)
        else:
            surv = np.zeros(0)
        terms.append((base, forward, counts, v.n_lost, surv))

    def loglik(log_m: float) -> float:
        ll = 0.0
        for base, forward, counts, n_lost, surv in terms:
            shifted = odds_shift(base, forward, math.exp(log_m))
            p_lost = max(0.0, 1.0 - float(shifted.sum()))
            with np.errstate(divide="ignore"):
                ll += float(counts @ np.log(np.where(counts > 0, shifted, 1.0)))
                if n_lost:
                    ll += n_lost * math.log(p_lost) if p_lost > 0 else -math.inf
                if surv.size:  # open visits: still in the stage, or left and were lost
                    ll += float(np.log(p_lost + (1 - p_lost) * surv).sum())
        return ll

    res = optimize.minimize_scalar(lambda u: -loglik(u), bounds=(-8.0, 8.0), method="bounded",
                                   options={"xatol": 1e-8})
    u = float(res.x)
    h = 1e-4
    curv = -(loglik(u + h) - 2 * loglik(u) + loglik(u - h)) / h**2
    if not curv > 0 or abs(u) > 7.9:
        return math.exp(u), math.nan, math.nan, math.nan
    se_log = 1 / math.sqrt(curv)
    m = math.exp(u)
    return m, m * se_log, math.exp(u - z * se_log), _exp(u + z * se_log)

"""Repeat buying (BG/NBD) and spend (Gamma-Gamma) fitted by maximum likelihood.

Pure numpy/scipy: the likelihoods as published, fitted on the log scale with the
multi-start optimiser and Hessian standard errors of ``mle``, and the model's predictions
(expected purchases, P(alive), histograms of repeat purchases, discounted expected
purchases and spend).

Data are one row per customer: ``x`` repeat purchases after the first, ``t_x`` the age of
the last of them (0 when ``x`` is 0) and ``T`` the age at the end of the calibration
period, ages measured from the first purchase in one time unit (days or weeks; the rate
parameter ``alpha`` is in that unit). For spend, ``m`` is the mean value of the ``x``
repeat purchases of customers with ``x >= 1``.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
way: an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
customer base analysis. *Journal of Marketing Research* 42(4), 415-430.
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from sim.calibrate.mle import CalibrationError, MLFit, maximize

__all__ = [
    "BGNBD_NAMES",
    "GG_NAMES",
    "bgnbd_conditional_expected",
    "bgnbd_discounted_purchases",
    "bgnbd_expected",
    "bgnbd_loglik",
    "bgnbd_p_alive",
    "bgnbd_pmf",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gg_conditional_mean",
    "gg_loglik",
    "gg_order_value",
]

BGNBD_NAMES = ("r", "alpha", "a", "b")
GG_NAMES = ("p", "q", "gamma")
NODES = 64  # Gauss-Jacobi nodes for expectations over p (twice as many Gauss-Legendre in time)


# ------------------------------------------------------------ fits on the log scale
def _positive_fit(loglik_log: Callable[[np.ndarray], float], starts: Sequence[np.ndarray],
                  names: Sequence[str], n_obs: int, model: str, scale: np.ndarray,
                  ll_offset: float) -> MLFit:
    """Fit positive parameters on the log scale; ``scale`` converts the scaled parameters
    back to the data's units and ``ll_offset`` the log-likelihood."""
    u, ll, cov_u, warnings, (n_starts, n_conv, n_best) = maximize(
        loglik_log, [np.log(s) for s in starts], names, n_obs, model)
    est = np.exp(u)
    # d theta = theta d log(theta): the covariance of theta from that of log(theta)
    cov = cov_u * np.outer(est, est) * np.outer(scale, scale)
    est = est * scale
    return MLFit(tuple(names), est, np.sqrt(np.diag(cov)), cov, ll + ll_offset, n_obs,
                 n_starts, n_conv, n_best, tuple(warnings))


# ----------------------------------------------------------------------------- BG/NBD
def bgnbd_loglik(params: Sequence[float], x: np.ndarray, t_x: np.ndarray,
                 big_t: np.ndarray) -> np.ndarray:
    """Log-likelihood of each customer under the BG/NBD model.

    L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / Gamma(r)
        * [ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]

    Parameters
    ----------
    params : (r, alpha, a, b); lambda ~ Gamma(shape r, rate alpha) per time unit,
        drop-out p ~ Beta(a, b) after each repeat purchase.
    x, t_x, big_t : repeat purchases, age at the last one, age at the end of the period.

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way, equation (6).
    """
    r, alpha, a, b = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    t_x, big_t = np.asarray(t_x, dtype=float), np.asarray(big_t, dtype=float)
    rep = x > 0
    base = (special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha)
            + special.betaln(a, b + x) - special.betaln(a, b))
    alive = -(r + x) * np.log(alpha + big_t)
    gone = np.where(rep, math.log(a) - np.log(np.where(rep, b + x - 1, 1.0))
                    - (r + x) * np.log(alpha + t_x), -np.inf)
    return base + np.logaddexp(alive, gone)


def bgnbd_p_alive(params: Sequence[float], x: np.ndarray, t_x: np.ndarray,
                  big_t: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way, equation (11).
    """
    r, alpha, a, b = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    t_x, big_t = np.asarray(t_x, dtype=float), np.asarray(big_t, dtype=float)
    rep = x > 0
    log_ratio = (math.log(a) - np.log(np.where(rep, b + x - 1, 1.0))
                 + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)))
    return np.where(rep, special.expit(-log_ratio), 1.0)


def bgnbd_pmf(params: Sequence[float], x: int, t: np.ndarray) -> np.ndarray:
    """P(X(t) = x): probability of ``x`` repeat purchases in ``(0, t]`` after the first.

    P = B(a, b+x)/B(a, b) NB(x; r, alpha/(alpha+t))
        + [x>0] B(a+1, b+x-1)/B(a, b) P(NB(r, alpha/(alpha+t)) >= x)

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way, equation (8).
    """
    r, alpha, a, b = (float(v) for v in params)
    t = np.asarray(t, dtype=float)
    prob = alpha / (alpha + t)
    first = math.exp(special.betaln(a, b + x) - special.betaln(a, b)) * stats.nbinom.pmf(
        x, r, prob)
    if x == 0:
        return first
    return first + math.exp(special.betaln(a + 1, b + x - 1) - special.betaln(a, b)) * \
        stats.nbinom.sf(x - 1, r, prob)


@dataclass(frozen=True)
class _Nodes:
    """Gauss quadrature nodes and probability weights for p ~ Beta(a, b)."""

    p: np.ndarray
    w: np.ndarray


def _beta_nodes(a: float, b: float, n: int = NODES) -> _Nodes:
    # Gauss-Jacobi on [-1, 1] with weight (1-u)^(b-1) (1+u)^(a-1), p = (1+u)/2
    u, w = special.roots_jacobi(n, b - 1.0, a - 1.0)
    return _Nodes((1.0 + u) / 2.0, w / w.sum())


def bgnbd_expected(params: Sequence[float], t: np.ndarray) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in ``(0, t]`` after the first purchase.

    Given lambda and p, a customer alive at 0 buys at rate lambda e^(-p lambda s) at age s,
    so E[X(t) | lambda, p] = (1 - e^(-p lambda t)) / p; the Gamma average over lambda is
    closed and the Beta average over p is done by Gauss-Jacobi quadrature. Equal to the
    published closed form (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1;
    t/(alpha+t))] where that applies (a > 1), and valid for every a > 0.

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way, equation (9).
    """
    r, alpha, a, b = (float(v) for v in params)
    t = np.atleast_1d(np.asarray(t, dtype=float))
    nodes = _beta_nodes(a, b)
    pt = np.outer(t, nodes.p)
    inner = -np.expm1(-r * np.log1p(pt / alpha)) / nodes.p
    return inner @ nodes.w


def _by_x(x: np.ndarray, fn: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn(x_value, index)`` to the customers of each distinct ``x`` (shared nodes)."""
    x = np.asarray(x).astype(np.int64)
    out = np.empty(x.size)
    for value in np.unique(x):
        idx = np.flatnonzero(x == value)
        out[idx] = fn(int(value), idx)
    return out


def bgnbd_conditional_expected(params: Sequence[float], t: float, x: np.ndarray,
                               t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in ``(T, T + t]`` of each customer.

    P(alive) times the expectation under the posterior of an alive customer,
    lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x) (independent), of
    (1 - e^(-p lambda t)) / p. Equal to the published closed form with 2F1 where that
    applies (a > 1).

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way, equation (10).
    """
    r, alpha, a, b = (float(v) for v in params)
    big_t = np.asarray(big_t, dtype=float)
    alive = bgnbd_p_alive(params, x, t_x, big_t)

    def one(value: int, idx: np.ndarray) -> np.ndarray:
        nodes = _beta_nodes(a, b + value)
        scale = alpha + big_t[idx]
        inner = -np.expm1(-(r + value) * np.log1p(np.outer(t / scale, nodes.p))) / nodes.p
        return inner @ nodes.w

    return alive * _by_x(x, one)


def bgnbd_discounted_purchases(params: Sequence[float], x: np.ndarray, t_x: np.ndarray,
                               big_t: np.ndarray, delta: float,
                               horizon: float = math.inf) -> np.ndarray:
    """Discounted expected purchases (DET) of each customer from ``T`` to ``T + horizon``.

    DET = integral over (0, H] of e^(-delta s) dE[Y(s) | x, t_x, T], with continuous
    discounting at ``delta`` per time unit. For a customer alive at T the purchase rate s
    later is E[lambda e^(-p lambda s)] over the posterior lambda ~ Gamma(r + x, alpha + T),
    p ~ Beta(a, b + x); the lambda average is closed,
    (r + x) / (alpha + T) * (1 + p s / (alpha + T))^-(r + x + 1), the p average is done by
    Gauss-Jacobi quadrature and the s integral by Gauss-Legendre quadrature in
    log(1 + s / (alpha + T)); the result is multiplied by P(alive). A new customer at the
    first purchase is x = t_x = T = 0. An infinite horizon needs ``delta`` > 0.

    References
    ----------
    Fader, Hardie & Lee (2005), RFM and CLV: using iso-value curves for customer base
    analysis (discounted expected transactions); the BG/NBD posterior as in
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way.
    """
    r, alpha, a, b = (float(v) for v in params)
    big_t = np.asarray(big_t, dtype=float)
    if math.isinf(horizon):
        if delta <= 0:
            raise ValueError("an infinite horizon needs a positive discount rate")
        horizon = 40.0 / delta  # e^-40: nothing left to count beyond
    alive = bgnbd_p_alive(params, x, t_x, big_t)
    v, wv = special.roots_legendre(2 * NODES)

    def one(value: int, idx: np.ndarray) -> np.ndarray:
        nodes = _beta_nodes(a, b + value)
        shape = r + value
        out = np.empty(idx.size)
        for start in range(0, idx.size, 1024):
            scale = alpha + big_t[idx[start:start + 1024]]  # (n,)
            top = np.log1p(horizon / scale)
            u = (v[None, :] + 1) / 2 * top[:, None]  # (n, k): s = scale (e^u - 1)
            s = scale[:, None] * np.expm1(u)
            ds = scale[:, None] * np.exp(u) * top[:, None] / 2 * wv[None, :]
            rate = shape / scale[:, None, None] * np.exp(
                -(shape + 1) * np.log1p(nodes.p[None, None, :] * (s / scale[:, None])[:, :, None]))
            out[start:start + scale.size] = np.einsum("nkp,p,nk->n", rate, nodes.w,
                                                      ds * np.exp(-delta * s))
        return out

    return alive * _by_x(x, one)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, n_starts: int = 6) -> MLFit:
    """Maximum-likelihood BG/NBD parameters (r, alpha, a, b) with standard errors.

    Ages are scaled to a mean T of 1 for the optimiser (alpha scales with them); several
    starting points are tried (``n_starts``, at least 2) and must agree.

    Raises
    ------
    CalibrationError : no customers, no repeat buyers, or a likelihood that cannot
        identify the parameters.

    References
    ----------
    Fader, Hardie & Lee (2005), "Counting your customers" the easy way.
    """
    x = np.asarray(x, dtype=float)
    t_x, big_t = np.asarray(t_x, dtype=float), np.asarray(big_t, dtype=float)
    if x.size < 2:
        raise CalibrationError("BG/NBD: fitting needs many customers, got "
                               f"{x.size}")
    if not np.any(x > 0):
        raise CalibrationError("BG/NBD: no customer bought again after the first purchase, so "
                               "repeat buying cannot be fitted")
    if not np.any(big_t > 0):
        raise CalibrationError("BG/NBD: every customer made the first purchase at the end of "
                               "the calibration period (no time observed)")
    scale = float(big_t.mean())
    xs, ts, tts = x, t_x / scale, big_t / scale
    offset = -float(x.sum()) * math.log(scale)  # density of ages in the data's units

    def loglik(u: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return float(bgnbd_loglik(np.exp(u), xs, ts, tts).sum())

    rate = max(float(x.sum() / tts.sum()), 1e-3)
    grid = [(1.0, 1.0, 3.0), (0.5, 0.5, 5.0), (2.0, 2.0, 10.0), (0.3, 1.0, 1.0),
            (5.0, 3.0, 3.0), (1.0, 0.3, 2.0), (0.7, 5.0, 30.0), (3.0, 1.5, 0.8)]
    starts = [np.array([r0, r0 / rate, a0, b0])
              for r0, a0, b0 in grid[:max(2, n_starts)]]
    return _positive_fit(loglik, starts, BGNBD_NAMES, x.size, "BG/NBD",
                         np.array([1.0, scale, 1.0, 1.0]), offset)


# -------------------------------------------------------------------------- Gamma-Gamma
def gg_loglik(params: Sequence[float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Log-likelihood of each customer's mean repeat-purchase value under Gamma-Gamma.

    Values z ~ Gamma(shape p, rate nu) per purchase, nu ~ Gamma(shape q, rate gamma) per
    customer; the mean m of x values has density
    Gamma(px+q)/(Gamma(px) Gamma(q)) gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q).

    References
    ----------
    Fader, Hardie & Lee (2005), RFM and CLV, section "Adding monetary value";
    Fader & Hardie (2013), The Gamma-Gamma model of monetary value, equation (3).
    """
    p, q, g = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
            + q * math.log(g) + (px - 1) * np.log(m) + px * np.log(x)
            - (px + q) * np.log(g + m * x))


def gg_conditional_mean(params: Sequence[float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[Z | x, m]: expected value of a customer's future purchase, p (gamma + m x) /
    (p x + q - 1); the population mean p gamma / (q - 1) for x = 0 (needs q > 1).

    References
    ----------
    Fader, Hardie & Lee (2005), RFM and CLV, equation (A5); Fader & Hardie (2013).
    """
    p, q, g = (float(v) for v in params)
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.asarray(m, dtype=float), 0.0)
    return p * (g + m * x) / (p * x + q - 1)


def gg_order_value(params: Sequence[float]) -> tuple[float, float]:
    """Mean and coefficient of variation of a single purchase value across customers.

    E[z] = p gamma / (q - 1) (q > 1); cv^2 = (p + q - 1) / (p (q - 2)) (q > 2; infinite
    otherwise). These are what the simulator's lognormal order value (mean, cv) matches.
    """
    p, q, g = (float(v) for v in params)
    mean = p * g / (q - 1) if q > 1 else math.inf
    cv = math.sqrt((p + q - 1) / (p * (q - 2))) if q > 2 else math.inf
    return mean, cv


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray, n_starts: int = 6) -> MLFit:
    """Maximum-likelihood Gamma-Gamma parameters (p, q, gamma) from the repeat buyers.

    ``x`` >= 1 repeat purchases and ``m`` > 0 their mean value, one entry per repeat buyer.
    Values are scaled to a mean of 1 for the optimiser (gamma scales with them).

    Raises
    ------
    CalibrationError : fewer than two repeat buyers, or a likelihood that cannot identify
        the parameters (for example no spread of spend between customers).

    References
    ----------
    Fader, Hardie & Lee (2005), RFM and CLV; Fader & Hardie (2013).
    """
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    if x.size < 2:
        raise CalibrationError(f"Gamma-Gamma: needs at least two repeat buyers, got {x.size}")
    if np.any(x < 1) or np.any(m <= 0):
        raise CalibrationError("Gamma-Gamma: every customer needs x >= 1 repeat purchases "
                               "of positive mean value")
    scale = float(m.mean())
    ms = m / scale
    offset = -x.size * math.log(scale)

    def loglik(u: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return float(gg_loglik(np.exp(u), x, ms).sum())

    grid = [(1.0, 3.0), (5.0, 10.0), (0.5, 2.5), (10.0, 50.0), (2.0, 5.0), (20.0, 4.0)]
    starts = [np.array([p0, q0, (q0 - 1) / p0]) for p0, q0 in grid[:max(2, n_starts)]]
    return _positive_fit(loglik, starts, GG_NAMES, x.size, "Gamma-Gamma",
                         np.array([1.0, 1.0, scale]), offset)

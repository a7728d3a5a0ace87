"""Maximum likelihood shared by the fits: the error they raise, the fit record, a
multi-start optimiser with convergence checks, Hessian standard errors and the delta method.

Pure numpy/scipy. ``buying`` (repeat buying and spend) and ``funnel`` (the pre-purchase
funnel) build their fits on it; ``CalibrationError`` is the one error every part of the
calibration raises for bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from sim.errors import InputError

__all__ = ["CalibrationError", "MLFit", "delta_cov", "delta_se", "maximize",
           "numerical_hessian"]

LOG_BOUND = 16.0  # parameters live in [e^-16, e^16] after scaling the data to unit size


class CalibrationError(InputError):
    """The data cannot support the fit, or cannot be read: a one-line explanation."""


# --------------------------------------------------------------- maximum likelihood
@dataclass(frozen=True)
class MLFit:
    """A maximum-likelihood fit: estimates, standard errors, log-likelihood, checks.

    Attributes
    ----------
    names : parameter names.
    estimate, se : estimates and standard errors (square roots of the diagonal of the
        inverse observed information, the Hessian of -log L at the maximum).
    cov : their covariance matrix.
    loglik : the maximised log-likelihood (in the data's own units).
    n_obs : observations (customers) in the likelihood.
    n_starts, n_converged, n_at_best : starting points tried, runs the optimiser reported
        as converged, runs that reached the best log-likelihood (within 1e-3).
    warnings : anything a user should know about the fit.
    """

    names: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    loglik: float
    n_obs: int
    n_starts: int
    n_converged: int
    n_at_best: int
    warnings: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> float:
        return float(self.estimate[self.names.index(name)])

    def se_of(self, name: str) -> float:
        return float(self.se[self.names.index(name)])

    def as_dict(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.estimate, strict=True)}

    @property
    def log_cov(self) -> np.ndarray:
        """The covariance of the logs of the estimates, ``cov / outer(estimate, estimate)``:
        for a fit on the log scale (``buying``'s) exactly the inverse Hessian it was made
        from (``d theta = theta d log theta``). A rescaled parameter (alpha in days, not
        weeks) has the same log variance: its log differs by a constant."""
        return self.cov / np.outer(self.estimate, self.estimate)

    def interval(self, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
        """Wald intervals on the log scale, where the parameters (all positive) are fitted:
        ``estimate * exp(-+ z * se / estimate)`` (95% by default). Always positive, unlike
        ``estimate -+ z * se`` for a parameter whose SE is large against it."""
        f = np.exp(z * self.se / self.estimate)
        return self.estimate / f, self.estimate * f


def numerical_hessian(f: Callable[[np.ndarray], float], x: np.ndarray,
                      step: float = 1e-4) -> np.ndarray:
    """Hessian of ``f`` at ``x`` by central differences (step ``step`` in every coordinate)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    h = np.full(n, step)
    f0 = f(x)
    hess = np.empty((n, n))
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(n)
            ej[j] = h[j]
            hess[i, j] = hess[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                       + f(x - ei - ej)) / (4 * h[i] * h[j])
    return hess


def delta_se(g: Callable[[np.ndarray], float], estimate: np.ndarray, cov: np.ndarray) -> float:
    """Standard error of ``g(estimate)`` by the delta method (numerical gradient)."""
    estimate = np.asarray(estimate, dtype=float)
    grad = np.empty(estimate.size)
    for i in range(estimate.size):
        h = 1e-6 * max(abs(estimate[i]), 1e-8)
        up, down = estimate.copy(), estimate.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (g(up) - g(down)) / (2 * h)
    return float(math.sqrt(max(grad @ cov @ grad, 0.0)))


def delta_cov(g: Callable[[np.ndarray], Sequence[float]], estimate: np.ndarray,
              cov: np.ndarray) -> np.ndarray:
    """Covariance of the vector ``g(estimate)`` by the delta method, ``J cov J'`` (``J`` the
    Jacobian by central differences, the steps of ``delta_se``)."""
    estimate = np.asarray(estimate, dtype=float)
    jac = np.empty((len(g(estimate)), estimate.size))
    for i in range(estimate.size):
        h = 1e-6 * max(abs(estimate[i]), 1e-8)
        up, down = estimate.copy(), estimate.copy()
        up[i] += h
        down[i] -= h
        jac[:, i] = (np.asarray(g(up), dtype=float) - np.asarray(g(down), dtype=float)) / (2 * h)
    return jac @ np.asarray(cov, dtype=float) @ jac.T


def maximize(loglik: Callable[[np.ndarray], float], starts: Sequence[np.ndarray],
             names: Sequence[str], n_obs: int, model: str,
             bounds: Sequence[tuple[float, float]] | None = None
             ) -> tuple[np.ndarray, float, np.ndarray, list[str], tuple[int, int, int]]:
    """Maximise ``loglik(u)`` over an unconstrained vector ``u`` from several starts.

    Every start is run with L-BFGS-B (central-difference gradients) on the log-likelihood
    per observation; the best end point is kept. Checks: the optimum is not at a bound (the
    parameter would not be identified), the gradient there is small and the Hessian of
    -log L is positive definite (a proper maximum).

    Returns
    -------
    (u, loglik, covariance of u, warnings, (starts, converged, at best))

    Raises
    ------
    CalibrationError : when no start gives a finite likelihood, the maximum is on a bound,
        or the likelihood is flat in some direction.
    """
    dim = len(starts[0])
    bounds = list(bounds) if bounds is not None else [(-LOG_BOUND, LOG_BOUND)] * dim

    def objective(u: np.ndarray) -> float:
        value = loglik(u)
        return -value / n_obs if np.isfinite(value) else 1e300

    runs = []
    for u0 in starts:
        u0 = np.clip(np.asarray(u0, dtype=float), [b[0] for b in bounds], [b[1] for b in bounds])
        if not np.isfinite(loglik(u0)):
            continue
        with np.errstate(all="ignore"):
            res = optimize.minimize(objective, u0, method="L-BFGS-B", jac="3-point",
                                    bounds=bounds,
                                    options={"maxiter": 3000, "ftol": 1e-14, "gtol": 1e-9})
        if np.isfinite(res.fun) and res.fun < 1e299:
            runs.append((float(res.fun), res.x, bool(res.success)))
    if not runs:
        raise CalibrationError(f"{model}: the likelihood is zero at every starting point")
    best_fun, u, _ = min(runs, key=lambda run: run[0])
    n_conv = sum(ok for _, _, ok in runs)
    n_best = sum(abs(f - best_fun) * n_obs < 1e-3 for f, _, _ in runs)
    for i, (lo, hi) in enumerate(bounds):
        if u[i] - lo < 1e-2 or hi - u[i] < 1e-2:
            raise CalibrationError(
                f"{model}: the data cannot identify {names[i]} (its estimate runs to the "
                "edge of the parameter space)")
    with np.errstate(all="ignore"):
        hess = -numerical_hessian(lambda v: float(loglik(v)), u)
    ok = np.all(np.isfinite(hess))
    eig = np.linalg.eigvalsh(hess) if ok else np.array([-1.0])
    if not ok or eig.min() <= 1e-8 * max(eig.max(), 1.0):
        raise CalibrationError(
            f"{model}: the log-likelihood is flat in some direction at its maximum, so the "
            "data cannot pin the parameters down (too few customers or repeat purchases)")
    cov = np.linalg.inv(hess)
    grad = np.empty(dim)
    for i in range(dim):
        e = np.zeros(dim)
        e[i] = 1e-5
        grad[i] = (loglik(u + e) - loglik(u - e)) / 2e-5
    warnings = []
    # at a maximum the gradient is small against the curvature (a Newton step of < 0.01 SE)
    newton = np.abs(cov @ grad) / np.sqrt(np.diag(cov))
    if np.any(newton > 1e-2):
        warnings.append(f"{model}: the optimiser stopped short of the maximum (a further step "
                        f"of {newton.max():.2g} standard errors); estimates are approximate")
    if n_best < 2 and len(runs) > 1:
        warnings.append(f"{model}: only {n_best} of {len(runs)} starting points reached the "
                        "best log-likelihood; the maximum may be local")
    return u, -best_fun * n_obs, cov, warnings, (len(starts), n_conv, n_best)

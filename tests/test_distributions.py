"""Oracle tests for the dwell-time distributions (``sim.model.distributions``).

Every family is rebuilt here independently from (mean, cv) with the textbook parametrisation
(Law 2015, ch. 6) and scipy.stats; samples from ``make_dwell(...).sample`` must match its
declared ``mean`` / ``variance`` and the independent distribution.

Tolerances: 4 standard errors. The SE of the sample mean is sigma / sqrt(n); the SE of the
sample variance is sqrt((mu4 - sigma^4) / n), with the exact fourth central moment mu4 of the
independent distribution (a sample mu4 is itself too noisy for the heavy-tailed lognormal).
Shape is checked with the Kolmogorov-Smirnov statistic against the critical value
sqrt(ln(2 / alpha) / 2) / sqrt(n) at alpha = 0.001 (1.949 / sqrt(n)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from sim.model.distributions import KINDS, make_dwell

SEED = 20240611
N_SAMPLES = 200_000
K_SE = 4.0  # standard errors allowed for every statistical comparison
KS_CRIT = math.sqrt(math.log(2 / 0.001) / 2)  # Kolmogorov-Smirnov, alpha = 0.001

CASES = [
    ("exponential", 0.5, None),
    ("exponential", 7.0, None),
    ("gamma", 0.5, 0.3),
    ("gamma", 7.0, 1.0),
    ("gamma", 3.0, 1.5),
    ("lognormal", 0.5, 0.3),
    ("lognormal", 7.0, 1.0),
    ("lognormal", 3.0, 1.5),
    ("weibull", 0.5, 0.3),
    ("weibull", 7.0, 1.0),
    ("weibull", 3.0, 1.5),
]


def test_cases_cover_every_random_kind() -> None:
    assert {kind for kind, _, _ in CASES} == set(KINDS) - {"fixed"}


def reference(kind: str, mean: float, cv: float | None) -> stats.rv_continuous:
    """The same family built independently from mean and cv (a frozen scipy distribution)."""
    if kind == "exponential":
        return stats.expon(scale=mean)
    assert cv is not None
    if kind == "gamma":
        shape = cv**-2  # cv^2 = 1 / shape
        return stats.gamma(shape, scale=mean / shape)
    if kind == "lognormal":
        sigma2 = math.log(1 + cv**2)  # cv^2 = exp(sigma^2) - 1
        return stats.lognorm(math.sqrt(sigma2), scale=mean * math.exp(-sigma2 / 2))
    # Weibull: cv^2 = Gamma(1 + 2/k) / Gamma(1 + 1/k)^2 - 1, decreasing in k
    k = optimize.brentq(
        lambda k: special.gamma(1 + 2 / k) / special.gamma(1 + 1 / k) ** 2 - 1 - cv**2, 0.2, 50
    )
    return stats.weibull_min(k, scale=mean / special.gamma(1 + 1 / k))


def central_m4(dist: stats.rv_continuous) -> float:
    """Fourth central moment from the raw moments of the reference distribution."""
    m1, m2, m3, m4 = (dist.moment(k) for k in (1, 2, 3, 4))
    return m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4


@pytest.mark.parametrize(("kind", "mean", "cv"), CASES)
def test_declared_moments_match_family(kind: str, mean: float, cv: float | None) -> None:
    """``.mean`` and ``.variance`` are the requested ones, and those of the real family."""
    d = make_dwell(kind, mean, cv)
    ref = reference(kind, mean, cv)
    assert d.mean == pytest.approx(mean, rel=1e-12)
    assert d.variance == pytest.approx(((1.0 if cv is None else cv) * mean) ** 2, rel=1e-12)
    assert ref.mean() == pytest.approx(d.mean, rel=1e-9)
    assert ref.var() == pytest.approx(d.variance, rel=1e-8)


@pytest.mark.parametrize(("kind", "mean", "cv"), CASES)
def test_sample_moments(kind: str, mean: float, cv: float | None) -> None:
    """Sample mean and variance within 4 SE of ``.mean`` / ``.variance`` (seed SEED)."""
    d = make_dwell(kind, mean, cv)
    x = d.sample(np.random.default_rng(SEED), N_SAMPLES)
    assert x.shape == (N_SAMPLES,)
    assert np.all(x >= 0)
    se_mean = math.sqrt(d.variance / N_SAMPLES)
    se_var = math.sqrt((central_m4(reference(kind, mean, cv)) - d.variance**2) / N_SAMPLES)
    assert abs(x.mean() - d.mean) <= K_SE * se_mean
    assert abs(x.var(ddof=1) - d.variance) <= K_SE * se_var


@pytest.mark.parametrize(("kind", "mean", "cv"), CASES)
def test_sample_distribution_ks(kind: str, mean: float, cv: float | None) -> None:
    """The whole distribution, not only two moments: KS distance at alpha = 0.001 (seed)."""
    d = make_dwell(kind, mean, cv)
    x = d.sample(np.random.default_rng(SEED + 1), N_SAMPLES)
    ks = stats.kstest(x, reference(kind, mean, cv).cdf).statistic
    assert ks <= KS_CRIT / math.sqrt(N_SAMPLES)


@pytest.mark.parametrize("mean", [0.0, 0.01, 4.0])
def test_fixed_is_constant(mean: float) -> None:
    d = make_dwell("fixed", mean)
    x = d.sample(np.random.default_rng(SEED), 1000)
    assert d.mean == mean
    assert d.variance == 0.0
    assert np.all(x == mean)
    assert make_dwell("fixed", mean, 0).variance == 0.0


@pytest.mark.parametrize(("kind", "mean", "cv"), [*CASES, ("fixed", 2.0, None)])
def test_mean_change_scales_every_draw(kind: str, mean: float, cv: float | None) -> None:
    """Common random numbers: same stream, 2.5x the mean, every draw exactly 2.5x."""
    a = make_dwell(kind, mean, cv).sample(np.random.default_rng(SEED), 500)
    b = make_dwell(kind, 2.5 * mean, cv).sample(np.random.default_rng(SEED), 500)
    np.testing.assert_allclose(b, 2.5 * a, rtol=1e-12)


def test_sample_shape_tuple() -> None:
    x = make_dwell("gamma", 2.0, 0.5).sample(np.random.default_rng(SEED), (3, 4))
    assert x.shape == (3, 4)


BAD = [
    ("poisson", 1.0, 1.0, "kind"),
    ("exponential", 0.0, None, "mean_days"),
    ("exponential", -2.0, None, "mean_days"),
    ("exponential", 1.0, 0.5, "cv"),
    ("gamma", 0.0, 0.5, "mean_days"),
    ("gamma", -1.0, 0.5, "mean_days"),
    ("gamma", math.nan, 0.5, "mean_days"),
    ("gamma", 1.0, None, "cv"),
    ("gamma", 1.0, 0.0, "cv"),
    ("gamma", 1.0, math.nan, "cv"),
    ("lognormal", 1.0, -0.2, "cv"),
    ("lognormal", 0.0, 1.0, "mean_days"),
    ("weibull", 1.0, 20.0, "cv"),
    ("weibull", 1.0, 0.01, "cv"),
    ("weibull", 1.0, None, "cv"),
    ("fixed", -1.0, None, "mean_days"),
    ("fixed", 1.0, 0.3, "cv"),
]


@pytest.mark.parametrize(("kind", "mean", "cv", "param"), BAD)
def test_bad_parameters_raise_naming_the_parameter(
    kind: str, mean: float, cv: float | None, param: str
) -> None:
    with pytest.raises(ValueError, match=param):
        make_dwell(kind, mean, cv)


@pytest.mark.parametrize(
    ("kind", "mean", "cv", "param"),
    [
        ("exponential", math.inf, None, "mean_days"),
        ("gamma", math.inf, 0.5, "mean_days"),
        ("fixed", math.inf, None, "mean_days"),
        ("fixed", math.nan, None, "mean_days"),
        ("lognormal", math.nan, 1.0, "mean_days"),
        ("lognormal", 1.0, math.inf, "cv"),
        ("gamma", 1.0, math.inf, "cv"),
        ("weibull", 1.0, math.inf, "cv"),
        # cv so small that 1 / cv**2 overflows must be a ValueError, not ZeroDivisionError
        ("gamma", 1.0, 1e-200, "cv"),
        ("lognormal", 1.0, 1e-200, "cv"),
        ("gamma", 1.0, 1e6, "cv"),
    ],
)
def test_non_finite_or_extreme_parameters_raise(
    kind: str, mean: float, cv: float | None, param: str
) -> None:
    with pytest.raises(ValueError, match=param):
        make_dwell(kind, mean, cv)

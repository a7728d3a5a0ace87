"""The Gamma-Gamma order value model (``economics.order_value_model=gamma_gamma``).

Oracles (REFERENCES.md, Fader, Hardie & Lee 2005): each buyer's spend level is
nu ~ Gamma(q, rate gamma) and each of their orders Gamma(p, rate nu), so one order of a
random buyer is gamma x BetaPrime(p, q); and the maximum-likelihood fit of the
calibration (``fit_gamma_gamma``) recovers (p, q, gamma) from the simulated buyers' repeat
purchases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim.calibrate.buying import fit_gamma_gamma
from sim.engine import simulate
from sim.model.config import compose_config, to_container
from sim.model.spec import SpecError, build_spec

P, Q, GAMMA = 5.0, 4.0, 60.0  # mean order p gamma / (q - 1) = 100
KS_ALPHA = 0.001  # one fixed seed per engine: a false alarm 1 time in 1,000


def gamma_gamma_config(engine: str, size: int = 20_000) -> dict[str, Any]:
    """The baseline with Gamma-Gamma spend, one neutral segment, and frequent repeat
    buying that rarely stops (many repeat purchases per buyer, for the fit)."""
    cfg = to_container(compose_config([f"run.engine={engine}", f"market.size={size}",
                                       "economics.order_value_model=gamma_gamma",
                                       f"economics.gamma_gamma.p={P}",
                                       f"economics.gamma_gamma.q={Q}",
                                       f"economics.gamma_gamma.gamma={GAMMA}"]))
    cfg["market"]["segments"] = {"everyone": {"share": 1.0}}
    cfg["retention"]["repeat"] |= {"r": 4.0, "alpha_days": 60.0, "a": 1.0, "b": 20.0}
    cfg["experience"]["leave_after_bad"] = 0.0
    return cfg


def first_orders(result: Any) -> np.ndarray:
    p = result.purchases
    _, first = np.unique(p["customer"], return_index=True)
    return p["value"][first]


@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_one_order_per_buyer_follows_the_gamma_gamma_marginal(engine: str) -> None:
    """First orders, one per buyer (independent across buyers), against
    gamma x BetaPrime(p, q) by a Kolmogorov-Smirnov test (seed 3)."""
    spec = build_spec(gamma_gamma_config(engine))
    values = first_orders(simulate(spec, 3, 0))
    assert values.size > 500
    test = stats.kstest(values, stats.betaprime(P, Q, scale=GAMMA).cdf)
    assert test.pvalue > KS_ALPHA, (test, values.size)
    # and not the lognormal of the same mean: the test can tell them apart
    sigma = np.sqrt(np.log1p(0.6**2))
    other = stats.lognorm(sigma, scale=P * GAMMA / (Q - 1) * np.exp(-sigma**2 / 2))
    assert stats.kstest(values, other.cdf).pvalue < KS_ALPHA


@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_the_calibration_fit_recovers_the_simulated_spend(engine: str) -> None:
    """Each repeat buyer's mean repeat order and count, fitted with the calibration's
    ``fit_gamma_gamma``: every parameter within 4 standard errors of the truth (seed 5)."""
    spec = build_spec(gamma_gamma_config(engine))
    p = simulate(spec, 5, 0).purchases
    order = np.lexsort((p["time"], p["customer"]))
    customer, value = p["customer"][order], p["value"][order]
    repeat = np.r_[False, customer[1:] == customer[:-1]]  # every order but a buyer's first
    ids, x = np.unique(customer[repeat], return_counts=True)
    m = np.bincount(customer[repeat], weights=value[repeat])[ids] / x
    assert ids.size > 300
    fit = fit_gamma_gamma(x.astype(float), m)
    for name, truth in zip(("p", "q", "gamma"), (P, Q, GAMMA), strict=True):
        assert abs(fit[name] - truth) < 4 * fit.se_of(name), (name, fit[name], fit.se_of(name))


def test_lognormal_numbers_unchanged_by_the_gamma_gamma_keys() -> None:
    """The spend model's keys do nothing while order_value_model is lognormal (its
    stream is drawn only when the model is on)."""
    base = build_spec(compose_config(["market.size=3000"]))
    other = build_spec(compose_config(["market.size=3000", "economics.gamma_gamma.p=50"]))
    a, b = simulate(base, 1, 0), simulate(other, 1, 0)
    np.testing.assert_array_equal(a.purchases["value"], b.purchases["value"])


def test_unknown_order_value_model_named() -> None:
    with pytest.raises(SpecError) as err:
        build_spec(compose_config(["economics.order_value_model=pareto"]))
    assert "economics.order_value_model = 'pareto': one of lognormal, gamma_gamma" in str(
        err.value)

"""Uncertain assumptions (sim.model.uncertainty): read as data, checked with one message
naming every bad key, truncated to the key's range, drawn reproducibly, applied to the
options' configs as documented, and ignored by a point run.

Distribution checks compare against closed forms (means and variances of each family by its
intuitive parameters) by quadrature of the truncated ppf; the sampling checks state their
seed and derive their tolerance from the standard error.
"""

from __future__ import annotations

import copy
import math
from functools import cache
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim.model.config import compose_config, to_container
from sim.model.spec import SpecError, build_spec
from sim.model.uncertainty import Uncertainty, read_uncertainty

SEED = 4141


@cache
def _composed(*overrides: str) -> dict[str, Any]:
    return to_container(compose_config(["run=smoke", *overrides]))


def composed(*overrides: str) -> dict[str, Any]:
    return copy.deepcopy(_composed(*overrides))


def with_uncertainty(tree: dict[str, Any], scenario: dict[str, Any] | None = None,
                     name: str = "b") -> dict[str, dict[str, Any]]:
    """The baseline with ``tree`` as its uncertainty group and, if given, an option ``name``
    (a copy of the baseline) with ``scenario`` as its own assumptions."""
    base = composed("uncertainty=none")
    base["uncertainty"] = tree
    out = {"baseline": base}
    if scenario is not None:
        b = copy.deepcopy(base)
        b["scenario"]["name"] = name
        b["scenario"]["uncertainty"] = scenario
        out[name] = b
    return out


def one(leaf: dict[str, Any], key: str = "economics.order_value_mean") -> Uncertainty:
    tree: dict[str, Any] = leaf
    for k in reversed(key.split(".")):
        tree = {k: tree}
    return read_uncertainty(with_uncertainty(tree))


def problems_of(configs: dict[str, dict[str, Any]]) -> list[tuple[str, Any, str]]:
    with pytest.raises(SpecError) as err:
        read_uncertainty(configs)
    return err.value.problems


# ------------------------------------------------------------------ the families
@pytest.mark.parametrize("leaf, mean, sd", [
    ({"dist": "uniform", "low": 80, "high": 100}, 90, 20 / math.sqrt(12)),
    ({"dist": "triangular", "low": 80, "mode": 85, "high": 100}, 265 / 3,
     math.sqrt((80**2 + 85**2 + 100**2 - 80 * 85 - 80 * 100 - 85 * 100) / 18)),
    ({"dist": "normal", "mean": 90, "sd": 5}, 90, 5),
    ({"dist": "lognormal", "mean": 90, "cv": 0.2}, 90, 18),
    ({"dist": "lognormal", "mean": 90, "sd": 9}, 90, 9),
    ({"dist": "gamma", "mean": 90, "sd": 30}, 90, 30),
    ({"dist": "gamma", "mean": 90, "cv": 0.5}, 90, 45),
    ({"dist": "beta", "mean": 90, "sd": 4, "low": 70, "high": 110}, 90, 4),
], ids=["uniform", "triangular", "normal", "lognormal_cv", "lognormal_sd", "gamma_sd",
        "gamma_cv", "beta_scaled"])
def test_families_by_intuitive_parameters(leaf: dict[str, Any], mean: float, sd: float) -> None:
    """The mean and sd the parameters state, by quadrature of the ppf (midpoint rule on
    200,000 probabilities: error far below the 0.2 % allowed)."""
    a = one(leaf).assumptions[0]
    x = a.ppf((np.arange(200_000) + 0.5) / 200_000)
    assert a.mass_cut == pytest.approx(0.0, abs=1e-12)
    assert x.mean() == pytest.approx(mean, rel=2e-3)
    assert x.std() == pytest.approx(sd, rel=2e-3)


def test_beta_on_a_probability() -> None:
    a = one({"dist": "beta", "mean": 0.1, "sd": 0.03}, "checkout.recovery_prob").assumptions[0]
    k = 0.1 * 0.9 / 0.03**2 - 1
    ref = stats.beta(0.1 * k, 0.9 * k)
    for q in (0.05, 0.5, 0.95):
        assert a.ppf(np.array([q]))[0] == pytest.approx(ref.ppf(q), rel=1e-9)


def test_zero_width_is_a_point() -> None:
    for leaf in ({"dist": "uniform", "low": 90, "high": 90}, {"dist": "normal", "mean": 90,
                                                               "sd": 0},
                 {"dist": "point", "value": 90}):
        a = one(leaf).assumptions[0]
        assert a.family == "point"
        assert np.all(a.ppf(np.linspace(0.01, 0.99, 7)) == 90)


# ------------------------------------------------------------------ truncation
def test_truncated_to_the_keys_range_and_the_cut_reported() -> None:
    """A normal on a probability: the mass below 0 and above 1 is cut and reported, every
    draw lies in [0, 1], and the draws follow the truncated law."""
    a = one({"dist": "normal", "mean": 0.9, "sd": 0.1}, "checkout.recovery_prob").assumptions[0]
    ref = stats.norm(0.9, 0.1)
    cut = ref.cdf(0) + ref.sf(1)
    assert a.mass_cut == pytest.approx(cut, rel=1e-9)
    assert "cut" in a.describe()
    u = (np.arange(10_000) + 0.5) / 10_000
    x = a.ppf(u)
    assert x.min() >= 0 and x.max() <= 1
    # the truncated normal's median: F^-1((F(0) + F(1)) / 2)
    assert a.ppf(np.array([0.5]))[0] == pytest.approx(ref.ppf((ref.cdf(0) + ref.cdf(1)) / 2))


def test_integer_keys_are_rounded() -> None:
    cfgs = with_uncertainty({"support": {"agents": {"dist": "uniform", "low": 1, "high": 6}}})
    u = read_uncertainty(cfgs)
    for v in (1.2, 3.5, 5.9):
        cfg = u.apply(cfgs, "baseline", {"support.agents": v})
        assert cfg["support"]["agents"] == round(v) and isinstance(cfg["support"]["agents"], int)
        build_spec(cfg, complete=True)


# ------------------------------------------------------------------ validation
def test_every_problem_in_one_message_naming_the_key() -> None:
    tree = {
        "checkout": {"recovery_prob": {"dist": "uniform", "low": 0.5, "high": 1.2},
                     "weights": {"hidden_fees": {"dist": "triangular", "low": 0.9, "mode": 0.6,
                                                 "high": 1.0}}},
        "economics": {"order_value_mean": {"dist": "lognormal", "mean": 90, "sd": 5, "cv": 1},
                      "gross_margin": {"dist": "weibull", "mean": 0.4},
                      "order_value_cv": {"dist": "uniform", "low": 0.1, "hihg": 0.5}},
        "retention": {"repeat": {"rr": {"dist": "normal", "mean": 1, "sd": 0.1}}},
        "run": {"horizon_days": {"dist": "uniform", "low": 100, "high": 200}},
        "advocacy": {"advocate_prob": {"dist": "beta", "mean": 0.15, "sd": 0.5}},
        "market": {"size": 5},
    }
    probs = problems_of(with_uncertainty(tree))
    keys = [p for p, _, _ in probs]
    text = str(SpecError(probs))
    assert "uncertainty.checkout.recovery_prob" in keys  # a probability above 1
    assert "[0, 1]" in text
    assert "uncertainty.checkout.weights.hidden_fees.mode" in keys  # low > mode
    assert "uncertainty.economics.order_value_mean.sd" in keys  # sd and cv both
    assert "uncertainty.economics.gross_margin.dist" in keys  # no such family
    assert "uncertainty.economics.order_value_cv.hihg" in keys  # no such parameter
    assert "uncertainty.retention.repeat.rr" in keys  # no such key
    assert "did you mean retention.repeat.r" in text
    assert "uncertainty.run.horizon_days" in keys  # not an assumption
    assert "uncertainty.advocacy.advocate_prob.sd" in keys  # beta too wide
    assert "uncertainty.market.size" in keys  # not a distribution
    assert len(probs) == 10, probs


def test_scenario_assumptions_are_named_with_their_scenario() -> None:
    probs = problems_of(with_uncertainty({}, {"checkout": {"recovery_prob": {
        "dist": "uniform", "low": -0.1, "high": 0.3}}}))
    assert probs[0][0] == "scenario.uncertainty (scenario b).checkout.recovery_prob"


def test_a_relative_effect_whose_range_leaves_the_keys_range() -> None:
    """x3 the baseline's 0.10 recovery is fine; x12 cannot be a probability."""
    ok = {"checkout": {"recovery_prob": {"dist": "uniform", "low": 1, "high": 3,
                                         "effect": "multiply"}}}
    read_uncertainty(with_uncertainty({}, ok))
    bad = copy.deepcopy(ok)
    bad["checkout"]["recovery_prob"]["high"] = 12
    probs = problems_of(with_uncertainty({}, bad))
    assert "x the baseline's 0.1" in probs[0][2]


def test_one_distribution_per_key_and_the_group_is_shared() -> None:
    cfgs = with_uncertainty({"economics": {"order_value_mean": {"dist": "normal", "mean": 90,
                                                                "sd": 5}}}, {})
    cfgs["b"]["uncertainty"] = {}
    assert "scenario.uncertainty" in problems_of(cfgs)[0][2]


# ------------------------------------------------------------------ drawing and applying
def test_draws_are_reproducible_and_cover_the_distribution() -> None:
    """Same seed, same draws; another seed, others. Scrambled Sobol' points (seed SEED) of
    a uniform(0, 1)-like triangular: the sample mean within 4 iid standard errors (the
    Sobol' error is smaller)."""
    u = read_uncertainty(with_uncertainty({"checkout": {"weights": {
        "hidden_fees": {"dist": "triangular", "low": 0.3, "mode": 0.6, "high": 0.9},
        "trust": {"dist": "uniform", "low": -0.8, "high": -0.2}}}}))
    for design in ("sobol", "lhs", "random"):
        a, b = u.sample(256, SEED, design), u.sample(256, SEED, design)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, u.sample(256, SEED + 1, design))
        sd = 0.3 / math.sqrt(6)  # triangular(0.3, 0.6, 0.9)
        assert abs(a[:, 0].mean() - 0.6) <= 4 * sd / 16
        assert abs(a[:, 1].mean() + 0.5) <= 4 * (0.6 / math.sqrt(12)) / 16


def test_a_point_run_ignores_the_assumptions() -> None:
    """The composed config with the default uncertainty group and a scenario's own
    assumptions gives the same spec as without them."""
    with_u = composed("scenario=seo")
    without = copy.deepcopy(with_u)
    without["uncertainty"], without["scenario"]["uncertainty"] = {}, {}
    with_u["scenario"]["uncertainty"] = {"channels": {"search": {"organic_reach_per_day": {
        "dist": "uniform", "low": 1.1, "high": 1.4, "effect": "multiply"}}}}
    assert repr(build_spec(with_u)) == repr(build_spec(without))


def test_shared_and_relative_assumptions_move_the_options_as_documented() -> None:
    """A shared draw sets every option that keeps the baseline's value; a scenario that sets
    the key itself keeps it unless it has its own assumption; a scenario's multiplier
    multiplies the baseline's value drawn in the same point."""
    base = composed("uncertainty=none")
    seo = composed("uncertainty=none", "scenario=seo")
    ads = composed("uncertainty=none", "scenario=targeted_advertising")
    seo["scenario"]["uncertainty"] = {"channels": {"search": {"organic_reach_per_day": {
        "dist": "uniform", "low": 1.1, "high": 1.4, "effect": "multiply"}}}}
    shared = {"channels": {"search": {"organic_reach_per_day": {
        "dist": "uniform", "low": 0.0004, "high": 0.0008}},
        "paid_ads": {"spend_per_day": {"dist": "uniform", "low": 40, "high": 60}}}}
    for c in (base, seo, ads):
        c["uncertainty"] = shared
    cfgs = {"baseline": base, "seo": seo, "targeted_advertising": ads}
    u = read_uncertainty(cfgs)
    values = {"channels.search.organic_reach_per_day": 0.0005, "seo:channels.search."
              "organic_reach_per_day": 1.2, "channels.paid_ads.spend_per_day": 55.0}
    out = {o: u.apply(cfgs, o, values) for o in cfgs}
    assert out["baseline"]["channels"]["search"]["organic_reach_per_day"] == 0.0005
    assert out["seo"]["channels"]["search"]["organic_reach_per_day"] == pytest.approx(0.0006)
    assert out["targeted_advertising"]["channels"]["search"]["organic_reach_per_day"] == 0.0005
    assert out["baseline"]["channels"]["paid_ads"]["spend_per_day"] == 55.0
    assert out["seo"]["channels"]["paid_ads"]["spend_per_day"] == 55.0
    # the scenario doubles paid ads to 100 itself and has no assumption on it: kept
    assert out["targeted_advertising"]["channels"]["paid_ads"]["spend_per_day"] == 100
    # the configs given are not changed
    assert cfgs["baseline"]["channels"]["search"]["organic_reach_per_day"] == 0.0006


def test_joint_lognormal_draws_keep_the_correlation() -> None:
    """Jointly lognormal r and alpha_days (correlation 0.9 of the logs), seed SEED,
    4096 random draws: the logs' means within 4 standard errors of log(median), their
    correlation within 4 x (1 - rho^2) / sqrt(n)."""
    sd = np.array([0.2, 0.3])
    cov = (np.array([[1, 0.9], [0.9, 1]]) * np.outer(sd, sd)).tolist()
    tree = {"retention": {"repeat": {"dist": "joint_lognormal", "keys": ["r", "alpha_days"],
                                     "median": [0.9, 60.0], "log_cov": cov}}}
    u = read_uncertainty(with_uncertainty(tree))
    assert u.names == ["retention.repeat.r", "retention.repeat.alpha_days"]
    n = 4096
    x = np.log(u.sample(n, SEED, "random"))
    assert np.all(np.abs(x.mean(axis=0) - np.log([0.9, 60.0])) <= 4 * sd / math.sqrt(n))
    rho = np.corrcoef(x.T)[0, 1]
    assert abs(rho - 0.9) <= 4 * (1 - 0.81) / math.sqrt(n)
    cfg = u.apply(with_uncertainty(tree), "baseline", dict(zip(u.names, [1.1, 70.0],
                                                               strict=True)))
    assert cfg["retention"]["repeat"]["r"] == 1.1
    assert cfg["retention"]["repeat"]["alpha_days"] == 70.0


def test_the_baseline_group_reads() -> None:
    """The shipped uncertainty group reads on every journey preset and retention model."""
    for overrides in ((), ("journey=four_stage",), ("retention=subscription",)):
        u = read_uncertainty({"baseline": composed(*overrides)})
        assert len(u) >= 10

"""A scenario launched during the run (``scenario.start_day``, ``scenario.ramp_days``).

The business runs as the baseline until the launch; the scenario then reaches each customer
at a time spread evenly over the ramp. Oracles: a launch after the horizon is the baseline,
bit for bit; the shortcuts of the agent engine give the same tables as waiting for every
step, across the launch; the times customers are reached are uniform on the ramp; the
loyalty programme's offer reaches every active customer at their time (the share who join
is the enrolment probability); orders before the launch earn the baseline's margin; the
fixed costs, the channels' spend and the monthly P&L follow the launch in closed form.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_base import history, write_base
from test_invariants import _tables

from sim import api
from sim.engine import simulate
from sim.engine.agent import AgentModel
from sim.measure.metrics import monthly_pnl, replication_metrics
from sim.model.config import compose_config
from sim.model.spec import SpecError, build_spec, exposed_share_by_day

SEED = 2026
SMOKE = ["run=smoke", "market.size=1500"]


def launch_spec(scenario: str, start: float, ramp: float = 0.0, *extra: str):
    overrides = [*SMOKE, *extra]
    cfg = compose_config([*overrides, f"scenario={scenario}", f"scenario.start_day={start}",
                          f"scenario.ramp_days={ramp}"])
    return build_spec(cfg, before=compose_config([*overrides, "scenario=baseline"]))


@pytest.fixture(scope="module")
def base_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    x, t_x, age = history(800, seed=7)
    return write_base(tmp_path_factory.mktemp("launch") / "customers.csv", x, t_x, age)


@pytest.mark.parametrize("scenario", ["loyalty_program", "checkout_overhaul", "better_support",
                                      "referral_program", "newsletters"])
def test_a_launch_after_the_horizon_is_the_baseline(scenario: str, base_path: str) -> None:
    """Launched on the last day or later, nobody is reached: every table and metric is the
    baseline's, bit for bit (with an installed base, so the base's offer is checked too)."""
    extra = (f"market.base={base_path}",)
    late = launch_spec(scenario, 120.0, 0.0, *extra)
    baseline = build_spec(compose_config([*SMOKE, *extra, "scenario=baseline"]))
    a, b = simulate(late, SEED, 0), simulate(baseline, SEED, 0)
    ta, tb = _tables(a), _tables(b)
    ta.pop("customers.scenario_from"), tb.pop("customers.scenario_from")
    assert ta.keys() == tb.keys()
    for name in ta:
        np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)
    ma, mb = replication_metrics(a, late), replication_metrics(b, baseline)
    assert ma.keys() == mb.keys()
    for key in ma:
        assert ma[key] == mb[key] or (math.isnan(ma[key]) and math.isnan(mb[key])), key


@pytest.mark.parametrize("scenario", ["testimonials_reviews", "loyalty_program",
                                      "referral_program", "better_support"])
def test_engine_shortcuts_exact_across_a_launch(scenario: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A prospect's walk runs ahead of the simulation clock; across a ramp (each prospect
    switching tables on the way) it still gives the tables of waiting for every step."""
    spec = launch_spec(scenario, 30.0, 40.0)
    quick = AgentModel(spec, SEED, 1).run()
    with monkeypatch.context() as m:
        m.setattr(AgentModel, "stepwise", True)
        stepwise = AgentModel(spec, SEED, 1).run()
    a, b = _tables(quick), _tables(stepwise)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_customers_are_reached_evenly_over_the_ramp(base_path: str) -> None:
    """Every customer, new or of the base, is reached at a time uniform on [start, start +
    ramp]: Kolmogorov-Smirnov distance below its 0.1 % critical value 1.95 / sqrt(n)
    (seed 2026)."""
    start, ramp = 20.0, 50.0
    spec = launch_spec("loyalty_program", start, ramp, f"market.base={base_path}")
    res = simulate(spec, SEED, 0)
    times = np.sort(res.customers["scenario_from"])
    assert times.min() >= start and times.max() <= start + ramp
    n = times.size
    cdf = (times - start) / ramp
    d = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert d < 1.95 / math.sqrt(n), (d, n)


def test_loyalty_offer_reaches_every_active_customer_at_the_launch(base_path: str) -> None:
    """A programme launched on day 40: nobody is a member before; a member joined at the
    launch (customers who were active then: the base, and new buyers) or at a first
    purchase after it; among the base customers active on day 40 the share who joined is
    the enrolment probability, within 4 binomial standard errors (seed 2026)."""
    start = 40.0
    spec = launch_spec("loyalty_program", start, 0.0, f"market.base={base_path}")
    res = simulate(spec, SEED, 0)
    c = res.customers
    member, since, t0 = c["loyalty_member"], c["member_since"], c["t_purchase"]
    assert member.any()
    assert np.all(since[member] >= start)
    assert np.all((since[member] == start) | (since[member] == t0[member]))
    assert np.all(np.isnan(since[~member]))
    active = c["base"] & ~(c["t_churned"] <= start)
    share = member[active].mean()
    p = spec.loyalty.enrol_prob
    se = math.sqrt(p * (1 - p) / active.sum())
    assert abs(share - p) < 4 * se, (share, p, se)
    # members pay the fee from joining: the retention costs are the fee per member-day and
    # the members' discounts are 5 % of their orders after joining
    orders = res.purchases
    joined = since[orders["customer"]]
    expected = np.where(orders["time"] >= joined, orders["value"] * spec.loyalty.discount, 0.0)
    np.testing.assert_allclose(orders["discount"], np.nan_to_num(expected), rtol=1e-12)


def test_orders_before_the_launch_earn_the_baselines_margin() -> None:
    """checkout_overhaul lowers the gross margin (0.45 -> 0.447, payment fees): each order
    earns the margin of the rules in force for its customer then."""
    spec = launch_spec("checkout_overhaul", 30.0, 30.0)
    res = simulate(spec, SEED, 0)
    p = res.purchases
    after = p["time"] >= res.customers["scenario_from"][p["customer"]]
    assert after.any() and (~after).any()
    rate = np.where(after, spec.gross_margin, spec.before.gross_margin)
    np.testing.assert_array_equal(p["margin"], p["value"] * rate - p["discount"])


def test_fixed_costs_and_spend_follow_the_launch() -> None:
    """better_support (2 agents instead of 1, 2 a day) launched on day 45: the desk's staff
    cost the baseline's until then and the scenario's after, the intervention's cost runs
    from the launch, and the monthly P&L adds up to the run's totals. targeted_advertising
    ramped over 30 days: each day's spend is the baseline's plus the share reached that day
    times the difference."""
    start, h = 45.0, 120.0
    spec = launch_spec("better_support", start)
    res = simulate(spec, SEED, 0)
    m = replication_metrics(res, spec)
    staff = lambda s: s.support.agents * s.support.cost_per_agent_per_day  # noqa: E731
    assert m["costs.support"] == pytest.approx(staff(spec.before) * start
                                               + staff(spec) * (h - start), rel=1e-12)
    assert m["costs.intervention"] == pytest.approx(spec.scenario_cost_per_day * (h - start),
                                                    rel=1e-12)
    pnl = monthly_pnl(res, spec)
    assert pnl["support_costs"].sum() == pytest.approx(m["costs.support"], rel=1e-12)
    assert pnl["profit"].sum() == pytest.approx(m["profit"], rel=1e-9)

    ads = launch_spec("targeted_advertising", 20.0, 30.0)
    plain = build_spec(compose_config([*SMOKE, "scenario=targeted_advertising"]))
    before = ads.before.spend_per_day
    w = exposed_share_by_day(20.0, 30.0, before.shape[0])
    np.testing.assert_allclose(ads.spend_per_day,
                               before + w[:, None] * (plain.spend_per_day - before))
    assert w[19] == 0 and w[50] == 1 and w[35] == pytest.approx((35.5 - 20) / 30)


def test_launch_refused_where_it_cannot_run() -> None:
    """A launch needs the baseline's config, the agent engine, and a scenario that changes
    how customers are treated, not the market or the journey's structure."""
    cfg = compose_config([*SMOKE, "scenario=loyalty_program", "scenario.start_day=30"])
    with pytest.raises(SpecError, match="baseline's config"):
        build_spec(cfg)
    with pytest.raises(SpecError, match=r"run\.engine"):
        launch_spec("loyalty_program", 30.0, 0.0, "run.engine=fast")
    with pytest.raises(SpecError, match="the market"):
        build_spec(cfg, before=compose_config([*SMOKE, "market.size=999"]))
    auto = launch_spec("loyalty_program", 30.0, 0.0, "run.engine=auto", "market.size=300000")
    assert auto.engine == "agent"


def test_launch_from_the_api_and_in_a_comparison(tmp_path: Path) -> None:
    """``sim.run`` composes the baseline itself; a comparison launches every scenario on
    the same baseline and the launch shows in its cost (the intervention's cost from the
    launch on, exactly)."""
    run = api.run(overrides=[*SMOKE, "scenario=loyalty_program", "scenario.start_day=60",
                             "run.replications=1"])
    assert run.spec.before is not None and run.spec.start_day == 60
    assert run.title.startswith("loyalty_program from day 60:")  # every figure's title
    cmp = api.compare(["loyalty_program"], overrides=[*SMOKE, "scenario.start_day=60",
                                                      "run.replications=1"])
    cost = cmp.runs["loyalty_program"].summary["costs.intervention"].mean
    assert cost == pytest.approx(4.0 * (120 - 60))

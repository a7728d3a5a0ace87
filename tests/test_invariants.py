"""Invariants of the agent engine on random small journeys (hypothesis, reproducible).

For every generated model and seed:

(a) every aware customer is in exactly one valid state at the horizon, and the outcome agrees
    with the state (purchased <-> ``t_purchase``, lost/abandoned <-> ``lost``, in journey <->
    a prospect stage or checkout);
(b) each customer's path starts in the first stage at ``t_aware``, never goes back in time,
    only takes transitions the journey graph allows, and ``t_<state>`` is the time of the first
    event in that state;
(c) ``metrics.daily_table`` reconciles with the customers table (entries, awareness,
    occupancy, abandonments, revenue and margin, and conservation of customers every day);
(d) no time exceeds the horizon.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim import distributions
from sim.config import compose_config, to_container
from sim.engine import OUTCOMES, SimulationResult, simulate
from sim.metrics import daily_table
from sim.spec import CHECKOUT, LEVERS, ModelSpec, build_spec

KINDS = ("exponential", "gamma", "lognormal", "weibull", "fixed")
STAGE_NAMES = ("discover", "research", "compare", "decide")
HYPOTHESIS = settings(
    deadline=None,
    max_examples=100,
    derandomize=True,  # the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PURCHASED, LOST, ABANDONED = (OUTCOMES.index(o) for o in ("purchased", "lost", "abandoned"))


def test_strategy_knows_every_dwell_kind() -> None:
    """A new dwell family needs its valid (mean, cv) added to ``dwells`` below."""
    assert set(KINDS) == set(distributions.KINDS)


# hypothesis runs many examples per test call, so it cannot use the function-scoped
# ``make_config`` fixture; compose the same baseline once here instead
@functools.cache
def _base_config() -> dict[str, Any]:
    return to_container(compose_config(["run=smoke"]))


def base_config() -> dict[str, Any]:
    """The composed baseline as a plain dict (composed once: Hydra is slow to start)."""
    return copy.deepcopy(_base_config())


# --------------------------------------------------------------------- strategies
unit = st.floats(0.0, 1.0)


@st.composite
def dwells(draw: st.DrawFn, min_mean: float = 0.5, max_mean: float = 20.0) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    mean = draw(st.floats(min_mean, max_mean))
    if kind == "exponential":
        cv = draw(st.sampled_from([None, 1.0]))
    elif kind == "fixed":
        cv = draw(st.sampled_from([None, 0.0]))
    else:
        cv = draw(st.floats(0.1, 3.0))
    return {"kind": kind, "mean_days": mean, "cv": cv}


def reachable(stages: dict[str, dict[str, Any]], start: str) -> set[str]:
    """States reachable from ``start`` through exits of positive probability."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        if here == CHECKOUT:
            continue
        for target, p in stages[here]["exits"].items():
            if p > 0 and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@st.composite
def journeys(draw: st.DrawFn) -> dict[str, Any]:
    """1-4 prospect stages, random exits (sum <= 1) with the checkout reachable."""
    names = list(STAGE_NAMES[: draw(st.integers(1, len(STAGE_NAMES)))])
    targets = [*names, CHECKOUT]
    stages: dict[str, dict[str, Any]] = {}
    for name in names:
        chosen = draw(st.lists(st.sampled_from(targets), unique=True, max_size=len(targets)))
        weights = [draw(st.floats(0.05, 1.0)) for _ in chosen]
        total = draw(st.one_of(st.just(1.0), st.floats(0.05, 1.0)))  # 1.0: nobody lost here
        exits = {t: total * w / sum(weights) for t, w in zip(chosen, weights, strict=True)}
        levers = draw(st.lists(st.sampled_from(LEVERS), unique=True))
        stages[name] = {"dwell": draw(dwells()), "exits": exits, "levers": levers}
    seen = reachable(stages, names[0])
    if CHECKOUT not in seen:  # open a way out from a stage the first one reaches
        fixer = draw(st.sampled_from([n for n in names if n in seen]))
        p = draw(st.floats(0.05, 1.0))
        exits = stages[fixer]["exits"]
        stages[fixer]["exits"] = {**{t: q * (1 - p) for t, q in exits.items()}, CHECKOUT: p}
    assert CHECKOUT in reachable(stages, names[0])
    report = {n: [n] for n in names} | {"purchase": ["purchase"], "advocacy": ["advocacy"]}
    return {"stages": stages, "report": report}


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], int, int]:
    c = base_config()
    j = draw(journeys())
    c["journey"]["stages"] = j["stages"]
    c["journey"]["report"] = j["report"]
    c["journey"]["name"] = "random"
    c["journey"]["content_quality"] = draw(st.floats(0.3, 3.0))
    c["journey"]["site_usability"] = draw(st.floats(0.3, 3.0))
    c["journey"]["social_proof"] = draw(st.floats(0.0, 5.0))
    co = c["checkout"]
    co["base_logit"] = draw(st.floats(-3.0, 3.0))
    co["steps"] = draw(st.integers(1, 8))
    co["forced_account"] = draw(st.booleans())
    co["hidden_fees"] = draw(st.booleans())
    co["payment_methods"] = draw(st.integers(0, 6))
    co["page_load_seconds"] = draw(st.floats(0.0, 10.0))
    co["trust"] = draw(unit)
    co["reminder"] = draw(st.booleans())
    co["recovery_prob"] = draw(st.one_of(st.just(0.0), st.just(1.0), unit))
    co["recovery_delay_days"] = draw(st.floats(0.0, 5.0))
    co["dwell"] = draw(st.one_of(st.just({"kind": "fixed", "mean_days": 0.0, "cv": None}),
                                 dwells(min_mean=0.01, max_mean=3.0)))
    c["advocacy"]["advocate_prob"] = draw(st.one_of(st.just(0.0), st.just(1.0), unit))
    c["advocacy"]["wom_q_per_day"] = draw(st.floats(0.0, 0.5))
    c["market"]["size"] = draw(st.integers(200, 1500))
    c["run"]["horizon_days"] = draw(st.one_of(st.integers(30, 200), st.floats(30.0, 200.0)))
    seed = draw(st.integers(0, 2**32 - 1))
    return c, seed, draw(st.integers(0, 3))


# ------------------------------------------------------------------------ checks
def allowed_transitions(spec: ModelSpec) -> np.ndarray:
    """(from, to) state pairs the journey graph allows."""
    n = len(spec.states)
    checkout, purchase = spec.code(CHECKOUT), spec.code("purchase")
    advocacy, lost = spec.code("advocacy"), spec.code("lost")
    ok = np.zeros((n, n), dtype=bool)
    for i, stage in enumerate(spec.stages):
        for target, p in zip(stage.targets, stage.probs, strict=True):
            ok[i, target] = ok[i, target] or p > 0
        ok[i, lost] = 1.0 - sum(stage.probs) > 0
    ok[checkout, [purchase, lost]] = True
    ok[purchase, advocacy] = True
    return ok


def check_states_and_outcomes(spec: ModelSpec, r: SimulationResult) -> None:
    """(a): one valid state per customer, outcome consistent with it."""
    c, n = r.customers, r.n_customers
    assert all(len(col) == n for col in c.values())
    np.testing.assert_array_equal(c["id"], np.arange(n))
    state, outcome = c["state"].astype(np.int64), c["outcome"]
    assert np.all((state >= 0) & (state < len(spec.states))), "state code out of range"
    assert np.all((outcome >= 0) & (outcome < len(OUTCOMES)))
    assert np.all((c["segment"] >= 0) & (c["segment"] < len(spec.segment_names)))
    assert np.all((c["channel"] >= 0) & (c["channel"] < len(spec.channel_names)))

    checkout, purchase = spec.code(CHECKOUT), spec.code("purchase")
    advocacy, lost = spec.code("advocacy"), spec.code("lost")
    bought = ~np.isnan(c["t_purchase"])
    in_journey = state <= checkout  # a prospect stage or the checkout
    np.testing.assert_array_equal(outcome == PURCHASED, bought)
    np.testing.assert_array_equal(bought, (state == purchase) | (state == advocacy))
    np.testing.assert_array_equal((outcome == LOST) | (outcome == ABANDONED), state == lost)
    np.testing.assert_array_equal(outcome == OUTCOMES.index("in_journey"), in_journey)
    np.testing.assert_array_equal(outcome == ABANDONED, (state == lost) & c["abandoned_cart"])
    np.testing.assert_array_equal(~np.isnan(c["t_lost"]), state == lost)  # lost is absorbing
    # a buyer went through the checkout; an advocate bought first
    assert np.all(c["t_checkout"][bought] <= c["t_purchase"][bought])
    adv = ~np.isnan(c["t_advocacy"])
    assert np.all(bought[adv]) and np.all(c["t_advocacy"][adv] >= c["t_purchase"][adv])
    if spec.advocate_prob == 0:
        assert not adv.any()
    # first order only for buyers, margin = value * gross margin
    np.testing.assert_array_equal(~np.isnan(c["first_order_value"]), bought)
    assert np.all(c["first_order_value"][bought] > 0)
    np.testing.assert_allclose(c["first_margin"], c["first_order_value"] * spec.gross_margin,
                               rtol=1e-12, equal_nan=True)
    # abandonments: one checkout attempt each, recovered <-> bought afterwards
    ab = r.abandonments
    assert np.unique(ab["customer"]).size == ab["customer"].size
    flagged = np.zeros(n, dtype=bool)
    flagged[ab["customer"]] = True
    np.testing.assert_array_equal(flagged, c["abandoned_cart"])
    np.testing.assert_array_equal(ab["recovered"], bought[ab["customer"]])
    if spec.checkout.recovery_prob == 0:
        assert not ab["recovered"].any()
    rec = ab["customer"][ab["recovered"]]
    np.testing.assert_allclose(c["t_purchase"][rec], ab["time"][ab["recovered"]]
                               + spec.checkout.recovery_delay_days, rtol=1e-12, atol=1e-9)
    assert np.all(ab["time"] >= c["t_checkout"][ab["customer"]])
    gone = ab["customer"][~ab["recovered"] & (state[ab["customer"]] == lost)]
    np.testing.assert_array_equal(c["t_lost"][gone], ab["time"][np.isin(ab["customer"], gone)])


def check_paths(spec: ModelSpec, r: SimulationResult) -> None:
    """(b): ordered paths from t_aware along allowed transitions; first-entry times."""
    c, ev, n = r.customers, r.events, r.n_customers
    assert np.all((ev["customer"] >= 0) & (ev["customer"] < n))
    order = np.argsort(ev["customer"], kind="stable")  # each customer's events in record order
    cust, t = ev["customer"][order], ev["time"][order]
    state = ev["state"][order].astype(np.int64)
    counts = np.bincount(cust, minlength=n)
    assert np.all(counts >= 1), "an aware customer without any event"
    last = np.cumsum(counts) - 1
    first = last + 1 - counts
    np.testing.assert_array_equal(t[first], c["t_aware"])  # paths start at awareness ...
    assert np.all(state[first] == 0)  # ... in the first stage
    np.testing.assert_array_equal(state[last], c["state"])  # and end in the final state
    same = cust[1:] == cust[:-1]
    gaps = np.diff(t)[same]
    assert np.all(gaps >= 0), f"time goes backwards: min gap {gaps.min()}"
    # only transitions the journey graph allows
    ok = allowed_transitions(spec)
    frm, to = state[:-1][same], state[1:][same]
    bad = ~ok[frm, to]
    assert not bad.any(), [(spec.states[a], spec.states[b]) for a, b in zip(
        frm[bad][:5], to[bad][:5], strict=True)]
    # awareness time order is the customer id order
    assert np.all(np.diff(c["t_aware"]) >= 0)
    # t_<state>: the first event in that state (independent of build_result's min-reduction)
    for code, name in enumerate(spec.states):
        sel = state == code
        who, idx = np.unique(cust[sel], return_index=True)
        expected = np.full(n, np.nan)
        expected[who] = t[sel][idx]
        np.testing.assert_array_equal(c[f"t_{name}"], expected, err_msg=f"t_{name}")
    # a visit to a fixed-dwell stage lasts exactly its mean
    nxt = np.r_[same, False]  # the event has a successor of the same customer
    for code, stage in enumerate(spec.stages):
        if stage.dwell.kind == "fixed":
            sel = (state == code) & nxt
            np.testing.assert_allclose(t[1:][sel[:-1]] - t[:-1][sel[:-1]], stage.dwell.mean_days,
                                       rtol=1e-9, atol=1e-9, err_msg=stage.name)


def check_daily(spec: ModelSpec, r: SimulationResult) -> None:
    """(c): the daily table reconciles with the customers table."""
    c, n = r.customers, r.n_customers
    d = daily_table(r)
    n_days = math.ceil(spec.horizon_days)
    assert all(len(col) == n_days for col in d.values()), {k: len(v) for k, v in d.items()}
    np.testing.assert_array_equal(d["day"], np.arange(n_days))
    assert d["aware"].sum() == n
    for s in spec.states:
        assert d[f"reached_{s}"].sum() == np.count_nonzero(~np.isnan(c[f"t_{s}"])), s
        occupancy = d[f"in_{s}"]
        assert np.all(occupancy >= 0), s
        assert occupancy[-1] == np.count_nonzero(c["state"] == spec.code(s)), s
    # conservation: at the end of every day, everyone aware so far is in exactly one state
    total = sum(d[f"in_{s}"] for s in spec.states)
    np.testing.assert_array_equal(total, np.cumsum(d["aware"]))
    assert d["abandoned_carts"].sum() == len(r.abandonments["customer"])
    assert math.isclose(d["revenue"].sum(), np.nansum(c["first_order_value"]),
                        rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(d["margin"].sum(), np.nansum(c["first_margin"]),
                        rel_tol=1e-9, abs_tol=1e-9)


def check_horizon(spec: ModelSpec, r: SimulationResult) -> None:
    """(d): nothing happens after the horizon."""
    h = spec.horizon_days
    times = [r.customers["t_aware"], r.events["time"], r.abandonments["time"],
             *(r.customers[f"t_{s}"] for s in spec.states)]
    for x in times:
        x = x[~np.isnan(x)]
        assert np.all((x >= 0) & (x <= h)), (x.min(initial=0), x.max(initial=0), h)


def check_all(spec: ModelSpec, r: SimulationResult) -> None:
    check_states_and_outcomes(spec, r)
    check_paths(spec, r)
    check_daily(spec, r)
    check_horizon(spec, r)


# --------------------------------------------------------------------------- tests
@HYPOTHESIS
@given(configs())
def test_invariants_random_journeys(case: tuple[dict[str, Any], int, int]) -> None:
    cfg, seed, replication = case
    spec = build_spec(cfg)
    result = simulate(spec, seed, replication)
    check_all(spec, result)
    # statistics for --hypothesis-show-statistics: which cases were exercised
    event(f"stages: {spec.n_stages}")
    event("has buyers" if (result.customers["outcome"] == PURCHASED).any() else "no buyers")
    event("has recoveries" if result.abandonments["recovered"].any() else "no recoveries")


def test_social_proof_stage_without_exits() -> None:
    """A dead-end stage (no exits: every visitor is lost) with the social_proof lever."""
    cfg = base_config()
    cfg["journey"]["stages"] = {
        "discover": {"dwell": {"kind": "exponential", "mean_days": 1.0},
                     "exits": {"dead_end": 0.3, CHECKOUT: 0.3}},
        "dead_end": {"dwell": {"kind": "exponential", "mean_days": 1.0}, "exits": {},
                     "levers": ["social_proof"]},
    }
    cfg["journey"]["report"] = {"discover": ["discover"], "purchase": ["purchase"]}
    cfg["journey"]["social_proof"] = 2.0
    spec = build_spec(cfg)
    r = simulate(spec, 5, 0)
    check_all(spec, r)
    assert not np.isnan(r.customers["t_dead_end"]).all()


def test_baseline_invariants_cover_every_outcome() -> None:
    """The baseline: buyers, abandoners, recoveries and losses all pass the checks."""
    spec = build_spec(base_config())
    r = simulate(spec, 7, 0)
    check_all(spec, r)
    out = r.customers["outcome"]
    assert {PURCHASED, LOST, ABANDONED} <= set(out.tolist())
    assert r.abandonments["recovered"].any()


def test_instant_chain_ties() -> None:
    """Zero dwell everywhere: every step of a path happens at the awareness time (ties)."""
    cfg = base_config()
    cfg["journey"]["stages"] = {
        "discover": {"dwell": {"kind": "fixed", "mean_days": 0.0}, "exits": {"decide": 1.0}},
        "decide": {"dwell": {"kind": "fixed", "mean_days": 0.0}, "exits": {CHECKOUT: 0.8}},
    }
    cfg["journey"]["report"] = {"discover": ["discover"], "purchase": ["purchase"]}
    cfg["checkout"]["dwell"] = {"kind": "fixed", "mean_days": 0.0, "cv": None}
    cfg["checkout"]["recovery_delay_days"] = 0.0
    cfg["advocacy"]["advocate_prob"] = 0.5
    spec = build_spec(cfg)
    r = simulate(spec, 11, 0)
    check_all(spec, r)
    c = r.customers
    done = ~np.isnan(c["t_purchase"])
    assert done.any()
    np.testing.assert_array_equal(c["t_purchase"][done], c["t_aware"][done])


def _nobody_aware() -> tuple[ModelSpec, SimulationResult]:
    """No reach and no word of mouth: nobody becomes aware."""
    cfg = base_config()
    for ch in cfg["channels"].values():
        ch["organic_reach_per_day"] = 0.0
        ch["max_reach_per_day"] = 0.0
    cfg["run"]["horizon_days"] = 30
    spec = build_spec(cfg)
    return spec, simulate(spec, 3, 0)


def test_nobody_becomes_aware() -> None:
    spec, r = _nobody_aware()
    assert r.n_customers == 0
    assert r.events["time"].size == 0
    check_states_and_outcomes(spec, r)
    check_paths(spec, r)
    check_horizon(spec, r)


def test_daily_table_with_no_customers() -> None:
    """A run where nobody became aware has an all-zero daily table of the right length."""
    spec, r = _nobody_aware()
    check_daily(spec, r)
    d = daily_table(r)
    assert not any(v.any() for k, v in d.items() if k.startswith(("in_", "reached_", "aware")))


def _corrupt(r: SimulationResult, how: str) -> None:
    c, ev = r.customers, r.events
    buyer = int(np.flatnonzero(~np.isnan(c["t_purchase"]))[0])
    sel = np.flatnonzero(ev["customer"] == buyer)
    if how == "time_backwards":
        ev["time"][sel[1]] = ev["time"][sel[0]] - 1e-6
    elif how == "wrong_final_state":
        c["state"][buyer] = 0
    elif how == "outcome":
        c["outcome"][buyer] = LOST
    elif how == "forgotten_first_entry":
        c["t_checkout"][buyer] = np.nan
    elif how == "skipped_checkout":  # a prospect stage straight to purchase
        keep = np.ones(ev["time"].size, dtype=bool)
        keep[sel[ev["state"][sel] == r.states.index(CHECKOUT)]] = False
        for k in ev:
            ev[k] = ev[k][keep]
    elif how == "after_horizon":
        c["t_aware"][-1] = r.horizon_days + 1.0


@pytest.mark.parametrize("how", ["time_backwards", "wrong_final_state", "outcome",
                                 "forgotten_first_entry", "skipped_checkout", "after_horizon"])
def test_checks_catch_a_corrupted_result(how: str) -> None:
    """The checks are not vacuous: each corruption of a valid result is caught."""
    spec = build_spec(base_config())
    r = simulate(spec, 7, 0)
    check_all(spec, r)
    _corrupt(r, how)
    with pytest.raises(AssertionError):
        check_all(spec, r)


def test_allowed_transitions_of_the_baseline() -> None:
    """The transition table follows the six-stage graph (awareness -> consideration only)."""
    spec = build_spec(base_config())
    ok = allowed_transitions(spec)
    code = spec.code
    allowed = {(a, b) for a in spec.states for b in spec.states if ok[code(a), code(b)]}
    assert allowed == {
        ("awareness", "consideration"), ("awareness", "lost"),
        ("consideration", "consideration"), ("consideration", "intent"),
        ("consideration", "awareness"), ("consideration", "lost"),
        ("intent", CHECKOUT), ("intent", "consideration"), ("intent", "lost"),
        (CHECKOUT, "purchase"), (CHECKOUT, "lost"), ("purchase", "advocacy"),
    }


@pytest.mark.parametrize("journey", ["six_stage", "six_stage_decision", "five_stage",
                                     "four_stage"])
def test_invariants_preset_journeys(make_config: Callable[..., dict[str, Any]],
                                    journey: str) -> None:
    """The shipped journey presets satisfy the invariants too (one seed each)."""
    cfg = make_config("run=smoke", f"journey={journey}")
    spec = build_spec(cfg)
    r = simulate(spec, 20261123, 1)
    check_all(spec, r)
    assert (r.customers["outcome"] == PURCHASED).any()

"""Invariants of the agent engine on random small models (hypothesis, reproducible).

For every generated model and seed:

(a) every aware customer is in exactly one valid state at the horizon, and the outcome agrees
    with the state: in journey <-> a prospect stage or checkout, lost/abandoned <-> ``lost``,
    purchased <-> bought and still active (final state purchase, retention or advocacy),
    churned <-> ``t_churned`` (buyers only);
(b) each customer's path starts in the first stage at ``t_aware`` (a referred prospect then
    enters the referral stage at once), never goes back in time, only takes transitions the
    model allows, ``t_<state>`` is the time of the first event in that state, and the
    experience score follows the touchpoints and stays within [-2, 2];
(c) life after the first purchase: the transaction log agrees with the customers table
    (orders, revenue, margin, discounts, first order), no order after churn, churn and
    renewal times follow the retention model, advocacy follows a purchase, every referral
    comes from an active advocate, tickets follow purchases and respect the desk's capacity;
(d) money reconciles: gross margin, retention costs rebuilt per buyer, profit and NPV from
    their cash flows, the counts the metrics report; every metric lies in the range its
    confidence intervals are cut at (``metrics.metric_range``);
(e) ``metrics.daily_table`` reconciles with the customers table (entries, awareness,
    occupancy, abandonments, orders, revenue and margin, tickets, active customers, and
    conservation of customers every day);
(f) no time exceeds the horizon.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim.engine import OUTCOMES, SimulationResult, simulate
from sim.measure.metrics import customer_values, daily_table, metric_range, replication_metrics
from sim.model import distributions
from sim.model.config import compose_config, to_container
from sim.model.spec import CHECKOUT, LEVERS, RETENTION_MODELS, ModelSpec, build_spec

KINDS = ("exponential", "gamma", "lognormal", "weibull", "fixed")
STAGE_NAMES = ("discover", "research", "compare", "decide")
HYPOTHESIS = settings(
    deadline=None,
    max_examples=150,
    derandomize=True,  # the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IN_JOURNEY, PURCHASED, LOST, ABANDONED, CHURNED = (
    OUTCOMES.index(o) for o in ("in_journey", "purchased", "lost", "abandoned", "churned"))
LIFE_STATES = ("purchase", "retention", "advocacy", "churned")
SERVED_MAX = 1  # ticket outcome codes: 0 resolved, 1 unresolved (served), 2 abandoned
REL = 1e-9  # relative tolerance of sums recomputed in another order


def test_strategy_knows_every_dwell_kind() -> None:
    """A new dwell family needs its valid (mean, cv) added to ``dwells`` below."""
    assert set(KINDS) == set(distributions.KINDS)


def test_strategy_knows_every_retention_model() -> None:
    """A new retention model needs its parameters drawn in ``configs`` below."""
    assert set(RETENTION_MODELS) == {"repeat_purchase", "subscription", "none"}


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


def edgy(lo: float, hi: float) -> st.SearchStrategy[float]:
    """A float in [lo, hi], often exactly one of the ends."""
    return st.one_of(st.just(lo), st.just(hi), st.floats(lo, hi))


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
        stages[name] = {"dwell": draw(dwells()), "exits": exits, "levers": levers,
                        "experience": draw(edgy(-2.0, 2.0))}
    seen = reachable(stages, names[0])
    if CHECKOUT not in seen:  # open a way out from a stage the first one reaches
        fixer = draw(st.sampled_from([n for n in names if n in seen]))
        p = draw(st.floats(0.05, 1.0))
        exits = stages[fixer]["exits"]
        stages[fixer]["exits"] = {**{t: q * (1 - p) for t, q in exits.items()}, CHECKOUT: p}
    assert CHECKOUT in reachable(stages, names[0])
    report = {n: [n] for n in names} | {"purchase": ["purchase"], "retention": ["retention"],
                                        "advocacy": ["advocacy"]}
    return {"stages": stages, "report": report}


@st.composite
def life(draw: st.DrawFn, c: dict[str, Any]) -> None:
    """Life after the first purchase, drawn into config ``c``: retention model and its
    parameters, loyalty, messaging, the service desk, experience weights, advocacy and
    referrals, segment multipliers, economics."""
    ret = c["retention"]
    ret["model"] = draw(st.sampled_from(RETENTION_MODELS))
    # at most a purchase every few days on average, so a run stays small
    ret["repeat"] |= {"r": draw(st.floats(0.3, 2.0)), "alpha_days": draw(st.floats(10.0, 100.0)),
                      "a": draw(st.floats(0.3, 5.0)), "b": draw(st.floats(0.3, 10.0))}
    ret["subscription"] |= {"period_days": draw(st.floats(5.0, 60.0)),
                            "alpha": draw(st.floats(0.3, 5.0)), "beta": draw(st.floats(0.3, 20.0)),
                            "price_per_period": draw(st.floats(1.0, 100.0))}
    for flag in ("newsletter", "recommendations", "cross_sell", "thank_you"):
        ret["messaging"][flag] = draw(st.booleans())
    c["loyalty"] |= {"enabled": draw(st.booleans()), "enrol_prob": draw(edgy(0.0, 1.0)),
                     "rate_multiplier": draw(st.floats(0.5, 2.0)),
                     "dropout_multiplier": draw(st.floats(0.0, 2.0)),
                     "discount": draw(edgy(0.0, 0.5)),
                     "cost_per_member_per_month": draw(st.floats(0.0, 5.0)),
                     "reward_experience": draw(edgy(-2.0, 2.0))}
    handling = draw(dwells(min_mean=1.0, max_mean=5000.0))  # minutes: up to a busy desk
    c["support"] |= {"issue_prob": draw(edgy(0.0, 1.0)), "agents": draw(st.integers(1, 3)),
                     "handling_kind": handling["kind"],
                     "handling_mean_minutes": handling["mean_days"],
                     "handling_cv": handling["cv"],
                     "patience_mean_minutes": draw(st.floats(1.0, 600.0)),
                     "first_contact_resolution": draw(edgy(0.0, 1.0)),
                     "cost_per_agent_per_day": draw(st.floats(0.0, 50.0))}
    ex = c["experience"]
    for key in ex:
        if key == "leave_after_bad":
            ex[key] = draw(edgy(0.0, 1.0))
        elif key in ("churn_per_point", "advocacy_per_point"):
            ex[key] = draw(st.floats(0.0, 5.0))
        else:
            ex[key] = draw(st.floats(-4.0, 4.0))
    names = list(c["journey"]["stages"])
    c["advocacy"] |= {"advocate_prob": draw(edgy(0.0, 1.0)),
                      "min_experience": draw(edgy(-2.0, 2.0)),
                      "wom_q_per_day": draw(st.floats(0.0, 0.5)),
                      # mostly on: referrals need advocates, who need buyers
                      "referral_rate_per_day": draw(st.one_of(st.just(0.0),
                                                              st.floats(0.01, 0.5),
                                                              st.floats(0.1, 0.5))),
                      "referral_conversion": draw(st.floats(0.2, 3.0)),
                      "referral_entry_stage": draw(st.sampled_from(names)),
                      "program": draw(st.booleans()),
                      "program_rate_multiplier": draw(st.floats(1.0, 3.0)),
                      "reward_per_referral": draw(st.floats(0.0, 20.0))}
    for seg in c["market"]["segments"].values():
        for key in ("purchase_rate", "churn", "referral"):
            seg[key] = draw(st.floats(0.5, 2.0))
    c["economics"] |= {"order_value_mean": draw(st.floats(1.0, 200.0)),
                       "order_value_cv": draw(st.floats(0.1, 2.0)),
                       "gross_margin": draw(edgy(0.0, 1.0)),
                       "annual_discount_rate": draw(st.one_of(st.just(0.0),
                                                              st.floats(0.0, 0.5)))}
    c["scenario"]["cost_per_day"] = draw(st.floats(0.0, 50.0))


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
    draw(life(c))
    c["market"]["size"] = draw(st.integers(200, 1500))
    c["run"]["horizon_days"] = draw(st.one_of(st.integers(30, 200), st.floats(30.0, 200.0)))
    seed = draw(st.integers(0, 2**32 - 1))
    return c, seed, draw(st.integers(0, 3))


# ------------------------------------------------------------------------ checks
def allowed_transitions(spec: ModelSpec) -> np.ndarray:
    """(from, to) state pairs the model allows (a referred prospect's jump from the first
    stage to the referral stage aside: see ``check_paths``)."""
    n = len(spec.states)
    code = spec.code
    checkout, purchase, retention = code(CHECKOUT), code("purchase"), code("retention")
    advocacy, churned, lost = code("advocacy"), code("churned"), code("lost")
    ok = np.zeros((n, n), dtype=bool)
    for i, stage in enumerate(spec.stages):
        for target, p in zip(stage.targets, stage.probs, strict=True):
            ok[i, target] = ok[i, target] or p > 0
        ok[i, lost] = 1.0 - sum(stage.probs) > 0
    ok[checkout, [purchase, lost]] = True
    buys_again = spec.retention.model != "none"
    # churn: drop-out (repeat buying after a repeat purchase, subscription at a renewal) or
    # leaving after a bad experience at the service desk
    can_churn = buys_again or spec.support.issue_prob > 0
    can_advocate = spec.advocate_prob > 0
    for frm in (purchase, retention, advocacy):
        ok[frm, retention] = buys_again and frm != retention
        ok[frm, advocacy] = can_advocate and frm != advocacy
        ok[frm, churned] = can_churn
    ok[purchase, churned] = can_churn and (spec.retention.model != "repeat_purchase"
                                           or spec.support.issue_prob > 0)
    return ok


def referral_code(spec: ModelSpec) -> int:
    return spec.channel_names.index("referral")


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

    code = spec.code
    checkout, lost = code(CHECKOUT), code("lost")
    bought = ~np.isnan(c["t_purchase"])
    churned = ~np.isnan(c["t_churned"])
    active_states = np.isin(state, [code(s) for s in ("purchase", "retention", "advocacy")])
    in_journey = state <= checkout  # a prospect stage or the checkout
    # churn only for buyers, and it is final
    assert np.all(bought[churned]), "a customer churned without buying"
    assert np.all(c["t_churned"][churned] >= c["t_purchase"][churned])
    np.testing.assert_array_equal(churned, state == code("churned"))
    np.testing.assert_array_equal(outcome == CHURNED, churned)
    np.testing.assert_array_equal(outcome == PURCHASED, bought & ~churned)
    np.testing.assert_array_equal(bought & ~churned, active_states)
    np.testing.assert_array_equal((outcome == LOST) | (outcome == ABANDONED), state == lost)
    np.testing.assert_array_equal(outcome == IN_JOURNEY, in_journey)
    np.testing.assert_array_equal(outcome == ABANDONED, (state == lost) & c["abandoned_cart"])
    np.testing.assert_array_equal(~np.isnan(c["t_lost"]), state == lost)  # lost is absorbing
    # a buyer went through the checkout; an advocate or a retained customer bought first
    assert np.all(c["t_checkout"][bought] <= c["t_purchase"][bought])
    for later in ("advocacy", "retention"):
        seen = ~np.isnan(c[f"t_{later}"])
        assert np.all(bought[seen]) and np.all(c[f"t_{later}"][seen] >= c["t_purchase"][seen])
        assert np.all(~churned[seen] | (c[f"t_{later}"][seen] <= c["t_churned"][seen]))
    np.testing.assert_array_equal(c["advocate"], ~np.isnan(c["t_advocacy"]))
    if spec.advocate_prob == 0:
        assert not c["advocate"].any()
    # first order only for buyers, margin = value * gross margin - the member's discount
    np.testing.assert_array_equal(~np.isnan(c["first_order_value"]), bought)
    assert np.all(c["first_order_value"][bought] > 0)
    discount = np.where(c["loyalty_member"], spec.loyalty.discount, 0.0)
    np.testing.assert_allclose(c["first_margin"],
                               c["first_order_value"] * (spec.gross_margin - discount),
                               rtol=1e-12, atol=1e-12, equal_nan=True)
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


def customer_order(r: SimulationResult) -> dict[str, np.ndarray]:
    """The events sorted by customer (record order within a customer), with the index of
    each customer's first and last event and whether an event has a successor."""
    ev = r.events
    order = np.argsort(ev["customer"], kind="stable")
    cust = ev["customer"][order]
    counts = np.bincount(cust, minlength=r.n_customers)
    last = np.cumsum(counts) - 1
    return {"customer": cust, "time": ev["time"][order],
            "state": ev["state"][order].astype(np.int64), "score": ev["score"][order],
            "counts": counts, "first": last + 1 - counts, "last": last,
            "same": cust[1:] == cust[:-1]}


def check_paths(spec: ModelSpec, r: SimulationResult) -> None:
    """(b): ordered paths from t_aware along allowed transitions; first-entry times."""
    c, ev, n = r.customers, r.events, r.n_customers
    assert np.all((ev["customer"] >= 0) & (ev["customer"] < n))
    p = customer_order(r)
    cust, t, state, same = p["customer"], p["time"], p["state"], p["same"]
    first, last = p["first"], p["last"]
    assert np.all(p["counts"] >= 1), "an aware customer without any event"
    np.testing.assert_array_equal(t[first], c["t_aware"])  # paths start at awareness ...
    assert np.all(state[first] == 0)  # ... in the first stage
    np.testing.assert_array_equal(state[last], c["state"])  # and end in the final state
    gaps = np.diff(t)[same]
    assert np.all(gaps >= 0), f"time goes backwards: min gap {gaps.min()}"
    # only transitions the model allows; a referred prospect enters the referral stage at
    # once (its first transition, at the awareness time)
    ok = allowed_transitions(spec)
    frm, to = state[:-1][same], state[1:][same]
    bad = ~ok[frm, to]
    entry = spec.advocacy.referral_entry
    referred = c["channel"] == referral_code(spec)
    jump = np.zeros(cust.size, dtype=bool)  # the event entering the referral stage at once
    if entry:
        jump[first[referred] + 1] = True
        assert np.all(state[jump] == entry) and np.all(t[jump] == t[jump.nonzero()[0] - 1])
    bad &= ~jump[1:][same]
    assert not bad.any(), [(spec.states[a], spec.states[b]) for a, b in zip(
        frm[bad][:5], to[bad][:5], strict=True)]
    # life after the first purchase: each of its states is entered at most once
    for name in LIFE_STATES:
        sel = state == spec.code(name)
        assert np.unique(cust[sel]).size == sel.sum(), f"{name} entered twice"
    # awareness time order is the customer id order
    assert np.all(np.diff(c["t_aware"]) >= 0)
    # t_<state>: the first event in that state (independent of build_result's min-reduction)
    for code, name in enumerate(spec.states):
        sel = state == code
        who, idx = np.unique(cust[sel], return_index=True)
        expected = np.full(n, np.nan)
        expected[who] = t[sel][idx]
        np.testing.assert_array_equal(c[f"t_{name}"], expected, err_msg=f"t_{name}")
    # a visit to a fixed-dwell stage lasts exactly its mean (the instant pass of a referred
    # prospect through the first stage is no visit)
    nxt = np.r_[same, False] & ~np.r_[jump[1:], False]
    for code, stage in enumerate(spec.stages):
        if stage.dwell.kind == "fixed":
            sel = (state == code) & nxt
            np.testing.assert_allclose(t[1:][sel[:-1]] - t[:-1][sel[:-1]], stage.dwell.mean_days,
                                       rtol=1e-9, atol=1e-9, err_msg=stage.name)


def clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -2.0, 2.0)


def check_experience(spec: ModelSpec, r: SimulationResult) -> None:
    """(b): the experience score stays within [-2, 2] and, up to the first purchase, moves
    exactly by the touchpoints: each stage visit adds its points, the checkout its friction,
    a recovered cart, a thank-you message and a loyalty reward theirs; an advocate's score
    was at least ``min_experience`` when it started to advocate."""
    c = r.customers
    assert np.all(np.abs(r.events["score"]) <= 2.0), "an experience score outside [-2, 2]"
    assert np.all(np.abs(c["experience"]) <= 2.0)
    p = customer_order(r)
    state, score, same = p["state"], p["score"], p["same"]
    if not state.size:
        return
    stage_points = np.array([s.experience for s in spec.stages])
    np.testing.assert_array_equal(score[p["first"]], clip(stage_points[0]))
    frm, to = state[:-1][same], state[1:][same]
    before, after = score[:-1][same], score[1:][same]
    who = p["customer"][1:][same]
    code = spec.code
    checkout, lost, purchase = code(CHECKOUT), code("lost"), code("purchase")
    into_stage = to < checkout
    np.testing.assert_allclose(after[into_stage], clip(before[into_stage]
                                                       + stage_points[to[into_stage]]),
                               rtol=0, atol=1e-12, err_msg="stage points")
    unchanged = (to == checkout) | ((to == lost) & (frm < checkout))
    np.testing.assert_array_equal(after[unchanged], before[unchanged])
    ex, co = spec.experience, spec.checkout
    after_checkout = clip(before + ex.checkout_per_abandon_prob * co.abandon_prob)
    gave_up = (frm == checkout) & (to == lost)
    np.testing.assert_allclose(after[gave_up], after_checkout[gave_up], rtol=0, atol=1e-12)
    bought = (frm == checkout) & (to == purchase)
    expected = after_checkout[bought]
    expected = np.where(c["abandoned_cart"][who[bought]], clip(expected + ex.recovered_cart),
                        expected)
    if spec.retention.thank_you:
        expected = clip(expected + ex.thank_you)
    expected = np.where(c["loyalty_member"][who[bought]],
                        clip(expected + spec.loyalty.reward_experience), expected)
    np.testing.assert_allclose(after[bought], expected, rtol=0, atol=1e-12,
                               err_msg="first purchase")
    # customers who never bought end with the score of their last event
    never = np.isnan(c["t_purchase"])
    np.testing.assert_array_equal(c["experience"][never], score[p["last"]][never])
    advocates = state == code("advocacy")
    assert np.all(score[advocates] >= spec.advocacy.min_experience)


def _purchases_of(r: SimulationResult) -> dict[int, np.ndarray]:
    """Each buyer's order times, in order."""
    p = r.purchases
    order = np.lexsort((p["time"], p["customer"]))
    cust, t = p["customer"][order], p["time"][order]
    bounds = np.flatnonzero(np.diff(cust)) + 1
    return {int(k[0]): times for k, times in zip(np.split(cust, bounds), np.split(t, bounds),
                                                  strict=True) if k.size}


def check_purchases(spec: ModelSpec, r: SimulationResult) -> None:
    """(c): the transaction log agrees with the customers table; orders follow the retention
    model; no order after churn."""
    c, p, n = r.customers, r.purchases, r.n_customers
    bought = ~np.isnan(c["t_purchase"])
    cust = p["customer"]
    assert np.all((cust >= 0) & (cust < n)) and np.all(bought[cust]), "an order by a prospect"
    # a customer's purchases count equals its rows in the log; revenue and margin its sums
    counts = np.zeros(n, dtype=np.int64)
    np.add.at(counts, cust, 1)
    np.testing.assert_array_equal(c["purchases"], counts)
    np.testing.assert_array_equal(counts > 0, bought)
    for col in ("revenue", "margin"):
        total = np.zeros(n)
        np.add.at(total, cust, p[col])
        np.testing.assert_allclose(c[col], total, rtol=REL, atol=1e-9, err_msg=col)
    # each order: value > 0, the loyalty discount for members only, revenue and margin
    assert np.all(p["value"] > 0)
    member = c["loyalty_member"][cust]
    np.testing.assert_allclose(p["discount"], np.where(member, p["value"] * spec.loyalty.discount,
                                                       0.0), rtol=1e-12, atol=0)
    np.testing.assert_allclose(p["revenue"], p["value"] - p["discount"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p["margin"], p["value"] * spec.gross_margin - p["discount"],
                               rtol=1e-12, atol=1e-12)
    assert np.all(~c["loyalty_member"] | bought)
    if not spec.loyalty.enabled or spec.loyalty.enrol_prob == 0:
        assert not c["loyalty_member"].any()
    if spec.retention.model == "subscription":  # every order is a period's price
        ret = spec.retention
        price = (ret.price_per_period * np.array(spec.segment_order_value)[c["segment"][cust]]
                 * ret.order_value_multiplier)
        np.testing.assert_allclose(p["value"], price, rtol=1e-12)
    if spec.retention.model == "none":
        assert np.all(counts <= 1), "no repeat orders without a retention model"
    # first order, second order (retained), no order after churn
    times = _purchases_of(r)
    churned = ~np.isnan(c["t_churned"])
    for k, t in times.items():
        assert t[0] == c["t_purchase"][k]
        assert (t[1] == c["t_retention"][k]) if t.size > 1 else np.isnan(c["t_retention"][k])
        if churned[k]:
            assert t[-1] <= c["t_churned"][k], f"customer {k} bought after churning"
    order = np.lexsort((p["time"], cust))
    firsts = order[np.r_[True, cust[order][1:] != cust[order][:-1]]] if cust.size else order
    np.testing.assert_array_equal(c["first_order_value"][cust[firsts]], p["value"][firsts])
    # advocacy starts right after a purchase
    adv = np.flatnonzero(c["advocate"])
    for k in adv.tolist():
        assert c["t_advocacy"][k] in times[k], f"customer {k} advocates between purchases"


def _tickets_by_purchase(r: SimulationResult) -> dict[tuple[int, float], int]:
    tk = r.tickets
    return {(int(k), float(a)): i
            for i, (k, a) in enumerate(zip(tk["customer"], tk["arrival"], strict=True))}


def check_churn_and_renewals(spec: ModelSpec, r: SimulationResult) -> None:
    """(c): churn and renewal times follow the retention model.

    After each order the customer may raise a ticket (at the order's time) and waits for it
    to end; then it churns at once (a bad experience at the desk, or a drop-out after a
    repeat order), renews one period later (subscription) or buys again. So a churn happens
    at the end of the last order's ticket (or at the last order when it had none), a
    subscriber also a period after that; consecutive renewals are a period apart plus the
    earlier one's ticket.
    """
    c, tk = r.customers, r.tickets
    ret, ex = spec.retention, spec.experience
    by_purchase = _tickets_by_purchase(r)
    times = _purchases_of(r)

    def ticket_end(k: int, t: float) -> float | None:
        i = by_purchase.get((k, t))
        return None if i is None else float(tk["end"][i])

    def bad_ticket(i: int) -> bool:
        """A ticket is one touchpoint: its wait and its outcome together."""
        served = tk["outcome"][i] <= SERVED_MAX
        wait = (tk["start"][i] if served else tk["end"][i]) - tk["arrival"][i]
        points = (ex.ticket_resolved, ex.ticket_unresolved, ex.ticket_abandoned)[tk["outcome"][i]]
        return ex.wait_per_day * wait + points <= ex.bad_threshold

    for k in np.flatnonzero(~np.isnan(c["t_churned"])).tolist():
        t = times[k]
        end = ticket_end(k, float(t[-1]))
        base = float(t[-1]) if end is None else end
        when = c["t_churned"][k]
        if ret.model == "subscription" and not math.isclose(when, base):
            assert math.isclose(when, base + ret.period_days, rel_tol=1e-12, abs_tol=1e-9), k
            continue
        assert math.isclose(when, base, rel_tol=1e-12, abs_tol=1e-9), (k, when, base)
        if ret.model != "repeat_purchase" or t.size == 1:  # left after a bad experience
            assert end is not None, f"customer {k} churned without a ticket"
            assert bad_ticket(by_purchase[(k, float(t[-1]))]), f"customer {k}: a good ticket"
    if ret.model == "subscription":
        for k, t in times.items():
            for a, b in zip(t[:-1].tolist(), t[1:].tolist(), strict=True):
                end = ticket_end(k, a)
                expected = (a if end is None else end) + ret.period_days
                assert math.isclose(b, expected, rel_tol=1e-12, abs_tol=1e-9), (k, a, b)


def check_referrals(spec: ModelSpec, r: SimulationResult) -> None:
    """(c): every referred customer came through the referral channel, at its awareness
    time, from a referrer who was an active advocate then."""
    c, ref, n = r.customers, r.referrals, r.n_customers
    who, referrer, t = ref["customer"], ref["referrer"], ref["time"]
    assert np.unique(who).size == who.size, "a customer referred twice"
    via_referral = np.flatnonzero(c["channel"] == referral_code(spec))
    np.testing.assert_array_equal(np.sort(who), via_referral)
    np.testing.assert_array_equal(t, c["t_aware"][who])
    assert np.all((referrer >= 0) & (referrer < n)) and np.all(referrer < who)
    assert np.all(c["advocate"][referrer]), "a referrer who never advocated"
    assert np.all(c["t_advocacy"][referrer] <= t), "a referral before its referrer advocated"
    left = c["t_churned"][referrer]
    assert np.all(np.isnan(left) | (left >= t)), "a referral from a churned advocate"
    made = np.zeros(n, dtype=np.int64)
    np.add.at(made, referrer, 1)
    np.testing.assert_array_equal(c["referrals"], made)
    if spec.advocacy.referral_rate_per_day == 0:
        assert who.size == 0


def check_tickets(spec: ModelSpec, r: SimulationResult) -> None:
    """(c): tickets follow purchases (at most one each); a served ticket starts after it
    arrived and ends after it started, an abandoned one has no start; the desk never serves
    more than ``agents`` at once, first come first served."""
    c, tk = r.customers, r.tickets
    arrival, start, end, outcome = tk["arrival"], tk["start"], tk["end"], tk["outcome"]
    assert np.all((outcome >= 0) & (outcome <= 2))
    served = outcome <= SERVED_MAX
    assert not np.isnan(start[served]).any() and np.isnan(start[~served]).all()
    assert np.all(start[served] >= arrival[served])
    assert np.all(end[served] >= start[served])
    assert np.all(end[~served] >= arrival[~served])
    orders = {(int(k), float(t)) for k, t in zip(r.purchases["customer"], r.purchases["time"],
                                                 strict=True)}
    keys = list(_tickets_by_purchase(r))
    assert len(keys) == arrival.size, "two tickets from one order"
    assert set(keys) <= orders, "a ticket without an order"
    assert np.all(~np.isnan(c["t_purchase"][tk["customer"]]))
    if spec.support.issue_prob == 0:
        assert arrival.size == 0
    if spec.support.issue_prob == 1:  # every order raises one; only a customer's last
        # order may still have its ticket open at the horizon (unlogged)
        last = {k: float(t[-1]) for k, t in _purchases_of(r).items()}
        assert all(last[k] == t for k, t in orders - set(keys)), "an order without a ticket"
    # capacity: agents busy at once, ends before starts at equal times
    s, e = start[served], end[served]
    moments = np.r_[s, e]
    step = np.r_[np.ones(s.size), -np.ones(e.size)]
    order = np.lexsort((step, moments))
    busy = np.cumsum(step[order])
    assert busy.max(initial=0) <= spec.support.agents, "more tickets in service than agents"
    # first come, first served: served tickets start in the order they arrived
    by_arrival = np.argsort(arrival[served], kind="stable")
    assert np.all(np.diff(s[by_arrival]) >= 0), "a later ticket was served first"


def check_money(spec: ModelSpec, r: SimulationResult) -> None:
    """(d): the metrics' money reconciles with the customers table and the logs.

    Retention costs per buyer rebuilt from their definition (README, "Economics"): loyalty
    fee and messaging per active day, thank-you messages per order, referral rewards per
    referred customer who bought. Profit = sum over buyers of (margin - costs) - acquisition
    - support - intervention; without discounting, NPV = profit and LTV = margin - costs.
    """
    c, p = r.customers, r.purchases
    m = replication_metrics(r, spec)
    values = customer_values(r, spec)
    h = spec.horizon_days
    bought = ~np.isnan(c["t_purchase"])
    assert math.isclose(m["gross_margin"], p["margin"].sum(), rel_tol=REL, abs_tol=1e-9)
    assert math.isclose(m["revenue"], p["revenue"].sum(), rel_tol=REL, abs_tol=1e-9)
    # retention costs, rebuilt
    end = np.where(np.isnan(c["t_churned"]), h, c["t_churned"])
    active_days = np.where(bought, end - c["t_purchase"], np.nan)
    assert np.all(active_days[bought] >= 0)
    np.testing.assert_allclose(values["active_days"], active_days, rtol=REL, atol=1e-9)
    per_day = (np.where(c["loyalty_member"], spec.loyalty.cost_per_member_per_day, 0.0)
               + spec.retention.messaging_cost_per_day)
    ref = r.referrals
    paid = ref["referrer"][~np.isnan(c["t_purchase"][ref["customer"]])]
    rewards = np.zeros(r.n_customers)
    np.add.at(rewards, paid, spec.advocacy.reward_per_referral)
    costs = np.where(bought, spec.retention.thank_you_cost * c["purchases"]
                     + np.nan_to_num(active_days) * per_day + rewards, np.nan)
    np.testing.assert_allclose(values["costs"], costs, rtol=REL, atol=1e-9, equal_nan=True)
    assert np.all(np.isnan(values["ltv"]) == ~bought)
    assert math.isclose(m["costs.retention"], float(np.nansum(costs)), rel_tol=REL,
                        abs_tol=1e-9)
    # profit
    support = spec.support.agents * spec.support.cost_per_agent_per_day * h
    intervention = spec.scenario_cost_per_day * h
    assert math.isclose(m["costs.acquisition"], float(r.spend_per_day.sum()), rel_tol=REL)
    assert math.isclose(m["costs.support"], support, rel_tol=REL)
    assert math.isclose(m["costs.intervention"], intervention, rel_tol=REL)
    per_buyer = (c["margin"] - values["costs"])[bought]
    profit = (float(per_buyer.sum()) - m["costs.acquisition"] - m["costs.support"]
              - m["costs.intervention"])
    scale = (float(np.abs(per_buyer).sum()) + m["costs.acquisition"] + m["costs.support"]
             + m["costs.intervention"])
    assert math.isclose(m["profit"], profit, rel_tol=1e-6, abs_tol=1e-6 * scale), (
        m["profit"], profit)
    if spec.discount_rate_per_day == 0:
        np.testing.assert_allclose(values["ltv"], c["margin"] - costs, rtol=REL, atol=1e-9)
        assert math.isclose(m["npv"], m["profit"], rel_tol=1e-6, abs_tol=1e-6 * scale)
    # NPV: every cash flow discounted to day 0 where it happens (channel spend at the start
    # of its day, running costs and staff continuously, the rest at its moment)
    delta = spec.discount_rate_per_day

    def pv_flow(rate: np.ndarray | float, t0: np.ndarray | float, t1: np.ndarray | float):
        """Present value of a flow of ``rate`` per day over [t0, t1] (expm1: exact for a
        tiny rate of discount too)."""
        length = np.asarray(t1) - t0
        if delta == 0:
            return rate * length
        return rate * np.exp(-delta * np.asarray(t0)) * -np.expm1(-delta * length) / delta

    at_order = np.exp(-delta * p["time"])
    day_start = np.exp(-delta * np.arange(len(r.spend_per_day)))
    referred_buy = c["t_purchase"][ref["customer"]]  # a reward is paid then
    referred_buy = referred_buy[~np.isnan(referred_buy)]
    staff = spec.support.agents * spec.support.cost_per_agent_per_day + spec.scenario_cost_per_day
    npv = (float((p["margin"] * at_order).sum())
           - float(r.spend_per_day.sum(axis=1) @ day_start)
           - spec.retention.thank_you_cost * float(at_order.sum())
           - float(pv_flow(per_day[bought], c["t_purchase"][bought], end[bought]).sum())
           - spec.advocacy.reward_per_referral * float(np.exp(-delta * referred_buy).sum())
           - float(pv_flow(staff, 0.0, h)))
    assert math.isclose(m["npv"], npv, rel_tol=1e-6, abs_tol=1e-6 * scale), (m["npv"], npv)
    # counts the metrics report
    churned = ~np.isnan(c["t_churned"])
    assert m["purchases"] == bought.sum()
    assert m["churned"] == churned.sum()
    assert m["active_customers"] == (bought & ~churned).sum()
    assert m["support.tickets"] == r.tickets["arrival"].size
    assert m["referrals"] == r.referrals["customer"].size
    assert m["advocates"] == c["advocate"].sum()
    assert m["loyalty_members"] == c["loyalty_member"].sum()
    for name, value in m.items():
        low, high = metric_range(name)
        assert math.isnan(value) or low <= value <= high, (name, value, low, high)


def check_daily(spec: ModelSpec, r: SimulationResult) -> None:
    """(e): the daily table reconciles with the customers table and the logs."""
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
    p = r.purchases
    assert d["orders"].sum() == p["time"].size
    assert math.isclose(d["revenue"].sum(), p["revenue"].sum(), rel_tol=REL, abs_tol=1e-9)
    assert math.isclose(d["margin"].sum(), p["margin"].sum(), rel_tol=REL, abs_tol=1e-9)
    assert d["tickets"].sum() == r.tickets["arrival"].size

    def day(t: np.ndarray) -> np.ndarray:  # the day an event falls in (the horizon: the last)
        return np.minimum(np.floor(t), n_days - 1)

    np.testing.assert_array_equal(d["orders"], [np.sum(day(p["time"]) == k)
                                                for k in range(n_days)])
    # active customers at the end of each day: bought by then and not churned by then
    bought = ~np.isnan(c["t_purchase"])
    t_buy, t_churn = day(c["t_purchase"][bought]), day(c["t_churned"][bought])
    days = np.arange(n_days)[:, None]
    active = ((t_buy[None, :] <= days) & ~(t_churn[None, :] <= days)).sum(axis=1)
    np.testing.assert_array_equal(d["active_customers"], active)
    if n_days:
        assert d["active_customers"][-1] == (bought & np.isnan(c["t_churned"])).sum()


def check_horizon(spec: ModelSpec, r: SimulationResult) -> None:
    """(f): nothing happens after the horizon."""
    h = spec.horizon_days
    times = [r.customers["t_aware"], r.events["time"], r.abandonments["time"],
             r.purchases["time"], r.referrals["time"], r.tickets["arrival"],
             r.tickets["start"], r.tickets["end"],
             *(r.customers[f"t_{s}"] for s in spec.states)]
    for x in times:
        x = x[~np.isnan(x)]
        assert np.all((x >= 0) & (x <= h)), (x.min(initial=0), x.max(initial=0), h)


def check_all(spec: ModelSpec, r: SimulationResult) -> None:
    check_states_and_outcomes(spec, r)
    check_paths(spec, r)
    check_experience(spec, r)
    check_purchases(spec, r)
    check_churn_and_renewals(spec, r)
    check_referrals(spec, r)
    check_tickets(spec, r)
    check_money(spec, r)
    check_daily(spec, r)
    check_horizon(spec, r)


# --------------------------------------------------------------------------- tests
@pytest.mark.quick_version_of("test_invariants_random_journeys_many")
@settings(HYPOTHESIS, max_examples=30)
@given(configs())
def test_invariants_random_journeys(case: tuple[dict[str, Any], int, int]) -> None:
    """Every invariant on 30 random models (skipped when the slow tests, 150, run)."""
    check_random_journey(case)


@pytest.mark.slow
@HYPOTHESIS
@given(configs())
def test_invariants_random_journeys_many(case: tuple[dict[str, Any], int, int]) -> None:
    """As above, 150 examples."""
    check_random_journey(case)


def check_random_journey(case: tuple[dict[str, Any], int, int]) -> None:
    cfg, seed, replication = case
    spec = build_spec(cfg)
    result = simulate(spec, seed, replication)
    check_all(spec, result)
    # statistics for --hypothesis-show-statistics: which cases were exercised
    c = result.customers
    event(f"stages: {spec.n_stages}")
    event(f"retention: {spec.retention.model}")
    event("has buyers" if (c["outcome"] == PURCHASED).any() else "no buyers")
    event("has recoveries" if result.abandonments["recovered"].any() else "no recoveries")
    event("has repeat orders" if (c["purchases"] > 1).any() else "no repeat orders")
    event("has churn" if (c["outcome"] == CHURNED).any() else "no churn")
    event("has members" if c["loyalty_member"].any() else "no members")
    event("has advocates" if c["advocate"].any() else "no advocates")
    event("has referrals" if result.referrals["customer"].size else "no referrals")
    tk = result.tickets["outcome"]
    event("has tickets" if tk.size else "no tickets")
    event("has abandoned tickets" if (tk == 2).any() else "no abandoned tickets")


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
    cfg["advocacy"]["referral_entry_stage"] = "discover"
    spec = build_spec(cfg)
    r = simulate(spec, 5, 0)
    check_all(spec, r)
    assert not np.isnan(r.customers["t_dead_end"]).all()


def test_baseline_invariants_cover_every_outcome() -> None:
    """The baseline: buyers, churners, abandoners, recoveries, losses, repeat orders,
    advocates and tickets all pass the checks."""
    spec = build_spec(base_config())
    r = simulate(spec, 7, 0)
    check_all(spec, r)
    c = r.customers
    assert {PURCHASED, LOST, ABANDONED, CHURNED} <= set(c["outcome"].tolist())
    assert r.abandonments["recovered"].any()
    assert (c["purchases"] > 1).any() and c["advocate"].any()
    assert r.tickets["arrival"].size


def life_variant_config(model: str, everything_on: bool) -> dict[str, Any]:
    """A busy variant of the base config: ``model``'s retention; with ``everything_on``,
    loyalty, every message and the referral programme; a desk of two agents that every
    purchase reaches, slow handling and impatient, unforgiving customers; 200 days."""
    cfg = base_config()
    cfg["retention"]["model"] = model
    for flag in ("newsletter", "recommendations", "cross_sell", "thank_you"):
        cfg["retention"]["messaging"][flag] = everything_on
    cfg["loyalty"] |= {"enabled": everything_on, "enrol_prob": 0.6}
    cfg["advocacy"] |= {"program": everything_on, "advocate_prob": 0.5,
                        "referral_rate_per_day": 0.05}
    cfg["support"] |= {"issue_prob": 1.0, "agents": 2, "handling_mean_minutes": 2880.0,
                       "patience_mean_minutes": 60.0}
    cfg["experience"]["leave_after_bad"] = 0.8
    cfg["run"]["horizon_days"] = 200
    return cfg


@pytest.mark.parametrize(("model", "everything_on"), [
    ("repeat_purchase", False), ("subscription", False), ("none", False),
    ("repeat_purchase", True), ("subscription", True),
])
def test_life_variants(model: str, everything_on: bool) -> None:
    """Each retention model, and each with loyalty, every message and the referral programme
    on, a busy desk of two agents and unforgiving customers: the invariants hold and the
    mechanisms are exercised."""
    spec = build_spec(life_variant_config(model, everything_on))
    r = simulate(spec, 13, 0)
    check_all(spec, r)
    c = r.customers
    assert (c["outcome"] == CHURNED).any()
    assert (c["purchases"] > 1).any() == (model != "none")
    assert r.referrals["customer"].size > 0
    assert {0, 2} <= set(r.tickets["outcome"].tolist())  # resolved and abandoned tickets
    assert c["loyalty_member"].any() == everything_on


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
    cfg["advocacy"]["referral_entry_stage"] = "decide"
    cfg["advocacy"]["referral_rate_per_day"] = 0.05
    spec = build_spec(cfg)
    r = simulate(spec, 11, 0)
    check_all(spec, r)
    c = r.customers
    done = ~np.isnan(c["t_purchase"])
    assert done.any()
    np.testing.assert_array_equal(c["t_purchase"][done], c["t_aware"][done])
    assert (c["channel"] == referral_code(spec)).any()  # referred prospects jump to decide


def _tables(r: SimulationResult) -> dict[str, np.ndarray]:
    """Every table of a run, in an order that does not depend on when rows were recorded:
    events by customer (each customer's own in record order), abandonments by customer."""
    out = {f"customers.{k}": v for k, v in r.customers.items()}
    by_customer = np.argsort(r.events["customer"], kind="stable")
    out |= {f"events.{k}": v[by_customer] for k, v in r.events.items()}
    by_customer = np.argsort(r.abandonments["customer"], kind="stable")
    out |= {f"abandonments.{k}": v[by_customer] for k, v in r.abandonments.items()}
    for name in ("purchases", "referrals", "tickets"):
        out |= {f"{name}.{k}": v for k, v in getattr(r, name).items()}
    return out


def _assert_shortcuts_exact(cfg: dict[str, Any], seed: int, replication: int,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.engine.agent import AgentModel

    spec = build_spec(cfg)
    quick = AgentModel(spec, seed, replication).run()
    with monkeypatch.context() as m:
        m.setattr(AgentModel, "stepwise", True)
        stepwise = AgentModel(spec, seed, replication).run()
    a, b = _tables(quick), _tables(stepwise)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert quick.n_sim_events <= stepwise.n_sim_events


@pytest.mark.parametrize(("model", "everything_on"), [
    ("repeat_purchase", True), ("subscription", True), ("none", False)])
def test_agent_shortcuts_are_exact_on_busy_lives(model: str, everything_on: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent engine's shortcuts (a prospect's walk runs ahead on its own clock, the
    market's clock moves without events) give the tables of a run in which every step
    waits for the simulation clock, bit for bit: busy desks, many advocates joining and
    leaving, strong social proof (seed 13)."""
    cfg = life_variant_config(model, everything_on)
    cfg["journey"]["social_proof"] = 5.0
    _assert_shortcuts_exact(cfg, 13, 0, monkeypatch)


@settings(HYPOTHESIS, max_examples=40)
@given(configs())
def test_agent_shortcuts_are_exact_on_random_journeys(
        case: tuple[dict[str, Any], int, int]) -> None:
    """As above, on random journeys: dwell kinds including zero dwell (ties), loops,
    steps back, social proof on any stage, every life mechanism."""
    cfg, seed, replication = case
    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_shortcuts_exact(cfg, seed, replication, monkeypatch)


def _nobody_aware() -> tuple[ModelSpec, SimulationResult]:
    """No reach and no word of mouth: nobody becomes aware. ``build_spec`` refuses such a
    config (it says why), so the engine's own handling is tested on a spec whose reach is
    zeroed afterwards."""
    cfg = base_config()
    cfg["run"]["horizon_days"] = 30
    spec = build_spec(cfg)
    spec = dataclasses.replace(spec, reach_per_day=np.zeros_like(spec.reach_per_day))
    return spec, simulate(spec, 3, 0)


def test_nobody_becomes_aware() -> None:
    spec, r = _nobody_aware()
    assert r.n_customers == 0
    assert r.events["time"].size == 0
    check_states_and_outcomes(spec, r)
    check_paths(spec, r)
    check_experience(spec, r)
    check_purchases(spec, r)
    check_referrals(spec, r)
    check_tickets(spec, r)
    check_horizon(spec, r)


def test_daily_table_and_money_with_no_customers() -> None:
    """A run where nobody became aware has an all-zero daily table of the right length, and
    its money is the fixed costs alone."""
    spec, r = _nobody_aware()
    check_daily(spec, r)
    check_money(spec, r)
    d = daily_table(r)
    assert not any(v.any() for k, v in d.items() if k.startswith(("in_", "reached_", "aware")))
    assert not any(d[k].any() for k in ("orders", "revenue", "margin", "tickets",
                                        "active_customers"))


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _corrupt(r: SimulationResult, how: str) -> None:
    c, ev, p, tk, ref = r.customers, r.events, r.purchases, r.tickets, r.referrals
    buyer = _first(~np.isnan(c["t_purchase"]))
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
    elif how == "churned_still_active":
        c["outcome"][_first(c["outcome"] == CHURNED)] = PURCHASED
    elif how == "order_after_churn":
        k = _first((c["outcome"] == CHURNED) & (c["purchases"] > 1))
        p["time"][np.flatnonzero(p["customer"] == k)[-1]] = c["t_churned"][k] + 1e-6
    elif how == "purchase_count":
        c["purchases"][buyer] += 1
    elif how == "revenue":
        c["revenue"][buyer] += 0.01
    elif how == "margin_without_discount":
        p["margin"][0] += 0.5
    elif how == "referrer_not_advocate":
        ref["referrer"][0] = _first(~c["advocate"] & (np.arange(r.n_customers)
                                                      < ref["customer"][0]))
    elif how == "referrer_churned":
        i = _first(~np.isnan(c["t_churned"][ref["referrer"]]))
        c["t_churned"][ref["referrer"][i]] = ref["time"][i] - 1e-6
    elif how == "ticket_before_arrival":
        served = _first(tk["outcome"] < 2)
        tk["start"][served] = tk["arrival"][served] - 1e-6
    elif how == "abandoned_ticket_served":
        tk["start"][_first(tk["outcome"] == 2)] = tk["arrival"][_first(tk["outcome"] == 2)]
    elif how == "score_out_of_range":
        ev["score"][sel[-1]] = 2.5
    elif how == "stage_points":
        ev["score"][sel[1]] += 0.1


CORRUPTIONS = ["time_backwards", "wrong_final_state", "outcome", "forgotten_first_entry",
               "skipped_checkout", "after_horizon", "churned_still_active", "order_after_churn",
               "purchase_count", "revenue", "margin_without_discount", "referrer_not_advocate",
               "referrer_churned", "ticket_before_arrival", "abandoned_ticket_served",
               "score_out_of_range", "stage_points"]


@pytest.fixture(scope="module")
def valid_run() -> tuple[ModelSpec, SimulationResult]:
    """A baseline run with every mechanism at work, for the corruption tests."""
    cfg = base_config()
    cfg["advocacy"] |= {"advocate_prob": 0.5, "referral_rate_per_day": 0.05}
    cfg["support"] |= {"issue_prob": 0.4, "handling_mean_minutes": 120.0}
    cfg["run"]["horizon_days"] = 200
    spec = build_spec(cfg)
    r = simulate(spec, 7, 0)
    check_all(spec, r)
    churned_referrers = ~np.isnan(r.customers["t_churned"][r.referrals["referrer"]])
    assert churned_referrers.any() and (r.tickets["outcome"] == 2).any()
    return spec, r


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_checks_catch_a_corrupted_result(valid_run: tuple[ModelSpec, SimulationResult],
                                         how: str) -> None:
    """The checks are not vacuous: each corruption of a valid result is caught."""
    spec, r = valid_run
    r = copy.deepcopy(r)
    _corrupt(r, how)
    with pytest.raises(AssertionError):
        check_all(spec, r)


def test_allowed_transitions_of_the_baseline() -> None:
    """The transition table follows the six-stage graph (awareness -> consideration only),
    then life as a customer: retained, advocating, churned."""
    spec = build_spec(base_config())
    ok = allowed_transitions(spec)
    code = spec.code
    allowed = {(a, b) for a in spec.states for b in spec.states if ok[code(a), code(b)]}
    assert allowed == {
        ("awareness", "consideration"), ("awareness", "lost"),
        ("consideration", "consideration"), ("consideration", "intent"),
        ("consideration", "awareness"), ("consideration", "lost"),
        ("intent", CHECKOUT), ("intent", "consideration"), ("intent", "lost"),
        (CHECKOUT, "purchase"), (CHECKOUT, "lost"),
        ("purchase", "retention"), ("purchase", "advocacy"), ("purchase", "churned"),
        ("retention", "advocacy"), ("retention", "churned"),
        ("advocacy", "retention"), ("advocacy", "churned"),
    }


@pytest.mark.parametrize("journey", ["six_stage", "six_stage_decision", "five_stage",
                                     "four_stage"])
@pytest.mark.parametrize("retention", ["repeat_purchase", "subscription"])
def test_invariants_preset_journeys(make_config: Callable[..., dict[str, Any]],
                                    journey: str, retention: str) -> None:
    """The shipped journey and retention presets satisfy the invariants too (one seed each)."""
    cfg = make_config("run=smoke", f"journey={journey}", f"retention={retention}")
    spec = build_spec(cfg)
    r = simulate(spec, 20261123, 1)
    check_all(spec, r)
    assert (r.customers["outcome"] == PURCHASED).any()
    assert (r.customers["purchases"] > 1).any()

"""Oracle tests: the agent engine against closed forms (docs: REFERENCES.md).

Every statistical test names its seed and allows ``K_SE`` = 4 standard errors, derived from
the sample: sqrt(p (1 - p) / n) for a proportion (p the expected value), sample SD / sqrt(n)
for a mean, sqrt((m4 - s^4) / n) for a variance (m4 the sample fourth central moment). At 4 SE
a correct mechanism fails one comparison in about 16,000, so the fixed seeds below are not
tuned; a wrong mechanism (say a 5 % bias on a probability) fails by many SE at these sizes.

Covered: the absorbing Markov chain funnel (reference chain and one with steps back,
non-exponential dwell times and segment odds multipliers), the Bass diffusion curve,
checkout abandonment and recovery, odds-multiplier levers, awareness under constant and
time-varying reach, and the spend -> reach model (Hill saturation, geometric adstock).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import SimulationResult, simulate
from sim.measure.metrics import replication_metrics
from sim.model.config import compose_config, to_container
from sim.model.spec import ModelSpec, build_spec, daily_spend_and_reach, odds_shift

K_SE = 4.0  # standard errors allowed in every statistical comparison
NEVER = -60.0  # checkout.base_logit that makes abandonment ~1e-26: the checkout always buys


# ----------------------------------------------------------------------------- helpers
def plain_config() -> dict[str, Any]:
    """The composed baseline as a plain dict (what the ``make_config`` fixture returns)."""
    return to_container(compose_config([]))


def stage(kind: str, mean_days: float, cv: float | None = None,
          exits: Mapping[str, float] | None = None, levers: tuple[str, ...] = ()) -> dict:
    return {"dwell": {"kind": kind, "mean_days": float(mean_days),
                      "cv": None if cv is None else float(cv)},
            "exits": dict(exits or {}), "levers": list(levers)}


def journey_config(
    base: Mapping[str, Any],
    stages: Mapping[str, dict],
    *,
    size: int,
    channels: Mapping[str, Mapping[str, Any]],
    horizon_days: float,
    segments: Mapping[str, Mapping[str, float]] | None = None,
    sure_checkout: bool = True,
    advocate_prob: float = 0.0,
    wom_q_per_day: float = 0.0,
    churn: bool = True,
    **journey: Any,
) -> dict[str, Any]:
    """A config with its own stage graph, market, channels and horizon.

    ``sure_checkout``: instant checkout that never abandons, so entering ``checkout`` is
    the absorbing "purchase" state of the textbook chain. No referrals (they would add an
    awareness hazard of their own). ``churn=False``: buyers buy once and never leave (no
    retention model, no issues at the service desk), so an advocate stays one for ever.
    """
    c = copy.deepcopy(dict(base))
    c["market"] = {"size": size, "segments": dict(segments or {"all": {"share": 1.0}})}
    c["channels"] = {name: dict(ch) for name, ch in channels.items()}
    first = next(iter(stages))
    c["journey"] = {"name": "oracle", "stages": dict(stages),
                    "report": {first: [first], "purchase": ["purchase"]}, **journey}
    if sure_checkout:
        c["checkout"] |= {"base_logit": NEVER, "dwell": {"kind": "fixed", "mean_days": 0.0}}
    c["advocacy"] = {"advocate_prob": advocate_prob, "wom_q_per_day": wom_q_per_day,
                     "referral_rate_per_day": 0.0, "referral_entry_stage": first}
    if not churn:
        c["retention"]["model"] = "none"
        c["support"]["issue_prob"] = 0.0
    c["run"]["horizon_days"] = horizon_days
    return c


def assert_prob(k: int, n: int, p: float, label: str) -> None:
    """k successes out of n within K_SE binomial standard errors of p."""
    se = math.sqrt(p * (1 - p) / n)
    assert abs(k / n - p) <= K_SE * se, f"{label}: {k / n:.5f} vs {p:.5f} (SE {se:.2g}, n={n})"


def assert_mean(x: np.ndarray, expected: float, label: str) -> None:
    """Sample mean within K_SE * sample SD / sqrt(n) of the expected value."""
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert abs(x.mean() - expected) <= K_SE * se, (
        f"{label}: {x.mean():.5f} vs {expected:.5f} (SE {se:.2g}, n={x.size})")


def assert_variance(x: np.ndarray, expected: float, label: str) -> None:
    """Sample variance within K_SE * sqrt((m4 - s^4) / n) of the expected variance."""
    d = x - x.mean()
    s2, m4 = float(np.mean(d**2)), float(np.mean(d**4))
    se = math.sqrt((m4 - s2**2) / x.size)
    assert abs(x.var(ddof=1) - expected) <= K_SE * se, (
        f"{label}: {x.var(ddof=1):.4f} vs {expected:.4f} (SE {se:.2g})")


# ------------------------------------------------------------- absorbing Markov chain
def absorbing_chain(q: np.ndarray, r_buy: np.ndarray, mean_days: np.ndarray) -> dict[str, Any]:
    """Closed forms from the first transient state (index 0).

    N = (I - Q)^-1; visits N_0j; steps t = N 1, Var = (2N - I) t - t^2; absorption into
    purchase h = N r. Time to absorption sum_j N_0j mean_j (holds for any dwell law,
    since the exit is drawn independently of the dwell). Conditional on purchase the chain
    is the Doob h-transform Q~_ij = Q_ij h_j / h_i, with the same dwell laws.

    References
    ----------
    Kemeny, J. G. & Snell, J. L. (1976). *Finite Markov Chains*, ch. 3.
    """
    eye = np.eye(len(q))
    n = np.linalg.inv(eye - q)
    t = n.sum(axis=1)
    h = n @ r_buy
    assert np.all(h > 0), "every stage must be able to reach purchase for the h-transform"
    n_cond = np.linalg.inv(eye - q * h[None, :] / h[:, None])
    return {
        "p_buy": h[0],
        "visits": n[0],
        "steps": t[0],
        "var_steps": ((2 * n - eye) @ t - t * t)[0],
        "time": n[0] @ mean_days,
        "time_given_buy": n_cond[0] @ mean_days,
    }


def chain_config(q: np.ndarray, r_buy: np.ndarray, names: tuple[str, ...],
                 dwells: list[tuple[str, float, float | None]]) -> dict[str, dict]:
    """Prospect stages with exit probabilities Q (rows) and r_buy (to checkout)."""
    stages = {}
    for i, name in enumerate(names):
        exits = {names[j]: float(q[i, j]) for j in range(len(names)) if q[i, j] > 0}
        if r_buy[i] > 0:
            exits["checkout"] = float(r_buy[i])
        kind, mean, cv = dwells[i]
        stages[name] = stage(kind, mean, cv, exits)
    return stages


def absorbed_paths(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per customer: visits per stage, whether bought, time from awareness to absorption."""
    c, ev = result.customers, result.events
    n, n_states = result.n_customers, len(result.states)
    assert np.all(c["outcome"] != 0), "a customer is still in the journey at the horizon"
    assert result.abandonments["customer"].size == 0
    visits = np.bincount(ev["customer"] * n_states + ev["state"].astype(np.int64),
                         minlength=n * n_states).reshape(n, n_states)[:, : spec.n_stages]
    bought = ~np.isnan(c["t_purchase"])
    t_end = np.where(bought, c["t_purchase"], c["t_lost"])
    assert not np.any(np.isnan(t_end))
    return {"visits": visits, "bought": bought, "time": t_end - c["t_aware"],
            "segment": c["segment"]}


def check_chain(paths: Mapping[str, np.ndarray], ref: Mapping[str, Any], names: tuple[str, ...],
                label: str) -> None:
    bought, visits, time = paths["bought"], paths["visits"], paths["time"]
    assert_prob(int(bought.sum()), bought.size, ref["p_buy"], f"{label} P(purchase)")
    for j, name in enumerate(names):
        assert_mean(visits[:, j], ref["visits"][j], f"{label} visits to {name}")
    steps = visits.sum(axis=1)
    assert_mean(steps, ref["steps"], f"{label} E[steps]")
    assert_variance(steps, ref["var_steps"], f"{label} Var[steps]")
    assert_mean(time, ref["time"], f"{label} E[time to absorption]")
    assert_mean(time[bought], ref["time_given_buy"], f"{label} E[time to purchase | purchase]")


REF_NAMES = ("aware", "consider", "intent", "cart")
REF_Q = np.array([
    [0.30, 0.40, 0.00, 0.00],
    [0.10, 0.30, 0.35, 0.00],
    [0.00, 0.15, 0.20, 0.45],
    [0.00, 0.00, 0.10, 0.00],
])
REF_R = np.array([0.0, 0.0, 0.0, 0.30])  # the reference's Checkout -> Purchase
REF_MEANS = np.array([1.0, 2.5, 4.0, 0.5])  # exponential dwell means, days
REF_SEED = 101
REF_SIZE = 40_000


def test_reference_chain_closed_forms() -> None:
    """The oracle itself reproduces the published numbers (REFERENCES.md)."""
    ref = absorbing_chain(REF_Q, REF_R, REF_MEANS)
    assert ref["p_buy"] == pytest.approx(63 / 1010, rel=1e-12)
    assert ref["steps"] == pytest.approx(327 / 101, rel=1e-12)
    assert ref["var_steps"] == pytest.approx(5.641, abs=5e-4)


@pytest.fixture(scope="module")
def reference_chain() -> tuple[dict[str, np.ndarray], ModelSpec]:
    """The REFERENCES.md funnel, exponential dwells; 40,000 aware; seed REF_SEED."""
    stages = chain_config(REF_Q, REF_R, REF_NAMES,
                          [("exponential", m, None) for m in REF_MEANS])
    # reach 0.5 / day: the whole market is aware within a month; a journey lasting the
    # remaining 370 days has probability far below 1e-12
    cfg = journey_config(plain_config(), stages, size=REF_SIZE, horizon_days=400.0,
                         channels={"organic": {"organic_reach_per_day": 0.5}})
    spec = build_spec(cfg)
    result = simulate(spec, seed=REF_SEED, replication=0)
    assert result.n_customers == REF_SIZE
    return absorbed_paths(result, spec), spec


def test_reference_chain_spec_is_the_table(reference_chain) -> None:
    _, spec = reference_chain
    for i, st_ in enumerate(spec.stages):
        row = np.zeros(len(REF_NAMES) + 1)
        for target, p in zip(st_.targets, st_.probs, strict=True):
            row[target] = p
        np.testing.assert_allclose(row, [*REF_Q[i], REF_R[i]])


def test_reference_chain_purchase_probability(reference_chain) -> None:
    paths, _ = reference_chain
    assert_prob(int(paths["bought"].sum()), paths["bought"].size, 63 / 1010, "P(purchase)")


def test_reference_chain_visits_and_steps(reference_chain) -> None:
    paths, _ = reference_chain
    ref = absorbing_chain(REF_Q, REF_R, REF_MEANS)
    for j, name in enumerate(REF_NAMES):
        assert_mean(paths["visits"][:, j], ref["visits"][j], f"visits to {name}")
    steps = paths["visits"].sum(axis=1)
    assert_mean(steps, 327 / 101, "E[steps]")
    assert_variance(steps, ref["var_steps"], "Var[steps]")


def test_reference_chain_times(reference_chain) -> None:
    paths, _ = reference_chain
    ref = absorbing_chain(REF_Q, REF_R, REF_MEANS)
    assert_mean(paths["time"], ref["time"], "E[time to absorption]")
    bought = paths["bought"]
    assert_mean(paths["time"][bought], ref["time_given_buy"], "E[time to purchase | purchase]")


# A chain of our own: steps back, a sticky stage (many visits beyond the pre-drawn four),
# gamma / lognormal / weibull dwell times, and two segments with conversion odds
# multipliers 1 and 1.8 on the forward exits (later stages and checkout).
OWN_NAMES = ("discover", "research", "compare")
OWN_Q = np.array([
    [0.20, 0.50, 0.00],
    [0.15, 0.55, 0.20],
    [0.00, 0.25, 0.10],
])
OWN_R = np.array([0.0, 0.0, 0.40])
OWN_DWELLS = [("lognormal", 2.0, 1.5), ("gamma", 4.0, 0.5), ("weibull", 1.5, 2.0)]
OWN_SEGMENTS = {"base": 1.0, "keen": 1.8}
OWN_SEED = 202


def shifted_chain(q: np.ndarray, r_buy: np.ndarray, multiplier: float) -> tuple[np.ndarray, ...]:
    """Q and R after an odds multiplier on forward exits, by hand (DESIGN.md section 2).

    Forward exits (to a later stage or checkout) get weight m p, the others p, the lost
    share 1 - sum p; each row is renormalised.
    """
    k = len(q)
    forward = np.triu(np.ones((k, k), dtype=bool), 1)
    w = np.where(forward, q * multiplier, q)
    w_buy = r_buy * multiplier
    lost = 1 - q.sum(axis=1) - r_buy
    total = w.sum(axis=1) + w_buy + lost
    return w / total[:, None], w_buy / total


@pytest.fixture(scope="module")
def own_chain() -> tuple[dict[str, np.ndarray], ModelSpec]:
    stages = chain_config(OWN_Q, OWN_R, OWN_NAMES, OWN_DWELLS)
    segments = {name: {"share": 0.5, "conversion": m} for name, m in OWN_SEGMENTS.items()}
    cfg = journey_config(plain_config(), stages, size=40_000, horizon_days=1500.0,
                         segments=segments,
                         channels={"organic": {"organic_reach_per_day": 0.5}})
    spec = build_spec(cfg)
    result = simulate(spec, seed=OWN_SEED, replication=0)
    return absorbed_paths(result, spec), spec


def test_own_chain_shift_matches_odds_shift(own_chain) -> None:
    """The hand-shifted Q equals ``sim.model.spec.odds_shift`` on the spec's exit tables."""
    _, spec = own_chain
    for m in OWN_SEGMENTS.values():
        q, r = shifted_chain(OWN_Q, OWN_R, m)
        for i, st_ in enumerate(spec.stages):
            shifted = odds_shift(np.array(st_.probs), np.array(st_.forward), m)
            row = np.zeros(len(OWN_NAMES) + 1)
            row[list(st_.targets)] = shifted
            np.testing.assert_allclose(row, [*q[i], r[i]], rtol=1e-12)


def test_own_chain_exceeds_predrawn_visits(own_chain) -> None:
    """The sticky stage really sends customers past the pre-drawn visits (overflow path)."""
    paths, _ = own_chain
    assert (paths["visits"][:, 1] > 4).sum() > 1000


@pytest.mark.parametrize("segment", list(OWN_SEGMENTS))
def test_own_chain_per_segment(own_chain, segment: str) -> None:
    """Each segment follows its own odds-shifted chain (seed OWN_SEED)."""
    paths, spec = own_chain
    g = spec.segment_names.index(segment)
    sel = paths["segment"] == g
    q, r = shifted_chain(OWN_Q, OWN_R, OWN_SEGMENTS[segment])
    ref = absorbing_chain(q, r, np.array([m for _, m, _ in OWN_DWELLS]))
    check_chain({k: v[sel] for k, v in paths.items()}, ref, OWN_NAMES, segment)


# ---------------------------------------------------------------------- Bass diffusion
BASS_P, BASS_Q = 0.03, 0.38  # per year
BASS_M = 10_000
BASS_YEARS = (2.0, math.log(BASS_Q / BASS_P) / (BASS_P + BASS_Q), 6.0, 10.0)  # incl. the peak
BASS_SEED = 1969


def bass_f(t_years: float, p: float = BASS_P, q: float = BASS_Q) -> float:
    e = math.exp(-(p + q) * t_years)
    return (1 - e) / (1 + q / p * e)


@pytest.fixture
def bass_spec(make_config: Callable[..., dict[str, Any]]) -> ModelSpec:
    """Every step certain and instant, every buyer an advocate for ever (no churn)."""
    stages = {"aware": stage("fixed", 0.0, exits={"checkout": 1.0})}
    cfg = journey_config(make_config(), stages, size=BASS_M, horizon_days=10 * 365.0,
                         channels={"organic": {"organic_reach_per_day": BASS_P / 365}},
                         advocate_prob=1.0, wom_q_per_day=BASS_Q / 365, churn=False)
    return build_spec(cfg)


def adoption_share(result: SimulationResult, t_years: float) -> float:
    return float(np.sum(result.customers["t_purchase"] <= t_years * 365)) / BASS_M


def test_bass_reference_values() -> None:
    assert bass_f(2) == pytest.approx(0.08506, abs=1e-5)
    assert bass_f(6) == pytest.approx(0.4392, abs=1e-4)
    assert bass_f(10) == pytest.approx(0.8128, abs=1e-4)
    assert bass_f(BASS_YEARS[1]) == pytest.approx(0.5 - BASS_P / (2 * BASS_Q), rel=1e-12)


def test_bass_single_run(bass_spec: ModelSpec) -> None:
    """One run, seed BASS_SEED: |A(t)/N - F(t)| <= 0.05 (REFERENCES.md single-run bound)."""
    result = simulate(bass_spec, seed=BASS_SEED, replication=0)
    for t in BASS_YEARS:
        assert abs(adoption_share(result, t) - bass_f(t)) <= 0.05, t


@pytest.mark.slow
def test_bass_mean_of_many_runs(bass_spec: ModelSpec) -> None:
    """Mean of 100 runs (seed BASS_SEED + 1, replications 0..99) within 4 * 0.0115 /
    sqrt(100) = 0.0046 of the Bass curve (about 0.8 s a run: every buyer starts a life as a
    customer; 150 runs, 0.0038, cost CI two minutes for little more power).

    0.0115 is the single-run SD near the peak (about 2.3x binomial, REFERENCES.md).
    """
    runs = 100
    results = (simulate(bass_spec, seed=BASS_SEED + 1, replication=r) for r in range(runs))
    shares = np.array([[adoption_share(res, t) for t in BASS_YEARS] for res in results])
    tol = K_SE * 0.0115 / math.sqrt(runs)
    for j, t in enumerate(BASS_YEARS):
        assert abs(shares[:, j].mean() - bass_f(t)) <= tol, (t, shares[:, j].mean(), bass_f(t))


# ---------------------------------------------------------------------------- checkout
# The documented weights (configs/checkout/baseline.yaml and sim.model.config.CheckoutWeights),
# written out here so the logistic model is checked by hand.
BASE_LOGIT = -0.573
W_STEP, W_ACCOUNT, W_FEES, W_PAYMENT, W_LOAD, W_TRUST = 0.08, 0.35, 0.60, 0.15, 0.05, -0.50

FRICTION = {
    "baseline": {},
    "no_hidden_fees": {"hidden_fees": False},
    "no_forced_account": {"forced_account": False},
    "two_steps": {"steps": 2},
    "best_practice": {"steps": 1, "forced_account": False, "hidden_fees": False,
                      "payment_methods": 5, "page_load_seconds": 0.8, "trust": 1.0},
    "worst": {"steps": 9, "payment_methods": 0, "page_load_seconds": 8.0, "trust": 0.0},
}


def abandon_by_hand(co: Mapping[str, Any]) -> float:
    z = (BASE_LOGIT + W_STEP * (co["steps"] - 1) + W_ACCOUNT * co["forced_account"]
         + W_FEES * co["hidden_fees"]
         + W_PAYMENT * max(0, co["payment_methods_expected"] - co["payment_methods"])
         + W_LOAD * max(0.0, co["page_load_seconds"] - 1) + W_TRUST * co["trust"])
    return 1 / (1 + math.exp(-z))


def checkout_config(base: Mapping[str, Any], size: int = 20_000,
                    **checkout: Any) -> dict[str, Any]:
    """Every aware customer goes to checkout after one exponential visit (mean 1 day)."""
    stages = {"browse": stage("exponential", 1.0, exits={"checkout": 1.0})}
    cfg = journey_config(base, stages, size=size, horizon_days=60.0, sure_checkout=False,
                         channels={"organic": {"organic_reach_per_day": 1.0}})
    cfg["checkout"] |= checkout
    return cfg


def test_default_abandonment_near_published_average(make_config) -> None:
    spec = build_spec(make_config())
    assert 0.65 <= spec.checkout.abandon_prob <= 0.75
    assert spec.checkout.abandon_prob == pytest.approx(abandon_by_hand(make_config()["checkout"]),
                                                       rel=1e-12)


@pytest.mark.parametrize("setting", list(FRICTION))
def test_abandon_prob_is_the_logistic_model(make_config, setting: str) -> None:
    cfg = checkout_config(make_config(), **FRICTION[setting])
    assert build_spec(cfg).checkout.abandon_prob == pytest.approx(
        abandon_by_hand(cfg["checkout"]), rel=1e-12)


def test_friction_components_push_the_right_way(make_config) -> None:
    base = make_config()
    p = {s: build_spec(checkout_config(base, **kw)).checkout.abandon_prob
         for s, kw in FRICTION.items()}
    assert p["best_practice"] < p["two_steps"] < p["baseline"] < p["worst"]
    assert p["no_hidden_fees"] < p["no_forced_account"] < p["baseline"]


CHECKOUT_SIM = ["baseline", "no_hidden_fees", "no_forced_account", "two_steps", "best_practice"]


@pytest.mark.parametrize("setting", CHECKOUT_SIM)
def test_simulated_abandonment_rate(make_config, setting: str) -> None:
    """Abandonment share of checkout entries within 4 binomial SE of abandon_prob.

    Seed 300 + the setting's index; 20,000 customers all reach checkout.
    """
    seed = 300 + CHECKOUT_SIM.index(setting)
    spec = build_spec(checkout_config(make_config(), **FRICTION[setting]))
    result = simulate(spec, seed=seed, replication=0)
    c = result.customers
    entries = ~np.isnan(c["t_checkout"])
    assert entries.sum() > 19_000
    assert np.all(c["outcome"][entries] != 0), "a checkout is unresolved at the horizon"
    n_ab = result.abandonments["customer"].size
    assert_prob(n_ab, int(entries.sum()), spec.checkout.abandon_prob, setting)
    metrics = replication_metrics(result, spec)
    assert metrics["checkout.abandonment_rate"] == pytest.approx(n_ab / entries.sum())


@pytest.mark.parametrize(("recovery_prob", "seed"), [(0.10, 401), (0.45, 402)])
def test_cart_recovery(make_config, recovery_prob: float, seed: int) -> None:
    """Share of abandoned carts recovered within 4 binomial SE of recovery_prob; recovered
    carts buy exactly recovery_delay_days after abandoning, the others are lost then."""
    delay = 2.5
    cfg = checkout_config(make_config(), recovery_prob=recovery_prob, recovery_delay_days=delay)
    spec = build_spec(cfg)
    result = simulate(spec, seed=seed, replication=0)
    ab, c = result.abandonments, result.customers
    n_ab = ab["customer"].size
    assert n_ab > 10_000
    rec = ab["recovered"]
    assert_prob(int(rec.sum()), n_ab, spec.checkout.recovery_prob, "recovered share")
    assert replication_metrics(result, spec)["checkout.recovery_rate"] == pytest.approx(
        rec.mean())
    who = ab["customer"]
    np.testing.assert_allclose(c["t_purchase"][who[rec]], ab["time"][rec] + delay, rtol=1e-12)
    np.testing.assert_allclose(c["t_lost"][who[~rec]], ab["time"][~rec], rtol=1e-12)
    assert np.all(c["outcome"][who[~rec]] == 3)  # "abandoned"
    # the abandonment happens after the checkout dwell (fixed 0.01 day)
    np.testing.assert_allclose(ab["time"], c["t_checkout"][who] + 0.01, rtol=1e-9)


def test_no_reminder_no_recovery(make_config) -> None:
    spec = build_spec(checkout_config(make_config(), size=3000, reminder=False,
                                      recovery_prob=0.9))
    assert spec.checkout.recovery_prob == 0.0
    result = simulate(spec, seed=403, replication=0)
    assert result.abandonments["customer"].size > 1000
    assert not result.abandonments["recovered"].any()


# ------------------------------------------------------------------------------ levers
def odds(p: np.ndarray | float) -> np.ndarray | float:
    return p / (1 - p)


@settings(max_examples=300, deadline=None)
@given(p=st.floats(1e-6, 1 - 1e-6), m=st.floats(1e-3, 1e3))
def test_odds_shift_single_exit(p: float, m: float) -> None:
    """p' / (1 - p') = m p / (1 - p), i.e. p' = m p / (m p + 1 - p); compared in that form
    because 1 - p' loses digits when p' is near 1."""
    shifted = odds_shift(np.array([p]), np.array([True]), m)[0]
    assert 0 <= shifted <= 1
    assert shifted == pytest.approx(m * p / (m * p + 1 - p), rel=1e-12)
    if 1e-3 < shifted < 1 - 1e-3:
        assert odds(shifted) == pytest.approx(m * odds(p), rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    w=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    lost=st.floats(0.01, 1.0),
    m=st.floats(1e-2, 1e2),
)
def test_odds_shift_several_exits(w: list[float], lost: float, m: float) -> None:
    """Forward odds (all forward exits together) scale by m; the other exits and the lost
    share keep their ratios; forward exits keep theirs."""
    probs = np.array(w) / (sum(w) + lost)
    forward = np.array([True, False, True])
    shifted = odds_shift(probs, forward, m)
    lost_before, lost_after = 1 - probs.sum(), 1 - shifted.sum()
    assert np.all(shifted >= 0) and shifted.sum() <= 1 + 1e-12
    f_before, f_after = probs[forward].sum(), shifted[forward].sum()
    assert odds(f_after) == pytest.approx(m * odds(f_before), rel=1e-9)
    assert shifted[0] / shifted[2] == pytest.approx(probs[0] / probs[2], rel=1e-9)
    assert shifted[1] / lost_after == pytest.approx(probs[1] / lost_before, rel=1e-6)


def test_odds_shift_identity_and_no_lost() -> None:
    probs, forward = np.array([0.2, 0.3, 0.1]), np.array([False, True, True])
    np.testing.assert_allclose(odds_shift(probs, forward, 1.0), probs, rtol=1e-15)
    # with nothing lost and no other exit, forward exits keep probability 1
    np.testing.assert_allclose(odds_shift(np.array([1.0]), np.array([True]), 0.3), [1.0])


LEVER_P = {"look": 0.20, "checkout": 0.30}  # per visit; 0.5 lost
LEVER_QUALITY = {"plain": 1.0, "premium": 2.5}
LEVER_CONVERSION = {"a": 1.0, "b": 0.6}
LEVER_CONTENT = 1.5
LEVER_SEED = 505


def test_lever_multipliers_shift_forward_rate(make_config) -> None:
    """Per visit of a stage with lever "content": P(checkout) and P(stay) match the odds
    shift by content_quality * channel quality * segment conversion, in each of the four
    (channel, segment) cells; 4 binomial SE over the cell's visits (seed LEVER_SEED).

    Each visit's exit is an independent draw, so the per-visit frequencies are binomial.
    """
    stages = {"look": stage("exponential", 1.0, exits=LEVER_P, levers=("content",))}
    cfg = journey_config(
        make_config(), stages, size=40_000, horizon_days=300.0,
        segments={g: {"share": 0.5, "conversion": m} for g, m in LEVER_CONVERSION.items()},
        channels={name: {"organic_reach_per_day": 0.3, "quality": q}
                  for name, q in LEVER_QUALITY.items()},
        content_quality=LEVER_CONTENT,
    )
    spec = build_spec(cfg)
    result = simulate(spec, seed=LEVER_SEED, replication=0)
    c, ev = result.customers, result.events
    assert np.all(c["outcome"] != 0)
    look = spec.code("look")
    cust_visits = np.bincount(ev["customer"][ev["state"] == look], minlength=result.n_customers)
    stays = cust_visits - 1  # every visit after the first came from a "stay" exit
    bought = ~np.isnan(c["t_checkout"])
    for ci, (channel, quality) in enumerate(LEVER_QUALITY.items()):
        for gi, (segment, conversion) in enumerate(LEVER_CONVERSION.items()):
            sel = (c["channel"] == ci) & (c["segment"] == gi)
            m = LEVER_CONTENT * quality * conversion
            p_stay, p_buy = odds_shift(np.array([LEVER_P["look"], LEVER_P["checkout"]]),
                                       np.array([False, True]), m)
            assert odds(p_buy) != pytest.approx(odds(LEVER_P["checkout"]))  # a real shift
            n_visits = int(cust_visits[sel].sum())
            label = f"{channel}/{segment} (m={m:g})"
            assert_prob(int(bought[sel].sum()), n_visits, p_buy, f"{label} P(checkout)")
            assert_prob(int(stays[sel].sum()), n_visits, p_stay, f"{label} P(stay)")


SOCIAL_SEED = 515
SOCIAL_STRENGTH = 40.0
SOCIAL_P = 0.25


def test_social_proof_follows_live_advocate_share(make_config) -> None:
    """Social proof: each decision at a stage with lever "social_proof" takes the forward
    exit with p' = odds_shift(p, m), m = 1 + strength * A(t-) / M, where A(t-) counts the
    active advocates just before the decision (from the events: advocacy entries minus the
    churn of advocates). Every buyer advocates, so A(t) grows through the run and m goes
    from 1 to several; advocates who churn stop counting.

    Calibration check (seed SOCIAL_SEED): the number of forward decisions equals the sum of
    the per-decision p' within 4 SE, SE = sqrt(sum p'(1 - p')) (independent Bernoulli draws
    given the history). The same count is far outside the band of the static p, so the test
    can tell a live lever from none.
    """
    stages = {"consider": stage("exponential", 2.0, exits={"checkout": SOCIAL_P},
                                levers=("social_proof",))}
    cfg = journey_config(
        make_config(), stages, size=6_000, horizon_days=400.0,
        channels={"only": {"organic_reach_per_day": 0.01}},
        advocate_prob=1.0, social_proof=SOCIAL_STRENGTH,
    )
    spec = build_spec(cfg)
    result = simulate(spec, seed=SOCIAL_SEED, replication=0)
    ev = result.events
    is_advocacy = ev["state"] == spec.code("advocacy")
    advocacy_times = np.sort(ev["time"][is_advocacy])
    advocates = np.unique(ev["customer"][is_advocacy])
    left = (ev["state"] == spec.code("churned")) & np.isin(ev["customer"], advocates)
    leaving_times = np.sort(ev["time"][left])
    assert leaving_times.size > 50  # churn really takes advocates away
    # each customer visits once; the decision is the event right after the entry
    t, forward = decisions_at_stage(result, spec, "consider")
    active = (np.searchsorted(advocacy_times, t, side="left")
              - np.searchsorted(leaving_times, t, side="left"))
    share = active / spec.market_size
    p_live = odds_shift_many(SOCIAL_P, 1.0 + SOCIAL_STRENGTH * share)
    assert share.max() > 0.05  # the lever really moved: m reached 3 or more
    expected, se = p_live.sum(), math.sqrt((p_live * (1 - p_live)).sum())
    assert abs(forward.sum() - expected) <= K_SE * se, (forward.sum(), expected, se)
    static = SOCIAL_P * forward.size
    assert abs(forward.sum() - static) > 10 * se  # without the lever it would not fit


def decisions_at_stage(result: SimulationResult, spec: ModelSpec, stage: str
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each visit's decision (the event after entering ``stage``): its time, and whether it
    went forward (to the checkout)."""
    ev = result.events
    entry = np.flatnonzero(ev["state"] == spec.code(stage))
    order = np.lexsort((np.arange(ev["customer"].size), ev["customer"]))
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    after = position[entry] + 1
    decided = after < order.size
    decided[decided] &= ev["customer"][order[after[decided]]] == ev["customer"][entry[decided]]
    decision = order[after[decided]]
    return ev["time"][decision], ev["state"][decision] == spec.code("checkout")


def odds_shift_many(p: float, m: np.ndarray) -> np.ndarray:
    """p' with odds m p / (1 - p), vectorised over m (one forward exit, rest lost)."""
    return m * p / (1 - p + m * p)


# ------------------------------------------------------------------- market, awareness
AWARE_SEED = 606


def test_awareness_constant_reach_and_sources(make_config) -> None:
    """Constant organic reach h = h_a + h_b per day, no spend, no word of mouth: each person
    becomes aware at an Exp(h) time, so the number aware by day t is Binomial(M, 1 - e^{-ht})
    (4 SE); the source is channel a with probability h_a / h (4 SE). Seed AWARE_SEED."""
    m, h_a, h_b = 20_000, 0.005, 0.015
    stages = {"look": stage("exponential", 2.0, exits={"checkout": 0.3})}
    cfg = journey_config(make_config(), stages, size=m, horizon_days=100.0,
                         channels={"a": {"organic_reach_per_day": h_a},
                                   "b": {"organic_reach_per_day": h_b}})
    result = simulate(build_spec(cfg), seed=AWARE_SEED, replication=0)
    t_aware = result.customers["t_aware"]
    assert np.all(np.diff(t_aware) >= 0)  # ids are the awareness order
    h = h_a + h_b
    for t in (3.0, 10.0, 35.5, 60.0, 100.0):
        assert_prob(int(np.sum(t_aware <= t)), m, 1 - math.exp(-h * t), f"aware by day {t}")
    source = result.customers["channel"]
    assert np.all(source < 2)  # no word of mouth
    assert_prob(int(np.sum(source == 0)), source.size, h_a / h, "share from channel a")


def hill(s: np.ndarray | float, k_half: float, shape: float) -> np.ndarray | float:
    return s**shape / (s**shape + k_half**shape)


@pytest.mark.parametrize(("spend", "decay", "shape"), [(40.0, 0.0, 1.0), (30.0, 0.3, 1.5),
                                                       (250.0, 0.7, 0.8), (0.0, 0.5, 2.0)])
def test_reach_at_constant_spend_is_hill(spend: float, decay: float, shape: float) -> None:
    """Constant spend S: adstock S (normalised, running for ever), reach organic + max Hill."""
    ch = {"organic_reach_per_day": 0.001, "max_reach_per_day": 0.004,
          "half_saturation_spend_per_day": 80.0, "hill_shape": shape,
          "adstock_decay": decay, "spend_per_day": spend, "campaigns": [],
          "fixed_cost_per_day": 7.0}
    cost, reach = daily_spend_and_reach({"c": ch}, 30)
    expected = 0.001 + 0.004 * hill(spend, 80.0, shape)
    np.testing.assert_allclose(reach[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(cost[:, 0], spend + 7.0, rtol=1e-12)


PULSE = {"organic_reach_per_day": 0.002, "max_reach_per_day": 0.03,
         "half_saturation_spend_per_day": 60.0, "hill_shape": 1.3, "adstock_decay": 0.6,
         "spend_per_day": 20.0, "fixed_cost_per_day": 0.0,
         "campaigns": [{"start_day": 10, "end_day": 15, "spend_per_day": 150.0}]}


def pulse_by_hand(n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Adstock and reach of PULSE: always-on 20 plus a geometric pulse from the campaign.

    Adstock is linear in spend, so it is 20 plus the pulse's own adstock: during the
    campaign (days 10..14) 150 (1 - 0.6^(d - 9)), afterwards that level times 0.6^(d - 14).
    """
    lam, c = 0.6, 150.0
    pulse = np.zeros(n_days)
    for d in range(n_days):
        if 10 <= d <= 14:
            pulse[d] = c * (1 - lam ** (d - 9))
        elif d > 14:
            pulse[d] = c * (1 - lam**5) * lam ** (d - 14)
    adstock = 20.0 + pulse
    return adstock, 0.002 + 0.03 * hill(adstock, 60.0, 1.3)


def test_campaign_pulse_decays_geometrically() -> None:
    n_days = 60
    cost, reach = daily_spend_and_reach({"tv": PULSE}, n_days)
    _, expected = pulse_by_hand(n_days)
    np.testing.assert_allclose(reach[:, 0], expected, rtol=1e-12)
    spend = np.full(n_days, 20.0)
    spend[10:15] += 150.0
    np.testing.assert_allclose(cost[:, 0], spend)


def test_awareness_follows_time_varying_reach(make_config) -> None:
    """Reach piecewise constant per day (the PULSE channel): aware by day t is
    Binomial(M, 1 - exp(-H(t))), H the integral of the hand-computed reach (4 SE).
    Seed AWARE_SEED + 1."""
    m, horizon = 20_000, 60
    stages = {"look": stage("exponential", 2.0, exits={"checkout": 0.3})}
    cfg = journey_config(make_config(), stages, size=m, horizon_days=float(horizon),
                         channels={"tv": PULSE})
    spec = build_spec(cfg)
    _, reach = pulse_by_hand(horizon + 1)
    np.testing.assert_allclose(spec.reach_per_day[:, 0], reach, rtol=1e-12)
    result = simulate(spec, seed=AWARE_SEED + 1, replication=0)
    t_aware = result.customers["t_aware"]
    cum = np.r_[0.0, np.cumsum(reach)]
    for t in (5.0, 10.0, 11.5, 13.0, 15.0, 17.25, 25.0, 60.0):
        d = int(t)
        hazard = cum[d] + reach[d] * (t - d) if d < len(reach) else cum[-1]
        assert_prob(int(np.sum(t_aware <= t)), m, 1 - math.exp(-hazard), f"aware by day {t}")

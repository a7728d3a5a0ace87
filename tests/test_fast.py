"""Conformance of the fast engine (``run.engine=fast``) with the agent engine.

Same inputs, same outputs: the fast engine must agree with the agent engine (the readable
reference) on every feature, statistically, since the two draw different random numbers.
Where it approximates (population feedback read once per tick of ``run.tick_days``) the
approximation is checked against its own closed form.

1. Conformance per feature: both engines on the same composed config, replications
   compared metric by metric (Welch) and distribution by distribution (Kolmogorov-Smirnov,
   calibrated by permuting whole replications). Every feature under ``slow``; one config
   with every mechanism on at once in the default run.
2. Feedback and the tick: without feedback the tick changes nothing and awareness times
   equal the agent engine's; with word of mouth the adoption curve follows the Bass curve at
   tick 1 and, at any tick, the mean-field curve of a hazard held for the tick.
3. Oracles on the fast engine (REFERENCES.md): the agent engine's oracle tests of
   ``test_oracles.py`` and ``test_lifetime.py``, run on configs that select the fast engine
   (every ``simulate`` they make is checked to run it), and versions of their own where the
   fast engine's documented approximation changes the closed form (social proof and
   referrals read at the start of each tick).
4. The service desk: ``Desk`` (callbacks) against ``serve`` (processes), ticket for ticket,
   and Erlang C / Erlang A with ``Desk`` alone.
5. Determinism and common random numbers of the fast engine (``test_determinism.py``'s
   tests on a fast config), whatever the number of worker processes.
6. Invariants of ``test_invariants.py`` on random models run by the fast engine.
7. Discrepancies this suite found: regression tests for those fixed since, a strict
   ``xfail`` with its diagnosis for the one that remains (late tickets).

Statistics. Every test states its seed. Oracle comparisons allow ``K_SE`` = 4 standard
errors from the sample, as the agent engine's oracle tests do. The conformance comparisons
are many, so their critical values come from a family-wise false-alarm rate
``FAMILY_ALPHA`` split over every comparison of a family (Bonferroni): a difference of means
fails when |t| = |mean_fast - mean_agent| / sqrt(se_f^2 + se_a^2) exceeds the Student t
quantile 1 - alpha / 2 at the Welch-Satterthwaite degrees of freedom: 320 comparisons in the
slow family, alpha = 3.1e-5, critical |t| about 4.7 at 38 degrees of freedom (the normal z,
4.2, would understate the tail with 20 replications a side); 27 comparisons with 8
replications a side in the default family, critical |t| about 4.7 at 14 degrees of freedom.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import simpy
import test_determinism as det
import test_invariants as inv
import test_lifetime as lt
import test_oracles as orc
from hypothesis import given, settings
from scipy import stats

from sim.engine import SimulationResult, simulate
from sim.engine.desk import Desk, TicketLog, serve
from sim.engine.fast import FastModel
from sim.measure.experiment import run_experiment
from sim.measure.metrics import customer_values, replication_metrics
from sim.model.config import compose_config, to_container
from sim.model.spec import ModelSpec, build_spec

K_SE = 4.0  # standard errors allowed in an oracle comparison (as in test_oracles.py)
FAMILY_ALPHA = 0.01  # family-wise false-alarm rate of each family of conformance tests
MakeConfig = Callable[..., dict[str, Any]]


def fast(cfg: dict[str, Any], tick_days: float = 1.0) -> dict[str, Any]:
    """A copy of a plain config that selects the fast engine with the given tick."""
    cfg = copy.deepcopy(cfg)
    cfg["run"]["engine"] = "fast"
    cfg["run"]["tick_days"] = float(tick_days)
    return cfg


def simulate_fast_only(spec: ModelSpec, seed: int | None = None,
                       replication: int = 0) -> SimulationResult:
    """``simulate`` that refuses to run anything but the fast engine (guards the reuse of
    the agent engine's tests: a config that silently fell back to the agent would pass)."""
    assert spec.engine == "fast", f"expected the fast engine, the spec selects {spec.engine}"
    return simulate(spec, seed, replication)


# ========================================================================= 1. conformance
# A busier version of the baseline: most of the market becomes aware within the horizon and
# about a third of checkouts are abandoned (not 70 %), so each replication has several
# hundred buyers whose life after the first purchase is measured.
CONFORMANCE_BASE = ("market.size=8000", "run.horizon_days=240",
                    "channels.search.organic_reach_per_day=0.01", "checkout.base_logit=-2.0")
# Different seeds: both engines take the awareness thresholds from the same stream
# (Stream.AWARENESS), so with one seed the two samples would be dependent.
ENGINE_SEED = {"agent": 26_111, "fast": 26_112}
CONFORMANCE_REPS = 20  # replications per engine and feature (slow)
EVERYTHING_REPS = 8  # replications per engine of the all-features config (default run)

COMMON_METRICS = (
    "aware", "conversion_rate", "time_to_purchase.mean_days", "checkout.abandonment_rate",
    "purchases_per_customer", "repeat_purchase_rate", "monthly_churn", "revenue", "ltv.mean",
    "ltv.p50", "advocates", "referrals", "support.tickets")
DISTRIBUTIONS = ("time_to_purchase", "purchases", "ltv")  # per buyer, pooled
AWARE = ("awareness_time",)  # per aware customer, pooled
WAITS = ("ticket_wait",)  # per ticket, pooled


@dataclass(frozen=True)
class Feature:
    overrides: tuple[str, ...]
    metrics: tuple[str, ...] = ()  # compared besides COMMON_METRICS
    distributions: tuple[str, ...] = ()  # compared besides DISTRIBUTIONS


def funnel(*labels: str) -> tuple[str, ...]:
    return tuple(f"funnel.{label}.rate" for label in labels)


SIX = funnel("awareness", "consideration", "intent", "purchase", "retention", "advocacy")
FEATURES: dict[str, Feature] = {
    # the baseline journey preset (six stages)
    "six_stage": Feature((), SIX),
    # a campaign pulse carried over by adstock, on a saturating (Hill) channel
    "channels": Feature(
        ("channels.search.organic_reach_per_day=0.002", "channels.paid_ads.max_reach_per_day=0.03",
         "channels.paid_ads.half_saturation_spend_per_day=300",
         "channels.paid_ads.adstock_decay=0.7",
         "channels.paid_ads.campaigns=[{start_day:20,end_day:50,spend_per_day:1500}]"),
        ("acquisitions.paid_ads", "acquisitions.search", "acquisitions.word_of_mouth"), AWARE),
    # awareness driven by advocates (tick 1)
    "word_of_mouth": Feature(
        ("channels.search.organic_reach_per_day=0.001", "advocacy.wom_q_per_day=0.3",
         "advocacy.advocate_prob=0.7"),
        ("acquisitions.word_of_mouth", "acquisitions.search"), AWARE),
    # every lever: content, usability, strong social proof (tick 1), channel quality, segment
    "levers": Feature(
        ("journey.content_quality=1.6", "journey.site_usability=0.6", "journey.social_proof=40",
         "advocacy.advocate_prob=0.6", "channels.search.quality=2.5",
         "market.segments.premium.conversion=3.0"),
        (*funnel("consideration", "intent"), "acquisitions.search")),
    # prospects stay, step back and loop
    "steps_back": Feature(
        ("journey.stages.consideration.exits.consideration=0.4",
         "journey.stages.consideration.exits.intent=0.3",
         "journey.stages.consideration.exits.awareness=0.2",
         "journey.stages.intent.exits.checkout=0.5",
         "journey.stages.intent.exits.consideration=0.3",
         "+journey.stages.intent.exits.intent=0.1"),
        (*funnel("consideration", "intent"), "lost", "in_journey")),
    # a hard checkout with reminders that recover half the abandoned carts
    "recovery": Feature(
        ("checkout.base_logit=0.5", "checkout.recovery_prob=0.5",
         "checkout.recovery_delay_days=3"),
        ("checkout.recovery_rate", "checkout.recovered")),
    # frequent repeat buying (BG/NBD)
    "repeat": Feature(
        ("retention.repeat.r=2.0", "retention.repeat.alpha_days=30", "retention.repeat.a=2.0",
         "retention.repeat.b=8.0"),
        ("retention.3m", "retention.6m", "active_customers")),
    "subscription": Feature(("retention=subscription",),
                            ("retention.3m", "retention.6m", "active_customers")),
    "loyalty": Feature(("loyalty.enabled=true", "loyalty.enrol_prob=0.5"),
                       ("loyalty_members", "discounts", "costs.retention")),
    "messaging": Feature(
        ("retention.messaging.newsletter=true", "retention.messaging.recommendations=true",
         "retention.messaging.cross_sell=true", "retention.messaging.thank_you=true"),
        ("costs.retention", "npv")),
    # one agent, half the orders raise a 3-hour ticket: long queues, customers hang up
    "desk": Feature(
        ("support.issue_prob=0.5", "support.handling_mean_minutes=180",
         "support.patience_mean_minutes=240"),
        ("support.wait_mean_minutes", "support.wait_p90_minutes", "support.abandonment_rate",
         "support.utilisation", "support.unresolved_rate", "churned"), WAITS),
    # bad tickets make most customers leave at once
    "experience": Feature(
        ("support.issue_prob=0.5", "support.agents=3", "support.first_contact_resolution=0.3",
         "experience.ticket_unresolved=-1.5", "experience.leave_after_bad=0.9",
         "experience.churn_per_point=1.5"),
        ("churned", "support.unresolved_rate", "experience.churned", "experience.retention")),
    # a referral programme: referrals read per tick (tick 1)
    "referrals": Feature(
        ("advocacy.program=true", "advocacy.referral_rate_per_day=0.02",
         "advocacy.advocate_prob=0.5"),
        ("referral_acquisitions", "referral_share", "costs.retention"), AWARE),
    # the other journey presets
    "six_stage_decision": Feature(
        ("journey=six_stage_decision",),
        funnel("awareness", "consideration", "decision", "purchase", "retention", "advocacy")),
    "five_stage": Feature(
        ("journey=five_stage",),
        funnel("awareness", "consideration", "purchase", "retention", "advocacy")),
    "four_stage": Feature(
        ("journey=four_stage",),
        funnel("awareness", "consideration", "decision", "purchase", "loyalty")),
}
# every mechanism at once, moderately (the default run's conformance check)
EVERYTHING = Feature(
    ("channels.paid_ads.adstock_decay=0.6", "channels.paid_ads.max_reach_per_day=0.01",
     "channels.paid_ads.campaigns=[{start_day:30,end_day:60,spend_per_day:800}]",
     "advocacy.wom_q_per_day=0.1", "advocacy.advocate_prob=0.5", "journey.content_quality=1.3",
     "journey.site_usability=0.8", "journey.social_proof=10", "channels.search.quality=1.5",
     "market.segments.premium.conversion=2.0", "checkout.recovery_prob=0.4",
     "checkout.recovery_delay_days=2", "loyalty.enabled=true", "loyalty.enrol_prob=0.5",
     "retention.messaging.newsletter=true", "retention.messaging.thank_you=true",
     "support.issue_prob=0.3", "support.handling_mean_minutes=90",
     "support.patience_mean_minutes=120", "experience.leave_after_bad=0.6",
     "advocacy.program=true", "advocacy.referral_rate_per_day=0.01"),
    ("checkout.recovery_rate", "loyalty_members", "costs.retention", "churned",
     "support.wait_mean_minutes", "support.abandonment_rate", "referral_acquisitions",
     "acquisitions.paid_ads", "acquisitions.word_of_mouth"),
    AWARE + WAITS)


def family_size(features: list[Feature]) -> int:
    return sum(len(COMMON_METRICS) + len(f.metrics) + len(DISTRIBUTIONS) + len(f.distributions)
               for f in features)


SLOW_FAMILY = family_size(list(FEATURES.values()))  # 320 comparisons
EVERYTHING_FAMILY = family_size([EVERYTHING])


@functools.cache
def composed(overrides: tuple[str, ...]) -> dict[str, Any]:
    return to_container(compose_config([*CONFORMANCE_BASE, *overrides]))


def distributions_of(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    c, tk = result.customers, result.tickets
    bought = ~np.isnan(c["t_purchase"])
    served = tk["outcome"] < 2
    return {"time_to_purchase": (c["t_purchase"] - c["t_aware"])[bought],
            "purchases": c["purchases"][bought].astype(float),
            "ltv": customer_values(result, spec)["ltv"][bought],
            "awareness_time": c["t_aware"],
            "ticket_wait": np.where(served, tk["start"], tk["end"]) - tk["arrival"]}


def replications(feature: Feature, engine: str, n_reps: int
                 ) -> tuple[list[dict[str, float]], list[dict[str, np.ndarray]]]:
    """Metrics and pooled-distribution samples of replications 0..n_reps-1 of one engine."""
    cfg = copy.deepcopy(composed(feature.overrides))
    cfg["run"]["engine"] = engine
    spec = build_spec(cfg)
    metrics, samples = [], []
    for rep in range(n_reps):
        result = simulate(spec, ENGINE_SEED[engine], rep)
        metrics.append(replication_metrics(result, spec))
        samples.append(distributions_of(result, spec))
    return metrics, samples


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(b - a) difference of means, its standard error and Welch-Satterthwaite df."""
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se else math.inf
    return float(b.mean() - a.mean()), se, df


KS_GRID = 512  # pooled quantiles at which the permutation statistic compares the ECDFs


def replication_ks(samples_a: list[np.ndarray], samples_b: list[np.ndarray], alpha: float,
                   seed: int) -> tuple[float, float, float]:
    """Two-sample Kolmogorov-Smirnov test of pooled replications: (scipy's D, scipy's
    asymptotic p-value, p-value from permuting whole replications).

    Customers of one replication are not independent (they share word of mouth, social
    proof and the desk's queue), so scipy's p-value, which assumes independent draws, is too
    small for large pooled samples: splitting 30 agent replications in two, it fell below
    0.05 in 13 of 96 comparisons of awareness times. Whole replications are independent and,
    under the hypothesis that both engines draw from one law, exchangeable; so the p-value
    comes from ``scipy.stats.permutation_test`` over replication labels, with the KS
    distance evaluated at ``KS_GRID`` pooled quantiles. A first pass of 1,000 permutations
    settles the clear cases (p > 0.01); otherwise a second, independent pass of at least
    20 / alpha permutations decides, so a rejection needs the second pass's p < alpha and
    the test's level stays at most ``alpha``.
    """
    pooled_a, pooled_b = np.concatenate(samples_a), np.concatenate(samples_b)
    ks = stats.ks_2samp(pooled_a, pooled_b)
    samples = [np.sort(s) for s in (*samples_a, *samples_b)]
    grid = np.unique(np.quantile(np.concatenate(samples), np.linspace(0, 1, KS_GRID)))
    counts = np.array([np.searchsorted(s, grid, side="right") for s in samples], float)
    sizes = np.array([s.size for s in samples], float)
    n_all = len(samples)

    def distance(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        member = np.zeros((*x.shape[:-1], n_all))
        np.put_along_axis(member, x.astype(np.int64), 1.0, axis=-1)
        cdf_a = (member @ counts) / (member @ sizes)[..., None]
        cdf_b = ((1 - member) @ counts) / ((1 - member) @ sizes)[..., None]
        return np.abs(cdf_a - cdf_b).max(axis=-1)

    data = (np.arange(len(samples_a)), np.arange(len(samples_a), n_all))
    rng = np.random.default_rng(seed)
    p = 1.0
    for n_resamples in (999, max(9_999, math.ceil(20 / alpha))):
        p = stats.permutation_test(data, distance, vectorized=True, n_resamples=n_resamples,
                                   alternative="greater", rng=rng, batch=2000).pvalue
        if p > 0.01:
            break
    return float(ks.statistic), float(ks.pvalue), float(p)


def conformance(feature: Feature, n_reps: int, family: int) -> tuple[list[str], list[str]]:
    """Run both engines, compare; return (table of every comparison, failures)."""
    alpha = FAMILY_ALPHA / family
    (m_a, s_a), (m_f, s_f) = (replications(feature, e, n_reps) for e in ("agent", "fast"))
    table, failures = [], []
    for name in (*COMMON_METRICS, *feature.metrics):
        a = np.array([m[name] for m in m_a])
        b = np.array([m[name] for m in m_f])
        assert np.isfinite(a).all() and np.isfinite(b).all(), (name, a, b)
        diff, se, df = welch(a, b)
        crit = float(stats.t.ppf(1 - alpha / 2, df)) if se else 0.0
        t = diff / se if se else (0.0 if diff == 0 else math.inf)
        row = (f"{name:32s} agent {a.mean():12.6g} +- {a.std(ddof=1) / math.sqrt(a.size):9.3g}"
               f"  fast {b.mean():12.6g} +- {b.std(ddof=1) / math.sqrt(b.size):9.3g}"
               f"  t {t:6.2f} (crit {crit:.2f})")
        table.append(row)
        if abs(t) > crit:
            failures.append(row)
    for j, name in enumerate((*DISTRIBUTIONS, *feature.distributions)):
        xa, xb = [s[name] for s in s_a], [s[name] for s in s_f]
        d, p_iid, p = replication_ks(xa, xb, alpha, seed=ENGINE_SEED["fast"] + j)
        row = (f"KS {name:29s} n {sum(x.size for x in xa)} / {sum(x.size for x in xb)}"
               f"  D {d:.4f}  p {p:.3g} (alpha {alpha:.2g}; iid p {p_iid:.3g})")
        table.append(row)
        if p < alpha:
            failures.append(row)
    return table, failures


@functools.cache
def small_run(engine: str) -> tuple[ModelSpec, SimulationResult]:
    cfg = copy.deepcopy(composed(("market.size=500", "run.horizon_days=60")))
    cfg["run"]["engine"] = engine
    spec = build_spec(cfg)
    return spec, simulate(spec, 1, 0)


def test_conformance_families_are_counted() -> None:
    """The Bonferroni families count every comparison, and every metric named exists (the
    funnel's labels in the journey preset the feature composes)."""
    assert SLOW_FAMILY == 320 and EVERYTHING_FAMILY == 27
    keys = replication_metrics(*reversed(small_run("agent")))
    for feature in [*FEATURES.values(), EVERYTHING]:
        preset = tuple(o for o in feature.overrides if o.startswith("journey="))
        labels = composed(preset)["journey"]["report"]
        for name in (*COMMON_METRICS, *feature.metrics):
            if name.startswith("funnel."):
                assert name.split(".")[1] in labels, name
            else:
                assert name in keys, name


def test_conformance_everything_on() -> None:
    """Every mechanism at once (EVERYTHING): EVERYTHING_REPS replications per engine (seeds
    ENGINE_SEED), every metric and distribution agrees within the family's critical values
    (FAMILY_ALPHA over EVERYTHING_FAMILY comparisons)."""
    table, failures = conformance(EVERYTHING, EVERYTHING_REPS, EVERYTHING_FAMILY)
    assert not failures, "\n".join(["disagree:", *failures, "all:", *table])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FEATURES))
def test_conformance(name: str) -> None:
    """One feature: CONFORMANCE_REPS replications per engine (seeds ENGINE_SEED); every
    headline metric (Welch) and distribution (replication-permutation KS) agrees within the
    critical values of the slow family (FAMILY_ALPHA over SLOW_FAMILY comparisons)."""
    table, failures = conformance(FEATURES[name], CONFORMANCE_REPS, SLOW_FAMILY)
    assert not failures, "\n".join(["disagree:", *failures, "all:", *table])


# ================================================================ 2. feedback and the tick
def quiet_feedback(cfg: dict[str, Any], desk: bool = True) -> dict[str, Any]:
    """No word of mouth, referrals or social proof (and, with ``desk=False``, no tickets):
    nothing one customer does changes another's numbers except through the desk."""
    cfg = copy.deepcopy(cfg)
    cfg["advocacy"] |= {"wom_q_per_day": 0.0, "referral_rate_per_day": 0.0}
    cfg["journey"]["social_proof"] = 0.0
    if not desk:
        cfg["support"]["issue_prob"] = 0.0
    return cfg


AWARE_SEED = 6061


def test_awareness_times_equal_the_agent_engines_without_feedback() -> None:
    """Without word of mouth and referrals the awareness hazard is the channels' reach alone;
    both engines turn the same thresholds (one stream) into exact times, so with one seed
    every awareness time agrees to rounding (seed AWARE_SEED), whatever the tick."""
    cfg = quiet_feedback(composed(("channels.paid_ads.campaigns=[{start_day:20,end_day:50,"
                                   "spend_per_day:900}]",)))
    agent = copy.deepcopy(cfg)
    agent["run"]["engine"] = "agent"
    a = simulate(build_spec(agent), AWARE_SEED, 0)
    for tick in (1.0, 7.0):
        f = simulate(build_spec(fast(cfg, tick)), AWARE_SEED, 0)
        assert f.n_customers == a.n_customers > 5000
        np.testing.assert_allclose(f.customers["t_aware"], a.customers["t_aware"],
                                   rtol=1e-12, atol=1e-9)


def sorted_rows(table: dict[str, np.ndarray], *keys: str) -> dict[str, np.ndarray]:
    order = np.lexsort(tuple(table[k] for k in reversed(keys)))
    return {k: v[order] for k, v in table.items()}


def test_tick_changes_nothing_without_feedback() -> None:
    """The tick only sets how often feedback is read: without feedback and without the desk,
    ticks of 0.25, 1 and 30 days give the same customers, paths, orders and carts (seed
    AWARE_SEED + 1; rows compared sorted, times to rounding: the awareness hazard is summed
    over differently cut intervals)."""
    cfg = quiet_feedback(composed(()), desk=False)
    runs = {tick: simulate(build_spec(fast(cfg, tick)), AWARE_SEED + 1, 0)
            for tick in (0.25, 1.0, 30.0)}
    ref = runs[1.0]
    assert ref.purchases["customer"].size > 500
    for tick, r in runs.items():
        for name, keys in (("customers", ("id",)), ("events", ("customer", "time", "state")),
                           ("purchases", ("customer", "time")),
                           ("abandonments", ("customer", "time"))):
            a, b = sorted_rows(getattr(ref, name), *keys), sorted_rows(getattr(r, name), *keys)
            assert a.keys() == b.keys()
            for col in a:
                if a[col].dtype.kind == "f":
                    np.testing.assert_allclose(b[col], a[col], rtol=1e-12, atol=1e-9,
                                               err_msg=f"tick {tick}: {name}.{col}")
                else:
                    np.testing.assert_array_equal(b[col], a[col],
                                                  err_msg=f"tick {tick}: {name}.{col}")


def bass_adoption(t: float, p: float, q: float) -> float:
    e = math.exp(-(p + q) * t)
    return (1 - e) / (1 + q / p * e)


def held_hazard_adoption(t: float, p: float, q: float, tick: float) -> float:
    """Mean-field adoption share when the imitation hazard is read once per tick.

    Within tick k the hazard of an unaware person is p + q F(k tau), held for the tick, so
    F((k + 1) tau) = 1 - (1 - F(k tau)) exp(-(p + q F(k tau)) tau) exactly; as tau -> 0
    this is the Bass curve (the hazard p + q F(t) read continuously).
    """
    f, start = 0.0, 0.0
    while start + tick <= t:
        f = 1.0 - (1.0 - f) * math.exp(-(p + q * f) * tick)
        start += tick
    return 1.0 - (1.0 - f) * math.exp(-(p + q * f) * (t - start))


def bass_config(make_config: MakeConfig, p: float, q: float, horizon_days: float,
                tick_days: float) -> dict[str, Any]:
    """test_oracles.bass_spec's market (every step certain and instant, every buyer an
    advocate for ever) with per-day p and q, on the fast engine."""
    stages = {"aware": orc.stage("fixed", 0.0, exits={"checkout": 1.0})}
    return orc.journey_config(
        make_config("run.engine=fast", f"run.tick_days={tick_days}"), stages, size=orc.BASS_M,
        horizon_days=horizon_days, channels={"organic": {"organic_reach_per_day": p}},
        advocate_prob=1.0, wom_q_per_day=q, churn=False)


def test_bass_tick_one_is_within_the_references_bound() -> None:
    """At the reference speed (p = 0.03, q = 0.38 per year) a tick of one day moves the
    mean-field curve by less than 0.001, far inside the single-run bound 0.05 and the
    tolerance of 400 runs, 0.0023 (REFERENCES.md)."""
    p, q = orc.BASS_P / 365, orc.BASS_Q / 365
    for years in orc.BASS_YEARS:
        t = years * 365
        assert bass_adoption(t, p, q) == pytest.approx(orc.bass_f(years), rel=1e-12)
        assert abs(held_hazard_adoption(t, p, q, 1.0) - bass_adoption(t, p, q)) < 1e-3
        assert held_hazard_adoption(t, p, q, 0.1) == pytest.approx(bass_adoption(t, p, q),
                                                                   abs=1e-4)


def test_bass_single_run_on_fast(make_config: MakeConfig) -> None:
    """test_oracles.test_bass_single_run on the fast engine at tick 1 (seed BASS_SEED)."""
    spec = build_spec(bass_config(make_config, orc.BASS_P / 365, orc.BASS_Q / 365,
                                  10 * 365.0, 1.0))
    assert spec.engine == "fast" and spec.tick_days == 1.0
    orc.test_bass_single_run(spec)


BASS_RUNS = 20  # 1.5 to 2 s each at tick 1 over ten years


@pytest.mark.slow
def test_bass_mean_of_runs_on_fast(make_config: MakeConfig) -> None:
    """Mean of BASS_RUNS fast runs at tick 1 (seed BASS_SEED + 7, replications 0..R-1)
    within 4 * 0.0115 / sqrt(R) of the Bass curve (REFERENCES.md)."""
    spec = build_spec(bass_config(make_config, orc.BASS_P / 365, orc.BASS_Q / 365,
                                  10 * 365.0, 1.0))
    runs = (simulate(spec, orc.BASS_SEED + 7, r) for r in range(BASS_RUNS))
    shares = np.array([[orc.adoption_share(run, t) for t in orc.BASS_YEARS] for run in runs])
    tol = K_SE * 0.0115 / math.sqrt(BASS_RUNS)
    for j, t in enumerate(orc.BASS_YEARS):
        assert abs(shares[:, j].mean() - orc.bass_f(t)) <= tol, (t, shares[:, j].mean())


# The reference Bass curve 37.7 times faster (p = 0.03, q = 0.38 per year as per day x 6.19 /
# 60): the peak at day 60, where a tick of up to 30 days is a large step.
KNOB_P, KNOB_Q = 0.0031, 0.0392  # per day
KNOB_HORIZON = 120.0
KNOB_DAYS = (20.0, 40.0, 60.0, 80.0, 100.0)
KNOB_TICKS = (1.0, 10.0, 30.0)
KNOB_RUNS = 16
KNOB_SEED = 1970


def test_tick_knob_holds_word_of_mouth_for_a_tick(make_config: MakeConfig) -> None:
    """Strong word of mouth at ticks of 1, 10 and 30 days (seed KNOB_SEED, KNOB_RUNS
    replications each): the adoption curve is the held-hazard curve of its tick (mean of the
    runs within 4 SE, SE = SD / sqrt(R)), so it lags the Bass curve more the longer the tick.
    The lag is shown run by run too: replication r of every tick shares the awareness
    thresholds, and the paired differences between ticks are positive by more than 4 SE.
    At tick 1 the curve is within 0.012 of the Bass curve even at this speed."""
    shares = {}
    for tick in KNOB_TICKS:
        spec = build_spec(bass_config(make_config, KNOB_P, KNOB_Q, KNOB_HORIZON, tick))
        runs = (simulate(spec, KNOB_SEED, r) for r in range(KNOB_RUNS))
        shares[tick] = np.array([[orc.adoption_share(run, t / 365) for t in KNOB_DAYS]
                                 for run in runs])
        for j, t in enumerate(KNOB_DAYS):
            x = shares[tick][:, j]
            lt.assert_mean(x, held_hazard_adoption(t, KNOB_P, KNOB_Q, tick),
                           f"tick {tick}, day {t}")
    for short, long in itertools.pairwise(KNOB_TICKS):
        lag = shares[short] - shares[long]
        se = lag.std(ddof=1, axis=0) / math.sqrt(KNOB_RUNS)
        assert np.all(lag.mean(axis=0) > K_SE * se), (short, long, lag.mean(axis=0), se)
    for t in KNOB_DAYS:
        bass = bass_adoption(t, KNOB_P, KNOB_Q)
        f = [held_hazard_adoption(t, KNOB_P, KNOB_Q, tick) for tick in KNOB_TICKS]
        assert bass > f[0] > f[1] > f[2]
        assert bass - f[0] < 0.012


# ====================================================== 3. oracles on the fast engine
@pytest.fixture
def only_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reused test modules' ``simulate`` checks that it runs the fast engine."""
    for module in (orc, lt, det, inv):
        monkeypatch.setattr(module, "simulate", simulate_fast_only)


@pytest.fixture
def fast_config(make_config: MakeConfig, only_fast: None) -> MakeConfig:
    """``make_config`` selecting the fast engine (tick 1): the agent engine's oracle tests
    that take ``make_config`` run unchanged on it."""

    def make(*overrides: str) -> dict[str, Any]:
        return make_config("run.engine=fast", *overrides)

    return make


@pytest.mark.parametrize("setting", orc.CHECKOUT_SIM)
def test_fast_checkout_abandonment(fast_config: MakeConfig, setting: str) -> None:
    """Abandonment share within 4 binomial SE of the logistic model (seed 300 + index)."""
    orc.test_simulated_abandonment_rate(fast_config, setting)


@pytest.mark.parametrize(("recovery_prob", "seed"), [(0.10, 401), (0.45, 402)])
def test_fast_cart_recovery(fast_config: MakeConfig, recovery_prob: float, seed: int) -> None:
    orc.test_cart_recovery(fast_config, recovery_prob, seed)


def test_fast_no_reminder_no_recovery(fast_config: MakeConfig) -> None:
    orc.test_no_reminder_no_recovery(fast_config)


def test_fast_lever_multipliers(fast_config: MakeConfig) -> None:
    """Content x channel quality x segment odds multipliers, per visit (seed LEVER_SEED)."""
    orc.test_lever_multipliers_shift_forward_rate(fast_config)


def test_fast_awareness_constant_reach(fast_config: MakeConfig) -> None:
    orc.test_awareness_constant_reach_and_sources(fast_config)


def test_fast_awareness_time_varying_reach(fast_config: MakeConfig) -> None:
    orc.test_awareness_follows_time_varying_reach(fast_config)


@pytest.fixture(scope="module")
def fast_reference_chain() -> tuple[dict[str, np.ndarray], ModelSpec]:
    """The REFERENCES.md funnel of test_oracles.reference_chain on the fast engine (tick 1,
    seed REF_SEED + 1)."""
    stages = orc.chain_config(orc.REF_Q, orc.REF_R, orc.REF_NAMES,
                              [("exponential", m, None) for m in orc.REF_MEANS])
    cfg = orc.journey_config(orc.plain_config(), stages, size=orc.REF_SIZE, horizon_days=400.0,
                             channels={"organic": {"organic_reach_per_day": 0.5}})
    spec = build_spec(fast(cfg))
    result = simulate_fast_only(spec, seed=orc.REF_SEED + 1, replication=0)
    assert result.n_customers == orc.REF_SIZE
    return orc.absorbed_paths(result, spec), spec


def test_fast_reference_chain(fast_reference_chain) -> None:
    """P(purchase) = 63/1010, visits, E and Var of steps, times to absorption and to
    purchase given purchase (absorbing Markov chain)."""
    orc.test_reference_chain_spec_is_the_table(fast_reference_chain)
    orc.test_reference_chain_purchase_probability(fast_reference_chain)
    orc.test_reference_chain_visits_and_steps(fast_reference_chain)
    orc.test_reference_chain_times(fast_reference_chain)


@pytest.fixture(scope="module")
def fast_own_chain() -> tuple[dict[str, np.ndarray], ModelSpec]:
    """test_oracles.own_chain (steps back, a sticky stage, gamma / lognormal / weibull
    dwells, two segments) on the fast engine, seed OWN_SEED + 1. Nothing feeds back, so a
    tick of 30 days gives the same paths as 1 (test_tick_changes_nothing_without_feedback)
    in a twentieth of the time."""
    stages = orc.chain_config(orc.OWN_Q, orc.OWN_R, orc.OWN_NAMES, orc.OWN_DWELLS)
    segments = {name: {"share": 0.5, "conversion": m} for name, m in orc.OWN_SEGMENTS.items()}
    cfg = orc.journey_config(orc.plain_config(), stages, size=40_000, horizon_days=1500.0,
                             segments=segments,
                             channels={"organic": {"organic_reach_per_day": 0.5}})
    spec = build_spec(fast(cfg, tick_days=30.0))
    result = simulate_fast_only(spec, seed=orc.OWN_SEED + 1, replication=0)
    return orc.absorbed_paths(result, spec), spec


@pytest.mark.parametrize("segment", list(orc.OWN_SEGMENTS))
def test_fast_own_chain_per_segment(fast_own_chain, segment: str) -> None:
    orc.test_own_chain_per_segment(fast_own_chain, segment)


SOCIAL_SEED = 5152


@pytest.mark.parametrize("tick_days", [1.0, 30.0])
def test_fast_social_proof_read_per_tick(make_config: MakeConfig, tick_days: float) -> None:
    """Social proof in the fast engine: a decision at time t in the tick starting at t0
    takes the forward exit with p' = odds_shift(p, 1 + strength * A(t0) / M), A(t0) the
    advocates active at the tick's start (test_oracles' live version reads A(t-)).

    test_oracles.test_social_proof_follows_live_advocate_share's market (seed SOCIAL_SEED),
    without tickets: then an advocate's churn takes effect in its own tick. Calibration:
    forward decisions = sum p' within 4 SE, SE = sqrt(sum p' (1 - p')). At a 30-day tick
    the live p' misses by more than 4 SE (by 12 with this seed): the test sees the
    difference between reading A at the tick's start and reading it live.
    """
    stages = {"consider": orc.stage("exponential", 2.0, exits={"checkout": orc.SOCIAL_P},
                                    levers=("social_proof",))}
    cfg = orc.journey_config(
        make_config("run.engine=fast", f"run.tick_days={tick_days}"), stages, size=6_000,
        horizon_days=400.0, channels={"only": {"organic_reach_per_day": 0.01}},
        advocate_prob=1.0, social_proof=orc.SOCIAL_STRENGTH)
    cfg["support"]["issue_prob"] = 0.0
    spec = build_spec(cfg)
    result = simulate_fast_only(spec, SOCIAL_SEED, 0)
    ev, c = result.events, result.customers
    joined = np.sort(ev["time"][ev["state"] == spec.code("advocacy")])
    left = np.sort(c["t_churned"][c["advocate"] & ~np.isnan(c["t_churned"])])
    assert left.size > 50
    t, forward = orc.decisions_at_stage(result, spec, "consider")
    t0 = np.floor(t / tick_days) * tick_days

    def active(at: np.ndarray, side: str) -> np.ndarray:
        return np.searchsorted(joined, at, side=side) - np.searchsorted(left, at, side=side)

    p_tick = orc.odds_shift_many(orc.SOCIAL_P, 1.0 + orc.SOCIAL_STRENGTH
                                 * active(t0, "left") / spec.market_size)
    assert p_tick.max() > 0.5  # the lever really moved
    expected, se = p_tick.sum(), math.sqrt((p_tick * (1 - p_tick)).sum())
    assert abs(forward.sum() - expected) <= K_SE * se, (forward.sum(), expected, se)
    if tick_days >= 30:
        p_live = orc.odds_shift_many(orc.SOCIAL_P, 1.0 + orc.SOCIAL_STRENGTH
                                     * active(t, "left") / spec.market_size)
        assert abs(forward.sum() - p_live.sum()) > K_SE * se


# ------------------------------------------------------------- life after the purchase
# test_lifetime's cached runs themselves (the fixture below swaps them for the fast ones)
LIFETIME_RUNS = {name: getattr(lt, name) for name in ("bgnbd_run", "sbg_run", "referral_run")}


@functools.cache
def fast_lifetime_run(runner: str, tick_days: float, *args: Any
                      ) -> tuple[ModelSpec, SimulationResult]:
    """One of test_lifetime's cached runs (``bgnbd_run``, ``sbg_run``, ``referral_run``),
    rebuilt on the fast engine: same market, same seed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lt, "base_config", lambda: fast(lt._base(), tick_days))
        mp.setattr(lt, "simulate", simulate_fast_only)
        return LIFETIME_RUNS[runner].__wrapped__(*args)


@pytest.fixture
def lifetime_on_fast(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Switch test_lifetime to the fast engine for one test, at a given tick: its base config
    selects the fast engine, its cached runs are the fast ones, and every ``simulate`` it
    makes is checked to run the fast engine."""

    def use(tick_days: float) -> None:
        monkeypatch.setattr(lt, "base_config", lambda: fast(lt._base(), tick_days))
        monkeypatch.setattr(lt, "simulate", simulate_fast_only)
        for runner in LIFETIME_RUNS:
            monkeypatch.setattr(lt, runner, functools.partial(fast_lifetime_run, runner,
                                                              tick_days))

    return use


# Runs without feedback and without the desk use 30-day ticks: the tick then changes nothing
# (test_tick_changes_nothing_without_feedback) and a run costs a thirtieth of the days.
QUIET_TICK = 30.0


@pytest.mark.parametrize("name", list(lt.BGNBD))
def test_fast_bgnbd(lifetime_on_fast, name: str) -> None:
    """BG/NBD: E[X(t)], P(X(t) = 0) and calibrated P(alive) (seeds in test_lifetime.BGNBD)."""
    lifetime_on_fast(QUIET_TICK)
    lt.test_bgnbd_repeat_counts(name)
    lt.test_bgnbd_p_alive_calibrated(name)


@pytest.mark.parametrize("name", list(lt.SBG))
def test_fast_subscription(lifetime_on_fast, name: str) -> None:
    """Shifted-beta-geometric survival, churn at renewals, renewals on schedule (exact)."""
    lifetime_on_fast(QUIET_TICK)
    lt.test_subscription_renewals_on_schedule(name)
    lt.test_subscription_survival_and_churn(name)


@pytest.mark.parametrize("name", list(lt.LTV_CASES))
def test_fast_ltv_subscription(lifetime_on_fast, name: str) -> None:
    """Mean LTV vs the Gupta & Lehmann closed form (350 for constant retention 0.8)."""
    lifetime_on_fast(QUIET_TICK)
    lt.test_ltv_subscription(name)


def test_fast_loyalty_and_messaging(lifetime_on_fast) -> None:
    """Purchase-rate multipliers of segments, messaging and loyalty; the loyalty drop-out
    multiplier; member discounts (seeds LOYALTY_SEED, LOYALTY_SEED + 1)."""
    lifetime_on_fast(QUIET_TICK)
    lt.test_loyalty_messaging_segment_rate_multipliers()
    lt.test_loyalty_dropout_multiplier()


def test_fast_bad_experience(lifetime_on_fast) -> None:
    """Leaving after a bad ticket: certain leaving empties the desk's queue exactly, and
    leave_after_bad = 0.33 is the share who leave (seeds EXPERIENCE_SEED, + 1); tick 1."""
    lifetime_on_fast(1.0)
    lt.test_bad_ticket_with_certain_leaving_churns_everyone()
    lt.test_leave_after_bad_share()


def test_fast_ticket_rates(lifetime_on_fast) -> None:
    """test_lifetime.test_engine_ticket_rates's market (seed TICKET_SEED, tick 1): tickets
    per purchase = issue_prob and resolved share of served tickets = first-contact
    resolution, both within 4 binomial SE. A ticket arrives at its order's time, except a
    late one (see test_fast_tickets_arrive_with_their_order), which arrives at the first tick
    boundary after its order; either way it is counted with its order."""
    lifetime_on_fast(1.0)
    issue_prob, fcr = 0.3, 0.7
    cfg = lt.life_config(8_000, 200.0)
    cfg["retention"]["repeat"] = {"r": 2.0, "alpha_days": 40.0, "a": 1.5, "b": 6.0}
    cfg["support"] |= {"issue_prob": issue_prob, "agents": 40, "handling_kind": "gamma",
                       "handling_mean_minutes": 12.0, "handling_cv": 0.8,
                       "patience_mean_minutes": 30.0, "first_contact_resolution": fcr}
    spec = build_spec(cfg)
    assert spec.engine == "fast"
    model = FastModel(spec, lt.TICKET_SEED, 0)
    result = model.run()
    p, tk = result.purchases, result.tickets
    cutoff = spec.horizon_days - 1.0
    n_purchases = int((p["time"] < cutoff).sum())
    assert n_purchases > 30_000
    late = check_ticket_arrivals(spec, result)
    assert late.sum() == model.late_tickets
    lt.assert_prob(int((tk["arrival"] < cutoff).sum()), n_purchases, issue_prob,
                   "tickets per purchase")
    served = tk["outcome"] < 2
    lt.assert_prob(int((tk["outcome"] == 0).sum()), int(served.sum()), fcr,
                   "first-contact resolution among served tickets")


def check_ticket_arrivals(spec: ModelSpec, result: SimulationResult) -> np.ndarray:
    """Every ticket arrives at the time of an order of its customer, or (late) at a tick
    boundary less than one tick after one; returns which tickets are late."""
    p, tk = result.purchases, result.tickets
    orders = set(zip(p["customer"].tolist(), p["time"].tolist(), strict=True))
    late = np.array([key not in orders for key in zip(tk["customer"].tolist(),
                                                      tk["arrival"].tolist(), strict=True)],
                    dtype=bool)
    tick = spec.tick_days
    for k, arrival in zip(tk["customer"][late].tolist(), tk["arrival"][late].tolist(),
                          strict=True):
        assert math.isclose(arrival / tick, round(arrival / tick), abs_tol=1e-9), arrival
        own = p["time"][p["customer"] == k]
        assert np.any((own < arrival) & (own > arrival - tick)), (k, arrival, own)
    return late


REFERRAL_TICK = 1.0


def tick_exposure(spec: ModelSpec, result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """Advocates and their referral exposure in the fast engine, in days: referrals of the
    tick [t0, t0 + tau) go to the advocates active at t0, so an advocate who joins at t_a
    refers from the next tick start to the end of the tick in which it churns (or the
    horizon). Exact without the desk (an advocate's churn then takes effect in its own
    tick)."""
    c, tau, h = result.customers, spec.tick_days, spec.horizon_days
    advocates = np.flatnonzero(c["advocate"])

    def next_tick(t: np.ndarray) -> np.ndarray:
        return (np.floor(t / tau) + 1.0) * tau

    end = np.where(np.isnan(c["t_churned"]), h, np.minimum(next_tick(c["t_churned"]), h))
    start = np.minimum(next_tick(c["t_advocacy"]), h)
    return advocates, np.maximum(end - start, 0.0)[advocates]


def test_fast_referrals_per_advocate_tick(lifetime_on_fast) -> None:
    """test_lifetime's referral market (seed REFERRAL_SEED, tick 1, no desk): per segment,
    referrals over tick exposure (``tick_exposure``) = referral_rate x programme multiplier
    x segment referral (Poisson SE sqrt(count) / exposure); each advocate's own count is
    Poisson(rate x its tick exposure) (Pearson dispersion, as in test_lifetime); every
    referral comes from an advocate active at the start of its tick (exact); rewards are in
    the referrer's retention costs (exact)."""
    lifetime_on_fast(REFERRAL_TICK)
    spec, result = lt.referral_run()
    assert spec.engine == "fast" and spec.support.issue_prob == 0
    c, ref = result.customers, result.referrals
    assert result.n_customers < 0.9 * spec.market_size  # unaware people left all along
    advocates, exposure = tick_exposure(spec, result)
    credited = np.bincount(ref["referrer"], minlength=result.n_customers)[advocates]
    rate_g = spec.advocacy.referral_rate_per_day * np.array(
        [lt.REFERRAL_SEGMENTS[g] for g in spec.segment_names])
    rate = rate_g[c["segment"][advocates]]
    for g, name in enumerate(spec.segment_names):
        sel = c["segment"][advocates] == g
        count, days = int(credited[sel].sum()), float(exposure[sel].sum())
        assert count > 500
        lt.assert_close(count / days, rate_g[g], math.sqrt(count) / days,
                        f"referrals per advocate tick-day, {name}")
    mu = rate * exposure
    keep = mu > 0
    assert np.all(credited[~keep] == 0)
    pearson = ((credited[keep] - mu[keep]) ** 2 / mu[keep]).sum()
    lt.assert_close(float(pearson), float(keep.sum()), math.sqrt((2 + 1 / mu[keep]).sum()),
                    "Pearson dispersion of referrals per advocate")
    who, when = ref["referrer"], ref["time"]
    t0 = np.floor(when / spec.tick_days) * spec.tick_days
    assert np.all(c["t_advocacy"][who] < t0)
    churn = c["t_churned"][who]
    assert np.all(np.isnan(churn) | (churn >= t0))
    np.testing.assert_array_equal(c["t_aware"][ref["customer"]], when)
    assert np.all(c["channel"][ref["customer"]] == spec.channel_names.index("referral"))
    lt.test_referral_rewards_in_retention_costs()


# ============================================================================ 4. the desk
def random_tickets(rng: np.random.Generator, n: int, grid: float | None = None
                   ) -> list[tuple[float, float, float, bool]]:
    """(arrival, handling, patience, resolved) of n tickets: Poisson arrivals (rate 2),
    exponential handling (mean 4) and patience (mean 3); on a grid, many ties."""
    gaps, handling = rng.exponential(0.5, n), rng.exponential(4.0, n)
    patience, resolved = rng.exponential(3.0, n), rng.random(n) < 0.7
    if grid:
        gaps, handling, patience = (np.round(x / grid) * grid for x in (gaps, handling, patience))
    return list(zip(np.cumsum(gaps).tolist(), handling.tolist(), patience.tolist(),
                    resolved.tolist(), strict=True))


def run_serve(tickets: list[tuple[float, float, float, bool]], agents: int
              ) -> tuple[TicketLog, dict[int, tuple[int, float]]]:
    """Each ticket in its own SimPy process through ``serve`` (the agent engine's way)."""
    env = simpy.Environment()
    desk, log, told = simpy.Resource(env, capacity=agents), TicketLog(), {}

    def customer(k: int, arrival: float, handling: float, patience: float, resolved: bool):
        yield env.timeout(arrival)
        told[k] = yield from serve(env, desk, log, k, handling, patience, resolved)

    for k, ticket in enumerate(tickets):
        env.process(customer(k, *ticket))
    env.run()
    return log, told


def run_desk(tickets: list[tuple[float, float, float, bool]], agents: int
             ) -> tuple[TicketLog, dict[int, tuple[int, float]]]:
    """The same tickets submitted to the callback ``Desk`` (the fast engine's way)."""
    env = simpy.Environment()
    log, told = TicketLog(), {}
    desk = Desk(env, simpy.Resource(env, capacity=agents), log,
                lambda k, outcome, wait: told.__setitem__(k, (outcome, wait)))
    for k, ticket in enumerate(tickets):
        desk.submit(k, *ticket)
    env.run()
    return log, told


LOG_COLUMNS = ("customer", "arrival", "start", "end", "outcome")
DESK_EXACT_SEED = 7311


@pytest.mark.parametrize("agents", [1, 3, 10])
def test_desk_callbacks_equal_serve(agents: int) -> None:
    """The same 3,000 tickets (continuous times, seed DESK_EXACT_SEED + agents) through
    ``serve`` and ``Desk``: identical logs, row for row, and the same (outcome, wait) told
    to each customer."""
    tickets = random_tickets(np.random.default_rng(DESK_EXACT_SEED + agents), 3000)
    (log_s, told_s), (log_d, told_d) = run_serve(tickets, agents), run_desk(tickets, agents)
    for col in LOG_COLUMNS:
        np.testing.assert_array_equal(np.asarray(getattr(log_d, col), float),
                                      np.asarray(getattr(log_s, col), float), err_msg=col)
    assert len(log_s.customer) == len(tickets)
    assert {0, 1, 2} <= set(log_s.outcome)  # resolved, unresolved, abandoned
    assert told_d == told_s


@pytest.mark.parametrize("agents", [1, 3, 10])
def test_desk_callbacks_equal_serve_with_ties(agents: int) -> None:
    """Times on a grid of 0.25 (seed DESK_EXACT_SEED + 100 + agents): many arrivals, ends
    and patience limits coincide, some patience and handling times are 0. Each ticket's
    record is identical; only the log order of tickets ending at the same moment may
    differ (processes and callbacks schedule their events differently)."""
    tickets = random_tickets(np.random.default_rng(DESK_EXACT_SEED + 100 + agents), 3000,
                             grid=0.25)
    (log_s, told_s), (log_d, told_d) = run_serve(tickets, agents), run_desk(tickets, agents)

    def by_customer(log: TicketLog) -> dict[str, np.ndarray]:
        order = np.argsort(log.customer, kind="stable")
        return {col: np.asarray(getattr(log, col), float)[order] for col in LOG_COLUMNS}

    s, d = by_customer(log_s), by_customer(log_d)
    for col in LOG_COLUMNS:
        np.testing.assert_array_equal(d[col], s[col], err_msg=col)
    np.testing.assert_array_equal(np.asarray(log_d.end), np.asarray(log_s.end))  # end order
    assert told_d == told_s


def desk_replication_callbacks(seed: int, replication: int, patience_mean: float,
                               run_minutes: float, warmup: float) -> dict[str, float]:
    """test_lifetime.desk_replication with the callback ``Desk``: the same draws in the
    same order (gap, patience, handling per arrival), so for one seed both give the same
    statistics; the same statistics of arrivals in [warmup, run_minutes)."""
    rng = np.random.default_rng([seed, replication])
    tickets, t = [], 0.0
    while True:
        t += rng.exponential(1 / lt.DESK_LAM)
        if t >= run_minutes:
            break
        patience = rng.exponential(patience_mean) if math.isfinite(patience_mean) else math.inf
        tickets.append((t, rng.exponential(1 / lt.DESK_MU), patience, True))
    env = simpy.Environment()
    log = TicketLog()
    desk = Desk(env, simpy.Resource(env, capacity=lt.DESK_C), log, lambda *_: None)
    for k, ticket in enumerate(tickets):
        desk.submit(k, *ticket)
    env.run(until=run_minutes + 1000.0)
    assert len(log.customer) == len(tickets)  # every ticket ended
    order = np.argsort(log.customer)
    arrival, start, end, outcome = (np.asarray(getattr(log, c))[order]
                                    for c in ("arrival", "start", "end", "outcome"))
    sel = arrival >= warmup
    arrival, start, end, outcome = arrival[sel], start[sel], end[sel], outcome[sel]
    served = outcome < 2
    wait = np.where(served, start, end) - arrival
    span = run_minutes - warmup
    all_arrival, all_end = np.asarray(log.arrival), np.asarray(log.end)
    overlap = np.clip(np.minimum(all_end, run_minutes) - np.maximum(all_arrival, warmup), 0, None)
    return {"p_wait": float(np.mean(wait > 0)), "wq": float(wait.mean()),
            "p_abandon": float(np.mean(~served)), "in_system": float(overlap.sum() / span),
            "little": float(arrival.size / span * (end - arrival).mean())}


@pytest.mark.parametrize("patience_mean", [math.inf, lt.DESK_PATIENCE],
                         ids=["erlang_c", "erlang_a"])
def test_desk_callbacks_reproduce_serve_under_poisson_load(patience_mean: float) -> None:
    """One replication of test_lifetime's desk oracle (seed DESK_SEED) gives the same
    statistics through ``Desk`` as through ``serve``."""
    for rep in (0, 1):
        assert desk_replication_callbacks(lt.DESK_SEED, rep, patience_mean, 1200.0, 200.0) \
            == lt.desk_replication(lt.DESK_SEED, rep, patience_mean, 1200.0, 200.0)


FAST_DESK_SEED = 7321


# The default run checks ``Desk`` against ``serve`` ticket for ticket (above) and ``serve``
# against Erlang A (test_lifetime.test_desk_erlang); ``Desk`` against the closed forms
# directly is slow.
@pytest.mark.slow
@pytest.mark.parametrize("patience_mean", [math.inf, lt.DESK_PATIENCE],
                         ids=["erlang_c", "erlang_a"])
def test_desk_callbacks_erlang_long(monkeypatch: pytest.MonkeyPatch,
                                    patience_mean: float) -> None:
    """``Desk`` as M/M/10 (+M): P(wait > 0), E[Wq], P(abandon), Little's law and L against
    Erlang C / Erlang A, 4 between-replication SE (test_lifetime.check_desk), 30
    replications of 10,000 min after 200 min of warm-up, seeds (FAST_DESK_SEED + 1,
    replication)."""
    monkeypatch.setattr(lt, "desk_replication", desk_replication_callbacks)
    monkeypatch.setattr(lt, "DESK_SEED", FAST_DESK_SEED + 1)
    lt.check_desk(patience_mean, n_reps=30, run_minutes=10_200.0, warmup=200.0)


# ================================================== 5. determinism, common random numbers
@pytest.fixture
def fast_cfg(make_config: MakeConfig, only_fast: None) -> dict[str, Any]:
    """test_determinism's config (a small baseline with every mechanism at work) on the
    fast engine."""
    return make_config(*det.OVERRIDES, "run.engine=fast")


def test_fast_same_seed_same_outputs(fast_cfg: dict[str, Any]) -> None:
    """Identical arrays in every table (customers, events, carts, purchases, referrals,
    tickets), metrics and daily tables, for one seed and spec; the seed defaults to the
    spec's."""
    det.test_same_seed_same_outputs(fast_cfg)
    det.test_seed_defaults_to_the_spec_seed(fast_cfg)


def test_fast_other_seed_or_replication_differs(fast_cfg: dict[str, Any]) -> None:
    det.test_different_seeds_differ(fast_cfg)
    det.test_different_replications_differ(fast_cfg)


def test_fast_replication_alone_or_in_a_batch(fast_cfg: dict[str, Any]) -> None:
    det.test_replication_alone_or_in_a_batch(fast_cfg)


def test_fast_results_whatever_n_jobs(fast_cfg: dict[str, Any]) -> None:
    """Three replications with run.n_jobs = 1 and with run.n_jobs = 2 (two worker
    processes): identical tables and metrics, replication by replication."""
    fast_cfg["run"]["replications"] = 3
    specs = []
    for n_jobs in (1, 2):
        fast_cfg["run"]["n_jobs"] = n_jobs
        specs.append(build_spec(fast_cfg))
    assert specs[1].n_jobs == 2 and specs[1].fingerprint() == specs[0].fingerprint()
    one, two = run_experiment(specs[0]), run_experiment(specs[1])
    for a, b in zip(one.results, two.results, strict=True):
        det.assert_same_result(a, b)
    for a, b in zip(one.metrics, two.metrics, strict=True):
        det.assert_same_metrics(a, b)


@pytest.mark.slow
def test_fast_same_outputs_in_a_fresh_interpreter(fast_cfg: dict[str, Any]) -> None:
    """Bit for bit in another process with another hash seed (no dependence on hashing)."""
    expected = det.digest(simulate(build_spec(fast_cfg), det.SEED, 1))
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run(
        [sys.executable, "-c", det._SUBPROCESS, str(det.TESTS_DIR), str(det.SEED), "1",
         *det.OVERRIDES, "run.engine=fast"],
        capture_output=True, text=True, env=env, cwd=det.REPO, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize(
    "change",
    [{"hidden_fees": False}, {"steps": 2, "trust": 1.0, "forced_account": False}],
    ids=["no_hidden_fees", "shorter_trusted_checkout"],
)
def test_fast_crn_checkout_friction_keeps_paths_to_checkout(fast_cfg: dict[str, Any],
                                                            change: dict[str, Any]) -> None:
    """Less checkout friction: every path up to the checkout identical, fewer abandon and
    every abandoner of the easier checkout abandoned the harder one too."""
    det.test_crn_checkout_friction_keeps_paths_to_checkout(fast_cfg, change)


@pytest.mark.parametrize(("kind", "cv"), [("gamma", 0.8), ("exponential", None),
                                          ("lognormal", 1.2), ("weibull", 0.6),
                                          ("fixed", None)])
def test_fast_crn_dwell_mean_rescales_only_that_stage(fast_cfg: dict[str, Any], kind: str,
                                                      cv: float | None) -> None:
    det.test_crn_dwell_mean_keeps_who_arrives_when(fast_cfg, kind, cv)


def test_fast_crn_segments_follow_awareness_order(fast_cfg: dict[str, Any]) -> None:
    det.test_crn_dwell_mean_keeps_segments_with_word_of_mouth(fast_cfg)


# ========================================================================== 6. invariants
def check_fast_referrals(spec: ModelSpec, r: SimulationResult) -> None:
    """test_invariants.check_referrals with the fast engine's timing: a referral comes from
    an advocate active at the start of the referral's tick (advocated before it, had not
    churned by then; see test_referrer_active_at_its_tick_start)."""
    c, ref, n = r.customers, r.referrals, r.n_customers
    who, referrer, t = ref["customer"], ref["referrer"], ref["time"]
    assert np.unique(who).size == who.size, "a customer referred twice"
    np.testing.assert_array_equal(np.sort(who), np.flatnonzero(
        c["channel"] == inv.referral_code(spec)))
    np.testing.assert_array_equal(t, c["t_aware"][who])
    assert np.all((referrer >= 0) & (referrer < n)) and np.all(referrer < who)
    t0 = np.floor(t / spec.tick_days) * spec.tick_days
    assert np.all(c["t_advocacy"][referrer] < t0), "a referral before its referrer advocated"
    left = c["t_churned"][referrer]
    assert np.all(np.isnan(left) | (left >= t0)), "a referral after its tick's referrer left"
    np.testing.assert_array_equal(c["referrals"], np.bincount(referrer, minlength=n))


def check_fast_tickets(spec: ModelSpec, r: SimulationResult) -> None:
    """test_invariants.check_tickets where a ticket may be late (see check_ticket_arrivals):
    outcomes and times consistent, at most one ticket per order, capacity respected."""
    tk = r.tickets
    arrival, start, end, outcome = tk["arrival"], tk["start"], tk["end"], tk["outcome"]
    served = outcome <= 1
    assert not np.isnan(start[served]).any() and np.isnan(start[~served]).all()
    assert np.all(start[served] >= arrival[served]) and np.all(end[served] >= start[served])
    assert np.all(end[~served] >= arrival[~served])
    late = check_ticket_arrivals(spec, r)
    keys = set(zip(tk["customer"][~late].tolist(), arrival[~late].tolist(), strict=True))
    assert len(keys) == (~late).sum(), "two tickets from one order"
    if spec.support.issue_prob == 0:
        assert arrival.size == 0
    moments = np.r_[start[served], end[served]]
    step = np.r_[np.ones(served.sum()), -np.ones(served.sum())]
    busy = np.cumsum(step[np.lexsort((step, moments))])
    assert busy.max(initial=0) <= spec.support.agents, "more tickets in service than agents"


# test_invariants' checks that hold as they are for the fast engine: states and outcomes,
# ordered paths along allowed transitions, the experience score, orders (none after churn),
# money, the daily table (conservation of customers), the horizon; then the two above
# (check_churn_and_renewals matches a churn to its order's ticket, which a late ticket
# breaks: test_fast_tickets_arrive_with_their_order)
FAST_CHECKS = (inv.check_states_and_outcomes, inv.check_paths, inv.check_experience,
               inv.check_purchases, inv.check_money, inv.check_daily, inv.check_horizon,
               check_fast_referrals, check_fast_tickets)


def check_fast(spec: ModelSpec, r: SimulationResult) -> None:
    for check in FAST_CHECKS:
        check(spec, r)


@pytest.mark.quick_version_of("test_fast_invariants_random_journeys_many")
@settings(inv.HYPOTHESIS, max_examples=20)
@given(inv.configs())
def test_fast_invariants_random_journeys(case: tuple[dict[str, Any], int, int]) -> None:
    """test_invariants' random models (hypothesis, derandomized) on the fast engine at
    ticks of 0.5, 1 or 3 days: 20 of them (skipped when the slow tests, 150, run)."""
    cfg, seed, replication = case
    tick = (0.5, 1.0, 3.0)[seed % 3]
    spec = build_spec(fast(cfg, tick))
    check_fast(spec, simulate_fast_only(spec, seed, replication))


@pytest.mark.slow
@settings(inv.HYPOTHESIS, max_examples=150)
@given(inv.configs())
def test_fast_invariants_random_journeys_many(case: tuple[dict[str, Any], int, int]) -> None:
    """As above, 150 examples (as many as the agent engine's)."""
    cfg, seed, replication = case
    tick = (0.5, 1.0, 3.0)[seed % 3]
    spec = build_spec(fast(cfg, tick))
    check_fast(spec, simulate_fast_only(spec, seed, replication))


@pytest.mark.parametrize(("model", "everything_on"), [
    ("repeat_purchase", False), ("subscription", False), ("none", False),
    ("repeat_purchase", True), ("subscription", True)])
def test_fast_life_variants(model: str, everything_on: bool) -> None:
    """test_invariants.test_life_variants's busy models on the fast engine (seed 13), in a
    market of 10,000 so that queues form in every variant."""
    cfg = inv.life_variant_config(model, everything_on)
    cfg["market"]["size"] = 10_000
    spec = build_spec(fast(cfg))
    r = simulate_fast_only(spec, 13, 0)
    check_fast(spec, r)
    c = r.customers
    assert (c["outcome"] == inv.CHURNED).any()
    assert (c["purchases"] > 1).any() == (model != "none")
    assert r.referrals["customer"].size > 0
    assert {0, 2} <= set(r.tickets["outcome"].tolist())
    assert c["loyalty_member"].any() == everything_on


def one_step_per_batch(model: FastModel, due: np.ndarray, until: float) -> None:
    """Batches cut another way: every customer due takes exactly one step per batch (the
    fast engine's first design), where ``FastModel._batch`` lets a customer go on to the
    next step in the same batch when it also falls before ``until``."""
    phase = model.phase[due]
    for handle, step in ((model._exits, phase < model.n_stages),
                         (model._checkout, phase == model.CHECKOUT),
                         (model._recover, phase == model.RECOVER),
                         (model._renew, phase == model.RENEW),
                         (model._after_desk, phase == model.AFTER_DESK),
                         (model._buy, phase == model.BUY)):
        if step.any():
            model.n_batched_events += int(step.sum())
            handle(due[step])


TABLE_KEYS = {"customers": ("id",), "events": ("customer", "time", "state"),
              "abandonments": ("customer", "time"), "purchases": ("customer", "time"),
              "referrals": ("customer", "time"), "tickets": ("customer", "arrival")}


@pytest.mark.parametrize(("model", "everything_on"), [
    ("repeat_purchase", True), ("subscription", True), ("none", False), ("baseline", None)])
def test_batches_cut_another_way_change_only_the_row_order(monkeypatch: pytest.MonkeyPatch,
                                                           model: str,
                                                           everything_on: bool | None) -> None:
    """Customers are independent within a tick: with one step per customer per batch
    instead of ``_batch``'s several, test_invariants' busy life variants (desk queues,
    referrals, social proof, loyalty; market 10,000) and the conformance baseline (240
    days) with a market of 60,000 and the referral programme (many advocates join in each
    tick: their order must not matter) give the same
    tables row for row once sorted, bit for bit, and the same event count (seed 17)."""
    if everything_on is None:
        cfg = composed(("market.size=60000", "advocacy.program=true"))
    else:
        cfg = inv.life_variant_config(model, everything_on)
        cfg["market"]["size"] = 10_000
        cfg["journey"]["social_proof"] = 5.0  # (2 in the preset) feedback that matters
    spec = build_spec(fast(cfg))
    ours = FastModel(spec, 17, 0)
    mine = ours.run()
    monkeypatch.setattr(FastModel, "_batch", one_step_per_batch)
    other = FastModel(spec, 17, 0)
    theirs = other.run()
    assert other.n_batched_events == ours.n_batched_events
    assert mine.n_sim_events == theirs.n_sim_events
    assert mine.referrals["customer"].size > 100 and mine.tickets["arrival"].size > 100
    for name, keys in TABLE_KEYS.items():
        a = sorted_rows(getattr(mine, name), *keys)
        b = sorted_rows(getattr(theirs, name), *keys)
        assert a.keys() == b.keys()
        for col in a:
            np.testing.assert_array_equal(a[col], b[col], err_msg=f"{name}.{col}")


@pytest.mark.parametrize("journey", ["six_stage", "six_stage_decision", "five_stage",
                                     "four_stage"])
@pytest.mark.parametrize("retention", ["repeat_purchase", "subscription"])
def test_fast_invariants_preset_journeys(make_config: MakeConfig, journey: str,
                                         retention: str) -> None:
    cfg = make_config("run=smoke", f"journey={journey}", f"retention={retention}",
                      "run.engine=fast")
    spec = build_spec(cfg)
    r = simulate_fast_only(spec, 20261123, 1)
    check_fast(spec, r)
    assert (r.customers["outcome"] == inv.PURCHASED).any()
    assert (r.customers["purchases"] > 1).any()


# ================================================ 7. discrepancies found, and fixed or not
# Found by this suite and fixed in the fast engine since: a stage without exits crashed it;
# the customers table reported a live score for prospects awaiting a cart reminder; an
# advocate who left after a ticket kept referring for the whole next tick. The tests below
# keep them fixed. One documented corner remains, a strict xfail.
@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_stage_without_exits(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    """test_invariants.test_social_proof_stage_without_exits (a dead-end stage: every
    visitor lost, with the social-proof lever) on both engines. The fast engine used to
    crash building its exit tables (IndexError on the empty cumulative sums)."""
    if engine == "fast":
        monkeypatch.setattr(inv, "base_config", lambda: fast(inv._base_config()))
        monkeypatch.setattr(inv, "simulate", simulate_fast_only)
    inv.test_social_proof_stage_without_exits()


EXPERIENCE_SEED = 7702


@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_experience_of_prospects_awaiting_a_reminder(make_config: MakeConfig,
                                                     engine: str) -> None:
    """A customer who never bought ends with the experience score of its last event
    (test_invariants.check_experience), also when the horizon falls between abandoning
    a cart and its reminder (seed EXPERIENCE_SEED). The fast engine used to report its live
    score there, with the checkout's friction points."""
    cfg = orc.checkout_config(make_config(f"run.engine={engine}"), size=3000,
                              recovery_prob=1.0, recovery_delay_days=100.0)
    spec = build_spec(cfg)
    r = simulate(spec, EXPERIENCE_SEED, 0)
    c = r.customers
    waiting = c["abandoned_cart"] & (c["outcome"] == inv.OUTCOMES.index("in_journey"))
    assert waiting.sum() > 100 and spec.experience.checkout_per_abandon_prob != 0
    inv.check_experience(spec, r)


@pytest.mark.xfail(strict=True, reason=(
    "fast engine, documented corner with visible effects: the desk's clock reaches the "
    "tick's end before a customer whose ticket ended during the tick moves on, so an order "
    "that customer places before the tick's end raises a ticket that joins the queue at the "
    "tick's end. The tickets table "
    "then holds an arrival that matches no order (up to one tick late; about 1 % of tickets "
    "when orders and tickets are frequent), the wait leaves out that delay, and everything "
    "after it (churn, next orders) moves by the same delay; test_lifetime's check that a "
    "ticket arrives when its order happens fails"))
def test_fast_tickets_arrive_with_their_order(lifetime_on_fast) -> None:
    """test_lifetime.test_engine_ticket_rates on the fast engine (tick 1)."""
    lifetime_on_fast(1.0)
    lt.test_engine_ticket_rates()


def leaving_advocates_config(engine: str) -> dict[str, Any]:
    """Every buyer advocates at once, raises a ticket that goes badly and leaves when it
    ends (within minutes: 50 agents, 30-minute handling); advocates refer at 0.5 a day."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lt, "base_config", lambda: copy.deepcopy(lt._base()))
        cfg = lt.life_config(20_000, 120.0, reach_per_day=0.002)
    cfg["retention"]["model"] = "none"
    cfg["advocacy"] |= {"advocate_prob": 1.0, "min_experience": -2.0,
                        "referral_rate_per_day": 0.5}
    cfg["support"] |= {"issue_prob": 1.0, "agents": 50, "handling_kind": "exponential",
                       "handling_mean_minutes": 30.0, "handling_cv": None,
                       "patience_mean_minutes": 1e4, "first_contact_resolution": 0.0}
    cfg["experience"] |= {"leave_after_bad": 1.0, "ticket_unresolved": -1.0}
    cfg["run"]["engine"] = engine
    return cfg


LEAVING_SEED = 7503


@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_referrer_active_at_its_tick_start(engine: str) -> None:
    """Every referral comes from an advocate active at the start of the referral's tick
    (the agent engine: at the referral itself), seed LEAVING_SEED. The fast engine used to
    apply a churn after a ticket only in the next tick's batch, after that tick's awareness
    was drawn: advocates who left 30 minutes after joining then referred for a whole day
    after leaving (0.50 referrals each, 3,854 of 3,855 after the referrer left, against 0.013
    in the agent engine; 7,696 people aware instead of 4,204)."""
    spec = build_spec(leaving_advocates_config(engine))
    r = simulate(spec, LEAVING_SEED, 0)
    c, ref = r.customers, r.referrals
    assert c["advocate"].sum() > 1000 and (ref["customer"].size > 0 or engine == "fast")
    who, t = ref["referrer"], ref["time"]
    start = np.floor(t / spec.tick_days) * spec.tick_days if engine == "fast" else t
    churn = c["t_churned"][who]
    assert np.all(np.isnan(churn) | (churn >= start))

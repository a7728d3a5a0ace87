"""What-if comparisons (issue 4): the intervention library and the paired comparison.

- Comparing the baseline with itself gives differences exactly zero.
- Every scenario composes and validates (three journey presets), changes at least one key
  and only the keys its file names, and never touches seeds, ``run.*`` or ``market.size``.
- Each scenario moves the metrics it claims (``CLAIMS``, read from the scenario files'
  comments and ``scenarios/README.md``) in the claimed direction: a paired statistical test
  with common random numbers, not a snapshot.
- Common random numbers work: for one fewer checkout step the paired difference's variance
  is at least 10 times smaller than with independent seeds.
- The paired 95% intervals cover a known difference about 95% of the time.
- Results do not depend on ``run.n_jobs``; precision-driven replications stop where they
  should; the command line (``compare=``, Hydra multiruns with ``python -m sim.report``).

Statistical tests state their seed and derive their tolerance from standard errors. CLI runs
are subprocesses in temporary directories, so nothing is written into the repository.

The default run checks every scenario on the default journey, the claims of three scenarios
(``QUICK_CLAIMS``) and one comparison from the command line; the other journeys, every
scenario's claims at both sizes, the other command-line tests and the 200 comparisons of
interval coverage are slow (CI runs them).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from scipy import stats

import sim
from sim import api
from sim.measure import stats as mstats
from sim.measure.experiment import ExperimentResult, run_experiment
from sim.measure.metrics import metric_range
from sim.measure.stats import estimate
from sim.model.config import (
    CONFIG_DIR,
    SCENARIO_DIR,
    compose_config,
    register_configs,
    scenario_names,
)
from sim.model.spec import SpecError, build_spec
from sim.present.text import CONSOLE_WIDTH

SEED = 20261123  # the configured seed (configs/run/*.yaml), stated so tests can be replayed
SCENARIOS = [n for n in scenario_names() if n != "baseline"]
JOURNEYS = (None, "four_stage", "five_stage")  # None: the default journey (six_stage)
SMOKE = ("run=smoke",)  # market 3,000, 120 days, 2 replications, seed SEED
TIMEOUT_S = 300
UP, DOWN = 1, -1


# ------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module", autouse=True)
def hydra_context() -> Iterator[None]:
    """One Hydra initialisation and one registration of the scenarios for the whole module:
    ``compose_config`` would redo both for each of the ~90 compositions here (about a third
    of their time). Inside the context ``compose_config`` composes with it too."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        yield


@cache
def composed(journey: str | None, name: str) -> DictConfig:
    """The config of scenario ``name`` with the given journey preset, composed as the CLI
    does (no key overrides, so a scenario setting run.* or market.size would show). Cached:
    composition is the slow part of these tests; callers copy before changing it."""
    overrides = [f"scenario={name}"] + ([f"journey={journey}"] if journey else [])
    return compose(config_name="config", overrides=overrides)


@cache
def flat_config(journey: str | None, name: str) -> dict[str, Any]:
    return flatten(OmegaConf.to_container(composed(journey, name), resolve=True))


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key paths -> leaf values (lists and empty mappings are leaves)."""
    if not isinstance(tree, dict) or not tree:
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out |= flatten(value, f"{prefix}{key}.")
    return out


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """Key paths whose value differs between two flattened configs (``scenario`` left out)."""
    missing = object()
    return {k for k in a.keys() | b.keys()
            if k.split(".")[0] != "scenario" and a.get(k, missing) != b.get(k, missing)}


def values(metrics: list[dict[str, float]], name: str) -> np.ndarray:
    return np.array([m[name] for m in metrics], dtype=float)


def tables_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Same columns, dtypes and values (NaN == NaN)."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype
        and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind in "fc") for k in a)


def run_py(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``cwd``, importing the same ``sim`` as this test session."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)  # a user's setting would turn errors into tracebacks
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


# ------------------------------------------------------- 1. the baseline against itself
@pytest.fixture(scope="module")
def baseline_twice() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Two separate runs of the baseline, same seed: the same replications."""
    first = api.run(overrides=SMOKE, replications=3).experiment.metrics
    second = api.run(overrides=SMOKE, replications=3).experiment.metrics
    return first, second


def test_baseline_against_itself_paired_is_exactly_zero(baseline_twice) -> None:
    base, again = baseline_twice
    for name in base[0]:
        b = values(base, name)
        n_ok = int((~np.isnan(b)).sum())
        p = mstats.paired(base, again, name)
        if n_ok == 0:  # e.g. CAC of a channel that brought no buyer: nothing to compare
            assert math.isnan(p["difference"]), name
            continue
        assert p["difference"] == 0.0, (name, p)
        assert p["share_better"] == 0.0, (name, p)
        assert p["baseline"] == p["scenario_value"], (name, p)
        assert p["relative_change"] == 0.0 or (p["baseline"] == 0 and math.isnan(
            p["relative_change"])), (name, p)
        assert p["replications"] == n_ok, (name, p)
        if n_ok >= 2:  # a t interval needs two values; with zero spread it is the point 0
            assert p["difference_low"] == p["difference_high"] == 0.0, (name, p)
            assert p["crn_variance_ratio"] == math.inf, (name, p)  # Var(s - b) = 0
        # lower is better: the same zero differences are never "better" either
        assert mstats.paired(base, again, name, higher_is_better=False)["share_better"] == 0


def test_baseline_against_itself_comparison_table_is_exactly_zero(baseline_twice) -> None:
    base, again = baseline_twice
    for rank_by in ("npv", "ltv.mean", "loyalty_members"):
        table = mstats.compare(base, {"baseline": again}, rank_by=rank_by)
        assert set(table["metric"]) == set(mstats.HEADLINE) | {rank_by}
        assert (table["scenario"] == "baseline").all()
        assert (table["rank"] == 1).all()
        for col in ("difference", "difference_low", "difference_high", "share_better",
                    "extra_cost"):
            assert (table[col] == 0.0).all(), (rank_by, col, table[["metric", col]])
        assert (table["baseline"] == table["scenario_value"]).all()
        assert table["roi"].isna().all()  # nothing was invested: ROI undefined, not 0 or inf


# --------------------------------------------------- 2. every scenario composes and is data
@pytest.mark.parametrize("journey", [
    pytest.param(j, id=j or "default", marks=pytest.mark.slow if j else ())
    for j in JOURNEYS])  # the default journey in the default run, the other presets slow
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_composes_validates_and_changes_only_its_keys(name: str,
                                                               journey: str | None) -> None:
    cfg = composed(journey, name)
    spec = build_spec(cfg)  # raises SpecError listing every invalid key
    assert spec.scenario_name == name == cfg.scenario.name  # scenario.name = the file stem
    assert cfg.scenario.description.strip(), f"{name}: empty description"
    assert spec.scenario_cost_per_day >= 0, f"{name}: cost_per_day {spec.scenario_cost_per_day}"
    changed = config_diff(flat_config(journey, "baseline"), flat_config(journey, name))
    assert changed, f"{name}: changes nothing compared with the baseline"
    forbidden = sorted(k for k in changed if k.startswith(("run.", "journey.stages."))
                       or k == "market.size" or "seed" in k.split("."))
    assert not forbidden, f"{name} changes run settings, market size, seeds or stages: {forbidden}"
    # only the keys the overlay names: a scenario is the five keys it changes
    named = {k for k in flatten(yaml.safe_load((SCENARIO_DIR / f"{name}.yaml").read_text()))
             if not k.startswith("scenario.")}
    assert changed == named, (f"{name}: changed {sorted(changed)} but the file names "
                              f"{sorted(named)} (a key equal to the baseline is not a change)")


def test_baseline_scenario_changes_nothing() -> None:
    for journey in JOURNEYS:
        base = composed(journey, "baseline")
        assert base.scenario.name == "baseline"
        assert base.scenario.cost_per_day == 0
        plain = compose_config([f"journey={journey}"] if journey else [])
        assert config_diff(flatten(OmegaConf.to_container(plain, resolve=True)),
                           flat_config(journey, "baseline")) == set()
        assert OmegaConf.to_container(plain.scenario) == OmegaConf.to_container(base.scenario)


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_file_is_a_global_overlay_without_run_settings(name: str) -> None:
    text = (SCENARIO_DIR / f"{name}.yaml").read_text()
    assert text.splitlines()[0].strip() == "# @package _global_"
    data = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # comments out
    assert not re.search(r"^\s*run\s*:", data, flags=re.MULTILINE), f"{name} sets run:"
    assert "seed" not in data.lower(), f"{name} mentions a seed"
    assert "_target_" not in data, f"{name}: scenario files are data, never code"
    tree = yaml.safe_load(text)
    assert set(tree) - {"scenario"} or name == "baseline"
    assert not {"run", "seed"} & set(flatten(tree)) and "market.size" not in flatten(tree)
    assert {"name", "description", "cost_per_day"} <= set(tree["scenario"])


# ------------------------------------------------ 3. each scenario moves what it claims
# scenario -> [(metric, direction, kind)]; kind "ci": the paired difference's 95% CI lies on
# the claimed side of zero; "not_opposite": an effect the README calls negligible at this
# scale, checked one-sided only: the difference is not 4 standard errors on the wrong side;
# "ci_full": a real but small effect on churn that the fast size (5,000 people, one year)
# cannot resolve (its SE there is about as large as the effect): "ci" at the full size,
# "not_opposite" at the fast one.
CLAIMS: dict[str, list[tuple[str, int, str]]] = {
    # awareness: more reach, more aware prospects and buyers from that channel
    "seo": [("aware", UP, "ci"), ("acquisitions.search", UP, "ci")],
    "social_media_content": [("aware", UP, "ci"), ("acquisitions.social", UP, "ci")],
    "targeted_advertising": [("spend.total", UP, "ci"), ("spend.paid_ads", UP, "ci"),
                             ("acquisitions.paid_ads", UP, "ci"), ("aware", UP, "ci")],
    # consideration: forward odds on content / usability stages
    "educational_content": [("conversion_rate", UP, "ci"), ("purchases", UP, "ci")],
    "case_studies": [("conversion_rate", UP, "ci"), ("purchases", UP, "ci")],
    "testimonials_reviews": [("conversion_rate", UP, "ci"),
                             ("checkout.abandonment_rate", DOWN, "ci")],  # trust 0.5 -> 0.6
    "user_friendly_website": [("conversion_rate", UP, "ci"),
                              ("checkout.abandonment_rate", DOWN, "ci")],  # page load 3 -> 2 s
    "success_stories": [("conversion_rate", UP, "ci"),
                        ("acquisitions.social", UP, "ci")],  # social quality 0.8 -> 0.85
    # decision and purchase: the abandonment logit
    "clear_pricing": [("conversion_rate", UP, "ci"), ("checkout.abandonment_rate", DOWN, "ci")],
    "remove_hidden_fees": [("checkout.abandonment_rate", DOWN, "ci"), ("purchases", UP, "ci")],
    "guest_checkout": [("checkout.abandonment_rate", DOWN, "ci"), ("purchases", UP, "ci")],
    "more_payment_methods": [("checkout.abandonment_rate", DOWN, "ci"),
                             ("purchases", UP, "ci")],
    "smooth_secure_checkout": [("checkout.abandonment_rate", DOWN, "ci"),
                               ("purchases", UP, "ci")],
    "cart_reminders": [("checkout.recovery_rate", UP, "ci"), ("checkout.recovered", UP, "ci"),
                       ("purchases", UP, "ci")],
    "checkout_overhaul": [("checkout.abandonment_rate", DOWN, "ci"), ("purchases", UP, "ci"),
                          ("conversion_rate", UP, "ci")],
    # after purchase
    "thank_you_messages": [("experience.purchase", UP, "ci"),  # +0.1 per order
                           ("costs.retention", UP, "ci"),  # thank_you_cost per order
                           ("advocates", UP, "ci"), ("monthly_churn", DOWN, "ci")],
    # the desk is idle at the baseline load (README): no queue to shorten, only cost
    "better_support": [("costs.support", UP, "ci"), ("support.utilisation", DOWN, "ci"),
                       ("support.wait_mean_minutes", DOWN, "not_opposite")],
    "feedback_requests": [("support.tickets", DOWN, "ci"),  # issue_prob 0.08 -> 0.075
                          ("experience.retention", UP, "ci"),  # tickets hurt less
                          ("monthly_churn", DOWN, "not_opposite")],
    "prompt_issue_resolution": [("support.unresolved_rate", DOWN, "ci"),
                                ("monthly_churn", DOWN, "ci_full")],
    # retention
    "loyalty_program": [("loyalty_members", UP, "ci"), ("purchases_per_customer", UP, "ci"),
                        ("discounts", UP, "ci"), ("monthly_churn", DOWN, "ci_full")],
    # the README: a higher purchase rate in BG/NBD means more chances to drop out
    "newsletters": [("purchases_per_customer", UP, "ci"), ("costs.retention", UP, "ci"),
                    ("ltv.mean", UP, "ci"), ("monthly_churn", UP, "ci")],
    "personalised_recommendations": [("purchases_per_customer", UP, "ci"),
                                     ("revenue", UP, "ci"), ("ltv.mean", UP, "ci"),
                                     ("costs.retention", UP, "ci")],
    "retention_package": [("loyalty_members", UP, "ci"), ("purchases_per_customer", UP, "ci"),
                          ("ltv.mean", UP, "ci"), ("costs.retention", UP, "ci")],
    # advocacy
    "encourage_reviews": [("advocates", UP, "ci"), ("referrals", UP, "ci")],
    "referral_program": [("referrals", UP, "ci"), ("referral_acquisitions", UP, "ci"),
                         ("costs.retention", UP, "ci")],  # reward_per_referral
}
# small effects at the fast size (t of about 3 to 5 with 8 replications): twice as many
SMALL_EFFECTS = {"user_friendly_website", "clear_pricing", "encourage_reviews",
                 "feedback_requests", "referral_program"}
# checked in the default run at the fast size, one from each part of the journey
# (awareness, checkout, life after the purchase); every scenario at both sizes is slow
QUICK_CLAIMS = ("seo", "remove_hidden_fees", "loyalty_program")


class Setting(NamedTuple):
    market_size: int
    horizon_days: float
    replications: int  # per scenario; SMALL_EFFECTS get ``more``
    more: int


FAST = Setting(market_size=5_000, horizon_days=365, replications=8, more=16)
FULL = Setting(market_size=20_000, horizon_days=730, replications=10, more=10)  # configs/


def claims_config(name: str, setting: Setting) -> DictConfig:
    cfg = copy.deepcopy(composed(None, name))
    cfg.market.size = setting.market_size
    cfg.run.horizon_days = setting.horizon_days
    cfg.run.seed = SEED
    return cfg


@cache
def claims_baseline(setting: Setting) -> list[dict[str, float]]:
    n = max(setting.replications, setting.more)
    return api.run(claims_config("baseline", setting), replications=n).experiment.metrics


def test_every_scenario_states_its_claims() -> None:
    assert set(CLAIMS) == set(SCENARIOS)
    assert SMALL_EFFECTS.issubset(CLAIMS)
    assert set(QUICK_CLAIMS).issubset(CLAIMS)


@pytest.mark.parametrize("setting", [
    pytest.param(FAST, id="fast"),
    pytest.param(FULL, id="full", marks=pytest.mark.slow),
])
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in QUICK_CLAIMS else pytest.mark.slow)
    for name in sorted(CLAIMS)])
def test_scenario_moves_its_metrics_in_the_claimed_direction(name: str,
                                                             setting: Setting) -> None:
    """Seed SEED for both runs (common random numbers), replication i paired with i."""
    n = setting.more if name in SMALL_EFFECTS else setting.replications
    base = claims_baseline(setting)[:n]
    scen = api.run(claims_config(name, setting), replications=n).experiment.metrics
    failed = []
    for metric, direction, kind in CLAIMS[name]:
        p = mstats.paired(base, scen, metric, higher_is_better=direction > 0)
        d = values(scen, metric) - values(base, metric)
        d = d[~np.isnan(d)]
        se = float(d.std(ddof=1) / math.sqrt(d.size))
        where = (f"{name}: {metric} {'up' if direction > 0 else 'down'}: difference "
                 f"{p['difference']:.4g} [{p['difference_low']:.4g}, {p['difference_high']:.4g}]"
                 f", SE {se:.3g}, {d.size} paired replications, seed {SEED}, {setting}")
        if kind == "ci" or (kind == "ci_full" and setting is FULL):
            ok = p["difference_low"] > 0 if direction > 0 else p["difference_high"] < 0
        else:
            ok = direction * p["difference"] >= -4 * se
        if not ok:
            failed.append(where)
    assert not failed, "\n".join(failed)


# ------------------------------------------------------- 4. common random numbers work
CRN_REPLICATIONS = 40
INDEPENDENT_SEED = SEED + 1


def test_common_random_numbers_shrink_the_paired_variance_tenfold() -> None:
    """One fewer checkout step (``checkout.steps=4``): Var(s - b) with the same seed against
    Var(s' - b) with the scenario run on seed SEED + 1, over 40 replications (smoke size).

    With 40 replications the ratio of two sample variances varies by a factor F(39, 39):
    below 1/2.7 of its expectation with probability 0.001, so a true ratio of about 27 or
    more passes the threshold of 10 with probability 0.999; we measure about 40.
    """
    reps = range(CRN_REPLICATIONS)
    cfg = copy.deepcopy(composed(None, "baseline"))
    cfg.market.size, cfg.run.horizon_days, cfg.run.seed = 3000, 120, SEED
    base = run_experiment(build_spec(cfg), reps)
    cfg.checkout.steps = 4
    same = run_experiment(build_spec(cfg), reps)
    cfg.run.seed = INDEPENDENT_SEED
    indep = run_experiment(build_spec(cfg), reps)
    b, s, s_ind = (e.metric("purchases") for e in (base, same, indep))
    var_paired = float(np.var(s - b, ddof=1))
    var_indep = float(np.var(s_ind - b, ddof=1))
    ratio = var_indep / var_paired
    assert ratio >= 10, (f"CRN variance ratio Var(s' - b) / Var(s - b) = {var_indep:.3g} / "
                         f"{var_paired:.3g} = {ratio:.1f} < 10 (seeds {SEED}, "
                         f"{INDEPENDENT_SEED}, {CRN_REPLICATIONS} replications)")
    # the checkout step matters at all: otherwise a tiny Var(s - b) would prove nothing
    assert (s - b).mean() > 0 and var_paired > 0
    crn = mstats.paired(base.metrics, same.metrics, "purchases")["crn_variance_ratio"]
    assert crn >= 10, f"mstats.paired crn_variance_ratio = {crn:.1f} < 10 (measured {ratio:.1f})"
    print(f"CRN variance ratio, first purchases, steps 5 -> 4: independent/paired = {ratio:.1f}, "
          f"mstats.paired crn_variance_ratio = {crn:.1f}")


# ------------------------------------------------------- 5. confidence intervals cover
COVERAGE_REPLICATIONS = 5


def coverage(n_comparisons: int, market_size: int) -> tuple[int, float, np.ndarray]:
    """Comparisons with seeds 1000 .. 1000 + n - 1 of the baseline checkout against hidden
    fees removed: how many paired 95% intervals of ``checkout.abandonment_rate`` contain
    p1 - p0, the difference of the configs' exact ``spec.checkout.abandon_prob``.

    Why the expectation is known: with the retention model off and no advocates (so no word
    of mouth, referrals or social proof), nothing after the checkout feeds back into who
    reaches it, and every customer's checkout uniform is drawn from their own stream, so
    both configs have the same entries and the abandonment rate is abandonments / entries
    where each entry abandons independently with probability p. Given N entries its
    expectation is p (minus p x the share still in the 0.01-day checkout at the horizon,
    about 1e-4), and the paired difference's expectation is p1 - p0.
    """
    cfg0 = copy.deepcopy(composed(None, "baseline"))
    cfg0.market.size, cfg0.run.horizon_days = market_size, 120
    cfg0.retention.model = "none"
    cfg0.advocacy.advocate_prob = 0.0
    cfg1 = copy.deepcopy(cfg0)
    cfg1.checkout.hidden_fees = False
    p0, p1 = build_spec(cfg0).checkout.abandon_prob, build_spec(cfg1).checkout.abandon_prob
    reps = range(COVERAGE_REPLICATIONS)
    covered, base_rates = 0, []
    for k in range(n_comparisons):
        cfg0.run.seed = cfg1.run.seed = 1000 + k
        e0, e1 = run_experiment(build_spec(cfg0), reps), run_experiment(build_spec(cfg1), reps)
        assert np.array_equal(e0.metric("checkout.entries"), e1.metric("checkout.entries"))
        p = mstats.paired(e0.metrics, e1.metrics, "checkout.abandonment_rate")
        covered += p["difference_low"] <= p1 - p0 <= p["difference_high"]
        base_rates.append(e0.metric("checkout.abandonment_rate"))
    return covered, p0, np.concatenate(base_rates)


def assert_coverage(covered: int, n: int, p0: float, base_rates: np.ndarray) -> None:
    # intervals with exact 95% coverage give Binomial(n, 0.95) hits: allow 4 of its SEs
    band = 4 * math.sqrt(0.95 * 0.05 / n)
    print(f"coverage: {covered} of {n} paired 95% intervals contain p1 - p0")
    assert abs(covered / n - 0.95) <= band, (
        f"{covered} of {n} paired 95% intervals contain p1 - p0; allowed 0.95 +- {band:.3f} "
        f"(seeds 1000 .. {1000 + n - 1})")
    # and the metric's own expectation is p0: within 4 standard errors of the mean
    se = base_rates.std(ddof=1) / math.sqrt(base_rates.size)
    assert abs(base_rates.mean() - p0) <= 4 * se, (base_rates.mean(), p0, se)


@pytest.mark.quick_version_of("test_paired_intervals_cover_a_known_difference")
def test_paired_intervals_cover_a_known_difference_fast() -> None:
    """40 comparisons: coverage within 0.95 +- 0.138 (at least 33 of 40); skipped when the
    slow tests run."""
    n = 40
    covered, p0, rates = coverage(n, market_size=1500)
    assert_coverage(covered, n, p0, rates)


@pytest.mark.slow
def test_paired_intervals_cover_a_known_difference() -> None:
    """200 comparisons: coverage within 0.95 +- 0.062 (a market of 1,500: the interval's
    coverage does not depend on the size, and half the size halves the time)."""
    n = 200
    covered, p0, rates = coverage(n, market_size=1500)
    assert_coverage(covered, n, p0, rates)


# ------------------------------------------------------ 6. whatever the number of workers
def assert_same_experiment(a: ExperimentResult, b: ExperimentResult) -> None:
    assert a.n_replications == b.n_replications
    pd.testing.assert_frame_equal(pd.DataFrame(a.metrics), pd.DataFrame(b.metrics),
                                  check_exact=True)
    for i, (ra, rb) in enumerate(zip(a.results, b.results, strict=True)):
        assert ra.replication == rb.replication == i
        for table in ("customers", "events", "abandonments", "purchases", "referrals",
                      "tickets"):
            assert tables_equal(getattr(ra, table), getattr(rb, table)), (i, table)
        assert np.array_equal(ra.spend_per_day, rb.spend_per_day)
        pd.testing.assert_frame_equal(a.events(i), b.events(i), check_exact=True)


def test_results_identical_whatever_n_jobs() -> None:
    one = api.run(overrides=[*SMOKE, "run.replications=3", "run.n_jobs=1"]).experiment
    two = api.run(overrides=[*SMOKE, "run.replications=3", "run.n_jobs=2"]).experiment
    assert_same_experiment(one, two)


# ------------------------------------------------------ 7. precision-driven replications
def precise(values_: np.ndarray, target: float) -> bool:
    e = estimate(values_)
    return e.half_width <= target * abs(e.mean)


def precision_run(target: float, max_replications: int = 60, n_jobs: int = 1) -> api.Run:
    return api.run(overrides=[*SMOKE, f"run.target_rel_half_width={target}",
                              "run.precision_metric=purchases",
                              f"run.max_replications={max_replications}",
                              f"run.n_jobs={n_jobs}"])


@pytest.mark.parametrize("target", [0.2, 0.1, 0.07])
def test_precision_target_is_met_when_replications_stop(target: float) -> None:
    result = precision_run(target)
    n = result.experiment.n_replications
    x = result.experiment.metric("purchases")
    assert 2 <= n < 60  # smoke starts with 2 replications; these targets need fewer than 60
    assert precise(x, target), (n, estimate(x))
    e = result.summary["purchases"]
    assert e.n == n and e.half_width <= target * abs(e.mean)


@pytest.mark.parametrize("target", [0.1])
def test_precision_stops_at_the_first_sufficient_replication(target: float) -> None:
    """Seed SEED, smoke size, precision metric purchases."""
    result = precision_run(target)
    n = result.experiment.n_replications
    x = result.experiment.metric("purchases")
    assert precise(x, target)
    if n > 2:  # more than the 2 replications run.smoke starts with
        assert not precise(x[:-1], target), (
            f"stopped at {n} replications, but {n - 1} already met the target {target}")


def test_precision_driven_results_identical_whatever_n_jobs() -> None:
    one, three = precision_run(0.2, n_jobs=1), precision_run(0.2, n_jobs=3)
    n_one, n_three = one.experiment.n_replications, three.experiment.n_replications
    assert n_one == n_three, f"{n_one} replications with n_jobs=1, {n_three} with n_jobs=3"
    assert_same_experiment(one.experiment, three.experiment)


def test_max_replications_caps_precision_driven_runs() -> None:
    result = precision_run(0.001, max_replications=5)  # a target no small run can meet
    assert result.experiment.n_replications == 5
    assert not precise(result.experiment.metric("purchases"), 0.001)


def test_bad_precision_metric_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"run\.precision_metric") as err:
        api.run(overrides=[*SMOKE, "run.target_rel_half_width=0.1",
                           "run.precision_metric=no_such_metric"])
    assert "no_such_metric" in str(err.value)


def test_comparison_uses_the_baselines_replication_count() -> None:
    result = api.compare(["guest_checkout"], overrides=[
        *SMOKE, "run.target_rel_half_width=0.2", "run.precision_metric=purchases"])
    n = result.replications
    assert n >= 2
    assert result.runs["guest_checkout"].experiment.n_replications == n
    assert (result.table["replications"] <= n).all()
    assert precise(result.runs["baseline"].experiment.metric("purchases"), 0.2)


# ------------------------------------------------------------------------- 8. the CLI
def load(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text())


def ranking_rows(stdout: str) -> list[tuple[int, str]]:
    """(rank, scenario) of the printed ranking table, in printed order (the other tables
    start with the scenario, not the rank)."""
    return [(int(m[1]), m[2]) for m in re.finditer(r"^(\d+) +(\w+) ", stdout, re.M)]


CLI_OPTIONS = ("remove_hidden_fees", "seo", "loyalty_program")  # a comparison of several


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compare_cli")


@pytest.fixture(scope="module")
def cli_compare(cli_dir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = cli_dir / "compare"
    proc = run_py(cli_dir, "-m", "sim", "run=smoke", f"compare=[{','.join(CLI_OPTIONS)}]",
                  f"hydra.run.dir={out}")
    return proc, out


def test_cli_compare_writes_table_plot_and_metrics(cli_compare) -> None:
    proc, out = cli_compare
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("comparison.csv", "comparison.md", "metrics.json", "comparison.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "comparison.csv")
    assert set(table["scenario"]) == set(CLI_OPTIONS)
    assert set(table["metric"]) == set(mstats.HEADLINE)
    doc = load(out)
    assert doc["rank_by"] == "npv"
    assert doc["replications"] == 2  # run=smoke
    assert set(doc["per_replication"]) == {"baseline", *CLI_OPTIONS}
    assert doc["scenarios"]["seo"]  # the description
    crn = doc["crn_variance_ratio"]
    assert set(crn) == set(CLI_OPTIONS)
    for ratios in crn.values():
        assert set(ratios) == set(mstats.HEADLINE)
    # the ranking: printed best first, by the NPV difference
    npv = table[table["metric"] == "npv"].set_index("scenario")["difference"]
    expected = list(npv.sort_values(ascending=False).index)
    rows = ranking_rows(proc.stdout)
    assert rows == [(i + 1, name) for i, name in enumerate(expected)], proc.stdout
    assert "ranked by the difference in npv" in proc.stdout


def test_cli_compare_console_fits_100_columns_and_holds_comparison_md(cli_compare) -> None:
    """The console's tables fit a 100-column terminal; comparison.md keeps the one wide
    Markdown table, and every value in it is printed."""
    proc, out = cli_compare
    assert proc.returncode == 0, proc.stderr
    wide = [line for line in proc.stdout.splitlines() if len(line) > CONSOLE_WIDTH]
    assert not wide, wide
    rows = [line for line in (out / "comparison.md").read_text().splitlines()
            if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(CLI_OPTIONS)
    for row in rows:
        for cell in row.strip("|").split(" | "):
            assert cell.strip() in proc.stdout, (cell, proc.stdout)
    assert " pp [" in proc.stdout  # differences of shares in percentage points


@pytest.mark.slow
def test_cli_compare_unknown_scenario_fails_cleanly(cli_dir: Path) -> None:
    proc = run_py(cli_dir, "-m", "sim", "run=smoke", "compare=nonexistent",
                  f"hydra.run.dir={cli_dir / 'bad'}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "compare" in proc.stderr and "nonexistent" in proc.stderr, proc.stderr
    assert not (cli_dir / "bad" / "comparison.csv").exists()


@pytest.mark.slow
def test_cli_compare_rank_changes_the_ranking_metric(cli_dir: Path) -> None:
    out = cli_dir / "rank"
    proc = run_py(cli_dir, "-m", "sim", "run=smoke", "compare=[remove_hidden_fees,seo]",
                  "compare_rank=ltv.mean", "run.plots=false", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    assert load(out)["rank_by"] == "ltv.mean"
    assert "ranked by the difference in ltv.mean" in proc.stdout
    table = pd.read_csv(out / "comparison.csv")
    ltv = table[table["metric"] == "ltv.mean"].set_index("scenario")["difference"]
    expected = list(ltv.sort_values(ascending=False).index)
    assert ranking_rows(proc.stdout) == [(1, expected[0]), (2, expected[1])], proc.stdout
    ranks = table.groupby("scenario")["rank"].first()
    assert [ranks[s] for s in expected] == [1, 2]


@pytest.fixture(scope="module")
def sweep(cli_dir: Path) -> Path:
    folder = cli_dir / "sweep"
    proc = run_py(cli_dir, "-m", "sim", "-m", "run=smoke", "run.plots=false",
                  "scenario=baseline,seo,guest_checkout", f"hydra.sweep.dir={folder}")
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.mark.slow
def test_multirun_report_matches_compare(cli_dir: Path, sweep: Path) -> None:
    report = run_py(cli_dir, "-m", "sim.report", str(sweep))
    assert report.returncode == 0, report.stderr
    for name in ("comparison.csv", "comparison.md", "metrics.json", "comparison.png"):
        assert (sweep / name).exists(), name
    assert ranking_rows(report.stdout)
    out = cli_dir / "compare_same"
    proc = run_py(cli_dir, "-m", "sim", "run=smoke", "run.plots=false",
                  "compare=[seo,guest_checkout]", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    from_sweep = pd.read_csv(sweep / "comparison.csv")
    direct = pd.read_csv(out / "comparison.csv")
    pd.testing.assert_frame_equal(from_sweep, direct, check_exact=True)
    # the finance table too, horizon and discount rate read from each job's metrics.json
    pd.testing.assert_frame_equal(pd.read_csv(sweep / "finance.csv"),
                                  pd.read_csv(out / "finance.csv"), check_exact=True)
    assert pd.read_csv(sweep / "finance.csv")["horizon_days"].notna().all()
    assert (sweep / "comparison.md").read_text() == (out / "comparison.md").read_text()
    assert load(sweep)["crn_variance_ratio"] == load(out)["crn_variance_ratio"]


@pytest.mark.slow
def test_report_without_baseline_exits_2(cli_dir: Path, sweep: Path) -> None:
    folder = cli_dir / "no_baseline"
    for job in sweep.iterdir():
        if job.is_dir() and "scenario=baseline" not in job.name:
            shutil.copytree(job, folder / job.name)
    assert len(list(folder.glob("*/metrics.json"))) == 2
    proc = run_py(cli_dir, "-m", "sim.report", str(folder))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "baseline" in proc.stderr, proc.stderr
    assert not (folder / "comparison.csv").exists()


@pytest.mark.slow
def test_report_refuses_a_sweep_with_an_unfinished_job(cli_dir: Path, sweep: Path) -> None:
    """A Hydra job folder (``.hydra/``, tables) without its metrics.json, which a run writes
    last, was stopped: refused, not merged as a sweep of fewer scenarios."""
    folder = cli_dir / "unfinished"
    for job in sweep.iterdir():
        if job.is_dir():
            shutil.copytree(job, folder / job.name)
    stopped = next(p for p in sorted(folder.iterdir()) if "scenario=seo" in p.name)
    assert (stopped / ".hydra").is_dir() and (stopped / "customers.csv").exists()
    (stopped / "metrics.json").unlink()
    proc = run_py(cli_dir, "-m", "sim.report", str(folder))
    assert proc.returncode == 2
    assert proc.stderr == (f"error: {stopped}: incomplete (no metrics.json: the job was "
                           "stopped before it finished); rerun it or remove the folder\n")
    assert not (folder / "comparison.csv").exists()


@pytest.mark.slow
def test_report_marks_its_own_folder_finished(cli_dir: Path, sweep: Path) -> None:
    """The report writes its metrics.json last, into the sweep folder and nowhere else."""
    from sim import io

    report = run_py(cli_dir, "-m", "sim.report", str(sweep), "--no-plots")
    assert report.returncode == 0, report.stderr
    assert io.is_complete(sweep)
    written = {p.name: p.stat().st_mtime_ns for p in sweep.iterdir() if p.is_file()}
    page = written.pop("report.html")  # the page showing the outputs: after them
    assert written["metrics.json"] == max(written.values()) <= page
    assert all(io.is_complete(job) for job in sweep.iterdir() if job.is_dir())


# the interval itself: the t interval of the replication-by-replication differences
def test_paired_interval_is_the_t_interval_of_the_differences(baseline_twice) -> None:
    base, _ = baseline_twice
    shifted = [{**m, "purchases": m["purchases"] + 10 + i} for i, m in enumerate(base)]
    p = mstats.paired(base, shifted, "purchases")
    d = np.array([10.0, 11.0, 12.0])
    hw = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    assert p["difference"] == pytest.approx(11.0, abs=1e-12)
    assert p["difference_low"] == pytest.approx(11.0 - hw, abs=1e-9)
    assert p["difference_high"] == pytest.approx(11.0 + hw, abs=1e-9)
    assert p["share_better"] == 1.0


# the interval of one scenario's metric, cut at the metric's range
@pytest.mark.parametrize(("name", "values", "cut"), [
    ("support.abandonment_rate", [0.0, 0.0, 0.0, 0.004], "low"),  # a share near 0
    ("support.wait_mean_minutes", [0.0, 0.0, 0.06], "low"),  # a duration near 0
    ("retention.3m", [1.0, 1.0, 0.98], "high"),  # a share near 1
    ("experience.purchase", [-2.0, -2.0, -1.9], "low"),  # a score near its floor
    ("npv", [-50.0, 10.0, 20.0], None),  # money can be negative: not cut
])
def test_interval_is_the_t_interval_cut_at_the_metric_range(name: str, values: list[float],
                                                            cut: str | None) -> None:
    x = np.array(values)
    hw = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    low, high = x.mean() - hw, x.mean() + hw
    lo, hi = metric_range(name)
    assert (low < lo) == (cut == "low") and (high > hi) == (cut == "high")  # the case's point
    e = estimate(x, 0.95, metric_range(name))
    assert e.half_width == pytest.approx(hw, rel=1e-12)
    assert e.low == pytest.approx(max(low, lo), rel=1e-12, abs=1e-15)
    assert e.high == pytest.approx(min(high, hi), rel=1e-12, abs=1e-15)
    summary = mstats.summarize(ExperimentResult(None, [], [{name: v} for v in values]))
    assert summary[name] == e  # the run summary (console, metrics.json, plots) cuts it too


def test_metric_ranges_cover_every_kind_of_metric(baseline_twice) -> None:
    """Shares, scores, nonnegative amounts and unbounded money all occur among the
    baseline's metrics (check_money in test_invariants checks every value lies in its range)."""
    base, _ = baseline_twice
    kinds = {metric_range(name) for name in base[0]}
    assert kinds == {(0.0, 1.0), (-2.0, 2.0), (0.0, math.inf), (-math.inf, math.inf)}
    assert metric_range("ltv.mean") == metric_range("profit") == (
        -math.inf, math.inf)

"""How much, and which setting: response curves, budget allocation and goal seeking
(``sim.decide.optimise``), against closed forms (REFERENCES.md, "Decisions") and invariants.

Every statistical comparison states its seed and allows ``K_SE`` standard errors, the
standard error derived from the replications (or from the metamodel's own covariance).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import test_oracles as orc

from sim.decide.optimise import (
    OutOfReach,
    annuity,
    curve_values,
    fit_surface,
    project,
    run_allocate,
    run_curves,
    run_seek,
    seek_range,
)
from sim.model.config import compose_config, to_container
from sim.model.spec import SpecError, build_spec

K_SE = 4.0


@pytest.fixture(scope="module")
def smoke() -> dict[str, Any]:
    return to_container(compose_config(["run=smoke"]))


# ------------------------------------------------------------------ pure pieces
def test_projection_lands_on_the_budget_within_bounds() -> None:
    rng = np.random.default_rng(5)
    lo, hi = np.array([0.0, 10.0, 0.0]), np.array([50.0, 60.0, 30.0])
    for _ in range(50):
        x = rng.uniform(-20, 100, 3)
        total = rng.uniform(lo.sum(), hi.sum())
        s = project(x, lo, hi, total)
        assert s.sum() == pytest.approx(total, abs=1e-8)
        assert np.all(s >= lo - 1e-12) and np.all(s <= hi + 1e-12)


def test_surface_recovers_a_quadratic_and_its_gradient() -> None:
    """y = level_r + 3 + 2 s0 - s1 + 0.5 s0 s1 - s0^2 (s scaled by 10), no noise: the fit is
    exact, whatever the replications' levels."""
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 20, (30, 2))
    x = s / 10
    f = 3 + 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 0] * x[:, 1] - x[:, 0] ** 2
    y = f[:, None] + np.array([0.0, 5.0, -2.0])[None, :]
    surface = fit_surface(s, y, 10.0)
    at = np.array([7.0, 4.0])
    xa = at / 10
    grad = np.array([2 + 0.5 * xa[1] - 2 * xa[0], -1 + 0.5 * xa[0]]) / 10
    g, se = surface.grad(at)
    assert g == pytest.approx(grad, abs=1e-9)
    assert np.all(se < 1e-6)


# ------------------------------------------------------------- budget allocation
def hill_config(make_config: Any, size: int = 20_000) -> dict[str, Any]:
    """Two channels with Hill saturation (exponent 1), no adstock, no organic reach; every
    aware person buys at once (a sure checkout after an instant stage) and no one else
    does, so first purchases count the aware: P(aware) = 1 - exp(-T sum_i h_i(S_i)), which
    is largest where the total reach sum_i R_i S_i / (S_i + K_i) is."""
    channels = {
        "one": {"max_reach_per_day": 0.002, "half_saturation_spend_per_day": 50.0,
                "hill_shape": 1.0, "spend_per_day": 50.0},
        "two": {"max_reach_per_day": 0.001, "half_saturation_spend_per_day": 20.0,
                "hill_shape": 1.0, "spend_per_day": 50.0},
    }
    stages = {"look": orc.stage("fixed", 0.0, exits={"checkout": 1.0})}
    cfg = orc.journey_config(make_config(), stages, size=size, channels=channels,
                             horizon_days=365.0, churn=False)
    cfg["run"]["replications"] = 4
    return cfg


def hill_optimum(r: np.ndarray, k: np.ndarray, budget: float) -> np.ndarray:
    lam = (budget + k.sum()) / np.sqrt(r * k).sum()
    return np.sqrt(r * k) * lam - k


def test_hill_closed_form_is_the_reference_value() -> None:
    s = hill_optimum(np.array([0.002, 0.001]), np.array([50.0, 20.0]), 100.0)
    assert s == pytest.approx([67.467, 32.533], abs=1e-3)


@pytest.mark.slow
def test_allocation_finds_the_hill_optimum(make_config) -> None:
    """Seed 20261206. The proposed split of 100 a day between the two channels is the
    closed form's (67.467, 32.533) within K_SE standard errors of the optimum's location,
    the SE from the final surface: the directional derivative's SE over its curvature along
    the budget line; and the two marginal ROIs at the answer agree within their intervals."""
    cfg = hill_config(make_config)
    cfg["run"]["seed"] = 20261206
    result = run_allocate(cfg, ["one", "two"], budget=100.0, objective="purchases",
                          design_points=16, rounds=3, replications=4, verify_replications=8,
                          seed=20261206, progress=False)
    target = hill_optimum(np.array([0.002, 0.001]), np.array([50.0, 20.0]), 100.0)
    got = result.proposed
    assert got.sum() == pytest.approx(100.0, abs=1e-6)
    # the objective along the budget line: N (1 - exp(-T H(S1, 100 - S1))); its curvature
    n, t = 20_000, 365.0

    def along(s1: float) -> float:
        h = 0.002 * s1 / (s1 + 50) + 0.001 * (100 - s1) / (100 - s1 + 20)
        return n * (1 - math.exp(-t * h))

    eps = 1.0
    curvature = abs(along(target[0] + eps) - 2 * along(target[0]) + along(target[0] - eps))
    table = result.table.set_index("channel")
    unit = annuity(cfg)
    # the directional derivative's SE, from the two marginal ROIs' interval half-widths
    half = (table["marginal_roi_high"] - table["marginal_roi"]) * unit
    se_dir = math.sqrt(float(((half / 1.96) ** 2).sum()))
    se_location = se_dir / curvature
    assert abs(got[0] - target[0]) <= K_SE * se_location + 1.0, (
        f"proposed {got}, closed form {target}, SE of the location {se_location:.2f}")
    lo = table["marginal_roi_low"].to_numpy()
    hi = table["marginal_roi_high"].to_numpy()
    assert max(lo) <= min(hi), f"marginal ROIs differ: {table[['marginal_roi']].T}"
    assert list(table["at_bound"]) == ["", ""]


def test_allocation_refuses_impossible_budgets(smoke) -> None:
    with pytest.raises(SpecError, match=r"allocate\.channels.*podcast"):
        run_allocate(smoke, ["search", "podcast"], progress=False)
    with pytest.raises(SpecError, match=r"allocate\.budget.*lowest spends \(150"):
        run_allocate(smoke, ["search", "social"], budget=100,
                     bounds={"search": [100, 200], "social": [50, 100]}, progress=False)
    with pytest.raises(SpecError, match=r"allocate\.bounds\.search.*lowest <= highest"):
        run_allocate(smoke, ["search", "social"], bounds={"search": [50, 10]},
                     progress=False)
    with pytest.raises(SpecError, match=r"allocate\.bounds\.email.*allocate\.channels"):
        run_allocate(smoke, ["search", "social"], bounds={"email": [0, 10]}, progress=False)
    with pytest.raises(SpecError, match=r"allocate\.design_points = 20: at least 21 for 5"):
        run_allocate(smoke, list(smoke["channels"]), design_points=20, progress=False)
    with pytest.raises(SpecError, match=r"allocate\.budget.*highest spends.*at_most"):
        run_allocate(smoke, ["search", "social"], budget=300,
                     bounds={"search": [0, 100], "social": [0, 100]}, progress=False)


def test_allocation_verifies_against_today(smoke) -> None:
    """The verification runs today's allocation and the proposal on replications the search
    did not see; its table holds the objective's paired difference, and the gain printed
    is that difference."""
    r = run_allocate(smoke, ["search", "paid_ads"], design_points=8, rounds=1, replications=2,
                     verify_replications=3, seed=3, progress=False)
    row = r.verification.set_index("metric").loc["npv_clv"]
    assert row["difference"] == pytest.approx(r.gain)
    assert row["low"] <= r.gain <= row["high"]
    assert r.proposed.sum() == pytest.approx(smoke["channels"]["search"]["spend_per_day"]
                                            + smoke["channels"]["paid_ads"]["spend_per_day"])
    assert r.n_runs == (8 + 1) * 2 + 2 * 3
    verify = r.runs[r.runs["round"].str.startswith("verify")]
    assert sorted(verify["replication"].unique()) == [2, 3, 4]  # after the search's 0, 1


# ------------------------------------------------------------------- goal seeking
def friction(cfg: dict[str, Any]) -> float:
    """The checkout's log-odds of abandoning minus its base_logit."""
    c = {**cfg, "checkout": {**cfg["checkout"], "base_logit": 0.0}}
    p = build_spec(c).checkout.abandon_prob
    return math.log(p / (1 - p))


@pytest.mark.parametrize("target", [0.45, 0.7])
def test_goal_seek_recovers_the_checkout_closed_form(make_config, target: float) -> None:
    """Seed 20261207. Every aware customer reaches the checkout (P_c = 1 within the
    horizon), abandons with logistic(base + friction) and is recovered with rho:
    conversion = 1 - A + A rho, so base* = logit((1 - c*) / (1 - rho)) - friction. The
    answer is within K_SE of its own standard error (its 95% interval's half-width / 1.96)
    of base*, and the metric reached is within K_SE SE of the target."""
    rho = 0.2
    cfg = orc.checkout_config(make_config(), size=20_000, recovery_prob=rho,
                              recovery_delay_days=1.0)
    a_star = (1 - target) / (1 - rho)
    base_star = math.log(a_star / (1 - a_star)) - friction(cfg)
    result = run_seek(cfg, "checkout.base_logit", "conversion_rate", target, -6.0, 6.0,
                      tolerance=0.005, replications=4, seed=20261207, progress=False)
    se = (result.high - result.low) / 2 / 1.96
    assert 0 < se < 0.2
    assert abs(result.value - base_star) <= K_SE * se, (
        f"seek gives {result.value:.4f} [{result.low:.4f}, {result.high:.4f}], closed form "
        f"{base_star:.4f}")
    assert result.slope < 0  # more friction, fewer purchases
    assert result.settings["converged"]


def test_goal_seek_out_of_reach_names_the_range(make_config) -> None:
    cfg = orc.checkout_config(make_config(), size=2_000, recovery_prob=0.2,
                              recovery_delay_days=1.0)
    with pytest.raises(OutOfReach) as err:
        run_seek(cfg, "checkout.base_logit", "conversion_rate", 0.1, -2.0, 2.0,
                 replications=2, seed=1, progress=False)
    message = str(err.value)
    assert "seek.target=0.1" in message and "out of reach" in message
    assert "ranges from 0.2" in message  # recovery alone converts 20 % of carts at least


def test_seek_range_checks_the_key(smoke) -> None:
    assert seek_range(smoke, "checkout.base_logit", -3, 3) == (-3.0, 3.0)
    with pytest.raises(SpecError, match=r"seek\.low = -0\.5.*in \[0, 1\]"):
        seek_range(smoke, "checkout.recovery_prob", -0.5, 0.5)
    with pytest.raises(SpecError, match=r"seek\.high.*above seek\.low"):
        seek_range(smoke, "checkout.base_logit", 2, 1)
    with pytest.raises(SpecError, match=r"seek\.key.*did you mean checkout\.base_logit"):
        run_seek(smoke, "checkout.base_logt", "conversion_rate", 0.05, -1, 1,
                 progress=False)


# ---------------------------------------------------------------- response curves
def test_more_agents_never_lengthen_the_wait(make_config) -> None:
    """Seed 11: on common random numbers the same tickets arrive at every number of agents,
    so the mean wait falls (or stays) as agents are added, replication by replication."""
    cfg = make_config("run=smoke", "support.issue_prob=0.9", "support.handling_mean_minutes=240")
    result = run_curves(cfg, {"support.agents": [1, 2, 3, 5]}, objective="npv_clv",
                        replications=3, seed=11, metrics=["support.wait_mean_minutes"],
                        progress=False)
    runs = result.runs[result.runs["metric"] == "support.wait_mean_minutes"]
    waits = runs.pivot_table(index="support.agents", columns="replication", values="value")
    assert waits.shape == (4, 3)
    assert waits.iloc[0].max() > 0.0  # one agent: customers wait (the test can fail)
    assert np.all(np.diff(waits.to_numpy(), axis=0) <= 1e-9), waits


def test_curves_identical_whatever_the_workers(smoke) -> None:
    key = "channels.search.spend_per_day"
    a = run_curves(smoke, {key: [0, 40, 80]}, replications=2, seed=5, n_jobs=1,
                   progress=False)
    b = run_curves(smoke, {key: [0, 40, 80]}, replications=2, seed=5, n_jobs=2,
                   progress=False)
    assert a.table.equals(b.table) and a.runs.equals(b.runs) and a.marginal.equals(b.marginal)


def test_curve_marginal_roi_is_net_of_the_spend(smoke) -> None:
    """A channel that reaches no one (max_reach 0): every extra unit of spend is lost, so
    the marginal ROI of npv is exactly -1 per discounted currency unit, and the NPV falls
    by the spend's present value, replication by replication."""
    cfg = {**smoke, "channels": {**smoke["channels"],
                                 "search": {**smoke["channels"]["search"],
                                            "max_reach_per_day": 0.0}}}
    result = run_curves(cfg, {"channels.search.spend_per_day": [0, 50, 100]},
                        objective="npv", replications=2, seed=2, progress=False)
    assert result.marginal["marginal"].to_numpy() == pytest.approx([-1.0, -1.0], abs=1e-9)
    assert "marginal ROI" in result.marginal["unit"].iloc[0]


def test_curve_values_default_and_checks(smoke) -> None:
    x = curve_values(smoke, "channels.search.spend_per_day", [], None, None, 5)
    assert x == pytest.approx(np.linspace(0, 2 * smoke["channels"]["search"]["spend_per_day"],
                                          5))
    with pytest.raises(SpecError, match=r"curve\.values = .*1\.5.*in \[0, 1\]"):
        curve_values(smoke, "checkout.recovery_prob", [0.1, 1.5], None, None, 5)
    with pytest.raises(SpecError, match=r"curve\.high.*above curve\.low"):
        curve_values(smoke, "checkout.base_logit", [], 1.0, 0.0, 5)


# -------------------------------------------------- the API, the files, the command line
def test_every_run_of_a_curve_reruns_as_an_ordinary_run(tmp_path) -> None:
    """A row of curve_runs.csv, its overrides added to the command's own, is an ordinary
    run with the same numbers (same streams: run.first_replication picks the replication)."""
    import pandas as pd

    import sim
    from sim.api import curves

    answer = curves(["channels.search.spend_per_day"],
                    overrides=["run=smoke", "curve.values=[0,80]", "run.replications=2"])
    written = {p.name for p in answer.write(tmp_path, plots=False)}
    assert {"curves.csv", "marginal.csv", "crossings.csv", "curve_runs.csv", "curves.md",
            "curves.json"} <= written
    runs = pd.read_csv(tmp_path / "curve_runs.csv")
    pick = (runs["metric"] == "npv_clv") & (runs["replication"] == 1)
    row = runs[pick].iloc[-1]
    exact = answer.runs[pick.to_numpy()].iloc[-1]["value"]  # the CSV keeps 6 digits
    assert row["value"] == pytest.approx(exact, rel=1e-5)
    again = sim.run(overrides=["run=smoke", *row["overrides"].split()])
    assert again.experiment.metrics[0]["npv_clv"] == exact
    table = pd.read_csv(tmp_path / "curves.csv")
    assert list(table.columns) == ["key", "value", "metric", "mean", "low", "high"]
    assert "simulation noise" in (tmp_path / "curves.md").read_text()


def test_one_analysis_per_command() -> None:
    from sim.api import check_task

    with pytest.raises(SpecError, match=r"seek\.key.*one analysis per command"):
        check_task(["run=smoke", "curve.keys=[checkout.base_logit]",
                    "seek.key=checkout.base_logit"])
    with pytest.raises(SpecError, match=r"psa\.draws.*one analysis per command"):
        check_task(["run=smoke", "curve.keys=[checkout.base_logit]", "psa.draws=8"])
    with pytest.raises(SpecError, match=r"compare.*scenario=NAME"):
        check_task(["run=smoke", "curve.keys=[checkout.base_logit]", "compare=[seo]"])
    with pytest.raises(SpecError, match=r"compare.*library"):
        check_task(["run=smoke", "portfolio.budget=100"])
    with pytest.raises(SpecError, match=r"seek\.target.*e\.g\. seek\.target"):
        check_task(["run=smoke", "seek.key=checkout.base_logit"])
    with pytest.raises(SpecError, match=r"allocate\.minimum\.sales.*metric name"):
        check_task(["run=smoke", "allocate.channels=[search]", "+allocate.minimum.sales=5"])
    assert check_task(["run=smoke"]) is None
    assert check_task(["run=smoke", "seek.key=checkout.base_logit", "seek.target=0.05"]) == "seek"


def test_cli_refuses_a_bad_allocation_before_running(tmp_path) -> None:
    from test_cli import outputs_in, run_cli

    out = tmp_path / "run"
    proc = run_cli(tmp_path, "run=smoke", "allocate.channels=[search,podcast]",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    assert "allocate.channels" in proc.stderr and "podcast" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert outputs_in(out) == []


def test_cli_goal_seek_out_of_reach_is_one_message(tmp_path) -> None:
    from test_cli import run_cli

    proc = run_cli(tmp_path, "run=smoke", "run.replications=2", "seek.key=checkout.base_logit",
                   "seek.target=0.9", "seek.low=-1", "seek.high=1",
                   f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: seek.target=0.9: out of reach")
    assert "ranges from" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_curve_writes_its_files_and_returns(tmp_path) -> None:
    from test_cli import run_cli

    out = tmp_path / "r"
    proc = run_cli(tmp_path, "run=smoke", "run.replications=2",
                   "curve.keys=[channels.email.spend_per_day]", "curve.values=[0,10]",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    assert "# Response curves" in proc.stdout
    for name in ("curves.csv", "curve_runs.csv", "response_curves.png", "response_metrics.png",
                 "curves.json"):
        assert (out / name).exists(), name


def test_seek_and_allocation_write_their_files(tmp_path) -> None:
    import json

    from sim.api import allocate, seek

    goal = seek("checkout.base_logit", "conversion_rate", 0.05,
                overrides=["run=smoke", "seek.low=-3", "seek.high=3", "seek.tolerance=0.05"])
    names = {p.name for p in goal.write(tmp_path / "seek")}
    assert {"seek.csv", "seek_runs.csv", "seek.md", "goal_seek.png", "seek.json"} <= names
    doc = json.loads((tmp_path / "seek" / "seek.json").read_text())
    assert doc["converged"] is True and doc["low"] <= doc["value"] <= doc["high"]
    plan = allocate(["search", "email"], overrides=[
        "run=smoke", "allocate.rounds=1", "allocate.design_points=6", "allocate.replications=2",
        "allocate.verify_replications=2"])
    names = {p.name for p in plan.write(tmp_path / "alloc")}
    assert {"allocation.csv", "allocation_verification.csv", "allocation_rounds.csv",
            "allocation_runs.csv", "allocation.md", "allocation.png",
            "allocation.json"} <= names
    assert "Recommendation" in (tmp_path / "alloc" / "allocation.md").read_text()

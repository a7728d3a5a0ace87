"""Decisions under uncertainty (sim.decide): studies, PSA, EVPI/EVPPI, tornado, Sobol.

Oracles (REFERENCES.md "Decisions"):
- EVPI of a choice between two options whose net benefit difference is normal equals the
  unit normal loss; built on the simulator with an option whose only difference from the
  baseline is an uncertain running cost: under common random numbers every customer's path
  is unchanged, so the NPV difference is exactly linear in the cost.
- Sobol indices of an output linear in independent uncertain costs equal the variance
  shares c_i^2 Var(X_i) / sum_j c_j^2 Var(X_j).
- EVPPI of every assumption together equals the EVPI, of an assumption that does not enter
  is about 0, never negative, never above the EVPI (within Monte Carlo error).
- A PSA with degenerate (point) distributions reproduces today's comparison exactly; a
  study's results are identical whatever n_jobs, block split or resume point.
- Tornado: swings monotone in the range for a monotone assumption; zero-width ranges give
  zero bars.

Statistical tests state their seed and derive their tolerance from the standard error.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim import api
from sim.decide import Study, StudyError, run_psa, run_sobol, run_study, run_tornado
from sim.decide.analysis import (
    acceptability,
    evpi,
    evppi,
    evppi_table,
    net_benefit,
    psa_summary,
    unit_normal_loss,
)
from sim.model.config import compose_config, to_container
from sim.model.uncertainty import read_uncertainty

SEED = 97
# a tiny, quick business: 300 people for 60 days (the oracles do not need more)
TINY = ["run=smoke", "market.size=300", "run.horizon_days=60", "uncertainty=none"]


@cache
def _tiny(*extra: str) -> dict[str, Any]:
    return to_container(compose_config([*TINY, *extra]))


def tiny(*extra: str) -> dict[str, Any]:
    return copy.deepcopy(_tiny(*extra))


def option_b(own: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, dict]:
    """The baseline and an option "b" that is the baseline with its own assumptions."""
    base = base if base is not None else tiny()
    b = copy.deepcopy(base)
    b["scenario"]["name"] = "b"
    b["scenario"]["uncertainty"] = own
    return {"baseline": base, "b": b}


# ------------------------------------------------------------------ closed forms
def test_unit_normal_loss_reference_value() -> None:
    """REFERENCES.md: mu = 1000, sigma = 2000 gives EVPI = 395.59."""
    assert unit_normal_loss(1000, 2000) == pytest.approx(395.59, abs=0.01)
    assert unit_normal_loss(-1000, 2000) == pytest.approx(395.59, abs=0.01)
    assert unit_normal_loss(5, 0) == 0


def test_evpi_and_summary_on_a_synthetic_normal_difference() -> None:
    """Two options, D = NB_b - NB_a ~ N(1000, 2000^2), 200,000 draws (seed SEED): EVPI
    within 4 standard errors of 395.59; the recommended option's expected loss is the EVPI;
    P(best) and P(beats) are the share of draws with D > 0; acceptability at a required
    return of 0 is P(best)."""
    rng = np.random.default_rng(SEED)
    n = 200_000
    a = rng.normal(5000, 300, n)
    d = rng.normal(1000, 2000, n)
    nb = pd.DataFrame({"baseline": a, "b": a + d})
    se = np.std(np.maximum(d, 0) - d) / math.sqrt(n)  # mu > 0: EVPI = E[max(D,0) - D]
    assert abs(evpi(nb) - 395.59) <= 4 * se
    s = psa_summary(nb).set_index("option")
    assert s.loc["b", "recommended"] and s.loc["b", "rank"] == 1
    assert s.loc["b", "expected_loss"] == pytest.approx(evpi(nb), rel=1e-9)
    assert s.loc["b", "prob_best"] == pytest.approx(np.mean(d > 0))
    assert s.loc["b", "prob_beats_reference"] == pytest.approx(np.mean(d > 0))
    assert s.loc["baseline", "prob_best"] == pytest.approx(np.mean(d <= 0))
    assert s.loc["b", "difference_low"] == pytest.approx(np.percentile(d, 2.5))
    cost = pd.DataFrame({"baseline": np.zeros(n), "b": np.full(n, 100.0)})
    acc = acceptability(nb, cost, returns=[0.0, 1e6])
    first = acc[acc["required_return"] == 0].set_index("option")["prob_best"]
    assert first["b"] == pytest.approx(np.mean(d > 0))
    # an enormous required return: the option that needs no money wins every draw
    last = acc[acc["required_return"] == 1e6].set_index("option")["prob_best"]
    assert last["baseline"] == 1.0


def test_evppi_properties_on_synthetic_draws() -> None:
    """NB difference D = 300 x1 - 100 x2 + 50 (x1, x2 standard normal, x3 does not enter),
    2,000 draws (seed SEED): EVPPI(x1, x2 together) = EVPI up to the fit; EVPPI(x3) about 0;
    every EVPPI in [0, EVPI + 4 SE]; EVPPI(x1) > EVPPI(x2). SE: the EVPI's Monte Carlo
    standard error, sd(max(D, 0) - D) / sqrt(n)."""
    rng = np.random.default_rng(SEED)
    n = 2000
    x = rng.normal(size=(n, 3))
    d = 300 * x[:, 0] - 100 * x[:, 1] + 50
    nb = pd.DataFrame({"baseline": np.zeros(n), "b": d})
    points = pd.DataFrame(x, columns=["x1", "x2", "x3"])
    total = evpi(nb)
    se = np.std(np.maximum(d, 0) - d) / math.sqrt(n)
    assert evppi(nb, x[:, :2], "baseline") == pytest.approx(total, rel=1e-6)
    assert evppi(nb, x[:, 2], "baseline") <= 4 * se
    table = evppi_table(nb, points, "baseline", {"x1 and x2": ["x1", "x2"]}).set_index(
        "assumptions")
    assert (table["evppi"] >= 0).all() and (table["evppi"] <= total + 4 * se).all()
    assert table.loc["x1", "evppi"] > table.loc["x2", "evppi"]
    assert table.loc["x1 and x2", "share_of_evpi"] == pytest.approx(1.0, rel=1e-6)


# ------------------------------------------------------------------ on the simulator
def linear_cost_options(mu: float, sigma: float) -> tuple[dict[str, dict], Any]:
    """The baseline costs 100 a day; option "b" costs c ~ N(mu, sigma^2) a day instead (its
    own assumption), nothing else differs."""
    base = tiny("scenario.cost_per_day=100")
    cfgs = option_b({"scenario": {"cost_per_day": {"dist": "normal", "mean": mu,
                                                   "sd": sigma}}}, base)
    return cfgs, read_uncertainty(cfgs)


def discounted_days(cfg: dict[str, Any]) -> float:
    """The NPV of one currency unit a day over the horizon: the annuity the engine uses."""
    from sim.model.spec import build_spec

    spec = build_spec(cfg)
    days, delta = spec.horizon_days, spec.discount_rate_per_day
    return -math.expm1(-delta * days) / delta if delta > 0 else days


@pytest.mark.slow
def test_evpi_on_the_simulator_equals_the_unit_normal_loss() -> None:
    """256 Sobol' draws (seed SEED), one replication each. The NPV difference is exactly
    -k (c - 100) on every draw (common random numbers: no customer's path changes), k
    measured, and the PSA's EVPI agrees with the unit normal loss of N(k (100 - mu), k sigma)
    within 4 Monte Carlo standard errors of the EVPI estimate."""
    mu, sigma, n = 97.0, 6.0, 256
    cfgs, u = linear_cost_options(mu, sigma)
    res = run_psa(cfgs, u, n, SEED, progress=False)
    nb = net_benefit(res.runs)
    d = (nb["b"] - nb["baseline"]).to_numpy()
    c = res.points["b:scenario.cost_per_day"].to_numpy()
    k = -d / (c - 100.0)
    assert np.allclose(k, k[0], rtol=1e-6), "the NPV difference is not linear in the cost"
    # the engine's NPV charges the running cost continuously discounted
    assert k[0] == pytest.approx(discounted_days(cfgs["b"]), rel=1e-3)
    expected = unit_normal_loss(k[0] * (100 - mu), k[0] * sigma)
    se = np.std(np.maximum(d, 0) - d) / math.sqrt(n)
    assert abs(res.evpi - expected) <= 4 * se, (res.evpi, expected, se)
    # EVPPI of the only assumption is the EVPI
    assert res.evppi["evppi"].iloc[0] == pytest.approx(res.evpi, rel=1e-6)


def test_psa_with_point_distributions_reproduces_the_comparison() -> None:
    """Point distributions at the keys' own values: draw d of option o is replication d of
    o in today's comparison, metric for metric."""
    overrides = [*TINY]
    cfgs = {"baseline": tiny(), "remove_hidden_fees": tiny("scenario=remove_hidden_fees")}
    for c in cfgs.values():
        c["uncertainty"] = {"checkout": {"weights": {"hidden_fees": {"dist": "point",
                                                                     "value": 0.6}}}}
        c["scenario"]["uncertainty"] = {"scenario": {"cost_per_day": {
            "dist": "point", "value": c["scenario"]["cost_per_day"]}}}
    u = read_uncertainty(cfgs)
    assert len(u) == 3
    res = run_psa(cfgs, u, 3, cfgs["baseline"]["run"]["seed"], progress=False)
    comp = api.compare(["remove_hidden_fees"], overrides=[*overrides, "run.replications=3"])
    for option, run in comp.runs.items():
        got = res.runs[res.runs["option"] == option].sort_values("point")
        for metric in ("npv", "purchases", "revenue", "costs.intervention"):
            assert got[metric].tolist() == run.experiment.metric(metric).tolist(), metric


def small_study(**kw: Any) -> Study:
    cfgs = option_b({"scenario": {"cost_per_day": {"dist": "uniform", "low": 0,
                                                   "high": 20}}})
    cfgs["baseline"]["uncertainty"] = cfgs["b"]["uncertainty"] = {
        "checkout": {"weights": {"hidden_fees": {"dist": "uniform", "low": 0.3,
                                                 "high": 0.9}}}}
    u = read_uncertainty(cfgs)
    return Study(cfgs, u, u.sample(4, SEED), replications=2, seed=SEED, **kw)


def test_a_study_is_the_same_whatever_n_jobs_and_resume_point(tmp_path: Path) -> None:
    study = small_study()
    one = run_study(study, n_jobs=1, progress=False)
    two = run_study(study, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    # with a journal, then cut short after 5 runs and a half-written line
    journal = tmp_path / "runs.partial.jsonl"
    pd.testing.assert_frame_equal(run_study(study, journal=journal, progress=False), one,
                                  check_exact=True)
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + len(one)
    journal.write_text("\n".join(lines[:6]) + "\n" + lines[6][:20])
    resumed = run_study(study, n_jobs=2, journal=journal, progress=False)
    pd.testing.assert_frame_equal(resumed, one, check_exact=True)
    # the journal of another study is refused, not mixed in
    other = small_study(streams="shared")
    with pytest.raises(StudyError, match="another study"):
        run_study(other, journal=journal, progress=False)


def test_a_psa_split_into_blocks_is_the_psa() -> None:
    cfgs = small_study().configs
    u = read_uncertainty(cfgs)
    whole = run_psa(cfgs, u, 6, SEED, replications=1, progress=False).runs
    parts = pd.concat([run_psa(cfgs, u, 6, SEED, replications=1, block=k, blocks=2,
                               progress=False).runs for k in (0, 1)])
    parts = parts.sort_values(["point", "option", "replication"], kind="stable")
    whole = whole.sort_values(["point", "option", "replication"], kind="stable")
    pd.testing.assert_frame_equal(parts.reset_index(drop=True), whole.reset_index(drop=True),
                                  check_exact=True)


def test_per_point_streams_differ_and_shared_streams_are_paired() -> None:
    per = small_study()
    assert [per.replication_of(p, r) for p in range(3) for r in range(2)] == [0, 1, 2, 3, 4, 5]
    shared = small_study(streams="shared")
    assert {shared.replication_of(p, 1) for p in range(3)} == {1}


def test_tornado_swings_exact_for_a_linear_cost_and_zero_for_zero_width() -> None:
    """Option b's cost is uniform(lo, hi): the difference is exactly -k c, so the swing is
    k (P90 - P10) = k 0.8 (hi - lo): wider range, wider swing; a zero-width range, no swing
    at all (and the base point is the comparison at the config's values)."""
    base = tiny()
    k = discounted_days(base)
    swings = []
    for half in (0.0, 2.0, 5.0):
        cfgs = option_b({"scenario": {"cost_per_day": {"dist": "uniform", "low": 10 - half,
                                                       "high": 10 + half}}}, base)
        u = read_uncertainty(cfgs)
        table, _ = run_tornado(cfgs, u, "b", "baseline", SEED, 2, progress=False)
        swings.append(float(table["swing"].iloc[0]))
        assert table["swing"].iloc[0] == pytest.approx(k * 0.8 * 2 * half, rel=1e-3, abs=1e-6)
    assert swings[0] == 0.0 and swings[0] < swings[1] < swings[2]


@pytest.mark.slow
def test_sobol_indices_of_a_linear_output() -> None:
    """Option b pays cost_per_day X1 and, for each of its 2 agents, cost_per_agent X2 (both
    uniform(0, 1)); X3 (the loyalty multiplier, programme off) does not enter. NPV
    difference = -k (X1 + 2 X2): S = (0.2, 0.8, 0) (REFERENCES.md). Saltelli's estimator
    with n = 256 (seed SEED): each index within 4 bootstrap standard errors (the 95%
    interval's width / 3.92) plus 0.01 of the truth; the noise share is 0 (costs change no
    customer's path)."""
    base = tiny("support.agents=2", "support.cost_per_agent_per_day=0")
    own = {"scenario": {"cost_per_day": {"dist": "uniform", "low": 0, "high": 1}},
           "support": {"cost_per_agent_per_day": {"dist": "uniform", "low": 0, "high": 1}},
           "loyalty": {"rate_multiplier": {"dist": "uniform", "low": 1, "high": 2}}}
    cfgs = option_b(own, base)
    u = read_uncertainty(cfgs)
    table = run_sobol(cfgs, u, "b", "baseline", SEED, 256, progress=False).set_index(
        "assumption")
    truth = {"b:scenario.cost_per_day": 0.2, "b:support.cost_per_agent_per_day": 0.8,
             "b:loyalty.rate_multiplier": 0.0}
    for name, s in truth.items():
        for kind, lo, hi in (("first_order", "first_low", "first_high"),
                             ("total_order", "total_low", "total_high")):
            se = (table.loc[name, hi] - table.loc[name, lo]) / 3.92
            assert abs(table.loc[name, kind] - s) <= 4 * se + 0.01, (name, kind, table)
    assert table.loc["simulation noise", "first_order"] == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ the command line
def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.mark.slow
def test_cli_refuses_bad_psa_input_before_running(tmp_path: Path) -> None:
    no_options = run_cli("psa.draws=4", "run=smoke", cwd=tmp_path)
    assert no_options.returncode == 2 and "compare=[" in no_options.stderr
    bad = run_cli("psa.draws=4", "run=smoke", "compare=[seo]",
                  "+uncertainty.loyalty.enrol_prob={dist:uniform,low:0.5,high:2}",
                  cwd=tmp_path)
    assert bad.returncode == 2, bad.stderr
    assert "uncertainty.loyalty.enrol_prob" in bad.stderr and "[0, 1]" in bad.stderr
    ref = run_cli("psa.draws=4", "run=smoke", "compare=[seo]", "psa.reference=sseo",
                  cwd=tmp_path)
    assert ref.returncode == 2 and "psa.reference" in ref.stderr
    assert not list(tmp_path.rglob("psa.json"))


@pytest.mark.slow
def test_cli_writes_the_psa(tmp_path: Path) -> None:
    """A small PSA end to end: every file, tables loadable with one header row, psa.json
    last with the settings."""
    out = tmp_path / "psa"
    done = run_cli("psa.draws=8", *TINY[:-1], "compare=[remove_hidden_fees,seo]",
                   f"hydra.run.dir={out}", "run.replications=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recommended:" in done.stdout and "cover the assumptions' uncertainty" in done.stdout
    for name in ("psa_runs.csv", "psa_summary.csv", "acceptability.csv", "evppi.csv",
                 "tornado.csv", "psa.md", "psa_cloud.png", "acceptability.png", "evppi.png",
                 "tornado.png", "psa.json"):
        assert (out / name).is_file(), name
    runs = pd.read_csv(out / "psa_runs.csv")
    assert {"point", "option", "replication", "metric", "value",
            "checkout.weights.hidden_fees"} <= set(runs.columns)
    assert runs["point"].nunique() == 8 and runs["option"].nunique() == 3
    summary = pd.read_csv(out / "psa_summary.csv")
    assert summary["prob_best"].sum() == pytest.approx(1.0)
    doc = json.loads((out / "psa.json").read_text())
    assert doc["draws"] == 8 and doc["seed"] == 20261123 and doc["assumptions"]
    assert not list(out.glob("*.partial.jsonl"))
    md = (out / "psa.md").read_text()
    assert "**Recommendation:" in md and "What to research first" in md


def test_normal_loss_matches_scipy_expectation() -> None:
    """The unit normal loss against a direct numerical expectation of max(D, 0)."""
    for mu, sigma in ((1000, 2000), (-300, 100), (0, 50)):
        direct = stats.norm(mu, sigma).expect(lambda x: max(x, 0.0)) - max(mu, 0)
        assert unit_normal_loss(mu, sigma) == pytest.approx(direct, rel=1e-6, abs=1e-9)


def test_any_option_can_be_the_reference_of_a_comparison(tmp_path: Path) -> None:
    """compare(..., reference=a scenario): every other option (the baseline too) against
    it, the difference paired replication by replication; and the text says what the
    intervals cover."""
    from sim.present.text import NOISE_ONLY, format_comparison

    comp = api.compare(["remove_hidden_fees", "guest_checkout"],
                       overrides=[*TINY, "run.replications=3"], reference="guest_checkout")
    assert comp.reference == "guest_checkout"
    assert set(comp.table["scenario"]) == {"baseline", "remove_hidden_fees"}
    ref = comp.runs["guest_checkout"].experiment.metric("npv")
    for option in ("baseline", "remove_hidden_fees"):
        row = comp.table[(comp.table["scenario"] == option) & (comp.table["metric"] == "npv")]
        d = comp.runs[option].experiment.metric("npv") - ref
        assert row["difference"].iloc[0] == pytest.approx(d.mean(), rel=1e-12)
    text = format_comparison(comp.table, "npv", 3, comp.reference)
    assert "against 'guest_checkout'" in text and NOISE_ONLY in text
    with pytest.raises(api.SpecError, match="compare_reference"):
        api.check_comparison(["seo"], TINY, reference="guest_checkout")


def test_blocks_of_a_psa_merged_by_sim_report_are_the_psa(tmp_path: Path) -> None:
    """A PSA split into two blocks (two job folders), merged by ``python -m sim.report``:
    the same runs and the same summary as the PSA run whole; a missing block is refused."""
    from sim import report
    from sim.decide.psa import summarise_psa
    from sim.present.text import write_psa

    cfgs = small_study().configs
    u = read_uncertainty(cfgs)
    whole = run_psa(cfgs, u, 6, SEED, progress=False)
    for k in (0, 1):
        part = run_psa(cfgs, u, 6, SEED, block=k, blocks=2, progress=False)
        write_psa(part, tmp_path / "psa" / f"{k}_psa.block={k}", plots=False)
    runs, points, settings = report.collect_psa(tmp_path / "psa")
    cols = ["point", "option", "replication", "npv", "purchases", "costs.intervention"]
    pd.testing.assert_frame_equal(runs[cols].reset_index(drop=True),
                                  whole.runs[cols].reset_index(drop=True), check_dtype=False,
                                  rtol=1e-5)  # the CSV keeps 6 significant digits
    merged = summarise_psa(runs, points, settings)
    assert list(merged.summary["option"]) == list(whole.summary["option"])
    assert merged.summary["prob_best"].tolist() == whole.summary["prob_best"].tolist()
    assert report.main([str(tmp_path / "psa"), "--no-plots"]) == 0
    assert (tmp_path / "psa" / "psa_summary.csv").is_file()
    assert json.loads((tmp_path / "psa" / "psa.json").read_text())["merged_from"] == 2
    # one block missing
    (tmp_path / "psa" / "1_psa.block=1" / "psa.json").unlink()
    (tmp_path / "psa" / "1_psa.block=1" / "psa_runs.csv").unlink()
    with pytest.raises(report.ReportError, match=r"blocks \[1\] missing"):
        report.collect_psa(tmp_path / "psa")


def test_metrics_table_counts_better_in_each_metrics_direction() -> None:
    """Synthetic runs: b has a higher NPV in 3 of 4 draws and a lower (better) CAC in 1."""
    from sim.decide.analysis import metrics_table

    rows = []
    for p, (npv_b, cac_b) in enumerate([(5, 9), (6, 11), (7, 12), (-1, 13)]):
        rows.append({"point": p, "option": "baseline", "replication": p, "npv": 0.0,
                     "cac": 10.0})
        rows.append({"point": p, "option": "b", "replication": p, "npv": float(npv_b),
                     "cac": float(cac_b)})
    table = metrics_table(pd.DataFrame(rows), metrics={"npv": True, "cac": False})
    t = table.set_index(["option", "metric"])
    assert t.loc[("b", "npv"), "prob_better"] == 0.75
    assert t.loc[("b", "cac"), "prob_better"] == 0.25
    assert t.loc[("b", "npv"), "difference"] == pytest.approx(4.25)
    assert math.isnan(t.loc[("baseline", "npv"), "prob_better"])


def test_evppi_does_not_depend_on_the_units_of_the_assumption() -> None:
    """A reach of 0.0004-0.0008 a day and the same draws in [0, 1] give the same EVPPI (the
    smoother works on a standard scale; unscaled, its cross-validation fails on such
    units), and an NPV in millions the same share of the EVPI. Seed SEED. The x scales
    differ by rounding only, which can move the cross-validation's optimum within its own
    tolerance: 0.1 % allowed."""
    rng = np.random.default_rng(SEED)
    n = 256
    u = rng.uniform(size=n)
    d = 4000 * (u - 0.4) + rng.normal(0, 1500, n)
    nb = pd.DataFrame({"baseline": np.full(n, 1e5), "b": 1e5 + d})
    small = evppi(nb, 0.0004 + 0.0004 * u, "baseline")
    unit = evppi(nb, u, "baseline")
    assert small == pytest.approx(unit, rel=1e-3)
    assert 0 < unit <= evpi(nb)
    big = evppi(nb * 1000, u, "baseline")
    assert big == pytest.approx(1000 * unit, rel=1e-3)

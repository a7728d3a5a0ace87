"""The command line (``python -m sim``) and the Python API (``sim.run``), end to end.

Every CLI run is a subprocess started in a temporary directory with Hydra's run and sweep
directories pointed there, so nothing is written into the repository. Each starts an
interpreter and Hydra (seconds), so the default run keeps the smoke run, the refusal of an
unknown key, a small multirun and a tiny Optuna search; the other command-line tests
are slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import sim
from sim.engine import OUTCOMES
from sim.model.config import compose_config
from sim.model.spec import build_spec
from sim.present import figures as sim_figures
from sim.present.text import CONSOLE_WIDTH

TABLES = ("metrics.json", "metrics.csv", "customers.csv", "daily.csv", "purchases.csv",
          "tickets.csv", "finance.csv", "ltv.csv", "cohorts.csv", "payback.csv", "pnl.csv",
          "flows.csv")
FIGURES = ("funnel.png", "retention.png", "ltv.png", "activity.png", "experience.png",
           "cohorts.png", "payback.png", "flows.png")
PAGES = ("report.html",)  # the page showing the outputs, written after metrics.json
OUTPUTS = (*TABLES, *FIGURES, *PAGES)
JOURNEYS = ("four_stage", "five_stage", "six_stage", "six_stage_decision")
TIMEOUT_S = 300


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sim *args`` in ``cwd``, importing the same ``sim`` as this test session."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)  # a user's setting would turn errors into tracebacks
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def outputs_in(folder: Path) -> list[str]:
    """Files the app wrote into a run directory (Hydra's own .hydra/ and log left out)."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != ".hydra" and p.suffix != ".log")


def load_metrics(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text())


# --------------------------------------------------------------------- smoke run
class Smoke:
    def __init__(self, proc: subprocess.CompletedProcess[str], out: Path):
        self.proc, self.out = proc, out


@pytest.fixture(scope="module")
def smoke(smoke_cli_run: tuple[subprocess.CompletedProcess[str], Path]) -> Smoke:
    """One ``python -m sim run=smoke`` shared by the tests that read its outputs (with
    test_finance: conftest.smoke_cli_run)."""
    return Smoke(*smoke_cli_run)


@pytest.fixture(scope="module")
def smoke_spec() -> sim.ModelSpec:
    return build_spec(compose_config(["run=smoke"]))


def test_smoke_run_exits_zero(smoke: Smoke) -> None:
    # how long it takes is measured in benchmarks/, never here
    assert smoke.proc.returncode == 0, smoke.proc.stderr
    assert "Traceback" not in smoke.proc.stderr


def test_smoke_run_prints_summary(smoke: Smoke, smoke_spec: sim.ModelSpec) -> None:
    out = smoke.proc.stdout
    for table in ("Funnel", "Checkout", "Acquisition by channel"):
        assert f"\n{table}\n" in out
    for label, _ in smoke_spec.report:
        assert f"\n{label} " in out
    for channel in smoke_spec.channel_names:
        assert f"\n{channel} " in out
    assert "cart abandonment" in out
    assert str(smoke.out) in out


def test_smoke_run_console_fits_a_100_column_terminal(smoke: Smoke) -> None:
    assert smoke.proc.returncode == 0, smoke.proc.stderr
    wide = [line for line in smoke.proc.stdout.splitlines() if len(line) > CONSOLE_WIDTH]
    assert not wide, wide


def test_smoke_run_writes_every_output(smoke: Smoke) -> None:
    assert smoke.proc.returncode == 0, smoke.proc.stderr
    assert outputs_in(smoke.out) == sorted(OUTPUTS)
    for name in OUTPUTS:
        assert (smoke.out / name).stat().st_size > 0, name
    for name in FIGURES:
        assert (smoke.out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_metrics_json_has_estimates_and_replications(smoke: Smoke,
                                                     smoke_spec: sim.ModelSpec) -> None:
    doc = load_metrics(smoke.out)
    assert doc["journey"] == smoke_spec.journey_name
    assert doc["market_size"] == smoke_spec.market_size
    assert doc["replications"] == smoke_spec.replications
    metrics = doc["metrics"]
    assert {"conversion_rate", "purchases", "checkout.abandonment_rate"} <= set(metrics)
    for name, est in metrics.items():
        assert {"mean", "low", "high"} <= set(est), name
    conv = metrics["conversion_rate"]
    assert conv["low"] <= conv["mean"] <= conv["high"]
    per_rep = doc["per_replication"]
    assert len(per_rep) == smoke_spec.replications
    assert all(set(rep) == set(metrics) for rep in per_rep)


def test_customers_csv_has_one_row_per_aware_customer(smoke: Smoke,
                                                      smoke_spec: sim.ModelSpec) -> None:
    customers = pd.read_csv(smoke.out / "customers.csv")
    per_rep = load_metrics(smoke.out)["per_replication"]
    documented = ["replication", "id", "segment", "channel", "t_aware",
                  *(f"t_{s}" for s in smoke_spec.states), "state", "outcome", "abandoned_cart",
                  "first_order_value", "first_margin", "purchases", "revenue", "margin",
                  "loyalty_member", "advocate", "referrals", "experience", "active_days", "costs",
                  "ltv"]
    columns = list(customers.columns)
    assert set(documented) <= set(columns)
    assert [c for c in columns if c in documented] == documented  # in the documented order
    counts = customers.groupby("replication").size()
    assert list(counts.index) == list(range(smoke_spec.replications))
    assert list(counts) == [rep["aware"] for rep in per_rep]
    for _, group in customers.groupby("replication"):
        assert list(group["id"]) == list(range(len(group)))
    assert customers["t_aware"].notna().all()
    assert set(customers["segment"]) <= set(smoke_spec.segment_names)
    assert set(customers["channel"]) <= set(smoke_spec.channel_names)
    assert set(customers["outcome"]) <= set(OUTCOMES)
    assert set(customers["state"]) <= set(smoke_spec.states)
    # life after the first purchase: buyers are purchased (still active) or churned
    bought = customers["t_purchase"].notna()
    assert set(customers.loc[bought, "outcome"]) <= {"purchased", "churned"}
    assert (customers.loc[bought, "outcome"] == "churned").tolist() == customers.loc[
        bought, "t_churned"].notna().tolist()
    assert set(customers.loc[bought, "state"]) <= {"purchase", "retention", "advocacy",
                                                    "churned"}
    assert (customers.loc[~bought, ["purchases", "revenue", "margin"]] == 0).all().all()
    assert customers.loc[~bought, ["costs", "ltv"]].isna().all().all()
    assert (customers.loc[bought, "purchases"] >= 1).all()
    assert customers["experience"].between(-2, 2).all()
    total = sum(rep["revenue"] for rep in per_rep)
    assert customers["revenue"].sum() == pytest.approx(total, rel=1e-5)  # %.6g in the CSV


def test_purchases_csv_is_the_transaction_log(smoke: Smoke) -> None:
    purchases = pd.read_csv(smoke.out / "purchases.csv")
    customers = pd.read_csv(smoke.out / "customers.csv")
    assert {"replication", "customer", "time", "value", "discount", "revenue",
            "margin"} <= set(purchases.columns)
    per_customer = purchases.groupby(["replication", "customer"]).size()
    counts = customers.set_index(["replication", "id"])["purchases"]
    assert (counts[counts > 0].sort_index() == per_customer.sort_index()).all()
    assert len(purchases) == customers["purchases"].sum()
    per_rep = load_metrics(smoke.out)["per_replication"]
    assert purchases["revenue"].sum() == pytest.approx(sum(r["revenue"] for r in per_rep),
                                                       rel=1e-5)  # %.6g in the CSV


def test_metrics_csv_has_one_row_per_metric(smoke: Smoke) -> None:
    table = pd.read_csv(smoke.out / "metrics.csv")
    metrics = load_metrics(smoke.out)["metrics"]
    assert list(table["metric"]) == list(metrics)
    assert {"mean", "low", "high"} <= set(table.columns)


def test_tickets_csv_has_one_row_per_ticket(smoke: Smoke) -> None:
    tickets = pd.read_csv(smoke.out / "tickets.csv")
    per_rep = load_metrics(smoke.out)["per_replication"]
    assert {"replication", "customer", "arrival", "start", "end", "outcome", "wait_minutes",
            "handling_minutes"} <= set(tickets.columns)
    assert len(tickets) == sum(rep["support.tickets"] for rep in per_rep) > 0
    assert set(tickets["outcome"]) <= {"resolved", "unresolved", "abandoned"}
    served = tickets["outcome"] != "abandoned"
    assert tickets.loc[served, "start"].notna().all()
    assert tickets.loc[~served, "start"].isna().all()
    assert (tickets["wait_minutes"] >= 0).all()


EVENT_COLUMNS = ["replication", "customer", "time", "state", "from_state", "channel",
                 "segment", "experience"]


def check_event_log(log: pd.DataFrame, customers: pd.DataFrame, states: tuple[str, ...],
                    rel: float = 1e-12) -> None:
    """The event log against the customers table: one customer's journey after another,
    each in time order; ``from_state`` is the state of the row before (empty for the first);
    the first entry of every state is the customer's ``t_<state>``; channel and segment
    are the customer's; the last entry is the customer's final state."""
    assert list(log.columns) == EVENT_COLUMNS
    log = log.astype({"state": str, "from_state": object, "channel": str, "segment": str})
    key = ["replication", "customer"]
    new_customer = (log[key] != log[key].shift()).any(axis=1)
    assert (log[key].drop_duplicates().values == customers[["replication", "id"]].values).all()
    assert (log["time"].diff()[~new_customer] >= 0).all()
    previous = log["state"].shift()
    assert log.loc[new_customer, "from_state"].isna().all()
    assert (log.loc[~new_customer, "from_state"] == previous[~new_customer]).all()
    assert (log.loc[new_customer, "state"] == states[0]).all()
    who = customers.set_index(["replication", "id"])
    rows = who.loc[pd.MultiIndex.from_frame(log[key])]
    assert (rows["channel"].astype(str).values == log["channel"].values).all()
    assert (rows["segment"].astype(str).values == log["segment"].values).all()
    last = log[~log.duplicated(key, keep="last")]
    assert (last["state"].values == who["state"].astype(str).values).all()
    first = log.groupby([*key, "state"])["time"].min().unstack()
    for state in states:
        expected = who[f"t_{state}"].to_numpy()
        got = first[state].reindex(who.index).to_numpy() if state in first else expected * 0
        assert ((abs(got - expected) <= rel * abs(expected) + 1e-9)
                | (pd.isna(got) & pd.isna(expected))).all(), state
    lost = log[log["state"] == "lost"]
    assert set(lost["from_state"]) <= set(states[:states.index("checkout") + 1])


@pytest.mark.slow
def test_events_csv_only_when_asked(smoke: Smoke, tmp_path: Path,
                                    smoke_spec: sim.ModelSpec) -> None:
    """``run.events=true`` adds events.csv (the smoke run without it writes none): every
    state entry with readable names, checked against customers.csv (%.6g in both)."""
    assert "events.csv" not in outputs_in(smoke.out)
    proc = run_cli(tmp_path, "run=smoke", "run.events=true", "run.plots=false",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr
    assert "events.csv" in proc.stdout
    log = pd.read_csv(tmp_path / "run" / "events.csv")
    customers = pd.read_csv(tmp_path / "run" / "customers.csv")
    check_event_log(log, customers, smoke_spec.states, rel=1e-5)
    assert (log["state"] == "lost").sum() > 0 and (log["state"] == "purchase").sum() > 0


@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_api_event_log(engine: str) -> None:
    run = sim.run(overrides=["run=smoke", f"run.engine={engine}"])
    check_event_log(run.event_log(), run.customers(), run.spec.states)


@pytest.mark.slow
def test_overrides_change_the_outputs(smoke: Smoke, tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run=smoke", "checkout.hidden_fees=false", "market.size=5000",
                   "run.plots=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr
    base, changed = load_metrics(smoke.out), load_metrics(tmp_path / "run")
    assert base["market_size"] == 3000
    assert changed["market_size"] == 5000
    # no hidden fees: abandonment probability 0.70 -> 0.56; the smoke run's replications
    # vary by about 0.03, so the reported rates are far apart (fixed seed, deterministic)
    rate = "checkout.abandonment_rate"
    assert changed["metrics"][rate]["mean"] < base["metrics"][rate]["mean"] - 0.05


@pytest.mark.slow
def test_help_starts_with_what_it_does_where_to_start_and_the_docs(tmp_path: Path) -> None:
    """``--help``: what the tool does, the five commands a newcomer needs and where the
    documentation is, before Hydra's listing of the groups and the config."""
    proc = run_cli(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("journey-sim: a customer-journey simulator."), out[:200]
    listing = out.index("== Configuration groups ==")
    head = out[:listing]
    commands = ["python -m sim ", 'python -m sim "compare=[remove_hidden_fees,seo]"',
                "python -m sim scenario=seo", "python -m sim -m checkout.hidden_fees=true,false",
                "python -m sim.calibrate transactions orders.csv --calibration-end 2024-06-30"]
    where = [head.index(c) for c in commands]
    assert where == sorted(where)
    assert "docs/" in head and "python -m sim --cfg job" in head
    assert "scenario: baseline" in out[listing:]  # Hydra's own listing follows


@pytest.mark.slow
def test_cfg_job_prints_the_composed_config(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "--cfg", "job", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr
    assert "market:" in proc.stdout
    assert "journey:" in proc.stdout
    printed = OmegaConf.create(proc.stdout)
    assert printed.journey.name == compose_config().journey.name
    assert outputs_in(tmp_path / "run") == []


# ---------------------------------------------------------------------- bad input
@pytest.mark.slow
def test_bad_value_exits_with_message_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli(tmp_path, "run=smoke", "journey.stages.awareness.dwell.mean_days=-1",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 2  # cli.py: validation problems exit with status 2
    assert "journey.stages.awareness.dwell.mean_days = -1" in proc.stderr
    assert "> 0" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert outputs_in(out) == []


@pytest.mark.slow
def test_two_problems_both_reported_and_old_outputs_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    old = {name: f"previous {name}\n".encode() for name in OUTPUTS}
    for name, content in old.items():
        (out / name).write_bytes(content)
    proc = run_cli(tmp_path, "run=smoke", "journey.stages.awareness.dwell.mean_days=-1",
                   "run.replications=0", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    assert "2 problems" in proc.stderr
    assert "journey.stages.awareness.dwell.mean_days = -1" in proc.stderr
    assert "run.replications = 0" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert outputs_in(out) == sorted(OUTPUTS)  # no temporary files left behind
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == old


@pytest.mark.parametrize(("override", "key_path"), [
    ("checkout.hiden_fees=false", "checkout.hiden_fees"),
    pytest.param("market.size=abc", "market.size", marks=pytest.mark.slow),
])
def test_typo_or_wrong_type_from_cli(tmp_path: Path, override: str, key_path: str) -> None:
    out = tmp_path / "run"
    proc = run_cli(tmp_path, "run=smoke", override, f"hydra.run.dir={out}")
    assert proc.returncode == 2  # every input error, whichever layer finds it
    assert proc.stderr.startswith("error: ") and f"(key {key_path})" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert outputs_in(out) == []


# ----------------------------------------------------------------------- multirun
def test_multirun_over_journeys(tmp_path: Path) -> None:
    """Each job of a multirun runs its own journey (the jobs' files are those of a run,
    test_smoke_run_writes_every_output: small jobs without figures here)."""
    sweep = tmp_path / "multirun"
    proc = run_cli(tmp_path, "-m", "run=smoke", f"journey={','.join(JOURNEYS)}",
                   "market.size=500", "run.horizon_days=60", "run.plots=false",
                   "run.summary=false", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == len(JOURNEYS)
    seen = []
    for job in jobs:
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        asked = next(o.split("=", 1)[1] for o in overrides if o.startswith("journey="))
        assert load_metrics(job)["journey"] == asked
        seen.append(asked)
    assert sorted(seen) == sorted(JOURNEYS)
    assert not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------- run.objective, sweepers
@pytest.mark.slow
def test_unknown_objective_exits_with_message_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli(tmp_path, "run=smoke", "run.objective=nvp", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert "run.objective = 'nvp'" in proc.stderr and "conversion_rate" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()


def test_unknown_objective_refused_by_the_api() -> None:
    with pytest.raises(sim.SpecError, match=r"run\.objective = 'nvp'"):
        sim.run(overrides=["run=smoke", "run.objective=nvp"])


@pytest.mark.slow
def test_interval_needs_a_searching_sweeper(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun"
    proc = run_cli(tmp_path, "-m", "run=smoke", "channels.paid_ads.spend_per_day=interval(0,100)",
                   f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "hydra/sweeper=optuna" in proc.stderr
    assert not sweep.exists()


OPTUNA = ("-m", "run=smoke", "market.size=500", "run.horizon_days=60", "run.plots=false",
          "run.summary=false", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
          "hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=7")


def test_optuna_sweep_maximises_the_objective(tmp_path: Path) -> None:
    """A tiny Optuna search through the command line: each trial returns the mean of
    run.objective (here purchases), the sweeper writes the best trial."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "multirun"
    proc = run_cli(tmp_path, *OPTUNA, "run.objective=purchases",
                   "channels.paid_ads.spend_per_day=interval(0,100)", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(best.best_params) == {"channels.paid_ads.spend_per_day"}
    assert 0 <= best.best_params["channels.paid_ads.spend_per_day"] <= 100
    trials = [load_metrics(job)["metrics"]["purchases"]["mean"]
              for job in sweep.iterdir() if job.is_dir()]
    assert len(trials) == 3
    assert best.best_value == pytest.approx(max(trials))


@pytest.mark.slow
def test_optuna_sweep_checks_the_ends_of_an_interval(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "multirun"
    proc = run_cli(tmp_path, *OPTUNA, "channels.paid_ads.spend_per_day=interval(-5,100)",
                   f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 2
    assert "channels.paid_ads.spend_per_day = -5" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not sweep.exists()


# ----------------------------------------------------------------------- Python API
@pytest.fixture(scope="module")
def api_run() -> sim.Run:
    return sim.run(overrides=["run=smoke"])


def test_api_summary_has_mean_and_ci(api_run: sim.Run) -> None:
    conv = api_run.summary["conversion_rate"]
    assert 0 < conv.mean < 1
    assert conv.low <= conv.mean <= conv.high
    assert conv.high - conv.low == pytest.approx(2 * conv.half_width)
    assert conv.n == api_run.spec.replications


def test_api_tables_are_dataframes(api_run: sim.Run) -> None:
    customers, daily = api_run.customers(), api_run.daily()
    assert isinstance(customers, pd.DataFrame) and len(customers) > 0
    assert isinstance(daily, pd.DataFrame) and len(daily) > 0
    assert set(customers["replication"]) == set(range(api_run.spec.replications))


def test_api_journey_of_starts_with_first_stage(api_run: sim.Run) -> None:
    path = api_run.journey_of(0)
    assert path[0][1] == api_run.spec.stages[0].name == api_run.stages[0]
    times = [t for t, _ in path]
    assert times == sorted(times)
    first = api_run.customers().query("replication == 0 and id == 0").iloc[0]
    assert path[0][0] == pytest.approx(first["t_aware"])


def test_funnel_is_linear_unless_run_funnel_log(api_run: sim.Run) -> None:
    assert api_run.spec.funnel_log is False
    figs = api_run.figures()
    try:
        assert figs["funnel"].axes[0].get_xscale() == "linear"
    finally:
        for fig in figs.values():
            sim_figures.close(fig)
    assert build_spec(compose_config(["run=smoke", "run.funnel_log=true"])).funnel_log
    fig = sim_figures.funnel_figure(api_run.summary, api_run.stages, "t", log=True)
    try:
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    finally:
        sim_figures.close(fig)


def test_activity_weekly_revenue_does_not_dip_at_the_edges() -> None:
    """A constant 10 a day is 70 a week on every day, the first six included (a trailing
    window that shrinks at the start, scaled to seven days) and the last."""
    day = np.arange(30.0)
    ax = sim_figures.plot_activity(day, np.full(30, 5.0), np.full(30, 10.0))
    try:
        weekly = ax.figure.axes[1].get_lines()[0].get_ydata()
        np.testing.assert_allclose(weekly, 70.0, rtol=1e-12)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("last 7 days" in t for t in legend), legend
    finally:
        sim_figures.close(ax.figure)


def test_forest_ticks_are_short_and_shares_in_percentage_points() -> None:
    table = pd.DataFrame([
        {"scenario": "a", "metric": m, "rank": 1, "difference": d, "difference_low": d / 2,
         "difference_high": d * 2} for m, d in (("npv", 35_000.0), ("conversion_rate", 0.015))])
    fig = sim_figures.forest_figure(table, ["npv", "conversion_rate"], "t")
    try:
        npv, conversion = (ax.xaxis.get_major_formatter() for ax in fig.axes[:2])
        assert [npv(v, 0) for v in (35_000, 1_200_000, -2_000, 850)] == [
            "35k", "1.2M", "-2k", "850"]
        assert [conversion(v, 0) for v in (0.015, -0.02, 0.0)] == ["+1.5 pp", "-2 pp", "0"]
    finally:
        sim_figures.close(fig)


def test_api_write(api_run: sim.Run, tmp_path: Path) -> None:
    written = api_run.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(OUTPUTS)
    assert outputs_in(tmp_path) == sorted(OUTPUTS)
    assert load_metrics(tmp_path)["metrics"]["conversion_rate"]["mean"] == pytest.approx(
        api_run.summary["conversion_rate"].mean)

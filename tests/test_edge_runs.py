"""Runs with little or nothing to show, and the funnel's step conversion.

Each edge configuration runs on both engines with one and with two replications (the
default run takes the agent engine with one and the fast engine with two; the other two
pairings are slow), on a tiny market: a few buyers (also on a subscription), one person,
two people for one day, nobody aware, nobody buying, nobody churning and no tickets, with
the repeat-purchase, subscription and ``none`` retention models among them. Every run
completes; ``Run.write`` writes every table and figure; ``metrics.json`` has an interval
exactly where two or more replications give one (null otherwise); the console summary says
once, and only with one replication, that an interval needs at least two; figures of empty
data say "nothing to show" instead of drawing NaN axes, figures with data draw it; no warning
of any kind is raised (warnings are errors here, beyond pyproject's
``error::RuntimeWarning:sim.*``).

The step conversion of a funnel stage is the share of the previous stage's customers who
reached it, so its interval stays within 0-100 % (the smoke run used to print
``[0.0%, 100.8%]`` for retention).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

import sim
from sim import api
from sim.measure.metrics import metric_range, reached_report_stages
from sim.measure.stats import ONE_REPLICATION
from sim.model.config import compose_config
from sim.present import figures as sim_figures
from sim.present.text import CONSOLE_WIDTH, format_comparison, format_summary, write_comparison

matplotlib.use("Agg")

TABLES = ("metrics.json", "metrics.csv", "customers.csv", "daily.csv", "purchases.csv",
          "tickets.csv", "finance.csv", "ltv.csv", "cohorts.csv", "payback.csv", "pnl.csv",
          "flows.csv")
FIGURES = ("funnel", "retention", "ltv", "activity", "experience", "cohorts", "payback")
# a tiny market in which, within two months, most people become aware and some buy, buy
# again, churn and call the desk: the ordinary paths, on data small enough to be edge cases
TINY = ["run=smoke", "market.size=60", "run.horizon_days=60", "run.progress=false",
        "channels.search.organic_reach_per_day=0.03", "checkout.base_logit=-3",
        "support.issue_prob=0.5"]
# every channel's reach 0 but a trace of search: the spec may insist on some reach, and
# with a chance of 1 in 10^7 per person nobody becomes aware
NOBODY_AWARE = ["channels.search.organic_reach_per_day=1e-9",
                "channels.search.max_reach_per_day=0",
                "channels.social.organic_reach_per_day=0", "channels.social.max_reach_per_day=0",
                "channels.paid_ads.max_reach_per_day=0", "channels.email.max_reach_per_day=0",
                "channels.in_store.organic_reach_per_day=0"]
NOBODY_BUYS = ["checkout.base_logit=30", "checkout.recovery_prob=0"]  # every cart abandoned
# nobody churns (one purchase each, no bad experience makes anyone leave), no tickets
QUIET = ["retention.model=none", "experience.leave_after_bad=0", "support.issue_prob=0"]
EDGES = {
    "tiny": ["retention.repeat.alpha_days=5"],  # repeat purchases, then churn, within weeks
    "tiny_subscription": ["retention=subscription"],
    "one_person": ["market.size=1"],
    "two_people_one_day_none": ["market.size=2", "run.horizon_days=1", "retention.model=none"],
    "nobody_aware_none": [*NOBODY_AWARE, "retention.model=none"],
    "nobody_buys_subscription": [*NOBODY_BUYS, "retention=subscription"],
    "nobody_churns_no_tickets": QUIET,
}
# what the edge guarantees in every replication: nobody aware, nobody buying
EMPTY = {"nobody_aware_none": "aware", "nobody_buys_subscription": "purchases"}
NEEDS_TWO = "needs at least two replications"


def _texts(fig) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


@functools.cache
def _composed(groups: tuple[str, ...]) -> DictConfig:
    """The tiny config with these config-group choices, composed once (composing costs
    more than a tiny run)."""
    return compose_config([*TINY, *groups])


def _value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _config(edge: str, engine: str, replications: int) -> DictConfig:
    """The edge's config: its group choices composed, then its keys set."""
    overrides = [o.split("=", 1) for o in EDGES[edge]]
    cfg = copy.deepcopy(_composed(tuple(f"{k}={v}" for k, v in overrides if "." not in k)))
    for key, value in overrides:
        if "." in key:
            OmegaConf.update(cfg, key, _value(value))
    cfg.run.engine, cfg.run.replications = engine, replications
    return cfg


@pytest.mark.filterwarnings("error")  # no warning at all: numpy, pandas, matplotlib, sim
@pytest.mark.parametrize(("engine", "replications"), [
    pytest.param("agent", 1, id="agent-1"),
    pytest.param("agent", 2, id="agent-2", marks=pytest.mark.slow),
    pytest.param("fast", 1, id="fast-1", marks=pytest.mark.slow),
    pytest.param("fast", 2, id="fast-2"),
])  # the default run: each edge on each engine, with one and with two replications
@pytest.mark.parametrize("edge", list(EDGES))
def test_edge_run_writes_everything(edge: str, engine: str, replications: int,
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = sim.run(_config(edge, engine, replications))
    assert (run.spec.engine, run.experiment.n_replications) == (engine, replications)
    if edge in EMPTY:
        assert run.experiment.metric(EMPTY[edge]).sum() == 0, "the edge case is not one"
    if edge.startswith("tiny") or edge == "nobody_churns_no_tickets":  # data to show
        assert np.all(run.experiment.metric("purchases") > 0)
    if edge == "tiny":
        assert run.experiment.metric("churned").sum() > 0
        assert run.experiment.metric("support.tickets").sum() > 0
    if edge == "nobody_churns_no_tickets":
        assert run.experiment.metric("churned").sum() == 0
        assert run.experiment.metric("support.tickets").sum() == 0

    # the figures Run.write draws, kept to look at (drawing them twice costs time). Saving
    # PNGs is most of this test's time and the same code for both engines' results: the
    # agent engine's runs write them, the fast engine's are checked as figures only
    figures: dict = {}
    draw = sim.Run.figures
    monkeypatch.setattr(sim.Run, "figures", lambda self: figures.update(draw(self)) or figures)
    plots = engine == "agent"
    written = run.write(tmp_path, plots=plots)
    if not plots:
        run.figures()
    names = {Path(p).name for p in written}
    expected = {*TABLES, *(f"{f}.png" for f in FIGURES if plots)}
    assert expected <= names
    for name in expected:
        assert (tmp_path / name).stat().st_size > 0, name
    for figure in FIGURES if plots else ():
        assert (tmp_path / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # metrics.json: an interval exactly where two replications with a value give one
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["replications"] == replications
    for name, m in doc["metrics"].items():
        has_interval = m["n"] >= 2
        assert (m["low"] is not None) == has_interval, name
        assert (m["high"] is not None) == has_interval, name
        assert (m["half_width"] is not None) == has_interval, name
        if has_interval:
            low, high = metric_range(name)
            assert low <= m["low"] <= m["mean"] <= m["high"] <= high, name

    # the summary: one line about the missing interval, exactly with one replication (the
    # notes unwrapped: width=None); on the console, every line within 100 columns
    text = format_summary(run.summary, run.spec, replications, width=None)
    console = format_summary(run.summary, run.spec, replications)
    assert max(len(line) for line in console.splitlines()) <= CONSOLE_WIDTH
    assert text.count(NEEDS_TWO) == (1 if replications == 1 else 0)
    assert (ONE_REPLICATION in text.splitlines()) == (replications == 1)
    assert "nan" not in text.lower()
    nobody_aware = "nobody became aware in any replication"
    assert (nobody_aware in text) == (run.experiment.metric("aware").sum() == 0)
    if edge in EMPTY and EMPTY[edge] == "purchases":
        assert "nobody bought in any replication" in text

    # the figures: finite axes everywhere; empty data says why instead of drawing nothing
    assert set(figures) == set(FIGURES)
    for name, fig in figures.items():
        for ax in fig.axes:
            assert np.all(np.isfinite([*ax.get_xlim(), *ax.get_ylim()])), name
    if edge in EMPTY:
        for name in ("retention", "ltv", "cohorts", "payback"):
            assert "nothing to show" in _texts(figures[name]), name
    if EMPTY.get(edge) == "aware":
        for name, fig in figures.items():
            assert f"nothing to show: {nobody_aware}" in _texts(fig), name
    if replications == 1 and run.summary["aware"].mean > 0:
        assert "one replication" in figures["funnel"].axes[0].get_xlabel()
    if run.summary["purchases"].mean > 0:  # a buyer: the value figures draw, not excuse
        for name in ("retention", "ltv", "cohorts", "payback"):
            assert "nothing to show" not in _texts(figures[name]), name
    for fig in figures.values():
        sim_figures.close(fig)


def test_nobody_aware_says_why() -> None:
    """With every channel's reach (near) zero the summary names the chance of becoming
    aware and what to change."""
    run = sim.run(_config("nobody_aware_none", "agent", 2))
    lines = [line for line in format_summary(run.summary, run.spec, 2, width=None).splitlines()
             if line.startswith("nobody became aware")]
    assert len(lines) == 1
    chance = -math.expm1(-1e-9 * run.spec.horizon_days)  # search's organic reach alone
    assert f"a chance of 1 in {1 / chance:,.0f} of becoming aware in 60 days" in lines[0]
    assert "market.size" in lines[0] and "run.horizon_days" in lines[0]


# ------------------------------------------------------- the funnel's step conversion
def test_step_rate_is_a_share() -> None:
    assert metric_range("funnel.retention.step_rate") == (0.0, 1.0)
    assert metric_range("funnel.advocacy.rate") == (0.0, 1.0)
    assert metric_range("funnel.advocacy.reached") == (0.0, math.inf)


def test_smoke_run_prints_no_share_above_100_percent() -> None:
    """The smoke run printed the retention step as ``47.5% [0.0%, 100.8%]``: a step rate
    was treated as unbounded because a stage can be reached without the previous one
    (advocacy without a second purchase). It is now the share of the previous stage's
    customers who reached the stage: checked against the customers table, and every
    percentage the summary prints is at most 100 %."""
    run = sim.run(overrides=["run=smoke", "run.progress=false"])
    for result, metrics in zip(run.experiment.results, run.experiment.metrics, strict=True):
        reached = reached_report_stages(result, run.spec)
        labels = list(reached)
        for before, stage in itertools.pairwise(labels):
            prev = reached[before]
            expected = (reached[stage] & prev).sum() / prev.sum() if prev.sum() else math.nan
            assert metrics[f"funnel.{stage}.step_rate"] == pytest.approx(expected, nan_ok=True)
    # the smoke run has advocates who never bought again: the old ratio differs
    c = run.customers()
    skipped = (c["t_advocacy"].notna() & c["t_retention"].isna()).sum()
    assert skipped > 0
    for stage in run.stages:
        e = run.summary[f"funnel.{stage}.step_rate"]
        assert 0.0 <= e.low <= e.mean <= e.high <= 1.0, stage
    text = format_summary(run.summary, run.spec, run.experiment.n_replications)
    shares = [float(x) for x in re.findall(r"(-?\d+(?:\.\d+)?)%", text)]
    assert shares and max(shares) <= 100.0
    assert min(shares) >= 0.0


# ------------------------------------------------------- a comparison of one replication
@pytest.mark.filterwarnings("error")
def test_comparison_of_one_replication(tmp_path: Path) -> None:
    result = api.compare(["remove_hidden_fees"], overrides=[*TINY, "run.replications=1"])
    text = format_comparison(result.table, result.rank_by, result.replications)
    assert NEEDS_TWO in text
    assert "[-" not in text and "nan" not in text.lower()
    per_rep = {k: r.experiment.metrics for k, r in result.runs.items()}
    written = write_comparison(result.table, per_rep, {k: "" for k in per_rep},
                               result.rank_by, tmp_path)
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in written} >= {"comparison.csv", "comparison.md", "metrics.json"}

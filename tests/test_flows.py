"""Journey flows (``sim.measure.flows``), their figures and the customer timeline.

Oracles: moves conserve customers (into a state = out of it + those in it at the horizon,
in every replication, both engines); the customers reaching each state reconcile exactly
with the funnel metrics; on a journey without steps back the event log's flows are the
first-entry flows (also read back from ``customers.csv``); and on the REFERENCES.md chain
(steps back and repeat visits) the mean moves i -> j per aware customer are N_0i Q_ij, N the
fundamental matrix, within ``K_SE`` standard errors (seed ``CHAIN_SEED``).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import FancyArrowPatch
from test_base import history, write_base
from test_oracles import (
    K_SE,
    REF_MEANS,
    REF_NAMES,
    REF_Q,
    REF_R,
    absorbing_chain,
    assert_mean,
    chain_config,
    journey_config,
    plain_config,
    stage,
)

import sim
from sim.engine import simulate
from sim.errors import InputError
from sim.io import write_table
from sim.measure.experiment import ExperimentResult, run_experiment
from sim.measure.flows import (
    FLOW_COLUMNS,
    FLOW_KINDS,
    START,
    first_entry_flows,
    flow_nodes,
    journey_flows,
    moves,
)
from sim.model.spec import build_spec
from sim.present import figures
from sim.present.flows import sankey_spec
from sim.present.tables import write_outputs

matplotlib.use("Agg")

SMALL = ["run=smoke", "market.size=1500"]  # seed 20261123 (run=smoke), 2 replications
CHAIN_SEED = 7
CHAIN_SIZE = 6000


@pytest.fixture(scope="module")
def smoke() -> sim.Run:
    """The default six-stage journey, agent engine, 2 replications x 120 days."""
    return sim.run(overrides=SMALL)


@pytest.fixture(scope="module")
def smoke_fast() -> sim.Run:
    return sim.run(overrides=[*SMALL, "run.engine=fast"])


def _in_out(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    return (table.groupby("target")["count"].sum(),
            table[table["source"] != START].groupby("source")["count"].sum())


# ------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("engine", ["agent", "fast"])
def test_flows_conserve_customers(engine: str, smoke: sim.Run, smoke_fast: sim.Run) -> None:
    """In every replication, for every state: moves in = moves out + customers whose last
    state it is at the horizon (lost and churned keep everyone who entered them)."""
    run = smoke if engine == "agent" else smoke_fast
    for r in run.experiment.results:
        table = journey_flows([r])
        into, out = _in_out(table)
        last = pd.Series(r.customers["state"]).map(dict(enumerate(r.states))).value_counts()
        for state in r.states:
            assert into.get(state, 0) == out.get(state, 0) + last.get(state, 0), (
                engine, r.replication, state)
        # every count of one replication is a whole number of moves
        assert np.array_equal(table["count"], np.round(table["count"]))


def test_flows_reconcile_with_the_funnel(smoke: sim.Run) -> None:
    """Customers reaching a state (enter, forward and exit moves into it: first entries)
    are the funnel's ``reached``, mean over replications; the aware are all who entered."""
    nodes = flow_nodes(smoke.flows()).set_index("state")
    metrics = smoke.experiment.metrics
    for stage_, codes in smoke.spec.report:
        (code,) = codes  # the six-stage journey reports one state per stage
        state = smoke.spec.states[code]
        expected = np.mean([m[f"funnel.{stage_}.reached"] for m in metrics])
        assert nodes.loc[state, "customers"] == pytest.approx(expected, rel=1e-12), stage_
    assert nodes.loc["awareness", "customers"] == pytest.approx(
        np.mean([m["aware"] for m in metrics]), rel=1e-12)
    table = smoke.flows()
    assert table.loc[table["kind"] == "enter", "share_of_aware"].sum() == pytest.approx(1.0)


def test_kinds_follow_the_path(smoke: sim.Run) -> None:
    """Each customer's first move enters; loops stay; steps back go to a state visited
    before and earlier in the journey; exits end in lost or churned."""
    r = smoke.experiment.results[0]
    m = moves(r)
    kind = np.asarray(FLOW_KINDS, dtype=object)[m["kind"]]
    first = np.r_[True, m["customer"][1:] != m["customer"][:-1]]
    assert np.array_equal(kind == "enter", first)
    assert np.all(m["source"][kind == "loop"] == m["target"][kind == "loop"])
    assert np.all(m["target"][kind == "back"] < m["source"][kind == "back"])
    names = np.asarray(r.states, dtype=object)
    assert set(names[m["target"][kind == "exit"]]) <= {"lost", "churned"}
    assert {"back", "loop", "return"} <= set(kind)  # the six-stage journey has all three


def test_chain_moves_match_the_fundamental_matrix() -> None:
    """The REFERENCES.md chain (repeat visits and steps back), CHAIN_SIZE aware, seed
    CHAIN_SEED: per aware customer, moves i -> j average N_0i Q_ij, moves from the cart to
    the checkout N_0i r_i and moves i -> lost N_0i (1 - sum_j Q_ij - r_i), each within
    K_SE standard errors of the per-customer counts."""
    stages = chain_config(REF_Q, REF_R, REF_NAMES, [("exponential", m, None) for m in REF_MEANS])
    cfg = journey_config(plain_config(), stages, size=CHAIN_SIZE, horizon_days=400.0,
                         channels={"organic": {"organic_reach_per_day": 0.5}}, churn=False)
    spec = build_spec(cfg)
    result = simulate(spec, seed=CHAIN_SEED, replication=0)
    n = result.n_customers
    assert n == CHAIN_SIZE
    visits = absorbing_chain(REF_Q, REF_R, REF_MEANS)["visits"]
    m = moves(result)
    code = {s: i for i, s in enumerate(spec.states)}
    expected = {(a, b): visits[i] * REF_Q[i, j] for i, a in enumerate(REF_NAMES)
                for j, b in enumerate(REF_NAMES) if REF_Q[i, j] > 0}
    expected[("cart", "checkout")] = visits[3] * REF_R[3]
    for i, a in enumerate(REF_NAMES):
        expected[(a, "lost")] = visits[i] * (1 - REF_Q[i].sum() - REF_R[i])
    for (a, b), mean in expected.items():
        sel = (m["source"] == code[a]) & (m["target"] == code[b])
        per_customer = np.bincount(m["customer"][sel], minlength=n).astype(float)
        assert_mean(per_customer, mean, f"moves {a} -> {b}")
    # and the table counts the same moves
    table = journey_flows([result]).groupby(["source", "target"])["count"].sum()
    assert table[("consider", "aware")] == np.sum(
        (m["source"] == code["consider"]) & (m["target"] == code["aware"]))
    assert K_SE == 4.0


def _no_steps_back(loops: bool) -> ExperimentResult:
    """A journey with forward exits only (and with ``loops`` a stage that repeats), buyers
    who may advocate and churn; 1,500 people, 2 replications of 200 days, seed 11."""
    stages = {
        # not "aware": customers.csv's t_aware is the time of becoming aware
        "notice": stage("exponential", 2.0, exits={"consider": 0.6}),
        "consider": stage("gamma", 4.0, 0.8, exits={"consider": 0.2 if loops else 0.0,
                                                    "intent": 0.4}),
        "intent": stage("exponential", 1.5, exits={"checkout": 0.7}),
    }
    cfg = journey_config(plain_config(), stages, size=1500, horizon_days=200.0,
                         channels={"organic": {"organic_reach_per_day": 0.05}},
                         advocate_prob=0.3, sure_checkout=False)
    cfg["run"] |= {"replications": 2, "seed": 11, "engine": "agent"}
    return run_experiment(build_spec(cfg))


@pytest.mark.parametrize("loops", [False, True])
def test_without_steps_back_event_log_equals_first_entries(loops: bool,
                                                           tmp_path: Path) -> None:
    """Without steps back the event log's flows are the first-entry flows, from the
    customers table and from customers.csv read back (loops, which first entries cannot
    see, set aside)."""
    exp = _no_steps_back(loops)
    events = journey_flows(exp.results)
    assert set(events["kind"]) <= {"enter", "forward", "exit", "loop"}
    assert ("loop" in set(events["kind"])) == loops
    events = events[events["kind"] != "loop"].reset_index(drop=True)
    path = write_table(exp.customers(), tmp_path / "customers.csv")
    for customers in (exp.customers(), pd.read_csv(path)):
        first = first_entry_flows(customers)
        assert first["from_first_entries"].all() and not events["from_first_entries"].any()
        columns = ["source", "target", "kind", "count", "share_of_aware"]
        pd.testing.assert_frame_equal(first[columns], events[columns])


def test_first_entries_miss_the_steps_back(smoke: sim.Run) -> None:
    """With steps back, first entries still count the customers reaching each state (the
    funnel) but see no loops, steps back or returns, and say so."""
    first = first_entry_flows(smoke.customers())
    assert set(first["kind"]) == {"enter", "forward", "exit"}
    assert first["from_first_entries"].all()
    ours = flow_nodes(first).set_index("state")["customers"]
    theirs = flow_nodes(smoke.flows()).set_index("state")["customers"]
    pd.testing.assert_series_equal(ours, theirs.loc[ours.index])


@pytest.mark.parametrize("by", ["segment", "channel"])
def test_groups_add_up_to_the_total(by: str, smoke: sim.Run) -> None:
    split = smoke.flows(by=by)
    assert list(split.columns) == [by, *FLOW_COLUMNS]
    total = smoke.flows().set_index(["source", "target", "kind"])["count"]
    summed = split.groupby(["source", "target", "kind"])["count"].sum()
    pd.testing.assert_series_equal(summed.sort_index(), total.sort_index(), check_names=False)
    # shares are of the group's aware
    enter = split[split["kind"] == "enter"]
    np.testing.assert_allclose(enter.groupby(by)["share_of_aware"].sum(), 1.0)
    first = first_entry_flows(smoke.customers(), by=by)
    assert first[by].isin(split[by]).all()
    with pytest.raises(InputError, match="by="):
        smoke.flows(by="age")


def test_the_installed_base_is_left_out(tmp_path: Path) -> None:
    """Today's customers (market.base) did not make the journey: the flows enter the new
    customers only, and conserve them."""
    x, t_x, age = history(150, seed=3)
    base = write_base(tmp_path / "base.csv", x, t_x, age)
    run = sim.run(overrides=[*SMALL, "market.size=400", f"market.base={base}"])
    r = run.experiment.results[0]
    new = ~r.customers["base"]
    table = journey_flows([r])
    assert table.loc[table["kind"] == "enter", "count"].sum() == new.sum()
    into, out = _in_out(table)
    last = pd.Series(r.customers["state"][new]).map(dict(enumerate(r.states))).value_counts()
    for state in r.states:
        assert into.get(state, 0) == out.get(state, 0) + last.get(state, 0), state


def test_first_entries_need_the_times() -> None:
    with pytest.raises(InputError, match="t_lost"):
        first_entry_flows(pd.DataFrame({"t_awareness": [0.0]}), states=["awareness", "lost"])


# ------------------------------------------------------------------------- figures
def test_plot_flows_labels_every_state_once(smoke: sim.Run) -> None:
    table = smoke.flows()
    ax = figures.plot_flows(table, title="flows")
    try:
        nodes = flow_nodes(table)
        main = [s for s in nodes["state"] if s not in ("lost", "churned")]
        texts = [t.get_text() for t in ax.texts]
        for state in main:  # one label per bar: its name on the first line
            assert sum(t.split("\n")[0] == state for t in texts) == 1, state
        # the buyers are under 15 % of the aware: the life after the purchase, magnified
        (inset,) = ax.child_axes
        inset_texts = [t.get_text().split("\n")[0] for t in inset.texts]
        for state in ("purchase", "retention", "advocacy"):
            assert inset_texts.count(state) == 1
        # one arc per step back between the journey's stages
        back = table[table["kind"] == "back"][["source", "target"]].drop_duplicates()
        arcs = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        assert len(arcs) == len(back)
        assert ax.get_title(loc="left") == "flows"
    finally:
        figures.close(ax.figure)


def test_plot_flows_of_first_entries_and_of_nobody(smoke: sim.Run) -> None:
    ax = figures.plot_flows(first_entry_flows(smoke.customers()))
    try:
        assert not [p for p in ax.patches if isinstance(p, FancyArrowPatch)
                    and p.get_edgecolor()[:3] == matplotlib.colors.to_rgb(
                        figures.FLOW_COLOURS["back"])]
        assert any("first-entry times" in t.get_text() for t in ax.texts)
    finally:
        figures.close(ax.figure)
    empty = pd.DataFrame(columns=list(FLOW_COLUMNS))
    ax = figures.plot_flows(empty)
    try:
        assert any("nothing to show" in t.get_text() for t in ax.texts)
    finally:
        figures.close(ax.figure)


def test_timeline_of_a_customer(smoke: sim.Run) -> None:
    fig = smoke.timeline(outcome="churned", seed=3)
    try:
        ax = fig.axes[0]
        title = ax.get_title(loc="left")
        k = int(title.split()[1])
        c = smoke.experiment.results[0].customers
        assert c["outcome"][k] == 4 and "churned" in title
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "churned", "lost", *[s for s in smoke.spec.states if s not in ("lost", "churned")]]
        # one ring per order (the path's dots are the first collection)
        orders = [col for col in ax.collections if col.get_label() == "order (its value)"]
        assert len(orders[0].get_offsets()) == c["purchases"][k]
        assert len(fig.axes) == 2  # the experience score below
    finally:
        figures.close(fig)
    again = smoke.timeline(outcome="churned", seed=3)
    assert again.axes[0].get_title(loc="left") == title  # the seed picks the customer
    figures.close(again)
    fig = smoke.timeline(customer=0, replication=1)
    assert fig.axes[0].get_title(loc="left").startswith("Customer 0 of replication 1")
    figures.close(fig)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"customer": 10**6}, "customer=1000000: replication 0 has customers 0 to"),
    ({"customer": -1}, "customer=-1"),
    ({"customer": 1.5}, "customer=1.5"),
    ({"outcome": "rich"}, "outcome='rich': one of bought, repeat"),
    ({"customer": 1, "outcome": "lost"}, "not both"),
    ({"replication": 2}, "replication=2: this run has replications 0 to 1"),
])
def test_timeline_errors_name_the_argument(kwargs: dict, message: str, smoke: sim.Run) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        smoke.timeline(**kwargs)


def test_timeline_of_an_outcome_nobody_had() -> None:
    run = sim.run(overrides=["run=smoke", "market.size=200", "run.horizon_days=3",
                             "run.replications=1"])
    with pytest.raises(InputError, match="outcome='churned': no customer of replication 0"):
        run.timeline(outcome="churned")


# ---------------------------------------------------------------------- the files
def test_write_outputs_writes_the_flows(smoke: sim.Run, tmp_path: Path) -> None:
    """flows.csv always, flows.png with the figures; the CSV read back draws the Sankey
    that report.html embeds (plain JSON)."""
    written = write_outputs(smoke.experiment, smoke.summary, tmp_path / "plots",
                            extra=lambda folder: [])
    names = [p.name for p in written]
    assert "flows.csv" in names and "flows.png" in names and names[-1] == "metrics.json"
    back = pd.read_csv(tmp_path / "plots" / "flows.csv")
    assert list(back.columns) == list(FLOW_COLUMNS)
    pd.testing.assert_frame_equal(back, smoke.flows(), check_dtype=False, rtol=1e-5)
    spec = sankey_spec(back)
    json.dumps(spec, allow_nan=False)
    (trace,) = spec["data"]
    assert trace["type"] == "sankey"
    states = [s for s in flow_nodes(back)["state"]]
    assert len(trace["node"]["label"]) == len(states)
    assert [label.split()[0] for label in trace["node"]["label"]] == states
    links = back[~back["kind"].isin(["enter", "loop"])].groupby(["source", "target"])
    assert len(trace["link"]["value"]) == links.ngroups
    assert sum(trace["link"]["value"]) == pytest.approx(links["count"].sum().sum())
    n_back = back.loc[back["kind"] == "back", ["source", "target"]].drop_duplicates().shape[0]
    assert sum("224,123,0" in c for c in trace["link"]["color"]) == n_back
    written = write_outputs(smoke.experiment, smoke.summary, tmp_path / "tables")
    names = [p.name for p in written]
    assert "flows.csv" in names and "flows.png" not in names
    assert not (tmp_path / "tables" / "flows.png").exists()


def test_sankey_spec_contract() -> None:
    with pytest.raises(InputError, match="no column kind"):
        sankey_spec(pd.DataFrame({"source": [], "target": [], "count": []}))
    empty = sankey_spec(pd.DataFrame(columns=list(FLOW_COLUMNS)))
    assert empty["data"][0]["node"]["label"] == []
    assert "nothing to show" in empty["layout"]["annotations"][0]["text"]
    json.dumps(empty, allow_nan=False)

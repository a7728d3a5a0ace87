"""Choosing a set of interventions (sim.decide.portfolio).

Oracles:
- Combining: a set's config is the baseline with every member's changes, on small dicts
  and on real scenarios; two members setting one key to different values conflict.
- Under common random numbers a running cost changes no customer's path, and its discounted
  cost is linear in ``scenario.cost_per_day``: a set of two cost-only scenarios has a gain
  equal to the sum of the singles' gains, replication by replication (up to rounding).
- Overlapping effects are simulated, not added: a set whose second member repeats the
  first's change gives exactly the config, and so the objective, of the second alone.
- The budget bounds every set simulated; a scenario surely harmful alone enters no set;
  the results are identical with one worker or two.

All checks are exact (common random numbers), so no statistical tolerance is needed; the
seed is SEED. Float comparisons allow rounding only (rel 1e-9).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.decide import StudyError
from sim.decide import portfolio as pf
from sim.decide.portfolio import changes, combine, conflicts, run_portfolio, simulate_options
from sim.model.config import compose_config, to_container
from sim.model.spec import build_spec

SEED = 20261123
# a small business, big enough for the edited scenarios' effects to show in 4 replications
SMALL = ["run=smoke", "market.size=1000", "run.horizon_days=90", "uncertainty=none"]
REAL = ("seo", "guest_checkout", "remove_hidden_fees", "case_studies", "educational_content")
ROUNDING = 1e-9  # relative: sums of discounted costs in another order


@cache
def _library() -> dict[str, dict[str, Any]]:
    base = compose_config([*SMALL, "scenario=baseline"])
    out = {"baseline": to_container(base)}
    for name in REAL:
        out[name] = to_container(compose_config([*SMALL, f"scenario={name}"], baseline=base))
    return out


def library(*names: str) -> dict[str, dict[str, Any]]:
    lib = _library()
    return {n: copy.deepcopy(lib[n]) for n in ("baseline", *names)}


def edited(base: dict[str, Any], name: str, cost: float, reach: float = 1.0
           ) -> dict[str, Any]:
    """The baseline as a scenario ``name``: running cost ``cost`` per day and organic
    search reach times ``reach`` (1: no behavioural change)."""
    cfg = copy.deepcopy(base)
    cfg["scenario"] |= {"name": name, "description": name, "cost_per_day": float(cost)}
    cfg["channels"]["search"]["organic_reach_per_day"] *= reach
    return cfg


# ------------------------------------------------------------------ combining
def _scn(name: str, cost: float, adds: list[str]) -> dict[str, Any]:
    return {"name": name, "description": f"{name} does it", "cost_per_day": cost,
            "start_day": 0.0, "ramp_days": 0.0, "adds": adds, "uncertainty": {"x": 1}}


SMALL_BASE = {"scenario": _scn("baseline", 0.0, []), "a": {"x": 1, "y": [1, 2]}, "b": 2.0,
              "m": {}}


def test_combine_small_dicts() -> None:
    s1 = copy.deepcopy(SMALL_BASE) | {"scenario": _scn("s1", 2.0, ["m.new"])}
    s1["a"]["x"] = 5
    s1["m"]["new"] = {"k": 1}
    s2 = copy.deepcopy(SMALL_BASE) | {"scenario": _scn("s2", 3.0, ["m.new", "m.other"]),
                                      "b": 3.0}
    s2["a"]["y"] = [1, 2, 3]
    cfgs = {"baseline": SMALL_BASE, "s1": s1, "s2": s2}
    assert changes(SMALL_BASE, s1) == {("a", "x"): 5, ("m", "new"): {"k": 1}}
    assert changes(SMALL_BASE, s2) == {("a", "y"): [1, 2, 3], ("b",): 3.0}
    assert conflicts(cfgs, ["s1", "s2"]) == []
    assert combine(cfgs, ["s1", "s2"]) == {
        "scenario": {"name": "s1+s2", "description": "s1 does it; s2 does it",
                     "cost_per_day": 5.0, "start_day": 0.0, "ramp_days": 0.0,
                     "adds": ["m.new", "m.other"], "uncertainty": {}},
        "a": {"x": 5, "y": [1, 2, 3]}, "b": 3.0, "m": {"new": {"k": 1}}}
    assert SMALL_BASE["a"] == {"x": 1, "y": [1, 2]}  # the inputs are not changed


def test_conflicts_small_dicts() -> None:
    s1 = copy.deepcopy(SMALL_BASE) | {"scenario": _scn("s1", 1.0, [])}
    s1["a"]["x"] = 5
    s3 = copy.deepcopy(SMALL_BASE) | {"scenario": _scn("s3", 1.0, [])}
    s3["a"]["x"] = 6
    s4 = copy.deepcopy(s1) | {"scenario": _scn("s4", 1.0, [])}  # the same value: no conflict
    s5 = copy.deepcopy(SMALL_BASE) | {"scenario": _scn("s5", 1.0, [])}
    s5["a"]["y"] = [1, 9]
    s6 = copy.deepcopy(SMALL_BASE) | {"scenario": _scn("s6", 1.0, [])}
    s6["a"]["y"] = [1, 2, 3]  # lists compare as whole values
    cfgs = {"baseline": SMALL_BASE, "s1": s1, "s3": s3, "s4": s4, "s5": s5, "s6": s6}
    assert conflicts(cfgs, ["s1", "s3"]) == ["a.x: s1 sets 5, s3 sets 6"]
    assert conflicts(cfgs, ["s1", "s4"]) == []
    assert conflicts(cfgs, ["s5", "s6"]) == ["a.y: s5 sets [1, 9], s6 sets [1, 2, 3]"]
    with pytest.raises(StudyError, match=r"a\.x: s1 sets 5, s3 sets 6"):
        combine(cfgs, ["s1", "s3"])


def test_combine_two_real_scenarios() -> None:
    cfgs = library("seo", "guest_checkout")
    expected = copy.deepcopy(cfgs["baseline"])
    expected["channels"]["search"]["organic_reach_per_day"] = \
        cfgs["seo"]["channels"]["search"]["organic_reach_per_day"]
    expected["checkout"]["forced_account"] = False
    expected["scenario"] |= {
        "name": "seo+guest_checkout",
        "description": "; ".join(cfgs[n]["scenario"]["description"]
                                 for n in ("seo", "guest_checkout")),
        "cost_per_day": cfgs["seo"]["scenario"]["cost_per_day"]
        + cfgs["guest_checkout"]["scenario"]["cost_per_day"],
        "adds": [], "uncertainty": {}}
    both = combine(cfgs, ["seo", "guest_checkout"])
    assert both == expected
    build_spec(both, complete=True)
    # a set of one is that scenario, its uncertainty left out
    alone = copy.deepcopy(cfgs["seo"])
    alone["scenario"]["uncertainty"] = {}
    assert combine(cfgs, ["seo"]) == alone


def test_real_scenarios_that_conflict() -> None:
    cfgs = library("case_studies", "educational_content")
    (found,) = conflicts(cfgs, ["case_studies", "educational_content"])
    assert found.startswith("journey.content_quality: case_studies sets ")


# ------------------------------------------------------------------ simulated, not added
def test_running_costs_of_a_set_add_up_exactly() -> None:
    """Two cost-only scenarios (3 and 5 per day): on the same streams the set's npv gain
    is the sum of the singles' in every replication (seed SEED, 3 replications)."""
    base = library()["baseline"]
    cfgs = {"baseline": base, "a": edited(base, "a", 3.0), "b": edited(base, "b", 5.0)}
    cfgs["a+b"] = combine(cfgs, ["a", "b"])
    assert cfgs["a+b"]["scenario"]["cost_per_day"] == 8.0
    runs = simulate_options(cfgs, "npv_clv", 3, SEED, progress=False)
    for metric, sign in (("npv", -1), ("npv_clv", -1), ("costs.intervention", 1)):
        wide = pf._wide(runs, metric)
        gain = {o: wide[o].to_numpy() - wide["baseline"].to_numpy() for o in cfgs}
        assert np.all(sign * gain["a"] > 0) and np.all(sign * (gain["b"] - gain["a"]) > 0)
        np.testing.assert_allclose(gain["a+b"], gain["a"] + gain["b"], rtol=ROUNDING)
    purchases = pf._wide(runs, "purchases")
    assert (purchases.to_numpy() == purchases[["baseline"]].to_numpy()).all()


def test_overlapping_effects_are_simulated_not_added() -> None:
    """good (search reach x4, free) and dup (the same change, 0.5 a day): good+dup is dup's
    config, so its gain is dup's exactly, not the sum; the interaction is -good's gain."""
    base = library()["baseline"]
    cfgs = {"baseline": base, "good": edited(base, "good", 0.0, 4.0),
            "dup": edited(base, "dup", 0.5, 4.0)}
    r = run_portfolio(cfgs, "npv_clv", 1.0, 2, 4, 4, SEED, progress=False)
    t = r.sets.set_index("set")
    assert t.loc["good", "gain_low"] > 0  # seed SEED: kept, so the set is simulated
    assert t.loc["good+dup", "gain_mean"] == pytest.approx(t.loc["dup", "gain_mean"],
                                                           rel=ROUNDING)
    assert t.loc["good+dup", "additive_gain"] == pytest.approx(
        t.loc["good", "gain_mean"] + t.loc["dup", "gain_mean"], rel=ROUNDING)
    assert t.loc["good+dup", "interaction"] == pytest.approx(-t.loc["good", "gain_mean"],
                                                             rel=ROUNDING)
    assert r.chosen == "good"


# ------------------------------------------------------------------ the search
def _search_library() -> dict[str, dict[str, Any]]:
    cfgs = library("guest_checkout", "remove_hidden_fees")
    base = cfgs["baseline"]
    cfgs["reach"] = edited(base, "reach", 1.0, 4.0)
    cfgs["reach3"] = edited(base, "reach3", 0.0, 3.0)  # conflicts with reach
    cfgs["waste"] = edited(base, "waste", 2.0)  # a running cost, no effect: harmful alone
    cfgs["dear"] = edited(base, "dear", 9.0, 4.0)  # over the budget alone
    return cfgs


BUDGET = 3.0


@cache
def _search(n_jobs: int) -> pf.PortfolioResult:
    return run_portfolio(_search_library(), "npv_clv", BUDGET, 3, 100, 4, SEED, n_jobs=n_jobs,
                         progress=False)


def test_budget_pruning_and_conflicts() -> None:
    r = _search(1)
    cfgs = _search_library()
    t = r.sets
    assert (t["cost_per_day"] <= BUDGET).all()
    for _, row in t.iterrows():
        members = [] if row["set"] == "baseline" else row["set"].split("+")
        assert row["cost_per_day"] == sum(cfgs[m]["scenario"]["cost_per_day"] for m in members)
        single = t.set_index("set")["gain_mean"]
        assert row["additive_gain"] == pytest.approx(sum(single[m] for m in members),
                                                     rel=ROUNDING)
    assert t.set_index("set").loc[r.chosen, "cost_per_day"] <= BUDGET
    reasons = r.skipped.set_index("set")["reason"]
    assert reasons["dear"].startswith("cost_per_day 9 above the budget 3")
    assert "waste" in r.settings["pruned"] and reasons["waste"].startswith("pruned")
    assert not any("waste" in s.split("+") for s in t["set"] if s != "waste")
    assert "organic_reach_per_day" in reasons["reach+reach3"]
    assert not any({"reach", "reach3"} <= set(s.split("+")) for s in t["set"])
    # the chosen set is the best mean; runner-ups follow; p_best sums to one
    assert r.chosen == t["set"].iloc[0] and r.runners_up == list(t["set"].iloc[1:4])
    assert t["p_best"].sum() == pytest.approx(1.0)
    assert r.verified["set"].iloc[0] == r.chosen
    assert (r.verified["first_replication"] == 4).all()
    assert set(r.runs.loc[r.runs["round"] == "verify", "replication"]) == {4, 5, 6, 7}
    assert r.settings["runs"] == len(r.runs)
    text = r.markdown()
    assert text.startswith(f"Launch {r.chosen} ") and "fresh replications" in text


def test_same_results_with_two_workers() -> None:
    one, two = _search(1), _search(2)
    assert one.chosen == two.chosen
    for a, b in [(one.sets, two.sets), (one.verified, two.verified), (one.runs, two.runs),
                 (one.skipped, two.skipped)]:
        pd.testing.assert_frame_equal(a, b)


def test_nothing_worth_launching() -> None:
    base = library()["baseline"]
    r = run_portfolio({"baseline": base, "waste": edited(base, "waste", 2.0)}, "npv", 5.0,
                      3, 8, 3, SEED, progress=False)
    assert r.chosen == "baseline" and list(r.verified["set"]) == ["waste"]
    assert r.markdown().startswith("Launch none of them")


# ------------------------------------------------------------------ validation
@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a run started before the inputs were checked")
    monkeypatch.setattr(pf, "run_study", refuse)


@pytest.mark.usefixtures("no_runs")
@pytest.mark.parametrize(("change", "match"), [
    ({"budget": -1.0}, r"portfolio\.budget = -1\.0: a running cost per day of 0 or more"),
    ({"budget": 0.5}, r"portfolio\.budget = 0\.5: .*cheapest.*a costs 1 per day"),
    ({"names": ()}, r"compare = \[\]: at least one scenario"),
    ({"launch": True}, r"scenario\.start_day .*\(scenario b\) = '30 / 0'"),
    ({"objective": "nope"}, r"run\.objective = 'nope'"),
    ({"replications": 1}, r"run\.replications = 1: 2 or more"),
    ({"max_size": 0}, r"portfolio\.max_size = 0"),
])
def test_refused_before_anything_runs(change: dict[str, Any], match: str) -> None:
    base = library()["baseline"]
    cfgs = {"baseline": base, "a": edited(base, "a", 1.0), "b": edited(base, "b", 2.0)}
    if change.get("launch"):
        cfgs["b"]["scenario"]["start_day"] = 30.0
    cfgs = {n: cfgs[n] for n in ("baseline", *change.get("names", ("a", "b")))}
    args = {"objective": "npv_clv", "budget": 5.0, "max_size": 3, "candidates": 8,
            "replications": 3} | {k: v for k, v in change.items()
                                  if k not in ("names", "launch")}
    with pytest.raises(StudyError, match=match):
        run_portfolio(cfgs, seed=SEED, progress=False, **args)

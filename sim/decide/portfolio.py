"""Choosing a set of interventions: which scenarios of the library to launch together.

Given a budget for the interventions' running costs (``portfolio.budget``, the largest total
``scenario.cost_per_day`` of a set), find the set of the library's scenarios that maximises
the objective (``run.objective``, a metric of ``metrics.json``; larger is better), their
interactions simulated, not added up.

Method
------
1. **Combining.** A set's config is the baseline's plus, for every scenario in it, every
   leaf where that scenario's config differs from the baseline's (lists compare as whole
   values). Two scenarios that set the same key to different values conflict: the set is
   skipped, with the key. The set's ``scenario`` section is named ``a+b``, its
   ``cost_per_day`` is the sum of the members', its ``adds`` the union, its
   ``uncertainty`` empty (a point decision). Every set is checked by ``build_spec``.
2. **Round 1, the singles.** The baseline and every scenario that fits the budget alone,
   ``replications`` runs each on shared streams (common random numbers: replication r of
   every option sees the same customers), so every gain is a paired difference.
3. **Pruning.** A scenario whose gain alone has a 95 % t interval entirely at or below 0
   (surely harmful alone) enters no set. The others' sets of 2 .. ``max_size`` within the
   budget are ranked by the sum of their members' mean gains: the gain if effects added up.
   That ranking is a heuristic, not a bound: overlapping effects (two fixes of the same
   checkout friction) usually give less than the sum, a synergy can give more.
4. **Round 2, the sets.** The ``candidates`` best-ranked sets that do not conflict are
   simulated on the same streams.
5. **Choice.** The set (the empty set, the baseline, included) with the largest mean
   paired gain; ties go to the cheaper, then the smaller set. Reported with its 95 % t
   interval, the share of replications in which it beats the baseline, the additive gain
   next to the simulated one (their difference is the interaction), the runner-up sets,
   and the probability that it is best among the sets simulated (the share of
   replications in which its objective is the highest, ties shared).
6. **Verification.** Picking the top mean out of many noisy means biases the winner's
   gain upwards (the winner's curse); the probability best accounts for that noise better
   than the top mean does, but is measured on the same replications. The chosen set and
   the runner-up are therefore run again on fresh replications (``replications ..
   2 x replications - 1``, which the search did not see): their gains there are unbiased,
   and are the numbers to quote.

The intervals cover the simulation noise given the assumptions; a PSA
(``sim.decide.psa``) covers the uncertainty of the assumptions themselves.

References
----------
Nelson, B. L. & Matejcik, F. J. (1995). Using common random numbers for indifference-zone
selection and multiple comparisons in simulation. Management Science 41(12), 1935-1945.
Smith, J. E. & Winkler, R. L. (2006). The optimizer's curse: skepticism and postdecision
surprise in decision analysis. Management Science 52(3), 311-322.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.decide.study import STUDY_METRICS, Study, StudyError, run_study
from sim.engine import simulate
from sim.measure.metrics import replication_metrics
from sim.model.config import launched
from sim.model.spec import SpecError, build_spec
from sim.model.uncertainty import Uncertainty

__all__ = ["PortfolioResult", "changes", "combine", "conflicts", "markdown", "run_portfolio",
           "set_name", "simulate_options"]

SEP = "+"  # joins the members' names into a set's name (never in a scenario's name)
LEVEL = 0.95
RUNNERS_UP = 3
MAX_COMBINATIONS = 1_000_000  # sets enumerated and ranked, at most
_ABSENT = object()  # a key the scenario's config does not have


@dataclass
class PortfolioResult:
    """A set of interventions chosen, and what the search saw.

    Attributes
    ----------
    sets : one row per set simulated (the baseline, the empty set, included), best first:
        ``set``, ``size``, ``cost_per_day``, ``gain_mean``, ``gain_low``, ``gain_high``
        (the paired gain over the baseline in the objective, 95 % t interval),
        ``additive_gain`` (the sum of the members' gains alone), ``interaction``
        (``gain_mean - additive_gain``), ``share_better`` (of replications beating the
        baseline), ``p_best`` (share of replications in which it is the best of these
        sets), ``round`` (singles or sets).
    chosen : the name of the chosen set (``a+b``, or ``baseline``: launch nothing).
    verified : the chosen set and the runner-up again on fresh replications: ``set``,
        ``gain_mean``, ``gain_low``, ``gain_high``, ``share_better``, ``search_gain``
        (its gain in the search), ``behind_chosen_mean/low/high`` (the paired difference
        to the chosen set; NaN for the chosen set), ``replications``, ``first_replication``.
    skipped : ``set``, ``reason``: sets and scenarios not simulated (over the budget,
        pruned, conflicting, invalid).
    runs : the studies' tables (one row per run, ``round``: singles, sets or verify).
    settings : objective, budget, max_size, candidates, replications, seed, runs.
    """

    sets: pd.DataFrame
    chosen: str
    verified: pd.DataFrame
    skipped: pd.DataFrame
    runs: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def runners_up(self) -> list[str]:
        """The next sets by mean gain after the chosen one."""
        return [s for s in self.sets["set"] if s != self.chosen][:RUNNERS_UP]

    def markdown(self) -> str:
        return markdown(self)


# ------------------------------------------------------------------------ combining
def set_name(names: Sequence[str]) -> str:
    """A set's name: its members' names joined by ``+`` (the baseline for none)."""
    return SEP.join(names) if names else "baseline"


def changes(base: Mapping[str, Any], cfg: Mapping[str, Any], _path: tuple[str, ...] = ()
            ) -> dict[tuple[str, ...], Any]:
    """Every leaf (key path) where ``cfg`` differs from ``base``, the ``scenario`` section
    left out; a key ``cfg`` adds comes whole, a key it lacks maps to a removal marker.
    Lists and other non-dict values compare as whole values."""
    out: dict[tuple[str, ...], Any] = {}
    for key in dict.fromkeys([*base, *cfg]):
        path = (*_path, key)
        if path == ("scenario",):
            continue
        a, b = base.get(key, _ABSENT), cfg.get(key, _ABSENT)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out |= changes(a, b, path)
        elif a is _ABSENT or b is _ABSENT or a != b or type(a) is not type(b):
            out[path] = b
    return out


def conflicts(configs: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """The keys two members of the set set to different values, in words."""
    seen: dict[tuple[str, ...], tuple[str, Any]] = {}
    found = []
    for name in names:
        for path, value in changes(configs["baseline"], configs[name]).items():
            if path in seen and not _same(seen[path][1], value):
                other, first = seen[path]
                found.append(f"{'.'.join(path)}: {other} sets {_show(first)}, "
                             f"{name} sets {_show(value)}")
            seen.setdefault(path, (name, value))
    return found


def combine(configs: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The config of the scenarios ``names`` launched together: the baseline's plus every
    member's changes; ``scenario``: name ``a+b``, descriptions joined, ``cost_per_day``
    summed, ``adds`` united, ``uncertainty`` empty.

    Raises
    ------
    StudyError : two members set the same key to different values.
    """
    found = conflicts(configs, names)
    if found:
        raise StudyError(f"the scenarios {', '.join(names)} cannot run together: "
                         + "; ".join(found))
    cfg = copy.deepcopy(dict(configs["baseline"]))
    for name in names:
        for path, value in changes(configs["baseline"], configs[name]).items():
            _put(cfg, path, copy.deepcopy(value))
    members = [configs[n]["scenario"] for n in names]
    cfg["scenario"] = {
        **cfg["scenario"], "name": set_name(names),
        "description": "; ".join(str(m["description"]) for m in members if m["description"]),
        "cost_per_day": float(sum(float(m["cost_per_day"]) for m in members)),
        "adds": list(dict.fromkeys(a for m in members for a in m["adds"])),
        "uncertainty": {}}
    return cfg


def _put(cfg: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        cfg = cfg.setdefault(key, {})
    if value is _ABSENT:
        cfg.pop(path[-1], None)
    else:
        cfg[path[-1]] = value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    return "nothing (removes it)" if value is _ABSENT else repr(value)


# ------------------------------------------------------------------------ validation
def _cost(cfg: Mapping[str, Any]) -> float:
    return float(cfg["scenario"]["cost_per_day"])


def _n_sets(n: int, max_size: int) -> int:
    return sum(math.comb(n, k) for k in range(2, min(max_size, n) + 1))


def _check(configs: Mapping[str, Mapping[str, Any]], objective: str, budget: Any,
           max_size: int, candidates: int, replications: int) -> None:
    """Every problem with the inputs, in one message, before anything runs."""
    names = [n for n in configs if n != "baseline"]
    problems = []
    if next(iter(configs), None) != "baseline":
        problems.append(("configs", list(configs)[:3], "the baseline's config first, "
                         "under 'baseline', then each scenario's"))
    if not names:
        problems.append(("compare", [], "at least one scenario of the library ('all' or a "
                         "list of names)"))
    for n in names:
        if launched(configs[n]):
            s = configs[n]["scenario"]
            problems.append((f"scenario.start_day / scenario.ramp_days (scenario {n})",
                             f"{s['start_day']:g} / {s['ramp_days']:g}",
                             "0 / 0: a set of interventions is launched from day 0 (drop "
                             f"{n} from compare, or run it as a comparison of its own)"))
        if SEP in n:
            problems.append(("compare", n, f"scenario names without {SEP!r}"))
    if budget is None or not isinstance(budget, int | float) or not budget >= 0:
        problems.append(("portfolio.budget", budget, "a running cost per day of 0 or more "
                         "(the largest total scenario.cost_per_day of a set)"))
    elif names and min(_cost(configs[n]) for n in names) > budget:
        cheapest = min(names, key=lambda n: _cost(configs[n]))
        problems.append(("portfolio.budget", budget, "at least the cheapest scenario's "
                         f"cost: {cheapest} costs {_cost(configs[cheapest]):g} per day"))
    if max_size < 1:
        problems.append(("portfolio.max_size", max_size, "1 or more"))
    elif _n_sets(len(names), max_size) > MAX_COMBINATIONS:
        problems.append(("portfolio.max_size", max_size, f"a size whose sets of "
                         f"{len(names)} scenarios number at most {MAX_COMBINATIONS:,}"))
    if candidates < 1:
        problems.append(("portfolio.candidates", candidates, "1 or more"))
    if replications < 2:
        problems.append(("run.replications", replications, "2 or more: the gains' "
                         "intervals need at least two paired replications"))
    if not problems:
        problems += _check_objective(configs["baseline"], objective)
    if problems:
        lines = "\n".join(f"  - {k} = {v!r}: {a}" for k, v, a in problems)
        raise StudyError(f"cannot choose a set of interventions ({len(problems)} "
                         f"problem{'s' if len(problems) > 1 else ''}):\n{lines}")


def _check_objective(base: Mapping[str, Any], objective: str) -> list[tuple[str, Any, str]]:
    if objective in STUDY_METRICS:
        return []
    spec = build_spec(base, complete=True)
    tiny = dataclasses.replace(spec, market_size=1, engine="agent", n_jobs=1, progress=False)
    known = replication_metrics(simulate(tiny, tiny.seed, tiny.first_replication), tiny)
    if objective in known:
        return []
    return [("run.objective", objective, "a metric name of metrics.json to maximise, e.g. "
             "npv_clv, npv, purchases, revenue")]


# ------------------------------------------------------------------------ running
def simulate_options(configs: Mapping[str, Mapping[str, Any]], objective: str,
                     replications: int, seed: int, first: int = 0, n_jobs: int = 1,
                     progress: bool = True, label: str = "portfolio",
                     only: Sequence[str] | None = None) -> pd.DataFrame:
    """Run every option of ``configs`` (plain dicts, "baseline" among them), or those in
    ``only``, on the shared streams of replications ``first .. first + replications - 1``:
    one row per run, as ``run_study`` returns them (the study metrics and the objective)."""
    metrics = STUDY_METRICS if objective in STUDY_METRICS else (*STUDY_METRICS, objective)
    study = Study(configs, Uncertainty(), np.empty((1, 0)), replications, seed, "shared",
                  first=first, metrics=metrics,
                  only=tuple(only) if only is not None else None)
    return run_study(study, n_jobs, None, progress, label=label)


def _wide(runs: pd.DataFrame, objective: str) -> pd.DataFrame:
    """The objective by replication (rows) and option (columns, in the study's order)."""
    order = list(dict.fromkeys(runs["option"]))
    return runs.pivot(index="replication", columns="option", values=objective)[order]


def _interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t interval of paired differences (one per replication)."""
    mean = float(np.mean(d))
    t = float(stats.t.ppf(0.5 + LEVEL / 2, d.size - 1))
    hw = t * float(np.std(d, ddof=1)) / math.sqrt(d.size)
    return mean, mean - hw, mean + hw


def _p_best(wide: pd.DataFrame) -> pd.Series:
    """Share of replications in which each option's objective is the highest (ties, e.g.
    a member that adds nothing, share the replication)."""
    x = wide.to_numpy()
    top = x.max(axis=1, keepdims=True)
    best = x >= top - 1e-9 * np.maximum(1.0, np.abs(top))
    return pd.Series((best / best.sum(axis=1, keepdims=True)).mean(axis=0), index=wide.columns)


def _candidates(configs: Mapping[str, Mapping[str, Any]], gains: Mapping[str, float],
                kept: Sequence[str], budget: float, max_size: int, candidates: int
                ) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]], int]:
    """The sets of round 2 (the best-ranked by additive gain that combine and validate),
    the sets skipped on the way (set, reason) and how many sets were ranked."""
    sets = [c for k in range(2, min(max_size, len(kept)) + 1)
            for c in itertools.combinations(kept, k)
            if sum(_cost(configs[n]) for n in c) <= budget + 1e-9]
    rank = {n: i for i, n in enumerate(kept)}
    sets.sort(key=lambda c: (-sum(gains[n] for n in c), sum(_cost(configs[n]) for n in c),
                             len(c), [rank[n] for n in c]))
    chosen: dict[str, dict[str, Any]] = {}
    skipped = []
    for c in sets:
        if len(chosen) == candidates:
            break
        found = conflicts(configs, c)
        if found:
            skipped.append((set_name(c), "conflict: " + "; ".join(found)))
            continue
        cfg = combine(configs, c)
        try:
            build_spec(cfg, complete=True)
        except SpecError as err:
            skipped.append((set_name(c), "invalid together: " + "; ".join(
                f"{k} = {v!r}: {a}" for k, v, a in err.problems)))
            continue
        chosen[set_name(c)] = cfg
    return chosen, skipped, len(sets)


# ------------------------------------------------------------------------ the search
def run_portfolio(configs: Mapping[str, Mapping[str, Any]], objective: str, budget: float,
                  max_size: int, candidates: int, replications: int, seed: int,
                  n_jobs: int = 1, progress: bool = True) -> PortfolioResult:
    """Choose the set of scenarios to launch together (see the module's docstring).

    Parameters
    ----------
    configs : each option's composed config as a plain dict (``to_container``), the
        baseline first under "baseline", then every scenario of the library.
    objective : the metric to maximise (``run.objective``).
    budget : the largest total ``scenario.cost_per_day`` of a set (currency per day).
    max_size : scenarios in a set, at most.
    candidates : sets of two or more simulated, at most.
    replications : per option and round; the verification runs as many fresh ones.
    seed : the seed of every run.

    Raises
    ------
    StudyError : naming the key, the value and what is allowed (budget negative or below
        every scenario's cost, no scenario, a launched scenario, an unknown objective, too
        few replications), before anything runs.
    """
    _check(configs, objective, budget, max_size, candidates, replications)
    lib = [n for n in configs if n != "baseline"]
    fits = [n for n in lib if _cost(configs[n]) <= budget + 1e-9]
    skipped = [(n, f"cost_per_day {_cost(configs[n]):g} above the budget {budget:g}")
               for n in lib if n not in fits]
    go = dict(n_jobs=n_jobs, progress=progress)
    runs1 = simulate_options({n: configs[n] for n in ["baseline", *fits]}, objective,
                             replications, seed, label="portfolio: singles", **go)
    w1 = _wide(runs1, objective)
    diff = {n: w1[n].to_numpy() - w1["baseline"].to_numpy() for n in fits}
    single = {n: _interval(d) for n, d in diff.items()}
    kept = [n for n in fits if single[n][2] > 0]
    skipped += [(n, f"pruned: alone its gain's 95 % upper bound is {single[n][2]:.4g} <= 0, "
                 "so no set with it was simulated") for n in fits if n not in kept]
    sets, more, n_ranked = _candidates(configs, {n: g[0] for n, g in single.items()}, kept,
                                       budget, max_size, candidates)
    skipped += more
    runs = [runs1.assign(round="singles")]
    wide = w1
    if sets:
        # the baseline's runs of round 1 serve again (the same streams): not rerun
        runs2 = simulate_options({"baseline": configs["baseline"], **sets}, objective,
                                 replications, seed, label="portfolio: sets",
                                 only=list(sets), **go)
        runs.append(runs2.assign(round="sets"))
        wide = pd.concat([w1, _wide(runs2, objective)], axis=1)
    table = _sets_table(configs, wide, sets, single)
    chosen = str(table["set"].iloc[0])
    verify = [s for s in table["set"] if s != "baseline"][:1 if chosen == "baseline" else 2]
    all_cfgs = {**{n: configs[n] for n in fits}, **sets}
    verified, runs3 = _verify(configs["baseline"], {s: all_cfgs[s] for s in verify}, table,
                              objective, replications, seed, go)
    runs.append(runs3.assign(round="verify"))
    all_runs = pd.concat(runs, ignore_index=True)
    settings = {"objective": objective, "budget": float(budget), "max_size": max_size,
                "candidates": candidates, "replications": replications, "seed": seed,
                "level": LEVEL, "runs": len(all_runs), "library": lib, "pruned":
                [n for n in fits if n not in kept], "sets_ranked": n_ranked,
                "intervals": "simulation noise given the assumptions (common random numbers)"}
    return PortfolioResult(table, chosen, verified,
                           pd.DataFrame(skipped, columns=["set", "reason"]), all_runs,
                           settings)


def _sets_table(configs: Mapping[str, Mapping[str, Any]], wide: pd.DataFrame,
                sets: Mapping[str, Mapping[str, Any]],
                single: Mapping[str, tuple[float, float, float]]) -> pd.DataFrame:
    base = wide["baseline"].to_numpy()
    p_best = _p_best(wide)
    rows = []
    for option in wide.columns:
        members = [] if option == "baseline" else option.split(SEP)
        d = wide[option].to_numpy() - base
        mean, low, high = _interval(d) if members else (0.0, 0.0, 0.0)
        additive = float(sum(single[n][0] for n in members))
        rows.append({"set": option, "size": len(members),
                     "cost_per_day": float(sum(_cost(configs[n]) for n in members)),
                     "gain_mean": mean, "gain_low": low, "gain_high": high,
                     "additive_gain": additive, "interaction": mean - additive,
                     "share_better": float(np.mean(d > 0)), "p_best": float(p_best[option]),
                     "round": "sets" if option in sets else "singles"})
    table = pd.DataFrame(rows)
    table = table.sort_values(["gain_mean", "cost_per_day", "size"],
                              ascending=[False, True, True], kind="stable")
    return table.reset_index(drop=True)


def _verify(base: Mapping[str, Any], cfgs: Mapping[str, Mapping[str, Any]],
            table: pd.DataFrame, objective: str, replications: int, seed: int,
            go: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sets ``cfgs`` (the chosen first) against the baseline on fresh replications."""
    columns = ["set", "gain_mean", "gain_low", "gain_high", "share_better", "search_gain",
               "behind_chosen_mean", "behind_chosen_low", "behind_chosen_high",
               "replications", "first_replication"]
    if not cfgs:
        return pd.DataFrame(columns=columns), pd.DataFrame()
    runs = simulate_options({"baseline": base, **cfgs}, objective, replications, seed,
                            first=replications, label="portfolio: verify", **go)
    wide = _wide(runs, objective)
    first = wide[next(iter(cfgs))].to_numpy()
    search = table.set_index("set")["gain_mean"]
    rows = []
    for i, name in enumerate(cfgs):
        x = wide[name].to_numpy()
        d = x - wide["baseline"].to_numpy()
        behind = _interval(x - first) if i else (math.nan,) * 3
        rows.append([name, *_interval(d), float(np.mean(d > 0)), float(search[name]),
                     *behind, replications, replications])
    return pd.DataFrame(rows, columns=columns), runs


# ------------------------------------------------------------------------ summary
def _num(x: float) -> str:
    return f"{x:+,.0f}" if abs(x) >= 100 else f"{x:+.3g}"


def _span(low: float, high: float) -> str:
    return f"[{_num(low)}, {_num(high)}]"


def markdown(result: PortfolioResult) -> str:
    """A short summary a strategist can paste: the set to launch, its gain on fresh
    replications, the runner-up, what the intervals cover."""
    s, t = result.settings, result.sets.set_index("set")
    obj, n = s["objective"], s["replications"]
    v = result.verified.set_index("set") if len(result.verified) else None
    lines = []
    if result.chosen == "baseline":
        lines.append(f"Launch none of them: no set within the budget of {s['budget']:g} per "
                     f"day beats the baseline on {obj} in the search.")
    else:
        c = t.loc[result.chosen]
        what = "together" if c["size"] > 1 else "alone"
        lines.append(f"Launch {result.chosen} {what} ({c['cost_per_day']:g} per day, budget "
                     f"{s['budget']:g}).")
        if v is not None and result.chosen in v.index:
            f = v.loc[result.chosen]
            lines.append(f"- {obj} {_num(f['gain_mean'])} {_span(f['gain_low'], f['gain_high'])}"
                         f" against the baseline (fresh replications), better in "
                         f"{round(f['share_better'] * n)} of {n}.")
        lines.append(f"- In the search: {_num(c['gain_mean'])} "
                     f"{_span(c['gain_low'], c['gain_high'])}, best of the "
                     f"{len(t)} sets simulated in {c['p_best']:.0%} of replications "
                     "(this gain is biased upwards by the selection; the fresh one is not).")
        if c["size"] > 1:
            lines.append(f"- If the effects added up: {_num(c['additive_gain'])}; simulated "
                         f"together: {_num(c['gain_mean'])} (interaction "
                         f"{_num(c['interaction'])}).")
    for r in result.runners_up:
        if r == "baseline":
            lines.append("- Runner-up: launch nothing (the baseline).")
            continue
        row = t.loc[r]
        text = (f"- Runner-up {r} ({row['cost_per_day']:g} per day): {_num(row['gain_mean'])} "
                f"{_span(row['gain_low'], row['gain_high'])} in the search")
        if v is not None and r in v.index:
            f = v.loc[r]
            text += f"; fresh: {_num(f['gain_mean'])} {_span(f['gain_low'], f['gain_high'])}"
            if not math.isnan(f["behind_chosen_mean"]):
                text += (f", difference to the chosen set {_num(f['behind_chosen_mean'])} "
                         f"{_span(f['behind_chosen_low'], f['behind_chosen_high'])}")
        lines.append(text + ".")
    if s["pruned"]:
        lines.append(f"- Harmful alone, left out of every set: {', '.join(s['pruned'])}.")
    lines.append(f"The intervals (95 %, {n} paired replications) cover simulation noise "
                 "given the assumptions; a PSA covers the assumptions' uncertainty.")
    return "\n".join(lines)

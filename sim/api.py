"""The Python API for notebooks and scripts: ``sim.run(overrides=[...])``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from sim.decide import PsaResult, run_psa, run_sobol, run_tornado
from sim.engine import OUTCOMES, TICKET_OUTCOMES, SimulationResult
from sim.errors import InputError
from sim.measure.experiment import (
    ExperimentResult,
    estimated_memory_bytes,
    estimated_work_seconds,
    extend,
    run_experiment,
)
from sim.measure.finance import (
    cohort_table,
    finance_table,
    ltv_comparison,
    ltv_table,
    payback_table,
    pnl_table,
)
from sim.measure.stats import HEADLINE, Estimate, estimate, summarize
from sim.measure.stats import compare as analysis_compare
from sim.model.config import (
    baseline_config,
    compose_config,
    launched,
    scenario_choice,
    scenario_names,
)
from sim.model.spec import ModelSpec, SpecError, build_spec
from sim.model.uncertainty import DESIGNS, Uncertainty

__all__ = ["Comparison", "Decision", "MemoryGuardError", "Run", "WorkGuardError",
           "check_comparison", "check_memory", "check_metric_name", "check_psa", "check_work",
           "compare", "metric_names", "psa", "run", "scenario_list"]


@dataclass
class Run:
    """A finished run of one scenario: the spec, every replication, metrics with CIs."""

    experiment: ExperimentResult
    summary: dict[str, Estimate]

    @property
    def spec(self) -> ModelSpec:
        return self.experiment.spec

    @property
    def stages(self) -> list[str]:
        """The journey framework's stage names, in order."""
        return [label for label, _ in self.spec.report]

    def metrics(self) -> pd.DataFrame:
        """One row per metric: mean, sd, n, half_width, low, high (95% CI)."""
        return pd.DataFrame({k: v.as_dict() for k, v in self.summary.items()}).T

    def funnel(self) -> pd.DataFrame:
        """One row per framework stage: customers reaching it, share of the aware and step
        conversion (the share of the previous stage's customers who also reached it), each
        as mean and 95% CI (low, high)."""
        rows = {}
        for stage in self.stages:
            row = {}
            for key, name in (("reached", "reached"), ("rate", "share_of_aware"),
                              ("step_rate", "step_conversion")):
                e = self.summary[f"funnel.{stage}.{key}"]
                row |= {name: e.mean, f"{name}_low": e.low, f"{name}_high": e.high}
            rows[stage] = row
        return pd.DataFrame(rows).T.rename_axis("stage")

    def customers(self) -> pd.DataFrame:
        """One row per aware customer, all replications."""
        return self.experiment.customers()

    def daily(self) -> pd.DataFrame:
        """Per replication and day: entries, occupancy, spend, revenue."""
        return self.experiment.daily()

    def purchases(self) -> pd.DataFrame:
        """Every order (the transaction log), all replications."""
        return self.experiment.purchases()

    def tickets(self) -> pd.DataFrame:
        """Every service-desk ticket, all replications."""
        return self.experiment.tickets()

    def referrals(self) -> pd.DataFrame:
        """Every referral, all replications."""
        return self.experiment.referrals()

    def events(self, replication: int = 0) -> pd.DataFrame:
        """Every state entry of one replication."""
        return self.experiment.events(replication)

    def event_log(self) -> pd.DataFrame:
        """Every state entry of every customer, all replications, journey by journey, with
        the state left, channel and segment (``events.csv``)."""
        return self.experiment.event_log()

    def finance(self) -> pd.DataFrame:
        """The finance summary (``finance.csv``): one row with LTV (mean, P10/P50/P90), CAC,
        LTV:CAC, payback, NPV, revenue, margin, spend and profit, each with its 95% CI, and
        the discount convention."""
        name = self.spec.scenario_name
        return finance_table({name: self.experiment.metrics}, {name: self.spec})

    def ltv(self) -> pd.DataFrame:
        """LTV by acquisition cohort (month), segment and channel (``ltv.csv``)."""
        return ltv_table(self.experiment)

    def cohorts(self) -> pd.DataFrame:
        """Cumulative discounted value per customer of each acquisition cohort by months
        since acquisition, censored at the horizon (``cohorts.csv``)."""
        return cohort_table(self.experiment)

    def payback(self) -> pd.DataFrame:
        """The average customer's discounted net value by days since acquisition, with the
        customers observable at each age, against CAC (``payback.csv``)."""
        return payback_table(self.experiment)

    def pnl(self) -> pd.DataFrame:
        """The monthly profit and loss, new customers and the installed base apart, means
        across replications with the profit's 95% CI (``pnl.csv``)."""
        return pnl_table(self.experiment)

    def journey_of(self, customer: int, replication: int = 0) -> list[tuple[float, str]]:
        """One customer's path: (day, state) in order."""
        return self.experiment.results[replication].journey_of(customer)

    def flows(self, by: str | None = None) -> pd.DataFrame:
        """The journey's flows between states from the event log, mean per replication
        (``flows.csv``; ``sim.measure.flows.journey_flows``): ``source``, ``target``,
        ``kind`` (enter, forward, loop, back, return, exit), ``count``, ``share_of_aware``,
        ``from_first_entries``; with ``by`` ("segment" or "channel") one set per group, in a
        first column of that name."""
        from sim.measure.flows import journey_flows

        return journey_flows(self.experiment.results, by=by)

    def timeline(self, customer: int | None = None, outcome: str | None = None,
                 replication: int = 0, seed: int = 0) -> Any:
        """One customer's path as a figure (matplotlib Figure): the states entered over
        time, orders and support tickets on the path, the experience score below
        (``sim.present.figures.plot_customer_timeline``).

        Parameters
        ----------
        customer : the customer's id (their row in ``customers()`` of that replication:
            the order of becoming aware); or None for a random one of ``outcome``.
        outcome : with ``customer`` None: one of ``TIMELINE_OUTCOMES`` (``bought``,
            ``repeat``, ``advocate``, ``churned``, ``lost``, ``abandoned``, ``purchased``,
            ``in_journey``), or None for any new customer.
        replication : which of the run's replications (0 = the first).
        seed : the random choice's seed: the same seed picks the same customer.

        Raises
        ------
        InputError : an unknown customer, outcome or replication, both a customer and an
            outcome, or an outcome no customer of the replication had.
        """
        from sim.present import figures

        results = self.experiment.results
        if (isinstance(replication, bool) or not isinstance(replication, int | np.integer)
                or not 0 <= replication < len(results)):
            raise InputError(f"replication={replication!r}: this run has replications 0 to "
                             f"{len(results) - 1} (0 = the first)")
        r = results[replication]
        if customer is not None and outcome is not None:
            raise InputError(f"customer={customer!r}, outcome={outcome!r}: give a customer or "
                             "an outcome to pick one at random from, not both")
        if customer is None:
            customer = _pick_customer(r, outcome, seed, replication)
        elif (isinstance(customer, bool) or not isinstance(customer, int | np.integer)
              or not 0 <= customer < r.n_customers):
            raise InputError(f"customer={customer!r}: replication {replication} has customers "
                             f"0 to {r.n_customers - 1} (ids in the order they became aware)"
                             if r.n_customers else
                             f"customer={customer!r}: nobody became aware in replication "
                             f"{replication}")
        k = int(customer)
        ev, p, t = r.events, r.purchases, r.tickets
        sel, bought, asked = ev["customer"] == k, p["customer"] == k, t["customer"] == k
        path = pd.DataFrame({"time": ev["time"][sel],
                             "state": [r.states[i] for i in ev["state"][sel]],
                             "experience": ev["score"][sel]})
        ax = figures.plot_customer_timeline(
            path, list(r.states), r.horizon_days,
            purchases=pd.DataFrame({"time": p["time"][bought], "value": p["value"][bought]}),
            tickets=pd.DataFrame({"arrival": t["arrival"][asked],
                                  "outcome": [TICKET_OUTCOMES[o] for o in t["outcome"][asked]]}),
            final_experience=float(r.customers["experience"][k]),
            title=_timeline_title(r, k, replication))
        return ax.figure

    def write(self, out_dir: str | Path, plots: bool = True, events: bool = False
              ) -> list[Path]:
        """Write the tables (customers.csv, daily.csv, tickets.csv, the finance tables; with
        ``events`` also events.csv, the event log), with ``plots`` the figures (funnel,
        retention, ltv, activity, experience, cohorts, payback), then metrics.json, which
        marks the folder finished (``sim.io.is_complete``), into ``out_dir``; and after it
        report.html, the page that shows them (``sim.present.html``)."""
        from sim import io
        from sim.present import figures, tables
        from sim.present.html import write_report

        def draw(folder: Path) -> list[Path]:
            figs = self.figures()
            try:
                return [io.save_figure(fig, folder / f"{name}.png") for name, fig in figs.items()]
            finally:
                for fig in figs.values():
                    figures.close(fig)

        written = tables.write_outputs(self.experiment, self.summary, Path(out_dir),
                                       events=events, extra=draw if plots else None)
        return [*written, write_report(Path(out_dir))]  # a view of the finished folder

    def figures(self) -> dict:
        """The standard figures of a run, by name (matplotlib Figures). A figure with
        nothing to draw (nobody aware, nobody bought) is a panel that says so and why;
        with one replication the figures show point values, without intervals."""
        from sim.measure.stats import why_nobody_aware
        from sim.present import figures

        plt = figures.plt
        figs: dict = {}
        nobody_aware = (None if self.summary["aware"].mean > 0 else
                        f"nobody became aware in any replication: {why_nobody_aware(self.spec)}")

        def panel(name: str, size: tuple[float, float], title: str):
            fig, ax = plt.subplots(figsize=size)
            figs[name] = fig
            ax.set_title(f"{title}, {self.title}", fontsize=10, loc="left")
            return ax

        try:
            if nobody_aware:  # every figure says so, and why it may be
                for name, title in (("funnel", "Funnel"),
                                    ("retention", "Retention (Kaplan-Meier)"),
                                    ("ltv", "Customer LTV"),
                                    ("activity", "Active customers and revenue"),
                                    ("experience", "Experience score on entering each state"),
                                    ("cohorts", "LTV to date by acquisition cohort"),
                                    ("payback", "Payback")):
                    figures.nothing_to_show(panel(name, (8, 4), title), nobody_aware)
            else:
                figs["funnel"] = figures.funnel_figure(self.summary, self.stages, self.title,
                                                       log=self.spec.funnel_log)
                customers = [r.customers for r in self.experiment.results]
                bought = [~np.isnan(c["t_purchase"]) for c in customers]
                end = self.spec.horizon_days
                durations = [np.where(np.isnan(c["t_churned"]), end, c["t_churned"])[b]
                             - c["t_purchase"][b] for c, b in zip(customers, bought, strict=True)]
                churned = [~np.isnan(c["t_churned"][b])
                           for c, b in zip(customers, bought, strict=True)]
                figures.plot_retention(durations, churned,
                                        ax=panel("retention", (7, 4), "Retention (Kaplan-Meier)"))
                marks = {name.upper() if name != "mean" else name: self.summary[f"ltv.{name}"]
                         for name in ("p10", "p50", "p90", "mean")}
                customers = self.customers()  # the new customers (the marks are theirs)
                new = customers[~customers["base"]] if "base" in customers else customers
                title = "Customer LTV, new customers, all replications" if len(new) < len(
                    customers) else "Customer LTV, all replications"
                figures.plot_ltv(new["ltv"].to_numpy(), marks=marks,
                                  ax=panel("ltv", (7, 4), title))
                daily = self.daily().groupby("day").mean(numeric_only=True)
                figures.plot_activity(daily.index.to_numpy(),
                                       daily["active_customers"].to_numpy(),
                                       daily["revenue"].to_numpy(),
                                       ax=panel("activity", (8, 4), "Active customers and revenue"))
                states = [s for s in self.spec.states if s != "lost"]
                figures.plot_experience(self.summary, states, ax=panel(
                    "experience", (8, 3.5), "Experience score on entering each state"))
                figures.plot_cohort_curves(self.cohorts(), self.summary["cac"], ax=panel(
                    "cohorts", (8.5, 4.5), "LTV to date by acquisition cohort"))
                figures.plot_payback(self.payback(), self.summary["payback_days"],
                                      self.summary["paid_back"].mean,
                                      ax=panel("payback", (8, 4.5), "Payback"))
            for name, f in figs.items():
                if name != "funnel" or nobody_aware:  # funnel_figure lays itself out
                    f.tight_layout()
        except BaseException:
            for f in figs.values():  # no half-drawn figures left open
                figures.close(f)
            raise
        return figs

    @property
    def title(self) -> str:
        s, n = self.spec, self.experiment.n_replications
        launch = ""
        if s.before is not None:  # a scenario launched during the run
            launch = f" from day {s.start_day:g}" + (f" over {s.ramp_days:g} days"
                                                     if s.ramp_days else "")
        return (f"{s.scenario_name}{launch}: {s.journey_name} journey, "
                f"{n} replication{'' if n == 1 else 's'} x {s.horizon_days:g} "
                f"day{'' if s.horizon_days == 1 else 's'}")


class MemoryGuardError(SpecError):
    """The requested run would not fit in the memory that is free."""


# Run.timeline's outcomes: which customers of a replication each one picks from
TIMELINE_OUTCOMES = {
    "bought": "bought at least once",
    "repeat": "bought again or renewed (retention)",
    "advocate": "became an advocate",
    "churned": "bought, then left",
    "lost": "left before buying, not at the checkout",
    "abandoned": "left at the checkout without buying",
    "purchased": "a customer still active at the horizon",
    "in_journey": "still a prospect at the horizon",
}


def _pick_customer(r: SimulationResult, outcome: str | None, seed: int,
                   replication: int) -> int:
    """A random new customer of ``r`` with ``outcome`` (any, if None), reproducibly."""
    c = r.customers
    if outcome is not None and outcome not in TIMELINE_OUTCOMES:
        raise InputError(f"outcome={outcome!r}: one of {', '.join(TIMELINE_OUTCOMES)} "
                         "(or None for any customer)")
    code = {name: i for i, name in enumerate(OUTCOMES)}
    mask = {
        None: np.ones(r.n_customers, dtype=bool),
        "bought": ~np.isnan(c["t_purchase"]),
        "repeat": ~np.isnan(c["t_retention"]),
        "advocate": np.asarray(c["advocate"], dtype=bool),
    }.get(outcome)
    if mask is None:
        mask = c["outcome"] == code[outcome]
    if "base" in c:  # the installed base did not make the journey in this run
        mask = mask & ~np.asarray(c["base"], dtype=bool)
    pool = np.flatnonzero(mask)
    if not pool.size and outcome is None:
        raise InputError(f"outcome=None: replication {replication} has no customer to show "
                         "(nobody became aware)")
    if not pool.size:
        raise InputError(f"outcome={outcome!r}: no customer of replication {replication} "
                         f"{TIMELINE_OUTCOMES[outcome]}; choose another outcome, or run "
                         "longer or with a larger market")
    return int(np.random.default_rng(seed).choice(pool))


def _timeline_title(r: SimulationResult, k: int, replication: int) -> str:
    """Who customer ``k`` is and how their journey ended, in words."""
    c = r.customers
    base = bool(c["base"][k]) if "base" in c else False
    source = "the installed base" if base else f"aware through {r.channels[c['channel'][k]]}"
    n = int(c["purchases"][k])
    orders = f"{n} order{'' if n == 1 else 's'}"
    ending = {
        "in_journey": "still a prospect at the horizon",
        "purchased": f"a customer at the horizon after {orders}",
        "lost": f"lost on day {c['t_lost'][k]:.0f}",
        "abandoned": f"abandoned the cart, lost on day {c['t_lost'][k]:.0f}",
        "churned": f"churned on day {c['t_churned'][k]:.0f} after {orders}",
    }[OUTCOMES[c["outcome"][k]]]
    advocate = ", an advocate" if c["advocate"][k] else ""
    return (f"Customer {k} of replication {replication} ({r.segments[c['segment'][k]]} "
            f"segment, {source}): {ending}{advocate}")


def check_memory(spec: ModelSpec, replications: int | None = None) -> None:
    """Refuse, before anything runs, a run whose estimated peak memory exceeds what the
    machine has free (``run.memory_guard=false`` skips the check)."""
    from sim import io

    if not spec.memory_guard:
        return
    n = replications or (spec.max_replications if spec.target_rel_half_width is not None
                         else spec.replications)
    need, free = estimated_memory_bytes(spec, n), io.available_memory_bytes()
    if free is None or need <= free:
        return
    gb = 1e9
    raise MemoryGuardError([(
        "market.size",
        spec.market_size,
        f"a run that fits in memory: {n} replications of {spec.market_size:,} people with "
        f"the {spec.engine} engine and n_jobs={spec.n_jobs} need about {need / gb:.1f} GB, "
        f"{free / gb:.1f} GB is available. Reduce market.size"
        f"{', use run.engine=fast' if spec.engine != 'fast' else ''}, lower run.n_jobs, "
        f"or split the replications into blocks (run.first_replication, "
        f"run.replications) merged with python -m sim.report; run.memory_guard=false "
        f"runs it anyway")])


WORK_LIMIT_SECONDS = 2 * 3600.0  # of one core: a run estimated longer is refused up front


class WorkGuardError(SpecError):
    """The requested run would take longer than the work guard allows."""


def check_work(spec: ModelSpec, replications: int | None = None) -> None:
    """Refuse, before anything runs, a run whose estimated work exceeds
    ``WORK_LIMIT_SECONDS`` of one core (``experiment.estimated_work_seconds``: the engine,
    the tables and the figures); ``run.work_guard=false`` skips the check."""
    if not spec.work_guard:
        return
    n = replications or (spec.max_replications if spec.target_rel_half_width is not None
                         else spec.replications)
    need = estimated_work_seconds(spec, n)
    if need <= WORK_LIMIT_SECONDS:
        return
    tick = f" (run.tick_days={spec.tick_days:g})" if spec.engine == "fast" else ""
    raise WorkGuardError([(
        "run.work_guard",
        spec.work_guard,
        f"a run that finishes: {n} replication{'s' if n > 1 else ''} of "
        f"{spec.market_size:,} people over {spec.horizon_days:g} days with the {spec.engine} "
        f"engine{tick} take about {need / 3600:.1f} hours of one core by estimate, more than "
        f"the limit of {WORK_LIMIT_SECONDS / 3600:g} hours. Reduce market.size or "
        f"run.replications, shorten run.horizon_days"
        f"{', use run.engine=fast' if spec.engine != 'fast' else ', use a coarser run.tick_days'}"
        f", or split the replications into blocks (run.first_replication, run.replications) "
        f"merged with python -m sim.report; run.work_guard=false runs it anyway")])


def run(cfg: DictConfig | None = None, overrides: Sequence[str] = (),
        replications: int | None = None, before: DictConfig | None = None) -> Run:
    """Compose (or take) a config, validate it, run every replication, summarise.

    Parameters
    ----------
    cfg : a composed config; when None, the built-in config is composed with ``overrides``.
    overrides : Hydra overrides, e.g. ``["run=smoke", "checkout.hidden_fees=false"]``.
    replications : run exactly this many (a comparison pairs every scenario with the
        baseline's count); by default ``run.replications``, or as many as
        ``run.target_rel_half_width`` needs.
    before : the baseline's config, for a scenario launched during the run
        (``scenario.start_day``, ``scenario.ramp_days``); composed from ``overrides`` with
        ``scenario=baseline`` when not given.

    Raises
    ------
    sim.model.spec.SpecError : listing every invalid key, its value and what is allowed.
    """
    if cfg is None:
        cfg = compose_config(overrides)
        if launched(cfg) and before is None:
            before = baseline_config(overrides)
    elif overrides:
        raise InputError("sim.run: pass either cfg or overrides, not both")
    if cfg.get("compare") not in (None, "", []):
        raise InputError(f"compare={cfg.compare}: sim.run runs one scenario; compare "
                         "scenarios with sim.api.compare([...]) (python -m sim compare=... "
                         "does)")
    spec = build_spec(cfg, before=before)
    first = spec.first_replication
    # the metric whose mean python -m sim returns to a Hydra sweeper: refused before the
    # run, not after it (a sweep's jobs past preflight's check are checked here)
    check_metric_name(spec, cfg.run.objective, "run.objective")
    if spec.target_rel_half_width is not None and replications is None:
        check_metric_name(spec, spec.precision_metric, "run.precision_metric")
    check_memory(spec, replications)
    check_work(spec, replications)
    if replications is not None:
        exp = run_experiment(spec, range(first, first + replications))
        return Run(exp, summarize(exp))
    exp = run_experiment(spec)
    target = spec.target_rel_half_width
    if target is not None:
        # Add replications (a batch of n_jobs at a time), then stop at the FIRST count that
        # meets the target: the same count, and so the same results, whatever n_jobs.
        def precise(k: int) -> bool:
            e = estimate(exp.metric(spec.precision_metric)[:k])
            return e.half_width <= target * abs(e.mean)

        k = exp.n_replications
        while not precise(k) and k < spec.max_replications:
            if k == exp.n_replications:
                more = range(first + k,
                             first + min(k + max(spec.n_jobs, 1), spec.max_replications))
                exp = extend(exp, more, spec.n_jobs)
            k += 1
        exp = ExperimentResult(spec, exp.results[:k], exp.metrics[:k])
    return Run(exp, summarize(exp))


@dataclass
class Comparison:
    """Scenarios against the baseline, with common random numbers.

    ``table`` has one row per scenario and headline metric (see ``analysis.compare``);
    ``runs`` holds every run, the baseline first.
    """

    table: pd.DataFrame
    runs: dict[str, Run]
    rank_by: str
    reference: str = "baseline"

    @property
    def replications(self) -> int:
        return self.runs["baseline"].experiment.n_replications

    def finance(self) -> pd.DataFrame:
        """The finance summary, one row per scenario (the baseline first), with the paired
        differences in LTV and NPV from the baseline (``finance.csv`` of a comparison)."""
        return finance_table({k: r.experiment.metrics for k, r in self.runs.items()},
                             {k: r.spec for k, r in self.runs.items()})

    def ltv(self) -> pd.DataFrame:
        """LTV by acquisition cohort, segment and channel under every scenario, with the
        paired differences from the baseline per group (``ltv.csv`` of a comparison; see
        ``analysis.ltv_comparison``)."""
        return ltv_comparison({k: r.experiment for k, r in self.runs.items()})

    def ranking(self) -> pd.DataFrame:
        """One row per scenario, best first: the ranking metric's difference, ROI, cost."""
        rows = self.table[self.table["metric"] == self.rank_by]
        return rows.set_index("scenario")[["rank", "baseline", "scenario_value", "difference",
                                           "difference_low", "difference_high",
                                           "share_better", "extra_cost", "roi"]]


def scenario_list(compare: Any, config_dirs: Sequence[Path | str] = ()) -> list[str]:
    """The scenarios ``compare`` names: "all", one name, or a list of names; checked.

    Raises
    ------
    SpecError : ``compare`` is of another type, or names a scenario that does not exist.
    """
    known = [n for n in scenario_names(config_dirs) if n != "baseline"]
    allowed = f"'all', a scenario name or a list of them, among {', '.join(known)}"
    if compare is None or (isinstance(compare, str | list | tuple) and not compare):
        return []
    if isinstance(compare, str):
        names = known if compare == "all" else [compare]
    elif isinstance(compare, list | tuple) and all(isinstance(n, str) for n in compare):
        names = list(compare)
    else:
        raise SpecError([("compare", compare, allowed)])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SpecError([("compare", unknown, allowed)])
    if len(set(names)) < len(names):
        raise SpecError([("compare", names, "each scenario once")])
    return names


def metric_names(spec: ModelSpec) -> list[str]:
    """The metric names of ``metrics.json`` for this model (they depend on its channels
    and stages), found by running it on a market of one person."""
    from sim.engine import simulate
    from sim.measure.metrics import replication_metrics

    tiny = dataclasses.replace(spec, market_size=1, engine="agent", n_jobs=1, progress=False)
    return sorted(replication_metrics(simulate(tiny, tiny.seed, tiny.first_replication), tiny))


def check_metric_name(spec: ModelSpec, name: Any, key: str) -> None:
    """Refuse a metric name (``compare_rank``, ``run.precision_metric``) before any run.

    Raises
    ------
    SpecError : naming the key, the value and the headline metrics (and where to find all).
    """
    if isinstance(name, str) and name in metric_names(spec):
        return
    raise SpecError([(key, name, f"a metric name of metrics.json, e.g. "
                      f"{', '.join(HEADLINE)}, ltv.p50, profit (all of them: the 'metric' "
                      "column of metrics.csv)")])


def _scenario_configs(names: Sequence[str], overrides: Sequence[str],
                      config_dirs: Sequence[Path | str]) -> dict[str, DictConfig]:
    """Each option's composed config, the baseline first; overrides name no scenario."""
    if scenario_choice(overrides) != "baseline":
        raise SpecError([("scenario", scenario_choice(overrides),
                          "no scenario= override in a comparison: name the scenarios to "
                          "compare (they all run against the baseline)")])
    base = compose_config([*overrides, "scenario=baseline"], config_dirs)
    cfgs = {"baseline": base}
    for name in names:
        cfgs[name] = compose_config([*overrides, f"scenario={name}"], config_dirs,
                                    baseline=base)
    return cfgs


def check_comparison(scenarios: Any = "all", overrides: Sequence[str] = (),
                     rank_by: str = "npv", config_dirs: Sequence[Path | str] = (),
                     reference: str = "baseline") -> dict[str, ModelSpec]:
    """Compose and validate every option of a comparison, and its ranking metric, without
    running anything; returns each option's spec, the baseline first.

    Raises
    ------
    sim.errors.InputError : every problem of one option (the scenario's name first) or of
        ``scenarios`` or ``rank_by``.
    """
    return {name: spec for name, (_, spec) in
            _checked_options(scenarios, overrides, rank_by, config_dirs, reference).items()}


def _checked_options(scenarios: Any, overrides: Sequence[str], rank_by: str,
                     config_dirs: Sequence[Path | str], reference: str = "baseline"
                     ) -> dict[str, tuple[DictConfig, ModelSpec]]:
    names = scenario_list(scenarios, config_dirs)
    if reference != "baseline" and reference not in names:
        raise SpecError([("compare_reference", reference, "the baseline or one of the "
                          f"scenarios compared: {', '.join(['baseline', *names])}")])
    options = {}
    cfgs = _scenario_configs(names, overrides, config_dirs)
    for name, cfg in cfgs.items():
        try:
            options[name] = (cfg, build_spec(cfg, before=cfgs["baseline"]))
        except SpecError as err:
            raise SpecError([(f"{path} (scenario {name})", value, allowed)
                             for path, value, allowed in err.problems]) from None
    check_metric_name(options["baseline"][1], rank_by, "compare_rank")
    for _, spec in options.values():
        check_memory(spec)
        check_work(spec)
    return options


def compare(scenarios: Any = "all", overrides: Sequence[str] = (),
            rank_by: str = "npv", config_dirs: Sequence[Path | str] = (),
            reference: str = "baseline") -> Comparison:
    """Run the baseline and each scenario with the same seed and replications, and compare
    every option with ``reference`` (the baseline, or one of the scenarios: the difference
    between two interventions directly). The intervals cover the simulation noise, given
    the assumptions (``psa`` covers the assumptions' uncertainty too).

    ``overrides`` apply to every run (e.g. ``["run=smoke"]``); they must not name a
    scenario. ``config_dirs``: folders of your own overlays (as ``--config-dir``). Every
    option is composed and validated, and ``rank_by`` checked, before the first run
    (``check_comparison``). The baseline's replication count (fixed, or found by the
    precision target) is used for every scenario, so each difference is paired
    replication by replication.

    Raises
    ------
    sim.errors.InputError : as ``check_comparison``.
    """
    options = _checked_options(scenarios, overrides, rank_by, config_dirs, reference)
    before = options["baseline"][0]  # what a launched scenario starts from
    base = run(before, before=before)
    n = base.experiment.n_replications
    runs = {"baseline": base}
    for name, (cfg, _) in options.items():
        if name != "baseline":
            runs[name] = run(cfg, replications=n, before=before)
    table = analysis_compare(runs[reference].experiment.metrics,
                             {k: r.experiment.metrics for k, r in runs.items() if k != reference},
                             rank_by=rank_by)
    return Comparison(table, runs, rank_by, reference)


# ------------------------------------------------------------ decisions under uncertainty
@dataclass
class Decision:
    """A probabilistic sensitivity analysis (PSA) of the options, with its tornado (and
    Sobol indices when asked): ``sim.decide.PsaResult`` with its tables, figures and
    Markdown. Every range here covers the assumptions' uncertainty and the simulation
    noise together; the tornado's intervals cover the simulation noise at each end."""

    result: PsaResult

    @property
    def summary(self) -> pd.DataFrame:
        """One row per option, best expected value first (``psa_summary.csv``)."""
        return self.result.summary

    @property
    def evppi(self) -> pd.DataFrame:
        """The value of perfect information per assumption and group (``evppi.csv``)."""
        return self.result.evppi

    @property
    def evpi(self) -> float:
        return self.result.evpi

    @property
    def tornado(self) -> pd.DataFrame | None:
        return self.result.tornado

    @property
    def sobol(self) -> pd.DataFrame | None:
        return self.result.sobol

    @property
    def acceptability(self) -> pd.DataFrame:
        return self.result.acceptability

    @property
    def recommended(self) -> str:
        return self.result.recommended

    def runs(self) -> pd.DataFrame:
        """The study as one long table (``psa_runs.csv``): point, the assumptions' draws,
        option, replication, metric, value."""
        from sim.decide.study import long_table

        return long_table(self.result.runs, self.result.points)

    def markdown(self) -> str:
        """``psa.md``: the recommendation, how sure it is, what to research first."""
        from sim.present.text import psa_markdown

        return psa_markdown(self.result)

    def figures(self) -> dict:
        """psa_cloud, acceptability, evppi and tornado (matplotlib Figures)."""
        from sim.present.text import psa_figures

        return psa_figures(self.result)

    def write(self, out_dir: str | Path, plots: bool = True) -> list[Path]:
        """Every table, psa.md, the figures and last psa.json into ``out_dir``."""
        from sim.present.text import write_psa

        return write_psa(self.result, Path(out_dir), plots=plots)


DEFAULT_DRAWS = 256


def _psa_inputs(scenarios: Any, overrides: Sequence[str], config_dirs: Sequence[Path | str],
                draws: int | None) -> tuple[dict[str, dict], dict[str, ModelSpec],
                                            Uncertainty, Any, int]:
    from sim.model.config import to_container
    from sim.model.uncertainty import read_uncertainty

    base_cfg = compose_config([*overrides, "scenario=baseline"], config_dirs)
    options = _checked_options(scenarios, overrides, str(base_cfg.compare_rank), config_dirs)
    configs = {name: to_container(cfg) for name, (cfg, _) in options.items()}
    specs = {name: spec for name, (_, spec) in options.items()}
    settings = options["baseline"][0].psa
    n = draws if draws is not None else (settings.draws or DEFAULT_DRAWS)
    uncertainty = read_uncertainty(configs)
    problems = []
    if settings.reference not in configs:
        problems.append(("psa.reference", settings.reference,
                         f"one of the options compared: {', '.join(configs)}"))
    if settings.design not in DESIGNS:
        problems.append(("psa.design", settings.design, f"one of {', '.join(DESIGNS)}"))
    if settings.block >= settings.blocks:
        problems.append(("psa.block", settings.block,
                         f"below psa.blocks ({settings.blocks}): blocks are numbered from 0"))
    for gname, members in settings.groups.items():
        for m in members:
            if m not in uncertainty.names:
                problems.append((f"psa.groups.{gname}", m, "an uncertain assumption's name: "
                                 f"{', '.join(uncertainty.names) or 'there are none'}"))
    if settings.sobol_indices and (settings.sobol_indices & (settings.sobol_indices - 1)):
        problems.append(("psa.sobol_indices", settings.sobol_indices,
                         "0 or a power of 2 (64, 128, 256, ...)"))
    elif settings.sobol_indices and (len(uncertainty) < 2 or uncertainty.joints):
        problems.append(("psa.sobol_indices", settings.sobol_indices,
                         "0 here: Sobol indices share the variance among two or more "
                         "independent assumptions (there are "
                         f"{len(uncertainty)}{', some jointly drawn' if uncertainty.joints else ''}"
                         "); the EVPPI ranks them all"))
    if problems:
        raise SpecError(problems)
    base = specs["baseline"]
    runs = n * settings.replications * len(configs)
    if settings.tornado:
        runs += (2 * len(uncertainty) + 1) * base.replications * 2
    if settings.sobol_indices:
        runs += settings.sobol_indices * (len(uncertainty) + 2) * settings.replications * 2
    need = (sum(estimated_work_seconds(s, 1, outputs=False) for s in specs.values())
            / len(specs) * runs)
    if base.work_guard and need > WORK_LIMIT_SECONDS:
        raise WorkGuardError([("run.work_guard", base.work_guard,
                               f"a study that finishes: {runs:,} runs of {base.market_size:,} "
                               f"people take about {need / 3600:.1f} hours of one core by "
                               f"estimate, more than the limit of "
                               f"{WORK_LIMIT_SECONDS / 3600:g} hours. Fewer psa.draws, a "
                               f"smaller market.size, or split the draws into blocks "
                               f"(psa.block, psa.blocks); run.work_guard=false runs it anyway")])
    return configs, specs, uncertainty, settings, n


def check_psa(scenarios: Any = "all", overrides: Sequence[str] = (),
              config_dirs: Sequence[Path | str] = (), draws: int | None = None) -> None:
    """Compose and validate every option, the uncertain assumptions and the PSA settings,
    without running anything.

    Raises
    ------
    sim.errors.InputError : every problem, naming the key (``uncertainty.<key>``,
        ``scenario.uncertainty (scenario NAME).<key>``, ``psa.<setting>``).
    """
    _psa_inputs(scenarios, overrides, config_dirs, draws)


def psa(scenarios: Any = "all", overrides: Sequence[str] = (),
        config_dirs: Sequence[Path | str] = (), draws: int | None = None,
        journal_dir: str | Path | None = None) -> Decision:
    """Probabilistic sensitivity analysis: ``draws`` draws of the uncertain assumptions (the
    ``uncertainty`` group and each scenario's ``scenario.uncertainty``), the baseline and
    every scenario named run on each draw with common random numbers; then the tornado of
    the best option against the reference (``psa.tornado``) and Sobol indices
    (``psa.sobol_indices``). The other settings come from the config's ``psa`` section
    (``overrides`` may set them, e.g. ``"psa.replications=2"``); ``draws`` None takes
    ``psa.draws``, or 256 when that is 0. ``journal_dir``: a folder where every finished run
    is kept as it comes, so that the same call resumes an interrupted study there.

    Raises
    ------
    sim.errors.InputError : as ``check_psa``, or a draw that gives an invalid config.
    """
    configs, specs, uncertainty, st, n = _psa_inputs(scenarios, overrides, config_dirs, draws)
    base = specs["baseline"]
    metric = str(compose_config([*overrides, "scenario=baseline"], config_dirs).compare_rank)
    folder = Path(journal_dir) if journal_dir is not None else None
    journal = (lambda name: folder / name) if folder is not None else (lambda name: None)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        if not st.resume:  # start afresh: the runs of an earlier attempt are not reused
            for name in ("psa_runs.partial.jsonl", "tornado_runs.partial.jsonl"):
                (folder / name).unlink(missing_ok=True)
    groups = {str(k): [str(x) for x in v] for k, v in st.groups.items()}  # plain data
    result = run_psa(configs, uncertainty, n, base.seed, st.replications, st.design,
                     st.reference, metric, groups, base.n_jobs,
                     journal("psa_runs.partial.jsonl"), st.block, st.blocks, base.progress)
    result.settings |= {"low_percentile": st.low_percentile,
                        "high_percentile": st.high_percentile}
    # a block of a split study runs its draws only: the tornado and the Sobol indices, which
    # need every draw's summary, are runs of their own (psa.blocks=1)
    if st.tornado and st.blocks == 1 and len(uncertainty) and result.challenger != st.reference:
        result.tornado, result.tornado_runs = run_tornado(
            configs, uncertainty, result.challenger, st.reference, base.seed,
            base.replications, metric, st.low_percentile, st.high_percentile, base.n_jobs,
            journal("tornado_runs.partial.jsonl"), base.progress)
    if (st.sobol_indices and st.blocks == 1 and len(uncertainty)
            and result.challenger != st.reference):
        result.sobol = run_sobol(configs, uncertainty, result.challenger, st.reference,
                                 base.seed, st.sobol_indices, st.replications, metric,
                                 base.n_jobs, progress=base.progress)
    return Decision(result)


# ---------------------------------------------------- how much, and which setting
TASKS = {"curve": "curve.keys", "allocate": "allocate.channels", "seek": "seek.key",
         "portfolio": "portfolio.budget"}


@dataclass
class Answer:
    """A how-much or which-setting analysis: ``result`` (``sim.decide``'s
    ``CurveResult``, ``AllocationResult``, ``SeekResult`` or ``PortfolioResult``, whose
    tables and numbers are also read straight off this object, e.g. ``answer.table``),
    with its Markdown, figures and files. Every interval covers the simulation noise,
    given the assumptions."""

    kind: str  # curve | allocate | seek | portfolio
    result: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("kind", "result"):
            raise AttributeError(name)
        return getattr(self.result, name)

    def _present(self) -> tuple[Any, Any, Any]:
        from sim.present import decisions as d

        return {"curve": (d.curves_markdown, d.curve_figures, d.write_curves),
                "allocate": (d.allocation_markdown, d.allocation_figures, d.write_allocation),
                "seek": (d.seek_markdown, d.seek_figures, d.write_seek),
                "portfolio": (lambda r: r.markdown(), d.portfolio_figures,
                              d.write_portfolio)}[self.kind]

    def markdown(self) -> str:
        """The summary a strategist can paste (the ``.md`` file)."""
        return self._present()[0](self.result)

    def figures(self) -> dict:
        """The analysis's figures by name (matplotlib Figures)."""
        return self._present()[1](self.result)

    def write(self, out_dir: str | Path, plots: bool = True) -> list[Path]:
        """Every table, the Markdown, the figures and last the JSON into ``out_dir``."""
        return self._present()[2](self.result, Path(out_dir), plots=plots)


def task_of(cfg: DictConfig) -> str | None:
    """Which how-much or which-setting analysis a composed config asks for (None: none).

    Raises
    ------
    SpecError : two of them at once, or one with a PSA or (but for ``portfolio``) a
        comparison.
    """
    asked = {"curve": bool(cfg.curve["keys"]), "allocate": bool(cfg.allocate.channels),
             "seek": bool(cfg.seek.key), "portfolio": cfg.portfolio.budget is not None}
    on = [t for t, yes in asked.items() if yes]
    if len(on) > 1:
        raise SpecError([(TASKS[on[1]], _shown(cfg, TASKS[on[1]]),
                          f"unset while {TASKS[on[0]]} is set: one analysis per command")])
    if on and cfg.psa.draws > 0:
        raise SpecError([("psa.draws", cfg.psa.draws, f"0 while {TASKS[on[0]]} is set: one "
                          "analysis per command")])
    compared = cfg.compare not in (None, "", [])
    if on and on[0] != "portfolio" and compared:
        raise SpecError([("compare", _shown(cfg, "compare"),
                          f"unset while {TASKS[on[0]]} is set: these analyses study one "
                          "config (pick a scenario with scenario=NAME)")])
    if on == ["portfolio"] and not compared:
        raise SpecError([("compare", None, "the library to choose from: compare=all or "
                          "compare=[a,b,c] with portfolio.budget")])
    return on[0] if on else None


def _shown(cfg: DictConfig, key: str) -> Any:
    """The value at ``key``, plain (for a message)."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _guard(spec: ModelSpec, runs: int, what: str) -> None:
    need = estimated_work_seconds(spec, 1, outputs=False) * runs
    if spec.work_guard and need > WORK_LIMIT_SECONDS:
        raise WorkGuardError([("run.work_guard", spec.work_guard,
                               f"{what} that finishes: up to {runs:,} runs of "
                               f"{spec.market_size:,} people take about {need / 3600:.1f} "
                               "hours of one core by estimate; fewer replications or points, "
                               "or a smaller market.size; run.work_guard=false runs it anyway")])


def _one_config(overrides: Sequence[str], config_dirs: Sequence[Path | str]
                ) -> tuple[DictConfig, dict[str, Any], ModelSpec]:
    from sim.decide.optimise import runnable

    cfg = compose_config(overrides, config_dirs)
    spec = build_spec(cfg)
    check_metric_name(spec, cfg.run.objective, "run.objective")
    check_memory(spec, 1)
    return cfg, runnable(cfg, "scenario"), spec


def _prepare(kind: str, overrides: Sequence[str], config_dirs: Sequence[Path | str]
             ) -> tuple[Any, dict[str, Any]]:
    """The decide function of ``kind`` and its arguments, every input checked."""
    from sim.decide import optimise

    if kind == "portfolio":
        return _prepare_portfolio(overrides, config_dirs)
    cfg, plain, spec = _one_config(overrides, config_dirs)
    common = {"seed": spec.seed, "n_jobs": spec.n_jobs, "progress": spec.progress}
    if kind == "curve":
        c = cfg.curve
        keys = [str(k) for k in c["keys"]]
        optimise.levers(plain, keys, "curve.keys")
        values = {k: optimise.curve_values(plain, k, list(c["values"]), c.low, c.high, c.points)
                  for k in keys}
        reps = c.replications or max(spec.replications, 2)
        for m in c.metrics:
            check_metric_name(spec, m, "curve.metrics")
        _guard(spec, sum(len(v) for v in values.values()) * reps, "response curves")
        return optimise.run_curves, {"cfg": plain, "values": values,
                                     "objective": str(cfg.run.objective),
                                     "threshold": float(c.threshold), "replications": reps,
                                     "metrics": [str(m) for m in c.metrics], **common}
    if kind == "seek":
        s = cfg.seek
        optimise.levers(plain, [str(s.key)], "seek.key")
        check_metric_name(spec, s.metric, "seek.metric")
        if s.target is None:
            raise SpecError([("seek.target", None, f"the value {s.metric} should reach, "
                              "e.g. seek.target=0.06")])
        low, high = optimise.seek_range(plain, str(s.key), s.low, s.high)
        if s.tolerance is not None and not 0 < s.tolerance < high - low:
            raise SpecError([("seek.tolerance", s.tolerance, f"above 0 and below the range "
                              f"searched ({high - low:g})")])
        reps = s.replications or max(spec.replications, 2)
        _guard(spec, s.max_runs, "a goal seek")
        return optimise.run_seek, {"cfg": plain, "key": str(s.key), "metric": str(s.metric),
                                   "target": float(s.target), "low": low, "high": high,
                                   "tolerance": s.tolerance, "replications": reps,
                                   "max_runs": s.max_runs, **common}
    a = cfg.allocate
    channels = [str(c) for c in a.channels]
    for m in a.minimum:
        check_metric_name(spec, m, f"allocate.minimum.{m}")
    bounds = {str(k): [float(x) for x in v] for k, v in a.bounds.items()}
    current = np.array([float(plain["channels"][c]["spend_per_day"]) if c in plain["channels"]
                        else 0.0 for c in channels])
    optimise.check_allocation(channels, list(plain["channels"]), current, a.budget,
                              a.budget_mode, bounds, a.design_points)
    _guard(spec, a.rounds * (a.design_points + 1) * a.replications
           + 2 * a.verify_replications, "an allocation")
    return optimise.run_allocate, {
        "cfg": plain, "channels": channels, "budget": a.budget, "mode": a.budget_mode,
        "bounds": bounds, "objective": str(cfg.run.objective),
        "minimum": {str(k): float(v) for k, v in a.minimum.items()},
        "design_points": a.design_points, "rounds": a.rounds, "replications": a.replications,
        "verify_replications": a.verify_replications, **common}


def _prepare_portfolio(overrides: Sequence[str], config_dirs: Sequence[Path | str]
                       ) -> tuple[Any, dict[str, Any]]:
    from sim.decide.portfolio import run_portfolio
    from sim.model.config import to_container

    cfg = compose_config(overrides, config_dirs)  # the settings and the library
    plain_overrides = [o for o in overrides
                       if not o.lstrip("+~").startswith(("compare=", "scenario="))]
    base_cfg = compose_config([*plain_overrides, "scenario=baseline"], config_dirs)
    names = scenario_list(_shown(cfg, "compare"), config_dirs)
    options = _checked_options(names, plain_overrides, str(base_cfg.compare_rank),
                               config_dirs)
    base = options["baseline"][1]
    objective = str(base_cfg.run.objective)
    check_metric_name(base, objective, "run.objective")
    st = base_cfg.portfolio
    _guard(base, (len(options) + st.candidates + 4) * base.replications,
           "a search for a set of interventions")
    configs = {name: to_container(cfg) for name, (cfg, _) in options.items()}
    return run_portfolio, {"configs": configs, "objective": objective, "budget": st.budget,
                           "max_size": st.max_size, "candidates": st.candidates,
                           "replications": base.replications, "seed": base.seed,
                           "n_jobs": base.n_jobs, "progress": base.progress}


def check_task(overrides: Sequence[str] = (), config_dirs: Sequence[Path | str] = ()
               ) -> str | None:
    """Compose and validate the analysis the overrides ask for (``curve.keys``,
    ``allocate.channels``, ``seek.key`` or ``portfolio.budget``) without running it;
    returns its kind (None: the overrides ask for none).

    Raises
    ------
    sim.errors.InputError : every problem, naming the key, the value and what is allowed.
    """
    kind = task_of(compose_config(overrides, config_dirs))
    if kind is not None:
        _prepare(kind, overrides, config_dirs)
    return kind


def run_task(overrides: Sequence[str] = (), config_dirs: Sequence[Path | str] = ()
             ) -> Answer:
    """Run the analysis the overrides ask for (``curve.keys=[...]``,
    ``allocate.channels=[...]``, ``seek.key=...`` or ``portfolio.budget=...``), as
    ``python -m sim`` with those overrides does.

    Raises
    ------
    sim.errors.InputError : as ``check_task``, or the overrides ask for none of them.
    """
    kind = task_of(compose_config(overrides, config_dirs))
    if kind is None:
        raise SpecError([("curve.keys", [], "one analysis: curve.keys, allocate.channels, "
                          "seek.key or portfolio.budget")])
    fn, kwargs = _prepare(kind, overrides, config_dirs)
    return Answer(kind, fn(**kwargs))


def curves(keys: Sequence[str] | None = None, overrides: Sequence[str] = (),
           config_dirs: Sequence[Path | str] = ()) -> Answer:
    """Response curves: each key of ``keys`` (or ``curve.keys``) swept alone over
    ``curve.values`` (or ``curve.low`` .. ``curve.high`` in ``curve.points`` steps), every
    value on the same replications; the headline metrics with intervals, the marginal
    return of ``run.objective`` (for a channel's spend: the marginal ROI) and where it
    crosses ``curve.threshold``. ``overrides`` set the config and the ``curve`` settings.

    Raises
    ------
    sim.errors.InputError : a key, value or setting that cannot be, before any run.
    """
    extra = [f"curve.keys=[{','.join(keys)}]"] if keys else []
    return run_task([*overrides, *extra], config_dirs)


def allocate(channels: Sequence[str] | None = None, overrides: Sequence[str] = (),
             config_dirs: Sequence[Path | str] = ()) -> Answer:
    """Budget allocation: the ``spend_per_day`` of ``channels`` (or ``allocate.channels``)
    that maximises ``run.objective`` under ``allocate.budget`` (today's total by default),
    ``allocate.bounds`` and ``allocate.minimum``, verified against today's allocation on
    fresh replications (``sim.decide.optimise``).

    Raises
    ------
    sim.errors.InputError : an unknown channel, a budget below the lowest spends, a bound
        or floor that cannot be, before any run; floors that no allocation meets, after
        the first round.
    """
    extra = [f"allocate.channels=[{','.join(channels)}]"] if channels else []
    return run_task([*overrides, *extra], config_dirs)


def seek(key: str | None = None, metric: str | None = None, target: float | None = None,
         overrides: Sequence[str] = (), config_dirs: Sequence[Path | str] = ()) -> Answer:
    """Goal seeking: the value of ``key`` (or ``seek.key``) at which the mean of ``metric``
    reaches ``target``, with its interval.

    Raises
    ------
    sim.errors.InputError : a key, metric or range that cannot be, before any run;
        ``sim.decide.OutOfReach`` when the target lies outside what the range reaches
        (the message names that range).
    """
    extra = [f"seek.key={key}"] if key else []
    extra += [f"seek.metric={metric}"] if metric else []
    extra += [f"seek.target={float(target)!r}"] if target is not None else []
    return run_task([*overrides, *extra], config_dirs)


def portfolio(scenarios: Any = "all", budget: float | None = None,
              overrides: Sequence[str] = (), config_dirs: Sequence[Path | str] = ()
              ) -> Answer:
    """The set of ``scenarios`` to launch together that maximises ``run.objective`` within
    ``budget`` (or ``portfolio.budget``: their total ``scenario.cost_per_day``), the sets'
    interactions simulated on common random numbers (``sim.decide.portfolio``).

    Raises
    ------
    sim.errors.InputError : a scenario, budget or setting that cannot be, before any run.
    """
    names = scenario_list(scenarios, config_dirs)
    extra = [f"compare=[{','.join(names)}]"]
    extra += [f"portfolio.budget={float(budget)!r}"] if budget is not None else []
    return run_task([*overrides, *extra], config_dirs)


__all__ += ["Answer", "allocate", "check_task", "curves", "portfolio", "run_task", "seek",
            "task_of"]

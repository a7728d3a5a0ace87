"""A run's tables: ``metrics.json``'s document, the CSV files of a run and its finance view,
written atomically through ``sim.io``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from sim.io import (
    FINANCE_FLOAT_FORMAT,
    begin_outputs,
    finish_outputs,
    json_ready,
    write_table,
)
from sim.measure.experiment import ExperimentResult
from sim.measure.finance import cohort_table, finance_table, ltv_table, payback_table, pnl_table
from sim.measure.stats import Estimate

__all__ = ["metrics_document", "write_finance", "write_flows", "write_outputs"]


def metrics_document(exp: ExperimentResult, summary: dict[str, Estimate]) -> dict[str, Any]:
    """What ``metrics.json`` holds: the run, every metric with its CI, each replication."""
    spec = exp.spec
    return json_ready({
        "scenario": {"name": spec.scenario_name, "description": spec.scenario_description},
        "journey": spec.journey_name,
        "engine": spec.engine,
        "seed": spec.seed,
        "replications": exp.n_replications,
        "first_replication": spec.first_replication,
        "replication_ids": [r.replication for r in exp.results],
        "fingerprint": spec.fingerprint(),
        "horizon_days": spec.horizon_days,
        "market_size": spec.market_size,
        "retention_model": spec.retention.model,
        "annual_discount_rate": math.expm1(spec.discount_rate_per_day * 365),
        "conventions": {
            "time": "days since the start of the run",
            "discounting": "continuous at ln(1 + annual rate) / 365 per day",
            "ltv": "per customer from the first purchase (first margin undiscounted) to churn "
                   "or the horizon: discounted margin minus the retention costs caused",
            "npv": "every cash flow of the run discounted to day 0",
            "cohorts": "acquisition month = month of the run (365.25 / 12 days) of the first "
                       "purchase; a cohort's curve stops at the last whole month since "
                       "acquisition that every one of its customers could reach by the horizon",
        },
        "confidence_level": 0.95,
        "metrics": {k: v.as_dict() for k, v in summary.items()},
        "per_replication": exp.metrics,
    })


def write_outputs(exp: ExperimentResult, summary: dict[str, Estimate], out_dir: Path,
                  events: bool = False,
                  extra: Callable[[Path], list[Path]] | None = None,
                  plots: bool | None = None) -> list[Path]:
    """Write a run's outputs into ``out_dir``: ``metrics.csv`` (one row per metric, for
    spreadsheets), ``customers.csv``, ``daily.csv``, ``purchases.csv`` (the transaction
    log), ``tickets.csv``, with ``events`` ``events.csv`` (``ExperimentResult.event_log``),
    the finance tables of ``write_finance``, the journey's flows of ``write_flows``
    (``flows.csv``, and with ``plots`` ``flows.png``; ``plots`` None: when ``extra`` is
    given), then whatever ``extra(out_dir)`` writes (the figures), and last
    ``metrics.json``, the mark of a finished folder (``begin_outputs`` removes an earlier
    one first). Returns the files written, ``metrics.json`` last."""
    out_dir = Path(out_dir)
    doc = metrics_document(exp, summary)
    begin_outputs(out_dir)
    tables = {"customers": exp.customers, "metrics": lambda: pd.DataFrame(
        [{"metric": k, **v.as_dict()} for k, v in summary.items()]), "daily": exp.daily,
        "purchases": exp.purchases, "tickets": exp.tickets}
    if events:
        tables["events"] = exp.event_log
    written = [write_table(table(), out_dir / f"{name}.csv") for name, table in tables.items()]
    written += write_finance(exp, out_dir)
    written += write_flows(exp, out_dir, plots=extra is not None if plots is None else plots)
    if extra is not None:
        written += extra(out_dir)
    return [*written, finish_outputs(doc, out_dir)]


def write_finance(exp: ExperimentResult, out_dir: Path) -> list[Path]:
    """The finance view of a run: ``finance.csv`` (one row: unit economics with CIs),
    ``ltv.csv`` (LTV by acquisition cohort, segment and channel), ``cohorts.csv`` (censored
    cumulative value curves of the cohorts), ``payback.csv`` (the payback curve) and
    ``pnl.csv`` (the monthly profit and loss); see ``sim.measure.finance``."""
    out_dir, name = Path(out_dir), exp.spec.scenario_name
    tables = {"finance": finance_table({name: exp.metrics}, {name: exp.spec}),
              "ltv": ltv_table(exp), "cohorts": cohort_table(exp), "payback": payback_table(exp),
              "pnl": pnl_table(exp)}
    return [write_table(t, out_dir / f"{k}.csv", FINANCE_FLOAT_FORMAT) for k, t in tables.items()]


def write_flows(exp: ExperimentResult, out_dir: Path, plots: bool = True) -> list[Path]:
    """The journey's flows between states (``sim.measure.flows.journey_flows``, mean per
    replication): ``flows.csv``, and with ``plots`` the diagram ``flows.png``
    (``sim.present.figures.plot_flows``)."""
    from sim.measure.flows import journey_flows

    out_dir = Path(out_dir)
    table = journey_flows(exp.results)
    written = [write_table(table, out_dir / "flows.csv")]
    if plots:
        from sim.io import save_figure
        from sim.present import figures

        spec, n = exp.spec, exp.n_replications
        ax = figures.plot_flows(table, title=(
            f"Journey flows, {spec.scenario_name}: {spec.journey_name} journey, mean of "
            f"{n} replication{'' if n == 1 else 's'} x {spec.horizon_days:g} days"))
        try:
            written.append(save_figure(ax.figure, out_dir / "flows.png"))
        finally:
            figures.close(ax.figure)
    return written

"""Measurement: from simulated replications to estimates with intervals.

- ``metrics``: one replication's metrics (funnel, conversion, churn, LTV, costs, NPV), its
  daily series and finance curves, computed from a ``SimulationResult``.
- ``experiment``: replications of one scenario (seeded, in parallel or not, extendable) and
  the up-front estimates of their memory and work.
- ``stats``: t intervals across replications, paired comparisons of scenarios run on common
  random numbers, return on an intervention's cost, notes on a run.
- ``finance``: the finance tables (unit economics, LTV by group, cohorts, payback) with
  intervals.
- ``flows``: the journey's flows between states (from the event log, or from first-entry
  times), mean per replication.

May import: ``sim.model``, ``sim.engine``, ``sim.errors``, numpy, scipy, pandas. No files,
no figures: writing and drawing live in ``sim.present``.
"""

from sim.measure.experiment import (
    ExperimentResult,
    estimated_memory_bytes,
    estimated_work_seconds,
    run_experiment,
)
from sim.measure.finance import cohort_table, finance_table, ltv_table, payback_table
from sim.measure.flows import first_entry_flows, journey_flows
from sim.measure.metrics import replication_metrics
from sim.measure.stats import Estimate, compare, estimate, paired, summarize

__all__ = ["Estimate", "ExperimentResult", "cohort_table", "compare", "estimate",
           "estimated_memory_bytes", "estimated_work_seconds", "finance_table",
           "first_entry_flows", "journey_flows", "ltv_table", "paired", "payback_table",
           "replication_metrics", "run_experiment", "summarize"]

"""Decisions under uncertainty: studies of many runs and the analyses of their tables.

- ``study``: a study (parameter points x options x replications, common random numbers),
  run on workers, resumable, kept as one table of each run's metrics.
- ``analysis``: pure functions of a study's table: the PSA summary (expected values,
  probability best, expected loss), acceptability, EVPI and EVPPI, the tornado, the
  simulation noise's share.
- ``psa``: the designs of a PSA, a tornado and Sobol indices, run and summarised.
- ``optimise``: how much and which setting: response curves with marginal returns, goal
  seeking (a stochastic root finder) and budget allocation (a response-surface metamodel
  verified against today's allocation), each a study of one config on shared streams.
- ``portfolio``: the set of scenarios to launch together within a budget for their running
  costs, their interactions simulated, the single-scenario results used to prune.

May import: ``sim.errors``, ``sim.model``, ``sim.engine``, ``sim.measure``, numpy, scipy,
pandas, tqdm. Nothing above this stage (no figures, no files but a study's journal).
"""

from sim.decide.analysis import evpi, evppi, psa_summary, tornado, unit_normal_loss
from sim.decide.optimise import (
    AllocationResult,
    CurveResult,
    OutOfReach,
    SeekResult,
    run_allocate,
    run_curves,
    run_seek,
)
from sim.decide.portfolio import PortfolioResult, run_portfolio
from sim.decide.psa import PsaResult, run_psa, run_sobol, run_tornado
from sim.decide.study import STUDY_METRICS, Study, StudyError, long_table, run_study

__all__ = ["STUDY_METRICS", "AllocationResult", "CurveResult", "OutOfReach",
           "PortfolioResult", "PsaResult", "SeekResult", "Study", "StudyError", "evpi",
           "evppi", "long_table", "psa_summary", "run_allocate", "run_curves",
           "run_portfolio", "run_psa", "run_seek", "run_sobol", "run_study", "run_tornado",
           "tornado", "unit_normal_loss"]

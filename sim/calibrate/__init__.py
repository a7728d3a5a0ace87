"""Calibration from a user's own data: ``python -m sim.calibrate``.

A command at the top of the package, like the CLI: it reads a transaction log or a journey
event log (untrusted input), fits the simulator's repeat buying, spend and funnel by maximum
likelihood, writes the fitted configs and a report with figures. Its modules, lowest first
(each imports only from those above it in this list):

- ``mle``: the maximum-likelihood machinery the fits share (``CalibrationError``, the fit
  record, the multi-start optimiser, Hessian standard errors, the delta method).
- ``buying``: repeat buying (BG/NBD) and spend (Gamma-Gamma) by maximum likelihood.
- ``funnel``: the pre-purchase funnel's dwell times and exit probabilities from an event log.
- ``inputs``: checks of the options, dates, columns and rows both logs share, reading a
  log, config names and the folders written into.
- ``transactions``: a transaction log prepared and fitted (repeat buying, spend, LTV).
- ``journey``: a journey event log prepared and fitted (stages and channels).
- ``fitted``: the fitted configs as YAML (escaped to read back as written), checked
  against the schema, and the command that runs the simulator on them.
- ``reports``: the Markdown reports of the two calibrations and their figures.
- ``workflow``: the two calibrations end to end: read, fit, check, write.
- ``cli``: the command line (``main``), its summaries and exit statuses.

May import: ``sim.model``, ``sim.measure``, ``sim.present``, ``sim.io``, ``sim.userfiles``,
``sim.errors``.
"""

from sim.calibrate.journey import fit_journey, journey_from_run, prepare_journey
from sim.calibrate.mle import CalibrationError
from sim.calibrate.transactions import fit_transactions, prepare_transactions, transactions_from_run
from sim.calibrate.workflow import calibrate_journey, calibrate_transactions

__all__ = ["CalibrationError", "calibrate_journey", "calibrate_transactions", "fit_journey",
           "fit_transactions", "journey_from_run", "prepare_journey", "prepare_transactions",
           "transactions_from_run"]

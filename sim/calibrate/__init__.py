"""Calibration from a user's own data: ``python -m sim.calibrate``.

A command at the top of the package, like the CLI: it reads a transaction log or a journey
event log (untrusted input), fits the simulator's repeat buying, spend and funnel by maximum
likelihood, writes the fitted configs and a report with figures.

- ``buying``: repeat buying (BG/NBD) and spend (Gamma-Gamma) by maximum likelihood, with the
  optimiser, Hessian standard errors and the delta method they share.
- ``funnel``: the pre-purchase funnel's dwell times and exit probabilities from an event log.
- ``commands``: reading the logs, the two calibrations, the YAML they write, their reports
  and the command line.

May import: ``sim.model``, ``sim.measure``, ``sim.present``, ``sim.io``, ``sim.userfiles``,
``sim.errors``.
"""

from sim.calibrate.buying import CalibrationError
from sim.calibrate.commands import (
    calibrate_journey,
    calibrate_transactions,
    fit_journey,
    fit_transactions,
    journey_from_run,
    prepare_journey,
    prepare_transactions,
    transactions_from_run,
)

__all__ = ["CalibrationError", "calibrate_journey", "calibrate_transactions", "fit_journey",
           "fit_transactions", "journey_from_run", "prepare_journey", "prepare_transactions",
           "transactions_from_run"]

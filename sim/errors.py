"""The errors a user can cause, and how the command lines report them.

Every problem with what a user hands the tool (a config key, an override, a scenario or
group file, a transaction or journey log, a folder given to ``sim.report``, a command-line
option) raises an ``InputError``: one message, no traceback, naming the key or file, the
value given and what is allowed. The command lines print ``error: <message>`` on stderr
and exit with ``EXIT_INPUT`` (2). Python callers catch ``sim.InputError`` (or a subclass)
and get the same message.

A run that cannot write its outputs (a full disk, a folder without write permission)
raises ``OutputError`` (exit 1), naming the file; Ctrl-C stops with exit 130.
"""

from __future__ import annotations

__all__ = ["EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_OUTPUT", "InputError", "OutputError",
           "SimError"]

EXIT_INPUT = 2  # bad input of any kind: config, override, file, option
EXIT_OUTPUT = 1  # outputs could not be written (disk full, permissions)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class SimError(Exception):
    """An error the command lines report in one line, without a traceback."""


class InputError(SimError, ValueError):
    """Something a user gave the tool is invalid; the message says what, where and what is
    allowed. Subclasses: ``SpecError`` (config values), ``ConfigFileError`` (unsafe or
    malformed config files and overrides), ``CalibrationError`` (logs and calibration
    options), ``ReportError`` (folders given to ``sim.report``)."""


class OutputError(SimError, OSError):
    """Outputs could not be written; the message names the file and the reason."""

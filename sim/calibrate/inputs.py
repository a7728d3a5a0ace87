"""Checks of what a user hands the calibration, shared by both logs: the numeric and date
options, the columns, ids and timestamps of a log, exact duplicate rows, reading the file,
config names and the folders written into.

Input is untrusted. Bad input (a file, a column, a cell, an option) raises
``CalibrationError`` (an ``sim.errors.InputError``) with one line naming the file line or
the option, the value and what is allowed; the command line prints it as ``error: ...`` and
exits with status 2. Dates lie in ``FIRST_DATE`` .. ``LAST_DATE``; the numeric options'
ranges are in ``OPTION_RANGES``. Rows that are exact copies of an earlier row are reported
as warnings (stderr and the report): in a transaction log they are kept (two equal orders
on a day are possible; ``--drop-duplicates`` drops them), in a journey log they are dropped
(a stage entered twice at the same recorded instant is a copy). Fitted configs are never
written into the installed package (``PACKAGE_DIR``), nor into its built-in configs and
scenarios.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import io
from sim.calibrate.mle import CalibrationError
from sim.errors import OutputError
from sim.model.config import CONFIG_DIR, SCENARIO_DIR

__all__ = ["DEFAULT_CONFIG_DIR", "FIRST_DATE", "LAST_DATE", "OPTION_RANGES",
           "check_date_format", "check_options", "clean_name"]

# dates in a log and in the date options: a business's records, with room on both sides;
# also keeps every day count far inside pandas' nanosecond range (1677-2262)
FIRST_DATE = pd.Timestamp("1900-01-01")
LAST_DATE = pd.Timestamp("2199-12-31 23:59:59.999999")
# numeric options: (low, high, low included, high included, what the value means)
OPTION_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "gross_margin": (0.0, 1.0, False, True, "the share of the amounts kept as margin"),
    "annual_discount_rate": (0.0, 1.0, True, True, "a rate a year (0.10 = 10%)"),
    "ltv_years": (0.0, 50.0, False, True, "years"),
    "n_starts": (1, 50, True, True, "a whole number of starting points"),
}
OPTION_FLAGS = {"gross_margin": "--gross-margin", "annual_discount_rate":
                "--annual-discount-rate", "ltv_years": "--ltv-years", "n_starts": "--starts"}
DEFAULT_CONFIG_DIR = Path("fitted")  # relative to the working directory, never the package
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the sim package
MAX_NAME_CHARS = 80  # config names: fitted_<name>.yaml stays a legal file name


def clean_name(text: str) -> str:
    """A config name from free text: lower case, letters, digits and underscores, at most
    ``MAX_NAME_CHARS``."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:MAX_NAME_CHARS].strip("_")
    return name or "data"


# ------------------------------------------------------------------ the logs' contents
def _line(row: int) -> int:
    """File line of data row ``row`` (0-based; the header is line 1)."""
    return int(row) + 2


def _require_columns(table: pd.DataFrame, wanted: dict[str, tuple[str, str]],
                     source: str) -> None:
    """``wanted``: role -> (column name, option that renames it)."""
    missing = [(col, opt) for col, opt in wanted.values() if col not in table.columns]
    if missing:
        found = ", ".join(repr(c) for c in table.columns) or "none"
        cols = ", ".join(repr(c) for c, _ in missing)
        opts = ", ".join(o for _, o in missing)
        other = [d for d in (";", "\t", "|") if len(table.columns) == 1
                 and d in str(table.columns[0])]
        hint = (f"; the header holds {other[0]!r}: columns are separated by commas"
                if other else "")
        raise CalibrationError(f"{source}: missing column(s) {cols} (found {found}); name "
                               f"the right ones with {opts}{hint}")
    if len(table) == 0:
        raise CalibrationError(f"{source}: no data rows after the header")


# ISO 8601 as the logs write it; pandas alone also reads "now" and "today"
_ISO = (r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?)?"
        r"(?:Z|[+-]\d{2}(?::?\d{2})?)?")


def check_date_format(date_format: str | None) -> None:
    """A ``--date-format``: strftime codes (``%d/%m/%Y``), with at least the day, month and
    year, and nothing that pandas cannot read."""
    if date_format is None:
        return
    codes = set(re.findall(r"%(.)", str(date_format)))
    if not ({"Y", "y"} & codes and {"m", "b", "B"} & codes and "d" in codes):
        raise CalibrationError(
            f"--date-format {date_format!r}: give the day (%d), the month (%m, %b or %B) and "
            "the year (%Y or %y) in strftime codes, such as %d/%m/%Y or '%m/%d/%Y %H:%M'")
    try:
        pd.to_datetime(pd.Series(["2024-01-01"]), format=str(date_format), errors="coerce")
    except (ValueError, TypeError) as err:
        raise CalibrationError(f"--date-format {date_format!r}: not a date format pandas "
                               f"can read ({err})") from None


def _how(date_format: str | None) -> str:
    return ("an ISO date (YYYY-MM-DD) or date-time" if date_format is None
            else f"a date in --date-format {date_format!r}")


def _parse_times(values: pd.Series, column: str, source: str,
                 date_format: str | None = None) -> pd.Series:
    """ISO dates or date-times, or dates in ``date_format`` (strftime codes); a time zone is
    dropped (mixed zones: converted to UTC)."""
    text = values.astype(str).str.strip()
    blank = text == ""
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0])
        raise CalibrationError(f"{source}, line {_line(row)}: empty {column}")
    if date_format is None:
        text_in = text.where(text.str.fullmatch(_ISO), "")
        fmt = "ISO8601"
    else:
        text_in, fmt = text, date_format
    try:
        parsed = pd.to_datetime(text_in, format=fmt, errors="coerce")
    except (ValueError, TypeError):  # mixed time-zone offsets
        parsed = pd.to_datetime(text_in, format=fmt, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CalibrationError(f"{source}, line {_line(row)}: {column} {text.iloc[row]!r} is "
                               f"not {_how(date_format)}")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    outside = ((parsed < FIRST_DATE) | (parsed > LAST_DATE)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise CalibrationError(f"{source}, line {_line(row)}: {column} {text.iloc[row]!r} is "
                               f"outside the dates allowed, {_date_range()}")
    return parsed.astype("datetime64[ns]")


def _date_range() -> str:
    return f"{FIRST_DATE.date()} to {LAST_DATE.date()}"


def _parse_option_date(text: str | None, option: str, date_format: str | None = None
                       ) -> pd.Timestamp | None:
    """An ISO date or date-time given as an option, or one in ``date_format`` (a time zone
    is dropped), within ``FIRST_DATE`` .. ``LAST_DATE``."""
    if text is None:
        return None
    value = str(text).strip()
    try:
        parsed = pd.NaT if not re.fullmatch(_ISO, value) else pd.to_datetime(
            pd.Series([value]), format="ISO8601", errors="coerce").iloc[0]
        if pd.isna(parsed) and date_format is not None:
            parsed = pd.to_datetime(pd.Series([value]), format=date_format,
                                    errors="coerce").iloc[0]
    except (ValueError, TypeError, OverflowError):
        parsed = pd.NaT
    if pd.isna(parsed):
        also = "" if date_format is None else f" or a date in --date-format {date_format!r}"
        raise CalibrationError(f"{option} {text!r} is not an ISO date (YYYY-MM-DD) or "
                               f"date-time{also}")
    value = parsed.tz_localize(None) if parsed.tzinfo is not None else parsed
    if not FIRST_DATE <= value <= LAST_DATE:
        raise CalibrationError(f"{option} {text!r} is outside the dates allowed, "
                               f"{_date_range()}")
    return pd.Timestamp(value).as_unit("ns")


def check_options(**options: Any) -> None:
    """Check the numeric options (``gross_margin``, ``annual_discount_rate``, ``ltv_years``,
    ``n_starts``) against ``OPTION_RANGES``: finite numbers (whole for ``n_starts``) in a
    plausible range.

    Raises
    ------
    CalibrationError : one message listing every option out of range, with the value
        given and the range allowed.
    """
    problems = []
    for key, value in options.items():
        low, high, low_in, high_in, meaning = OPTION_RANGES[key]
        allowed = (f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
                   f" ({meaning})")
        whole = key == "n_starts"
        try:
            number = float(value)
            ok = (not isinstance(value, bool) and math.isfinite(number)
                  and (not whole or number == int(number))
                  and (low <= number if low_in else low < number)
                  and (number <= high if high_in else number < high))
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            problems.append(f"{OPTION_FLAGS[key]} {value!r} is not in {allowed}")
    if problems:
        raise CalibrationError("; ".join(problems))


def _duplicates(table: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Rows that are exact copies (every column) of an earlier row, and where the first is."""
    dup = table.duplicated(keep="first").to_numpy()
    if not dup.any():
        return dup, ""
    row = int(np.flatnonzero(dup)[0])
    same = table.iloc[:row].eq(table.iloc[row]).all(axis=1).to_numpy()
    return dup, f"the first is line {_line(row)}, a copy of line {_line(int(np.argmax(same)))}"


def _ids(values: pd.Series, column: str, source: str) -> pd.Series:
    text = values.astype(str).str.strip()
    blank = (text == "").to_numpy()
    if blank.any():
        raise CalibrationError(f"{source}, line {_line(int(np.flatnonzero(blank)[0]))}: "
                               f"empty {column}")
    return text


# ------------------------------------------------------------------ files and folders
def _read(path: Path, what: str) -> tuple[pd.DataFrame, str]:
    """The table of a log the user names and its SHA-256 (``io.read_csv_text``: a regular
    file of a sane size, UTF-8, well-formed CSV)."""
    try:
        return io.read_csv_text(path, what), io.file_sha256(path)
    except ValueError as err:  # missing, empty or malformed file: one line
        raise CalibrationError(str(err)) from None
    except OSError as err:  # gone or unreadable between the read and the checksum
        raise CalibrationError(f"{path}: cannot read the {what} ({err.strerror})") from None


def _protected_dirs() -> list[Path]:
    return [PACKAGE_DIR, CONFIG_DIR.resolve(), SCENARIO_DIR.resolve()]


def _output_dir(folder: Path | str, option: str) -> Path:
    """A folder the calibration writes into: outside the installed package and its built-in
    configs and scenarios, and writable (created later, by the first write).

    Raises
    ------
    CalibrationError : the folder is inside the package, or a path component is a file.
    OutputError : the nearest existing folder is not writable.
    """
    folder = Path(folder)
    try:
        resolved = folder.resolve()
    except (OSError, RuntimeError) as err:
        raise CalibrationError(f"{option} {str(folder)!r}: not a usable path ({err})") from None
    for protected in _protected_dirs():
        if resolved == protected or resolved.is_relative_to(protected):
            raise CalibrationError(
                f"{option} {str(folder)!r} is inside the simulator's own files ({protected}: "
                "the package, its built-in configs or scenarios); write to a folder of your "
                f"own (the default --config-dir is ./{DEFAULT_CONFIG_DIR})")
    existing = resolved
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CalibrationError(f"{option} {str(folder)!r}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {str(folder)!r}: no permission to write in {existing}")
    return folder


def _targets_free(targets: Sequence[Path], force: bool) -> None:
    for target in targets:  # before the work, not after
        if target.exists() and not force:
            raise CalibrationError(f"{target} exists already (pass --force to replace it)")

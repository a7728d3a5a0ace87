"""Calibrate the simulator from your own data: ``python -m sim.calibrate``.

``transactions FILE``: a transaction log (one row per transaction: customer, date, amount)
fitted with the BG/NBD repeat-buying model and the Gamma-Gamma spend model; writes
``retention/fitted_<name>.yaml`` and ``economics/fitted_<name>.yaml`` into the config folder
(``--config-dir``, default ``./fitted``) and a report (parameters with standard errors,
diagnostics, figures, expected LTV per customer) into the output folder. The simulator then
runs on them with ``python -m sim --config-dir fitted retention=fitted_<name>
economics=fitted_<name>``.

``journey FILE``: a journey event log (one row each time a customer enters a stage) fitted
stage by stage (dwell time and exit probabilities, censored at the end of the data); writes
``journey/fitted_<name>.yaml`` and a report.

Conventions: a customer's transactions on the same calendar day are one purchase (amounts
summed); the first purchase starts the customer's clock and only later purchases are
repeats. Times in the written configs are days, as in the simulator; the LTV discounts
continuously at ln(1 + annual rate) / 365 per day, as the simulator does.

Input is untrusted. Bad input (a file, a column, a cell, an option) raises
``CalibrationError`` (an ``sim.errors.InputError``) with one line naming the file line or
the option, the value and what is allowed; the command line prints it as ``error: ...`` and
exits with status 2. Dates lie in ``FIRST_DATE`` .. ``LAST_DATE``; the numeric options'
ranges are in ``OPTION_RANGES``. Rows that are exact copies of an earlier row are reported
as warnings (stderr and the report): in a transaction log they are kept (two equal orders
on a day are possible; ``--drop-duplicates`` drops them), in a journey log they are dropped
(a stage entered twice at the same recorded instant is a copy). Fitted configs are never
written into the installed package, and every text written into YAML reads back as the
same string, through YAML and OmegaConf (``${`` is escaped, never resolved).

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
way: an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
customer base analysis. *Journal of Marketing Research* 42(4), 415-430.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import json
import math
import os
import re
import shlex
import sys
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import signal, stats

from sim import io
from sim.calibrate import buying, funnel
from sim.calibrate.buying import CalibrationError
from sim.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT, InputError, OutputError
from sim.model.config import CONFIG_DIR, SCENARIO_DIR, compose_config, to_container
from sim.model.distributions import CV_RANGE
from sim.model.spec import POST_STATES, SpecError, build_spec
from sim.present import figures

__all__ = [
    "JourneyData",
    "JourneyFit",
    "TransactionData",
    "TransactionFit",
    "calibrate_journey",
    "calibrate_transactions",
    "fit_journey",
    "fit_transactions",
    "journey_from_run",
    "journey_yaml",
    "main",
    "prepare_journey",
    "prepare_transactions",
    "retention_yaml",
    "transactions_from_run",
]

DAYS_PER_YEAR = 365.0  # the simulator's discounting: ln(1 + annual rate) / 365 per day
DAYS_PER_UNIT = {"day": 1.0, "week": 7.0}
HIST_BINS = 8  # repeat purchases 0 .. 6 and 7+, as in Fader, Hardie & Lee (2005)
Z95 = 1.959964
# dates in a log and in the date options: a business's records, with room on both sides;
# also keeps every day count far inside pandas' nanosecond range (1677-2262)
FIRST_DATE = pd.Timestamp("1900-01-01")
LAST_DATE = pd.Timestamp("2199-12-31 23:59:59.999999")
MAX_AMOUNT = 1e12  # one transaction, in currency units: larger is a unit or export error
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


def _g(x: float, digits: int = 4) -> str:
    """A number for tables: ``digits`` significant digits, '-' for NaN."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def _yaml_number(x: float) -> str:
    """Six significant digits; exponents with a mantissa dot, as YAML 1.1 floats need."""
    text = f"{float(x):.6g}"
    return f"{float(x):.5e}" if "e" in text else text


# YAML 1.1 reads these plain words as booleans or null, not as strings
_YAML_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"])


def _omegaconf_literal(text: str) -> str:
    """``text`` escaped for OmegaConf, which resolves ``${...}`` in every string value (even
    a quoted one): ``${`` becomes ``\\${`` and a run of k backslashes before it 2k, so the
    value reads back as ``text`` and never resolves."""
    return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)


def _quoted(text: str, dollar: str = "$") -> str:
    """A YAML double-quoted scalar reading back as ``text`` (JSON's escapes are YAML's;
    characters YAML does not allow raw, such as U+0085 or U+2028, escaped too)."""
    body = json.dumps(text, ensure_ascii=False).replace("${", dollar + "{")
    out = []
    for c in body:
        if c.isprintable() or c == " ":
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return "".join(out)


def _plain(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text)) and text.lower() not in _YAML_WORDS


def _yaml_key(name: str) -> str:
    """A mapping key: plain when YAML reads it back as the same string, else quoted.
    Keys are never interpolated, so the ``$`` of ``${`` is written as ``\\x24`` (no ``${``
    in the file)."""
    name = str(name)
    return name if _plain(name) else _quoted(name, dollar="\\x24")


def _yaml_str(text: str) -> str:
    """A string value reading back as ``text`` through YAML and OmegaConf."""
    text = str(text)
    return text if _plain(text) else _quoted(_omegaconf_literal(text))


def _comment(text: str) -> str:
    """Text for a YAML comment: one line (line breaks and other unprintable characters
    escaped), no ``${``."""
    text = "".join(c if c.isprintable() else json.dumps(c)[1:-1] if ord(c) < 0x10000
                   else f"\\U{ord(c):08x}" for c in str(text))
    return _omegaconf_literal(text)


def clean_name(text: str) -> str:
    """A config name from free text: lower case, letters, digits and underscores, at most
    ``MAX_NAME_CHARS``."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:MAX_NAME_CHARS].strip("_")
    return name or "data"


# --------------------------------------------------------------------- input checks
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


def _parse_times(values: pd.Series, column: str, source: str) -> pd.Series:
    """ISO dates or date-times; a time zone is dropped (mixed zones: converted to UTC)."""
    text = values.astype(str).str.strip()
    blank = text == ""
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0])
        raise CalibrationError(f"{source}, line {_line(row)}: empty {column}")
    iso = text.where(text.str.fullmatch(_ISO), "")
    try:
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):  # mixed time-zone offsets
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CalibrationError(f"{source}, line {_line(row)}: {column} {text.iloc[row]!r} is "
                               "not an ISO date (YYYY-MM-DD) or date-time")
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


def _parse_option_date(text: str | None, option: str) -> pd.Timestamp | None:
    """An ISO date or date-time given as an option (a time zone is dropped), within
    ``FIRST_DATE`` .. ``LAST_DATE``."""
    if text is None:
        return None
    try:
        value = pd.NaT if not re.fullmatch(_ISO, str(text).strip()) else pd.to_datetime(
            pd.Series([str(text).strip()]), format="ISO8601", errors="coerce").iloc[0]
    except (ValueError, TypeError, OverflowError):
        value = pd.NaT
    if pd.isna(value):
        raise CalibrationError(f"{option} {text!r} is not an ISO date (YYYY-MM-DD) or date-time")
    value = value.tz_localize(None) if value.tzinfo is not None else value
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


# ------------------------------------------------------------------- transactions
@dataclass(frozen=True)
class TransactionData:
    """A transaction log summarised for the BG/NBD and Gamma-Gamma models.

    ``customers``: one row per customer whose first purchase is on or before the end of
    calibration: ``customer_id``, ``first_purchase`` (date), ``x`` (repeat purchases in
    the calibration period), ``t_x`` and ``T`` (ages at the last repeat purchase and at
    the end of calibration, in ``unit``s), ``mean_repeat_value`` (NaN when x = 0),
    ``purchases_holdout`` (NaN without a holdout). ``purchases``: every purchase (a
    customer's day) of those customers up to the end of the data used: ``customer_id``,
    ``day``, ``amount``, ``repeat`` (not the first).
    """

    customers: pd.DataFrame
    purchases: pd.DataFrame
    unit: str
    first_date: pd.Timestamp
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp | None
    n_rows: int
    n_merged: int  # transactions merged into another on the same day
    n_later: int  # transactions after the data used (or of customers first seen later)
    n_zero: int  # purchases of zero value
    source: str
    n_duplicates: int = 0  # rows that are exact copies of an earlier row
    warnings: tuple[str, ...] = ()  # about the data: printed on stderr, and in the report

    @property
    def days_per_unit(self) -> float:
        return DAYS_PER_UNIT[self.unit]

    @property
    def holdout_units(self) -> float:
        if self.holdout_end is None:
            return 0.0
        return (self.holdout_end - self.calibration_end).days / self.days_per_unit


def prepare_transactions(table: pd.DataFrame, source: str = "transactions",
                         customer_col: str = "customer_id", date_col: str = "date",
                         amount_col: str = "amount", calibration_end: str | None = None,
                         holdout_end: str | None = None, unit: str = "day",
                         drop_duplicates: bool = False) -> TransactionData:
    """Check a transaction log and summarise it per customer.

    Rows that are exact copies of an earlier row (every column equal) are counted in a
    warning; they are kept (and so summed into the customer's purchase of the day) unless
    ``drop_duplicates``.

    Raises
    ------
    CalibrationError : missing columns, empty data, an empty customer id, a date that is
        not ISO or outside ``FIRST_DATE`` .. ``LAST_DATE``, an amount that is not a finite
        number, is negative or above ``MAX_AMOUNT`` (naming the file line), a calibration
        end before the first purchase, a holdout end not after it, a single customer.
    """
    if unit not in DAYS_PER_UNIT:
        raise CalibrationError(f"--unit {unit!r}: one of {', '.join(DAYS_PER_UNIT)}")
    _require_columns(table, {"customer": (customer_col, "--customer-col"),
                             "date": (date_col, "--date-col"),
                             "amount": (amount_col, "--amount-col")}, source)
    ids = _ids(table[customer_col], customer_col, source)
    when = _parse_times(table[date_col], date_col, source)
    text = table[amount_col].astype(str).str.strip()
    amount = pd.to_numeric(text, errors="coerce")
    bad = (amount.isna() | ~np.isfinite(amount)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CalibrationError(f"{source}, line {_line(row)}: {amount_col} {text.iloc[row]!r} "
                               "is not a number (a finite amount, such as 12.50)")
    negative = (amount < 0).to_numpy()
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise CalibrationError(
            f"{source}, line {_line(row)}: {amount_col} {text.iloc[row]} is negative (refunds "
            "and returns are not purchases: net them against their purchase or drop them)")
    huge = (amount > MAX_AMOUNT).to_numpy()
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise CalibrationError(
            f"{source}, line {_line(row)}: {amount_col} {text.iloc[row]} is more than the "
            f"{MAX_AMOUNT:g} a transaction may have (amounts in one currency unit)")
    notes = []
    dup, where = _duplicates(table)
    n_dup = int(dup.sum())
    if n_dup:
        notes.append(
            f"{source}: {n_dup:,} row{'s are' if n_dup > 1 else ' is an'} exact cop"
            f"{'ies' if n_dup > 1 else 'y'} of an earlier row ({where}); "
            + ("dropped (--drop-duplicates)" if drop_duplicates else
               "kept, each summed into its customer's purchase of the day: if they are "
               "repeated exports of one order, remove them (or pass --drop-duplicates)"))
        if drop_duplicates:
            keep = ~dup
            ids, when, amount = ids[keep], when[keep], amount[keep]
    day = when.dt.normalize()
    end = _parse_option_date(calibration_end, "--calibration-end")
    end = day.max() if end is None else end.normalize()
    hold = _parse_option_date(holdout_end, "--holdout-end")
    first_date = day.min()
    if end < first_date:
        raise CalibrationError(f"--calibration-end {end.date()} is before the first "
                               f"transaction ({first_date.date()})")
    if hold is not None:
        hold = hold.normalize()
        if hold <= end:
            raise CalibrationError(f"--holdout-end {hold.date()} must be after the end of "
                                   f"calibration ({end.date()}; set it with --calibration-end)")
    last_used = end if hold is None else hold

    frame = pd.DataFrame({"customer_id": ids, "day": day, "amount": amount.astype(float)})
    merged = frame.groupby(["customer_id", "day"], sort=True, as_index=False)["amount"].sum()
    first = merged.groupby("customer_id")["day"].transform("min")
    keep = (first <= end) & (merged["day"] <= last_used)
    n_later = int(len(frame) - frame.merge(merged.loc[keep, ["customer_id", "day"]],
                                           on=["customer_id", "day"]).shape[0])
    purchases = merged.loc[keep].reset_index(drop=True)
    purchases["repeat"] = purchases["day"] > first[keep].to_numpy()
    n_customers = purchases["customer_id"].nunique()
    if n_customers == 0:
        raise CalibrationError(f"{source}: no purchase on or before the end of calibration "
                               f"({end.date()})")
    if n_customers == 1:
        raise CalibrationError(
            f"{source}: only one customer ({purchases['customer_id'].iloc[0]!r}) bought by the "
            "end of calibration; the models describe a population and need many customers")

    dpu = DAYS_PER_UNIT[unit]
    cal = purchases[purchases["day"] <= end]
    g = cal.groupby("customer_id", sort=True)
    customers = pd.DataFrame({"first_purchase": g["day"].min()})
    rep = cal[cal["repeat"]].groupby("customer_id")
    customers["x"] = rep.size().reindex(customers.index, fill_value=0).astype(int)
    last = rep["day"].max().reindex(customers.index)
    customers["t_x"] = ((last - customers["first_purchase"]).dt.days.fillna(0) / dpu)
    customers["T"] = (end - customers["first_purchase"]).dt.days / dpu
    customers["mean_repeat_value"] = rep["amount"].mean().reindex(customers.index)
    if hold is not None:
        later = purchases[purchases["day"] > end].groupby("customer_id").size()
        customers["purchases_holdout"] = later.reindex(customers.index, fill_value=0)
    else:
        customers["purchases_holdout"] = np.nan
    customers = customers.reset_index()
    return TransactionData(
        customers=customers, purchases=purchases, unit=unit, first_date=first_date,
        calibration_end=end, holdout_end=hold, n_rows=len(table),
        n_merged=int(len(frame) - len(merged)), n_later=n_later,
        n_zero=int((purchases["amount"] == 0).sum()), source=source, n_duplicates=n_dup,
        warnings=tuple(notes))


@dataclass(frozen=True)
class TransactionFit:
    """Fitted repeat buying and spend, with diagnostics and expected LTV per customer."""

    data: TransactionData
    bgnbd: buying.MLFit  # (r, alpha, a, b), alpha per unit of data.unit
    spend: buying.MLFit | None  # (p, q, gamma); None with --no-spend
    histogram: pd.DataFrame  # repeat purchases: observed and expected customers
    chi_square: dict[str, float]
    tracking: pd.DataFrame  # day, actual and expected cumulative repeat purchases
    holdout: pd.DataFrame | None  # by calibration repeat purchases: actual, predicted
    holdout_summary: dict[str, float] | None
    customers: pd.DataFrame  # data.customers plus predictions and LTV
    ltv: dict[str, Any]
    spend_diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def alpha_days(self) -> tuple[float, float]:
        """alpha converted to days (a rate per unit: alpha_days = units x alpha), with SE."""
        dpu = self.data.days_per_unit
        return self.bgnbd["alpha"] * dpu, self.bgnbd.se_of("alpha") * dpu

    def order_value(self) -> dict[str, float]:
        """The simulator's order value (lognormal mean and cv) matching the fitted
        Gamma-Gamma mean and cv of a single purchase value, with delta-method SEs."""
        if self.spend is None:
            return {}
        est, cov = self.spend.estimate, self.spend.cov
        mean, cv = buying.gg_order_value(est)
        out = {"order_value_mean": mean, "order_value_cv": cv,
               "order_value_mean_se": math.nan, "order_value_cv_se": math.nan}
        if np.isfinite(mean):
            out["order_value_mean_se"] = buying.delta_se(
                lambda v: buying.gg_order_value(v)[0], est, cov)
        if np.isfinite(cv):
            out["order_value_cv_se"] = buying.delta_se(
                lambda v: buying.gg_order_value(v)[1], est, cov)
        return out


def _histogram(params: np.ndarray, x: np.ndarray, big_t: np.ndarray
               ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Observed and expected customers by repeat purchases (0 .. 6, 7+) and a chi-square
    test (tail bins merged until every expected count is at least 5)."""
    k = HIST_BINS - 1
    values, counts = np.unique(big_t, return_counts=True)
    expected = np.zeros(HIST_BINS)
    for j in range(k):
        expected[j] = float(counts @ buying.bgnbd_pmf(params, j, values))
    expected[k] = max(x.size - expected[:k].sum(), 0.0)
    observed = np.array([(x == j).sum() for j in range(k)] + [(x >= k).sum()], dtype=float)
    labels = [str(j) for j in range(k)] + [f"{k}+"]
    obs, exp = list(observed), list(expected)
    while len(exp) > 2 and exp[-1] < 5:
        exp[-2] += exp.pop()
        obs[-2] += obs.pop()
    o, e = np.array(obs), np.array(exp)
    stat = float(((o - e) ** 2 / np.where(e > 0, e, np.nan)).sum())
    df = len(e) - 1 - 4
    p = float(stats.chi2.sf(stat, df)) if df >= 1 else math.nan
    table = pd.DataFrame({"repeat_purchases": labels, "observed": observed,
                          "expected": expected})
    return table, {"statistic": stat, "df": df, "p_value": p, "bins": len(e)}


def _tracking(data: TransactionData, params: np.ndarray) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration customers by day: observed, and the
    model's expectation sum_i E[X(day - first_i)] (unconditional, as in Fader, Hardie &
    Lee 2005, figure 2)."""
    start = data.first_date
    stop = data.holdout_end or data.calibration_end
    n_days = (stop - start).days + 1
    first_day = (data.customers["first_purchase"] - start).dt.days.to_numpy()
    cohort = np.bincount(first_day, minlength=n_days)[:n_days].astype(float)
    ages = np.arange(n_days) / data.days_per_unit
    ex = buying.bgnbd_expected(params, ages)
    # direct sums for short periods, FFT for long ones (a log may span up to 300 years:
    # 1e10 products directly); the FFT's rounding can dip below zero
    expected = np.maximum(signal.convolve(cohort, ex, method="auto")[:n_days], 0.0)
    rep = data.purchases[data.purchases["repeat"]]
    day = (rep["day"] - start).dt.days.to_numpy()
    actual = np.cumsum(np.bincount(day, minlength=n_days)[:n_days])
    return pd.DataFrame({"date": start + pd.to_timedelta(np.arange(n_days), unit="D"),
                         "actual": actual, "expected": expected})


def fit_transactions(data: TransactionData, spend: bool = True, n_starts: int = 6,
                     annual_discount_rate: float = 0.10, gross_margin: float = 1.0,
                     ltv_years: float = 3.0) -> TransactionFit:
    """Fit BG/NBD (and Gamma-Gamma with ``spend``) and compute the diagnostics and LTVs.

    LTV per customer = gross_margin x expected value of a purchase (Gamma-Gamma,
    conditional on the customer's repeat purchases) x discounted expected purchases over
    the next ``ltv_years`` after the end of calibration (continuous discounting at
    ln(1 + annual_discount_rate) / 365 per day, the simulator's). The LTV of a new customer
    uses the simulator's convention: the first purchase's margin undiscounted plus the
    discounted repeat purchases of the following ``ltv_years``.

    Raises
    ------
    CalibrationError : an option out of its range (``check_options``), or the data cannot
        support a fit (no repeat buyers, parameters not identified).
    """
    check_options(n_starts=n_starts, annual_discount_rate=annual_discount_rate,
                  gross_margin=gross_margin, ltv_years=ltv_years)
    c = data.customers
    x, t_x, big_t = c["x"].to_numpy(float), c["t_x"].to_numpy(float), c["T"].to_numpy(float)
    if not np.any(x > 0):
        raise CalibrationError(
            f"{data.source}: no customer bought again on a later day within the calibration "
            f"period ({len(c)} customers, each with purchases on one day only), so repeat "
            "buying cannot be fitted")
    bg = buying.fit_bgnbd(x, t_x, big_t, n_starts=n_starts)
    params = bg.estimate
    gg = None
    spend_diag: dict[str, Any] = {}
    if spend:
        buyers = (x > 0) & (c["mean_repeat_value"].fillna(0).to_numpy() > 0)
        if buyers.sum() < 2:
            raise CalibrationError(f"{data.source}: fewer than two customers with repeat "
                                   "purchases of positive value; the spend model cannot be "
                                   "fitted (use --no-spend to fit repeat buying only)")
        m = c["mean_repeat_value"].to_numpy(float)[buyers]
        try:
            gg = buying.fit_gamma_gamma(x[buyers], m, n_starts=n_starts)
        except CalibrationError as err:
            raise CalibrationError(f"{err} (use --no-spend to fit repeat buying only)") from None
        if gg["q"] <= 1:
            raise CalibrationError("Gamma-Gamma: q <= 1, so the mean purchase value is "
                                   "infinite; the spend model does not fit these data (use "
                                   "--no-spend)")
        corr = float(np.corrcoef(x[buyers], m)[0, 1]) if buyers.sum() > 2 else math.nan
        grid = np.linspace(0, float(np.percentile(m, 99.5)) * 1.05, 300)[1:]
        xs, nx = np.unique(x[buyers], return_counts=True)
        dens = sum(w * np.exp(buying.gg_loglik(gg.estimate, np.full(grid.size, xv), grid))
                   for xv, w in zip(xs, nx, strict=True)) / nx.sum()
        spend_diag = {"n_buyers": int(buyers.sum()), "n_excluded_zero_value":
                      int(((x > 0) & ~buyers).sum()), "corr_frequency_value": corr,
                      "values": m, "grid": grid, "density": dens}
    hist, chi = _histogram(params, x, big_t)
    tracking = _tracking(data, params)

    table = c.copy()
    table["p_alive"] = buying.bgnbd_p_alive(params, x, t_x, big_t)
    holdout = holdout_summary = None
    if data.holdout_end is not None:
        pred = buying.bgnbd_conditional_expected(params, data.holdout_units, x, t_x, big_t)
        table["predicted_holdout"] = pred
        actual = table["purchases_holdout"].to_numpy(float)
        group = np.minimum(x, HIST_BINS - 1).astype(int)
        labels = [str(j) for j in range(HIST_BINS - 1)] + [f"{HIST_BINS - 1}+"]
        rows = []
        for j, label in enumerate(labels):
            sel = group == j
            if sel.any():
                rows.append({"repeat_purchases": label, "customers": int(sel.sum()),
                             "actual_mean": float(actual[sel].mean()),
                             "predicted_mean": float(pred[sel].mean())})
        holdout = pd.DataFrame(rows)
        holdout_summary = {
            "customers": len(actual), "actual_total": float(actual.sum()),
            "predicted_total": float(pred.sum()),
            "mean_absolute_error": float(np.abs(actual - pred).mean()),
            "rmse": float(np.sqrt(((actual - pred) ** 2).mean())),
            "correlation": float(np.corrcoef(actual, pred)[0, 1]) if actual.std() > 0
            else math.nan,
            "weeks" if data.unit == "week" else "days": data.holdout_units,
        }

    dpu = data.days_per_unit
    delta = math.log1p(annual_discount_rate) / DAYS_PER_YEAR * dpu
    horizon = ltv_years * DAYS_PER_YEAR / dpu
    table["expected_purchases"] = buying.bgnbd_conditional_expected(params, horizon, x, t_x, big_t)
    det = buying.bgnbd_discounted_purchases(params, x, t_x, big_t, delta, horizon)
    table["discounted_purchases"] = det
    det_new = float(buying.bgnbd_discounted_purchases(params, np.zeros(1), np.zeros(1),
                                                  np.zeros(1), delta, horizon)[0])
    ltv: dict[str, Any] = {
        "annual_discount_rate": annual_discount_rate, "gross_margin": gross_margin,
        "horizon_years": ltv_years,
        "discount_rate_per_day": math.log1p(annual_discount_rate) / DAYS_PER_YEAR,
        "new_customer_discounted_repeat_purchases": det_new,
        "new_customer_expected_repeat_purchases":
            float(buying.bgnbd_expected(params, np.array([horizon]))[0]),
    }
    if gg is not None:
        value = buying.gg_conditional_mean(gg.estimate, x, c["mean_repeat_value"].fillna(0))
        table["expected_value"] = value
        table["ltv"] = gross_margin * value * det
        mean_value = buying.gg_order_value(gg.estimate)[0]
        ltv |= {"new_customer_ltv": gross_margin * mean_value * (1 + det_new),
                "customer_ltv_mean": float(table["ltv"].mean()),
                "customer_ltv_total": float(table["ltv"].sum()),
                **{f"customer_ltv_p{q}": float(np.percentile(table["ltv"], q))
                   for q in (10, 50, 90)}}
    return TransactionFit(data, bg, gg, hist, chi, tracking, holdout, holdout_summary, table,
                          ltv, spend_diag)


def _provenance(source_name: str, sha: str, command: str, lines: Sequence[str]) -> str:
    """Header comments; every line is one comment line whatever the file or stage names
    hold (``_comment``)."""
    out = [f"# Fitted by `{command}` on {dt.date.today().isoformat()}",
           f"# source: {_comment(source_name)}, sha256 {sha}",
           *(f"# {part}" for line in lines
             for part in textwrap.wrap(_comment(line), 94, break_on_hyphens=False,
                                       subsequent_indent="  "))]
    return "\n".join(out) + "\n"


def run_command(groups: Sequence[str], config_dir: Path | str = "DIR") -> str:
    """The command that runs the simulator on fitted configs written into ``config_dir``."""
    return " ".join(["python -m sim --config-dir",
                     *(shlex.quote(str(a)) for a in (config_dir, *groups))])


def retention_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``retention/fitted_<name>.yaml``: BG/NBD in the simulator's parametrisation (days)
    with the provenance in comments (the schema has no place for it)."""
    d, bg = result.data, result.bgnbd
    alpha_days, alpha_days_se = result.alpha_days
    period = f"{d.first_date.date()} to {d.calibration_end.date()}"
    lines = [
        "Repeat buying, BG/NBD (Fader, Hardie & Lee 2005): lambda ~ Gamma(r, alpha_days) per "
        "day, drop-out p ~ Beta(a, b) after each repeat purchase.",
        f"calibration period: {period}" + (f", holdout to {d.holdout_end.date()}"
                                           if d.holdout_end is not None else ""),
        f"customers: {len(d.customers)}, repeat buyers: {int((d.customers['x'] > 0).sum())}, "
        f"fitted in {d.unit}s, log-likelihood {bg.loglik:.6g}",
        "estimates (standard errors): " + ", ".join(
            f"{n} {_g(bg[n])} ({_g(bg.se_of(n), 3)})" for n in ("r", "a", "b"))
        + f", alpha_days {_g(alpha_days)} ({_g(alpha_days_se, 3)})"
        + (" = 7 x alpha_weeks" if d.unit == "week" else ""),
        "use: " + run_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding retention/ and economics/)",
        "acting on top of the fit: segment multipliers (market.segments), loyalty and "
        "messaging, and experience (experience.churn_per_point, experience.leave_after_bad); "
        "to simulate the fitted population as it was, keep loyalty and messaging off and "
        "add experience.churn_per_point=0 experience.leave_after_bad=0",
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    body = (f"model: repeat_purchase\nrepeat:\n  r: {_yaml_number(bg['r'])}\n"
            f"  alpha_days: {_yaml_number(alpha_days)}\n  a: {_yaml_number(bg['a'])}\n"
            f"  b: {_yaml_number(bg['b'])}\n")
    return head + body


def economics_values(result: TransactionFit) -> tuple[dict[str, float], str]:
    """The fitted ``economics`` keys (the cv brought into the simulator's range) and a note
    when it had to be."""
    ov = result.order_value()
    cv = ov["order_value_cv"]
    lo, hi = 0.01, 10.0  # spec: order_value_cv in (0, 10]
    note = ""
    if not lo <= cv <= hi:
        note = f" (fitted cv {_g(cv)} is outside [{lo:g}, {hi:g}]; the nearest value is used)"
        cv = min(max(cv, lo), hi) if np.isfinite(cv) else hi
    return {"order_value_mean": ov["order_value_mean"], "order_value_cv": cv}, note


def economics_yaml(result: TransactionFit, name: str, source_name: str, sha: str) -> str:
    """``economics/fitted_<name>.yaml``: the baseline economics with the order value's mean
    and cv from the Gamma-Gamma fit."""
    assert result.spend is not None
    ov, gg = result.order_value(), result.spend
    values, note = economics_values(result)
    lines = [
        "Order value: the simulator's lognormal (mean, cv) matched to the mean and cv of a "
        "single purchase value under the fitted Gamma-Gamma model (Fader, Hardie & Lee 2005):",
        "mean = p gamma / (q - 1), cv^2 = (p + q - 1) / (p (q - 2)). Gross margin and "
        "discount rate are the baseline's.",
        "Gamma-Gamma estimates (standard errors): " + ", ".join(
            f"{n} {_g(gg[n])} ({_g(gg.se_of(n), 3)})" for n in buying.GG_NAMES)
        + f"; {gg.n_obs} repeat buyers, log-likelihood {gg.loglik:.6g}",
        f"order_value_mean {_g(ov['order_value_mean'])} "
        f"({_g(ov['order_value_mean_se'], 3)}), order_value_cv {_g(ov['order_value_cv'])} "
        f"({_g(ov['order_value_cv_se'], 3)}){note}",
        "use: " + run_command(_transaction_groups(result, name))
        + "   (DIR: the folder holding retention/ and economics/)",
    ]
    head = _provenance(source_name, sha, "python -m sim.calibrate transactions", lines)
    return head + ("defaults:\n  - baseline\n  - _self_\n"
                   f"order_value_mean: {_yaml_number(values['order_value_mean'])}\n"
                   f"order_value_cv: {_yaml_number(values['order_value_cv'])}\n")


def _transaction_groups(result: TransactionFit, name: str) -> list[str]:
    return [f"retention=fitted_{name}"] + ([f"economics=fitted_{name}"]
                                           if result.spend is not None else [])


@functools.cache
def _baseline() -> dict[str, Any]:
    return to_container(compose_config([]))


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


def _check_config(section: str, value: dict[str, Any], referral_entry: str | None = None
                  ) -> None:
    """The fitted section composed into the baseline must pass ``build_spec`` (the
    journey as the written YAML holds it: escaped text resolves to the names)."""
    cfg = copy.deepcopy(_baseline())
    cfg[section] = value if section == "journey" else cfg[section] | value
    if referral_entry is not None:  # as the override passes it: ${ escaped
        cfg["advocacy"]["referral_entry_stage"] = _omegaconf_literal(referral_entry)
    try:
        build_spec(cfg)
    except SpecError as err:
        raise CalibrationError(f"the fitted {section} config does not validate: "
                               + "; ".join(f"{p} = {v!r}: {a}" for p, v, a in err.problems)
                               ) from None


def transactions_report(result: TransactionFit, name: str, written: Sequence[Path],
                        config_dir: Path | str = "DIR") -> str:
    """The Markdown report of a transaction fit (``config_dir``: where the configs went)."""
    d, bg = result.data, result.bgnbd
    unit = d.unit
    lo, hi = bg.interval()
    alpha_days, alpha_days_se = result.alpha_days
    n_rep = int((d.customers["x"] > 0).sum())
    out = [
        f"# Calibration from {d.source}: repeat buying and spend",
        "",
        f"Transactions: {d.n_rows:,} rows; {d.n_merged:,} merged into another purchase of the "
        f"same customer and day; {d.n_later:,} after the data used or of customers first "
        f"seen after the calibration period. Calibration period {d.first_date.date()} to "
        f"{d.calibration_end.date()}"
        + (f", holdout to {d.holdout_end.date()}" if d.holdout_end is not None else "")
        + f". {len(d.customers):,} customers, {n_rep:,} of them bought again "
        f"({int(d.customers['x'].sum()):,} repeat purchases). Time unit: {unit}.",
        *(f"\n**Warning:** {w}" for w in d.warnings),
        "",
        "## Repeat buying (BG/NBD, Fader, Hardie & Lee 2005)",
        "",
        f"lambda ~ Gamma(r, alpha) purchases per {unit}; after each repeat purchase the "
        "customer drops out with probability p ~ Beta(a, b).",
        "",
        "| parameter | estimate | standard error | 95% CI |",
        "|---|---|---|---|",
        *(f"| {n} | {_g(bg[n])} | {_g(bg.se_of(n), 3)} | [{_g(lo[i])}, {_g(hi[i])}] |"
          for i, n in enumerate(bg.names)),
        f"| alpha_days (simulator) | {_g(alpha_days)} | {_g(alpha_days_se, 3)} | "
        # alpha_days = alpha x days per unit: alpha's log-scale interval, scaled
        f"[{_g(lo[1] * d.days_per_unit)}, {_g(hi[1] * d.days_per_unit)}] |",
        "",
        f"Log-likelihood {bg.loglik:.6g} ({bg.n_obs:,} customers). Convergence: "
        f"{bg.n_starts} starting points, {bg.n_converged} converged, {bg.n_at_best} reached "
        "the best log-likelihood; Hessian positive definite.",
        *(f"\n**Warning:** {w}" for w in bg.warnings),
        "",
        f"Mean purchase rate r / alpha = {_g(bg['r'] / bg['alpha'])} per {unit} (one purchase "
        f"every {_g(alpha_days / bg['r'])} days while active); mean drop-out probability "
        f"a / (a + b) = {_g(bg['a'] / (bg['a'] + bg['b']))}.",
        "",
        "### Repeat purchases in the calibration period",
        "",
        "| repeat purchases | observed customers | expected customers |",
        "|---|---|---|",
        *(f"| {r.repeat_purchases} | {r.observed:,.0f} | {r.expected:,.1f} |"
          for r in result.histogram.itertuples()),
        "",
        f"Chi-square test (tail bins merged to expected counts of at least 5): "
        f"statistic {result.chi_square['statistic']:.4g}, {result.chi_square['df']} degrees of "
        f"freedom, p = {_g(result.chi_square['p_value'], 3)}.",
    ]
    if result.holdout is not None and result.holdout_summary is not None:
        hs = result.holdout_summary
        out += [
            "",
            "### Holdout",
            "",
            f"Purchases per customer in the holdout period ({_g(d.holdout_units)} {unit}s), "
            "actual against the model's conditional expectation, by repeat purchases in "
            "calibration:",
            "",
            "| repeat purchases | customers | actual mean | predicted mean |",
            "|---|---|---|---|",
            *(f"| {r.repeat_purchases} | {r.customers:,} | {r.actual_mean:.3f} | "
              f"{r.predicted_mean:.3f} |" for r in result.holdout.itertuples()),
            "",
            f"Total: actual {hs['actual_total']:,.0f}, predicted {hs['predicted_total']:,.1f}; "
            f"per customer: mean absolute error {hs['mean_absolute_error']:.3f}, RMSE "
            f"{hs['rmse']:.3f}, correlation {_g(hs['correlation'], 3)}.",
        ]
    if result.spend is not None:
        gg = result.spend
        glo, ghi = gg.interval()
        ov = result.order_value()
        sd = result.spend_diagnostics
        out += [
            "",
            "## Spend (Gamma-Gamma, Fader, Hardie & Lee 2005)",
            "",
            "The value of each repeat purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across "
            f"customers; fitted on the mean repeat-purchase value of {gg.n_obs:,} repeat buyers"
            + (f" ({sd['n_excluded_zero_value']} with a zero mean left out)"
               if sd.get("n_excluded_zero_value") else "") + ".",
            "",
            "| parameter | estimate | standard error | 95% CI |",
            "|---|---|---|---|",
            *(f"| {n} | {_g(gg[n])} | {_g(gg.se_of(n), 3)} | [{_g(glo[i])}, {_g(ghi[i])}] |"
              for i, n in enumerate(gg.names)),
            f"| order_value_mean (simulator) | {_g(ov['order_value_mean'])} | "
            f"{_g(ov['order_value_mean_se'], 3)} | |",
            f"| order_value_cv (simulator) | {_g(ov['order_value_cv'])} | "
            f"{_g(ov['order_value_cv_se'], 3)} | |",
            "",
            f"Log-likelihood {gg.loglik:.6g}. Convergence: {gg.n_starts} starting points, "
            f"{gg.n_converged} converged, {gg.n_at_best} reached the best log-likelihood.",
            *(f"\n**Warning:** {w}" for w in gg.warnings),
            "",
            "The model assumes spend is independent of purchase frequency: the correlation "
            f"between repeat purchases and mean value is {_g(sd['corr_frequency_value'], 3)}.",
        ]
    lt = result.ltv
    out += [
        "",
        "## Expected value",
        "",
        f"Discounting as in the simulator: continuously at ln(1 + {lt['annual_discount_rate']:g})"
        f" / 365 per day; horizon {lt['horizon_years']:g} years; gross margin "
        f"{lt['gross_margin']:g} of the amounts.",
        "",
        f"A new customer makes {lt['new_customer_expected_repeat_purchases']:.3f} repeat "
        "purchases in that horizon on average "
        f"({lt['new_customer_discounted_repeat_purchases']:.3f} discounted).",
    ]
    if "new_customer_ltv" in lt:
        out += [
            f"Expected LTV of a new customer (the simulator's convention: first margin now, "
            f"then the discounted repeat margins): {lt['new_customer_ltv']:,.2f}.",
            "",
            f"Existing customers, from the end of calibration: mean expected LTV "
            f"{lt['customer_ltv_mean']:,.2f} (P10 {lt['customer_ltv_p10']:,.2f}, P50 "
            f"{lt['customer_ltv_p50']:,.2f}, P90 {lt['customer_ltv_p90']:,.2f}), total "
            f"{lt['customer_ltv_total']:,.0f}; per customer in `customers.csv`.",
        ]
    out += ["", "## Files", "", *(f"- `{p.name}` ({p.parent.name}/)" for p in written), "",
            "Run the simulator with the fitted parameters:", "", "```",
            run_command(_transaction_groups(result, name), config_dir), "```", "",
            "(`--config-dir` names the folder holding retention/ and economics/; add "
            "overrides after the groups as usual).", ""]
    return "\n".join(out)


def _fit_doc(f: buying.MLFit) -> dict[str, Any]:
    lo, hi = f.interval()
    return {"parameters": {n: {"estimate": float(f.estimate[i]), "se": float(f.se[i]),
                               "low": float(lo[i]), "high": float(hi[i])}
                           for i, n in enumerate(f.names)},
            "covariance": f.cov.tolist(), "loglik": f.loglik, "n": f.n_obs,
            "starts": f.n_starts, "converged": f.n_converged, "at_best": f.n_at_best,
            "warnings": list(f.warnings)}


def calibrate_transactions(path: Path, name: str | None = None, config_dir: Path | None = None,
                           out_dir: Path | None = None, force: bool = False,
                           plots: bool = True, **options: Any) -> tuple[TransactionFit, list[Path]]:
    """Read, fit, write the configs and the report; returns the fit and the files written.

    ``config_dir`` defaults to ``./fitted`` (``DEFAULT_CONFIG_DIR``), ``out_dir`` to
    ``outputs/calibration/transactions_<name>``, both relative to the working directory;
    neither may lie inside the installed package. ``options`` go to
    ``prepare_transactions`` (column names, periods, unit, drop_duplicates) and
    ``fit_transactions`` (spend, n_starts, annual_discount_rate, gross_margin, ltv_years),
    and are checked before the file is read.

    Raises
    ------
    CalibrationError : any bad input (an ``InputError``): the file, its contents, an
        option, a folder inside the package, a config that exists already without ``force``.
    OutputError : a folder that cannot be written.
    """
    path = Path(path)
    name = clean_name(name or path.stem)
    config_dir = _output_dir(DEFAULT_CONFIG_DIR if config_dir is None else config_dir,
                             "--config-dir")
    out_dir = _output_dir(Path("outputs", "calibration", f"transactions_{name}")
                          if out_dir is None else out_dir, "--out")
    prep = {k: options.pop(k) for k in ("customer_col", "date_col", "amount_col",
                                         "calibration_end", "holdout_end", "unit",
                                         "drop_duplicates")
            if k in options}
    check_options(**{k: v for k, v in options.items() if k in OPTION_RANGES})
    targets = [config_dir / "retention" / f"fitted_{name}.yaml"]
    if options.get("spend", True):
        targets.append(config_dir / "economics" / f"fitted_{name}.yaml")
    _targets_free(targets, force)
    table, sha = _read(path, "transaction log")
    data = prepare_transactions(table, source=path.name, **prep)
    result = fit_transactions(data, **options)
    bg = result.bgnbd
    alpha_days = result.alpha_days[0]
    _check_config("retention", {"model": "repeat_purchase",
                                "repeat": {"r": bg["r"], "alpha_days": alpha_days,
                                           "a": bg["a"], "b": bg["b"]}})
    texts = [retention_yaml(result, name, path.name, sha)]
    if result.spend is not None:
        _check_config("economics", economics_values(result)[0])
        texts.append(economics_yaml(result, name, path.name, sha))
    # every check passed: only now write, so a refusal leaves no config behind
    written = [io.write_new_text(text, target, overwrite=force)
               for text, target in zip(texts, targets, strict=True)]

    written.append(io.write_table(result.customers, out_dir / "customers.csv"))
    written.append(io.write_table(result.histogram, out_dir / "repeat_histogram.csv"))
    written.append(io.write_table(result.tracking, out_dir / "tracking.csv"))
    if result.holdout is not None:
        written.append(io.write_table(result.holdout, out_dir / "holdout.csv"))
    doc = {
        "source": {"file": path.name, "sha256": sha, "rows": data.n_rows},
        "periods": {"first_purchase": str(data.first_date.date()),
                    "calibration_end": str(data.calibration_end.date()),
                    "holdout_end": None if data.holdout_end is None
                    else str(data.holdout_end.date())},
        "unit": data.unit, "fitted_on": dt.date.today().isoformat(),
        "bgnbd": _fit_doc(bg) | {"alpha_days": {"estimate": alpha_days,
                                                "se": result.alpha_days[1]}},
        "gamma_gamma": None if result.spend is None
        else _fit_doc(result.spend) | result.order_value()
        | {"corr_frequency_value": result.spend_diagnostics["corr_frequency_value"]},
        "chi_square": result.chi_square,
        "holdout": result.holdout_summary,
        "ltv": result.ltv,
        "configs": [p.name for p in written[:2] if p.suffix == ".yaml"],
    }
    written.append(io.write_json(doc, out_dir / "fit.json"))
    if plots:
        written += _transaction_figures(result, out_dir)
    report = transactions_report(result, name, written, config_dir)
    written.append(io.write_text(report, out_dir / "report.md"))
    return result, written


def _save(ax: Any, path: Path, title: str) -> Path:
    ax.set_title(title, fontsize=10, loc="left")
    fig = ax.figure
    fig.tight_layout()
    saved = io.save_figure(fig, path)
    figures.close(fig)
    return saved


def _transaction_figures(result: TransactionFit, out_dir: Path) -> list[Path]:
    d = result.data
    h, chi = result.histogram, result.chi_square
    written = [_save(figures.plot_repeat_histogram(
        list(h["repeat_purchases"]), h["observed"].to_numpy(), h["expected"].to_numpy()),
        out_dir / "repeat_histogram.png",
        f"Repeat purchases, {d.source}: chi-square {chi['statistic']:.3g} "
        f"(df {chi['df']}, p = {_g(chi['p_value'], 2)})")]
    t = result.tracking
    written.append(_save(figures.plot_tracking(
        t["date"].to_numpy(), t["actual"].to_numpy(), t["expected"].to_numpy(),
        np.datetime64(d.calibration_end)), out_dir / "tracking.png",
        "Cumulative repeat purchases: observed vs BG/NBD"))
    if result.holdout is not None:
        ho = result.holdout
        written.append(_save(figures.plot_holdout(
            list(ho["repeat_purchases"]), ho["actual_mean"].to_numpy(),
            ho["predicted_mean"].to_numpy()), out_dir / "holdout.png",
            "Holdout: purchases per customer, observed vs predicted"))
    if result.spend is not None:
        sd = result.spend_diagnostics
        written.append(_save(figures.plot_spend_fit(sd["values"], sd["grid"], sd["density"]),
                             out_dir / "spend.png", "Mean repeat-purchase value per customer"))
        written.append(_save(figures.plot_value_distribution(
            result.customers["ltv"].to_numpy(),
            f"expected LTV per customer over {result.ltv['horizon_years']:g} years "
            "(discounted; axis cut at P99.5)"), out_dir / "ltv.png",
            "Expected LTV of the existing customers"))
    return written


# ------------------------------------------------------------------------- journey
@dataclass(frozen=True)
class JourneyData:
    """A journey event log cut into visits of the prospect stages (see
    ``sim.calibrate.funnel.stage_visits``); ``channel_visits`` per channel when given."""

    order: tuple[str, ...]  # prospect stages, the entry stage first
    visits: dict[str, funnel.StageVisits]
    channel_visits: dict[str, dict[str, funnel.StageVisits]]
    channel_customers: dict[str, int]
    n_rows: int
    n_customers: int
    n_after: int  # rows after a customer's checkout or loss, or after the end
    start: pd.Timestamp
    end: pd.Timestamp
    lost_recorded: bool
    resolution_days: float
    source: str
    n_duplicates: int = 0  # rows dropped as exact copies of an earlier row
    warnings: tuple[str, ...] = ()  # about the data: printed on stderr, and in the report


def prepare_journey(table: pd.DataFrame, source: str = "events",
                    customer_col: str = "customer_id", stage_col: str = "stage",
                    timestamp_col: str = "timestamp", channel_col: str | None = "channel",
                    end: str | None = None, checkout: Sequence[str] = ("checkout", "purchase"),
                    lost: str = "lost") -> JourneyData:
    """Check a journey event log and cut it into stage visits.

    Stages named in ``checkout`` end a customer's prospect path as the exit ``checkout``;
    ``lost`` ends it as a loss (when the log never names ``lost``, losses are inferred from
    customers whose entries stop). Every other stage is a prospect stage; the entry stage
    is the one most customers start in, the others follow in the order customers reach
    them. Rows that are exact copies of an earlier row (every column equal) are dropped,
    with a warning that counts them: entering a stage twice at the same recorded instant
    would be a visit of length zero ending in itself, a self-loop the data do not have.

    Raises
    ------
    CalibrationError : missing columns, no rows, empty ids or stages, bad timestamps or
        timestamps outside ``FIRST_DATE`` .. ``LAST_DATE``, no checkout stage named, the
        lost stage among the checkout stages, a single customer, a stage name the simulator
        reserves, no customer reaching the checkout.
    """
    checkout = (checkout,) if isinstance(checkout, str) else tuple(str(c) for c in checkout)
    if not checkout or not all(c.strip() for c in checkout):
        raise CalibrationError(f"--checkout {','.join(checkout)!r}: name the stages that mean "
                               "the customer went to buy, comma-separated (such as "
                               "checkout,purchase)")
    if lost in checkout:
        raise CalibrationError(f"--lost {lost!r} is also one of the checkout stages "
                               f"(--checkout {','.join(checkout)!r}); a stage is one or the "
                               "other")
    _require_columns(table, {"customer": (customer_col, "--customer-col"),
                             "stage": (stage_col, "--stage-col"),
                             "timestamp": (timestamp_col, "--timestamp-col")}, source)
    ids = _ids(table[customer_col], customer_col, source)
    stages = _ids(table[stage_col], stage_col, source)
    when = _parse_times(table[timestamp_col], timestamp_col, source)
    n_rows = len(table)
    dup, where = _duplicates(table)
    n_dup = int(dup.sum())
    notes = []
    if n_dup:
        notes.append(f"{source}: {n_dup:,} row{'s' if n_dup > 1 else ''} dropped as exact "
                     f"cop{'ies' if n_dup > 1 else 'y'} of an earlier row ({where}); a stage "
                     "entered twice at the same recorded time cannot be told from a copy")
        keep = ~dup
        table = table[keep].reset_index(drop=True)
        ids, stages, when = (v[keep].reset_index(drop=True) for v in (ids, stages, when))
    stop = _parse_option_date(end, "--end")
    stop = when.max() if stop is None else stop
    if stop < when.min():
        raise CalibrationError(f"--end {stop} is before the first entry ({when.min()})")
    checkout_set = frozenset(checkout)
    seen = set(stages.unique())
    has_lost = lost in seen
    reserved = sorted((seen - checkout_set - {lost}) & set(POST_STATES))
    in_window = (when <= stop).to_numpy()
    n_customers = ids[in_window].nunique()
    if n_customers < 2:
        who = f" ({ids[in_window].iloc[0]!r})" if n_customers else ""
        raise CalibrationError(f"{source}: {n_customers} customer{who} by the end of the data; "
                               "the funnel needs many customers")
    start = when.min()
    time_days = ((when - start) / pd.Timedelta(days=1)).to_numpy(float)
    stop_days = (stop - start) / pd.Timedelta(days=1)
    whole_days = bool((when == when.dt.normalize()).all())
    resolution = 1.0 if whole_days else 1.0 / 86400
    codes, _ = pd.factorize(ids)
    rows = np.flatnonzero(in_window)
    order_idx = rows[np.lexsort((rows, time_days[rows], codes[rows]))]
    cust, stg, t = codes[order_idx], stages.to_numpy()[order_idx], time_days[order_idx]

    # prospect stages and their order: the most common first stage, then by the mean rank
    # of first entry among the customers who reach them
    is_end = np.isin(stg, list(checkout_set | {lost}))
    new_customer = np.r_[True, cust[1:] != cust[:-1]]
    seg_id = np.cumsum(new_customer) - 1
    ended = np.maximum.accumulate(np.where(is_end, np.arange(cust.size), -1))
    first_row = np.flatnonzero(new_customer)
    before_end = ended < first_row[seg_id]  # no checkout / loss yet on this customer's path
    path = before_end & ~is_end
    if reserved and np.isin(stg[path], reserved).any():
        raise CalibrationError(f"{source}: stage {reserved[0]!r} is a name the simulator "
                               "reserves; list it in --checkout if it means the customer went "
                               "on to buy, or rename it")
    firsts = pd.Series(stg[first_row][path[first_row]])
    if firsts.empty:
        raise CalibrationError(f"{source}: no customer starts in a prospect stage")
    entry = firsts.value_counts().index[0]
    ranks: dict[str, list[int]] = {}
    frame = pd.DataFrame({"c": cust[path], "s": stg[path]}).drop_duplicates()
    frame["rank"] = frame.groupby("c").cumcount()
    for s, r in frame.groupby("s")["rank"]:
        ranks[str(s)] = r.tolist()
    others = sorted((s for s in ranks if s != entry), key=lambda s: (np.mean(ranks[s]), s))
    order = (entry, *others)
    visits = funnel.stage_visits(cust, stg, t, stop_days, order, checkout_set,
                             lost if has_lost else None, resolution)
    if not any("checkout" in v.targets for v in visits.values()):
        raise CalibrationError(f"{source}: no customer reached a checkout stage "
                               f"({', '.join(sorted(checkout_set))}); name it with --checkout")
    # rows used: the prospect path and the entry that ends it (its first checkout or loss)
    previous_end = np.r_[-1, ended[:-1]]
    first_end = is_end & (previous_end < first_row[seg_id])
    n_after = int(len(table) - path.sum() - first_end.sum())  # duplicates apart
    channel_visits: dict[str, dict[str, funnel.StageVisits]] = {}
    channel_customers: dict[str, int] = {}
    if channel_col is not None and channel_col in table.columns:
        chan = table[channel_col].astype(str).str.strip().to_numpy()[order_idx]
        first_channel = pd.Series(chan[first_row], index=cust[first_row])
        per_row = first_channel.reindex(cust).to_numpy()
        for name in sorted(set(first_channel)):
            if not name:
                continue
            sel = per_row == name
            channel_visits[name] = funnel.stage_visits(cust[sel], stg[sel], t[sel], stop_days,
                                                   order, checkout_set,
                                                   lost if has_lost else None, resolution)
            channel_customers[name] = int((first_channel == name).sum())
    return JourneyData(order, visits, channel_visits, channel_customers, n_rows,
                       int(n_customers), n_after, start, stop, has_lost, resolution,
                       source, n_dup, tuple(notes))


@dataclass(frozen=True)
class JourneyFit:
    """Every stage's fit, the channel multipliers and the stage order."""

    data: JourneyData
    stages: dict[str, funnel.StageFit]
    channels: pd.DataFrame  # channel, customers, multiplier, se, low, high

    def exit_table(self) -> pd.DataFrame:
        rows = []
        for name, f in self.stages.items():
            for e in f.exits:
                rows.append({"stage": name, "exit": e.target, "probability": e.prob,
                             "se": e.se, "low": e.low, "high": e.high, "visits": e.count})
        return pd.DataFrame(rows)

    def stage_table(self) -> pd.DataFrame:
        rows = []
        for name, f in self.stages.items():
            for kind, c in f.candidates.items():
                ci = c.interval()
                rows.append({"stage": name, "kind": kind, "chosen": kind == f.dwell.kind,
                             "mean_days": c.mean_days, "mean_se": c.mean_se,
                             "mean_low": ci["mean_days"][0], "mean_high": ci["mean_days"][1],
                             "cv": c.cv, "cv_se": c.cv_se, "cv_low": ci["cv"][0],
                             "cv_high": ci["cv"][1], "loglik": c.loglik, "aic": c.aic,
                             "completed_visits": f.n_completed, "open_visits": f.n_open})
        return pd.DataFrame(rows)


def fit_journey(data: JourneyData) -> JourneyFit:
    """Fit every prospect stage, then the channels' forward-odds multipliers."""
    fits = {name: funnel.fit_stage(data.visits[name]) for name in data.order}
    rows = []
    for name, visits in data.channel_visits.items():
        m, se, lo, hi = funnel.channel_multiplier(fits, visits, data.order)
        rows.append({"channel": name, "customers": data.channel_customers[name],
                     "multiplier": m, "se": se, "low": lo, "high": hi})
    return JourneyFit(data, fits, pd.DataFrame(rows))


def _journey_dict(result: JourneyFit, name: str) -> dict[str, Any]:
    """The fitted journey as the simulator's ``journey`` group."""
    stages: dict[str, Any] = {}
    for stage in result.data.order:
        f = result.stages[stage]
        dw = f.dwell
        dwell: dict[str, Any] = {"kind": dw.kind, "mean_days": float(f"{dw.mean_days:.6g}")}
        if dw.kind in CV_RANGE:
            lo, hi = CV_RANGE[dw.kind]
            dwell["cv"] = float(f"{min(max(dw.cv, lo), hi):.6g}")
        exits = {e.target: float(f"{e.prob:.6f}") for e in f.exits if e.target != funnel.LOST
                 and e.prob > 0}
        excess = sum(exits.values()) - 1.0
        if excess > 0:  # rounding: take it from the largest exit
            top = max(exits, key=exits.__getitem__)
            exits[top] = round(exits[top] - excess, 9)
        stages[stage] = {"dwell": dwell, "exits": exits, "levers": [], "experience": 0.0}
    report = {s: [s] for s in result.data.order} | {
        "purchase": ["purchase"], "retention": ["retention"], "advocacy": ["advocacy"]}
    return {"name": f"fitted_{name}", "description": f"fitted from {result.data.source}",
            "stages": stages, "report": report, "content_quality": 1.0,
            "site_usability": 1.0, "social_proof": 0.0}


def referral_entry(order: Sequence[str]) -> tuple[str, str | None]:
    """Where referred prospects can enter the fitted journey: the baseline's
    ``advocacy.referral_entry_stage`` when the journey has it, else the second stage (the
    first after awareness), with the override to pass."""
    default = _baseline()["advocacy"]["referral_entry_stage"]
    if default in order:
        return default, None
    entry = order[1] if len(order) > 1 else order[0]
    return entry, f"advocacy.referral_entry_stage={_hydra_value(entry)}"


def journey_yaml(result: JourneyFit, name: str, source_name: str, sha: str) -> str:
    """``journey/fitted_<name>.yaml``: the stage graph with fitted dwell times and exits,
    the provenance and every estimate's 95% CI in comments."""
    d = result.data
    j = _journey_dict(result, name)
    lines = [
        f"Journey fitted from {d.n_customers:,} customers' stage entries, "
        f"{d.start.date()} to {d.end.date()}; losses "
        + ("recorded in the log" if d.lost_recorded else
           "inferred (customers whose entries stop may be lost or still in the stage)") + ".",
        "Dwell kind chosen by AIC; exits are the probabilities after a visit (the rest is "
        "lost). Levers and experience points are not estimated (none set here).",
        "use: " + run_command(_journey_groups(d.order, name))
        + "   (DIR: the folder holding journey/)",
    ]
    out = [_provenance(source_name, sha, "python -m sim.calibrate journey", lines).rstrip("\n")]
    out += [f"name: {_yaml_str(j['name'])}", f"description: {_yaml_str(j['description'])}",
            "stages:"]
    for stage, st in j["stages"].items():
        f = result.stages[stage]
        dw = f.dwell
        ci = dw.interval()
        dwell = ", ".join(f"{k}: {v if isinstance(v, str) else _yaml_number(v)}"
                          for k, v in st["dwell"].items())
        out.append(f"  {_yaml_key(stage)}:")
        note = "" if dw.kind == "fixed" else (
            f"  # mean 95% CI [{_g(ci['mean_days'][0])}, {_g(ci['mean_days'][1])}]"
            + (f", cv [{_g(ci['cv'][0])}, {_g(ci['cv'][1])}]" if dw.kind != "exponential"
               else ""))
        out.append(f"    dwell: {{{dwell}}}{note}")
        exits = ", ".join(f"{_yaml_key(k)}: {_yaml_number(v)}" for k, v in st["exits"].items())
        cis = _comment("; ".join(f"{e.target} {e.prob:.4f} [{e.low:.4f}, {e.high:.4f}]"
                                 for e in f.exits))
        out.append(f"    exits: {{{exits}}}")
        out.append(f"    # exit probabilities [95% CI]: {cis}")
        out.append("    levers: []")
        out.append("    experience: 0.0")
    out.append("report:")
    for label, states in j["report"].items():
        out.append(f"  {_yaml_key(label)}: [{', '.join(_yaml_str(s) for s in states)}]")
    out += ["content_quality: 1.0", "site_usability: 1.0", "social_proof: 0.0"]
    return "\n".join(out) + "\n"


def _journey_groups(order: Sequence[str], name: str) -> list[str]:
    override = referral_entry(order)[1]
    return [f"journey=fitted_{name}", *([override] if override else [])]


def _hydra_value(text: str) -> str:
    """``text`` as a command-line override value Hydra reads back as ``text``: plain when it
    can be, else single-quoted with quotes, trailing backslashes and ``${`` escaped."""
    if _plain(text):
        return text
    text = _omegaconf_literal(text)
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"


def journey_report(result: JourneyFit, name: str, written: Sequence[Path],
                   config_dir: Path | str = "DIR") -> str:
    """The Markdown report of a journey fit (``config_dir``: where the config went)."""
    d = result.data
    out = [
        f"# Calibration from {d.source}: the pre-purchase funnel",
        "",
        f"{d.n_rows:,} rows, {d.n_customers:,} customers, {d.start} to {d.end}; "
        f"{d.n_after:,} rows after a customer's checkout or loss (or after the end) are not "
        "part of the funnel. Losses are "
        + ("recorded in the log; a customer still in a stage at the end is censored."
           if d.lost_recorded else
           "not in the log: a customer whose entries stop is either still in the stage or was "
           "lost, and the likelihood weighs both (S(c) + F(c) P(lost)).")
        + f" Timestamp resolution {'1 day' if d.resolution_days == 1 else '1 second'} "
        "(visits recorded with zero length lasted less).",
        *(f"\n**Warning:** {w}" for w in d.warnings),
        "",
        f"Stages in order: {', '.join(d.order)} (the entry stage first).",
        "",
        "## Dwell times",
        "",
        "| stage | kind | mean days [95% CI] | cv [95% CI] | completed / open visits | "
        "AIC of each kind |",
        "|---|---|---|---|---|---|",
    ]
    for stage in d.order:
        f = result.stages[stage]
        dw = f.dwell
        ci = dw.interval()
        aics = ", ".join(f"{k} {c.aic:,.1f}" for k, c in f.candidates.items()
                         if np.isfinite(c.aic))
        out.append(f"| {stage} | {dw.kind} | {_g(dw.mean_days)} [{_g(ci['mean_days'][0])}, "
                   f"{_g(ci['mean_days'][1])}] | {_g(dw.cv)} [{_g(ci['cv'][0])}, "
                   f"{_g(ci['cv'][1])}] | {f.n_completed:,} / {f.n_open:,} | {aics or '-'} |")
    out += ["", "## Exit probabilities", "", "| stage | exit | probability | SE | 95% CI | "
            "visits |", "|---|---|---|---|---|---|"]
    for row in result.exit_table().itertuples():
        out.append(f"| {row.stage} | {row.exit} | {row.probability:.4f} | {row.se:.4f} | "
                   f"[{row.low:.4f}, {row.high:.4f}] | {row.visits:,} |")
    warnings = [w for f in result.stages.values() for w in f.warnings]
    if warnings:
        out += ["", *(f"**Warning:** {w}" for w in warnings)]
    if len(result.channels):
        out += ["", "## Channels", "",
                "Odds multiplier on the forward exits of each channel's customers against the "
                "pooled fit (as the simulator's `channels.<name>.quality`, relative to the "
                "average customer):", "", "| channel | customers | multiplier | 95% CI |",
                "|---|---|---|---|"]
        for r in result.channels.itertuples():
            out.append(f"| {r.channel} | {r.customers:,} | {_g(r.multiplier, 3)} | "
                       f"[{_g(r.low, 3)}, {_g(r.high, 3)}] |")
    out += ["", "## Files", "", *(f"- `{p.name}` ({p.parent.name}/)" for p in written), "",
            "Run the simulator on the fitted journey:", "", "```",
            run_command(_journey_groups(d.order, name), config_dir), "```", "",
            "(`--config-dir` names the folder holding journey/). Levers and experience points "
            "are left empty: add them to the file to let interventions act on the fitted "
            "stages.", ""]
    return "\n".join(out)


def calibrate_journey(path: Path, name: str | None = None, config_dir: Path | None = None,
                      out_dir: Path | None = None, force: bool = False, plots: bool = True,
                      **options: Any) -> tuple[JourneyFit, list[Path]]:
    """Read, fit, write ``journey/fitted_<name>.yaml`` and the report (folders as in
    ``calibrate_transactions``: ``./fitted`` and ``outputs/calibration/journey_<name>`` by
    default, never inside the package); ``options`` go to ``prepare_journey``.

    Raises
    ------
    CalibrationError : any bad input, as in ``calibrate_transactions``.
    OutputError : a folder that cannot be written.
    """
    path = Path(path)
    name = clean_name(name or path.stem)
    config_dir = _output_dir(DEFAULT_CONFIG_DIR if config_dir is None else config_dir,
                             "--config-dir")
    out_dir = _output_dir(Path("outputs", "calibration", f"journey_{name}")
                          if out_dir is None else out_dir, "--out")
    target = config_dir / "journey" / f"fitted_{name}.yaml"
    _targets_free([target], force)
    table, sha = _read(path, "journey log")
    data = prepare_journey(table, source=path.name, **options)
    result = fit_journey(data)
    text = journey_yaml(result, name, path.name, sha)
    _check_config("journey", yaml.safe_load(text), referral_entry(data.order)[0])
    written = [io.write_new_text(text, target, overwrite=force)]
    written.append(io.write_table(result.stage_table(), out_dir / "dwell.csv"))
    written.append(io.write_table(result.exit_table(), out_dir / "exits.csv"))
    if len(result.channels):
        written.append(io.write_table(result.channels, out_dir / "channels.csv"))
    doc = {"source": {"file": path.name, "sha256": sha, "rows": data.n_rows},
           "period": {"start": str(data.start), "end": str(data.end)},
           "fitted_on": dt.date.today().isoformat(), "order": list(data.order),
           "lost_recorded": data.lost_recorded, "resolution_days": data.resolution_days,
           "dwell": result.stage_table().to_dict(orient="records"),
           "exits": result.exit_table().to_dict(orient="records"),
           "channels": result.channels.to_dict(orient="records"),
           "config": target.name}
    written.append(io.write_json(doc, out_dir / "fit.json"))
    if plots:
        written += _journey_figures(result, out_dir)
    written.append(io.write_text(journey_report(result, name, written, config_dir),
                                 out_dir / "report.md"))
    return result, written


def _journey_figures(result: JourneyFit, out_dir: Path) -> list[Path]:
    order = result.data.order
    fig, axes = figures.panels(len(order))
    for ax, stage in zip(axes, order, strict=True):
        v, f = result.data.visits[stage], result.stages[stage]
        lengths = np.r_[v.durations, np.zeros(v.n_instant), v.open_days]
        done = np.r_[np.ones(v.n_completed, bool), np.zeros(v.open_days.size, bool)]
        top = 1.5 * float(np.percentile(v.durations, 99)) if v.durations.size else 1.0
        days = np.linspace(0, max(top, 1e-6), 200)
        # without recorded losses a visit "ends" at a recorded exit: the share without one
        # by day t is p_lost + (1 - p_lost) S(t), what Kaplan-Meier estimates then
        inferred = not v.lost_recorded
        curves = {}
        for kind, c in f.candidates.items():
            if kind == "fixed":
                surv = (days < c.mean_days).astype(float)
            else:
                surv = np.exp(funnel.dwell_logsf(kind, c.theta, days))
            if inferred:
                surv = c.lost_prob + (1 - c.lost_prob) * surv
            curves[f"{kind}{' (chosen)' if kind == f.dwell.kind else ''}"] = (days, surv)
        figures.plot_dwell_fit(lengths, done, curves, max_days=days[-1],
                                ylabel="share of visits without a recorded exit" if inferred
                                else "share of visits not yet ended", ax=ax)
        ax.set_title(stage, fontsize=10, loc="left")
    fig.suptitle(f"Dwell times, {result.data.source}", x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    written = [io.save_figure(fig, out_dir / "dwell.png")]
    figures.close(fig)
    fig, axes = figures.panels(len(order))
    for ax, stage in zip(axes, order, strict=True):
        ex = result.stages[stage].exits
        figures.plot_exit_probabilities([e.target for e in ex], np.array([e.prob for e in ex]),
                                         np.array([e.low for e in ex]),
                                         np.array([e.high for e in ex]), ax=ax)
        ax.set_title(stage, fontsize=10, loc="left")
    fig.suptitle(f"Exit probabilities, {result.data.source}", x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    written.append(io.save_figure(fig, out_dir / "exits.png"))
    figures.close(fig)
    return written


# ------------------------------------------------------------ simulator output as input
def transactions_from_run(purchases: pd.DataFrame, start: str = "2024-01-01") -> pd.DataFrame:
    """The simulator's orders (``run.purchases()``: ``customer``, ``time`` in days,
    ``value`` and, for several replications, ``replication``) as a transaction log:
    ``customer_id``, ``date`` (ISO date-time, day 0 = ``start``), ``amount``.

    Customer numbers restart in every replication, so when the orders come from more than
    one replication the ids become ``"<replication>-<customer>"``: each replication's
    customers are distinct people of one larger sample, never merged into one history.
    """
    when = pd.Timestamp(start) + pd.to_timedelta(purchases["time"].to_numpy(float), unit="D")
    ids = purchases["customer"].to_numpy()
    if "replication" in purchases and purchases["replication"].nunique() > 1:
        ids = (purchases["replication"].astype(str) + "-"
               + purchases["customer"].astype(str)).to_numpy()
    return pd.DataFrame({"customer_id": ids,
                         "date": when.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                         "amount": np.round(purchases["value"].to_numpy(float), 2)})


def journey_from_run(events: pd.DataFrame, channels: pd.Series | None = None,
                     start: str = "2024-01-01") -> pd.DataFrame:
    """The simulator's state entries (``run.events(replication)``: ``customer``, ``time``,
    ``state``) as a journey event log: ``customer_id``, ``stage``, ``timestamp`` (ISO,
    day 0 = ``start``) and, given each customer's source ``channels`` (indexed by
    customer), ``channel``."""
    when = pd.Timestamp(start) + pd.to_timedelta(events["time"].to_numpy(float), unit="D")
    out = pd.DataFrame({"customer_id": events["customer"].to_numpy(),
                        "stage": events["state"].astype(str).to_numpy(),
                        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f")})
    if channels is not None:
        out["channel"] = channels.reindex(events["customer"].to_numpy()).astype(str).to_numpy()
    return out


# ----------------------------------------------------------------------------- CLI
def _range_help(key: str) -> str:
    low, high, low_in, high_in, _ = OPTION_RANGES[key]
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim.calibrate",
        description="Fit the simulator's repeat buying and spend to a transaction log, or its "
                    "funnel to a journey event log, and write configs the simulator uses.",
        epilog="Bad input prints one line 'error: ...' and exits with status 2; a folder that "
               "cannot be written, status 1. Warnings about the data go to stderr and the "
               "report.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", help="config name: writes fitted_<name>.yaml (default: the "
                                       "file name)")
    common.add_argument("--config-dir", type=Path, default=None,
                        help=f"folder of config groups to write into (default: "
                             f"./{DEFAULT_CONFIG_DIR}; never the installed package); run the "
                             "simulator with python -m sim --config-dir DIR ...")
    common.add_argument("--out", type=Path, default=None,
                        help="report folder (default: outputs/calibration/<command>_<name>)")
    common.add_argument("--force", action="store_true", help="replace existing configs")
    common.add_argument("--no-plots", action="store_true", help="write no figures")
    common.add_argument("--customer-col", default="customer_id")

    t = sub.add_parser("transactions", parents=[common],
                       help="BG/NBD repeat buying and Gamma-Gamma spend from transactions")
    t.add_argument("file", type=Path, help="CSV: customer_id, date, amount (one row per "
                                           "transaction)")
    t.add_argument("--date-col", default="date")
    t.add_argument("--amount-col", default="amount")
    t.add_argument("--calibration-end", help="last day of the calibration period (default: "
                                             "the last date in the file)")
    t.add_argument("--holdout-end", help="last day of a holdout period after the calibration "
                                         "period, to test the predictions (dates: ISO, "
                                         f"{FIRST_DATE.date()} to {LAST_DATE.date()}, in "
                                         "the file too)")
    t.add_argument("--unit", choices=sorted(DAYS_PER_UNIT), default="day",
                   help="time unit of the fit (the configs are always in days)")
    t.add_argument("--no-spend", action="store_true", help="fit repeat buying only")
    t.add_argument("--drop-duplicates", action="store_true",
                   help="drop rows that are exact copies of an earlier row (by default they "
                        "are kept, with a warning)")
    t.add_argument("--gross-margin", type=float, default=1.0,
                   help="share of the amounts kept as margin, for the LTV, in "
                        f"{_range_help('gross_margin')} (default 1)")
    t.add_argument("--annual-discount-rate", type=float, default=0.10,
                   help=f"in {_range_help('annual_discount_rate')} (default 0.10)")
    t.add_argument("--ltv-years", type=float, default=3.0,
                   help=f"LTV horizon in years, in {_range_help('ltv_years')} (default 3)")
    t.add_argument("--starts", type=int, default=6,
                   help=f"starting points of the optimiser, in {_range_help('n_starts')} "
                        "(default 6)")

    j = sub.add_parser("journey", parents=[common],
                       help="stage dwell times and exit probabilities from a journey event log")
    j.add_argument("file", type=Path, help="CSV: customer_id, stage, timestamp (one row each "
                                           "time a customer enters a stage), optional channel")
    j.add_argument("--stage-col", default="stage")
    j.add_argument("--timestamp-col", default="timestamp")
    j.add_argument("--channel-col", default="channel",
                   help="optional column: the channel that brought the customer")
    j.add_argument("--end", help="end of the data (default: the last timestamp); customers "
                                 "still in a stage then are censored (dates: ISO, "
                                 f"{FIRST_DATE.date()} to {LAST_DATE.date()}, in the file too)")
    j.add_argument("--checkout", default="checkout,purchase",
                   help="comma-separated stages that mean the customer went to buy "
                        "(default: checkout,purchase)")
    j.add_argument("--lost", default="lost", help="the stage that records a lost prospect, "
                                                  "if the log has one (default: lost)")
    return parser


def _one_line(text: object) -> str:
    """A message on one line: line breaks in file or stage names shown escaped."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def _run(args: argparse.Namespace) -> tuple[str, list[Path], list[str], list[str]]:
    """Fit as the arguments say: the summary, the files written, the warnings and the
    command to run next."""
    common = {"name": args.name, "config_dir": args.config_dir, "out_dir": args.out,
              "force": args.force, "plots": not args.no_plots}
    # numerical noise of odd data (overflow in a tail term, a log of zero) is judged by
    # the fit's own checks, which raise or warn in words; numpy's warnings would only
    # add lines without a file or option to them
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if args.command == "transactions":
            check_options(gross_margin=args.gross_margin,
                          annual_discount_rate=args.annual_discount_rate,
                          ltv_years=args.ltv_years, n_starts=args.starts)
            result, written = calibrate_transactions(
                args.file, customer_col=args.customer_col, date_col=args.date_col,
                amount_col=args.amount_col, calibration_end=args.calibration_end,
                holdout_end=args.holdout_end, unit=args.unit, spend=not args.no_spend,
                drop_duplicates=args.drop_duplicates, n_starts=args.starts,
                annual_discount_rate=args.annual_discount_rate,
                gross_margin=args.gross_margin, ltv_years=args.ltv_years, **common)
            fits = [result.bgnbd, *([result.spend] if result.spend is not None else [])]
            notes = [*result.data.warnings, *(w for f in fits for w in f.warnings)]
            groups = _transaction_groups(result, clean_name(args.name or args.file.stem))
            return _transactions_summary(result), written, notes, groups
        checkout = tuple(s.strip() for s in args.checkout.split(",") if s.strip())
        result, written = calibrate_journey(
            args.file, customer_col=args.customer_col, stage_col=args.stage_col,
            timestamp_col=args.timestamp_col, channel_col=args.channel_col,
            end=args.end, checkout=checkout, lost=args.lost, **common)
        notes = [*result.data.warnings, *(w for f in result.stages.values() for w in f.warnings)]
        groups = _journey_groups(result.data.order, clean_name(args.name or args.file.stem))
        return _journey_summary(result), written, notes, groups


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.calibrate {transactions,journey} FILE [options]``; see ``--help``.

    Returns 0, or ``EXIT_INPUT`` (2) after one line ``error: ...`` on stderr for bad input,
    ``EXIT_OUTPUT`` (1) when a folder cannot be written, ``EXIT_INTERRUPTED`` on Ctrl-C.
    """
    args = _parser().parse_args(argv)
    try:
        summary, written, notes, groups = _run(args)
    except (InputError, FileExistsError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as err:  # OutputError, or a write that failed (disk full, permissions)
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: cannot write the outputs: {_one_line(where)}"
              f"{_one_line(err.strerror or err)}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        print("error: interrupted; files already written are complete, the rest are missing",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for note in notes:
        print(f"warning: {_one_line(note)}", file=sys.stderr)
    print(summary)
    configs = [p for p in written if p.suffix == ".yaml"]
    print("\nwrote " + ", ".join(str(p) for p in configs))
    print(f"report: {written[-1]} (and {len(written) - len(configs) - 1} more files in "
          f"{written[-1].parent})")
    config_dir = args.config_dir if args.config_dir is not None else DEFAULT_CONFIG_DIR
    print(f"next: {run_command(groups, config_dir)}")
    return 0


def _transactions_summary(result: TransactionFit) -> str:
    bg = result.bgnbd
    lines = [f"BG/NBD ({result.data.unit}s), {bg.n_obs:,} customers, log-likelihood "
             f"{bg.loglik:.6g}:"]
    lines += [f"  {n:<6} {_g(bg[n]):>10}  (SE {_g(bg.se_of(n), 3)})" for n in bg.names]
    a_days, a_se = result.alpha_days
    lines.append(f"  alpha_days {_g(a_days)} (SE {_g(a_se, 3)})")
    if result.spend is not None:
        gg = result.spend
        ov = result.order_value()
        lines.append(f"Gamma-Gamma, {gg.n_obs:,} repeat buyers, log-likelihood {gg.loglik:.6g}:")
        lines += [f"  {n:<6} {_g(gg[n]):>10}  (SE {_g(gg.se_of(n), 3)})" for n in gg.names]
        lines.append(f"  order value mean {_g(ov['order_value_mean'])}, cv "
                     f"{_g(ov['order_value_cv'])}")
    chi = result.chi_square
    lines.append(f"chi-square (repeat purchase histogram): {chi['statistic']:.4g}, df "
                 f"{chi['df']}, p = {_g(chi['p_value'], 3)}")
    return "\n".join(lines)


def _journey_summary(result: JourneyFit) -> str:
    lines = [f"Funnel from {result.data.n_customers:,} customers; losses "
             + ("recorded" if result.data.lost_recorded else "inferred") + ":"]
    override = referral_entry(result.data.order)[1]
    if override:
        lines.append(f"  note: the journey has no stage "
                     f"{_baseline()['advocacy']['referral_entry_stage']!r} for referred "
                     f"prospects: run the simulator with {shlex.quote(override)}")
    for stage in result.data.order:
        f = result.stages[stage]
        exits = ", ".join(f"{e.target} {e.prob:.3f}" for e in f.exits)
        lines.append(f"  {stage}: {f.dwell.kind} mean {_g(f.dwell.mean_days)} days, cv "
                     f"{_g(f.dwell.cv)}; exits {exits}")
    return "\n".join(lines)


"""The installed base: today's customers, read from a file, as a run starts with them.

``market.base=PATH`` names a CSV of the customers a business already has, one row each, as
``python -m sim.calibrate transactions`` writes it (``customers.csv``) or as a user makes
it. The columns read (any others, such as ``customer_id`` or ``p_alive``, are ignored):

``x``
    repeat purchases up to the end of the history (a whole number >= 0);
``t_x_days``
    the day of the last purchase, counted from the first (0 when ``x`` is 0);
``T_days``
    the customer's age at the end of the history: days from the first purchase (>= t_x_days);
``mean_repeat_value`` (optional)
    the mean value of the repeat purchases (empty when ``x`` is 0), for the Gamma-Gamma
    spend posterior;
``segment`` (optional)
    the customer's market segment by name (empty: drawn from the segment shares);
``loyalty_member`` (optional)
    ``true``/``false`` (or 1/0): a member of the loyalty programme already (when the run
    has one).

The file is untrusted input: read only if it is a regular file of at most
``MAX_BASE_BYTES``, parsed as plain text, every cell checked; a problem raises one
``SpecError`` naming ``market.base``, the file's line and what is allowed. It is read
once per content (a study builds hundreds of specs from the same file).

The BG/NBD posterior of a base customer (Fader, Hardie & Lee 2005) given the history
(x, t_x, T): alive with P(alive) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) /
(alpha + t_x))^(r + x)), and if alive, independently lambda ~ Gamma(r + x, rate alpha + T)
and p ~ Beta(a, b + x). The Gamma-Gamma spend level given x repeat purchases of mean m:
nu ~ Gamma(q + p x, rate gamma + x m).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special

from sim.errors import InputError
from sim.userfiles import read_user_bytes

__all__ = ["BASE_COLUMNS", "MAX_BASE_BYTES", "MAX_BASE_CUSTOMERS", "InstalledBase",
           "p_alive", "read_base"]

BASE_COLUMNS = ("x", "t_x_days", "T_days")  # required; optional: OPTIONAL_COLUMNS
OPTIONAL_COLUMNS = ("mean_repeat_value", "segment", "loyalty_member")
MAX_BASE_BYTES = 256 * 2**20
MAX_BASE_CUSTOMERS = 5_000_000  # the agent engine follows each one
MAX_VALUE = 1e9  # any number in the file: more is an export error (days, counts, money)
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


@dataclass(frozen=True)
class InstalledBase:
    """Today's customers, as arrays of equal length (read-only).

    ``segment`` is the segment's index, -1 where the file gives none (drawn at run time);
    ``mean_value`` is NaN where unknown (no repeat purchase, or no column).
    """

    file: str  # the file's name (not its folder: outputs never carry a machine's paths)
    x: np.ndarray
    t_x: np.ndarray  # days
    age: np.ndarray  # T, days
    mean_value: np.ndarray
    segment: np.ndarray
    member: np.ndarray

    def __len__(self) -> int:
        return self.x.size


def p_alive(r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray,
            age: np.ndarray) -> np.ndarray:
    """BG/NBD P(alive at T | x, t_x, T), rates per day (``alpha`` in days)."""
    rep = x > 0
    log_ratio = (math.log(a) - np.log(np.where(rep, b + x - 1.0, 1.0))
                 + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x)))
    return np.where(rep, special.expit(-log_ratio), 1.0)


class _Problem(Exception):
    pass


_cache: dict[tuple, InstalledBase] = {}


def read_base(path: str | os.PathLike, segments: tuple[str, ...]) -> InstalledBase:
    """The installed base in ``path`` (see the module docstring), segments by index.

    Raises
    ------
    sim.errors.InputError : one line naming ``market.base``, the file and, for a bad cell,
        its line, column, value and what is allowed (``build_spec`` turns it into a
        ``SpecError``).
    """
    path = Path(path)
    data = read_user_bytes(path, "customer base (CSV)", MAX_BASE_BYTES)
    key = (data, segments)
    if key in _cache:
        return _cache[key]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        base = _parse(text, path.name, segments)
    except _Problem as err:
        raise InputError(f"{path}: {err}") from None
    if len(_cache) > 8:
        _cache.clear()
    _cache[key] = base
    return base


def _parse(text: str, name: str, segments: tuple[str, ...]) -> InstalledBase:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise _Problem(f"not a CSV file ({err})") from None
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing empty lines
    if not rows:
        raise _Problem("empty; expected a header line with the columns "
                       f"{', '.join(BASE_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in BASE_COLUMNS if c not in header]
    if missing:
        raise _Problem(f"no column {', '.join(missing)} (the header has "
                       f"{', '.join(header[:12]) or 'nothing'}); a customer base needs "
                       f"{', '.join(BASE_COLUMNS)}, as `python -m sim.calibrate "
                       "transactions` writes them in customers.csv")
    if len(rows) - 1 > MAX_BASE_CUSTOMERS:
        raise _Problem(f"{len(rows) - 1:,} customers, more than the {MAX_BASE_CUSTOMERS:,} "
                       "a run can follow")
    if len(rows) == 1:
        raise _Problem("no customers (a header line only)")
    col = {h: i for i, h in enumerate(header) if h in BASE_COLUMNS + OPTIONAL_COLUMNS}
    n = len(rows) - 1
    x, t_x, age = np.empty(n), np.empty(n), np.empty(n)
    mean_value = np.full(n, np.nan)
    segment = np.full(n, -1, dtype=np.int16)
    member = np.zeros(n, dtype=bool)
    seg_index = {s: i for i, s in enumerate(segments)}

    for i, row in enumerate(rows[1:]):
        line = i + 2

        def cell(column: str, row: list[str] = row, line: int = line) -> str:
            j = col[column]
            if j >= len(row):
                raise _Problem(f"line {line}: no value in column {column!r} (the row has "
                               f"{len(row)} cells, the header {len(header)})")
            return row[j].strip()

        def number(column: str, allowed: str, lo: float, whole: bool = False,
                   cell=cell, line: int = line) -> float:
            raw = cell(column)
            try:
                v = float(raw)
            except ValueError:
                v = math.nan
            if not math.isfinite(v) or v < lo or v > MAX_VALUE or (whole and v != int(v)):
                raise _Problem(f"line {line}: column {column} = {raw[:40]!r}: {allowed}, "
                               f"at most {MAX_VALUE:g}")
            return v

        x[i] = number("x", "a whole number >= 0 (repeat purchases)", 0, whole=True)
        t_x[i] = number("t_x_days", "days >= 0 from the first purchase to the last", 0)
        age[i] = number("T_days", "days >= 0 from the first purchase to the end of the "
                        "history", 0)
        if t_x[i] > age[i]:
            raise _Problem(f"line {line}: t_x_days = {t_x[i]:g} is after T_days = {age[i]:g}"
                           " (the last purchase cannot come after the end of the history)")
        if x[i] == 0 and t_x[i] != 0:
            raise _Problem(f"line {line}: t_x_days = {t_x[i]:g} with x = 0 (no repeat "
                           "purchase: the last purchase is the first, t_x_days = 0)")
        if "mean_repeat_value" in col and x[i] > 0 and cell("mean_repeat_value"):
            mean_value[i] = number("mean_repeat_value", "a value > 0 (currency units), or "
                                   "empty", 1e-12)
        if "segment" in col and cell("segment"):
            s = cell("segment")
            if s not in seg_index:
                raise _Problem(f"line {line}: segment {s[:40]!r} is not a segment of the "
                               f"market (market.segments: {', '.join(segments)}), or empty "
                               "to draw it from the shares")
            segment[i] = seg_index[s]
        if "loyalty_member" in col:
            flag = cell("loyalty_member").lower()
            if flag not in _TRUE | _FALSE:
                raise _Problem(f"line {line}: loyalty_member = {flag[:40]!r}: true or false")
            member[i] = flag in _TRUE
    arrays = (x, t_x, age, mean_value, segment, member)
    for a in arrays:
        a.flags.writeable = False
    return InstalledBase(name, *arrays)

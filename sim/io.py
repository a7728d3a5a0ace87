"""Files: every output is written here, atomically, into a directory the caller gives.

A write goes to a temporary file in the same directory and is renamed over the target, so
a crash or a bad input never leaves a half-written or corrupted file behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis import Estimate, cohort_table, finance_table, ltv_table, payback_table
from sim.experiment import ExperimentResult

__all__ = ["FINANCE_FLOAT_FORMAT", "atomic_write", "save_figure", "to_csv", "write_finance",
           "write_json", "write_outputs", "write_table", "write_text"]

# finance tables keep ten significant digits: totals in the millions stay exact to the unit
FINANCE_FLOAT_FORMAT = "%.10g"


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------- CSV tables
CSV_CHUNK_ROWS = 32_768  # rows formatted at a time: bounds the text held in memory
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _quoted(text: str) -> str:
    """A field as the csv module's minimal quoting writes it."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _formatted(values: np.ndarray, text: Callable[[Any], str]) -> np.ndarray:
    """``text(v)`` for every value, each distinct value formatted once (a column of a
    million repeats a few thousand values: zero revenue, whole days, codes)."""
    if not values.size:
        return np.zeros(0, dtype=object)
    bits = values.view(f"u{values.itemsize}")  # -0.0 and 0.0 stay apart ("-0", "0")
    _, first, inverse = np.unique(bits, return_index=True, return_inverse=True)
    labels = np.array([text(v) for v in values[first].tolist()], dtype=object)
    return labels[inverse]


def _writable(dtype: Any) -> bool:
    """Whether ``_column_text`` writes this dtype exactly as pandas does."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.api.types.is_string_dtype(dtype.categories.dtype)
    if isinstance(dtype, np.dtype):  # numpy's own (nullable Int64 or boolean go to pandas)
        return dtype.kind in "fiubO"
    return pd.api.types.is_string_dtype(dtype)


def _column_text(column: pd.Series, float_format: str) -> np.ndarray:
    """The CSV fields of one column as ``DataFrame.to_csv(index=False, float_format=...)``
    writes them: floats through ``float_format``, missing values empty, text quoted only
    where it must be."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = [*(_quoted(str(c)) for c in column.dtype.categories), ""]  # code -1: ""
        return np.array(labels, dtype=object)[column.cat.codes.to_numpy()]
    values = column.to_numpy()
    if values.dtype.kind == "b":
        return np.where(values, "True", "False").astype(object)
    if values.dtype.kind in "iu":
        return _formatted(values, str)
    out = np.full(values.size, "", dtype=object)
    if values.dtype.kind == "f":
        known = ~np.isnan(values)
        out[known] = _formatted(values[known], float_format.__mod__)
    else:  # text, or objects written as str() shows them
        known = ~pd.isna(values)
        out[known] = [_quoted(v if isinstance(v, str) else str(v))
                      for v in values[known].tolist()]
    return out


def to_csv(table: pd.DataFrame, f: Any, float_format: str = "%.6g") -> None:
    """Write ``table`` to the text file ``f`` as CSV, byte for byte what
    ``table.to_csv(f, index=False, float_format=float_format)`` writes, several times
    faster on large tables: pandas formats every float cell through a Python call, here
    each distinct value of a column is formatted once, and rows are joined
    ``CSV_CHUNK_ROWS`` at a time. Tables with one column, non-text column names or other
    dtypes (dates, intervals) are left to pandas.
    """
    if (table.shape[1] < 2 or not all(isinstance(c, str) for c in table.columns)
            or not all(_writable(t) for t in table.dtypes)):
        table.to_csv(f, index=False, float_format=float_format)
        return
    f.write(",".join(_quoted(c) for c in table.columns) + "\n")
    for start in range(0, len(table), CSV_CHUNK_ROWS):
        part = table.iloc[start:start + CSV_CHUNK_ROWS]
        fields = [_column_text(part[c], float_format).tolist() for c in part.columns]
        f.write("\n".join(map(",".join, zip(*fields, strict=True))) + "\n")


def _clean(x: Any) -> Any:
    """JSON has no NaN: write null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def metrics_document(exp: ExperimentResult, summary: dict[str, Estimate]) -> dict[str, Any]:
    """What ``metrics.json`` holds: the run, every metric with its CI, each replication."""
    spec = exp.spec
    return _clean({
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
                  events: bool = False) -> list[Path]:
    """Write ``metrics.json`` and ``metrics.csv`` (one row per metric, for spreadsheets),
    ``customers.csv``, ``daily.csv``, ``purchases.csv`` (the transaction log), ``tickets.csv``,
    with ``events`` ``events.csv`` (``ExperimentResult.event_log``), and the finance tables
    of ``write_finance``."""
    out_dir = Path(out_dir)
    doc = metrics_document(exp, summary)
    written = [atomic_write(out_dir / "metrics.json",
                            lambda f: json.dump(doc, f, indent=2, allow_nan=False))]
    tables = {"customers": exp.customers, "metrics": lambda: pd.DataFrame(
        [{"metric": k, **v.as_dict()} for k, v in summary.items()]), "daily": exp.daily,
        "purchases": exp.purchases, "tickets": exp.tickets}
    if events:
        tables["events"] = exp.event_log
    written += [write_table(table(), out_dir / f"{name}.csv") for name, table in tables.items()]
    return written + write_finance(exp, out_dir)


def write_finance(exp: ExperimentResult, out_dir: Path) -> list[Path]:
    """The finance view of a run: ``finance.csv`` (one row: unit economics with CIs),
    ``ltv.csv`` (LTV by acquisition cohort, segment and channel), ``cohorts.csv`` (censored
    cumulative value curves of the cohorts) and ``payback.csv`` (the payback curve); see
    ``sim.analysis``."""
    out_dir, name = Path(out_dir), exp.spec.scenario_name
    tables = {"finance": finance_table({name: exp.metrics}, {name: exp.spec}),
              "ltv": ltv_table(exp), "cohorts": cohort_table(exp), "payback": payback_table(exp)}
    return [write_table(t, out_dir / f"{k}.csv", FINANCE_FLOAT_FORMAT) for k, t in tables.items()]


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically (the format follows the suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(Path(path), lambda f: fig.savefig(f, format=fmt, dpi=dpi,
                                                          bbox_inches="tight"), mode="wb")


def write_table(table: pd.DataFrame, path: Path, float_format: str = "%.6g") -> Path:
    """A data frame as CSV, atomically."""
    return atomic_write(Path(path), lambda f: to_csv(table, f, float_format))


def write_text(text: str, path: Path) -> Path:
    return atomic_write(Path(path), lambda f: f.write(text))


def write_json(doc: dict[str, Any], path: Path) -> Path:
    return atomic_write(Path(path), lambda f: json.dump(_clean(doc), f, indent=2,
                                                       allow_nan=False))


# ------------------------------------------------------------------ files users hand us
# (defined with the config-file checks, re-exported here beside the writers)
from sim.userfiles import read_user_bytes, read_user_text  # noqa: E402

__all__ += ["read_user_bytes", "read_user_text"]


# ---------------------------------------------------------------- calibration (sim.calibrate)
__all__ += ["file_sha256", "read_csv_text", "write_new_text"]


def read_csv_text(path: Path) -> pd.DataFrame:
    """A CSV file with a header row, every cell as text (no type guessing), column names
    stripped; the caller parses and checks the values.

    Raises
    ------
    ValueError : a one-line message when the file is missing, empty, not UTF-8 text or not
        a well-formed CSV (with the line the parser stopped at).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig", skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (expected a header row and one row "
                         "per record)") from None
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: not a well-formed CSV file: "
                         f"{str(err).strip().splitlines()[-1]}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), for provenance."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_new_text(text: str, path: Path, overwrite: bool = False) -> Path:
    """Write ``text`` atomically; unless ``overwrite``, refuse to replace an existing file.

    Raises
    ------
    FileExistsError : the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists already (pass --force to replace it)")
    return write_text(text, path)


def available_memory_bytes() -> int | None:
    """Memory the system can give a new run now (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None

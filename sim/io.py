"""Files: every output is written here, atomically, into a directory the caller gives.

A write goes to a temporary file in the same directory and is renamed over the target, so
a crash or a bad input never leaves a half-written or corrupted file behind. A written file
gets the mode a plain ``open(path, "w")`` would give it (0666 less the umask).

A folder of outputs is finished when its ``metrics.json`` exists: every writer of a folder
calls ``begin_outputs`` (which removes the old ``metrics.json`` and the temporary files an
interrupted run left), writes its other files, and writes ``metrics.json`` last
(``finish_outputs``). A run stopped half-way leaves a folder without ``metrics.json``,
which ``is_complete`` and ``python -m sim.report`` recognise as unfinished.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import OutputError

__all__ = [
    "FINANCE_FLOAT_FORMAT",
    "FINISHED_MARKS",
    "METRICS_FILE",
    "REPORT_FILE",
    "atomic_write",
    "begin_outputs",
    "finish_outputs",
    "is_complete",
    "json_ready",
    "save_figure",
    "stale_temp_files",
    "to_csv",
    "write_json",
    "write_table",
    "write_text",
]

log = logging.getLogger("sim")

# finance tables keep ten significant digits: totals in the millions stay exact to the unit
FINANCE_FLOAT_FORMAT = "%.10g"
METRICS_FILE = "metrics.json"  # written last: its presence marks a finished folder
# the file each kind of output folder is finished by (written last): a run, a comparison or
# a merge; a PSA; response curves, an allocation, a goal seek, a set of interventions
FINISHED_MARKS = (METRICS_FILE, "psa.json", "curves.json", "allocation.json", "seek.json",
                  "portfolio.json")
# the page that shows a finished folder (sim.present.html), written after its mark: removed
# when a new set of outputs begins, so that a page never outlives the files it shows
REPORT_FILE = "report.html"
# atomic_write's temporary files: "." + the target's name + "." + tempfile's 8 random
# characters (lower-case letters, digits, "_") + ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")

_umask_lock = threading.Lock()
_umask_cached: int | None = None


def _umask() -> int:
    """The process's umask. Linux shows it in /proc (read fresh, nothing changed); elsewhere
    it can only be read by setting it, which is done once, under a lock, and cached: a
    set-and-restore on every write would race with threads creating files meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    global _umask_cached
    with _umask_lock:
        if _umask_cached is None:
            _umask_cached = os.umask(0o022)
            os.umask(_umask_cached)
        return _umask_cached


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:,.1f} TB"  # not reached


def _output_error(path: Path, err: OSError) -> OutputError:
    """One line: the file, the reason and, when the disk is full, its free space."""
    reason = (err.strerror or str(err)).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    message = f"{path}: could not be written: {reason}"
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        try:
            free = shutil.disk_usage(path.parent).free
            message += f" ({_size(free)} free on the file system of {path.parent})"
        except OSError:
            pass
    out = OutputError(message)
    out.errno = err.errno  # (no filename: str() would then show "[Errno n] None: path")
    return out


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The file gets the mode a normal write would (0666 less the umask), not the 0600 of a
    temporary file. Whatever fails, the temporary file is removed and an existing ``path``
    is left as it was.

    Raises
    ------
    sim.errors.OutputError : the file could not be written (full disk, no permission, a
        read-only file system); one line naming the file, the reason and, for a full disk,
        the free space.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, mode, newline="" if "b" not in mode else None) as f:
            with contextlib.suppress(OSError):  # no Unix modes here: keep the default
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            write(f)
        os.replace(tmp, path)
    except OutputError:
        _discard(tmp)
        raise
    except OSError as err:
        _discard(tmp)
        raise _output_error(path, err) from err
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):  # the file system went away: nothing to do
            Path(tmp).unlink(missing_ok=True)


# ------------------------------------------------------------ a folder, finished or not
def stale_temp_files(folder: Path) -> list[Path]:
    """The temporary files ``atomic_write`` left in ``folder`` (not in its subfolders) when
    a run was stopped while writing: regular files named ``.<name>.<8 characters>.tmp``."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                    found.append(Path(folder) / entry.name)
    except OSError:
        return []
    return sorted(found)


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished set of outputs: the file its writer writes last
    (``metrics.json``, or an analysis's own: ``FINISHED_MARKS``) is a regular file, and no
    temporary file of an interrupted write is left."""
    for mark in FINISHED_MARKS:
        try:
            st = (Path(folder) / mark).stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            return not stale_temp_files(folder)
    return False


def begin_outputs(folder: Path, mark: str = METRICS_FILE) -> list[Path]:
    """Make ``folder`` ready for a new set of outputs: create it, remove the file that will
    be written last (``mark``: ``metrics.json``, or an analysis's own JSON, so that it reads
    as unfinished until then) and the ``report.html`` that showed the old outputs, then the
    temporary files an interrupted run left in it. Returns the temporary files removed.

    Raises
    ------
    sim.errors.OutputError : the folder cannot be created or cleaned.
    """
    folder = Path(folder)
    last = folder / mark
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if last.is_dir() and not last.is_symlink():
            raise OutputError(f"{last}: is a folder; the run writes its {mark} "
                              "there: remove or rename it")
        last.unlink(missing_ok=True)
        page = folder / REPORT_FILE
        if page.is_symlink() or not page.is_dir():
            page.unlink(missing_ok=True)
        stale = stale_temp_files(folder)
        for tmp in stale:
            tmp.unlink(missing_ok=True)
    except OutputError:
        raise
    except OSError as err:
        raise _output_error(Path(err.filename) if err.filename else folder, err) from err
    if stale:
        log.info("removed %d temporary file(s) an interrupted run left in %s", len(stale),
                 folder)
    return stale


def finish_outputs(doc: dict[str, Any], folder: Path) -> Path:
    """Write ``metrics.json`` into ``folder``: the last file of a set of outputs, which
    marks the folder finished."""
    return write_json(doc, Path(folder) / METRICS_FILE)


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


def json_ready(x: Any) -> Any:
    """JSON has no NaN: write null; a numpy scalar becomes its Python value."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    return x


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
    return atomic_write(Path(path), lambda f: json.dump(json_ready(doc), f, indent=2,
                                                       allow_nan=False))


# ------------------------------------------------------------------ files users hand us
# (defined with the config-file checks, re-exported here beside the writers)
from sim.userfiles import read_user_bytes, read_user_text  # noqa: E402

__all__ += ["read_user_bytes", "read_user_text"]


# ---------------------------------------------------------------- calibration (sim.calibrate)
__all__ += ["file_sha256", "read_csv_text", "write_new_text"]


def read_csv_text(path: Path, what: str = "CSV file") -> pd.DataFrame:
    """A CSV file with a header row, every cell as text (no type guessing), column names
    stripped; the caller parses and checks the values.

    The file is read through ``read_user_text`` (a regular file of at most
    ``MAX_USER_FILE_BYTES``, UTF-8, a byte-order mark dropped) and parsed from memory, so a
    named pipe or a link to a device is refused instead of hanging or filling the memory.

    Raises
    ------
    sim.errors.InputError : a one-line message naming the file when it is missing, not a
        regular file, too large, empty, not UTF-8 text or not a well-formed CSV (with the
        line the parser stopped at).
    """
    import io as _io

    from sim.errors import InputError

    path = Path(path)
    text = read_user_text(path, what)
    try:
        table = pd.read_csv(_io.StringIO(text), dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty (expected a header row and one row "
                         "per record)") from None
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: not a well-formed CSV file: "
                         f"{str(err).strip().splitlines()[-1]}") from None
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

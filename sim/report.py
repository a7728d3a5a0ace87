"""``python -m sim.report FOLDER``: merge the jobs of a multirun or the replication blocks
of one scenario, compare a sweep's scenarios, or tabulate and plot a sweep over parameters;
given one finished folder (a run, a comparison, a PSA, an analysis), (re)write its
``report.html``. Every merge writes ``report.html`` after its ``metrics.json`` too.

The folder is untrusted input: only regular files named ``metrics.json`` are read (and,
for a sweep over parameters, each job's Hydra ``.hydra/overrides.yaml``), within limits of
size, count and depth, and every field is checked before it is used; ``report.html`` reads
the files of the folder itself, as ``sim.present.html`` says.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT, InputError, OutputError
from sim.measure.finance import FINANCE_METRICS
from sim.measure.stats import COST_KEYS, HEADLINE
from sim.present.text import CONSOLE_WIDTH, format_comparison, write_comparison

__all__ = ["ReportError", "Sweep", "collect_blocks", "collect_multirun", "collect_psa",
           "collect_sweep",
           "format_merged", "format_sweep", "main", "merged_document", "sweep_tables",
           "write_merged", "write_sweep"]


# ------------------------------------------------------------------ reading job folders
class ReportError(InputError):
    """A folder given to ``python -m sim.report`` cannot be read as the jobs of a multirun
    or as replication blocks; the message names the folder or file, the field and what
    was expected."""


MAX_ENTRIES = 100_000  # files and folders looked at under the folder given
MAX_DEPTH = 16  # folders within folders below it
MAX_TOTAL_BYTES = 2**30  # every metrics.json read, together
MAX_NAME_CHARS = 200
# no run comes near: larger values would overflow the sums and squares of an interval
MAX_METRIC_MAGNITUDE = 1e100
# files a run or a comparison writes: a folder holding one of them (or Hydra's .hydra)
# is a job's folder, finished only when its metrics.json is there
RUN_FILES = frozenset({"metrics.csv", "customers.csv", "daily.csv", "purchases.csv",
                       "tickets.csv", "events.csv", "finance.csv", "ltv.csv", "cohorts.csv",
                       "payback.csv", "pnl.csv", "comparison.csv", "comparison.md",
                       "comparison.png",
                       "funnel.png", "retention.png", "activity.png", "experience.png",
                       "cohorts.png", "payback.png", "ltv.png", "sweep.csv",
                       "sweep_replications.csv", "sweep_comparison.csv", "sweep.png"})
# what a comparison of scenarios reads from every scenario's replications
COMPARISON_METRICS = tuple(sorted({*HEADLINE, *COST_KEYS, *FINANCE_METRICS.values()}))


def _shown(value: Any) -> str:
    """A value as a message shows it: short, on one line."""
    if isinstance(value, dict):
        return f"an object of {len(value)} key(s)"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = "null" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(root: Path, mark: str = "metrics.json") -> tuple[list[Path], list[str]]:
    """The ``mark`` file (``metrics.json``; ``psa.json`` for the blocks of a PSA) of every
    finished job folder under ``root`` (``root`` itself excluded: a report writes there),
    and a line for each unfinished one.

    Links are not followed into folders (a loop, or a job counted twice); a link that
    leads outside ``root`` to a folder or to a ``metrics.json`` is refused.
    """
    from sim import io

    inside = root.resolve()
    marks: list[Path] = []
    unfinished: list[str] = []
    n_entries = 0
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        has_mark = looks_like_job = False
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    n_entries += 1
                    if n_entries > MAX_ENTRIES:
                        raise ReportError(
                            f"{root}: more than {MAX_ENTRIES:,} files and folders; give "
                            "sim.report the folder of one multirun or one set of blocks")
                    name, path = entry.name, Path(entry.path)
                    if entry.is_symlink():
                        target = Path(os.path.realpath(path))
                        if not target.is_relative_to(inside):
                            if name == mark or target.is_dir():
                                raise ReportError(
                                    f"{path}: a link to {target}, outside {root}; sim.report "
                                    "reads nothing outside the folder it is given")
                            continue
                        if target.is_dir():
                            continue  # inside: walked as itself
                    if name.startswith("."):
                        looks_like_job |= name == ".hydra" or name.endswith(".tmp")
                    elif entry.is_dir(follow_symlinks=False):
                        if depth >= MAX_DEPTH:
                            raise ReportError(f"{path}: more than {MAX_DEPTH} folders deep "
                                              f"under {root}")
                        stack.append((path, depth + 1))
                    elif name == mark:
                        has_mark = True
                    else:
                        looks_like_job |= name in RUN_FILES
        except OSError as err:
            raise ReportError(f"{folder}: cannot list the folder "
                              f"({err.strerror or err})") from None
        if folder == root:
            continue
        stale = io.stale_temp_files(folder) if has_mark else []
        if stale:  # io.is_complete's test: metrics.json, and no write was interrupted
            unfinished.append(f"{folder}: incomplete ({', '.join(p.name for p in stale)} "
                              "left: the job was stopped while writing)")
        elif has_mark:  # read only if a regular file (_read_document)
            marks.append(folder / mark)
        elif looks_like_job:
            unfinished.append(f"{folder}: incomplete (no {mark}: the job was "
                              "stopped before it finished)")
    return sorted(marks), sorted(unfinished)


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> None:
    raise _NotJson(name)


def _read_text(path: Path, what: str, budget: list[int], max_bytes: int | None = None,
               kind: str | None = None) -> str:
    """A file of a job folder as text (``io.read_user_text``), counted against ``budget``:
    the bytes every file read so far may hold together."""
    from sim import io

    try:
        text = (io.read_user_text(path, what) if max_bytes is None
                else io.read_user_text(path, what, max_bytes))
    except InputError as err:
        raise ReportError(str(err)) from None
    budget[0] -= len(text)
    if budget[0] < 0:
        raise ReportError(f"{path}: the {kind or what} files read so far hold more than "
                          f"{MAX_TOTAL_BYTES:,} bytes together; give sim.report fewer jobs")
    return text


def _read_document(path: Path, budget: list[int]) -> Any:
    """A ``metrics.json`` parsed: a regular file of a sane size, UTF-8, strict JSON."""

    text = _read_text(path, "metrics.json", budget)
    if not text.strip():
        raise ReportError(f"{path}: empty file; expected the JSON document a run writes")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NotJson as err:
        raise ReportError(f"{path}: {err.args[0]} is not a JSON value (a run writes null "
                          "for a missing value)") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, "
                          f"column {err.colno})") from None
    except RecursionError:
        raise ReportError(f"{path}: nested too deeply for a run's metrics.json") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ReportError(f"{path}: not valid JSON ({err})") from None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _job(path: Path, doc: Any) -> dict[str, Any] | None:
    """A job's ``metrics.json`` checked field by field; None for a comparison's own.

    Returns ``name``, ``description``, ``seed``, ``fingerprint``, ``ids``, ``metrics`` (the
    replications' metric names), ``per_replication`` (null read as NaN), ``terms`` (the
    horizon and discount rate, for ``finance_table``) and ``doc``.
    """
    def bad(field: str, expected: str, value: Any) -> ReportError:
        return ReportError(f"{path}: {field}: expected {expected}, got {_shown(value)}")

    if not isinstance(doc, dict):
        raise bad("the document", "a JSON object (a run's metrics.json)", doc)
    if "scenario" not in doc and ("comparison" in doc or "sweep" in doc):
        return None  # written by a comparison (compare=...) or an earlier report
    for key in ("scenario", "seed", "per_replication"):
        if key not in doc:
            raise ReportError(f"{path}: no {key!r}: not the metrics.json of a run (expected "
                              "the keys scenario, seed, per_replication, replication_ids)")
    scenario = doc["scenario"]
    if not isinstance(scenario, dict):
        raise bad("scenario", "an object with a name", scenario)
    name = scenario.get("name")
    if not (isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS and name.isprintable()):
        raise bad("scenario.name", f"a name of 1 to {MAX_NAME_CHARS} printable characters",
                  name)
    description = scenario.get("description")
    if description is not None and not isinstance(description, str):
        raise bad("scenario.description", "text", description)
    seed = doc["seed"]
    if not _is_count(seed):
        raise bad("seed", "a whole number >= 0", seed)
    fingerprint = doc.get("fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str)
                                        and len(fingerprint) <= MAX_NAME_CHARS):
        raise bad("fingerprint", "text (the model's fingerprint)", fingerprint)
    rows = doc["per_replication"]
    if not isinstance(rows, list) or not rows:
        raise bad("per_replication", "a list of one object of metrics per replication", rows)
    per_replication = []
    metrics: list[str] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row:
            raise bad(f"per_replication[{i}]", "an object of metric names and numbers", row)
        if i == 0:
            metrics = list(row)
        elif row.keys() != set(metrics):
            missing, extra = sorted(set(metrics) - row.keys()), sorted(row.keys() - set(metrics))
            raise ReportError(f"{path}: per_replication[{i}]: not the metrics of "
                              f"per_replication[0] (missing {missing or 'none'}, extra "
                              f"{extra or 'none'}); every replication has the same metrics")
        for key, value in row.items():
            if value is not None and not _is_number(value):
                raise bad(f"per_replication[{i}][{json.dumps(key)}]",
                          "a finite number or null", value)
            if value is not None and abs(value) > MAX_METRIC_MAGNITUDE:
                raise bad(f"per_replication[{i}][{json.dumps(key)}]",
                          f"a number of magnitude at most {MAX_METRIC_MAGNITUDE:g}", value)
        per_replication.append({k: (math.nan if v is None else v) for k, v in row.items()})
    ids = doc.get("replication_ids", list(range(len(rows))))
    if not isinstance(ids, list) or not all(_is_count(i) for i in ids):
        raise bad("replication_ids", "a list of whole numbers >= 0", ids)
    if len(ids) != len(rows):
        raise ReportError(f"{path}: replication_ids: {len(ids)} ids for {len(rows)} "
                          "replications in per_replication; expected one id per replication")
    if len(set(ids)) != len(ids):
        raise ReportError(f"{path}: replication_ids: an id appears twice; expected "
                          "distinct replications")
    count = doc.get("replications", len(rows))
    if count != len(rows) or not _is_count(count):
        raise bad("replications", f"{len(rows)}, the length of per_replication", count)
    terms = {}
    for key in ("horizon_days", "annual_discount_rate"):
        value = doc.get(key)
        if value is not None and not _is_number(value):
            raise bad(key, "a finite number or null", value)
        if value is not None:
            terms[key] = float(value)
    return {"name": name, "description": description or "", "seed": seed,
            "fingerprint": fingerprint, "ids": ids, "metrics": metrics,
            "per_replication": per_replication, "terms": terms, "doc": doc}


def collect_blocks(folder: Path) -> dict[str, dict[str, Any]]:
    """Every job's ``metrics.json`` under ``folder``, checked and merged by scenario.

    Jobs of one scenario are replication blocks (``run.first_replication``,
    ``run.replications``) of one experiment: they must share the model (its fingerprint),
    the seed and the metrics, and must not repeat a replication. Their per-replication
    metrics are put in replication order, so the merge equals running every replication
    in one job. Returns, per scenario: ``doc`` (the first block's document), ``ids``
    (replications, sorted), ``per_replication`` (in that order), ``description``,
    ``terms`` (horizon and discount rate) and ``path`` (the first block's file).

    Only regular files of a sane size inside ``folder`` are read, and nothing through a
    link that leads outside it.

    Raises
    ------
    ReportError : the folder is missing or not a folder; a job folder is unfinished (no
        ``metrics.json``, or temporary files of an interrupted write); a ``metrics.json``
        is not a run's (the file, the field and what was expected); blocks disagree.
    """
    return _by_scenario(_read_jobs(Path(folder)))


def _read_jobs(root: Path) -> list[dict[str, Any]]:
    """Every finished job under ``root``, checked (``_job``, with its ``path``); refused
    if a job folder is unfinished or there is none."""
    if not root.exists():
        raise ReportError(f"{root}: no such folder")
    if not root.is_dir():
        raise ReportError(f"{root}: not a folder; give the folder of a multirun "
                          "(python -m sim -m ...) or of replication blocks")
    paths, unfinished = _walk(root)
    if unfinished:
        more = f" (and {len(unfinished) - 1} more)" if len(unfinished) > 1 else ""
        raise ReportError(f"{unfinished[0]}; rerun it or remove the folder{more}")
    budget = [MAX_TOTAL_BYTES]
    jobs = []
    for path in paths:
        job = _job(path, _read_document(path, budget))
        if job is not None:
            job["path"] = path
            jobs.append(job)
    if not jobs:
        raise ReportError(f"no job's metrics.json under {root} (give the folder that holds "
                          "the jobs' folders: a multirun's, or one of replication blocks)")
    return jobs


def _by_scenario(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        by_name.setdefault(job["name"], []).append(job)
    return {name: _merge_blocks(name, blocks) for name, blocks in by_name.items()}


def _merge_blocks(name: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    first = blocks[0]
    ids: dict[int, tuple[Path, dict]] = {}
    for job in blocks:
        path = job["path"]
        if (job["fingerprint"], job["seed"]) != (first["fingerprint"], first["seed"]):
            raise ReportError(f"{path} and {first['path']}: scenario {name!r} with a different "
                              "model or seed; blocks of one experiment must differ only in "
                              "run.first_replication and run.replications")
        if set(job["metrics"]) != set(first["metrics"]):
            raise ReportError(f"{path} and {first['path']}: scenario {name!r} with different "
                              "metrics; blocks of one experiment have the same metrics")
        for i, m in zip(job["ids"], job["per_replication"], strict=True):
            if i in ids:
                raise ReportError(f"{path}: replication {i} of scenario {name!r} appears in "
                                  f"two jobs (also in {ids[i][0]})")
            ids[i] = (path, m)
    order = sorted(ids)
    return {"doc": first["doc"], "ids": order, "per_replication": [ids[i][1] for i in order],
            "description": first["description"], "terms": first["terms"],
            "path": first["path"]}


def collect_multirun(folder: Path) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Per-replication metrics of every scenario of a Hydra multirun (blocks merged).

    Raises
    ------
    ReportError : as ``collect_blocks``; or no baseline, or a scenario that does not pair
        with it (seed, replications) or lacks a metric a comparison needs.
    """
    merged = collect_blocks(folder)
    return _paired(folder, merged)


def _paired(folder: Path, merged: dict[str, dict[str, Any]]
            ) -> tuple[dict[str, list[dict]], dict[str, str]]:
    if "baseline" not in merged:
        raise ReportError(f"no job of scenario 'baseline' under {folder}: run the sweep with "
                          "scenario=baseline,...")
    base = merged["baseline"]
    for name, m in merged.items():
        if m["doc"]["seed"] != base["doc"]["seed"] or m["ids"] != base["ids"]:
            raise ReportError(f"scenario {name!r} and the baseline differ in seed or "
                              f"replications under {folder}: a paired comparison needs the "
                              "same")
        missing = [k for k in COMPARISON_METRICS if k not in m["per_replication"][0]]
        if missing:
            raise ReportError(f"{m['path']}: per_replication[0]: no {', '.join(missing)}; a "
                              f"comparison needs the metrics {', '.join(COMPARISON_METRICS)}")
    return ({name: m["per_replication"] for name, m in merged.items()},
            {name: m["description"] for name, m in merged.items()})


def merged_document(block: dict[str, Any]) -> dict[str, Any]:
    """One scenario's merged blocks as the ``metrics.json`` a single job would write."""
    from sim.measure.metrics import metric_range
    from sim.measure.stats import estimate

    per_rep = block["per_replication"]
    doc = dict(block["doc"])
    doc.update(replications=len(per_rep), first_replication=block["ids"][0],
               replication_ids=block["ids"], per_replication=per_rep,
               metrics={k: estimate(np.array([m[k] for m in per_rep], dtype=float), 0.95,
                                    metric_range(k)).as_dict() for k in per_rep[0]})
    return doc


def write_merged(block: dict[str, Any], folder: Path) -> tuple[dict[str, Any], list[Path]]:
    """One scenario's merged blocks: ``metrics.csv``, then ``metrics.json`` (the mark of a
    finished folder, see ``sim.io.begin_outputs``) and after it ``report.html`` into
    ``folder``."""
    from sim import io
    from sim.present.html import write_report

    folder = Path(folder)
    doc = merged_document(block)
    rows = [{"metric": k, **v} for k, v in doc["metrics"].items()]
    io.begin_outputs(folder)
    written = [io.write_table(pd.DataFrame(rows), folder / "metrics.csv")]
    written.append(io.finish_outputs(doc, folder))
    return doc, [*written, write_report(folder)]


def format_merged(doc: dict[str, Any]) -> str:
    ids = doc["replication_ids"]
    out = [f"scenario {doc['scenario']['name']!r}: replications {ids[0]}..{ids[-1]} "
           f"({len(ids)}) merged from blocks"]
    for name in ("conversion_rate", "ltv.mean", "cac", "npv"):
        if name in doc["metrics"]:
            m = doc["metrics"][name]
            out.append(f"  {name}: {m['mean']:.6g} [{m['low']:.6g}, {m['high']:.6g}]")
    return "\n".join(out)


# ------------------------------------------------------------ a sweep over parameters
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"  # Hydra writes it into every job folder
MAX_OVERRIDES_BYTES = 2**20
MAX_OVERRIDES = 1_000  # overrides of one job
MAX_OVERRIDE_CHARS = 10_000  # one override, key and value
# overrides that change how a job runs or what it writes, not its model: jobs differing
# only in these are replication blocks of one experiment, not points of a sweep
EXECUTION_KEYS = frozenset({
    "run.replications", "run.first_replication", "run.n_jobs", "run.progress",
    "run.memory_guard", "run.work_guard", "run.target_rel_half_width",
    "run.precision_metric", "run.max_replications", "run.plots", "run.summary",
    "run.events", "run.objective", "run.funnel_log"})
# what a sweep tabulates: the comparison's metrics, the headline first; and plots
SWEEP_METRICS = tuple(dict.fromkeys([*HEADLINE, *FINANCE_METRICS.values(), *COST_KEYS]))
SWEEP_PLOT_METRICS = tuple(HEADLINE)
SWEEP_COLUMNS = ("scenario", "replication", "metric", "mean", "low", "high", "half_width",
                 "n", "value")
INTERVAL_NOTE = ("95% t intervals across each job's replications: they cover simulation "
                 "noise only, given the model and its inputs (not uncertainty in the "
                 "inputs or the model)")
_OVERRIDE = re.compile(r"(~|\+\+|\+)?([A-Za-z_][\w.\-/@\[\]]*)(?:=(.*))?", re.DOTALL)
_INT = re.compile(r"[+-]?\d{1,15}")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d{1,3})?")
REMOVED = "~"  # the value of a key an override removes (~key)


@dataclass
class Sweep:
    """The jobs of a sweep over parameters, replication blocks merged: ``parameters`` are
    the override keys whose values differ between jobs; each point has the ``values`` of
    them, ``scenario``, ``block`` (as ``collect_blocks`` gives per scenario) and
    ``folders`` (its job folders, relative to the folder read)."""

    parameters: list[str]
    points: list[dict[str, Any]]

    @property
    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(p["scenario"] for p in self.points))


def _typed(text: str) -> Any:
    """An override's value as Hydra reads a plain one: a whole number, a finite decimal
    number, true/false, or text (quotes dropped)."""
    if _INT.fullmatch(text):
        return int(text)
    if len(text) <= 40 and _FLOAT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _same(value: Any) -> tuple[str, Any]:
    """Equal for equal values (50 and 50.0), apart for True and 1."""
    return ("number", float(value)) if _is_number(value) else (type(value).__name__, value)


def _overrides(folder: Path, root: Path, budget: list[int]) -> dict[str, Any] | None:
    """The overrides a job ran with, from Hydra's ``.hydra/overrides.yaml`` in its folder:
    key to typed value (``REMOVED`` for ``~key``); None without that file.

    The file is untrusted input: a regular file inside ``root`` of at most
    ``MAX_OVERRIDES_BYTES``, UTF-8, plain YAML (``yaml.safe_load``), a list of at most
    ``MAX_OVERRIDES`` overrides ``key=value``, each key once; ``budget`` (bytes left for
    all of them together) is spent.
    """

    path = folder / OVERRIDES_FILE
    if not os.path.lexists(path):
        return None
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(root.resolve()):
        raise ReportError(f"{path}: a link to {target}, outside {root}; sim.report reads "
                          "nothing outside the folder it is given")
    text = _read_text(path, "Hydra overrides file", budget, MAX_OVERRIDES_BYTES, "overrides")
    try:
        doc = yaml.safe_load(text)
    except yaml.constructor.ConstructorError:
        raise ReportError(f"{path}: not plain YAML (a tag such as !!python/...); expected "
                          "the list of overrides Hydra writes") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ReportError(f"{path}: not valid YAML{where}; expected the list of overrides "
                          "Hydra writes") from None
    except (yaml.YAMLError, RecursionError, ValueError):
        raise ReportError(f"{path}: not plain YAML; expected the list of overrides Hydra "
                          "writes") from None
    doc = [] if doc is None else doc
    if not isinstance(doc, list) or len(doc) > MAX_OVERRIDES:
        raise ReportError(f"{path}: expected a list of at most {MAX_OVERRIDES} overrides "
                          f"(key=value), as Hydra writes it, got {_shown(doc)}")
    found: dict[str, Any] = {}
    for i, item in enumerate(doc):
        m = (_OVERRIDE.fullmatch(item) if isinstance(item, str)
             and len(item) <= MAX_OVERRIDE_CHARS and item.isprintable() else None)
        if m is None or len(m.group(2)) > MAX_NAME_CHARS or (
                m.group(3) is None and m.group(1) != "~"):
            raise ReportError(f"{path}: [{i}]: expected an override key=value (a key of at "
                              f"most {MAX_NAME_CHARS} characters, the whole of at most "
                              f"{MAX_OVERRIDE_CHARS}, on one line), got {_shown(item)}")
        key = m.group(2)
        if key in found:
            raise ReportError(f"{path}: [{i}]: {key} overridden twice; expected each key "
                              "once")
        found[key] = REMOVED if m.group(1) == "~" else _typed(m.group(3))
    return found


def _is_parameter(key: str) -> bool:
    return key != "scenario" and key not in EXECUTION_KEYS and not key.startswith("hydra")


def collect_sweep(folder: Path) -> Sweep | None:
    """The jobs under ``folder`` as a sweep over parameters, or None if they are not one.

    They are one when jobs of the same scenario differ in an override other than
    ``scenario`` and the run's execution (``EXECUTION_KEYS``: replication blocks, workers,
    what is written). The swept parameters are the override keys whose values differ;
    jobs with the same values of them and the same scenario are replication blocks,
    merged as ``collect_blocks`` merges them. Overrides are read only when a scenario has
    several jobs, from each job's ``.hydra/overrides.yaml``.

    Raises
    ------
    ReportError : as ``collect_blocks``; an overrides file that is not Hydra's (the file,
        the entry, what was expected); a job that does not set every swept parameter.
    """
    root = Path(folder)
    return _sweep(root, _read_jobs(root))


def _sweep(root: Path, jobs: list[dict[str, Any]]) -> Sweep | None:
    if len({j["name"] for j in jobs}) == len(jobs):
        return None  # one job per scenario: a comparison (or one run)
    budget = [MAX_TOTAL_BYTES]
    overrides = [_overrides(j["path"].parent, root, budget) for j in jobs]
    keys = list(dict.fromkeys(k for o in overrides if o for k in o if _is_parameter(k)))
    missing = object()
    swept = [k for k in keys
             if len({_same(o.get(k, missing) if o else missing) for o in overrides}) > 1]
    if not swept:
        return None
    clash = [k for k in swept if k in SWEEP_COLUMNS]
    if clash:
        raise ReportError(f"{root}: the swept parameter {clash[0]!r} has the name of a "
                          f"column of sweep.csv; expected config keys")
    for job, found in zip(jobs, overrides, strict=True):
        lacking = [k for k in swept if not found or k not in found]
        if lacking:  # not the jobs of one sweep (they set the same keys): blocks, then?
            other = next(j["path"].parent for j, o in zip(jobs, overrides, strict=True)
                         if o and lacking[0] in o)
            why = (f"{job['path'].parent / OVERRIDES_FILE}: no override of {lacking[0]}, "
                   f"which {other} sets: not the jobs of one sweep over parameters (they "
                   "set the same keys; one multirun per folder)")
            try:
                _by_scenario(jobs)
            except ReportError as err:
                raise ReportError(f"{why}; nor replication blocks of one model: {err}"
                                  ) from None
            return None  # replication blocks after all: merged as such
    points: dict[tuple, dict[str, Any]] = {}
    for job, found in zip(jobs, overrides, strict=True):
        values = {k: found[k] for k in swept}
        point = points.setdefault((job["name"], *(_same(v) for v in values.values())),
                                  {"values": values, "scenario": job["name"], "jobs": []})
        point["jobs"].append(job)
    ordered = []
    for point in points.values():
        label = ", ".join(f"{k}={v}" for k, v in point["values"].items())
        blocks = point.pop("jobs")
        point["block"] = _merge_blocks(f"{point['scenario']} ({label})", blocks)
        point["folders"] = sorted(j["path"].parent.relative_to(root).as_posix()
                                  for j in blocks)
        ordered.append(point)
    numeric = {k: all(_is_number(p["values"][k]) for p in ordered) for k in swept}

    def order(point: dict[str, Any]) -> tuple:
        return (*((float(v) if numeric[k] else str(v)) for k, v in point["values"].items()),
                point["scenario"] != "baseline", point["scenario"])

    return Sweep(swept, sorted(ordered, key=order))


def sweep_tables(sweep: Sweep) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``sweep.csv`` and ``sweep_replications.csv``: per point (parameter values and
    scenario) and metric of ``SWEEP_METRICS``, the mean across replications with its 95% t
    interval (``sim.measure.stats.estimate``, cut at the metric's range), and every
    replication's value."""
    from sim.measure.metrics import metric_range
    from sim.measure.stats import estimate

    rows, reps = [], []
    for point in sweep.points:
        block, head = point["block"], {**point["values"], "scenario": point["scenario"]}
        missing = [k for k in SWEEP_METRICS if k not in block["per_replication"][0]]
        if missing:
            raise ReportError(f"{block['path']}: per_replication[0]: no {', '.join(missing)}; "
                              f"a sweep reads the metrics {', '.join(SWEEP_METRICS)}")
        for metric in SWEEP_METRICS:
            values = np.array([m[metric] for m in block["per_replication"]], dtype=float)
            e = estimate(values, 0.95, metric_range(metric))
            rows.append({**head, "metric": metric, "mean": e.mean, "low": e.low,
                         "high": e.high, "half_width": e.half_width, "n": e.n})
            reps += [{**head, "replication": i, "metric": metric, "value": v}
                     for i, v in zip(block["ids"], values.tolist(), strict=True)]
    return _typed_columns(pd.DataFrame(rows), sweep), _typed_columns(pd.DataFrame(reps), sweep)


def _typed_columns(table: pd.DataFrame, sweep: Sweep) -> pd.DataFrame:
    """Numbers as numbers, true/false as flags; a column of mixed values as text."""
    for k in sweep.parameters:
        values = table[k].tolist()
        if all(_is_number(v) for v in values):
            kind = int if all(isinstance(v, int) for v in values) else float
            table[k] = np.array(values, dtype=kind)
        elif not all(isinstance(v, bool) for v in values):
            table[k] = [str(v) for v in values]
    return table


def _sweep_comparison(sweep: Sweep, root: Path, rank_by: str) -> pd.DataFrame | None:
    """With several scenarios: at each combination of parameter values, the paired
    comparison of every scenario with the baseline (``sim.measure.stats.compare``), the
    parameter columns first. None with one scenario."""
    from sim.measure.stats import compare

    if len(sweep.scenarios) == 1:
        return None
    at: dict[tuple, dict[str, dict[str, Any]]] = {}
    for point in sweep.points:
        key = tuple(_same(v) for v in point["values"].values())
        at.setdefault(key, {})[point["scenario"]] = point
    tables = []
    for points in at.values():
        values = next(iter(points.values()))["values"]
        label = " ".join(f"{k}={v}" for k, v in values.items())
        merged = {name: p["block"] for name, p in points.items()}
        if "baseline" not in merged:
            raise ReportError(f"no job of scenario 'baseline' with {label} under {root}: a "
                              "sweep over scenarios and parameters compares the scenarios "
                              "with the baseline at each parameter value; run it with "
                              "scenario=baseline,...")
        if len(merged) == 1:
            raise ReportError(f"only the baseline has a job with {label} under {root}: a "
                              "sweep over scenarios and parameters needs every scenario at "
                              "every parameter value")
        runs, _ = _paired(root, merged)
        if rank_by not in runs["baseline"][0]:
            raise ReportError(f"--rank-by {rank_by!r}: not a metric of "
                              f"{merged['baseline']['path']}; rank by one of its "
                              f"per_replication metrics, e.g. {', '.join(HEADLINE)}")
        base = runs.pop("baseline")
        table = compare(base, runs, rank_by=rank_by)
        for i, (k, v) in enumerate(values.items()):
            table.insert(i, k, [v] * len(table))
        tables.append(table)
    return _typed_columns(pd.concat(tables, ignore_index=True), sweep)


def format_sweep(sweep: Sweep, table: pd.DataFrame,
                 comparison: pd.DataFrame | None = None, rank_by: str = "npv") -> str:
    """The console summary: one line per point, its parameter values (and scenario) and
    NPV with its 95% interval (with a comparison, the paired difference from the baseline
    in ``rank_by``), then what the intervals cover."""
    def num(x: float, sign: str = "") -> str:
        return "-" if not math.isfinite(x) else f"{x:{sign},.6g}"

    scenarios = sweep.scenarios
    counts = sorted({len(p["block"]["ids"]) for p in sweep.points})
    reps = (f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}")
    out = [f"sweep over {', '.join(sweep.parameters)}"
           + (f" and the scenarios {', '.join(scenarios)}" if len(scenarios) > 1
              else f" of scenario {scenarios[0]!r}")
           + f": {len(sweep.points)} points, {reps} replication"
           + f"{'' if counts[-1] == 1 else 's'} each; npv mean [95% CI]"
           + (f", and the difference from the baseline in {rank_by} paired replication by "
              "replication" if comparison is not None else "")]
    npv = table[table["metric"] == "npv"].reset_index(drop=True)
    for point, (_, row) in zip(sweep.points, npv.iterrows(), strict=True):
        label = " ".join(f"{k}={v}" for k, v in point["values"].items())
        if len(scenarios) > 1:
            label += f" scenario={point['scenario']}"
        line = f"  {label}: npv {num(row['mean'])}"
        if math.isfinite(row["half_width"]):
            line += f" [{num(row['low'])}, {num(row['high'])}]"
        else:
            line += " (no interval: one replication)"
        if comparison is not None and point["scenario"] != "baseline":
            match = comparison[(comparison["scenario"] == point["scenario"])
                               & (comparison["metric"] == rank_by)]
            for k, v in point["values"].items():
                match = match[[_same(x) == _same(v) for x in match[k].tolist()]]
            d = match.iloc[0]
            line += f"; {rank_by} difference {num(d['difference'], '+')}"
            if math.isfinite(d["difference_low"]):
                line += (f" [{num(d['difference_low'], '+')}, "
                         f"{num(d['difference_high'], '+')}]")
        out.append(line)
    out.append(INTERVAL_NOTE)
    return "\n".join(out)


def write_sweep(sweep: Sweep, folder: Path, rank_by: str = "npv", plots: bool = True
                ) -> tuple[pd.DataFrame, pd.DataFrame | None, list[Path]]:
    """``sweep.csv``, ``sweep_replications.csv``, with several scenarios
    ``sweep_comparison.csv``, with ``plots`` ``sweep.png``, then ``metrics.json`` (the
    mark) and ``report.html`` into ``folder``. Returns the sweep table, the comparison (or
    None) and the files."""
    from sim import io
    from sim.present import figures
    from sim.present.html import write_report

    folder = Path(folder)
    table, replications = sweep_tables(sweep)
    comparison = _sweep_comparison(sweep, folder, rank_by)
    doc: dict[str, Any] = {
        "sweep": sweep.parameters,
        "scenarios": sweep.scenarios,
        "metrics": list(SWEEP_METRICS),
        "confidence_level": 0.95,
        "intervals": INTERVAL_NOTE,
        "jobs": [{"parameters": p["values"], "scenario": p["scenario"],
                  "replication_ids": p["block"]["ids"], "folders": p["folders"]}
                 for p in sweep.points],
    }
    if comparison is not None:
        doc.update(rank_by=rank_by, comparison=comparison.to_dict(orient="records"))
    io.begin_outputs(folder)
    written = [io.write_table(table, folder / "sweep.csv", io.FINANCE_FLOAT_FORMAT),
               io.write_table(replications, folder / "sweep_replications.csv",
                              io.FINANCE_FLOAT_FORMAT)]
    if comparison is not None:
        written.append(io.write_table(comparison, folder / "sweep_comparison.csv",
                                      io.FINANCE_FLOAT_FORMAT))
    if plots:
        counts = sorted({len(p["block"]["ids"]) for p in sweep.points})
        reps = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
        by = [*sweep.parameters[1:], *(["scenario"] if len(sweep.scenarios) > 1 else [])]
        fig = figures.plot_sweep(
            table, sweep.parameters[0], list(SWEEP_PLOT_METRICS), by=by,
            title=(f"Sweep over {sweep.parameters[0]}: mean with 95% CI (simulation noise "
                   f"only), {reps} replication{'' if counts[-1] == 1 else 's'} per point"))
        try:
            written.append(io.save_figure(fig, folder / "sweep.png"))
        finally:
            figures.close(fig)
    written.append(io.finish_outputs(doc, folder))
    return table, comparison, [*written, write_report(folder)]  # after the mark


# ------------------------------------------------------------------- blocks of a PSA
PSA_MARK = "psa.json"
# the settings every block of one PSA shares
PSA_SHARED = ("draws", "seed", "blocks", "replications_per_draw", "design", "reference",
              "metric", "assumptions", "groups")


def _psa_block(path: Path, doc: Any) -> dict[str, Any]:
    """A block's ``psa.json`` checked field by field."""
    def bad(field: str, expected: str) -> ReportError:
        value = doc.get(field) if isinstance(doc, dict) else doc
        return ReportError(f"{path}: {field}: expected {expected}, found {_shown(value)}")

    if not isinstance(doc, dict):
        raise bad("(the document)", "a JSON object")
    for field in ("draws", "seed", "blocks", "block", "replications_per_draw"):
        if not _is_count(doc.get(field)):
            raise bad(field, "a whole number >= 0")
    if doc["blocks"] < 1 or doc["block"] >= doc["blocks"] or doc["draws"] < 1:
        raise bad("block", "0 .. blocks - 1 of blocks >= 1 and draws >= 1")
    for field in ("design", "reference", "metric"):
        if not isinstance(doc.get(field), str) or len(doc[field]) > MAX_NAME_CHARS:
            raise bad(field, "a name")
    if not (isinstance(doc.get("assumptions"), list)
            and all(isinstance(a, str) for a in doc["assumptions"])):
        raise bad("assumptions", "a list of text")
    groups = doc.get("groups", {})
    if not (isinstance(groups, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in groups.items())):
        raise bad("groups", "an object of lists of assumption names")
    return doc


def _psa_runs(path: Path, block: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A block's ``psa_runs.csv`` (untrusted: every cell checked): its runs, one row per run
    with a column per metric, and its draws, indexed by point."""
    from sim import io
    from sim.decide.study import STUDY_METRICS

    try:
        table = io.read_csv_text(path, "psa_runs.csv")
    except InputError as err:
        raise ReportError(str(err)) from None
    fixed = ["point", "option", "replication", "metric", "value"]
    missing = [c for c in fixed if c not in table.columns]
    if missing:
        raise ReportError(f"{path}: no column {missing[0]!r}; a PSA writes {', '.join(fixed)} "
                          "and one column per assumption")
    assumptions = [c for c in table.columns if c not in fixed]

    def numbers(column: str, whole: bool = False) -> np.ndarray:
        values = pd.to_numeric(table[column].replace("", "nan"), errors="coerce").to_numpy()
        ok = np.isfinite(values) if column != "value" else ~np.isinf(values)
        if whole:
            ok &= values == np.round(values)
        if not ok.all():
            row = int(np.argmin(ok))
            raise ReportError(f"{path}: row {row + 2}, column {column}: "
                              f"{_shown(table[column].iloc[row])} is not a "
                              f"{'whole number' if whole else 'finite number'}")
        return values

    point = numbers("point", whole=True).astype(np.int64)
    if (point < 0).any() or (point % block["blocks"] != block["block"]).any():
        raise ReportError(f"{path}: column point: draws outside block {block['block']} of "
                          f"{block['blocks']} (draw d belongs to block d mod blocks)")
    if not table["metric"].isin(STUDY_METRICS).all():
        other = table.loc[~table["metric"].isin(STUDY_METRICS), "metric"].iloc[0]
        raise ReportError(f"{path}: column metric: {_shown(other)} is not a metric of a PSA")
    long = pd.DataFrame({"point": point, "option": table["option"],
                         "replication": numbers("replication", whole=True).astype(np.int64),
                         "metric": table["metric"], "value": numbers("value")})
    if long.duplicated(["point", "option", "replication", "metric"]).any():
        raise ReportError(f"{path}: a run's metric appears twice")
    runs = long.pivot(index=["point", "option", "replication"], columns="metric",
                      values="value").reset_index()
    runs.columns.name = None
    runs.attrs["options"] = list(dict.fromkeys(table["option"]))  # the PSA's order
    points = pd.DataFrame({c: numbers(c) for c in assumptions}).assign(point=point)
    points = points.drop_duplicates("point").set_index("point")
    return runs, points


def collect_psa(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """The runs, draws and settings of a PSA split into blocks (``psa.block``,
    ``psa.blocks``), one block per job folder under ``folder``, merged; None when the
    folder holds no PSA.

    Raises
    ------
    ReportError : an unfinished block, blocks of different PSAs, a block missing or given
        twice, or a file that is not what a PSA writes.
    """
    marks, unfinished = _walk(Path(folder), PSA_MARK)
    if not marks:
        return None
    if unfinished:
        raise ReportError("unfinished jobs under the folder: " + "; ".join(unfinished[:5]))
    budget = [MAX_TOTAL_BYTES]
    blocks = [(m, _psa_block(m, _read_document(m, budget))) for m in marks]
    first = blocks[0][1]
    for path, doc in blocks[1:]:
        for field in PSA_SHARED:
            if doc.get(field) != first.get(field):
                raise ReportError(f"{path}: {field} differs from {blocks[0][0]}: the blocks "
                                  "of one PSA share every setting but psa.block")
    seen = sorted(doc["block"] for _, doc in blocks)
    if seen != list(range(first["blocks"])):
        missing = sorted(set(range(first["blocks"])) - set(seen))
        twice = sorted({b for b in seen if seen.count(b) > 1})
        raise ReportError(f"{folder}: blocks {missing or twice} "
                          f"{'missing' if missing else 'given twice'}; a PSA of "
                          f"psa.blocks={first['blocks']} needs each block once")
    parts = [_psa_runs(path.parent / "psa_runs.csv", doc) for path, doc in blocks]
    runs = pd.concat([r for r, _ in parts], ignore_index=True)
    points = pd.concat([p for _, p in parts]).sort_index()
    order = list(dict.fromkeys(o for r, _ in parts for o in r.attrs["options"]))
    if list(points.index) != list(range(first["draws"])):
        raise ReportError(f"{folder}: the blocks hold {len(points)} of the PSA's "
                          f"{first['draws']} draws")
    if first["reference"] not in order:
        raise ReportError(f"{folder}: the reference option {first['reference']!r} has no runs")
    runs["option"] = pd.Categorical(runs["option"], categories=order)
    runs = runs.sort_values(["point", "option", "replication"], kind="stable")
    runs["option"] = runs["option"].astype(str)
    settings = {k: first[k] for k in PSA_SHARED} | {
        "block": 0, "points_run": first["draws"], "merged_from": len(blocks),
        "low_percentile": first.get("low_percentile", 10),
        "high_percentile": first.get("high_percentile", 90)}
    return runs.reset_index(drop=True), points, settings


def _finished_alone(folder: Path) -> bool:
    """Whether ``folder`` is itself a finished folder of outputs (``sim.io.is_complete``)
    with no job under it: then ``python -m sim.report`` writes its report.html only."""
    from sim import io

    if not (folder.is_dir() and io.is_complete(folder)):
        return False
    for mark in ("metrics.json", PSA_MARK):
        marks, unfinished = _walk(folder, mark)
        if marks or unfinished:
            return False
    return True


def _report(folder: Path, rank_by: str, plots: bool) -> list[str]:
    """Merge, compare or tabulate the jobs under ``folder``, write the results there; the
    lines to print."""
    from sim.measure.finance import finance_table
    from sim.measure.stats import compare

    folder = Path(folder)
    if _finished_alone(folder):  # a run, a comparison, an analysis: its page only
        from sim.present.html import write_report

        return [f"wrote {write_report(folder).name} to {folder}"]
    psa = collect_psa(folder) if folder.is_dir() else None
    if psa is not None:  # the blocks of a PSA: merged and analysed as one
        from sim.decide.psa import summarise_psa
        from sim.present.text import format_psa, write_psa

        result = summarise_psa(*psa)
        written = write_psa(result, folder, plots=plots)
        return [format_psa(result), f"wrote {', '.join(p.name for p in written)} to {folder}"]
    jobs = _read_jobs(folder)
    sweep = _sweep(folder, jobs)
    if sweep is not None:  # a sweep over parameters (and perhaps scenarios)
        table, comparison, written = write_sweep(sweep, folder, rank_by, plots=plots)
        return [format_sweep(sweep, table, comparison, rank_by),
                f"wrote {', '.join(p.name for p in written)} to {folder}"]
    blocks = _by_scenario(jobs)
    if len(blocks) == 1:  # one scenario in blocks: its merged metrics
        doc, written = write_merged(next(iter(blocks.values())), folder)
        return [format_merged(doc), f"wrote {', '.join(p.name for p in written)} to {folder}"]
    runs, descriptions = _paired(folder, blocks)
    missing = [m["path"] for m in blocks.values() if rank_by not in m["per_replication"][0]]
    if missing:
        raise ReportError(f"--rank-by {rank_by!r}: not a metric of {missing[0]}; rank by one "
                          f"of its per_replication metrics, e.g. {', '.join(HEADLINE)}")
    base = runs.pop("baseline")
    table = compare(base, runs, rank_by=rank_by)
    per_replication = {"baseline": base, **runs}
    # each job's metrics.json holds its horizon and discount rate
    finance = finance_table(per_replication, {k: blocks[k]["terms"] for k in per_replication})
    written = write_comparison(table, per_replication, descriptions, rank_by, folder,
                               plots=plots, finance=finance)
    return [format_comparison(table, rank_by, len(base), width=CONSOLE_WIDTH),
            f"wrote {', '.join(p.name for p in written)} to {folder}"]


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.report FOLDER [--rank-by METRIC] [--no-plots]``: compare the
    scenarios of a Hydra multirun (``python -m sim -m scenario=baseline,a,b``) from their
    job folders, merge the replication blocks of one scenario, or tabulate and plot a
    sweep over parameters (``python -m sim -m checkout.steps=2,3,4``: sweep.csv,
    sweep_replications.csv, sweep.png). Every job folder must be finished (its
    metrics.json written); the results are written into FOLDER only. Given one finished
    folder with no jobs under it (a run, a comparison, a PSA, an analysis), it (re)writes
    that folder's report.html."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sim.report", description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rank-by", default="npv")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    try:
        lines = _report(args.folder, args.rank_by, plots=not args.no_plots)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        print("interrupted: the folder's metrics.json is written last, so a report stopped "
              "half-way is visibly unfinished", file=sys.stderr)
        return EXIT_INTERRUPTED
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

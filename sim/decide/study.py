"""Studies: many runs, one table.

A study is a set of parameter points (draw-unit values of the uncertain assumptions, see
``sim.model.uncertainty``) x the options compared (the baseline and scenarios) x
replications. Every option of a point and replication runs on the same random streams
(common random numbers), so every difference between options is paired. With
``streams="per_point"`` (a PSA) point p, replication r uses the streams of replication
``p * replications + r``: draws are independent and the simulation noise averages out
across them. With ``streams="shared"`` (a tornado, Sobol indices) every point uses
replications 0 .. replications - 1, so the differences between points are paired too.

Each option's config is composed once; a point is applied to a copy of the plain dict and
checked (``build_spec(..., complete=True)``), never composed again. A study keeps each run's
study metrics (``STUDY_METRICS``), not its records, so memory stays flat however many runs
it has. With a journal file, every finished run is appended to it as it comes; the same
study started again with the same journal skips the runs it holds (a resumed study), and
the results are identical whatever the number of workers, the order runs finish in or the
point at which a study was resumed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.engine import simulate
from sim.errors import InputError, OutputError
from sim.measure.experiment import parallel_map, progress_shown
from sim.measure.finance import FINANCE_METRICS
from sim.measure.metrics import replication_metrics
from sim.measure.stats import COST_KEYS, HEADLINE
from sim.model.config import launched
from sim.model.spec import SpecError, build_spec
from sim.model.uncertainty import Uncertainty

__all__ = ["STUDY_METRICS", "Study", "StudyError", "long_table", "run_study"]

# what a study keeps of each run: the headline and finance metrics and the costs
STUDY_METRICS = tuple(sorted({*dict(HEADLINE), *COST_KEYS, *FINANCE_METRICS.values(),
                              "profit"}))
JOURNAL_VERSION = 1


class StudyError(InputError):
    """A study cannot run: a point gives an invalid config, or a journal belongs to
    another study."""


@dataclass(frozen=True)
class Study:
    """What to run.

    Attributes
    ----------
    configs : each option's composed config as a plain dict (``to_container``), the
        baseline's under "baseline"; they are not changed.
    uncertainty : the assumptions the points' columns name.
    points : (n_points, len(uncertainty)) draw-unit values; NaN leaves that assumption's
        key at its config value (a tornado moves one assumption at a time).
    replications : per point and option.
    seed : the seed of every run.
    streams : "per_point" (point p uses replications p x R .. p x R + R - 1) or "shared"
        (every point uses 0 .. R - 1).
    point_ids : the points' numbers (a block of a split study keeps the study's numbers,
        and so its streams); by default 0 .. n_points - 1.
    first : with shared streams, the first replication (an optimiser verifies its answer
        on replications its search did not see).
    metrics : what is kept of each run (``STUDY_METRICS`` and any other metric names).
    only : the options run (default every option of ``configs``; the baseline's config is
        needed to apply points even when it does not run again).
    """

    configs: Mapping[str, Mapping[str, Any]]
    uncertainty: Uncertainty
    points: np.ndarray
    replications: int = 1
    seed: int = 0
    streams: str = "per_point"
    point_ids: tuple[int, ...] | None = None
    first: int = 0
    metrics: tuple[str, ...] = STUDY_METRICS
    only: tuple[str, ...] | None = None

    @property
    def options(self) -> list[str]:
        return list(self.only) if self.only is not None else list(self.configs)

    @property
    def ids(self) -> tuple[int, ...]:
        return self.point_ids if self.point_ids is not None else tuple(range(len(self.points)))

    def replication_of(self, point: int, r: int) -> int:
        """The replication (streams) run ``r`` of point ``point`` uses."""
        return (point * self.replications + r if self.streams == "per_point"
                else self.first + r)

    def values(self, i: int) -> dict[str, float]:
        """The assumptions set at the i-th point (not NaN), by name."""
        return {n: float(v) for n, v in zip(self.uncertainty.names, self.points[i], strict=True)
                if not math.isnan(v)}

    def tasks(self) -> list[tuple[int, str, int]]:
        """(row of points, option, replication) of every run, in the table's order."""
        return [(i, o, self.replication_of(p, r)) for i, p in enumerate(self.ids)
                for o in self.options for r in range(self.replications)]

    def fingerprint(self) -> str:
        """A digest of everything that decides the study's numbers."""
        doc = {"configs": self.configs, "names": self.uncertainty.names,
               "points": [[None if math.isnan(v) else float(v) for v in row]
                          for row in np.asarray(self.points, dtype=float)],
               "ids": list(self.ids), "replications": self.replications, "seed": self.seed,
               "streams": self.streams, "first": self.first, "metrics": self.metrics,
               "options": self.options}
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# the study a worker process runs (set once per worker, not sent with every task)
_STUDY: Study | None = None


def _set_study(study: Study) -> None:
    global _STUDY
    _STUDY = study


def _run_one(i: int, option: str, replication: int) -> tuple[int, str, int, list[float]]:
    study = _STUDY
    assert study is not None
    cfg = study.uncertainty.apply(study.configs, option, study.values(i))
    try:  # a launched scenario starts from the baseline of the same draw
        before = (study.uncertainty.apply(study.configs, "baseline", study.values(i))
                  if launched(cfg) and "baseline" in study.configs else None)
        spec = build_spec(cfg, complete=True, before=before)
    except SpecError as err:
        values = ", ".join(f"{k}={v:.6g}" for k, v in study.values(i).items())
        raise StudyError(f"point {study.ids[i]} ({values}) gives option {option!r} an invalid "
                         f"config: {err}") from None
    m = replication_metrics(simulate(spec, study.seed, replication), spec)
    return i, option, replication, [float(m[k]) for k in study.metrics]


# ---------------------------------------------------------------------------- journal
def _read_journal(path: Path, fingerprint: str, n: int
                  ) -> dict[tuple[int, str, int], list[float]]:
    """The runs an interrupted study finished, from its journal (a half-written last line,
    from a kill, is dropped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return {}
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("study") != fingerprint:
        raise StudyError(f"{path} holds the runs of another study (another config, "
                         "uncertainty, draws, seed or replications): start the study in a "
                         "new folder, or delete that file to run this one there")
    done = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
            key = (int(row[0]), str(row[1]), int(row[2]))
            values = [float(v) for v in row[3]]
        except (json.JSONDecodeError, TypeError, ValueError, IndexError, KeyError):
            continue  # a line cut short by an interruption
        if len(values) == n:
            done[key] = values
    return done


def run_study(study: Study, n_jobs: int = 1, journal: Path | None = None,
              progress: bool = True, label: str = "study") -> pd.DataFrame:
    """Run every (point, option, replication) of ``study``; one row per run: ``point``
    (its number), ``option``, ``replication`` (the streams used) and the study metrics.

    ``journal``: a file in the run folder that every finished run is appended to (made if
    absent); runs it already holds for this study are not run again.

    Raises
    ------
    StudyError : a point's config is invalid, or the journal is another study's.
    """
    tasks = study.tasks()
    fingerprint = study.fingerprint()
    done: dict[tuple[int, str, int], list[float]] = {}
    if journal is not None and journal.exists():
        done = _read_journal(journal, fingerprint, len(study.metrics))
    todo = [t for t in tasks if t not in done]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=label, unit="run",
               leave=False, disable=not progress_shown(progress), file=sys.stderr)
    sink = None
    try:
        if journal is not None and todo:
            new = not journal.exists() or journal.stat().st_size == 0
            sink = journal.open("a", encoding="utf-8")
            if new:
                sink.write(json.dumps({"study": fingerprint, "version": JOURNAL_VERSION,
                                       "metrics": study.metrics}) + "\n")
        start = time.perf_counter()
        with bar:
            for i, option, rep, values in parallel_map(
                    _run_one, todo, n_jobs, setup=_set_study, setup_args=(study,),
                    chunksize=max(1, min(8, len(todo) // (8 * max(n_jobs, 1))))):
                done[(i, option, rep)] = values
                if sink is not None:
                    sink.write(json.dumps([i, option, rep, values]) + "\n")
                    sink.flush()
                bar.update()
                bar.set_postfix_str(f"{bar.n / max(time.perf_counter() - start, 1e-9):.2f} runs/s",
                                    refresh=False)
    except OSError as err:
        raise OutputError(f"cannot write the study's journal {journal}: {err}") from None
    finally:
        if sink is not None:
            sink.close()
    rows = [(study.ids[i], option, rep, *done[(i, option, rep)]) for i, option, rep in tasks]
    return pd.DataFrame(rows, columns=["point", "option", "replication", *study.metrics])


def long_table(runs: pd.DataFrame, points: pd.DataFrame | None = None,
               metrics: Sequence[str] = STUDY_METRICS) -> pd.DataFrame:
    """The study as one tidy long table: point, the assumptions' values (draw units) when
    ``points`` (indexed by point) is given, option, replication, metric, value."""
    long = runs.melt(id_vars=["point", "option", "replication"], value_vars=list(metrics),
                     var_name="metric", value_name="value")
    # the options in the study's order (the baseline first), not alphabetical
    rank = {o: i for i, o in enumerate(dict.fromkeys(runs["option"]))}
    long = long.sort_values(["point", "option", "replication", "metric"], kind="stable",
                            key=lambda c: c.map(rank) if c.name == "option" else c)
    if points is not None and len(points.columns):
        long = long.merge(points, left_on="point", right_index=True, how="left")
        cols = ["point", *points.columns, "option", "replication", "metric", "value"]
        long = long[cols]
    return long.reset_index(drop=True)

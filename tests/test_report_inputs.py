"""``python -m sim.report`` on folders it cannot trust: every crafted folder stops with one
line ``error: ...`` naming the folder or file (and the field, and what was expected), exit
status 2, no traceback, no hang; nothing is read outside the folder and nothing written
outside it.

The regression cases of the hardening issue are here: a ``metrics.json`` of the wrong
shape, one that is a named pipe, one linked to ``/dev/zero``, ``"lots"`` as a number,
``replication_ids`` and ``per_replication`` of different lengths. Job folders are made by
hand (no simulation), so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sim
from sim import report
from sim.errors import EXIT_INPUT, InputError
from sim.report import COMPARISON_METRICS, ReportError, collect_blocks

SUBPROCESS_TIMEOUT_S = 60  # a hang (a named pipe read) fails the test instead of blocking


def metrics(replication: int, shift: float = 0.0) -> dict[str, float | None]:
    """One replication's metrics: every metric a comparison reads, plus a funnel one."""
    row: dict[str, float | None] = {k: 1.0 + replication + shift for k in COMPARISON_METRICS}
    row["conversion_rate"] = 0.1 + 0.01 * replication + shift / 100
    row["payback_days"] = None  # not paid back: written as null
    row["funnel.awareness.reached"] = 100 + replication
    return row


def document(name: str = "baseline", ids: tuple[int, ...] = (0, 1, 2), seed: int = 7,
             shift: float = 0.0) -> dict[str, Any]:
    """A job's metrics.json as a run writes it (the fields sim.report reads)."""
    return {"scenario": {"name": name, "description": f"the {name} scenario"},
            "seed": seed, "fingerprint": "0123456789abcdef", "replications": len(ids),
            "first_replication": ids[0], "replication_ids": list(ids),
            "horizon_days": 120.0, "annual_discount_rate": 0.1,
            "per_replication": [metrics(i, shift) for i in ids]}


def job(folder: Path, doc: Any = None, text: str | None = None) -> Path:
    """A Hydra job folder (``.hydra/``, a table) with ``doc`` (or ``text``) as its
    metrics.json; returns that file."""
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    (folder / "customers.csv").write_text("id\n0\n")
    path = folder / "metrics.json"
    path.write_text(json.dumps(document() if doc is None else doc) if text is None else text)
    return path


def sweep(folder: Path, *names: str) -> Path:
    """A multirun folder: one job per scenario, the baseline first."""
    for i, name in enumerate(names or ("baseline", "seo")):
        job(folder / str(i), document(name, shift=float(i)))
    return folder


def run_report(folder: Path, capsys: pytest.CaptureFixture[str], *args: str
               ) -> tuple[int, str, str]:
    code = report.main([str(folder), "--no-plots", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, err: str, *parts: str) -> None:
    """Exit 2, one line ``error: ...`` holding every part, no traceback."""
    assert code == EXIT_INPUT, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, (part, err)


def python_report(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "sim.report", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
                          check=False)


# ------------------------------------------------------------------ a sound folder
def test_a_sound_sweep_is_compared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep", "baseline", "seo", "guest_checkout")
    code, out, err = run_report(folder, capsys)
    assert code == 0, err
    assert re.search(r"^1 +(seo|guest_checkout) ", out, re.M), out  # the ranking's first row
    assert "seo" in out and "guest_checkout" in out
    names = {p.name for p in folder.iterdir() if p.is_file()}
    assert names == {"comparison.csv", "comparison.md", "finance.csv", "metrics.json",
                     "report.html"}
    doc = json.loads((folder / "metrics.json").read_text())
    assert set(doc["per_replication"]) == {"baseline", "seo", "guest_checkout"}
    # run a second time: the earlier comparison's own metrics.json is not read as a job
    code, _, err = run_report(folder, capsys)
    assert code == 0, err


def test_blocks_of_one_scenario_are_merged(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "blocks"
    job(folder / "b", document(ids=(2, 3)))
    job(folder / "a", document(ids=(0, 1)))
    code, out, err = run_report(folder, capsys)
    assert code == 0, err
    assert "replications 0..3 (4)" in out
    merged = json.loads((folder / "metrics.json").read_text())
    assert merged["replication_ids"] == [0, 1, 2, 3]
    assert [m["funnel.awareness.reached"] for m in merged["per_replication"]] == [
        100, 101, 102, 103]


# ------------------------------------------------------- a metrics.json of the wrong shape
def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


WRONG_SHAPES = [
    # (id, edit of a sound document, what the message must name)
    ("not-an-object", lambda d: [1, 2], "the document: expected a JSON object"),
    ("empty-object", lambda d: {}, "no 'scenario'"),
    ("no-per-replication", lambda d: {k: v for k, v in d.items() if k != "per_replication"},
     "no 'per_replication'"),
    ("scenario-text", lambda d: _set(d, ("scenario",), "baseline"),
     "scenario: expected an object with a name, got 'baseline'"),
    ("name-number", lambda d: _set(d, ("scenario", "name"), 5), "scenario.name: expected"),
    ("name-empty", lambda d: _set(d, ("scenario", "name"), ""), "scenario.name: expected"),
    ("name-escape-codes", lambda d: _set(d, ("scenario", "name"), "a\x1b[2Jb"),
     "scenario.name: expected a name of 1 to 200 printable characters"),
    ("name-newline", lambda d: _set(d, ("scenario", "name"), "a\nb"), "scenario.name"),
    ("description-list", lambda d: _set(d, ("scenario", "description"), ["x"]),
     "scenario.description: expected text, got a list of 1"),
    ("seed-text", lambda d: _set(d, ("seed",), "7"), "seed: expected a whole number >= 0, got '7'"),
    ("seed-bool", lambda d: _set(d, ("seed",), True), "seed: expected a whole number"),
    ("seed-negative", lambda d: _set(d, ("seed",), -1), "seed: expected"),
    ("fingerprint-number", lambda d: _set(d, ("fingerprint",), 12), "fingerprint: expected"),
    ("per-replication-object", lambda d: _set(d, ("per_replication",), {"npv": 1}),
     "per_replication: expected a list"),
    ("per-replication-empty", lambda d: _set(d, ("per_replication",), []),
     "per_replication: expected a list of one object of metrics per replication"),
    ("replication-number", lambda d: _set(d, ("per_replication", 1), 3.5),
     "per_replication[1]: expected an object of metric names and numbers, got 3.5"),
    # the probe: "could not convert string to float: 'lots'"
    ("lots", lambda d: _set(d, ("per_replication", 0, "purchases"), "lots"),
     "per_replication[0][\"purchases\"]: expected a finite number or null, got 'lots'"),
    ("value-list", lambda d: _set(d, ("per_replication", 2, "npv"), [1.0]),
     "per_replication[2][\"npv\"]: expected a finite number or null, got a list of 1"),
    ("value-bool", lambda d: _set(d, ("per_replication", 0, "cac"), False),
     "per_replication[0][\"cac\"]: expected a finite number or null, got False"),
    ("value-huge-int", lambda d: _set(d, ("per_replication", 0, "npv"), 10**400),
     "per_replication[0][\"npv\"]: expected a finite number or null"),
    ("value-overflowing", lambda d: _set(d, ("per_replication", 1, "npv"), -1e308),
     "per_replication[1][\"npv\"]: expected a number of magnitude at most 1e+100, got -1e+308"),
    ("metric-missing", lambda d: d["per_replication"][1].pop("npv") and d,
     "per_replication[1]: not the metrics of per_replication[0] (missing ['npv']"),
    # the probe: "zip() argument 2 is longer than argument 1"
    ("ids-shorter", lambda d: _set(d, ("replication_ids",), [0, 1]),
     "replication_ids: 2 ids for 3 replications in per_replication"),
    ("ids-text", lambda d: _set(d, ("replication_ids",), ["a", "b", "c"]),
     "replication_ids: expected a list of whole numbers >= 0"),
    ("ids-object", lambda d: _set(d, ("replication_ids",), {"0": 1}), "replication_ids: expected"),
    ("ids-repeated", lambda d: _set(d, ("replication_ids",), [0, 0, 1]),
     "replication_ids: an id appears twice"),
    ("count-wrong", lambda d: _set(d, ("replications",), 5),
     "replications: expected 3, the length of per_replication, got 5"),
    ("horizon-text", lambda d: _set(d, ("horizon_days",), "long"),
     "horizon_days: expected a finite number or null, got 'long'"),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in WRONG_SHAPES],
                         ids=[c[0] for c in WRONG_SHAPES])
def test_wrong_shape_names_the_file_and_the_field(tmp_path: Path, edit: Any, expected: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    bad = job(folder / "1", edit(document("seo")))
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"error: {bad}: ", expected)
    assert not (folder / "comparison.csv").exists()
    with pytest.raises(ReportError) as caught:
        collect_blocks(folder)
    assert isinstance(caught.value, InputError)  # one type for every input problem


BAD_TEXTS = [
    ("nan-literal", '{"scenario": {"name": "x"}, "seed": NaN}', "NaN is not a JSON value"),
    ("infinity", '{"per_replication": [{"npv": Infinity}]}', "Infinity is not a JSON value"),
    ("minus-infinity", '[-Infinity]', "-Infinity is not a JSON value"),
    ("truncated", '{"scenario": {"name": "x"', "not valid JSON (Expecting"),
    ("garbage", "metrics, but not JSON", "not valid JSON (Expecting value at line 1, column 1)"),
    ("empty", "", "empty file"),
    ("blank", "  \n\n", "empty file"),
    ("deep", "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    ("giant-integer", '{"seed": ' + "9" * 5000 + "}", "not valid JSON"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_TEXTS],
                         ids=[c[0] for c in BAD_TEXTS])
def test_bad_json_names_the_file(tmp_path: Path, text: str, expected: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    bad = job(folder / "1", text=text)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"error: {bad}: ", expected)


def test_not_utf8_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    bad = folder / "1" / "metrics.json"
    bad.write_bytes(b'{"scenario": {"name": "caf\xe9"}}')
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"error: {bad}: not UTF-8 text")


def test_byte_order_mark_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A metrics.json saved by an editor that adds a byte-order mark is still read."""
    folder = sweep(tmp_path / "sweep")
    path = folder / "1" / "metrics.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, _, err = run_report(folder, capsys)
    assert code == 0, err


def test_a_comparison_of_mismatched_scenarios_names_what_differs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    doc = document("seo")
    for row in doc["per_replication"]:
        del row["npv"]
    bad = job(folder / "1", doc)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"error: {bad}: per_replication[0]: no npv; a comparison needs")
    job(folder / "1", document("seo", ids=(0, 1)))
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, "scenario 'seo' and the baseline differ in seed or replications")


def test_rank_by_must_be_a_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    code, _, err = run_report(folder, capsys, "--rank-by", "bogus")
    assert_refused(code, err, "--rank-by 'bogus': not a metric of", "e.g. conversion_rate")
    code, out, err = run_report(folder, capsys, "--rank-by", "funnel.awareness.reached")
    assert code == 0, err
    assert "ranked by the difference in funnel.awareness.reached" in out


def test_blocks_that_disagree_name_both_files(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "blocks"
    a = job(folder / "a", document(ids=(0, 1)))
    b = job(folder / "b", document(ids=(1, 2)))
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{b}: replication 1 of scenario 'baseline' appears in two jobs "
                              f"(also in {a})")
    job(folder / "b", document(ids=(2, 3), seed=8))
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{b} and {a}: scenario 'baseline' with a different model or seed")
    doc = document(ids=(2, 3))
    for row in doc["per_replication"]:
        row["extra.metric"] = 1.0
    job(folder / "b", doc)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{b} and {a}: scenario 'baseline' with different metrics")


# ------------------------------------------------------------- files that are not files
@pytest.mark.slow
def test_named_pipe_does_not_hang(tmp_path: Path) -> None:
    """The issue's probe: a metrics.json that is a named pipe blocked the reader for ever."""
    folder = sweep(tmp_path / "sweep")
    pipe = folder / "1" / "metrics.json"
    pipe.unlink()
    os.mkfifo(pipe)
    start = time.monotonic()
    proc = python_report(tmp_path, "sweep", "--no-plots")
    assert time.monotonic() - start < SUBPROCESS_TIMEOUT_S
    assert proc.returncode == EXIT_INPUT, proc.stderr
    assert proc.stderr == f"error: {Path('sweep') / '1' / 'metrics.json'}: not a regular file " \
                          "(a folder, pipe or device); expected a metrics.json\n"


@pytest.mark.slow
def test_link_to_dev_zero_is_refused(tmp_path: Path) -> None:
    """The issue's probe: a metrics.json linked to /dev/zero ran out of memory. A link that
    leads outside the folder is refused before anything is read through it."""
    folder = sweep(tmp_path / "sweep")
    link = folder / "1" / "metrics.json"
    link.unlink()
    link.symlink_to("/dev/zero")
    proc = python_report(tmp_path, "sweep", "--no-plots")
    assert proc.returncode == EXIT_INPUT, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {Path('sweep') / '1' / 'metrics.json'}: a link to "
                                  "/dev/zero, outside sweep; sim.report reads nothing outside")


def test_a_device_is_not_read(tmp_path: Path) -> None:
    """Whatever leads to it, a device is refused without reading a byte."""
    with pytest.raises(ReportError, match=r"^/dev/zero: not a regular file"):
        report._read_document(Path("/dev/zero"), [report.MAX_TOTAL_BYTES])


def test_a_folder_named_metrics_json_is_not_read(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    path = folder / "1" / "metrics.json"
    path.unlink()
    (path / "x").mkdir(parents=True)
    code, _, err = run_report(folder, capsys)
    # a folder of that name is a folder: job 1 has no metrics.json file
    assert_refused(code, err, f"{folder / '1'}: incomplete (no metrics.json")


def test_total_size_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sweep(tmp_path / "sweep")
    size = (folder / "0" / "metrics.json").stat().st_size
    monkeypatch.setattr(report, "MAX_TOTAL_BYTES", size + 10)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{folder / '1' / 'metrics.json'}: the metrics.json files read so "
                              f"far hold more than {size + 10:,} bytes together")


# ----------------------------------------------------------------------- the folder
def test_folder_missing_or_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_report(tmp_path / "nowhere", capsys)
    assert_refused(code, err, f"error: {tmp_path / 'nowhere'}: no such folder")
    (tmp_path / "file").write_text("x")
    code, _, err = run_report(tmp_path / "file", capsys)
    assert_refused(code, err, f"error: {tmp_path / 'file'}: not a folder")
    (tmp_path / "empty").mkdir()
    code, _, err = run_report(tmp_path / "empty", capsys)
    assert_refused(code, err, f"no job's metrics.json under {tmp_path / 'empty'}")


def test_a_single_runs_folder_is_not_a_multirun(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Given one run's own (finished) folder, nothing is merged into it: only its
    report.html is written; an unfinished one is refused with what to give instead."""
    job(tmp_path / "run")
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    code, out, err = run_report(tmp_path / "run", capsys)
    assert code == 0 and out == f"wrote report.html to {tmp_path / 'run'}\n", err
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before
    (tmp_path / "run" / "metrics.json").unlink()
    code, _, err = run_report(tmp_path / "run", capsys)
    assert_refused(code, err, "no job's metrics.json under", "give the folder that holds")


def test_links_leading_outside_are_refused(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside"
    job(outside / "job", document("seo"))
    folder = tmp_path / "sweep"
    job(folder / "0")
    (folder / "1").symlink_to(outside / "job")  # a job folder elsewhere
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{folder / '1'}: a link to {outside / 'job'}, outside {folder}")
    (folder / "1").unlink()
    (folder / "1").mkdir()
    (folder / "1" / "metrics.json").symlink_to(outside / "job" / "metrics.json")
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{folder / '1' / 'metrics.json'}: a link to "
                              f"{outside / 'job' / 'metrics.json'}, outside {folder}")


def test_links_inside_are_not_walked_twice_and_loops_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    (folder / "again").symlink_to(folder / "1")  # would count job 1 twice
    (folder / "1" / "loop").symlink_to(folder)  # would never end
    (folder / "elsewhere.csv").symlink_to("/etc/hostname")  # not read: harmless
    code, _, err = run_report(folder, capsys)
    assert code == 0, err


def test_thousands_of_files_and_blocks(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """1,500 blocks of one replication and 3,000 other files: merged in seconds."""
    folder = tmp_path / "blocks"
    for i in range(1500):
        job(folder / f"{i:04d}", document(ids=(i,)))
    junk = folder / "junk"
    junk.mkdir()
    for i in range(3000):
        (junk / f"{i}.txt").touch()
    start = time.monotonic()
    code, out, err = run_report(folder, capsys)
    assert code == 0, err
    assert "replications 0..1499 (1500)" in out
    assert time.monotonic() - start < 30


def test_too_many_files_or_too_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = sweep(tmp_path / "sweep")
    for i in range(50):
        (folder / f"{i}.txt").touch()
    monkeypatch.setattr(report, "MAX_ENTRIES", 40)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{folder}: more than 40 files and folders")
    monkeypatch.undo()
    deep = folder / "/".join(["d"] * (report.MAX_DEPTH + 2))
    deep.mkdir(parents=True)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"more than {report.MAX_DEPTH} folders deep under {folder}")


# ------------------------------------------------------------------ unfinished jobs
def test_a_job_stopped_before_it_finished_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Hydra job folder with outputs but no metrics.json (written last) was stopped: the
    report refuses instead of silently merging fewer blocks."""
    folder = sweep(tmp_path / "sweep", "baseline", "seo", "guest_checkout")
    (folder / "2" / "metrics.json").unlink()
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"error: {folder / '2'}: incomplete (no metrics.json: the job "
                              "was stopped before it finished); rerun it or remove the folder")
    assert not (folder / "comparison.csv").exists()
    (folder / "1" / "metrics.json").unlink()
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{folder / '1'}: incomplete", "(and 1 more)")


def test_a_job_stopped_while_writing_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A temporary file of an interrupted write beside a metrics.json (as an older version,
    which wrote metrics.json first, left a killed run)."""
    folder = sweep(tmp_path / "sweep")
    (folder / "1" / ".daily.csv.k2j4_x9q.tmp").write_text("day,")
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, f"{folder / '1'}: incomplete (.daily.csv.k2j4_x9q.tmp left: the "
                              "job was stopped while writing)")


def test_folders_that_are_not_jobs_are_ignored(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "sweep")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("compare more")
    (folder / "multirun.yaml").write_text("hydra: {}\n")
    code, _, err = run_report(folder, capsys)
    assert code == 0, err


# ------------------------------------------------------------ writing only inside
def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_writes_only_fixed_names_into_the_folder(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Scenario names read from a metrics.json are shown, never used in a path."""
    folder = tmp_path / "a" / "sweep"
    job(folder / "0")
    job(folder / "1", document("../../../escaped", shift=1.0))
    job(folder / "2", document(str(tmp_path / "outside"), shift=2.0))  # an absolute name
    before = files_under(tmp_path)
    code, out, err = run_report(folder, capsys)
    assert code == 0, err
    assert "../../../escaped" in out
    new = files_under(tmp_path) - before
    assert {p.parent for p in new} == {folder}
    assert {p.name for p in new} == {"comparison.csv", "comparison.md", "finance.csv",
                                     "metrics.json", "report.html"}


def test_command_line_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    folder = sweep(tmp_path / "sweep")
    job(folder / "1", text='{"scenario": {"name": "seo"}, "seed": 1, "per_replication": '
                          '[{"npv": "lots"}]}')
    proc = python_report(tmp_path, "sweep")
    assert proc.returncode == EXIT_INPUT
    assert proc.stdout == ""
    assert proc.stderr == (f"error: {Path('sweep') / '1' / 'metrics.json'}: "
                           "per_replication[0][\"npv\"]: expected a finite number or null, "
                           "got 'lots'\n")

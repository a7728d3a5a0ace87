"""Crash safety of everything the tool writes.

- A folder of outputs is finished or visibly not: ``metrics.json`` is written last, an
  earlier one is removed first, temporary files an interrupted run left are removed by the
  next run into the folder (``sim.io.begin_outputs``, ``finish_outputs``, ``is_complete``).
- A file is written whole or not at all, with the mode a plain write gives (the umask's).
- A full disk or a refused write is one ``OutputError`` naming the file (and the free
  space), never a traceback, and leaves the old file as it was.
- Ctrl-C with worker processes stops them at once, without tracebacks of theirs.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from sim import io as sim_io
from sim import report
from sim.errors import EXIT_OUTPUT, OutputError
from sim.measure.stats import compare
from sim.present.text import write_comparison
from sim.report import COMPARISON_METRICS, write_merged

TINY = ["run=smoke", "market.size=300", "run.horizon_days=60"]
RUN_TABLES = {"customers.csv", "metrics.csv", "daily.csv", "purchases.csv", "tickets.csv",
              "finance.csv", "ltv.csv", "cohorts.csv", "payback.csv", "pnl.csv", "flows.csv"}
RUN_FIGURES = {f"{n}.png" for n in ("funnel", "retention", "ltv", "activity", "experience",
                                    "cohorts", "payback", "flows")}


def env_with_sim() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="module")
def tiny_run() -> sim.Run:
    return sim.run(overrides=TINY)


@pytest.fixture
def write_order(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the files ``atomic_write`` renames into place, in order."""
    order: list[str] = []
    real = sim_io.atomic_write

    def recording(path: Path, write: Any, mode: str = "w") -> Path:
        out = real(path, write, mode)
        order.append(Path(path).name)
        return out

    monkeypatch.setattr(sim_io, "atomic_write", recording)
    yield order


def synthetic(shift: float) -> list[dict[str, float]]:
    return [{k: 1.0 + i + shift * (k == "npv") for k in COMPARISON_METRICS} for i in range(3)]


# ------------------------------------------------------------- metrics.json comes last
def test_run_writes_metrics_json_last(tiny_run: sim.Run, tmp_path: Path,
                                      write_order: list[str]) -> None:
    written = tiny_run.write(tmp_path / "out")
    # metrics.json last of the outputs; report.html, the page showing them, after it
    assert write_order[-2:] == ["metrics.json", "report.html"]
    assert set(write_order[:-2]) == RUN_TABLES | RUN_FIGURES  # the figures too, before it
    assert [p.name for p in written] == write_order
    assert sim_io.is_complete(tmp_path / "out")


def test_comparison_and_merge_write_metrics_json_last(tmp_path: Path,
                                                      write_order: list[str]) -> None:
    base, other = synthetic(0.0), synthetic(5.0)
    table = compare(base, {"seo": other})
    written = write_comparison(table, {"baseline": base, "seo": other},
                               {"baseline": "", "seo": ""}, "npv", tmp_path / "cmp", plots=True)
    assert write_order[-2:] == ["metrics.json", "report.html"]
    assert "comparison.png" in write_order
    assert [p.name for p in written] == write_order
    write_order.clear()
    block = {"doc": {"scenario": {"name": "baseline"}, "seed": 1}, "ids": [0, 1, 2],
             "per_replication": base}
    _, written = write_merged(block, tmp_path / "merged")
    assert write_order == ["metrics.csv", "metrics.json", "report.html"] == [
        p.name for p in written]


def test_a_write_stopped_half_way_leaves_a_visibly_unfinished_folder(
        tiny_run: sim.Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the figures are saved, after a finished run into the same folder: the
    old metrics.json is gone, no temporary file is left, and sim.report refuses the job."""
    folder = tmp_path / "sweep" / "0"
    tiny_run.write(folder, plots=False)
    assert sim_io.is_complete(folder)
    real = sim_io.save_figure

    def interrupted(fig: Any, path: Path, dpi: int = 120) -> Path:
        if Path(path).name == "experience.png":
            raise KeyboardInterrupt
        return real(fig, path, dpi)

    monkeypatch.setattr(sim_io, "save_figure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tiny_run.write(folder)
    assert not (folder / "metrics.json").exists()
    assert not sim_io.is_complete(folder)
    assert (folder / "funnel.png").exists() and not (folder / "experience.png").exists()
    assert sim_io.stale_temp_files(folder) == []
    with pytest.raises(report.ReportError, match=r"0: incomplete \(no metrics\.json"):
        report.collect_blocks(folder.parent)


def test_the_next_run_removes_stale_temporary_files(tiny_run: sim.Run, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    stale = [folder / ".customers.csv.a1b2c3d4.tmp", folder / ".metrics.json.zz_09xyq.tmp"]
    for p in stale:
        p.write_text("half a fi")
    keep = [folder / ".keep", folder / ".notes.tmp", folder / "x.csv.a1b2c3d4.tmp"]
    for p in keep:
        p.write_text("not ours")
    (folder / ".hydra").mkdir()
    (folder / "metrics.json").write_text("{}")
    assert not sim_io.is_complete(folder)  # a temporary file of an interrupted write
    tiny_run.write(folder, plots=False)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep) and (folder / ".hydra").is_dir()
    assert json.loads((folder / "metrics.json").read_text())["per_replication"]
    assert sim_io.is_complete(folder)


def test_begin_outputs_unmarks_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    sim_io.write_text("a", folder / "a.csv")
    sim_io.finish_outputs({"x": 1}, folder)
    assert sim_io.is_complete(folder)
    (folder / ".a.csv.abcdefgh.tmp").write_text("")
    assert sim_io.begin_outputs(folder) == [folder / ".a.csv.abcdefgh.tmp"]
    assert not sim_io.is_complete(folder) and not (folder / "metrics.json").exists()
    assert (folder / "a.csv").read_text() == "a"  # other outputs stay until overwritten
    (folder / "metrics.json").mkdir()
    with pytest.raises(OutputError, match=r"metrics\.json: is a folder"):
        sim_io.begin_outputs(folder)


def test_killed_while_writing(tmp_path: Path) -> None:
    """kill -9 in the middle of a file: the temporary file stays, the folder reads as
    unfinished, and the next writer into it cleans up."""
    folder = tmp_path / "out"
    code = ("import sys, time\nfrom pathlib import Path\nfrom sim import io\n"
            "folder = Path(sys.argv[1])\nio.begin_outputs(folder)\n"
            "io.write_text('a,b\\n', folder / 'a.csv')\n"
            "def slow(f):\n    f.write('x' * 1000)\n    f.flush()\n"
            "    print('writing', flush=True)\n    time.sleep(60)\n"
            "io.atomic_write(folder / 'customers.csv', slow)\n"
            "io.finish_outputs({}, folder)\n")
    (tmp_path / "old").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], env=env_with_sim(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not (folder / "customers.csv").exists() and not (folder / "metrics.json").exists()
    assert [p.name[:15] for p in sim_io.stale_temp_files(folder)] == [".customers.csv."]
    assert not sim_io.is_complete(folder)
    sim_io.begin_outputs(folder)
    assert sim_io.stale_temp_files(folder) == []


# --------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_get_the_umasks_mode(tmp_path: Path, umask: int) -> None:
    """Not the 0600 of a temporary file: what ``open(path, "w")`` would give."""
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w") as f:
            f.write("x")
        text = sim_io.write_text("x", tmp_path / "a.txt")
        binary = sim_io.atomic_write(tmp_path / "b.bin", lambda f: f.write(b"x"), mode="wb")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert (tmp_path / "plain").stat().st_mode & 0o777 == expected
    assert text.stat().st_mode & 0o777 == expected
    assert binary.stat().st_mode & 0o777 == expected


def test_umask_read_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc does not show it, the umask is read once (set and restored)."""
    def no_proc(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOENT, "no /proc here")

    monkeypatch.setattr(sim_io, "open", no_proc, raising=False)
    monkeypatch.setattr(sim_io, "_umask_cached", None)
    old = os.umask(0o027)
    try:
        path = sim_io.write_text("x", tmp_path / "a.txt")
        assert os.umask(0o027) == 0o027  # left as it was
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------- full disk, refused writes
def no_space(f: Any) -> None:
    f.write("some")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_is_one_line_and_the_old_file_stays(tmp_path: Path) -> None:
    path = sim_io.write_text("old content", tmp_path / "table.csv")
    with pytest.raises(OutputError) as caught:
        sim_io.atomic_write(path, no_space)
    message = str(caught.value)
    assert message.startswith(f"{path}: could not be written: no space left on device (")
    assert f"free on the file system of {tmp_path})" in message and "\n" not in message
    assert caught.value.errno == errno.ENOSPC
    assert path.read_text() == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]  # no temporary file


@pytest.mark.parametrize(("err", "reason"), [
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded ("),
])
def test_refused_writes_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      err: OSError, reason: str) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise err

    monkeypatch.setattr(sim_io.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError) as caught:
        sim_io.write_text("x", tmp_path / "x.csv")
    assert str(caught.value).startswith(f"{tmp_path / 'x.csv'}: could not be written: {reason}")
    assert caught.value.errno == err.errno


def test_full_disk_during_a_run_write(tiny_run: sim.Run, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def to_csv(table: Any, f: Any, float_format: str = "%.6g") -> None:
        no_space(f)

    monkeypatch.setattr(sim_io, "to_csv", to_csv)
    with pytest.raises(OutputError, match=r"customers\.csv: could not be written: no space"):
        tiny_run.write(tmp_path / "out", plots=False)
    assert not sim_io.is_complete(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_report_on_a_full_disk_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for i, name in enumerate(("baseline", "seo")):
        doc = {"scenario": {"name": name}, "seed": 1, "per_replication": synthetic(i)}
        (tmp_path / str(i) / ".hydra").mkdir(parents=True)
        (tmp_path / str(i) / "metrics.json").write_text(json.dumps(doc))

    def to_csv(table: Any, f: Any, float_format: str = "%.6g") -> None:
        no_space(f)

    monkeypatch.setattr(sim_io, "to_csv", to_csv)
    assert report.main([str(tmp_path), "--no-plots"]) == EXIT_OUTPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'comparison.csv'}: could not be written: no "
                          "space left on device") and err.count("\n") == 1
    assert not (tmp_path / "metrics.json").exists()


# -------------------------------------------------------------------------- Ctrl-C
def children(pid: int) -> set[int]:
    kids: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            kids |= {int(x) for x in f.read().split()}
    return kids


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# a run whose replications take several seconds each (the old pool waited for them)
# Ctrl-C as a terminal delivers it. A command started in the background by a shell without
# job control (a CI runner's `cmd &`) inherits SIGINT ignored, and Python then installs no
# KeyboardInterrupt handler at all; the run restores the default first, as an interactive
# `python -m sim` has it
SLOW_RUN = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "import sim; sim.run(overrides=['run=smoke', 'run.n_jobs=2', "
            "'run.replications=6', 'market.size=250000', 'run.memory_guard=false', "
            "'run.work_guard=false', 'run.progress=false'])")
STOP_WITHIN_S = 2.5  # measured 0.3-0.5 s; the pool it replaces took 3 to 8 s


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("group", [False, True], ids=["parent", "process-group"])
def test_ctrl_c_stops_the_workers_at_once(tmp_path: Path, group: bool) -> None:
    """SIGINT to the parent (or, as a terminal does, to the whole process group) while two
    workers run: it ends within a second or two, no worker is left, and no worker prints a
    traceback (the parent's own KeyboardInterrupt is the command line's to report)."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN], cwd=tmp_path, env=env_with_sim(),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = {k for k in children(proc.pid) if running(k)}
            time.sleep(0.05)
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)  # inside a replication
        start = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert elapsed < STOP_WITHIN_S, f"took {elapsed:.1f} s to stop"
    assert not [w for w in workers if running(w)], "worker processes left"
    assert err.count("Traceback") <= 1, err
    assert "_process_worker" not in err and "BrokenProcessPool" not in err, err
    assert err.rstrip().endswith("KeyboardInterrupt"), err

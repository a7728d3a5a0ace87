"""Running big: replication blocks, Hydra launchers, the progress bar and the memory guard.

CLI runs are subprocesses in a temporary directory (see ``tests/test_cli.py``), so nothing
is written into the repository. Each starts an interpreter and Hydra (seconds), so these
end-to-end tests are slow; the default run merges blocks in process (test_report_sweep,
test_report_inputs), runs a block from Python and checks the memory guard there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.api import MemoryGuardError, check_memory
from sim.measure import experiment
from sim.model.config import compose_config
from sim.model.spec import SpecError, build_spec

TIMEOUT_S = 600
QUIET = ("run=smoke", "run.summary=false", "run.plots=false")


def python(cwd: Path, *args: str, env_extra: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


def metrics(path: Path) -> dict[str, Any]:
    return json.loads((path / "metrics.json").read_text())


# -------------------------------------------------------------- replication blocks
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["fast", "agent"])
def test_blocks_merge_to_the_one_job_result(tmp_path: Path, engine: str) -> None:
    """Replications 0-1 and 2-4 as two jobs, merged by sim.report = 0-4 in one job."""
    one = python(tmp_path, "-m", "sim", *QUIET, f"run.engine={engine}", "run.replications=5",
                 "hydra.run.dir=one")
    assert one.returncode == 0, one.stderr
    blocks = [python(tmp_path, "-m", "sim", *QUIET, f"run.engine={engine}",
                     f"run.replications={n}", f"run.first_replication={first}",
                     f"hydra.run.dir=blocks/{first}")
              for first, n in ((2, 3), (0, 2))]
    assert all(b.returncode == 0 for b in blocks), [b.stderr for b in blocks]
    merge = python(tmp_path, "-m", "sim.report", "blocks")
    assert merge.returncode == 0, merge.stderr
    merged, whole = metrics(tmp_path / "blocks"), metrics(tmp_path / "one")
    assert merged["replication_ids"] == whole["replication_ids"] == [0, 1, 2, 3, 4]
    assert merged["per_replication"] == whole["per_replication"]
    assert merged["metrics"] == whole["metrics"]  # estimates and CIs, bit for bit
    assert "replications 0..4" in merge.stdout


@pytest.mark.slow
def test_blocks_that_overlap_or_differ_are_refused(tmp_path: Path) -> None:
    for name, extra in (("a", ["run.first_replication=0"]), ("b", ["run.first_replication=1"]),
                        ("c", ["run.first_replication=5", "checkout.steps=2"])):
        proc = python(tmp_path, "-m", "sim", *QUIET, "run.engine=fast", "run.replications=2",
                      *extra, f"hydra.run.dir=x/{name}")
        assert proc.returncode == 0, proc.stderr
    overlap = python(tmp_path, "-m", "sim.report", "x")
    assert overlap.returncode == 2
    assert "appears in two jobs" in overlap.stderr or "different model" in overlap.stderr
    assert "Traceback" not in overlap.stderr
    shutil.rmtree(tmp_path / "x" / "b")  # (a folder without metrics.json is refused as unfinished)
    differ = python(tmp_path, "-m", "sim.report", "x")
    assert differ.returncode == 2 and "different model or seed" in differ.stderr


def test_fingerprint_ignores_execution_settings_only() -> None:
    spec = build_spec(compose_config(["run=smoke"]))
    same = build_spec(compose_config(["run=smoke", "run.first_replication=7", "run.n_jobs=2",
                                      "run.replications=3", "run.progress=false"]))
    assert spec.fingerprint() == same.fingerprint()
    for change in ("run.seed=1", "checkout.steps=2", "run.engine=fast", "run.tick_days=2"):
        assert build_spec(compose_config(["run=smoke", change])).fingerprint() != \
            spec.fingerprint(), change


@pytest.mark.slow
def test_fingerprint_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Blocks run in separate processes (cluster jobs): string hashing must not leak in."""
    code = ("from sim.model.config import compose_config; from sim.model.spec import build_spec; "
            "print(build_spec(compose_config(['run=smoke'])).fingerprint())")
    prints = {python(tmp_path, "-c", code, env_extra={"PYTHONHASHSEED": str(h)}).stdout
              for h in (1, 2, 3)}
    assert len(prints) == 1 and len(prints.pop().strip()) == 16


def test_first_replication_is_validated() -> None:
    with pytest.raises(SpecError, match=r"run\.first_replication"):
        build_spec(compose_config(["run=smoke", "run.first_replication=-1"]))


def test_api_runs_the_block(tmp_path: Path) -> None:
    run = sim.run(overrides=["run=smoke", "run.engine=fast", "run.first_replication=3",
                             "run.replications=2"])
    assert [r.replication for r in run.experiment.results] == [3, 4]


# ------------------------------------------------------------------- launchers
@pytest.mark.slow
def test_joblib_launcher_sweep_and_report(tmp_path: Path) -> None:
    """Local cores through Hydra's joblib launcher: same numbers as jobs run one by one."""
    sweep = python(tmp_path, "-m", "sim", "-m", "hydra/launcher=joblib",
                   "hydra.launcher.n_jobs=2", *QUIET, "run.engine=fast",
                   "scenario=baseline,guest_checkout", "hydra.sweep.dir=sweep")
    assert sweep.returncode == 0, sweep.stderr
    report = python(tmp_path, "-m", "sim.report", "sweep", "--no-plots")
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "sweep" / "comparison.csv").exists()
    alone = python(tmp_path, "-m", "sim", *QUIET, "run.engine=fast", "scenario=guest_checkout",
                   "hydra.run.dir=alone")
    assert alone.returncode == 0, alone.stderr
    jobs = {metrics(p.parent)["scenario"]["name"]: metrics(p.parent)
            for p in (tmp_path / "sweep").glob("*/metrics.json")}
    assert jobs["guest_checkout"]["per_replication"] == \
        metrics(tmp_path / "alone")["per_replication"]


@pytest.mark.slow
def test_launcher_presets_compose(tmp_path: Path) -> None:
    for preset, key in (("cores", "n_jobs: -1"), ("slurm", "timeout_min: 120")):
        proc = python(tmp_path, "-m", "sim", f"hydra/launcher={preset}", "--cfg", "hydra")
        assert proc.returncode == 0, proc.stderr
        assert key in proc.stdout


@pytest.mark.slow
def test_submitit_local_blocks(tmp_path: Path) -> None:
    """The SLURM code path (hydra-submitit-launcher), run locally: blocks as array jobs."""
    sweep = python(tmp_path, "-m", "sim", "-m", "hydra/launcher=submitit_local", *QUIET,
                   "run.engine=fast", "run.replications=2", "run.first_replication=0,2",
                   "hydra.sweep.dir=sweep")
    assert sweep.returncode == 0, sweep.stderr
    one = python(tmp_path, "-m", "sim", *QUIET, "run.engine=fast", "run.replications=4",
                 "hydra.run.dir=one")
    assert one.returncode == 0, one.stderr
    merge = python(tmp_path, "-m", "sim.report", "sweep")
    assert merge.returncode == 0, merge.stderr
    assert metrics(tmp_path / "sweep")["metrics"] == metrics(tmp_path / "one")["metrics"]


# ------------------------------------------------------------------- progress
def test_progress_only_for_a_person_watching(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = build_spec(compose_config(["run=smoke"]))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert experiment.progress_shown(spec.progress)
    monkeypatch.setenv("CI", "true")
    assert not experiment.progress_shown(spec.progress)
    monkeypatch.delenv("CI")
    quiet = build_spec(compose_config(["run=smoke", "run.progress=false"]))
    assert not experiment.progress_shown(quiet.progress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not experiment.progress_shown(spec.progress)


def test_progress_bar_counts_replications_and_customers(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(experiment, "progress_shown", lambda wanted: True)
    spec = build_spec(compose_config(["run=smoke", "run.engine=fast"]))
    experiment.run_experiment(spec)
    err = capsys.readouterr().err
    assert "2/2" in err and "customers/s" in err


@pytest.mark.slow
def test_cli_is_quiet_when_piped(tmp_path: Path) -> None:
    proc = python(tmp_path, "-m", "sim", *QUIET, "run.engine=fast", "hydra.run.dir=out",
                  env_extra={"CI": ""})
    assert proc.returncode == 0, proc.stderr
    assert "customers/s" not in proc.stderr and "rep/s" not in proc.stderr


# ---------------------------------------------------------------- memory guard
def test_memory_guard_refuses_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from sim import io

    monkeypatch.setattr(io, "available_memory_bytes", lambda: 2_000_000_000)
    spec = build_spec(compose_config(["run.engine=agent", "market.size=5000000"]))
    with pytest.raises(MemoryGuardError) as err:
        check_memory(spec)
    text = str(err.value)
    need = experiment.estimated_memory_bytes(spec) / 1e9
    assert "market.size" in text and f"{need:.1f} GB" in text and "2.0 GB is available" in text
    assert "run.engine=fast" in text and "run.first_replication" in text
    check_memory(build_spec(compose_config(["market.size=5000000", "run.memory_guard=false"])))
    check_memory(build_spec(compose_config(["run=smoke"])))  # a small run passes


def test_memory_estimate_grows_with_size_workers_and_replications() -> None:
    base = build_spec(compose_config(["run.engine=fast", "market.size=100000"]))
    est = experiment.estimated_memory_bytes
    bigger = build_spec(compose_config(["run.engine=fast", "market.size=1000000"]))
    workers = build_spec(compose_config(["run.engine=fast", "market.size=100000",
                                         "run.n_jobs=2"]))
    agent = build_spec(compose_config(["run.engine=agent", "market.size=100000"]))
    assert est(bigger) > est(base) and est(workers) > est(base) and est(agent) > est(base)
    assert est(base, 20) > est(base, 10)


@pytest.mark.slow
def test_cli_memory_guard_exit_2_writes_nothing(tmp_path: Path) -> None:
    proc = python(tmp_path, "-m", "sim", "market.size=2000000000", "run.engine=fast",
                  "hydra.run.dir=out")
    assert proc.returncode == 2
    assert "GB is available" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()

"""``python -m sim.report`` on a sweep over parameters (``python -m sim -m key=a,b,c``):
``sweep.csv``, ``sweep_replications.csv`` and ``sweep.png``, the parameter values read from
each job's ``.hydra/overrides.yaml`` as untrusted input.

Job folders are made by hand (a ``metrics.json`` and Hydra's ``.hydra/overrides.yaml``, no
simulation), so most tests take well under a second; one runs a small multirun end to end
through the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_report_inputs import assert_refused  # one line, exit 2, no traceback

import sim
from sim import report
from sim.errors import EXIT_INPUT
from sim.measure.metrics import metric_range
from sim.measure.stats import HEADLINE, estimate
from sim.report import COMPARISON_METRICS, SWEEP_METRICS, ReportError, collect_sweep

PARAM = "channels.paid_ads.spend_per_day"
SMALL = ["run=smoke", "market.size=500", "run.replications=2", "run.plots=false"]
TIMEOUT_S = 300


# ------------------------------------------------------------------------- helpers
def metrics(replication: int, shift: float) -> dict[str, float | None]:
    """One replication's metrics: every metric a sweep reads, different per replication
    and per job (``shift``), and one that has no value."""
    row: dict[str, float | None] = {k: 10.0 + 3 * replication ** 2 + shift
                                    for k in COMPARISON_METRICS}
    row["conversion_rate"] = 0.05 + 0.01 * replication + shift / 1000
    row["paid_back"] = float(replication % 2)
    row["payback_days"] = None
    row["npv"] = -1000.0 + 7 * replication ** 2 + 11 * shift
    return row


def document(shift: float, name: str = "baseline", ids: tuple[int, ...] = (0, 1, 2)
             ) -> dict[str, Any]:
    """A job's metrics.json as a run writes it (the fields sim.report reads); the model's
    fingerprint differs with ``shift`` as it does with a parameter."""
    return {"scenario": {"name": name, "description": f"the {name} scenario"},
            "seed": 7, "fingerprint": f"{hash((shift, name)) & 0xFFFFFFFF:016x}",
            "replications": len(ids), "first_replication": ids[0],
            "replication_ids": list(ids), "horizon_days": 120.0,
            "annual_discount_rate": 0.1, "per_replication": [metrics(i, shift) for i in ids]}


def job(folder: Path, overrides: list[str] | None, doc: dict[str, Any] | None,
        overrides_text: str | None = None) -> Path:
    """A Hydra job folder: ``.hydra/overrides.yaml`` (``overrides`` as Hydra writes them,
    or ``overrides_text``), a table and ``doc`` as its metrics.json (None: unfinished)."""
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    if overrides_text is not None:
        (folder / ".hydra" / "overrides.yaml").write_text(overrides_text)
    elif overrides is not None:
        (folder / ".hydra" / "overrides.yaml").write_text(
            "".join(f"- {o}\n" for o in overrides))
    (folder / "customers.csv").write_text("id\n0\n")
    if doc is not None:
        (folder / "metrics.json").write_text(json.dumps(doc))
    return folder


def sweep(folder: Path, values: list[Any], key: str = PARAM, **kwargs: Any) -> Path:
    """A multirun over ``key``: job i runs ``values[i]`` (Hydra's job numbering)."""
    for i, v in enumerate(values):
        job(folder / f"{i}_{key}={v}", [f"{key}={v}", "run=smoke", "run.plots=False"],
            document(float(v), **kwargs))
    return folder


def run_report(folder: Path, capsys: pytest.CaptureFixture[str], *args: str
               ) -> tuple[int, str, str]:
    code = report.main([str(folder), *args])
    out, err = capsys.readouterr()
    return code, out, err


def expected_rows(doc: dict[str, Any]) -> dict[str, Any]:
    """A job's sweep.csv rows recomputed from its metrics.json with ``estimate``."""
    out = {}
    for metric in SWEEP_METRICS:
        values = np.array([np.nan if m[metric] is None else m[metric]
                           for m in doc["per_replication"]], dtype=float)
        out[metric] = estimate(values, 0.95, metric_range(metric))
    return out


# ------------------------------------------------------------------ the tables
def test_sweep_table_equals_each_jobs_estimates(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    values = [100, 25, 50, 0]  # the jobs' folders in an order that is not the values'
    folder = sweep(tmp_path / "ads", values)
    code, out, err = run_report(folder, capsys, "--no-plots")
    assert code == 0, err
    assert {p.name for p in folder.iterdir() if p.is_file()} == {
        "sweep.csv", "sweep_replications.csv", "metrics.json", "report.html"}
    table = pd.read_csv(folder / "sweep.csv")
    assert list(table.columns) == [PARAM, "scenario", "metric", "mean", "low", "high",
                                   "half_width", "n"]
    assert len(table) == len(values) * len(SWEEP_METRICS)
    assert set(HEADLINE) <= set(table["metric"]) and set(table["metric"]) == set(
        COMPARISON_METRICS)
    assert (table["scenario"] == "baseline").all()
    for v in values:
        want = expected_rows(document(float(v)))
        rows = table[table[PARAM] == v].set_index("metric")
        assert len(rows) == len(SWEEP_METRICS)
        for metric, e in want.items():
            row = rows.loc[metric]
            assert row["n"] == e.n, metric
            for column in ("mean", "low", "high", "half_width"):
                expected = getattr(e, column)
                if np.isnan(expected):
                    assert np.isnan(row[column]), (v, metric, column)
                else:
                    assert row[column] == pytest.approx(expected, rel=1e-9, abs=1e-12), (
                        v, metric, column)
    reps = pd.read_csv(folder / "sweep_replications.csv")
    assert list(reps.columns) == [PARAM, "scenario", "replication", "metric", "value"]
    assert len(reps) == len(values) * 3 * len(SWEEP_METRICS)
    for v in values:
        doc = document(float(v))
        for i, m in zip(doc["replication_ids"], doc["per_replication"], strict=True):
            got = reps[(reps[PARAM] == v) & (reps["replication"] == i)].set_index("metric")
            for metric in SWEEP_METRICS:
                if m[metric] is None:
                    assert np.isnan(got.loc[metric, "value"])
                else:
                    assert got.loc[metric, "value"] == pytest.approx(m[metric], rel=1e-9)
    # the console: a line per job with its NPV and interval, the caveat, what was written
    npv = expected_rows(document(0.0))["npv"]
    assert f"  {PARAM}=0: npv {npv.mean:,.6g} [{npv.low:,.6g}, {npv.high:,.6g}]" in out
    assert sum(line.startswith(f"  {PARAM}=") for line in out.splitlines()) == 4
    assert "simulation noise only" in out
    assert out.rstrip().endswith(f"to {folder}")
    doc = json.loads((folder / "metrics.json").read_text())
    assert doc["sweep"] == [PARAM]
    assert [j["parameters"][PARAM] for j in doc["jobs"]] == [0, 25, 50, 100]
    # a second report reads the jobs again, not its own files
    code, _, err = run_report(folder, capsys, "--no-plots")
    assert code == 0, err


@pytest.mark.parametrize(("values", "expected"), [
    ([100, 25, 50, 0, 5], [0, 5, 25, 50, 100]),
    (["10", "2.5", "0.5"], [0.5, 2.5, 10.0]),
    (["1e3", "-2", "3"], [-2.0, 3.0, 1000.0]),
])
def test_numbers_are_ordered_and_typed_as_numbers(tmp_path: Path, values: list[Any],
                                                  expected: list[float]) -> None:
    folder = sweep(tmp_path / "s", values)
    found = collect_sweep(folder)
    assert found is not None and found.parameters == [PARAM]
    assert [p["values"][PARAM] for p in found.points] == expected
    assert report.main([str(folder), "--no-plots"]) == 0
    column = pd.read_csv(folder / "sweep.csv")[PARAM]
    assert column.dtype.kind in "if"
    assert list(dict.fromkeys(column)) == expected


def test_text_and_flags_are_kept_as_such(tmp_path: Path) -> None:
    key = "checkout.hidden_fees"
    folder = tmp_path / "fees"
    for i, v in enumerate(["True", "False"]):  # as Hydra writes a flag
        job(folder / str(i), [f"{key}={v}"], document(float(i)))
    assert report.main([str(folder), "--no-plots"]) == 0
    table = pd.read_csv(folder / "sweep.csv")
    assert list(dict.fromkeys(table[key])) == [False, True]
    key = "journey"
    folder = tmp_path / "journeys"
    for i, v in enumerate(["six_stage", "four_stage"]):
        job(folder / str(i), [f"{key}={v}"], document(float(i)))
    assert report.main([str(folder), "--no-plots"]) == 0
    assert list(dict.fromkeys(pd.read_csv(folder / "sweep.csv")[key])) == [
        "four_stage", "six_stage"]


def test_two_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "grid"
    grid = [(s, v) for s in (4, 2) for v in (0, 100)]
    for i, (steps, spend) in enumerate(grid):
        job(folder / str(i), [f"checkout.steps={steps}", f"{PARAM}={spend}", "run=smoke"],
            document(steps * 1000.0 + spend))
    code, out, err = run_report(folder, capsys)
    assert code == 0, err
    assert (folder / "sweep.png").stat().st_size > 10_000
    table = pd.read_csv(folder / "sweep.csv")
    assert list(table.columns[:3]) == ["checkout.steps", PARAM, "scenario"]
    npv = table[table["metric"] == "npv"]
    assert list(zip(npv["checkout.steps"], npv[PARAM], strict=True)) == [
        (2, 0), (2, 100), (4, 0), (4, 100)]
    for steps, spend in grid:
        row = npv[(npv["checkout.steps"] == steps) & (npv[PARAM] == spend)].iloc[0]
        e = expected_rows(document(steps * 1000.0 + spend))["npv"]
        assert row["mean"] == pytest.approx(e.mean, rel=1e-9)
    assert f"  checkout.steps=2 {PARAM}=100: npv" in out


def test_blocks_of_a_point_are_merged(tmp_path: Path) -> None:
    """A sweep split into replication blocks: each point's blocks merged, as for one
    scenario."""
    folder = tmp_path / "blocks"
    for i, (v, ids) in enumerate([(0, (0, 1)), (0, (2, 3)), (50, (0, 1)), (50, (2, 3))]):
        job(folder / str(i), [f"{PARAM}={v}", f"run.first_replication={ids[0]}",
                              "run.replications=2"], document(float(v), ids=ids))
    assert report.main([str(folder), "--no-plots"]) == 0
    table = pd.read_csv(folder / "sweep.csv")
    assert set(table["n"][table["metric"] == "npv"]) == {4}
    want = expected_rows(document(50.0, ids=(0, 1, 2, 3)))["npv"]
    got = table[(table["metric"] == "npv") & (table[PARAM] == 50)].iloc[0]
    assert got["mean"] == pytest.approx(want.mean) and got["low"] == pytest.approx(want.low)


def test_scenarios_and_a_parameter_are_compared_at_each_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "both"
    i = 0
    for name in ("baseline", "seo"):
        for steps in (3, 5):
            shift = steps + (40.0 if name == "seo" else 0.0)
            job(folder / str(i), [f"scenario={name}", f"checkout.steps={steps}"],
                document(shift, name=name))
            i += 1
    code, out, err = run_report(folder, capsys, "--no-plots")
    assert code == 0, err
    table = pd.read_csv(folder / "sweep.csv")
    assert set(zip(table["checkout.steps"], table["scenario"], strict=True)) == {
        (3, "baseline"), (3, "seo"), (5, "baseline"), (5, "seo")}
    comparison = pd.read_csv(folder / "sweep_comparison.csv")
    assert list(comparison.columns[:3]) == ["checkout.steps", "rank", "scenario"]
    npv = comparison[comparison["metric"] == "npv"].set_index("checkout.steps")
    for steps in (3, 5):
        base = document(float(steps))["per_replication"]
        seo = document(steps + 40.0, name="seo")["per_replication"]
        d = np.array([s["npv"] - b["npv"] for b, s in zip(base, seo, strict=True)])
        assert npv.loc[steps, "difference"] == pytest.approx(d.mean())
        assert npv.loc[steps, "scenario"] == "seo"
    assert "checkout.steps=5 scenario=seo: npv" in out and "npv difference +440" in out


def test_scenarios_and_a_parameter_without_a_baseline_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "no_base"
    for i, (name, steps) in enumerate([("seo", 3), ("seo", 5), ("referral_program", 3),
                                       ("referral_program", 5)]):
        job(folder / str(i), [f"scenario={name}", f"checkout.steps={steps}"],
            document(steps + i, name=name))
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, "no job of scenario 'baseline' with checkout.steps=3",
                   "scenario=baseline")
    assert not (folder / "sweep.csv").exists()


# ----------------------------------------------- what is not a sweep stays as it was
def test_a_multirun_over_scenarios_is_still_a_comparison(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "scenarios"
    for i, name in enumerate(("baseline", "seo")):
        doc = document(0.0, name=name)
        doc["fingerprint"] = "0123456789abcdef"
        job(folder / str(i), [f"scenario={name}", "run=smoke"], doc)
    code, _, err = run_report(folder, capsys, "--no-plots")
    assert code == 0, err
    assert {p.name for p in folder.iterdir() if p.is_file()} == {
        "comparison.csv", "comparison.md", "finance.csv", "metrics.json", "report.html"}


def test_replication_blocks_are_still_merged(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "blocks"
    for i, ids in enumerate([(0, 1), (2, 3)]):
        job(folder / str(i), [f"run.first_replication={ids[0]}", "run.replications=2",
                              "run=smoke"], document(0.0, ids=ids))
    code, out, err = run_report(folder, capsys, "--no-plots")
    assert code == 0, err
    assert "replications 0..3 (4)" in out
    assert not (folder / "sweep.csv").exists()
    assert collect_sweep(folder) is None


# ----------------------------------------------------------------- refused folders
def test_a_sweep_with_an_unfinished_job_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "ads", [0, 50])
    stopped = job(folder / f"2_{PARAM}=100", [f"{PARAM}=100"], None)
    code, _, err = run_report(folder, capsys)
    assert code == EXIT_INPUT
    assert err == (f"error: {stopped}: incomplete (no metrics.json: the job was stopped "
                   "before it finished); rerun it or remove the folder\n")
    assert not (folder / "sweep.csv").exists()


HOSTILE_OVERRIDES = [
    # (id, the text of one job's overrides.yaml, what the message must say)
    ("not-yaml", "- a=1\n- [unclosed\n", "not valid YAML (line"),
    ("a-mapping", "channels: 1\n", "expected a list of at most"),
    ("a-number", "- 5\n", "[0]: expected an override key=value"),
    ("a-nested-list", "- [a=1]\n", "[0]: expected an override key=value"),
    ("no-value", f"- {PARAM}\n", "[0]: expected an override key=value"),
    ("bad-key", "- '=5'\n", "[0]: expected an override key=value"),
    ("newline", '- "a=1\\nb=2"\n', "[0]: expected an override key=value"),
    ("python-tag", "- !!python/object/apply:os.system ['true']\n", "not plain YAML"),
    ("twice", f"- {PARAM}=1\n- {PARAM}=2\n", f"[1]: {PARAM} overridden twice"),
    ("long", f"- {PARAM}={'9' * 20_000}\n", "expected an override key=value"),
    ("too-many", "".join(f"- k{i}=1\n" for i in range(1_001)), "at most 1000 overrides"),
    ("too-big", "#" * (2**20 + 1), "bytes"),
    ("not-utf8", b"- a=\xff\n", "not UTF-8"),
    ("alias-bomb", "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
     "expected a list of at most"),
    ("without-the-key", "- run=smoke\n", f"no override of {PARAM}"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in HOSTILE_OVERRIDES],
                         ids=[i for i, _, _ in HOSTILE_OVERRIDES])
def test_a_garbled_overrides_file_is_refused_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes,
        message: str) -> None:
    folder = sweep(tmp_path / "ads", [0, 50])
    bad = job(folder / "2_bad", None, document(100.0)) / ".hydra" / "overrides.yaml"
    if isinstance(text, bytes):
        bad.write_bytes(text)
    else:
        bad.write_text(text)
    with pytest.raises(ReportError) as caught:
        collect_sweep(folder)
    assert str(bad) in str(caught.value) and message in str(caught.value), caught.value
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, str(bad), message)
    assert not (folder / "sweep.csv").exists()


def test_an_overrides_file_that_is_not_a_file_or_leads_outside_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(f"- {PARAM}=100\n")
    folder = sweep(tmp_path / "ads", [0, 50])
    linked = job(folder / "2_linked", None, document(100.0)) / ".hydra" / "overrides.yaml"
    linked.symlink_to(outside)
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, str(linked), "outside")
    linked.unlink()
    os.mkfifo(linked)  # a read would block: refused without opening it for long
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, str(linked), "not a regular file")


def test_a_job_without_overrides_in_a_sweep_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sweep(tmp_path / "ads", [0, 50])
    stray = job(folder / "2_stray", None, document(100.0))
    code, _, err = run_report(folder, capsys)
    assert_refused(code, err, str(stray / ".hydra" / "overrides.yaml"), f"no override of {PARAM}")


# -------------------------------------------------------------- end to end, by the CLI
def run_py(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``cwd``, importing the same ``sim`` as this test session."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


@pytest.mark.slow
def test_a_multirun_over_a_parameter_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "ads"
    proc = run_py(tmp_path, "-m", "sim", "-m", f"{PARAM}=100,0,50", *SMALL,
                  "run.summary=false", f"hydra.sweep.dir={folder}")
    assert proc.returncode == 0, proc.stderr
    proc = run_py(tmp_path, "-m", "sim.report", str(folder))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == [
        f"  {PARAM}=0", f"  {PARAM}=50", f"  {PARAM}=100"]
    assert "simulation noise only" in proc.stdout
    assert " ".join(lines[-2:]).endswith("wrote sweep.csv, sweep_replications.csv, "
                                          f"sweep.png, metrics.json, report.html to {folder}")
    table = pd.read_csv(folder / "sweep.csv")
    assert list(table[PARAM].unique()) == [0, 50, 100]
    # each job's own metrics.json summarises its replications: the same estimates
    for path in folder.glob("*/metrics.json"):
        spend = json.loads((path.parent / ".hydra" / "overrides.yaml").read_text()
                           .split("\n")[0].split("=")[1])
        own = json.loads(path.read_text())["metrics"]
        rows = table[table[PARAM] == spend].set_index("metric")
        for metric in SWEEP_METRICS:
            for column in ("mean", "low", "high"):
                want, got = own[metric][column], rows.loc[metric, column]
                if want is None:
                    assert np.isnan(got), (spend, metric, column)
                else:
                    assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (
                        spend, metric, column)
    assert (folder / "sweep.png").stat().st_size > 10_000

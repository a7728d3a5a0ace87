"""docs/reference/outputs.md names every file a run, a comparison and ``python -m sim.report``
write, every column of every CSV file, every metric and every field of ``metrics.json``; and
every file, column and JSON field of a PSA and of the how-much and which-setting analyses
(response curves, budget allocation, goal seek, set of interventions).

The outputs are made here, small, in-process, the way the command line makes them; the page
is read as text. A column may be named literally (in backticks) in its file's section, or by
a pattern the page uses: ``t_<state>``, ``spend_<channel>``, ``funnel.<stage>.rate``... with
the placeholder standing for the run's own states, channels, sources or stages; and ``x_ci_low``
/ ``x_ci_high`` are named by ``x`` when the section says ``<column>_ci_low``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim import report
from sim.api import compare
from sim.present.text import write_comparison

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "outputs.md"
SMALL = ["run=smoke", "market.size=600", "run.replications=2", "run.horizon_days=90"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Folders written as the commands write them: a run (with events.csv), a comparison,
    a multirun of two scenarios and a multirun of two replication blocks, each merged by
    ``python -m sim.report``; and the names a pattern may stand for."""
    root = tmp_path_factory.mktemp("outputs")
    result = compare(["loyalty_program"], overrides=SMALL)
    base = result.runs["baseline"]
    base.write(root / "run", events=True)
    # as python -m sim compare=[loyalty_program] writes it
    write_comparison(result.table,
                     {k: r.experiment.metrics for k, r in result.runs.items()},
                     {k: r.spec.scenario_description for k, r in result.runs.items()},
                     result.rank_by, root / "compare", finance=result.finance(),
                     ltv=result.ltv())
    # a multirun of scenarios, merged: the jobs' folders are runs
    for i, (name, r) in enumerate(result.runs.items()):
        r.write(root / "sweep" / f"{i}_scenario={name}", plots=False)
    assert report.main([str(root / "sweep")]) == 0
    # a multirun of replication blocks of one scenario, merged: replications 0, 1 (the
    # comparison's baseline) and 2, 3
    base.write(root / "blocks" / "block_0", plots=False)
    block = sim.run(overrides=[*SMALL, "run.first_replication=2"])
    block.write(root / "blocks" / "block_2", plots=False)
    assert report.main([str(root / "blocks"), "--no-plots"]) == 0
    spec = base.spec
    names = {
        "state": list(spec.states),
        "stage": base.stages,
        "channel": list(spec.channel_names),
        "source": list(spec.channel_names),
    }
    return {"root": root, "names": names}


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _section(text: str, file: str) -> str:
    """The part of the page under the heading that names ``file`` (up to the next heading
    of the same or a higher level)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+) ", line)
        if m and f"`{file}`" in line:
            level = len(m.group(1))
            end = next((j for j in range(i + 1, len(lines))
                        if (h := re.match(r"(#+) ", lines[j])) and len(h.group(1)) <= level),
                       len(lines))
            return "\n".join(lines[i:end])
    raise AssertionError(f"{PAGE.name} has no heading naming `{file}`")


def _named(text: str, names: dict[str, list[str]]) -> set[str]:
    """Every name the text gives in backticks, patterns expanded with the run's names."""
    out: set[str] = set()
    for token in re.findall(r"`([^`\n]+)`", text):
        holders = re.findall(r"<(\w+)>", token)
        if not holders:
            out.add(token)
            continue
        if any(h not in names for h in holders):
            continue  # <column>, <date>, <name>...: not a pattern of names
        expanded = [token]
        for h in holders:
            expanded = [t.replace(f"<{h}>", v, 1) for t in expanded for v in names[h]]
        out |= set(expanded)
    return out


def _undocumented(columns: list[str], section: str, names: dict[str, list[str]]) -> list[str]:
    named = _named(section, names)
    ci = {suffix for suffix in ("_ci_low", "_ci_high") if f"`<column>{suffix}`" in section}
    missing = []
    for column in columns:
        if column in named:
            continue
        base = next((column[: -len(s)] for s in ci if column.endswith(s)), None)
        if base is None or base not in named:
            missing.append(column)
    return missing


def _written(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def test_every_file_written_is_named(outputs: dict) -> None:
    text = _page()
    named = set(re.findall(r"`([^`\n]+)`", text))
    root = outputs["root"]
    files = {p.name for folder in ("run", "compare", "sweep", "blocks")
             for p in _written(root / folder)}
    # the files each command is expected to write, so the test notices when one is missing
    assert {"metrics.json", "metrics.csv", "customers.csv", "daily.csv", "purchases.csv",
            "tickets.csv", "events.csv", "finance.csv", "ltv.csv", "cohorts.csv",
            "payback.csv", "comparison.csv", "comparison.md", "comparison.png",
            "funnel.png", "payback.png"} <= files
    assert not sorted(files - named), f"files written but not named in {PAGE.name}"


@pytest.mark.parametrize("folder", ["run", "compare", "sweep", "blocks"])
def test_every_csv_column_is_named_in_its_section(outputs: dict, folder: str) -> None:
    text = _page()
    problems = {}
    for path in _written(outputs["root"] / folder):
        if path.suffix != ".csv":
            continue
        columns = list(pd.read_csv(path, nrows=0).columns)
        missing = _undocumented(columns, _section(text, path.name), outputs["names"])
        if missing:
            problems[f"{folder}/{path.name}"] = missing
    assert not problems, f"columns not named in their section of {PAGE.name}: {problems}"


def test_every_metric_and_metrics_json_field_is_named(outputs: dict) -> None:
    text = _page()
    section = _section(text, "metrics.json")
    named = _named(section, outputs["names"])
    root = outputs["root"]
    run_doc = json.loads((root / "run" / "metrics.json").read_text())
    for folder in ("compare", "sweep", "blocks"):
        doc = json.loads((root / folder / "metrics.json").read_text())
        assert not sorted(set(doc) - named), f"{folder}/metrics.json fields not named"
    fields = {*run_doc, *run_doc["scenario"], *run_doc["conventions"],
              *next(iter(run_doc["metrics"].values()))}
    assert not sorted(fields - named), f"metrics.json fields not named in {PAGE.name}"
    metrics = _named(_section(text, "metrics.csv"), outputs["names"])
    assert not sorted(set(run_doc["metrics"]) - metrics), "metrics not named under metrics.csv"


# ------------------------------------------------------------------------ a PSA's files
PSA_FILES = ("psa_runs.csv", "psa_summary.csv", "psa_metrics.csv", "acceptability.csv", "evppi.csv",
             "tornado.csv", "sobol.csv", "psa.md", "psa.json", "psa_cloud.png",
             "acceptability.png", "evppi.png", "tornado.png")


@pytest.fixture(scope="module")
def psa_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small PSA with every optional file (the tornado and Sobol indices), written as
    ``python -m sim psa.draws=4 compare=[remove_hidden_fees]`` writes it."""
    from sim.api import psa

    folder = tmp_path_factory.mktemp("psa")
    decision = psa(["remove_hidden_fees"], overrides=[
        *SMALL, "uncertainty=none", "psa.sobol_indices=4",
        "+uncertainty.economics.gross_margin={dist: beta, mean: 0.45, sd: 0.02}"], draws=4)
    decision.write(folder)
    names = {"assumption": list(decision.result.points.columns)}
    return {"root": folder, "names": names}


def test_every_psa_file_is_named(psa_outputs: dict) -> None:
    named = set(re.findall(r"`([^`\n]+)`", _page()))
    files = {p.name for p in _written(psa_outputs["root"])}
    assert set(PSA_FILES) <= files
    assert not sorted(files - named), f"PSA files written but not named in {PAGE.name}"


def test_every_psa_column_and_field_is_named(psa_outputs: dict) -> None:
    text = _page()
    problems = {}
    for path in _written(psa_outputs["root"]):
        if path.suffix == ".csv":
            columns = list(pd.read_csv(path, nrows=0).columns)
            missing = _undocumented(columns, _section(text, path.name), psa_outputs["names"])
            if missing:
                problems[path.name] = missing
    doc = json.loads((psa_outputs["root"] / "psa.json").read_text())
    missing = sorted(set(doc) - _named(_section(text, "psa.json"), psa_outputs["names"]))
    if missing:
        problems["psa.json"] = missing
    assert not problems, f"not named in their section of {PAGE.name}: {problems}"


# ------------------------------------- how much and which setting: the analyses' files
DECISIONS_HEADING = "## How much and which setting: files"
DECISION_FILES = {
    "curves": ("curves.csv", "marginal.csv", "crossings.csv", "curve_runs.csv", "curves.md",
               "response_curves.png", "response_metrics.png", "curves.json"),
    "allocate": ("allocation.csv", "allocation_verification.csv", "allocation_rounds.csv",
                 "allocation_runs.csv", "allocation.md", "allocation.png", "allocation.json"),
    "seek": ("seek.csv", "seek_runs.csv", "seek.md", "goal_seek.png", "seek.json"),
    "portfolio": ("portfolio_sets.csv", "portfolio_verified.csv", "portfolio_skipped.csv",
                  "portfolio_runs.csv", "portfolio.md", "portfolio.png", "portfolio.json"),
}


@pytest.fixture(scope="module")
def decision_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The four analyses, small, each written as ``python -m sim "curve.keys=[...]"``,
    ``allocate.channels=[...]``, ``seek.key=...`` and ``portfolio.budget=... compare=[...]``
    write them (a few seconds each); and the names a pattern may stand for in each."""
    from sim import api

    root = tmp_path_factory.mktemp("decisions")
    curve_keys = ["channels.email.spend_per_day"]
    channels = ["search", "email"]
    answers = {
        "curves": api.curves(curve_keys, overrides=[
            "run=smoke", "curve.values=[0,5]", "run.replications=2"]),
        "allocate": api.allocate(channels, overrides=[
            "run=smoke", "allocate.rounds=1", "allocate.design_points=6",
            "allocate.replications=2", "allocate.verify_replications=2"]),
        "seek": api.seek("checkout.base_logit", "conversion_rate", 0.05, overrides=[
            "run=smoke", "run.replications=2", "seek.low=-3", "seek.high=3",
            "seek.tolerance=0.1"]),
        "portfolio": api.portfolio(["seo", "guest_checkout", "remove_hidden_fees"],
                                   budget=100, overrides=["run=smoke", "run.replications=2"]),
    }
    for kind, answer in answers.items():
        answer.write(root / kind)
    names = {"curves": {"key": curve_keys}, "allocate": {"channel": channels},
             "seek": {"key": ["checkout.base_logit"]}, "portfolio": {}}
    return {"root": root, "names": names}


@pytest.mark.parametrize("kind", list(DECISION_FILES))
def test_every_decision_file_is_named(decision_outputs: dict, kind: str) -> None:
    text = _page()
    named = set(re.findall(r"`([^`\n]+)`", text))
    files = {p.name for p in _written(decision_outputs["root"] / kind)}
    assert set(DECISION_FILES[kind]) <= files
    assert not sorted(files - named), f"{kind} files written but not named in {PAGE.name}"
    # in the analyses' own section too (its file table), not only elsewhere on the page
    section = text.split(f"\n{DECISIONS_HEADING}\n", 1)[1].split("\n## ", 1)[0]
    in_section = set(re.findall(r"`([^`\n]+)`", section))
    assert not sorted(files - in_section), f"{kind} files not named under {DECISIONS_HEADING}"


@pytest.mark.parametrize("kind", list(DECISION_FILES))
def test_every_decision_column_and_field_is_named(decision_outputs: dict, kind: str) -> None:
    text = _page()
    folder, names = decision_outputs["root"] / kind, decision_outputs["names"][kind]
    problems = {}
    for path in _written(folder):
        if path.suffix == ".csv":
            columns = list(pd.read_csv(path, nrows=0).columns)
            missing = _undocumented(columns, _section(text, path.name), names)
            if missing:
                problems[path.name] = missing
        elif path.suffix == ".json":
            doc = json.loads(path.read_text())
            missing = sorted(set(doc) - _named(_section(text, path.name), names))
            if missing:
                problems[path.name] = missing
    assert not problems, f"not named in their section of {PAGE.name}: {problems}"

"""``report.html`` (``sim.present.html``): the self-contained page every run, comparison,
merge and analysis writes after its finished mark.

Checked on real folders written as the commands write them (a smoke run through
``sim.api``, a comparison as ``python -m sim compare=[seo]`` writes it, a small PSA and a
goal seek) and on synthetic ones: every section is there, the answer leads, nothing points
outside the file, text from the folder is escaped, the page stays small, a hostile folder
stops with one line and leaves the folder as it was. The browser test opens a comparison's
page from ``file://`` in headless Chromium with every network request refused, and saves
screenshots at a laptop's and a phone's size.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

import sim
from sim import io
from sim.api import compare, psa, seek
from sim.errors import EXIT_INPUT, EXIT_OUTPUT, OutputError
from sim.present.html import REPORT_FILE, build_report, markdown_html, write_report
from sim.present.text import write_comparison

SMOKE = ["run=smoke"]
SMALL = ["run=smoke", "market.size=600", "run.replications=2", "run.horizon_days=90"]
MAX_SMOKE_BYTES = 5_000_000  # the page of a smoke run, plotly.js (packed) included
HOSTILE = '<script>alert("hostile")</script><img src=x onerror=alert(2)>'
CHROMIUM = Path(os.environ.get("JOURNEY_SIM_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(tempfile.gettempdir()) / "journey-sim-report-screenshots"
SECTIONS = ("answer", "figures", "tables", "assumptions", "provenance")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m sim run=smoke``'s files, written through ``sim.api`` (its report.html
    last)."""
    folder = tmp_path_factory.mktemp("run") / "run"
    written = sim.run(overrides=SMOKE).write(folder)
    assert [p.name for p in written][-2:] == ["metrics.json", REPORT_FILE]
    return folder


@pytest.fixture(scope="module")
def comparison_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A comparison as ``python -m sim compare=[seo] run=smoke`` writes it (sim.cli's
    ``_compare``), the scenario's description made hostile."""
    result = compare(["seo"], overrides=SMOKE)
    folder = tmp_path_factory.mktemp("compare") / "compare"
    descriptions = {k: r.spec.scenario_description for k, r in result.runs.items()}
    descriptions["seo"] = HOSTILE
    written = write_comparison(result.table,
                               {k: r.experiment.metrics for k, r in result.runs.items()},
                               descriptions, result.rank_by, folder,
                               finance=result.finance(), ltv=result.ltv(),
                               reference=result.reference)
    assert [p.name for p in written][-2:] == ["metrics.json", REPORT_FILE]
    return folder


def page_of(folder: Path) -> str:
    return (folder / REPORT_FILE).read_text(encoding="utf-8")


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of every <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def tags_of(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    return parser


def assert_self_contained(text: str) -> None:
    """Nothing in the page points outside it: no script, style sheet, frame or object
    loaded from anywhere, every image a data: URI, every link an anchor in the page, no
    URL anywhere in its text, and a CSP that lets the page load nothing.

    plotly.js itself holds URL strings (map tiles, its website) that it uses only for
    traces these pages never draw; it is embedded gzip-packed and base64-encoded, so none
    of them is in the file's text. That it fetches nothing when it runs is what the
    browser test checks, with every request refused.
    """
    parser = tags_of(text)
    for tag, attrs in parser.tags:
        assert tag not in ("link", "iframe", "frame", "object", "embed", "base", "form",
                           "audio", "video", "source"), tag
        if tag == "script":
            assert "src" not in attrs, attrs
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:image/png;base64,"), attrs
        if "href" in attrs:
            assert (attrs["href"] or "").startswith("#"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)  # no inline handlers
            if not (tag == "img" and name == "src"):  # base64 has "/"; checked above
                assert not re.search(r"(?i)(https?:|//|javascript:)", value or ""), (
                    tag, name, value)
    assert not re.search(r"(?i)https?://|//cdn\.|\bsrc=[\"'](?!data:)", text)
    csp = next(a["content"] for t, a in parser.tags
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "img-src data: blob:" in csp
    assert "connect-src" not in csp  # 'none' by default-src: no fetch, no XMLHttpRequest
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    # the only scripts: data blocks (JSON, the packed bundle) and the one loader
    runnable = [(a, t) for a, t in parser.scripts
                if a.get("type") not in ("application/json", "application/octet-stream")]
    assert len(runnable) == 1


# ------------------------------------------------------------------------- a run's page
def test_a_runs_page_has_every_section_and_leads_with_the_answer(run_folder: Path) -> None:
    text = page_of(run_folder)
    positions = [text.index(f'<section id="{s}">') for s in SECTIONS]
    assert positions == sorted(positions)  # the answer first, the provenance last
    answer = text[positions[0]:positions[1]]
    for label, metric in (("Conversion (of the aware)", "conversion_rate"),
                          ("First purchases", "purchases"), ("Monthly churn", "monthly_churn"),
                          ("LTV per customer", "ltv.mean"), ("CAC", "cac"), ("NPV", "npv"),
                          ("NPV + value after the horizon", "npv_clv")):
        assert f">{label}<" in answer and f">{metric}<" in answer, metric
    assert answer.count("95% CI [") >= 7
    assert "What the intervals cover." in answer and "simulation noise only" in answer
    doc = json.loads((run_folder / "metrics.json").read_text())
    npv = doc["metrics"]["npv"]["mean"]
    assert f"{npv:,.0f}" in answer
    # every PNG of the folder, embedded once, in the reading order, with a caption
    pngs = sorted(p.name for p in run_folder.glob("*.png"))
    assert len(pngs) >= 7 and text.count("data:image/png;base64,") == len(pngs)
    order = [text.index(f"<b>{name}</b>") for name in ("funnel.png", "retention.png",
                                                        "ltv.png", "payback.png")]
    assert order == sorted(order)
    tables = text[positions[2]:positions[3]]
    assert "finance.csv" in tables and "pnl.csv" in tables
    assert "customers.csv" not in tables and "events.csv" not in tables
    assert "ltv_mean [95% CI]" in tables  # an estimate and its interval in one cell
    provenance = text[positions[4]:]
    assert str(doc["seed"]) in provenance and "journey-sim" in provenance
    assert "numpy" in provenance and "simpy" in provenance
    assert "no config" in text[positions[3]:positions[4]]  # written from Python: said so


def test_a_runs_journey_flows_are_an_interactive_sankey(run_folder: Path) -> None:
    if not (run_folder / "flows.csv").exists():
        pytest.skip("this package writes no flows.csv")
    text = page_of(run_folder)
    specs = [json.loads(t) for a, t in tags_of(text).scripts
             if a.get("class") == "chart-spec"]
    assert any(trace.get("type") == "sankey" for spec in specs for trace in spec["data"])
    assert text.count('id="plotly-gzip-base64"') == 1  # plotly.js once


def test_a_smoke_runs_page_is_small_and_self_contained(run_folder: Path) -> None:
    size = (run_folder / REPORT_FILE).stat().st_size
    assert size < MAX_SMOKE_BYTES, f"report.html of a smoke run: {size:,} bytes"
    assert_self_contained(page_of(run_folder))


def test_a_page_without_interactive_charts_carries_no_plotly(tmp_path: Path,
                                                            run_folder: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_folder, folder)
    (folder / "flows.csv").unlink(missing_ok=True)
    write_report(folder)
    text = page_of(folder)
    assert 'id="plotly-gzip-base64"' not in text and 'class="chart-spec"' not in text
    assert (folder / REPORT_FILE).stat().st_size < 1_000_000
    assert_self_contained(text)


def test_a_cli_runs_config_marks_what_was_set_by_hand_fitted_or_overridden(
        tmp_path: Path, run_folder: Path) -> None:
    """With Hydra's ``.hydra/`` files (a command's folder): the levers and costs from the
    composed config, each marked; a calibration's ``fitted_*`` group is marked fitted."""
    folder = tmp_path / "cli"
    shutil.copytree(run_folder, folder)
    hydra = folder / ".hydra"
    hydra.mkdir()
    from sim.model.config import compose_config, to_container

    cfg = to_container(compose_config(SMOKE))
    (hydra / "config.yaml").write_text(json.dumps(cfg))  # JSON is YAML
    (hydra / "hydra.yaml").write_text(json.dumps({"hydra": {"runtime": {
        "choices": {"retention": "fitted_shop", "scenario": "baseline"},
        "config_sources": [{"path": str(tmp_path / "fit"), "schema": "file",
                            "provider": "command-line"}]}}}))
    (hydra / "overrides.yaml").write_text('["run=smoke", "checkout.steps=3"]')
    write_report(folder)
    text = page_of(folder)
    assumptions = text[text.index('<section id="assumptions">'):
                       text.index('<section id="provenance">')]
    row = re.search(r"<td>retention\.repeat\.r</td><td[^>]*>[^<]*</td><td>([^<]*)</td>",
                    assumptions)
    assert row and row.group(1) == "fitted from data (retention=fitted_shop)"
    row = re.search(r"<td>checkout\.steps</td><td[^>]*>[^<]*</td><td>([^<]*)</td>",
                    assumptions)
    assert row and row.group(1).startswith("command line (checkout.steps=3)")
    row = re.search(r"<td>channels\.search\.spend_per_day</td><td[^>]*>[^<]*</td>"
                    r"<td>([^<]*)</td>", assumptions)
    assert row and row.group(1) == "set by hand (config)"
    assert "Uncertainty ranges" in assumptions and "triangular(" in assumptions
    assert f"python -m sim --config-dir {tmp_path / 'fit'} run=smoke checkout.steps=3" in text


# ---------------------------------------------------------------------- a comparison
def test_a_comparisons_page_ranks_recommends_and_says_how_sure(comparison_folder: Path
                                                               ) -> None:
    text = page_of(comparison_folder)
    answer = text[text.index('<section id="answer">'):text.index('<section id="figures">')]
    assert 'class="verdict' in answer
    assert re.search(r"Recommendation: |No option is surely better than baseline|"
                     r"ranks first", answer)
    assert "better in (replications)" in answer and re.search(r"\d+ of \d+", answer)
    assert "Δ npv vs baseline [95% CI]" in answer
    assert "What the intervals cover." in answer
    specs = [json.loads(t) for a, t in tags_of(text).scripts if a.get("class") == "chart-spec"]
    ranking = specs[0]
    assert [t["name"] for t in ranking["data"]] == ["seo"]  # one trace per option: toggled
    assert all("error_x" in t and "%{customdata" in t["hovertemplate"] for t in
               ranking["data"])
    menu = ranking["layout"]["updatemenus"][0]["buttons"]
    assert menu[0]["label"] == "npv" and len(menu) >= 6  # the ranking metric, then all
    for name in ("comparison.csv", "finance.csv"):
        assert f"{name}</span></h3>" in text or f"({name}," in text
    assert_self_contained(text)
    assert (comparison_folder / REPORT_FILE).stat().st_size < MAX_SMOKE_BYTES


def test_text_from_the_folder_is_escaped(comparison_folder: Path) -> None:
    text = page_of(comparison_folder)
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(&quot;hostile&quot;)&lt;/script&gt;" in text
    for attrs, body in tags_of(text).scripts:  # JSON blocks: no text can close them
        if attrs.get("type") == "application/json":
            assert "<" not in body and ">" not in body


def test_a_hostile_scenario_name_is_escaped_in_titles_tables_and_charts(tmp_path: Path
                                                                        ) -> None:
    from sim.measure.stats import compare as paired
    from sim.report import COMPARISON_METRICS

    base = [{k: 1.0 + i for k in COMPARISON_METRICS} for i in range(3)]
    other = [{**m, "npv": m["npv"] + 5} for m in base]
    name = '<a href="https://evil.example">x</a><script>alert(1)</script>'
    table = paired(base, {name: other})
    write_comparison(table, {"baseline": base, name: other}, {"baseline": "", name: HOSTILE},
                     "npv", tmp_path, plots=False)
    text = page_of(tmp_path)
    assert "<script>alert(1)" not in text and '<a href="https://evil' not in text
    spec = json.loads(next(t for a, t in tags_of(text).scripts
                           if a.get("class") == "chart-spec"))
    trace = spec["data"][0]
    assert "<a " not in trace["name"] and "&lt;a href" in trace["name"]  # Plotly reads <a>
    assert "<b>%{y}</b>" in trace["hovertemplate"]  # its own formatting tags kept


def test_merged_blocks_and_a_sweep_have_their_pages(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    """``python -m sim.report`` on replication blocks of one scenario and on a sweep over a
    parameter (jobs written through ``sim.api``, as a multirun's are)."""
    from sim import report

    blocks, swept = tmp_path / "blocks", tmp_path / "sweep"
    for first in (0, 2):
        sim.run(overrides=[*SMALL, f"run.first_replication={first}"]).write(
            blocks / f"block_{first}", plots=False)
    for spend in (0, 10):
        job = swept / f"spend={spend}"
        sim.run(overrides=[*SMALL, f"channels.email.spend_per_day={spend}"]).write(
            job, plots=False)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- channels.email.spend_per_day={spend}\n")
    assert report.main([str(blocks), "--no-plots"]) == 0
    assert report.main([str(swept), "--no-plots"]) == 0
    capsys.readouterr()
    text = page_of(blocks)
    assert "Replication blocks merged" in text and ">NPV<" in text and "4 replications" in text
    assert_self_contained(text)
    text = page_of(swept)
    answer = text[text.index('<section id="answer">'):text.index('<section id="figures">')]
    assert "Sweep over channels.email.spend_per_day" in text
    assert answer.count("<tr>") == 1 + 2  # the header, a row per point
    assert "simulation noise only" in answer
    assert_self_contained(text)


# ------------------------------------------------------------------------ analyses
def test_a_psas_page_gives_the_recommendation_probability_best_and_evpi(
        tmp_path: Path) -> None:
    decision = psa(["remove_hidden_fees"], overrides=[
        *SMALL, "uncertainty=none", "psa.tornado=false",
        "+uncertainty.economics.gross_margin={dist: beta, mean: 0.45, sd: 0.02}"], draws=4)
    written = decision.write(tmp_path)
    assert [p.name for p in written][-2:] == ["psa.json", REPORT_FILE]
    text = page_of(tmp_path)
    answer = text[text.index('<section id="answer">'):text.index('<section id="figures">')]
    assert ">Recommended<" in answer and decision.recommended in answer
    assert ">P(best)<" in answer and ">EVPI<" in answer and "What to research first" in answer
    assert "What the ranges cover." in answer and "uncertainty" in answer
    assert "psa_summary.csv" in text and "evppi.csv" in text and "psa_runs.csv" in text
    assert "gross_margin" in text[text.index('<section id="assumptions">'):]
    assert_self_contained(text)


def test_an_analysis_page_leads_with_its_answer_in_words(tmp_path: Path) -> None:
    answer = seek("checkout.base_logit", "conversion_rate", 0.05, overrides=[
        "run=smoke", "run.replications=2", "seek.low=-3", "seek.high=3", "seek.tolerance=0.2"])
    written = answer.write(tmp_path)
    assert [p.name for p in written][-2:] == ["seek.json", REPORT_FILE]
    text = page_of(tmp_path)
    first = text[text.index('<section id="answer">'):text.index('<section id="figures">')]
    assert "<strong>checkout.base_logit = " in first and "simulation noise" in first
    assert "goal_seek.png" in text and "seek.csv" in text
    assert "The analysis's settings" in text and ">tolerance<" in text
    assert_self_contained(text)


def test_markdown_is_escaped_before_it_is_formatted() -> None:
    out = markdown_html("# Title\n\n**Recommendation: <b>x</b>** & `code`\n\n| a | b |\n"
                        "|---|---|\n| <i>1</i> | 2 |\n\n- one\n- two <script>\n")
    assert "<h3>Title</h3>" in out
    assert "<strong>Recommendation: &lt;b&gt;x&lt;/b&gt;</strong> &amp; <code>code</code>" in out
    assert "<td>&lt;i&gt;1&lt;/i&gt;</td>" in out and "<li>two &lt;script&gt;</li>" in out
    assert "<script>" not in out and "<b>" not in out


# ------------------------------------------------------------- hostile and broken folders
def copy_of(run_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(run_folder, folder)
    (folder / REPORT_FILE).unlink()
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<link>")
            for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(("case", "expected"), [
    ("link", "finance.csv: a link; report.html reads only regular files inside the folder"),
    ("huge", "pnl.csv: 300,000,000 bytes, more than the"),
    ("not_png", "funnel.png: not a PNG image"),
    ("cut_png", "retention.png: not a whole PNG image"),
    ("bad_json", "metrics.json: not valid JSON"),
    ("hydra_link", ".hydra: a link"),  # sim.report's walk refuses it first (exit 2)
])
def test_a_hostile_folder_stops_with_one_line_and_is_left_as_it_was(
        run_folder: Path, tmp_path: Path, case: str, expected: str) -> None:
    folder = copy_of(run_folder, tmp_path)
    if case == "link":
        (folder / "finance.csv").unlink()
        (folder / "finance.csv").symlink_to("/etc/passwd")
    elif case == "huge":
        with open(folder / "pnl.csv", "wb") as f:  # sparse: no disk used
            f.truncate(300_000_000)
    elif case == "not_png":
        (folder / "funnel.png").write_bytes(b"<svg onload=alert(1)>")
    elif case == "cut_png":
        data = (folder / "retention.png").read_bytes()
        (folder / "retention.png").write_bytes(data[: len(data) // 2])
    elif case == "bad_json":
        (folder / "metrics.json").write_text('{"scenario": ')
    else:
        outside = tmp_path / "elsewhere"
        outside.mkdir()
        (outside / "config.yaml").write_text("secret: 1\n")
        (folder / ".hydra").symlink_to(outside)
    before = contents(folder)
    with pytest.raises(OutputError) as err:
        write_report(folder)
    message = str(err.value)
    assert "\n" not in message and expected in message, message
    assert message.startswith(f"{folder / REPORT_FILE}: not written: ")
    assert contents(folder) == before  # nothing written, nothing removed, no temp file
    # the command line: one line, exit 1, no traceback
    proc = subprocess.run([sys.executable, "-m", "sim.report", str(folder)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=env_with_sim())
    assert proc.returncode == (EXIT_INPUT if case == "hydra_link" else EXIT_OUTPUT), proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert contents(folder) == before


def test_a_failed_page_leaves_a_fresh_runs_files_intact(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The page is built after the finished mark: when it cannot be, the run's files are
    all there and the folder is finished; the error is one OutputError line."""
    from sim.present import html

    def broken(folder: Path, name: str) -> tuple[bytes, int, int]:
        raise html._Refused(f"{folder}: a corrupt PNG")

    monkeypatch.setattr(html._Folder, "png", lambda self, name: broken(self.path, name))
    run = sim.run(overrides=SMALL)
    with pytest.raises(OutputError, match=r"report\.html: not written: .*a corrupt PNG"):
        run.write(tmp_path)
    assert io.is_complete(tmp_path) and not (tmp_path / REPORT_FILE).exists()
    assert {"metrics.json", "customers.csv", "funnel.png"} <= {p.name for p in
                                                              tmp_path.iterdir()}


def test_an_unfinished_folder_has_no_page(run_folder: Path, tmp_path: Path) -> None:
    folder = copy_of(run_folder, tmp_path)
    (folder / "metrics.json").unlink()
    with pytest.raises(OutputError, match="not a finished folder of outputs"):
        build_report(folder)
    (folder / "metrics.json").write_text("{}")
    (folder / ".metrics.json.abcd1234.tmp").write_text("")
    with pytest.raises(OutputError, match="unfinished"):
        build_report(folder)


def test_a_new_set_of_outputs_removes_the_old_page(run_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "again"
    shutil.copytree(run_folder, folder)
    io.begin_outputs(folder)
    assert not (folder / REPORT_FILE).exists() and not (folder / "metrics.json").exists()


def env_with_sim() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def test_sim_report_rewrites_the_page_of_a_finished_folder(run_folder: Path,
                                                           comparison_folder: Path,
                                                           tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    from sim import report

    for source in (run_folder, comparison_folder):
        folder = copy_of(source, tmp_path / source.name)
        before = contents(folder)
        assert report.main([str(folder)]) == 0
        out, err = capsys.readouterr()
        assert out == f"wrote {REPORT_FILE} to {folder}\n" and not err
        assert contents(folder) == {**before, REPORT_FILE: (folder / REPORT_FILE).read_bytes()}
        assert "The answer" in page_of(folder)


# ---------------------------------------------------------------------- in a browser
def test_a_comparisons_page_in_a_browser_offline(comparison_folder: Path,
                                                 run_folder: Path) -> None:
    """Opened from file:// with every request but file: and data: refused: the ranking is
    shown, every image has loaded, every interactive chart is drawn, no console error, no
    request refused, no script of the folder's text ran; screenshots at 1280 x 800 and
    390 x 844 are saved (``SCREENSHOTS``)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            for folder in (comparison_folder, run_folder):
                for width, height in ((1280, 800), (390, 844)):
                    check_in_browser(browser, folder, width, height)
        finally:
            browser.close()


def check_in_browser(browser, folder: Path, width: int, height: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    refused: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))

    def route(r) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto((folder / REPORT_FILE).as_uri())
    page.wait_for_load_state("load")
    page.wait_for_function("() => [...document.querySelectorAll('.plot')].every("
                           "d => d.getAttribute('data-drawn') === 'true')", timeout=30_000)
    images = page.evaluate("() => [...document.images].map(i => [i.alt, i.complete, "
                           "i.naturalWidth])")
    assert images and all(done and w > 0 for _, done, w in images), images
    plots = page.evaluate("() => [...document.querySelectorAll('.plot')].map(d => "
                          "d.querySelectorAll('svg.main-svg').length)")
    assert plots and all(n > 0 for n in plots), plots
    if (folder / "comparison.csv").exists():
        ranking = page.locator("#answer table").first
        assert ranking.is_visible() and "seo" in ranking.inner_text()
        assert page.locator("#answer .verdict").is_visible()
        assert page.locator("#answer .plot .legend").count() == 1  # toggles the options
    page.screenshot(path=str(SCREENSHOTS / f"{folder.name}-{width}x{height}.png"),
                    full_page=True)
    page.close()
    assert not problems, problems
    assert not refused, refused

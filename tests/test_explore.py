"""The explorer (``python -m sim.explore``, ``sim.present.explore``).

- The callbacks' bodies (``Explorer``'s methods) as functions of the controls' values: the
  levers make the overrides the command line would take, the config's validation judges
  them (its message is shown, nothing raises), the baseline is the same journey and
  scenario without the lever changes on the same seed (paired), the class mode's frames
  conserve the market, and the download is the run's report.
- The command line: ``--help`` exits 0, bad settings and a taken port exit 2 with one line.
- End to end in headless Chromium (skipped when Playwright or the browser is missing): the
  app started as a user would, on a small market; a lever moved, a value refused, the
  report downloaded, the animation played and paused, the page at 1280x800 and 390x844
  without horizontal overflow (screenshots in ``$EXPLORE_SCREENSHOTS`` or pytest's tmp
  folder), and no process left once it is stopped.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import select
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dash")

# after the skip: dash is an optional extra
from sim.errors import InputError
from sim.explore import ApiBackend
from sim.present.explore import (
    SPEEDS,
    Explorer,
    Settings,
    journey_animation,
    lever_overrides,
    levers_for,
    serve,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = Settings(market_size=3000, replications=2)  # a quick update: under a second here
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class CountingBackend(ApiBackend):
    """``ApiBackend`` that remembers the overrides of every run."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []

    def run(self, overrides: Sequence[str], replications: int | None = None) -> Any:
        self.runs.append(list(overrides))
        return super().run(overrides, replications)


@pytest.fixture(scope="module")
def backend() -> CountingBackend:
    return CountingBackend()


@pytest.fixture(scope="module")
def explorer(backend: CountingBackend) -> Explorer:
    return Explorer(backend, SMALL)


def defaults(explorer: Explorer, scenario: str = "baseline") -> dict[str, Any]:
    return explorer.defaults(explorer.journey, scenario)


def row(view: Any, name: str) -> Any:
    return next(r for r in view.rows if r.name == name)


# ------------------------------------------------------------------------------ levers
def test_the_levers_are_the_main_ones(explorer: Explorer) -> None:
    keys = {lever.key for lever in explorer.levers}
    # every channel whose reach grows with spend; in_store has organic reach only
    assert {f"channels.{c}.spend_per_day" for c in ("search", "social", "paid_ads", "email")
            } <= keys
    assert "channels.in_store.spend_per_day" not in keys
    assert {"checkout.steps", "checkout.forced_account", "checkout.hidden_fees",
            "checkout.payment_methods", "checkout.page_load_seconds", "loyalty.enabled",
            "loyalty.enrol_prob", "loyalty.discount", "support.agents", "advocacy.program",
            "advocacy.reward_per_referral"} <= keys
    assert explorer.journeys == ["five_stage", "four_stage", "six_stage",
                                 "six_stage_decision"]
    assert "baseline" in explorer.scenarios and "guest_checkout" in explorer.scenarios
    for lever in explorer.levers:  # today's value sits on its slider
        if lever.kind != "switch":
            assert lever.low <= defaults(explorer)[lever.key] <= lever.high, lever.key


def test_levers_for_scales_the_spend_slider(make_config: Any) -> None:
    cfg = make_config("channels.search.spend_per_day=130")
    search = next(lv for lv in levers_for(cfg) if lv.key == "channels.search.spend_per_day")
    assert search.high == 550  # four times 130, rounded up to 50


def test_lever_overrides_name_only_what_moved(explorer: Explorer) -> None:
    base = defaults(explorer)
    assert lever_overrides(explorer.levers, base, base) == []
    moved = {**base, "checkout.steps": 3, "checkout.hidden_fees": False,
             "loyalty.enrol_prob": 0.15000000000000002, "checkout.page_load_seconds": 2.0,
             "channels.email.spend_per_day": 5.0}  # as before: not an override
    assert lever_overrides(explorer.levers, moved, base) == [
        "checkout.steps=3", "checkout.hidden_fees=false", "checkout.page_load_seconds=2",
        "loyalty.enrol_prob=0.15"]
    with pytest.raises(InputError, match=r"no value for checkout\.steps, support\.agents"):
        lever_overrides(explorer.levers, {**base, "checkout.steps": None,
                                          "support.agents": None}, base)


def test_a_scenario_brings_its_own_values(explorer: Explorer) -> None:
    assert defaults(explorer, "loyalty_program")["loyalty.enabled"] is True
    assert defaults(explorer, "guest_checkout")["checkout.forced_account"] is False
    assert defaults(explorer)["loyalty.enabled"] is False
    assert "points programme" in explorer.description(explorer.journey, "loyalty_program")


# ---------------------------------------------------------------------------- updates
def test_no_change_shows_the_baseline_alone(explorer: Explorer) -> None:
    view = explorer.update(explorer.journey, "baseline", defaults(explorer))
    assert view.error is None
    assert [t.name for t in view.figure.data] == ["baseline"]
    assert {r.verdict for r in view.rows} == {"same"}
    conversion = row(view, "conversion_rate")
    assert conversion.current == conversion.baseline
    assert 0 < conversion.baseline.mean < 1 and conversion.baseline.n == 2
    # what ran, shown on the page
    assert re.fullmatch(r"agent engine, 3,000 people, 2 replications x 730 days: \d+\.\d s",
                        view.info), view.info
    assert {r.name for r in view.rows} == {"conversion_rate", "monthly_churn", "ltv.mean",
                                           "npv", "npv_clv"}


def test_less_friction_converts_more_against_the_same_baseline(
        explorer: Explorer, backend: CountingBackend) -> None:
    """Hidden fees off and one checkout page: conversion rises, paired on the same seed;
    the baseline is run once per journey and scenario and kept."""
    base = defaults(explorer)
    explorer.update(explorer.journey, "baseline", base)
    before = len(backend.runs)
    view = explorer.update(explorer.journey, "baseline",
                           {**base, "checkout.hidden_fees": False, "checkout.steps": 1})
    assert view.error is None, view.error
    (ran,) = backend.runs[before:]  # the baseline was kept: one run, your settings
    assert ran[-2:] == ["checkout.steps=1", "checkout.hidden_fees=false"]
    assert ran[:2] == [f"journey={explorer.journey}", "scenario=baseline"]
    conversion = row(view, "conversion_rate")
    assert conversion.current.mean > conversion.baseline.mean
    assert conversion.difference == pytest.approx(
        conversion.current.mean - conversion.baseline.mean)
    assert conversion.difference_low <= conversion.difference <= conversion.difference_high
    assert [t.name for t in view.figure.data] == ["baseline", "your settings"]
    stages = list(view.figure.data[0].y)
    assert stages == ["awareness", "consideration", "intent", "purchase", "retention",
                      "advocacy"]
    assert "Conversion" in view.summary and "NPV" in view.summary
    assert view.command == ("python -m sim journey=six_stage scenario=baseline "
                            "checkout.steps=1 checkout.hidden_fees=false market.size=3000 "
                            "run.replications=2")
    # which gives the same numbers
    from sim import api

    again = api.run(overrides=[*view.command.split()[3:], "run.progress=false"])
    assert again.summary["conversion_rate"] == conversion.current


@pytest.mark.parametrize(("key", "value", "message"), [
    ("checkout.steps", 0, "checkout.steps = 0: an integer >= 1"),
    ("channels.search.spend_per_day", -5, "channels.search.spend_per_day = -5"),
    ("checkout.steps", 2.5, "checkout.steps"),
    ("loyalty.discount", 1.5, "loyalty.discount = 1.5: a finite number in [0, 1]"),
    ("support.agents", None, "no value for support.agents: type a number"),
])
def test_an_impossible_value_shows_the_command_lines_message(
        explorer: Explorer, key: str, value: Any, message: str) -> None:
    view = explorer.update(explorer.journey, "baseline", {**defaults(explorer), key: value})
    assert view.figure is None and view.cards is None
    assert message in view.error
    assert "Traceback" not in view.error
    assert view.info.startswith("not updated")


def test_another_journey_and_scenario(explorer: Explorer) -> None:
    values = defaults(explorer, "loyalty_program") | {"loyalty.discount": 0.10}
    view = explorer.update("four_stage", "loyalty_program", values)
    assert view.error is None, view.error
    assert list(view.figure.data[0].y) == ["awareness", "consideration", "decision",
                                           "purchase", "loyalty"]


# ------------------------------------------------------------------------- class mode
def test_the_animation_moves_the_whole_market(explorer: Explorer) -> None:
    fig, info = explorer.animate(explorer.journey, "baseline", defaults(explorer))
    assert info.startswith("one replication: agent engine, 3,000 people, 1 replication")
    # a frame a week over 730 days, and the last day
    assert len(fig.frames) == len(range(0, 730, 7)) + 1
    assert [f.name for f in fig.frames][-1] == "729"
    for frame in fig.frames:
        stages, market = frame.data
        assert sum(market.x) == pytest.approx(3000)  # nobody appears or vanishes
        assert sum(stages.x) <= sum(market.x[1:3])  # in the journey: prospects + customers
    first, last = fig.frames[0].data[1].x, fig.frames[-1].data[1].x
    assert first[0] > last[0]  # fewer not yet aware at the end
    assert last[2] > 0  # customers
    menu = fig.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == ["▶ play", "❚❚", "▶ slow", "▶ fast"]
    durations = {b.label: b.args[1]["frame"]["duration"] for b in menu.buttons}
    assert durations["▶ slow"] > durations["▶ play"] > durations["▶ fast"]
    assert all(b.args[1].get("fromcurrent") for b in menu.buttons if "▶" in b.label)
    assert len(fig.layout.sliders[0].steps) == len(fig.frames)


def test_journey_animation_of_a_made_up_day_table() -> None:
    import pandas as pd

    states = ["awareness", "checkout", "purchase", "retention", "churned", "lost"]
    days = 10
    table = {"day": range(days)}
    for k, s in enumerate(states):
        table[f"in_{s}"] = [d * (k + 1) for d in range(days)]
    fig = journey_animation(pd.DataFrame(table), states, market_size=1000, every_days=4)
    assert [f.name for f in fig.frames] == ["0", "4", "8", "9"]
    stages, market = fig.frames[-1].data
    assert list(stages.y) == ["awareness", "checkout", "purchase", "retention"]
    assert list(stages.x) == [9, 18, 27, 36]
    # not yet aware, prospects, customers, churned, lost
    assert list(market.x) == [1000 - 9 * 21, 27, 63, 45, 54]


# ---------------------------------------------------------------------------- download
def report_is_written() -> bool:
    """Whether Run.write writes report.html yet (``sim.present.html``, another change)."""
    return importlib.util.find_spec("sim.present.html") is not None


def check_download(name: str, content: bytes) -> None:
    """The report; a zip of the run's folder only while Run.write writes no report."""
    if name.endswith(".html"):
        assert name == "journey-sim-report.html"
        assert b"<html" in content[:2000].lower()
        return
    assert not report_is_written(), "Run.write writes report.html: send it, not a zip"
    assert name == "journey-sim-run.zip"
    files = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert "journey-sim-run/metrics.json" in files
    assert "journey-sim-run/report.html" not in files


def test_the_download_is_the_runs_report(explorer: Explorer) -> None:
    name, content = explorer.report(explorer.journey, "baseline",
                                    {**defaults(explorer), "checkout.hidden_fees": False})
    check_download(name, content)
    with pytest.raises(InputError, match=r"checkout\.steps"):
        explorer.report(explorer.journey, "baseline", {**defaults(explorer),
                                                       "checkout.steps": 0})


# ------------------------------------------------------------------------ command line
def explore(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim.explore", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, check=False)


def test_help_exits_0() -> None:
    done = explore("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--port", "--host", "--no-browser", "--market-size", "--replications"):
        assert option in done.stdout


def test_bad_settings_exit_2_with_one_line() -> None:
    done = explore("--market-size", "0", "--no-browser")
    assert done.returncode == 2
    assert "market.size = 0: an integer >= 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_taken_port_is_an_os_error() -> None:
    from dash import Dash

    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError):
        serve(Dash(__name__), "127.0.0.1", taken.getsockname()[1])


# ------------------------------------------------------------------------ in a browser
def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


@pytest.fixture
def server() -> Iterator[str]:
    """``python -m sim.explore`` on a free port and a small market, as a user starts it;
    stopped at the end, and checked gone (the process and its port)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.explore", "--port", str(port), "--no-browser",
         "--market-size", "3000", "--replications", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline, printed = time.monotonic() + 120, ""
        while url not in printed:
            assert proc.poll() is None, f"the explorer stopped:\n{printed}{proc.stdout.read()}"
            assert time.monotonic() < deadline, f"no address printed in 120 s:\n{printed}"
            if select.select([proc.stdout], [], [], 1.0)[0]:
                printed += proc.stdout.readline()
        assert "3,000 people, 2 replications" in printed
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        proc.stdout.close()
    # nothing left: the process is reaped and nobody listens on the port
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (set CHROMIUM to another)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def percent(page: Any) -> float:
    return float(page.inner_text("#value-conversion_rate").rstrip(" %"))


def wait_for_new_value(page: Any, old: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(
        "old => document.querySelector('#value-conversion_rate').innerText !== old",
        arg=old, timeout=timeout_ms)


def no_horizontal_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width}px wide"


def shots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EXPLORE_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def whatif(page: Any, url: str, shots: Path, name: str, full: bool = True) -> None:
    """Move levers, type impossible values; in ``full``, download the report and switch
    the scenario too."""
    page.goto(url)
    page.wait_for_selector("#value-conversion_rate", timeout=60_000)
    assert re.search(r"agent engine, 3,000 people, 2 replications x 730 days: \d+\.\d s",
                     page.inner_text("#run-info"))
    start = page.inner_text("#value-conversion_rate")
    # hidden fees off: conversion rises
    page.click("#lever-checkout-hidden-fees label:has-text('no')")
    wait_for_new_value(page, start)
    fees_off = percent(page)
    assert fees_off > float(start.rstrip(" %"))
    # the checkout-pages slider from 5 down to 1 with the keyboard: its box follows, and
    # conversion rises again
    page.locator("#lever-checkout-steps [role=slider]").first.focus()
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    box = page.locator("#lever-checkout-steps input[type=number]")
    page.wait_for_function("() => document.querySelector("
                           "'#lever-checkout-steps input[type=number]').value === '1'")
    wait_for_new_value(page, f"{fees_off:.2f} %")
    assert percent(page) > fees_off
    page.wait_for_timeout(500)  # let the bars settle
    page.screenshot(path=str(shots / f"{name}_whatif.png"))
    no_horizontal_overflow(page)
    # impossible values typed in: the command line's message, the results dimmed
    for selector, typed, message in (
            ("#lever-channels-search-spend-per-day", "-5",
             "channels.search.spend_per_day = -5.0: a finite number in [0, 1e+09]"),
            ("#lever-checkout-steps", "0", "checkout.steps = 0: an integer >= 1")):
        field = page.locator(f"{selector} input[type=number]")
        field.fill(typed)
        field.press("Enter")
        page.wait_for_selector("#alert:not([hidden])", timeout=60_000)
        page.wait_for_function("m => document.querySelector('#alert').innerText.includes(m)",
                               arg=message, timeout=60_000)
        assert "Traceback" not in page.inner_text("#alert")
        assert page.get_attribute("#result-body", "class") == "stale"
        field.fill("40" if "spend" in selector else "1")
        field.press("Enter")
        page.wait_for_selector("#alert", state="hidden", timeout=60_000)
    box.fill("0")
    box.press("Enter")
    page.wait_for_selector("#alert:not([hidden])", timeout=60_000)
    page.screenshot(path=str(shots / f"{name}_error.png"))
    box.fill("1")
    box.press("Enter")
    page.wait_for_selector("#alert", state="hidden", timeout=60_000)
    if not full:
        return
    # the report of the current settings
    with page.expect_download(timeout=120_000) as info:
        page.click("#download-button")
    download = info.value
    saved = shots / download.suggested_filename
    download.save_as(saved)
    check_download(download.suggested_filename, saved.read_bytes())
    # another scenario: the levers take its values, and nothing differs from its baseline
    page.click("#scenario")
    page.get_by_role("option", name="guest checkout").click()
    page.wait_for_function("() => document.querySelector('#scenario-description')"
                           ".innerText.startsWith('Guest checkout')")
    forced = page.locator("#lever-checkout-forced-account input[type=radio]")
    page.wait_for_function("() => document.querySelectorAll("
                           "'#lever-checkout-hidden-fees input[type=radio]')[0].checked")
    assert forced.nth(1).is_checked()  # "no": the scenario's guest checkout
    page.wait_for_function("() => document.querySelector('#card-conversion_rate')"
                           ".innerText.includes('no change from the baseline')")


def classroom(page: Any, shots: Path, name: str) -> None:
    """Run one replication, play it fast, pause it."""
    page.click("text=Class mode")
    page.click("#animate-button")
    page.wait_for_selector("#animation .updatemenu-button", timeout=60_000)
    title = page.locator("#animation .gtitle")
    first = title.text_content()
    assert first.startswith("Day 1 of 730")
    buttons = page.locator("#animation .updatemenu-button")
    buttons.nth(3).click()  # ▶ fast
    page.wait_for_function(
        "t => document.querySelector('#animation .gtitle').textContent !== t", arg=first)
    buttons.nth(1).click()  # ❚❚
    page.wait_for_timeout(2 * dict(SPEEDS)["fast"] + 200)  # a frame under way ends
    paused = title.text_content()
    page.wait_for_timeout(600)
    assert title.text_content() == paused
    page.screenshot(path=str(shots / f"{name}_class.png"), full_page=True)
    no_horizontal_overflow(page)


def test_in_a_browser(server: str, browser: Any, tmp_path: Path) -> None:
    """The app as a user meets it, wide (1280x800) and narrow (390x844: the levers, the
    message and the class mode again, for the layout)."""
    shots = shots_folder(tmp_path)
    for name, size in (("wide", (1280, 800)), ("narrow", (390, 844))):
        page = browser.new_page(viewport={"width": size[0], "height": size[1]},
                                accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda err, errors=errors: errors.append(str(err)))
        whatif(page, server, shots, name, full=name == "wide")
        classroom(page, shots, name)
        assert not errors, errors
        page.close()

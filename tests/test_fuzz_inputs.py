"""Any input either runs or stops with one message: a property-based fuzz of every key.

Every key of the composed config (on a small market) is given values a careless or hostile
user might type on the command line: NaN, infinities, huge and negative numbers, text where
a number belongs, empty lists and maps, interpolations of unset environment variables. The
whole pipeline runs as ``python -m sim`` would run it (``sim.run`` composes, validates,
checks the memory and work guards, simulates, and ``Run.write`` writes every file and
figure). The property: the run finishes and its folder is complete (``metrics.json``,
written last, is there with every other output), or it raises ``sim.InputError`` and
leaves no finished-looking folder; never another exception, never longer than the time
bound. The work guard's limit is lowered for the test, so a valid but big run is refused
by its estimate instead of being run. A few of the same inputs go through the command line
too (one ``error:`` line, exit status 2, no run folder).
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, ListConfig, OmegaConf
from test_cli import run_cli

import sim
import sim.api
from sim import io
from sim.errors import InputError
from sim.model.config import compose_config

BASE = ["run=smoke", "market.size=300", "run.horizon_days=60", "run.replications=2",
        "run.progress=false"]
WORK_LIMIT_S = 15.0  # the guard's limit in this test: bigger runs are refused up front
TIME_BOUND_S = 120.0  # one example: a run the guard lets through finishes well within it


def _leaves(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of a composed config that a command-line override can name."""
    if isinstance(node, DictConfig):
        for key in node:
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _leaves(node[key], path)
    elif isinstance(node, ListConfig):
        return  # list items cannot be named by an override; the list itself can


KEYS = sorted(_leaves(compose_config(BASE)))

HOSTILE = st.sampled_from([
    "nan", "inf", "-inf", "1e308", "-1e308", "1e-320", "0", "-1", "1", "0.5", "2", "100",
    "1000000000000000000000000000000", "-1000000000000000000000000000000",
    "abc", "''", "' '", "null", "[]", "{}", "[1,2]", "{a: 1}", "true", "false",
    "'${oc.env:JOURNEY_SIM_SURELY_UNSET}'", "'${no.such.key}'", "'../../x'",
    "'/dev/zero'", "exponential", "fixed",
])
NUMBERS = (st.floats(allow_nan=True, allow_infinity=True).map(repr)
           | st.integers(-(10 ** 20), 10 ** 20).map(str))
VALUES = HOSTILE | NUMBERS


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body takes longer than ``seconds``."""
    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds:g} s: a hang")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_or_refuse(overrides: list[str], out: Path) -> str:
    """Run as the CLI does; ``"ran"`` or ``"refused"``; any other outcome fails."""
    try:
        with time_bound(TIME_BOUND_S):
            result = sim.run(overrides=[*BASE, *overrides])
            written = result.write(out, plots=True)
    except InputError as err:
        assert str(err).strip(), "an input error must say what is wrong"
        assert not io.is_complete(out)
        return "refused"
    assert io.is_complete(out)
    assert {p.name for p in written} <= {p.name for p in out.iterdir()}
    # metrics.json is the last of the outputs; report.html, a view of them, comes after it
    assert (out / "metrics.json").stat().st_mtime_ns >= max(
        p.stat().st_mtime_ns for p in written if p.name != io.REPORT_FILE)
    for name in ("conversion_rate", "npv", "ltv.mean"):
        value = result.summary[name].mean
        assert not math.isinf(value), (name, value)
    return "ran"


@pytest.fixture(autouse=True)
def low_work_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim.api, "WORK_LIMIT_SECONDS", WORK_LIMIT_S)


def _fuzz(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    n = data.draw(st.integers(1, 3), label="keys")
    overrides = [f"{data.draw(st.sampled_from(KEYS), label='key')}={data.draw(VALUES)}"
                 for _ in range(n)]
    out = tmp_path_factory.mktemp("fuzz")
    start = time.perf_counter()
    event(run_or_refuse(overrides, out))
    assert time.perf_counter() - start < TIME_BOUND_S


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_override_runs_or_is_one_input_error(data: st.DataObject,
                                                 tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    _fuzz(data, tmp_path_factory)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_override_runs_or_is_one_input_error_many(data: st.DataObject,
                                                      tmp_path_factory: pytest.TempPathFactory
                                                      ) -> None:
    _fuzz(data, tmp_path_factory)


def test_the_fuzz_can_tell_a_run_from_a_refusal(tmp_path: Path) -> None:
    assert run_or_refuse([], tmp_path / "a") == "ran"
    assert run_or_refuse(["checkout.weights.trust=nan"], tmp_path / "b") == "refused"
    with pytest.raises(TimeoutError), time_bound(0.2):
        time.sleep(5)


# ------------------------------------------------------------------ the issue's probes
@pytest.mark.parametrize("override", [
    "channels.social.hill_shape=1000",
    "economics.order_value_mean=1e308",
    "channels.paid_ads.fixed_cost_per_day=1e308",
    "checkout.weights.per_missing_payment_method=nan",
    "checkout.weights.trust=1e308",
    "checkout.weights.per_second_load=inf",
    "run.tick_days=1e-9",
    "run.horizon_days=100000",
    "+foo=1",
    "+checkout.hiden_fees=false",
    "channels={}",
    "market.segments={}",
    "journey.stages={}",
    "compare=seo",
    "scenario.description=${oc.env:JOURNEY_SIM_SURELY_UNSET}",
])
def test_issue_probes_stop_with_one_input_error(override: str) -> None:
    with pytest.raises(InputError) as err:
        sim.run(overrides=[*BASE, "run.engine=fast", override])
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize(("scenarios", "rank_by", "words"), [
    (["seo"], "bogus", "compare_rank = 'bogus'"),
    (["seo"], "roi", "compare_rank = 'roi'"),
    (["seo"], "ltv", "compare_rank = 'ltv'"),
    (123, "npv", "compare = 123"),
    ([1, 2], "npv", "compare = [1, 2]"),
    (["seo", "seo"], "npv", "each scenario once"),
    (["seo", "no_such"], "npv", "no_such"),
])
def test_comparison_options_checked_before_any_run(monkeypatch: pytest.MonkeyPatch,
                                                   scenarios: Any, rank_by: str,
                                                   words: str) -> None:
    def no_runs(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a simulation started before the options were checked")

    monkeypatch.setattr(sim.api, "run_experiment", no_runs)
    with pytest.raises(InputError, match=re.escape(words)):
        sim.api.compare(scenarios, overrides=BASE, rank_by=rank_by)


@pytest.mark.parametrize("override", [
    "economics.order_value_mean=1e308",  # the default run; each probe is a new interpreter
    *(pytest.param(o, marks=pytest.mark.slow) for o in (
        "run.engine=fast run.tick_days=1e-9",
        "compare=seo compare_rank=roi",
        "compare=seo scenario=guest_checkout",
        "scenario.description=${oc.env:JOURNEY_SIM_SURELY_UNSET}")),
])
def test_cli_probes_exit_2_with_one_line_before_anything_runs(tmp_path: Path,
                                                              override: str) -> None:
    start = time.perf_counter()
    proc = run_cli(tmp_path, *BASE, *override.split())
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()  # refused before Hydra made a run folder
    assert time.perf_counter() - start < 60


def test_env_interpolation_typed_by_the_user_is_their_choice(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """On the command line a resolver is the user's own choice: it resolves when it can."""
    monkeypatch.setenv("JOURNEY_SIM_TEST_NOTE", "from the environment")
    cfg = compose_config([*BASE, "scenario.description=${oc.env:JOURNEY_SIM_TEST_NOTE}"])
    assert OmegaConf.to_container(cfg, resolve=True)["scenario"]["description"] == (
        "from the environment")


@pytest.mark.parametrize("args", [
    pytest.param(["-m", "run=smoke", "run.seed=1,2", "a=["], marks=pytest.mark.slow),
    ["run=smoke", "a=["],
    pytest.param(["--no-such-option"], marks=pytest.mark.slow)])
def test_malformed_overrides_and_options_are_one_message(tmp_path: Path,
                                                         args: list[str]) -> None:
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "a=[" in proc.stderr or "--no-such-option" in proc.stderr
    assert proc.stderr.count("usage:") <= 1

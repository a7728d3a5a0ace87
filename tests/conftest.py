"""Shared fixtures. Slow tests run with --runslow, or whenever CI=true (as .ci/run does);
then the quick versions of slow tests (``quick_version_of``) are skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim.model.config import compose_config, to_container


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what is not asked for
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    runslow = config.getoption("--runslow") or os.environ.get("CI", "").lower() == "true"
    skip_quick_versions(items, runslow)
    if runslow:
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def skip_quick_versions(items: list[pytest.Item], runslow: bool) -> None:
    """``@pytest.mark.quick_version_of("test_x")``: the test is a smaller version of the slow
    ``test_x`` of its module (the same check on a smaller sample). It runs by default and is
    skipped when ``test_x`` runs too, which then checks the same with more power.

    A name that is not a test marked slow in the module is an error, so a quick version
    cannot silently lose its slow counterpart."""
    collected = {(item.module.__name__, item.originalname) for item in items
                 if isinstance(item, pytest.Function)}
    for item in items:
        mark = item.get_closest_marker("quick_version_of")
        if mark is None or not isinstance(item, pytest.Function):
            continue
        (name,) = mark.args
        full = getattr(item.module, name, None)
        if not any(m.name == "slow" for m in getattr(full, "pytestmark", [])):
            raise pytest.UsageError(f"{item.nodeid}: quick_version_of({name!r}) names no "
                                    f"test marked slow in {item.module.__name__}")
        if runslow and (item.module.__name__, name) in collected:
            item.add_marker(pytest.mark.skip(
                reason=f"quick version of {name}, which runs with the slow tests"))


@pytest.fixture
def make_config() -> Callable[..., dict[str, Any]]:
    """A composed config as a plain dict, ready to edit and pass to ``build_spec``.

    ``make_config("run=smoke", "checkout.hidden_fees=false")`` applies Hydra overrides.
    """

    def make(*overrides: str) -> dict[str, Any]:
        return to_container(compose_config(list(overrides)))

    return make


@pytest.fixture(scope="session")
def smoke_cli_run(tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One ``python -m sim run=smoke`` (every table and figure), shared by the tests that
    read what it wrote (test_cli, test_finance): the process and its run folder. The run
    happens in a temporary directory, importing the same ``sim`` as this test session."""
    import sim

    cwd = tmp_path_factory.mktemp("smoke_cli")
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)  # a user's setting would turn errors into tracebacks
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-m", "sim", "run=smoke",
                           f"hydra.run.dir={cwd / 'run'}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc, cwd / "run"

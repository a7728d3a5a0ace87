"""Shared fixtures. Slow tests run with --runslow, or whenever CI=true (as .ci/run does)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from sim.model.config import compose_config, to_container


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("CI", "").lower() == "true":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_config() -> Callable[..., dict[str, Any]]:
    """A composed config as a plain dict, ready to edit and pass to ``build_spec``.

    ``make_config("run=smoke", "checkout.hidden_fees=false")`` applies Hydra overrides.
    """

    def make(*overrides: str) -> dict[str, Any]:
        return to_container(compose_config(list(overrides)))

    return make

"""Each scenario's own uncertainty (``scenario.uncertainty``): the ranges of its effect sizes
and cost that a probabilistic sensitivity analysis draws (``psa.draws``).

For every scenario file:

- its assumptions read without error together with the baseline's (``read_uncertainty``),
  are not empty and include the scenario's cost (``scenario.cost_per_day``);
- an effect stated relative to the baseline (``effect: multiply`` or ``add``) names a key the
  scenario changes, keeps the direction the scenario claims over its whole range, and its
  range holds the scenario's point value (baseline value x [low, high], or + [low, high]);
  a plain value's range holds the key's point value;
- a key the scenario changes that the shared assumptions draw has the scenario's own
  relative assumption (else the scenario would keep its point value while the baseline's
  is drawn), and a plain value never replaces a shared assumption for one scenario only;
- a point run ignores the uncertainty: the same spec with or without it.

Each config is composed once (a module-level cache): composition is the slow part.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import pytest
from hydra import initialize_config_dir

from sim.model.config import (
    CONFIG_DIR,
    compose_config,
    register_configs,
    scenario_names,
    to_container,
)
from sim.model.spec import build_spec
from sim.model.uncertainty import Assumption, Uncertainty, read_uncertainty

SCENARIOS = [n for n in scenario_names() if n != "baseline"]
COST = "scenario.cost_per_day"


@pytest.fixture(scope="module", autouse=True)
def hydra_context() -> Iterator[None]:
    """One Hydra initialisation for the module; ``compose_config`` composes with it."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        yield


@cache
def config(name: str) -> dict[str, Any]:
    """The composed config of scenario ``name`` as a plain dict (callers copy to edit)."""
    return to_container(compose_config([f"scenario={name}"]))


@cache
def uncertainty(name: str) -> Uncertainty:
    """The assumptions of the baseline and scenario ``name`` together."""
    return read_uncertainty({"baseline": config("baseline"), name: config(name)})


def own(name: str) -> list[Assumption]:
    return [a for a in uncertainty(name).assumptions if a.option == name]


def value(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for k in key.split("."):
        node = node[k]
    return node


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key paths -> leaf values."""
    if not isinstance(tree, dict) or not tree:
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, child in tree.items():
        out |= flatten(child, f"{prefix}{key}.")
    return out


@cache
def changed(name: str) -> frozenset[str]:
    """The keys the scenario changes (its ``scenario`` section left out)."""
    base, scen = flatten(config("baseline")), flatten(config(name))
    return frozenset(k for k in base.keys() | scen.keys()
                     if not k.startswith("scenario.") and base.get(k) != scen.get(k))


def bounds(a: Assumption) -> tuple[float, float]:
    """The lowest and highest draw (draw units) of an assumption."""
    lo, hi = a.ppf(np.array([0.0, 1.0]))
    return float(lo), float(hi)


# ------------------------------------------------------------------------------ the tests
def test_every_scenario_is_listed() -> None:
    assert len(SCENARIOS) >= 25 and "seo" in SCENARIOS and "baseline" not in SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_reads_with_the_baseline_and_names_the_cost(name: str) -> None:
    mine = own(name)  # read_uncertainty raises SpecError naming any bad entry
    assert mine, f"{name}: no scenario.uncertainty"
    assert not [j for j in uncertainty(name).joints if j.option == name]
    keys = [a.key for a in mine]
    assert COST in keys, f"{name}: no range on {COST} (its assumptions: {keys})"
    cost = next(a for a in mine if a.key == COST)
    lo, hi = bounds(cost)
    assert cost.effect == "value" and lo < hi, f"{name}: the cost is a range, not a point"


@pytest.mark.parametrize("name", SCENARIOS)
def test_relative_effects_keep_the_claimed_direction(name: str) -> None:
    base, scen = config("baseline"), config(name)
    for a in own(name):
        if a.effect == "value":
            continue
        assert a.key in changed(name), (f"{name}: {a.key} is relative to the baseline but "
                                        "the scenario does not change it")
        b, s = float(value(base, a.key)), float(value(scen, a.key))
        lo, hi = bounds(a)
        if a.effect == "multiply":
            assert b != 0, f"{name}: {a.key} multiplies a baseline value of 0"
            side = np.sign(s / b - 1)
            assert side != 0 and np.sign(lo - 1) == np.sign(hi - 1) == side, (
                f"{name}: {a.key} x[{lo:g}, {hi:g}] crosses 1, the scenario's x{s / b:g} "
                "does not")
        else:
            side = np.sign(s - b)
            assert side != 0 and np.sign(lo) == np.sign(hi) == side, (
                f"{name}: {a.key} +[{lo:g}, {hi:g}] crosses 0, the scenario's "
                f"{s - b:+g} does not")


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_point_value_lies_within_the_range(name: str) -> None:
    base, scen = config("baseline"), config(name)
    for a in own(name):
        lo, hi = bounds(a)
        s = float(value(scen, a.key))
        if a.effect == "multiply":
            b = float(value(base, a.key))
            lo, hi = sorted((b * lo, b * hi))
        elif a.effect == "add":
            b = float(value(base, a.key))
            lo, hi = b + lo, b + hi
        tol = 1e-9 * max(1.0, abs(s))
        assert lo - tol <= s <= hi + tol, (f"{name}: {a.key} is {s:g} in the point run, "
                                           f"outside its range [{lo:g}, {hi:g}]")


@pytest.mark.parametrize("name", SCENARIOS)
def test_shared_keys_are_drawn_alike(name: str) -> None:
    shared = {a.key for a in uncertainty(name).assumptions if a.option is None}
    shared |= {n for j in uncertainty(name).joints if j.option is None for n in j.names}
    mine = {a.key: a for a in own(name)}
    for key in sorted(changed(name) & shared):
        assert key in mine and mine[key].effect != "value", (
            f"{name} changes {key}, which the shared assumptions draw: give it an effect "
            "relative to the baseline (multiply or add), else the scenario keeps its point "
            "value while the baseline's is drawn")
    for key, a in mine.items():
        assert a.effect != "value" or key not in shared, (
            f"{name}: a value of its own for {key}, which the shared assumptions draw for "
            "every option: state it relative to the baseline")


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_point_run_ignores_the_uncertainty(name: str) -> None:
    cfg = copy.deepcopy(config(name))
    assert cfg["scenario"]["uncertainty"]
    plain = copy.deepcopy(cfg)
    plain["scenario"]["uncertainty"] = {}  # the schema's default: a file without it
    # complete: both are whole plain dicts from to_container (skips the slow schema merge)
    assert repr(build_spec(cfg, complete=True)) == repr(build_spec(plain, complete=True))


def test_relative_draws_move_with_the_baselines_draw() -> None:
    """A multiplier applied in a PSA point multiplies the baseline's drawn value there."""
    u = uncertainty("cart_reminders")
    configs = {"baseline": config("baseline"), "cart_reminders": config("cart_reminders")}
    point = {"checkout.recovery_prob": 0.08, "cart_reminders:checkout.recovery_prob": 1.5}
    base = u.apply(configs, "baseline", point)
    scen = u.apply(configs, "cart_reminders", point)
    assert math.isclose(base["checkout"]["recovery_prob"], 0.08)
    assert math.isclose(scen["checkout"]["recovery_prob"], 0.12)

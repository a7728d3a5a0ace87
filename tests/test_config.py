"""Config composition and validation: every shipped config composes and builds a spec,
typos and wrong types fail at compose time with their key path, and ``build_spec`` names
the key path, the value and the allowed range of every problem it finds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf

from sim.errors import InputError
from sim.model.config import CONFIG_DIR, SCENARIO_DIR, compose_config
from sim.model.distributions import KINDS
from sim.model.spec import SpecError, build_spec

MakeConfig = Callable[..., dict[str, Any]]


# ------------------------------------------------------------------ option discovery
def _config_options() -> list[tuple[str, str]]:
    """(group, option) for every YAML file of every group folder and every scenario.

    Listed from the folders, so a new preset or scenario is tested without editing this file.
    """
    options = [
        (folder.name, path.stem)
        for folder in sorted(p for p in CONFIG_DIR.iterdir() if p.is_dir())
        for path in sorted(folder.glob("*.yaml"))
    ]
    options += [("scenario", path.stem) for path in sorted(SCENARIO_DIR.glob("*.yaml"))]
    return options


CONFIG_OPTIONS = _config_options()
JOURNEYS = [name for group, name in CONFIG_OPTIONS if group == "journey"]


def test_discovery_finds_the_documented_options() -> None:
    found = set(CONFIG_OPTIONS)
    for journey in ("four_stage", "five_stage", "six_stage", "six_stage_decision"):
        assert ("journey", journey) in found
    assert {("run", "default"), ("run", "smoke"), ("scenario", "baseline")} <= found


def test_every_group_folder_is_in_the_defaults_list() -> None:
    """A group folder left out of config.yaml would be tested here but never used."""
    defaults = OmegaConf.load(CONFIG_DIR / "config.yaml").defaults
    in_defaults = {next(iter(d)) for d in defaults if not isinstance(d, str)}
    folders = {group for group, _ in CONFIG_OPTIONS}
    assert folders == in_defaults


@pytest.mark.parametrize(("group", "option"), [
    # the scenarios: slow here, composed and validated in the default run by
    # test_compare.test_scenario_composes_validates_and_changes_only_its_keys
    pytest.param(g, o, id=f"{g}={o}", marks=pytest.mark.slow if g == "scenario" else ())
    for g, o in CONFIG_OPTIONS])
def test_every_config_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_config([f"{group}={option}"])
    spec = build_spec(cfg)
    if group == "journey":
        assert spec.journey_name == cfg.journey.name
        assert [s.name for s in spec.stages] == list(cfg.journey.stages)
    if group == "scenario":
        assert spec.scenario_name == option
        assert cfg.scenario.description.strip()


# ----------------------------------------------------------------- journey reports
EXPECTED_REPORT = {
    "four_stage": ["awareness", "consideration", "decision", "purchase", "loyalty"],
    "five_stage": ["awareness", "consideration", "purchase", "retention", "advocacy"],
    "six_stage": ["awareness", "consideration", "intent", "purchase", "retention", "advocacy"],
    "six_stage_decision": ["awareness", "consideration", "decision", "purchase", "retention",
                           "advocacy"],
}
# life after the first purchase: the engine states each framework stage covers
EXPECTED_LIFE_MAPPING = {
    "four_stage": {"purchase": ["purchase"], "loyalty": ["retention", "advocacy"]},
    "five_stage": {"purchase": ["purchase"], "retention": ["retention"],
                   "advocacy": ["advocacy"]},
    "six_stage": {"purchase": ["purchase"], "retention": ["retention"],
                  "advocacy": ["advocacy"]},
    "six_stage_decision": {"purchase": ["purchase"], "retention": ["retention"],
                           "advocacy": ["advocacy"]},
}


@pytest.mark.parametrize("journey", sorted(EXPECTED_REPORT))
def test_known_journey_reports_use_framework_stage_names(journey: str) -> None:
    spec = build_spec(compose_config([f"journey={journey}"]))
    assert [label for label, _ in spec.report] == EXPECTED_REPORT[journey]
    mapped = {label: [spec.states[c] for c in codes] for label, codes in spec.report}
    for label, states in EXPECTED_LIFE_MAPPING[journey].items():
        assert mapped[label] == states, label
    # no preset reports churned customers as a framework stage
    assert not any("churned" in states for states in mapped.values())


@pytest.mark.parametrize("journey", JOURNEYS)
def test_journey_report_maps_onto_engine_states(journey: str) -> None:
    cfg = compose_config([f"journey={journey}"])
    spec = build_spec(cfg)
    framework = [s.strip() for s in cfg.journey.description.split(",")]
    labels = [label for label, _ in spec.report]
    # the framework's names from the description; the first purchase keeps its engine name
    assert set(labels) <= {*framework, "purchase"}
    assert len(set(labels)) == len(labels)
    assert labels[0] == framework[0]
    for label, mapped in cfg.journey.report.items():
        assert mapped, label
        assert set(mapped) <= set(spec.states) - {"lost"}, label
    # the framework's order follows the journey: first engine state of each label increases
    firsts = [min(codes) for _, codes in spec.report]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    assert spec.states[spec.report[0][1][0]] == spec.stages[0].name
    assert "purchase" in [spec.states[c] for _, codes in spec.report for c in codes]


# ------------------------------------------------------- compose-time key/type errors
def _chain(err: BaseException) -> str:
    """The text of an exception and of everything it was raised from."""
    parts = []
    e: BaseException | None = err
    while e is not None:
        parts.append(str(e))
        e = e.__cause__ or e.__context__
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("override", "key_path"),
    [
        ("checkout.hiden_fees=false", "checkout.hiden_fees"),
        ("market.sise=10", "market.sise"),
        ("journey.stages.awareness.dwel.mean_days=2", "journey.stages.awareness.dwel"),
        ("market.size=abc", "market.size"),
        ("run.replications=two", "run.replications"),
        ("checkout.hidden_fees=maybe", "checkout.hidden_fees"),
    ],
)
def test_typo_or_wrong_type_fails_at_compose_time_with_key_path(override: str,
                                                                 key_path: str) -> None:
    # Hydra's own exception, or one InputError that keeps Hydra's key path (issue 12)
    with pytest.raises((HydraException, InputError)) as info:
        compose_config([override])
    text = _chain(info.value)
    assert f"full_key: {key_path}" in text or f"(key {key_path})" in text, text


# ----------------------------------------------------------- build_spec bad input
def _problem(cfg: dict[str, Any], path: str) -> str:
    """Build a spec that must fail; return the message line for ``path`` (exactly one)."""
    with pytest.raises(SpecError) as info:
        build_spec(cfg)
    err = info.value
    assert [p for p, _, _ in err.problems].count(path) == 1, err.problems
    lines = [ln for ln in str(err).splitlines() if ln.strip().startswith(f"- {path} =")]
    assert len(lines) == 1, str(err)
    return lines[0]


def test_exits_summing_over_one(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["consideration"]["exits"]["intent"] = 0.9  # 0.10 + 0.9 + 0.05
    line = _problem(cfg, "journey.stages.consideration.exits")
    assert "1.05" in line
    assert "at most 1" in line


def test_negative_mean_days(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["awareness"]["dwell"]["mean_days"] = -2.0
    line = _problem(cfg, "journey.stages.awareness.dwell.mean_days")
    assert "-2" in line
    assert "> 0" in line


@pytest.mark.parametrize("cv", [0.0, -0.5])
def test_gamma_cv_not_positive(make_config: MakeConfig, cv: float) -> None:
    cfg = make_config()
    assert cfg["journey"]["stages"]["consideration"]["dwell"]["kind"] == "gamma"
    cfg["journey"]["stages"]["consideration"]["dwell"]["cv"] = cv
    line = _problem(cfg, "journey.stages.consideration.dwell.cv")
    assert repr(cv) in line
    assert "[0.01, 10]" in line


def test_segment_shares_not_summing_to_one(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["market"]["segments"]["value"]["share"] = 0.6  # 0.6 + 0.35 + 0.15
    line = _problem(cfg, "market.segments.*.share")
    assert "1.1" in line
    assert "summing to 1" in line


def test_checkout_unreachable(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["intent"]["exits"] = {"consideration": 0.3}
    line = _problem(cfg, "journey.stages")
    assert "['awareness', 'consideration', 'intent']" in line
    assert "'checkout'" in line and "reachable from 'awareness'" in line


def test_unknown_distribution_kind(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["intent"]["dwell"]["kind"] = "pareto"
    line = _problem(cfg, "journey.stages.intent.dwell.kind")
    assert "'pareto'" in line
    assert all(kind in line for kind in KINDS)


def test_exit_to_unknown_stage(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["intent"]["exits"]["nowhere"] = 0.1
    line = _problem(cfg, "journey.stages.intent.exits.nowhere")
    assert "0.1" in line
    assert all(s in line for s in ("awareness", "consideration", "intent", "'checkout'"))


def test_probability_outside_unit_interval(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["advocacy"]["advocate_prob"] = 1.5
    line = _problem(cfg, "advocacy.advocate_prob")
    assert "1.5" in line
    assert "[0, 1]" in line


def test_zero_replications(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["run"]["replications"] = 0
    line = _problem(cfg, "run.replications")
    assert "= 0" in line
    assert ">= 1" in line


def test_unknown_engine(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["run"]["engine"] = "warp"
    line = _problem(cfg, "run.engine")
    assert "'warp'" in line
    assert "agent" in line


def test_several_problems_are_all_listed_in_one_error(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["awareness"]["dwell"]["mean_days"] = -1.0
    cfg["market"]["segments"]["value"]["share"] = 0.6
    cfg["advocacy"]["advocate_prob"] = 1.5
    cfg["run"]["replications"] = 0
    cfg["run"]["engine"] = "warp"
    paths = ["journey.stages.awareness.dwell.mean_days", "market.segments.*.share",
             "advocacy.advocate_prob", "run.replications", "run.engine"]
    with pytest.raises(SpecError) as info:
        build_spec(cfg)
    err = info.value
    assert len(err.problems) == len(paths)
    assert sorted(p for p, _, _ in err.problems) == sorted(paths)
    assert f"({len(paths)} problems)" in str(err)
    for path in paths:
        assert f"- {path} = " in str(err)


# Extreme values must become config errors, never raw exceptions or truncated messages.
def test_weibull_cv_out_of_range_names_the_whole_range(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["intent"]["dwell"].update(kind="weibull", cv=20.0)
    line = _problem(cfg, "journey.stages.intent.dwell.cv")
    assert "20.0" in line
    assert "[0.05, 10]" in line


@pytest.mark.parametrize("cv", [float("inf"), 1e-200])
def test_extreme_gamma_cv_is_a_spec_error(make_config: MakeConfig, cv: float) -> None:
    cfg = make_config()
    cfg["journey"]["stages"]["consideration"]["dwell"]["cv"] = cv
    line = _problem(cfg, "journey.stages.consideration.dwell.cv")
    assert "cv" in line


def test_huge_order_value_cv_is_a_spec_error(make_config: MakeConfig) -> None:
    cfg = make_config()
    cfg["economics"]["order_value_cv"] = 1e200
    line = _problem(cfg, "economics.order_value_cv")
    assert "1e+200" in line


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("order_value_mean", 0.0, "(0, 1e+07]"),
    ("order_value_cv", 0.0, "(0, 10]"),
    ("gross_margin", 1.5, "[0, 1]"),
])
def test_economics_out_of_range_is_a_spec_error(make_config: MakeConfig, key: str,
                                                value: float, allowed: str) -> None:
    cfg = make_config()
    cfg["economics"][key] = value
    line = _problem(cfg, f"economics.{key}")
    assert repr(value) in line and allowed in line


# ------------------------------------------------------------------- calibration
def test_default_checkout_abandonment_is_about_seventy_percent(make_config: MakeConfig) -> None:
    """The baseline checkout reproduces the published average abandonment of about 0.70."""
    spec = build_spec(make_config())
    assert 0.65 <= spec.checkout.abandon_prob <= 0.75


def test_zero_time_loop_is_rejected(make_config: MakeConfig) -> None:
    """Stages with fixed zero dwell that can loop would never let time advance."""
    cfg = make_config()
    instant = {"kind": "fixed", "mean_days": 0.0}
    cfg["journey"]["stages"]["intent"]["dwell"] = dict(instant)
    cfg["journey"]["stages"]["consideration"]["dwell"] = dict(instant)
    del cfg["journey"]["stages"]["consideration"]["exits"]["consideration"]  # no self-loop
    line = _problem(cfg, "journey.stages")
    assert "['consideration', 'intent']" in line
    assert "positive mean_days" in line
    # one instant stage without a loop through instant stages is fine
    cfg["journey"]["stages"]["consideration"]["dwell"] = {"kind": "exponential", "mean_days": 2}
    build_spec(cfg)

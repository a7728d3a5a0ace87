"""Validate a composed config and freeze it into a ``ModelSpec`` (Hydra stops here).

``build_spec`` checks every key it reads, collects every problem and raises a single
``SpecError`` listing each key path, the value given and what is allowed: one checker per
config section (``_check_market``, ``_check_journey``, ...) for what the section means, then
the schema-driven checks of ``sim.model.checks`` (unknown keys, every number in its range).
Everything the engine needs is derived here once: state codes, exit tables, the checkout
abandonment probability, daily reach and spend per channel, order-value parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from sim.errors import InputError
from sim.model.base import InstalledBase, read_base
from sim.model.checks import (
    Checker,
    check_ranges,
    declared_range,
    known_keys,
)
from sim.model.distributions import Dwell, make_dwell

__all__ = [
    "CHECKOUT",
    "LEVERS",
    "ORDER_VALUE_MODELS",
    "POST_STATES",
    "REFERRAL",
    "RETENTION_MODELS",
    "ChannelSpec",
    "CheckoutSpec",
    "ModelSpec",
    "SpecError",
    "StageSpec",
    "abandon_probability",
    "build_spec",
    "odds_shift",
]

CHECKOUT = "checkout"
# engine states after the prospect stages: the checkout, life as a customer (first purchase,
# retained = bought again or renewed, advocate, churned) and lost prospects
POST_STATES = (CHECKOUT, "purchase", "retention", "advocacy", "churned", "lost")
RETENTION_MODELS = ("repeat_purchase", "subscription", "none")
ORDER_VALUE_MODELS = ("lognormal", "gamma_gamma")
REFERRAL = "referral"
DAYS_PER_MONTH = 365.25 / 12
LEVERS = ("content", "usability", "social_proof")
ENGINES = ("agent", "fast")
# run.engine=auto (the default): the agent engine for small markets, where it is exact and
# quicker (the fast engine has a fixed cost per simulated day), the fast one at scale; the
# crossover measured on the baseline is between 20,000 and 100,000 people
AUTO_FAST_FROM = 50_000
# run settings that choose which replications run and how, or how they are shown, never
# their numbers
EXECUTION_FIELDS = frozenset({
    "replications", "first_replication", "n_jobs", "progress", "memory_guard", "work_guard",
    "target_rel_half_width", "precision_metric", "max_replications", "funnel_log"})
WORD_OF_MOUTH = "word_of_mouth"


class SpecError(InputError):
    """Every problem found in a config, one line each: key path, value, what is allowed."""

    def __init__(self, problems: list[tuple[str, Any, str]]):
        self.problems = problems
        lines = [f"  - {path} = {value!r}: {allowed}" for path, value, allowed in problems]
        n = len(problems)
        super().__init__(
            f"invalid configuration ({n} problem{'s' if n > 1 else ''}):\n" + "\n".join(lines)
        )


@dataclass(frozen=True)
class StageSpec:
    """A prospect stage: dwell time per visit, then one exit (or lost)."""

    name: str
    dwell: Dwell
    targets: tuple[int, ...]  # state codes of the exits
    probs: tuple[float, ...]  # their probabilities; 1 - sum is lost
    forward: tuple[bool, ...]  # moves towards purchase (a later stage or checkout)
    levers: frozenset[str]
    experience: float  # points added to the experience score at each visit


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    quality: float  # odds multiplier on forward exits of prospects it brought


@dataclass(frozen=True)
class CheckoutSpec:
    abandon_prob: float
    dwell: Dwell
    recovery_prob: float  # 0 when there is no reminder
    recovery_delay_days: float


@dataclass(frozen=True)
class RetentionSpec:
    """Life after the first purchase; rates per day, costs per active customer per day."""

    model: str  # repeat_purchase | subscription | none
    r: float  # BG/NBD: lambda ~ Gamma(shape r, rate alpha_days)
    alpha_days: float
    a: float  # p ~ Beta(a, b)
    b: float
    period_days: float  # subscription: theta ~ Beta(sub_alpha, sub_beta) per period
    sub_alpha: float
    sub_beta: float
    price_per_period: float
    rate_multiplier: float  # newsletter x recommendations
    order_value_multiplier: float  # cross-sell
    messaging_cost_per_day: float  # per active customer
    thank_you: bool
    thank_you_cost: float


@dataclass(frozen=True)
class LoyaltySpec:
    enabled: bool
    enrol_prob: float
    rate_multiplier: float
    dropout_multiplier: float
    discount: float
    cost_per_member_per_day: float
    reward_experience: float


@dataclass(frozen=True)
class SupportSpec:
    issue_prob: float
    agents: int
    handling: Dwell  # days
    patience_mean_days: float  # exponential
    first_contact_resolution: float
    cost_per_agent_per_day: float


@dataclass(frozen=True)
class ExperienceSpec:
    checkout_per_abandon_prob: float
    recovered_cart: float
    thank_you: float
    wait_per_day: float
    ticket_resolved: float
    ticket_unresolved: float
    ticket_abandoned: float
    bad_threshold: float
    leave_after_bad: float
    churn_per_point: float
    advocacy_per_point: float


@dataclass(frozen=True)
class AdvocacySpec:
    min_experience: float
    referral_rate_per_day: float  # with the programme multiplier applied
    referral_conversion: float
    referral_entry: int  # stage index where referred prospects enter
    reward_per_referral: float  # 0 without a programme


@dataclass(frozen=True)
class ModelSpec:
    """The validated, frozen model. Arrays are read-only."""

    market_size: int
    segment_names: tuple[str, ...]
    segment_shares: tuple[float, ...]
    segment_conversion: tuple[float, ...]  # odds multipliers
    segment_order_value: tuple[float, ...]
    segment_purchase_rate: tuple[float, ...]
    segment_churn: tuple[float, ...]
    segment_referral: tuple[float, ...]
    stages: tuple[StageSpec, ...]
    states: tuple[str, ...]  # stage names, then POST_STATES; a state's code is its index
    report: tuple[tuple[str, tuple[int, ...]], ...]  # framework stage -> state codes
    journey_name: str
    channels: tuple[ChannelSpec, ...]
    reach_per_day: np.ndarray  # (days, channels): awareness hazard per unaware person
    spend_per_day: np.ndarray  # (days, channels): spend plus fixed cost
    wom_q_per_day: float
    content_quality: float
    site_usability: float
    social_proof: float
    checkout: CheckoutSpec
    advocate_prob: float
    order_log_mean: float  # lognormal mu of the order value (before segment multiplier)
    order_log_sd: float
    order_value_model: str  # lognormal | gamma_gamma (ORDER_VALUE_MODELS)
    gg_p: float  # Gamma-Gamma: order shape p, spend level shape q and rate gamma
    gg_q: float
    gg_gamma: float
    gross_margin: float
    discount_rate_per_day: float  # continuous: ln(1 + annual rate) / 365
    retention: RetentionSpec
    loyalty: LoyaltySpec
    support: SupportSpec
    experience: ExperienceSpec
    advocacy: AdvocacySpec
    horizon_days: float
    seed: int
    replications: int
    engine: str
    tick_days: float  # fast engine: feedback (word of mouth, social proof) updated per tick
    n_jobs: int
    first_replication: int
    progress: bool
    memory_guard: bool
    work_guard: bool
    target_rel_half_width: float | None
    precision_metric: str
    max_replications: int
    funnel_log: bool  # funnel.png on a log scale (run.funnel_log)
    scenario_name: str
    scenario_description: str
    scenario_cost_per_day: float
    base: InstalledBase | None = None  # today's customers (market.base), None for none
    # the launch (scenario.start_day, scenario.ramp_days): the business before it, or None
    # when the scenario acts from time 0 on everyone (``launch_fields``)
    before: ModelSpec | None = None
    start_day: float = 0.0
    ramp_days: float = 0.0

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    def code(self, state: str) -> int:
        return self.states.index(state)

    @property
    def replication_ids(self) -> range:
        """The replications this run makes (``run.first_replication`` onwards)."""
        return range(self.first_replication, self.first_replication + self.replications)

    def fingerprint(self) -> str:
        """A digest of everything that decides a replication's numbers (the model and the
        seed, not which replications run or how): blocks of one experiment share it."""
        fields = [(f.name, _canonical(getattr(self, f.name))) for f in dataclasses.fields(self)
                  if f.name not in EXECUTION_FIELDS]
        return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]

    def switch_times(self, u: np.ndarray) -> np.ndarray:
        """The time the scenario reaches each customer whose rollout uniform is ``u``:
        spread evenly over the ramp from the launch (0 for everyone without a launch)."""
        if self.before is None:
            return np.zeros_like(u)
        return self.start_day + self.ramp_days * u

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Awareness sources: the channels, then word of mouth and referrals."""
        return (*(c.name for c in self.channels), WORD_OF_MOUTH, REFERRAL)


def _canonical(value: Any) -> Any:
    """A representation independent of the process (sets sorted, arrays by content)."""
    if dataclasses.is_dataclass(value):
        return tuple((f.name, _canonical(getattr(value, f.name)))
                     for f in dataclasses.fields(value))
    if isinstance(value, frozenset | set):
        return tuple(sorted(_canonical(v) for v in value))
    if isinstance(value, tuple | list):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, np.ndarray):
        return hashlib.sha256(value.tobytes()).hexdigest()
    return value


# ------------------------------------------------------------------- model functions
def odds_shift(probs: np.ndarray, forward: np.ndarray, multiplier: float) -> np.ndarray:
    """Exit probabilities after multiplying the odds of the forward exits by ``multiplier``.

    Forward exits are scaled by ``multiplier`` and everything is renormalised together with
    the lost share, so with one forward exit of probability p the result is the odds
    shift p' / (1 - p') = multiplier * p / (1 - p); probabilities stay in [0, 1].
    """
    probs = np.asarray(probs, dtype=float)
    w = np.where(forward, probs * multiplier, probs)
    lost = max(0.0, 1.0 - float(probs.sum()))
    return w / (w.sum() + lost)


def abandon_probability(c: Mapping[str, Any]) -> float:
    """Checkout abandonment: logistic of the intercept plus weighted friction components."""
    w = c["weights"]
    z = (
        c["base_logit"]
        + w["per_extra_step"] * (c["steps"] - 1)
        + w["forced_account"] * bool(c["forced_account"])
        + w["hidden_fees"] * bool(c["hidden_fees"])
        + w["per_missing_payment_method"]
        * max(0, c["payment_methods_expected"] - c["payment_methods"])
        + w["per_second_load"] * max(0.0, c["page_load_seconds"] - 1.0)
        + w["trust"] * c["trust"]
    )
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def daily_spend_and_reach(channels: Mapping[str, Any], n_days: int) -> tuple[np.ndarray, ...]:
    """Per day and channel: spend (with fixed cost) and reach (hazard per unaware person).

    Adstock is geometric and normalised, S_d = (1 - decay) spend_d + decay S_{d-1}, so a
    constant spend S has adstock S; before day 0 the always-on spend has run for ever.
    Reach = organic + max_reach * S^h / (S^h + K^h) (Hill saturation).
    """
    names = list(channels)
    spend = np.zeros((n_days, len(names)))
    reach = np.zeros((n_days, len(names)))
    cost = np.zeros((n_days, len(names)))
    days = np.arange(n_days)
    for j, name in enumerate(names):
        ch = channels[name]
        s = np.full(n_days, float(ch["spend_per_day"]))
        for camp in ch["campaigns"]:
            s[(days >= camp["start_day"]) & (days < camp["end_day"])] += camp["spend_per_day"]
        decay = float(ch["adstock_decay"])
        adstock = np.empty(n_days)
        level = float(ch["spend_per_day"])
        for d in range(n_days):
            level = (1 - decay) * s[d] + decay * level
            adstock[d] = level
        reach[:, j] = ch["organic_reach_per_day"] + ch["max_reach_per_day"] * _hill(
            adstock, float(ch["half_saturation_spend_per_day"]), float(ch["hill_shape"]))
        spend[:, j] = s
        cost[:, j] = s + ch["fixed_cost_per_day"]
    return cost, reach


def _hill(spend: np.ndarray, half_saturation: float, shape: float) -> np.ndarray:
    """The Hill saturation S^h / (S^h + K^h) of each spend S >= 0, in [0, 1].

    Computed directly where both powers are finite and K^h > 0 (every value the schema's
    ranges allow, spend up to 1e30 at shape 10), else as the logistic of
    h (ln S - ln K), which cannot overflow: the two agree to rounding.
    """
    with np.errstate(over="ignore", under="ignore"):
        sh, kh = spend ** shape, half_saturation ** shape
    if kh > 0 and math.isfinite(kh) and np.isfinite(sh).all():
        return sh / (sh + kh)
    out = np.zeros_like(spend, dtype=float)
    pos = spend > 0
    out[pos] = special.expit(shape * (np.log(spend[pos]) - math.log(half_saturation)))
    return out


# ------------------------------------------------------------------------ validation
# Each section's checker adds its problems to the Checker in the order the keys are read;
# build_spec calls them section by section, then checks every number against its schema range.
def _check_market(m: Mapping[str, Any], chk: Checker) -> None:
    """Section ``market``: its size and its segments, whose shares sum to 1."""
    if not (isinstance(m["size"], int) and m["size"] >= 1):
        chk.add("market.size", m["size"], "an integer >= 1")
    segs = m["segments"]
    if not segs:
        chk.add("market.segments", segs, "at least one segment")
    total = sum(s["share"] for s in segs.values() if isinstance(s["share"], int | float))
    if segs and abs(total - 1.0) > 1e-6:
        chk.add("market.segments.*.share", round(total, 9), "shares summing to 1")


def _check_base(c: Mapping[str, Any], chk: Checker) -> InstalledBase | None:
    """Key ``market.base``: the installed base's file, read and checked (None for none).

    The base's posteriors are those of the BG/NBD model, and the agent engine follows each
    customer: another retention model or ``run.engine=fast`` is refused.
    """
    path = c["market"]["base"]
    if path is None:
        return None
    if not isinstance(path, str) or not path.strip():
        chk.add("market.base", path, "the path of a CSV of today's customers, or null")
        return None
    if c["retention"]["model"] != "repeat_purchase":
        chk.add("market.base", path, "an installed base with retention.model="
                f"repeat_purchase (its customers' posteriors are BG/NBD's; retention.model "
                f"is {c['retention']['model']})")
    if c["run"]["engine"] == "fast":
        chk.add("market.base", path, "an installed base with run.engine=agent or auto (the "
                "agent engine follows each of today's customers; run.engine is fast)")
    segments = tuple(c["market"]["segments"])
    try:
        return read_base(path, segments)
    except InputError as err:
        chk.add("market.base", path, f"a readable customer base: {err}")
        return None


def _check_journey(j: Mapping[str, Any], chk: Checker) -> dict[str, Dwell | None]:
    """Section ``journey``: its stages, the graph they make and the report; each stage's
    dwell (None where invalid)."""
    stages = j["stages"]
    names = list(stages)
    if not stages:
        chk.add("journey.stages", stages, "at least one prospect stage")
    reserved = set(POST_STATES) & set(names)
    if reserved:
        chk.add("journey.stages", sorted(reserved), f"stage names other than {POST_STATES}")
    dwells: dict[str, Dwell | None] = {}
    bad_targets = False
    for name, st in stages.items():
        dwells[name], bad = _check_stage(name, st, names, chk)
        bad_targets = bad_targets or bad
    if stages and not bad_targets:
        _check_stage_graph(stages, chk)
    _check_report(j["report"], (*names, *POST_STATES), chk)
    return dwells


def _check_stage(name: str, st: Mapping[str, Any], names: list[str], chk: Checker
                 ) -> tuple[Dwell | None, bool]:
    """Section ``journey.stages.<name>``: dwell, exits and levers of one stage; its dwell
    (None where invalid) and whether an exit goes nowhere."""
    path = f"journey.stages.{name}"
    dwell = chk.dwell(f"{path}.dwell", st["dwell"])
    bad_targets = False
    for target, p in st["exits"].items():
        if target not in names and target != CHECKOUT:
            bad_targets = True
            chk.add(f"{path}.exits.{target}", p,
                    f"exits go to a stage ({', '.join(names)}) or '{CHECKOUT}'")
    probs = [p for p in st["exits"].values() if isinstance(p, int | float)]
    if sum(probs) > 1 + 1e-9:
        chk.add(f"{path}.exits", round(sum(probs), 9),
                "probabilities summing to at most 1 (the rest is lost)")
    for lever in st["levers"]:
        if lever not in LEVERS:
            chk.add(f"{path}.levers", lever, f"levers among {', '.join(LEVERS)}")
    return dwell, bad_targets


def _check_stage_graph(stages: Mapping[str, Any], chk: Checker) -> None:
    """Section ``journey.stages`` as a graph: time advances, and purchase can be reached."""
    names = list(stages)
    if loop := _zero_time_loop(stages):
        chk.add("journey.stages", loop, "no loop of stages whose dwell is fixed at 0 days "
                "(time would never advance): give one of them a positive mean_days")
    if not _purchase_reachable(stages, names[0]):
        chk.add("journey.stages", names,
                f"a graph where '{CHECKOUT}' (and so purchase) is reachable from '{names[0]}'")


def _check_report(report: Mapping[str, Any], states: tuple[str, ...], chk: Checker) -> None:
    """Section ``journey.report``: each framework stage mapped to engine states."""
    if not report:
        chk.add("journey.report", report, "at least one framework stage")
    for label, mapped in report.items():
        if not mapped or any(s not in states or s == "lost" for s in mapped):
            chk.add(f"journey.report.{label}", mapped,
                    f"a non-empty list of engine states among {', '.join(states[:-1])}")


def _zero_time_loop(stages: Mapping[str, Any]) -> list[str]:
    """Stages on a cycle whose every dwell is fixed at 0 days (time would never advance)."""
    instant = {n for n, st in stages.items()
               if st["dwell"]["kind"] == "fixed" and st["dwell"]["mean_days"] == 0}
    graph = {n: [t for t, p in stages[n]["exits"].items() if p > 0 and t in instant]
             for n in instant}
    state: dict[str, int] = {}  # 1 = on the DFS path, 2 = done

    def visit(n: str, path: list[str]) -> list[str]:
        state[n] = 1
        for t in graph[n]:
            if state.get(t) == 1:
                return [*path[path.index(t):], n] if t in path else [n, t]
            if t not in state and (loop := visit(t, [*path, n])):
                return loop
        state[n] = 2
        return []

    for n in graph:
        if n not in state and (loop := visit(n, [])):
            return sorted(set(loop))
    return []


def _purchase_reachable(stages: Mapping[str, Any], entry: str) -> bool:
    """Whether checkout can be reached from ``entry`` along exits of positive probability."""
    seen, todo = {entry}, [entry]
    while todo:
        for target, p in stages[todo.pop()]["exits"].items():
            if p > 0 and target == CHECKOUT:
                return True
            if p > 0 and target in stages and target not in seen:
                seen.add(target)
                todo.append(target)
    return False


def _check_channels(channels: Mapping[str, Any], chk: Checker) -> None:
    """Section ``channels``: names other than the built-in sources, campaigns that end."""
    for builtin in (WORD_OF_MOUTH, REFERRAL):
        if builtin in channels:
            chk.add(f"channels.{builtin}", "...", f"another name: {builtin} is built in")
    for name, ch in channels.items():
        p = f"channels.{name}"
        for i, camp in enumerate(ch["campaigns"]):
            if not camp["end_day"] > camp["start_day"]:
                chk.add(f"{p}.campaigns[{i}].end_day", camp["end_day"],
                        f"a day after start_day ({camp['start_day']})")


def _check_checkout(co: Mapping[str, Any], chk: Checker) -> Dwell | None:
    """Section ``checkout``: steps, payment methods and the dwell (None where invalid)."""
    if not (isinstance(co["steps"], int) and co["steps"] >= 1):
        chk.add("checkout.steps", co["steps"], "an integer >= 1")
    for key in ("payment_methods", "payment_methods_expected"):
        if not (isinstance(co[key], int) and co[key] >= 0):
            chk.add(f"checkout.{key}", co[key], "an integer >= 0")
    return chk.dwell("checkout.dwell", co["dwell"])


def _check_retention(ret: Mapping[str, Any], chk: Checker) -> None:
    """Section ``retention``: a known model (its numbers have ranges only)."""
    if ret["model"] not in RETENTION_MODELS:
        chk.add("retention.model", ret["model"], f"one of {', '.join(RETENTION_MODELS)}")


def _check_economics(e: Mapping[str, Any], chk: Checker) -> None:
    """Section ``economics``: a known order value model (its numbers have ranges only)."""
    if e["order_value_model"] not in ORDER_VALUE_MODELS:
        chk.add("economics.order_value_model", e["order_value_model"],
                f"one of {', '.join(ORDER_VALUE_MODELS)}")


def _check_support(su: Mapping[str, Any], chk: Checker) -> Dwell | None:
    """Section ``support``: agents and the handling time, in days (None where invalid)."""
    if not (isinstance(su["agents"], int) and su["agents"] >= 1):
        chk.add("support.agents", su["agents"], "an integer >= 1")
    if su["handling_mean_minutes"] not in declared_range("support", "handling_mean_minutes"):
        return None  # reported with the ranges, after every section
    try:
        return make_dwell(su["handling_kind"], su["handling_mean_minutes"] / 1440,
                          su["handling_cv"])
    except ValueError as err:
        key = "handling_kind" if "kind" in str(err) else "handling_cv"
        chk.add(f"support.{key}", su[key], str(err).rsplit(", got", 1)[0])
        return None


def _check_advocacy(a: Mapping[str, Any], names: list[str], chk: Checker) -> None:
    """Section ``advocacy``: referred prospects enter at one of the stages."""
    entry = a["referral_entry_stage"]
    if names and entry not in names:
        chk.add("advocacy.referral_entry_stage", entry, f"one of the stages: {', '.join(names)}")


def _check_run(r: Mapping[str, Any], chk: Checker) -> None:
    """Section ``run``: integer counts and seeds, a known engine."""
    if not (isinstance(r["replications"], int) and r["replications"] >= 1):
        chk.add("run.replications", r["replications"], "an integer >= 1")
    if not (isinstance(r["seed"], int) and r["seed"] >= 0):
        chk.add("run.seed", r["seed"], "an integer >= 0")
    if not (isinstance(r["n_jobs"], int) and r["n_jobs"] >= 1):
        chk.add("run.n_jobs", r["n_jobs"], "an integer >= 1")
    if not (isinstance(r["first_replication"], int) and r["first_replication"] >= 0):
        chk.add("run.first_replication", r["first_replication"], "an integer >= 0")
    if not (isinstance(r["max_replications"], int) and r["max_replications"] >= 2):
        chk.add("run.max_replications", r["max_replications"], "an integer >= 2")
    if r["engine"] not in (*ENGINES, "auto"):
        chk.add("run.engine", r["engine"], f"one of {', '.join(ENGINES)}, auto")


def _spend_and_reach(c: Mapping[str, Any], chk: Checker
                     ) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Spend and reach per day and channel once the numbers they are made of are valid;
    a config where no channel has reach on any day is refused: nobody would ever become
    aware, as word of mouth and referrals need buyers first."""
    if any(p.startswith(("channels", "run.horizon_days")) for p, _, _ in chk.problems):
        return None, None
    cost, reach = daily_spend_and_reach(c["channels"], math.ceil(c["run"]["horizon_days"]) + 1)
    if reach.size == 0 or not reach.max() > 0:
        chk.add("channels", sorted(c["channels"]),
                "at least one channel with reach on some day of the horizon "
                "(organic_reach_per_day > 0, or max_reach_per_day > 0 with spend: "
                "spend_per_day or a campaign): without one nobody ever becomes aware, "
                "as word of mouth and referrals need buyers first")
    return cost, reach


# -------------------------------------------------------------------------- building
def build_spec(cfg: Any, *, complete: bool = False, before: Any = None) -> ModelSpec:
    """Validate a composed config (DictConfig or nested dict) and freeze it.

    ``complete``: ``cfg`` is a plain dict made by ``to_container`` (every key there, every
    type right), perhaps with numbers changed since: it is checked as usual but not merged
    onto the schema again (that merge is most of the time this takes; a study builds
    hundreds of specs from one composed config).

    ``before``: the baseline's config (the same config with ``scenario=baseline``), needed
    when the scenario is launched during the run (``scenario.start_day`` or
    ``scenario.ramp_days`` above 0): the business runs as the baseline until each customer
    is reached (``launch_fields``).

    Raises
    ------
    SpecError
        listing every problem: key path, value given, what is allowed. Every key must be
        known to the schema (``sim.model.config``), and every number finite and within the range
        its schema field declares.
    """
    spec = _build(cfg, complete)
    launched = spec.start_day > 0 or spec.ramp_days > 0
    if not launched:
        return spec
    if before is None:
        raise SpecError([("scenario.start_day / scenario.ramp_days",
                          f"{spec.start_day:g} / {spec.ramp_days:g}",
                          "0 / 0 without the baseline's config: a launch runs the baseline "
                          "until then (the command line, sim.run(overrides=...), "
                          "sim.api.compare and sim.api.psa compose it; with a config of "
                          "your own, pass before=<the config with scenario=baseline>)")])
    base = _build(before, complete, agent=True)
    return dataclasses.replace(spec, **launch_fields(spec, base, spec.start_day,
                                                     spec.ramp_days))


def _build(cfg: Any, complete: bool, agent: bool = False) -> ModelSpec:
    """``build_spec`` without the launch: the spec of ``cfg`` alone, its ``start_day`` and
    ``ramp_days`` as given (``agent``: ``run.engine=auto`` picks the agent engine)."""
    chk = Checker()
    c = known_keys(cfg, chk, complete=complete)
    s = c["scenario"]
    launched = agent or s["start_day"] > 0 or s["ramp_days"] > 0
    if launched and c["run"]["engine"] == "fast" and not agent:
        chk.add("run.engine", "fast", "agent or auto for a scenario launched during the run "
                f"(scenario.start_day={s['start_day']:g}, scenario.ramp_days="
                f"{s['ramp_days']:g}): the agent engine follows each customer across the "
                "launch")
    _check_market(c["market"], chk)
    base = _check_base(c, chk)
    dwells = _check_journey(c["journey"], chk)
    _check_channels(c["channels"], chk)
    checkout_dwell = _check_checkout(c["checkout"], chk)
    _check_retention(c["retention"], chk)
    _check_economics(c["economics"], chk)
    # loyalty, experience and economics hold numbers only: check_ranges checks them
    handling = _check_support(c["support"], chk)
    _check_advocacy(c["advocacy"], list(c["journey"]["stages"]), chk)
    _check_run(c["run"], chk)
    check_ranges(c, chk)
    cost, reach = _spend_and_reach(c, chk)
    if chk.problems:
        raise SpecError(chk.problems)

    assert cost is not None and reach is not None  # computed above when valid
    return ModelSpec(
        **_market_fields(c["market"]),
        **_journey_fields(c["journey"], dwells),
        **_channel_fields(c["channels"], cost, reach),
        checkout=_checkout_spec(c["checkout"], checkout_dwell),  # type: ignore[arg-type]
        **_economics_fields(c["economics"]),
        retention=_retention_spec(c["retention"]),
        loyalty=_loyalty_spec(c["loyalty"]),
        support=_support_spec(c["support"], handling),  # type: ignore[arg-type]
        experience=_experience_spec(c["experience"]),
        **_advocacy_fields(c["advocacy"], list(c["journey"]["stages"])),
        **_run_fields(c["run"], c["market"]["size"], base is not None or launched),
        **_scenario_fields(c["scenario"]),
        base=base,
    )


def _market_fields(m: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``market``: its size and segments."""
    segs = m["segments"]
    return dict(
        market_size=m["size"],
        segment_names=tuple(segs),
        segment_shares=tuple(float(s["share"]) for s in segs.values()),
        segment_conversion=tuple(float(s["conversion"]) for s in segs.values()),
        segment_order_value=tuple(float(s["order_value"]) for s in segs.values()),
        segment_purchase_rate=tuple(float(s["purchase_rate"]) for s in segs.values()),
        segment_churn=tuple(float(s["churn"]) for s in segs.values()),
        segment_referral=tuple(float(s["referral"]) for s in segs.values()),
    )


def _journey_fields(j: Mapping[str, Any], dwells: Mapping[str, Dwell | None]
                    ) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``journey``: stages, states, report, levers."""
    states = (*j["stages"], *POST_STATES)
    code = {s: i for i, s in enumerate(states)}
    stage_specs = []
    for i, (name, st) in enumerate(j["stages"].items()):
        targets = tuple(code[t] for t in st["exits"])
        stage_specs.append(StageSpec(
            name=name,
            dwell=dwells[name],  # type: ignore[arg-type]
            targets=targets,
            probs=tuple(float(p) for p in st["exits"].values()),
            forward=tuple(t > i for t in targets),  # later stages and checkout
            levers=frozenset(st["levers"]),
            experience=float(st["experience"]),
        ))
    return dict(
        stages=tuple(stage_specs),
        states=states,
        report=tuple((label, tuple(code[s] for s in mapped))
                     for label, mapped in j["report"].items()),
        journey_name=j["name"],
        content_quality=float(j["content_quality"]),
        site_usability=float(j["site_usability"]),
        social_proof=float(j["social_proof"]),
    )


def _channel_fields(channels: Mapping[str, Any], cost: np.ndarray, reach: np.ndarray
                    ) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``channels``: each channel's quality, and its
    spend and reach per day made read-only."""
    cost.setflags(write=False)
    reach.setflags(write=False)
    return dict(
        channels=tuple(ChannelSpec(n, float(ch["quality"])) for n, ch in channels.items()),
        reach_per_day=reach,
        spend_per_day=cost,
    )


def _checkout_spec(co: Mapping[str, Any], dwell: Dwell) -> CheckoutSpec:
    """Section ``checkout`` frozen: abandonment, dwell and cart recovery."""
    return CheckoutSpec(
        abandon_prob=abandon_probability(co),
        dwell=dwell,
        recovery_prob=float(co["recovery_prob"]) if co["reminder"] else 0.0,
        recovery_delay_days=float(co["recovery_delay_days"]),
    )


def _economics_fields(e: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``economics``: order values, margin, discounting."""
    sigma = math.sqrt(math.log1p(e["order_value_cv"] ** 2))
    return dict(
        order_log_mean=math.log(e["order_value_mean"]) - sigma**2 / 2,
        order_log_sd=sigma,
        order_value_model=str(e["order_value_model"]),
        gg_p=float(e["gamma_gamma"]["p"]),
        gg_q=float(e["gamma_gamma"]["q"]),
        gg_gamma=float(e["gamma_gamma"]["gamma"]),
        gross_margin=float(e["gross_margin"]),
        discount_rate_per_day=math.log1p(e["annual_discount_rate"]) / 365.0,
    )


def _retention_spec(ret: Mapping[str, Any]) -> RetentionSpec:
    """Section ``retention`` frozen: the buying model and the messaging that shifts it."""
    rp, sub, msg = ret["repeat"], ret["subscription"], ret["messaging"]
    return RetentionSpec(
        model=ret["model"], r=float(rp["r"]), alpha_days=float(rp["alpha_days"]),
        a=float(rp["a"]), b=float(rp["b"]), period_days=float(sub["period_days"]),
        sub_alpha=float(sub["alpha"]), sub_beta=float(sub["beta"]),
        price_per_period=float(sub["price_per_period"]),
        rate_multiplier=(msg["newsletter_rate_multiplier"] if msg["newsletter"] else 1.0)
        * (msg["recommendations_rate_multiplier"] if msg["recommendations"] else 1.0),
        order_value_multiplier=(msg["cross_sell_order_value_multiplier"]
                                if msg["cross_sell"] else 1.0),
        messaging_cost_per_day=(
            (msg["newsletters_per_month"] * msg["cost_per_message"] if msg["newsletter"] else 0)
            + (msg["recommendations_cost_per_customer_per_month"]
               if msg["recommendations"] else 0)) / DAYS_PER_MONTH,
        thank_you=bool(msg["thank_you"]),
        thank_you_cost=float(msg["thank_you_cost"]) if msg["thank_you"] else 0.0,
    )


def _loyalty_spec(lo: Mapping[str, Any]) -> LoyaltySpec:
    """Section ``loyalty`` frozen, its cost per day."""
    return LoyaltySpec(
        enabled=bool(lo["enabled"]), enrol_prob=float(lo["enrol_prob"]),
        rate_multiplier=float(lo["rate_multiplier"]),
        dropout_multiplier=float(lo["dropout_multiplier"]), discount=float(lo["discount"]),
        cost_per_member_per_day=lo["cost_per_member_per_month"] / DAYS_PER_MONTH,
        reward_experience=float(lo["reward_experience"]),
    )


def _support_spec(su: Mapping[str, Any], handling: Dwell) -> SupportSpec:
    """Section ``support`` frozen, its times in days."""
    return SupportSpec(
        issue_prob=float(su["issue_prob"]), agents=int(su["agents"]),
        handling=handling,
        patience_mean_days=su["patience_mean_minutes"] / 1440,
        first_contact_resolution=float(su["first_contact_resolution"]),
        cost_per_agent_per_day=float(su["cost_per_agent_per_day"]),
    )


def _experience_spec(ex: Mapping[str, Any]) -> ExperienceSpec:
    """Section ``experience`` frozen, the waiting penalty per day."""
    return ExperienceSpec(**{k: float(v) for k, v in ex.items() if k != "wait_per_hour"},
                          wait_per_day=float(ex["wait_per_hour"]) * 24)


def _advocacy_fields(a: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``advocacy``: word of mouth, advocates and
    referrals, with the referral programme applied."""
    return dict(
        wom_q_per_day=float(a["wom_q_per_day"]),
        advocate_prob=float(a["advocate_prob"]),
        advocacy=AdvocacySpec(
            min_experience=float(a["min_experience"]),
            referral_rate_per_day=a["referral_rate_per_day"]
            * (a["program_rate_multiplier"] if a["program"] else 1.0),
            referral_conversion=float(a["referral_conversion"]),
            referral_entry=names.index(a["referral_entry_stage"]),
            reward_per_referral=float(a["reward_per_referral"]) if a["program"] else 0.0,
        ),
    )


def _run_fields(r: Mapping[str, Any], market_size: int, agent: bool = False
                ) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``run``; ``engine=auto`` chosen by market size
    (the agent engine whenever there is an installed base or a launch: ``agent``)."""
    return dict(
        horizon_days=float(r["horizon_days"]),
        seed=int(r["seed"]),
        replications=int(r["replications"]),
        engine=(r["engine"] if r["engine"] != "auto"
                else "fast" if market_size >= AUTO_FAST_FROM and not agent else "agent"),
        tick_days=float(r["tick_days"]),
        n_jobs=int(r["n_jobs"]),
        first_replication=int(r["first_replication"]),
        progress=bool(r["progress"]),
        memory_guard=bool(r["memory_guard"]),
        work_guard=bool(r["work_guard"]),
        target_rel_half_width=(None if r["target_rel_half_width"] is None
                               else float(r["target_rel_half_width"])),
        precision_metric=str(r["precision_metric"]),
        max_replications=int(r["max_replications"]),
        funnel_log=bool(r["funnel_log"]),
    )


# what a launch may not change: the scenario and the business before it share it, so each
# customer's draws mean the same on both sides of the launch
def _launch_fixed(spec: ModelSpec) -> dict[str, Any]:
    ret = spec.retention
    return {
        "the market (size, segments, installed base)": (
            spec.market_size, spec.segment_names, spec.segment_shares,
            spec.segment_conversion, spec.segment_order_value, spec.segment_purchase_rate,
            spec.segment_churn, spec.segment_referral, spec.base),
        "the journey's structure (stages, exits, dwell times)": (
            [(st.name, st.targets, st.forward, st.dwell) for st in spec.stages],
            spec.report, spec.checkout.dwell, spec.advocacy.referral_entry),
        "the channels' names": spec.channel_names,
        "word of mouth (advocacy.wom_q_per_day)": spec.wom_q_per_day,
        "the order value model": (spec.order_log_mean, spec.order_log_sd,
                                  spec.order_value_model, spec.gg_p, spec.gg_q, spec.gg_gamma),
        "the retention model and its priors": (ret.model, ret.r, ret.alpha_days, ret.a, ret.b,
                                               ret.period_days, ret.sub_alpha, ret.sub_beta),
        "the run (horizon, seed, engine, discount rate)": (
            spec.horizon_days, spec.seed, spec.engine, spec.tick_days,
            spec.discount_rate_per_day),
    }


def exposed_share(start_day: float, ramp_days: float, t: np.ndarray) -> np.ndarray:
    """The share of customers the scenario has reached by time ``t``: 0 before the launch,
    rising linearly over the ramp to 1."""
    t = np.asarray(t, dtype=float)
    if ramp_days == 0:
        return (t >= start_day).astype(float)
    return np.clip((t - start_day) / ramp_days, 0.0, 1.0)


def exposed_share_by_day(start_day: float, ramp_days: float, n_days: int) -> np.ndarray:
    """``exposed_share`` averaged over each day [d, d + 1), in closed form (its integral
    from 0 is 0 before the launch, (t - s)^2 / 2r on the ramp, then r / 2 + t - s - r)."""
    t = np.arange(n_days + 1, dtype=float) - start_day
    if ramp_days == 0:
        integral = np.maximum(t, 0.0)
    else:
        on_ramp = np.clip(t, 0.0, ramp_days)
        integral = on_ramp ** 2 / (2 * ramp_days) + np.maximum(t - ramp_days, 0.0)
    return np.diff(integral)


def launch_fields(after: ModelSpec, before: ModelSpec, start_day: float, ramp_days: float
                  ) -> dict[str, Any]:
    """The fields that make ``after`` (the scenario's spec) a launch on ``before`` (the
    baseline's): the two specs, the market-level day arrays mixed by the share reached each
    day. Raises SpecError when the scenario changes what a launch cannot (``LAUNCH_FIXED``).
    """
    fixed_before = _launch_fixed(before)
    for what, value in _launch_fixed(after).items():
        if _canonical(value) != _canonical(fixed_before[what]):
            raise SpecError([("scenario.start_day / scenario.ramp_days",
                              f"{start_day:g} / {ramp_days:g}",
                              f"0 / 0 for a scenario that changes {what}: a launch changes "
                              "how customers are reached and treated, not the market, the "
                              "journey's structure, the models or the run")])
    w = exposed_share_by_day(start_day, ramp_days, after.reach_per_day.shape[0])[:, None]
    reach = before.reach_per_day + w * (after.reach_per_day - before.reach_per_day)
    spend = before.spend_per_day + w * (after.spend_per_day - before.spend_per_day)
    reach.setflags(write=False)
    spend.setflags(write=False)
    return dict(before=before, start_day=start_day, ramp_days=ramp_days,
                reach_per_day=reach, spend_per_day=spend)


def _scenario_fields(s: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ModelSpec`` fields of section ``scenario``: its name, description and cost."""
    return dict(
        scenario_name=s["name"],
        scenario_description=s["description"],
        scenario_cost_per_day=float(s["cost_per_day"]),
        start_day=float(s["start_day"]),
        ramp_days=float(s["ramp_days"]),
    )

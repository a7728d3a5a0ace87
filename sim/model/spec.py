"""Validate a composed config and freeze it into a ``ModelSpec`` (Hydra stops here).

``build_spec`` checks every key it reads, collects every problem and raises a single
``SpecError`` listing each key path, the value given and what is allowed. Everything the
engine needs is derived here once: state codes, exit tables, the checkout abandonment
probability, daily reach and spend per channel, order-value parameters.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import math
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from sim.errors import InputError
from sim.model.config import Range, RootConfig, field_range, to_container
from sim.model.distributions import KINDS, Dwell, make_dwell

__all__ = [
    "CHECKOUT",
    "LEVERS",
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
    "numeric_values",
    "odds_shift",
    "unknown_keys",
]

CHECKOUT = "checkout"
# engine states after the prospect stages: the checkout, life as a customer (first purchase,
# retained = bought again or renewed, advocate, churned) and lost prospects
POST_STATES = (CHECKOUT, "purchase", "retention", "advocacy", "churned", "lost")
RETENTION_MODELS = ("repeat_purchase", "subscription", "none")
REFERRAL = "referral"
DAYS_PER_MONTH = 365.25 / 12
LEVERS = ("content", "usability", "social_proof")
ENGINES = ("agent", "fast")
# run.engine=auto (the default): the agent engine for small markets, where it is exact and
# quicker (the fast engine has a fixed cost per simulated day), the fast one at scale; the
# crossover measured on the baseline is between 20,000 and 100,000 people
AUTO_FAST_FROM = 50_000
# run settings that choose which replications run and how, never their numbers
EXECUTION_FIELDS = frozenset({
    "replications", "first_replication", "n_jobs", "progress", "memory_guard", "work_guard",
    "target_rel_half_width", "precision_metric", "max_replications"})
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
    scenario_name: str
    scenario_description: str
    scenario_cost_per_day: float

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
class _Checker:
    def __init__(self) -> None:
        self.problems: list[tuple[str, Any, str]] = []

    def add(self, path: str, value: Any, allowed: str) -> None:
        self.problems.append((path, value, allowed))

    def reported(self, path: str) -> bool:
        return any(p == path for p, _, _ in self.problems)

    def dwell(self, path: str, d: Mapping[str, Any]) -> Dwell | None:
        if d["kind"] not in KINDS:
            self.add(f"{path}.kind", d["kind"], f"one of {', '.join(KINDS)}")
            return None
        try:
            return make_dwell(d["kind"], d["mean_days"], d["cv"])
        except ValueError as err:
            key = "cv" if str(err).startswith("cv") else "mean_days"
            self.add(f"{path}.{key}", d[key], str(err).rsplit(", got", 1)[0])
            return None


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
    seen, todo = {entry}, [entry]
    while todo:
        for target, p in stages[todo.pop()]["exits"].items():
            if p > 0 and target == CHECKOUT:
                return True
            if p > 0 and target in stages and target not in seen:
                seen.add(target)
                todo.append(target)
    return False


# --------------------------------------------------------------- schema-driven checks
# maps whose entries the user names (a '+' override may add an entry to them)
_NAMED_MAPS = ("market.segments", "journey.stages", "journey.stages.*.exits", "journey.report",
               "channels")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dotted(keys: tuple[Any, ...]) -> str:
    """``("channels", "ads", "campaigns", 0, "end_day")``: ``channels.ads.campaigns[0].end_day``"""
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def _children(node: Any, tp: Any) -> Iterator[tuple[Any, Any, Any, dataclasses.Field | None]]:
    """(key, child, child's type, its schema field) of a config node of schema type ``tp``;
    keys the schema does not know come with type None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(node, Mapping):
        fields = {f.name: f for f in dataclasses.fields(tp)}
        for key, child in node.items():
            f = fields.get(key)
            yield key, child, (_hints(tp)[key] if f else None), f
    elif origin is dict and isinstance(node, Mapping):
        for key, child in node.items():
            yield key, child, args[1], None
    elif origin is list and isinstance(node, list):
        for i, child in enumerate(node):
            yield i, child, args[0], None


def unknown_keys(node: Any, tp: Any = RootConfig, keys: tuple[Any, ...] = ()
                 ) -> Iterator[tuple[tuple[Any, ...], Any, list[str]]]:
    """Every key of a config (a plain nested dict) that the schema does not know: its path,
    its value and the keys known at that place. ``hydra`` at the top is Hydra's own."""
    for key, child, child_tp, _ in _children(node, tp):
        if child_tp is None:
            if not (keys == () and key == "hydra"):
                yield (*keys, key), child, [f.name for f in dataclasses.fields(tp)]
        else:
            yield from unknown_keys(child, child_tp, (*keys, key))


def _unknown_key_problem(keys: tuple[Any, ...], value: Any, known: list[str]
                         ) -> tuple[str, Any, str]:
    path, parent = _dotted(keys), _dotted(keys[:-1])
    close = difflib.get_close_matches(str(keys[-1]), known, n=1, cutoff=0.6)
    where = f"no such key in {parent}" if parent else "no such top-level key"
    hint = (f"did you mean {_dotted((*keys[:-1], close[0]))!r}? " if close
            else f"the keys are {', '.join(known)}. ")
    return (path, value, f"{where}: {hint}A '+key=value' override adds only an entry "
            f"to one of the named maps ({', '.join(_NAMED_MAPS)}); every other key exists "
            "already: set it without '+'")


def _pruned(tree: Any, paths: list[tuple[Any, ...]]) -> Any:
    """A copy of ``tree`` without the given key paths."""
    tree = copy.deepcopy(tree)
    for keys in paths:
        node = tree
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return tree


def numeric_values(node: Any, tp: Any = RootConfig, allowed: Range | None = None,
                   keys: tuple[Any, ...] = (), with_none: bool = False
                   ) -> Iterator[tuple[tuple[Any, ...], Any, Range]]:
    """(key path, value, allowed range) of every numeric value of a config (a plain nested
    dict checked for unknown keys), maps' entries included; None (an optional key left
    out) only ``with_none``."""
    children = list(_children(node, tp))
    if (not children and allowed is not None and (node is not None or with_none)
            and not isinstance(node, Mapping | list)):
        yield keys, node, allowed
    for key, child, child_tp, f in children:
        if child_tp is not None:
            rng = field_range(f) if f is not None else allowed
            yield from numeric_values(child, child_tp, rng, (*keys, key), with_none)


def _check_ranges(c: Mapping[str, Any], chk: _Checker) -> None:
    """Every numeric value finite and within the range its schema field declares; a key
    that a specific check has reported already is not reported twice."""
    for keys, value, allowed in numeric_values(c):
        path = _dotted(keys)
        if value not in allowed and not chk.reported(path):
            chk.add(path, value, allowed.describe())


def _schema(*keys: str) -> Any:
    """The schema dataclass at a key path of the root config."""
    tp: Any = RootConfig
    for k in keys:
        tp = _hints(tp)[k]
    return tp


def _known_keys(cfg: Any, chk: _Checker) -> dict[str, Any]:
    """The config as a resolved plain dict, every key the schema does not know reported and
    left out (so the rest is checked too and one message lists every problem)."""
    # a plain dict is merged onto the schema, which refuses unknown keys: drop them first;
    # a composed config keeps every key, however it got there, in its container
    c = cfg if isinstance(cfg, dict) else to_container(cfg)
    unknown = list(unknown_keys(c))
    for keys, value, known in unknown:
        chk.add(*_unknown_key_problem(keys, value, known))
    if unknown:
        c = _pruned(c, [k for k, _, _ in unknown])
    return to_container(c) if isinstance(cfg, dict) else c


def _spend_and_reach(c: Mapping[str, Any], chk: _Checker
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


def build_spec(cfg: Any) -> ModelSpec:
    """Validate a composed config (DictConfig or nested dict) and freeze it.

    Raises
    ------
    SpecError
        listing every problem: key path, value given, what is allowed. Every key must be
        known to the schema (``sim.model.config``), and every number finite and within the range
        its schema field declares.
    """
    chk = _Checker()
    c = _known_keys(cfg, chk)

    # market
    m = c["market"]
    if not (isinstance(m["size"], int) and m["size"] >= 1):
        chk.add("market.size", m["size"], "an integer >= 1")
    segs = m["segments"]
    if not segs:
        chk.add("market.segments", segs, "at least one segment")
    total = sum(s["share"] for s in segs.values() if isinstance(s["share"], int | float))
    if segs and abs(total - 1.0) > 1e-6:
        chk.add("market.segments.*.share", round(total, 9), "shares summing to 1")

    # journey
    j = c["journey"]
    stages = j["stages"]
    names = list(stages)
    states = (*names, *POST_STATES)
    if not stages:
        chk.add("journey.stages", stages, "at least one prospect stage")
    reserved = set(POST_STATES) & set(names)
    if reserved:
        chk.add("journey.stages", sorted(reserved), f"stage names other than {POST_STATES}")
    dwells: dict[str, Dwell | None] = {}
    bad_targets = False
    for name, st in stages.items():
        path = f"journey.stages.{name}"
        dwells[name] = chk.dwell(f"{path}.dwell", st["dwell"])
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
    if stages and not bad_targets and (loop := _zero_time_loop(stages)):
        chk.add("journey.stages", loop, "no loop of stages whose dwell is fixed at 0 days "
                "(time would never advance): give one of them a positive mean_days")
    if stages and not bad_targets and not _purchase_reachable(stages, names[0]):
        chk.add("journey.stages", names,
                f"a graph where '{CHECKOUT}' (and so purchase) is reachable from '{names[0]}'")
    if not j["report"]:
        chk.add("journey.report", j["report"], "at least one framework stage")
    for label, mapped in j["report"].items():
        if not mapped or any(s not in states or s == "lost" for s in mapped):
            chk.add(f"journey.report.{label}", mapped,
                    f"a non-empty list of engine states among {', '.join(states[:-1])}")

    # channels
    for builtin in (WORD_OF_MOUTH, REFERRAL):
        if builtin in c["channels"]:
            chk.add(f"channels.{builtin}", "...", f"another name: {builtin} is built in")
    for name, ch in c["channels"].items():
        p = f"channels.{name}"
        for i, camp in enumerate(ch["campaigns"]):
            if not camp["end_day"] > camp["start_day"]:
                chk.add(f"{p}.campaigns[{i}].end_day", camp["end_day"],
                        f"a day after start_day ({camp['start_day']})")

    # checkout
    co = c["checkout"]
    if not (isinstance(co["steps"], int) and co["steps"] >= 1):
        chk.add("checkout.steps", co["steps"], "an integer >= 1")
    for key in ("payment_methods", "payment_methods_expected"):
        if not (isinstance(co[key], int) and co[key] >= 0):
            chk.add(f"checkout.{key}", co[key], "an integer >= 0")
    checkout_dwell = chk.dwell("checkout.dwell", co["dwell"])

    # retention, loyalty, support, experience
    ret = c["retention"]
    if ret["model"] not in RETENTION_MODELS:
        chk.add("retention.model", ret["model"], f"one of {', '.join(RETENTION_MODELS)}")
    rp, sub, msg = ret["repeat"], ret["subscription"], ret["messaging"]
    lo, su = c["loyalty"], c["support"]
    if not (isinstance(su["agents"], int) and su["agents"] >= 1):
        chk.add("support.agents", su["agents"], "an integer >= 1")
    handling = None
    handling_range = field_range(next(f for f in dataclasses.fields(_schema("support"))
                                      if f.name == "handling_mean_minutes"))
    if su["handling_mean_minutes"] in handling_range:  # else reported with the ranges below
        try:
            handling = make_dwell(su["handling_kind"], su["handling_mean_minutes"] / 1440,
                                  su["handling_cv"])
        except ValueError as err:
            key = "handling_kind" if "kind" in str(err) else "handling_cv"
            chk.add(f"support.{key}", su[key], str(err).rsplit(", got", 1)[0])
    ex = c["experience"]

    # advocacy, economics, run
    a, e, r = c["advocacy"], c["economics"], c["run"]
    entry = a["referral_entry_stage"]
    if stages and entry not in names:
        chk.add("advocacy.referral_entry_stage", entry, f"one of the stages: {', '.join(names)}")
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
    _check_ranges(c, chk)

    cost, reach = _spend_and_reach(c, chk)
    if chk.problems:
        raise SpecError(chk.problems)

    code = {s: i for i, s in enumerate(states)}
    stage_specs = []
    for i, (name, st) in enumerate(stages.items()):
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
    assert cost is not None and reach is not None  # computed above when valid
    cost.setflags(write=False)
    reach.setflags(write=False)
    sigma = math.sqrt(math.log1p(e["order_value_cv"] ** 2))
    return ModelSpec(
        market_size=m["size"],
        segment_names=tuple(segs),
        segment_shares=tuple(float(s["share"]) for s in segs.values()),
        segment_conversion=tuple(float(s["conversion"]) for s in segs.values()),
        segment_order_value=tuple(float(s["order_value"]) for s in segs.values()),
        segment_purchase_rate=tuple(float(s["purchase_rate"]) for s in segs.values()),
        segment_churn=tuple(float(s["churn"]) for s in segs.values()),
        segment_referral=tuple(float(s["referral"]) for s in segs.values()),
        stages=tuple(stage_specs),
        states=states,
        report=tuple((label, tuple(code[s] for s in mapped))
                     for label, mapped in j["report"].items()),
        journey_name=j["name"],
        channels=tuple(ChannelSpec(n, float(ch["quality"])) for n, ch in c["channels"].items()),
        reach_per_day=reach,
        spend_per_day=cost,
        wom_q_per_day=float(a["wom_q_per_day"]),
        content_quality=float(j["content_quality"]),
        site_usability=float(j["site_usability"]),
        social_proof=float(j["social_proof"]),
        checkout=CheckoutSpec(
            abandon_prob=abandon_probability(co),
            dwell=checkout_dwell,  # type: ignore[arg-type]
            recovery_prob=float(co["recovery_prob"]) if co["reminder"] else 0.0,
            recovery_delay_days=float(co["recovery_delay_days"]),
        ),
        advocate_prob=float(a["advocate_prob"]),
        order_log_mean=math.log(e["order_value_mean"]) - sigma**2 / 2,
        order_log_sd=sigma,
        gross_margin=float(e["gross_margin"]),
        discount_rate_per_day=math.log1p(e["annual_discount_rate"]) / 365.0,
        retention=RetentionSpec(
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
        ),
        loyalty=LoyaltySpec(
            enabled=bool(lo["enabled"]), enrol_prob=float(lo["enrol_prob"]),
            rate_multiplier=float(lo["rate_multiplier"]),
            dropout_multiplier=float(lo["dropout_multiplier"]), discount=float(lo["discount"]),
            cost_per_member_per_day=lo["cost_per_member_per_month"] / DAYS_PER_MONTH,
            reward_experience=float(lo["reward_experience"]),
        ),
        support=SupportSpec(
            issue_prob=float(su["issue_prob"]), agents=int(su["agents"]),
            handling=handling,  # type: ignore[arg-type]
            patience_mean_days=su["patience_mean_minutes"] / 1440,
            first_contact_resolution=float(su["first_contact_resolution"]),
            cost_per_agent_per_day=float(su["cost_per_agent_per_day"]),
        ),
        experience=ExperienceSpec(**{k: float(v) for k, v in ex.items() if k != "wait_per_hour"},
                                  wait_per_day=float(ex["wait_per_hour"]) * 24),
        advocacy=AdvocacySpec(
            min_experience=float(a["min_experience"]),
            referral_rate_per_day=a["referral_rate_per_day"]
            * (a["program_rate_multiplier"] if a["program"] else 1.0),
            referral_conversion=float(a["referral_conversion"]),
            referral_entry=names.index(entry),
            reward_per_referral=float(a["reward_per_referral"]) if a["program"] else 0.0,
        ),
        horizon_days=float(r["horizon_days"]),
        seed=int(r["seed"]),
        replications=int(r["replications"]),
        engine=(r["engine"] if r["engine"] != "auto"
                else "fast" if m["size"] >= AUTO_FAST_FROM else "agent"),
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
        scenario_name=c["scenario"]["name"],
        scenario_description=c["scenario"]["description"],
        scenario_cost_per_day=float(c["scenario"]["cost_per_day"]),
    )

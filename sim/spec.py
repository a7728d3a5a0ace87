"""Validate a composed config and freeze it into a ``ModelSpec`` (Hydra stops here).

``build_spec`` checks every key it reads, collects every problem and raises a single
``SpecError`` listing each key path, the value given and what is allowed. Everything the
engine needs is derived here once: state codes, exit tables, the checkout abandonment
probability, daily reach and spend per channel, order-value parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.config import to_container
from sim.errors import InputError
from sim.distributions import KINDS, Dwell, make_dwell

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
    "odds_shift",
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
    "replications", "first_replication", "n_jobs", "progress", "memory_guard",
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
        sh, k = adstock ** ch["hill_shape"], float(ch["half_saturation_spend_per_day"])
        reach[:, j] = ch["organic_reach_per_day"] + ch["max_reach_per_day"] * sh / (
            sh + k ** ch["hill_shape"]
        )
        spend[:, j] = s
        cost[:, j] = s + ch["fixed_cost_per_day"]
    return cost, reach


# ------------------------------------------------------------------------ validation
class _Checker:
    def __init__(self) -> None:
        self.problems: list[tuple[str, Any, str]] = []

    def add(self, path: str, value: Any, allowed: str) -> None:
        self.problems.append((path, value, allowed))

    def number(self, path: str, value: Any, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> bool:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok and lo is not None:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value < hi if hi_open else value <= hi
        if not ok:
            lb = "" if lo is None else ("(" if lo_open else "[") + f"{lo:g}"
            ub = "" if hi is None else f"{hi:g}" + (")" if hi_open else "]")
            rng = f"{lb or '(-inf'}, {ub or 'inf)'}"
            self.add(path, value, f"a finite number in {rng}")
        return ok

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


def build_spec(cfg: Any) -> ModelSpec:
    """Validate a composed config (DictConfig or nested dict) and freeze it.

    Raises
    ------
    SpecError
        listing every problem: key path, value given, what is allowed.
    """
    c = to_container(cfg)
    chk = _Checker()

    # market
    m = c["market"]
    if not (isinstance(m["size"], int) and m["size"] >= 1):
        chk.add("market.size", m["size"], "an integer >= 1")
    segs = m["segments"]
    if not segs:
        chk.add("market.segments", segs, "at least one segment")
    for name, s in segs.items():
        chk.number(f"market.segments.{name}.share", s["share"], 0, 1)
        for key in ("conversion", "order_value", "purchase_rate", "churn", "referral"):
            chk.number(f"market.segments.{name}.{key}", s[key], 0, lo_open=True)
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
            chk.number(f"{path}.exits.{target}", p, 0, 1)
        probs = [p for p in st["exits"].values() if isinstance(p, int | float)]
        if sum(probs) > 1 + 1e-9:
            chk.add(f"{path}.exits", round(sum(probs), 9),
                    "probabilities summing to at most 1 (the rest is lost)")
        chk.number(f"{path}.experience", st["experience"], -2, 2)
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
    chk.number("journey.content_quality", j["content_quality"], 0, lo_open=True)
    chk.number("journey.site_usability", j["site_usability"], 0, lo_open=True)
    chk.number("journey.social_proof", j["social_proof"], 0)

    # channels
    for builtin in (WORD_OF_MOUTH, REFERRAL):
        if builtin in c["channels"]:
            chk.add(f"channels.{builtin}", "...", f"another name: {builtin} is built in")
    for name, ch in c["channels"].items():
        p = f"channels.{name}"
        chk.number(f"{p}.organic_reach_per_day", ch["organic_reach_per_day"], 0)
        chk.number(f"{p}.max_reach_per_day", ch["max_reach_per_day"], 0)
        chk.number(f"{p}.half_saturation_spend_per_day", ch["half_saturation_spend_per_day"], 0,
                   lo_open=True)
        chk.number(f"{p}.hill_shape", ch["hill_shape"], 0, lo_open=True)
        chk.number(f"{p}.adstock_decay", ch["adstock_decay"], 0, 1, hi_open=True)
        chk.number(f"{p}.spend_per_day", ch["spend_per_day"], 0)
        chk.number(f"{p}.fixed_cost_per_day", ch["fixed_cost_per_day"], 0)
        chk.number(f"{p}.quality", ch["quality"], 0, lo_open=True)
        for i, camp in enumerate(ch["campaigns"]):
            chk.number(f"{p}.campaigns[{i}].spend_per_day", camp["spend_per_day"], 0)
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
    chk.number("checkout.page_load_seconds", co["page_load_seconds"], 0)
    chk.number("checkout.trust", co["trust"], 0, 1)
    chk.number("checkout.recovery_prob", co["recovery_prob"], 0, 1)
    chk.number("checkout.recovery_delay_days", co["recovery_delay_days"], 0)
    chk.number("checkout.base_logit", co["base_logit"])
    checkout_dwell = chk.dwell("checkout.dwell", co["dwell"])

    # retention, loyalty, support, experience
    ret = c["retention"]
    if ret["model"] not in RETENTION_MODELS:
        chk.add("retention.model", ret["model"], f"one of {', '.join(RETENTION_MODELS)}")
    rp, sub, msg = ret["repeat"], ret["subscription"], ret["messaging"]
    chk.number("retention.repeat.r", rp["r"], 0, lo_open=True)
    chk.number("retention.repeat.alpha_days", rp["alpha_days"], 0, lo_open=True)
    chk.number("retention.repeat.a", rp["a"], 0, lo_open=True)
    chk.number("retention.repeat.b", rp["b"], 0, lo_open=True)
    chk.number("retention.subscription.period_days", sub["period_days"], 0, lo_open=True)
    chk.number("retention.subscription.alpha", sub["alpha"], 0, lo_open=True)
    chk.number("retention.subscription.beta", sub["beta"], 0, lo_open=True)
    chk.number("retention.subscription.price_per_period", sub["price_per_period"], 0)
    for key in ("newsletters_per_month", "cost_per_message",
                "recommendations_cost_per_customer_per_month", "thank_you_cost"):
        chk.number(f"retention.messaging.{key}", msg[key], 0)
    for key in ("newsletter_rate_multiplier", "recommendations_rate_multiplier",
                "cross_sell_order_value_multiplier"):
        chk.number(f"retention.messaging.{key}", msg[key], 0, lo_open=True)
    lo = c["loyalty"]
    chk.number("loyalty.enrol_prob", lo["enrol_prob"], 0, 1)
    chk.number("loyalty.rate_multiplier", lo["rate_multiplier"], 0, lo_open=True)
    chk.number("loyalty.dropout_multiplier", lo["dropout_multiplier"], 0)
    chk.number("loyalty.discount", lo["discount"], 0, 1)
    chk.number("loyalty.cost_per_member_per_month", lo["cost_per_member_per_month"], 0)
    chk.number("loyalty.reward_experience", lo["reward_experience"], -2, 2)
    su = c["support"]
    chk.number("support.issue_prob", su["issue_prob"], 0, 1)
    if not (isinstance(su["agents"], int) and su["agents"] >= 1):
        chk.add("support.agents", su["agents"], "an integer >= 1")
    handling = None
    if chk.number("support.handling_mean_minutes", su["handling_mean_minutes"], 0, lo_open=True):
        try:
            handling = make_dwell(su["handling_kind"], su["handling_mean_minutes"] / 1440,
                                  su["handling_cv"])
        except ValueError as err:
            key = "handling_kind" if "kind" in str(err) else "handling_cv"
            chk.add(f"support.{key}", su[key], str(err).rsplit(", got", 1)[0])
    chk.number("support.patience_mean_minutes", su["patience_mean_minutes"], 0, lo_open=True)
    chk.number("support.first_contact_resolution", su["first_contact_resolution"], 0, 1)
    chk.number("support.cost_per_agent_per_day", su["cost_per_agent_per_day"], 0)
    ex = c["experience"]
    for key, value in ex.items():
        if key == "leave_after_bad":
            chk.number(f"experience.{key}", value, 0, 1)
        elif key in ("churn_per_point", "advocacy_per_point"):
            chk.number(f"experience.{key}", value, 0, 5)
        else:
            chk.number(f"experience.{key}", value, -4, 4)

    # advocacy, economics, run
    a, e, r = c["advocacy"], c["economics"], c["run"]
    chk.number("advocacy.advocate_prob", a["advocate_prob"], 0, 1)
    chk.number("advocacy.min_experience", a["min_experience"], -2, 2)
    chk.number("advocacy.wom_q_per_day", a["wom_q_per_day"], 0)
    chk.number("advocacy.referral_rate_per_day", a["referral_rate_per_day"], 0)
    chk.number("advocacy.referral_conversion", a["referral_conversion"], 0, lo_open=True)
    chk.number("advocacy.program_rate_multiplier", a["program_rate_multiplier"], 0, lo_open=True)
    chk.number("advocacy.reward_per_referral", a["reward_per_referral"], 0)
    entry = a["referral_entry_stage"]
    if stages and entry not in names:
        chk.add("advocacy.referral_entry_stage", entry, f"one of the stages: {', '.join(names)}")
    chk.number("economics.order_value_mean", e["order_value_mean"], 0, lo_open=True)
    chk.number("economics.order_value_cv", e["order_value_cv"], 0, 10, lo_open=True)
    chk.number("economics.gross_margin", e["gross_margin"], 0, 1)
    chk.number("economics.annual_discount_rate", e["annual_discount_rate"], 0, 10)
    if not (isinstance(r["replications"], int) and r["replications"] >= 1):
        chk.add("run.replications", r["replications"], "an integer >= 1")
    if not (isinstance(r["seed"], int) and r["seed"] >= 0):
        chk.add("run.seed", r["seed"], "an integer >= 0")
    chk.number("run.horizon_days", r["horizon_days"], 0, 100_000, lo_open=True)
    if not (isinstance(r["n_jobs"], int) and r["n_jobs"] >= 1):
        chk.add("run.n_jobs", r["n_jobs"], "an integer >= 1")
    if not (isinstance(r["first_replication"], int) and r["first_replication"] >= 0):
        chk.add("run.first_replication", r["first_replication"], "an integer >= 0")
    if r["target_rel_half_width"] is not None:
        chk.number("run.target_rel_half_width", r["target_rel_half_width"], 0, 1, lo_open=True)
    if not (isinstance(r["max_replications"], int) and r["max_replications"] >= 2):
        chk.add("run.max_replications", r["max_replications"], "an integer >= 2")
    chk.number("run.tick_days", r["tick_days"], 0, 30, lo_open=True)
    if r["engine"] not in (*ENGINES, "auto"):
        chk.add("run.engine", r["engine"], f"one of {', '.join(ENGINES)}, auto")
    chk.number("scenario.cost_per_day", c["scenario"]["cost_per_day"], 0)

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
    n_days = math.ceil(r["horizon_days"]) + 1
    cost, reach = daily_spend_and_reach(c["channels"], n_days)
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
        target_rel_half_width=(None if r["target_rel_half_width"] is None
                               else float(r["target_rel_half_width"])),
        precision_metric=str(r["precision_metric"]),
        max_replications=int(r["max_replications"]),
        scenario_name=c["scenario"]["name"],
        scenario_description=c["scenario"]["description"],
        scenario_cost_per_day=float(c["scenario"]["cost_per_day"]),
    )

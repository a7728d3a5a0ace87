"""Structured-config schema, the config locations and composition (Hydra stops here and in spec).

The schema types every key, so a misspelled key or a wrong type fails when Hydra composes
the config, naming the key's path. It is registered first in the defaults list as ``schema``.
Scenario overlays from ``scenarios/`` are read as plain data and registered in the
``scenario`` group, so ``scenario=NAME`` and ``-m scenario=a,b`` work from a source checkout
and from a wheel alike. Nothing here instantiates ``_target_`` nodes: configs are data.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import Field, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

__all__ = [
    "CONFIG_DIR",
    "SCENARIO_DIR",
    "Range",
    "RootConfig",
    "between",
    "compose_config",
    "field_range",
    "hydra_message",
    "integers",
    "register_configs",
    "scenario_choice",
    "scenario_names",
    "settle_scenario",
    "slug",
    "to_container",
]


def _locate(name: str) -> Path:
    """``configs/`` or ``scenarios/``: beside the package in a checkout, inside it from a wheel."""
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("sim") / name))


CONFIG_DIR = _locate("configs")
SCENARIO_DIR = _locate("scenarios")


# --------------------------------------------------------------------------- schema
# Every numeric key declares its allowed range once, here, beside the key: ``build_spec``
# refuses a value outside it (and NaN or infinity anywhere), and the reference docs are
# generated from it. The ranges are plausible for a business and keep the arithmetic finite
# at their extremes.
RANGE = "range"  # the metadata key of a field's allowed range


@dataclass(frozen=True)
class Range:
    """The closed (or, where marked, open) interval a numeric key must lie in.

    For a map of numbers (``journey.stages.*.exits``) it applies to every value.
    ``integer`` marks an int key (the message then says "an integer").
    """

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __str__(self) -> str:
        if self.integer:
            return f"[{self.lo:d}, {self.hi:d}]"
        return (f"{'(' if self.lo_open else '['}{self.lo:g}, "
                f"{self.hi:g}{')' if self.hi_open else ']'}")

    def describe(self) -> str:
        """What is allowed, as ``build_spec`` says it."""
        return f"an integer in {self}" if self.integer else f"a finite number in {self}"


def between(lo: float, hi: float, *, lo_open: bool = False,
            hi_open: bool = False) -> dict[str, Range]:
    """Field metadata: a float key's allowed range, ``[lo, hi]`` unless a side is open."""
    return {RANGE: Range(lo, hi, lo_open, hi_open)}


def integers(lo: int, hi: int) -> dict[str, Range]:
    """Field metadata: an int key's allowed range ``[lo, hi]``."""
    return {RANGE: Range(lo, hi, integer=True)}


def field_range(f: Field[Any]) -> Range | None:
    """The allowed range declared on a schema field, if any."""
    return f.metadata.get(RANGE)


# ranges used by many keys
PROBABILITY = between(0, 1)
# an odds (or rate) multiplier; from 1/1000, so that a purchase rate cannot underflow to 0
ODDS = between(0.001, 100)
SCORE = between(-2, 2)  # experience points: the score lives in [-2, 2]
LOGIT_WEIGHT = between(-20, 20)  # log-odds per unit
MONEY_PER_DAY = between(0, 1e9)
MONEY_PER_UNIT = between(0, 1e6)  # per message, member, customer, referral
HAZARD_PER_DAY = between(0, 100)  # 100 a day: everyone within minutes
DAYS = between(0, 3650)  # ten years
MINUTES = between(1e-4, 5_256_000)  # from a fraction of a second to ten years
CV = between(0, 10)
SHAPE = between(0.01, 1e15)  # Beta parameters; a huge one makes a point mass


@dataclass
class SegmentConfig:
    share: float = field(default=1.0, metadata=PROBABILITY)  # share of the market, sum 1
    conversion: float = field(default=1.0, metadata=ODDS)  # odds multiplier on forward exits
    order_value: float = field(default=1.0, metadata=ODDS)  # multiplier on order value
    # multiplier on repeat purchase rate (retention model)
    purchase_rate: float = field(default=1.0, metadata=ODDS)
    churn: float = field(default=1.0, metadata=ODDS)  # multiplier on churn (retention model)
    # multiplier on advocacy / referral propensity
    referral: float = field(default=1.0, metadata=ODDS)


@dataclass
class MarketConfig:
    # potential customers: up to the world's population (the memory and work guards stop
    # what this machine cannot run)
    size: int = field(default=20_000, metadata=integers(1, 10_000_000_000))
    segments: dict[str, SegmentConfig] = field(default_factory=dict)
    # the installed base: a CSV of today's customers (customers.csv of `python -m
    # sim.calibrate transactions`), in addition to the size prospects; null: none
    base: str | None = None


@dataclass
class DwellConfig:
    # the family of the time spent per visit
    kind: str = "exponential"  # exponential | gamma | lognormal | weibull | fixed
    # mean dwell time, up to ten years; > 0 except for kind fixed
    mean_days: float = field(default=1.0, metadata=DAYS)
    # required for gamma, lognormal, weibull (their own ranges: sim.model.distributions.CV_RANGE)
    cv: float | None = field(default=None, metadata=CV)


@dataclass
class StageConfig:
    dwell: DwellConfig = field(default_factory=DwellConfig)
    # probability of each next state after a visit: another stage (itself = stay,
    # an earlier one = step back) or "checkout"; the remainder is lost
    exits: dict[str, float] = field(default_factory=dict, metadata=PROBABILITY)
    # the levers that shift this stage's forward exits (journey.content_quality,
    # journey.site_usability, journey.social_proof)
    levers: list[str] = field(default_factory=list)  # content | usability | social_proof
    # experience points at each visit (the journey map's emotion)
    experience: float = field(default=0.0, metadata=SCORE)


@dataclass
class JourneyConfig:
    name: str = "custom"  # the preset's name, shown in summaries and file headers
    description: str = ""  # one line on the preset's framework
    stages: dict[str, StageConfig] = field(default_factory=dict)
    # framework stage name -> engine states it covers (prospect stages, checkout,
    # purchase, advocacy); reports use these names, in this order
    report: dict[str, list[str]] = field(default_factory=dict)
    # odds multiplier on stages with lever "content"
    content_quality: float = field(default=1.0, metadata=ODDS)
    # odds multiplier on stages with lever "usability"
    site_usability: float = field(default=1.0, metadata=ODDS)
    # odds multiplier 1 + social_proof * advocate share of market
    social_proof: float = field(default=0.0, metadata=between(0, 1000))


@dataclass
class CampaignConfig:
    # the day the campaign starts (up to a century)
    start_day: float = field(default=0.0, metadata=between(0, 36_525))
    # the campaign runs over the days [start_day, end_day)
    end_day: float = field(default=0.0, metadata=between(0, 36_525))
    # spend per day during the campaign, on top of the channel's always-on spend
    spend_per_day: float = field(default=0.0, metadata=MONEY_PER_DAY)


@dataclass
class ChannelConfig:
    # awareness hazard per unaware person without spend
    organic_reach_per_day: float = field(default=0.0, metadata=HAZARD_PER_DAY)
    # extra hazard at full saturation of spend
    max_reach_per_day: float = field(default=0.0, metadata=HAZARD_PER_DAY)
    # Hill curve: spend giving half of max
    half_saturation_spend_per_day: float = field(default=1_000.0, metadata=between(0.01, 1e9))
    hill_shape: float = field(default=1.0, metadata=between(0.1, 10))  # Hill exponent
    # geometric carry-over of spend from one day to the next
    adstock_decay: float = field(default=0.0, metadata=between(0, 1, hi_open=True))
    spend_per_day: float = field(default=0.0, metadata=MONEY_PER_DAY)  # always-on spend
    campaigns: list[CampaignConfig] = field(default_factory=list)  # extra spend over [start, end)
    # cost that does not buy reach (tools, staff)
    fixed_cost_per_day: float = field(default=0.0, metadata=MONEY_PER_DAY)
    # odds multiplier on forward exits of prospects from this channel
    quality: float = field(default=1.0, metadata=ODDS)


@dataclass
class CheckoutWeights:
    # log-odds of abandoning per step beyond the first
    per_extra_step: float = field(default=0.08, metadata=LOGIT_WEIGHT)
    # log-odds of abandoning when an account must be created
    forced_account: float = field(default=0.35, metadata=LOGIT_WEIGHT)
    # log-odds of abandoning when fees appear only at the end
    hidden_fees: float = field(default=0.60, metadata=LOGIT_WEIGHT)
    # log-odds of abandoning per payment method missing below payment_methods_expected
    per_missing_payment_method: float = field(default=0.15, metadata=LOGIT_WEIGHT)
    # log-odds of abandoning per second of page load beyond one
    per_second_load: float = field(default=0.05, metadata=LOGIT_WEIGHT)
    # log-odds of abandoning per unit of trust in [0, 1] (negative: trust keeps buyers)
    trust: float = field(default=-0.50, metadata=LOGIT_WEIGHT)


@dataclass
class CheckoutConfig:
    # intercept of the abandonment logit
    base_logit: float = field(default=-0.573, metadata=between(-100, 100))
    steps: int = field(default=5, metadata=integers(1, 100))  # pages of the checkout
    forced_account: bool = True  # an account must be created to buy (no guest checkout)
    hidden_fees: bool = True  # fees (shipping, service) appear only at the last step
    payment_methods: int = field(default=2, metadata=integers(0, 100))  # methods offered
    # methods customers expect: each one missing adds weights.per_missing_payment_method
    payment_methods_expected: int = field(default=4, metadata=integers(0, 100))
    # page load time of the checkout pages
    page_load_seconds: float = field(default=3.0, metadata=between(0, 600))
    # security badges, reviews, clear returns: 0 to 1
    trust: float = field(default=0.5, metadata=PROBABILITY)
    weights: CheckoutWeights = field(default_factory=CheckoutWeights)
    # time spent in the checkout
    dwell: DwellConfig = field(default_factory=lambda: DwellConfig("fixed", 0.01, None))
    reminder: bool = True  # abandoned-cart reminder
    # chance the reminder recovers an abandoned cart
    recovery_prob: float = field(default=0.10, metadata=PROBABILITY)
    # days from the abandoned cart to the reminder (and the purchase it recovers)
    recovery_delay_days: float = field(default=1.0, metadata=between(0, 365))


@dataclass
class RepeatPurchaseConfig:
    """BG/NBD: purchase rate lambda ~ Gamma(r, alpha), drop-out p ~ Beta(a, b)."""

    # Gamma shape of the purchase rate (below 0.05 rates underflow to 0)
    r: float = field(default=0.9, metadata=between(0.05, 100))
    # Gamma rate (days): mean rate r / alpha purchases per day
    alpha_days: float = field(default=60.0, metadata=between(0.1, 100_000))
    # Beta(a, b): drop-out probability after each repeat purchase
    a: float = field(default=1.5, metadata=SHAPE)
    b: float = field(default=6.0, metadata=SHAPE)  # mean drop-out probability a / (a + b)


@dataclass
class SubscriptionConfig:
    """Shifted-beta-geometric: churn theta ~ Beta(alpha, beta) at each renewal."""

    period_days: float = field(default=30.0, metadata=between(1, 3650))  # billing period
    # Beta(alpha, beta): each subscriber's churn probability at every renewal
    alpha: float = field(default=1.2, metadata=SHAPE)
    beta: float = field(default=15.0, metadata=SHAPE)  # mean churn alpha / (alpha + beta)
    # charged at the start and at each renewal
    price_per_period: float = field(default=25.0, metadata=between(0, 1e7))


@dataclass
class MessagingConfig:
    newsletter: bool = False  # newsletters to every active customer
    newsletters_per_month: float = field(default=4.0, metadata=between(0, 100))  # messages
    # on the purchase rate
    newsletter_rate_multiplier: float = field(default=1.10, metadata=ODDS)
    cost_per_message: float = field(default=0.01, metadata=MONEY_PER_UNIT)  # per newsletter
    recommendations: bool = False  # personalised recommendations
    # on the purchase rate
    recommendations_rate_multiplier: float = field(default=1.10, metadata=ODDS)
    # per active customer
    recommendations_cost_per_customer_per_month: float = field(default=0.20,
                                                               metadata=MONEY_PER_UNIT)
    cross_sell: bool = False  # related products offered with each repeat order
    # on the value of repeat orders
    cross_sell_order_value_multiplier: float = field(default=1.10, metadata=ODDS)
    # thank-you and confirmation message after each purchase
    thank_you: bool = False
    thank_you_cost: float = field(default=0.05, metadata=MONEY_PER_UNIT)  # per message


@dataclass
class RetentionConfig:
    # life after the first purchase: BG/NBD repeat buying, a subscription, or nothing
    model: str = "repeat_purchase"  # repeat_purchase | subscription | none
    repeat: RepeatPurchaseConfig = field(default_factory=RepeatPurchaseConfig)
    subscription: SubscriptionConfig = field(default_factory=SubscriptionConfig)
    messaging: MessagingConfig = field(default_factory=MessagingConfig)


@dataclass
class LoyaltyConfig:
    enabled: bool = False  # the loyalty programme runs
    enrol_prob: float = field(default=0.40, metadata=PROBABILITY)  # at the first purchase
    rate_multiplier: float = field(default=1.25, metadata=ODDS)  # members buy more often
    # ... and drop out less (multiplies p or theta)
    dropout_multiplier: float = field(default=0.75, metadata=between(0, 100))
    discount: float = field(default=0.05, metadata=PROBABILITY)  # share of each order given back
    # running cost per active member
    cost_per_member_per_month: float = field(default=0.50, metadata=MONEY_PER_UNIT)
    # experience points per member purchase (rewards)
    reward_experience: float = field(default=0.10, metadata=SCORE)


@dataclass
class SupportConfig:
    # chance a purchase causes an issue (a ticket)
    issue_prob: float = field(default=0.08, metadata=PROBABILITY)
    agents: int = field(default=1, metadata=integers(1, 10_000))  # agents at the desk
    # the family of an agent's handling time per ticket
    handling_kind: str = "gamma"  # exponential | gamma | lognormal | weibull | fixed
    handling_mean_minutes: float = field(default=12.0, metadata=MINUTES)  # mean handling time
    # coefficient of variation of the handling time (not for exponential or fixed)
    handling_cv: float | None = field(default=0.8, metadata=CV)
    # exponential patience; the customer reneges after it
    patience_mean_minutes: float = field(default=30.0, metadata=MINUTES)
    # chance a ticket an agent handles is resolved (else it ends unresolved)
    first_contact_resolution: float = field(default=0.75, metadata=PROBABILITY)
    cost_per_agent_per_day: float = field(default=25.0, metadata=MONEY_PER_UNIT)  # staff


POINTS = between(-4, 4)  # experience points of one touchpoint (the score is cut to [-2, 2])


@dataclass
class ExperienceConfig:
    """Experience score in [-2, 2], moved by touchpoints; it drives churn and advocacy."""

    # points at checkout: times the abandon probability
    checkout_per_abandon_prob: float = field(default=-1.0, metadata=POINTS)
    # points when a reminder brings an abandoned cart back
    recovered_cart: float = field(default=-0.2, metadata=POINTS)
    thank_you: float = field(default=0.1, metadata=POINTS)  # points per thank-you message
    wait_per_hour: float = field(default=-0.5, metadata=POINTS)  # at the desk
    ticket_resolved: float = field(default=0.3, metadata=POINTS)  # points at the ticket's end
    ticket_unresolved: float = field(default=-0.8, metadata=POINTS)  # points at the ticket's end
    # points when the customer gives up waiting at the desk
    ticket_abandoned: float = field(default=-1.0, metadata=POINTS)
    # a touchpoint at or below this is a bad experience ...
    bad_threshold: float = field(default=-0.5, metadata=POINTS)
    # ... after which the customer leaves with this probability
    leave_after_bad: float = field(default=0.33, metadata=PROBABILITY)
    # drop-out odds multiplied by exp(-churn_per_point * score)
    churn_per_point: float = field(default=0.4, metadata=between(0, 5))
    # advocacy odds multiplied by exp(advocacy_per_point * score)
    advocacy_per_point: float = field(default=0.8, metadata=between(0, 5))


@dataclass
class AdvocacyConfig:
    # chance a buyer (with good enough experience) advocates
    advocate_prob: float = field(default=0.15, metadata=PROBABILITY)
    # experience score needed to become an advocate
    min_experience: float = field(default=-0.5, metadata=SCORE)
    # Bass imitation q: hazard per unaware person at A = M
    wom_q_per_day: float = field(default=0.02, metadata=HAZARD_PER_DAY)
    # referrals per active advocate per day
    referral_rate_per_day: float = field(default=0.004, metadata=HAZARD_PER_DAY)
    # odds multiplier on forward exits of referred prospects
    referral_conversion: float = field(default=1.5, metadata=ODDS)
    referral_entry_stage: str = "consideration"  # where referred prospects enter
    program: bool = False  # referral programme
    # on the referral rate while the programme runs
    program_rate_multiplier: float = field(default=2.0, metadata=ODDS)
    # paid when a referred prospect first buys
    reward_per_referral: float = field(default=10.0, metadata=MONEY_PER_UNIT)


@dataclass
class GammaGammaConfig:
    """Gamma-Gamma spend (Fader, Hardie & Lee 2005): each buyer's spend level nu ~
    Gamma(q, rate gamma) is drawn once, each of their orders ~ Gamma(p, rate nu); a
    buyer's mean order is p / nu, the mean over buyers p gamma / (q - 1)."""

    p: float = field(default=6.0, metadata=SHAPE)  # shape of an order around the level
    # shape of the spread of spend levels across buyers; > 1, so the mean order is finite
    q: float = field(default=4.0, metadata=between(1, 1e15, lo_open=True))
    gamma: float = field(default=40.0, metadata=between(0, 1e9, lo_open=True))  # scale


@dataclass
class EconomicsConfig:
    # how order values are drawn: lognormal (every order independent, order_value_mean and
    # order_value_cv) | gamma_gamma (a spend level per buyer, see gamma_gamma)
    order_value_model: str = "lognormal"
    # mean value of an order (before segment multipliers)
    order_value_mean: float = field(default=80.0, metadata=between(0, 1e7, lo_open=True))
    # lognormal
    order_value_cv: float = field(default=0.6, metadata=between(0, 10, lo_open=True))
    gamma_gamma: GammaGammaConfig = field(default_factory=GammaGammaConfig)
    # share of order value kept after cost of goods
    gross_margin: float = field(default=0.40, metadata=PROBABILITY)
    # applied continuously to daily cash flows
    annual_discount_rate: float = field(default=0.10, metadata=between(0, 10))


@dataclass
class RunConfig:
    # the seed of every random stream: same seed and config, same results
    seed: int = field(default=20261123, metadata=integers(0, 2**63 - 1))
    # independent replications of the market (the intervals are across them)
    replications: int = field(default=10, metadata=integers(1, 10_000))
    # one day to sixty years, a customer's lifetime (the work guard stops what would not
    # finish: the cohort tables grow with the square of the horizon)
    horizon_days: float = field(default=365.0, metadata=between(1, 21_915))
    engine: str = "auto"  # agent | fast | auto (agent below 50,000 people, fast from there)
    # fast engine: population feedback (word of mouth, referrals, social proof) is read once
    # per tick of this many days (each tick has a fixed cost: the work guard counts them)
    tick_days: float = field(default=1.0, metadata=between(0.01, 30))
    # worker processes for replications; results never depend on it
    n_jobs: int = field(default=1, metadata=integers(1, 1024))
    # replications first_replication .. first_replication + replications - 1: a big
    # experiment split into blocks (separate jobs) that `python -m sim.report` merges
    first_replication: int = field(default=0, metadata=integers(0, 1_000_000_000))
    progress: bool = True  # a progress bar on a terminal (never in CI or when piped)
    memory_guard: bool = True  # refuse a run whose estimated memory exceeds what is free
    # refuse a run whose estimated work exceeds sim.api.WORK_LIMIT_SECONDS of one core
    work_guard: bool = True
    # precision-driven replications: add replications until the 95% CI half-width of
    # precision_metric is at most target_rel_half_width x |mean| (or max_replications)
    target_rel_half_width: float | None = field(default=None,
                                                metadata=between(0, 1, lo_open=True))
    precision_metric: str = "npv"  # the metric whose interval target_rel_half_width bounds
    # most replications a precision-driven run may add up to
    max_replications: int = field(default=200, metadata=integers(2, 10_000))
    summary: bool = True  # print the summary table on the console
    plots: bool = True  # write the figures (PNG)
    # funnel.png on a log scale, where the small late stages stay visible; the default
    # linear scale shows the drops between stages at their true size
    funnel_log: bool = False
    events: bool = False  # also write events.csv: every state entry of every customer
    # the metric a run returns to a Hydra sweeper (its mean over replications) and the one
    # an allocation, a response curve's marginal return and a set of interventions
    # maximise: npv_clv (NPV plus the residual value of the customers alive at the
    # horizon), npv, purchases, revenue, ltv_to_cac, conversion_rate, ...
    objective: str = "npv_clv"


@dataclass
class ScenarioConfig:
    # the scenario's name (the overlay file's name unless set); names the run folder
    name: str = "baseline"
    description: str = ""  # what the intervention does, shown in summaries and comparisons
    # cost of the intervention itself
    cost_per_day: float = field(default=0.0, metadata=MONEY_PER_DAY)
    # the launch day: the business runs as the baseline (the same config with
    # scenario=baseline) until then; cost_per_day is charged from then on
    start_day: float = field(default=0.0, metadata=between(0, 36_525))
    # the scenario reaches each customer at a time spread evenly over this many days from
    # start_day (0: everyone on start_day)
    ramp_days: float = field(default=0.0, metadata=between(0, 36_525))
    # map entries this overlay adds to the baseline it is applied to, as key paths
    # (channels.podcast, market.segments.students, journey.stages.trial): an entry that is
    # not listed here is refused, so a misspelled one cannot add a new, free channel
    adds: list[str] = field(default_factory=list)
    # uncertainty on this scenario's own effect sizes and cost, for a PSA (psa.draws): key
    # paths to distributions as in the uncertainty group, an effect often stated relative to
    # the baseline value (effect: multiply or add); a point run ignores it
    uncertainty: Any = field(default_factory=dict)


@dataclass
class PsaConfig:
    # probabilistic sensitivity analysis: this many draws of the uncertain assumptions (the
    # uncertainty group and each scenario's own), every option run on every draw; 0: none
    draws: int = field(default=0, metadata=integers(0, 1_000_000))
    # replications per draw (draw d, replication r uses the streams of d x replications + r);
    # two or more also measure the simulation noise within a draw
    replications: int = field(default=1, metadata=integers(1, 1000))
    design: str = "sobol"  # how the draws cover the assumptions: sobol | lhs | random
    # the option the others are compared with (the baseline or a scenario's name)
    reference: str = "baseline"
    # the one-way sensitivity (tornado) of the best option's difference from the reference:
    # each assumption at these percentiles of its distribution, the others at their values
    tornado: bool = True
    low_percentile: float = field(default=10.0, metadata=between(0, 50, lo_open=True))  # P10
    high_percentile: float = field(default=90.0, metadata=between(50, 100, hi_open=True))  # P90
    # groups of assumptions whose partial value of information (EVPPI) is also reported:
    # a name to a list of assumption names
    groups: dict[str, list[str]] = field(default_factory=dict)
    # Sobol indices of the best option's difference: base draws (a power of 2; each costs
    # a run per assumption + 2 runs of two options); 0: none
    sobol_indices: int = field(default=0, metadata=integers(0, 65_536))
    # every finished run is kept in the run folder as it goes: the same command with
    # hydra.run.dir=<that folder> resumes an interrupted study there (false: start afresh)
    resume: bool = True
    # a study split over jobs: this job runs only the draws d with d % blocks == block
    block: int = field(default=0, metadata=integers(0, 1_000_000))
    blocks: int = field(default=1, metadata=integers(1, 1_000_000))  # jobs the draws split into


# a setting or target stated in another key's units: checked against that key's range
# (or that metric's) when the analysis starts; here only finite
ANY_NUMBER = between(-1e15, 1e15)


@dataclass
class CurveConfig:
    # response curves: each key swept alone over the values (the others at their config
    # values), the headline metrics with intervals at every value, common random numbers
    keys: list[str] = field(default_factory=list)  # e.g. [channels.search.spend_per_day]
    values: list[float] = field(default_factory=list, metadata=ANY_NUMBER)  # or low .. high:
    # default: the key's lowest allowed value (0 for a spend)
    low: float | None = field(default=None, metadata=ANY_NUMBER)
    high: float | None = field(default=None, metadata=ANY_NUMBER)  # default: twice its value
    points: int = field(default=9, metadata=integers(2, 1000))  # evenly spaced low .. high
    # the marginal return of run.objective per unit of the key crosses this (0: break-even)
    threshold: float = field(default=0.0, metadata=ANY_NUMBER)
    # replications of every value, on the same streams at every value (default: run.replications)
    replications: int | None = field(default=None, metadata=integers(2, 10_000))
    # metrics tabulated besides the headline, cost and finance ones (e.g.
    # support.wait_mean_minutes against support.agents)
    metrics: list[str] = field(default_factory=list)


@dataclass
class AllocateConfig:
    # budget allocation: choose these channels' spend_per_day to maximise run.objective
    channels: list[str] = field(default_factory=list)
    # the total daily spend of those channels (default: today's total)
    budget: float | None = field(default=None, metadata=MONEY_PER_DAY)
    budget_mode: str = "fixed"  # fixed: spend exactly the budget | at_most: up to it
    # per-channel [lowest, highest] spend per day (default [0, budget])
    bounds: dict[str, list[float]] = field(default_factory=dict, metadata=MONEY_PER_DAY)
    # a floor on other metrics, e.g. {purchases: 2000}: at least this much (mean)
    minimum: dict[str, float] = field(default_factory=dict, metadata=ANY_NUMBER)
    design_points: int = field(default=24, metadata=integers(4, 10_000))  # runs per round
    rounds: int = field(default=3, metadata=integers(1, 20))  # each on a region half as wide
    # replications of every design point (common random numbers across points)
    replications: int = field(default=4, metadata=integers(2, 10_000))
    # the proposed allocation against today's, on fresh replications
    verify_replications: int = field(default=20, metadata=integers(2, 10_000))


@dataclass
class SeekConfig:
    # goal seeking: the value of key that makes metric reach target
    key: str = ""  # e.g. checkout.base_logit
    metric: str = "conversion_rate"  # the metric (of metrics.json) whose mean must reach...
    target: float | None = field(default=None, metadata=ANY_NUMBER)  # ... this value
    # where to look (default: the key's allowed range, at most 10 either side of its value):
    low: float | None = field(default=None, metadata=ANY_NUMBER)  # from
    high: float | None = field(default=None, metadata=ANY_NUMBER)  # to
    # stop when the bracket is this narrow (default: the range searched / 10,000)
    tolerance: float | None = field(default=None, metadata=between(0, 1e15, lo_open=True))
    # replications of every value tried, on the same streams (default: run.replications)
    replications: int | None = field(default=None, metadata=integers(2, 10_000))
    max_runs: int = field(default=400, metadata=integers(4, 1_000_000))  # runs at most


@dataclass
class PortfolioConfig:
    # choose the set of the compared scenarios to launch together that maximises
    # run.objective, its total scenario.cost_per_day at most this budget (null: off)
    budget: float | None = field(default=None, metadata=MONEY_PER_DAY)
    max_size: int = field(default=3, metadata=integers(1, 20))  # scenarios in a set, at most
    candidates: int = field(default=8, metadata=integers(1, 100))  # sets simulated, at most


@dataclass
class RootConfig:
    market: MarketConfig = field(default_factory=MarketConfig)
    journey: JourneyConfig = field(default_factory=JourneyConfig)
    channels: dict[str, ChannelConfig] = field(default_factory=dict)
    checkout: CheckoutConfig = field(default_factory=CheckoutConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    loyalty: LoyaltyConfig = field(default_factory=LoyaltyConfig)
    support: SupportConfig = field(default_factory=SupportConfig)
    experience: ExperienceConfig = field(default_factory=ExperienceConfig)
    advocacy: AdvocacyConfig = field(default_factory=AdvocacyConfig)
    economics: EconomicsConfig = field(default_factory=EconomicsConfig)
    run: RunConfig = field(default_factory=RunConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    # what-if comparison: "all", one scenario name or a list of them, run against the
    # baseline with common random numbers; ranked by the paired difference of compare_rank
    compare: Any = None
    compare_rank: str = "npv"  # the metric a comparison ranks scenarios by
    # the option every other is compared with: the baseline, or one of the scenarios named
    # (to choose between two interventions directly)
    compare_reference: str = "baseline"
    # uncertain assumptions (a key path to a distribution), for a PSA; a point run uses each
    # key's ordinary value
    uncertainty: Any = field(default_factory=dict)
    psa: PsaConfig = field(default_factory=PsaConfig)
    # how much, and which setting (python -m sim curve.keys=[...] | allocate.channels=[...]
    # | seek.key=... | portfolio.budget=...): one of them per command
    curve: CurveConfig = field(default_factory=CurveConfig)
    allocate: AllocateConfig = field(default_factory=AllocateConfig)
    seek: SeekConfig = field(default_factory=SeekConfig)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)


_SCHEMA_CLASSES = {c.__name__: c for c in globals().copy().values()
                   if isinstance(c, type) and dataclasses.is_dataclass(c)}


# ---------------------------------------------------------------------- registration
# the maps an overlay could silently grow with a misspelled entry
GROWABLE_MAPS = ("channels", "market.segments", "journey.stages")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_OVERLAY_KEYS = frozenset(f.name for f in dataclasses.fields(RootConfig)) | {"defaults"}


def slug(text: Any, fallback: str = "run") -> str:
    """``text`` made safe as one path component: letters, digits, ``_ - .`` only, no
    leading dot, at most 64 characters (a scenario name never steers a path elsewhere)."""
    out = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", str(text)).lstrip("._")[:64]
    return out or fallback


def _run_name(choice: Any, name: Any, compare: Any) -> str:
    """The run folder's name: what ran (a comparison, the scenario's name, or its file)."""
    if compare not in (None, "", []):
        items = [compare] if isinstance(compare, str | int | float) else list(compare)
        return slug("compare_" + "+".join(str(i) for i in items))
    return slug(name if name not in (None, "", "baseline") else choice, "baseline")


OmegaConf.register_new_resolver("sim_run_name", _run_name, replace=True)
OmegaConf.register_new_resolver("sim_slug", lambda text: slug(text), replace=True)


def _scenario_package(path: Path) -> str | None:
    first = path.read_text().splitlines()[:1]
    if first and first[0].startswith("# @package"):
        return first[0].split("@package", 1)[1].strip()
    return None


_REGISTERED: dict[str, Any] = {}


def register_configs(scenario_dirs: Sequence[Path] = ()) -> None:
    """Register the schema and the scenario overlays with Hydra's ConfigStore.

    Scenario files are loaded as data (``OmegaConf.load``) after ``sim.userfiles`` has
    checked them; nothing in them is executed.
    """
    from sim.userfiles import check_config_dir

    for folder in scenario_dirs:
        check_config_dir(folder, "scenario folder")
    files = [p for folder in (SCENARIO_DIR, *scenario_dirs)
             for p in sorted(Path(folder).glob("*.yaml"))]
    # registering loads every scenario file (a fifth of a composition): done again only
    # when the files changed since the last time in this process
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    cs = ConfigStore.instance()
    if _REGISTERED.get("stamp") == stamp and "schema.yaml" in cs.repo:
        return
    cs.store(name="schema", node=RootConfig)
    for path in files:
        cs.store(
            group="scenario",
            name=path.stem,
            node=OmegaConf.load(path),
            package=_scenario_package(path) or "scenario",
        )
    _REGISTERED["stamp"] = stamp


def scenario_names(config_dirs: Sequence[Path | str] = ()) -> list[str]:
    """Names of the available scenarios, sorted: the built-in ones, those in the
    ``scenario/`` folder of each of ``config_dirs`` and, inside a running Hydra app, those
    of its ``--config-dir`` folders too."""
    names = {p.stem for d in (SCENARIO_DIR, *(Path(c) / "scenario" for c in config_dirs))
             for p in Path(d).glob("*.yaml")}
    if GlobalHydra.instance().is_initialized():
        names |= set(GlobalHydra.instance().config_loader().get_group_options("scenario"))
    return sorted(names)


def scenario_choice(overrides: Sequence[str]) -> str:
    """The scenario an override list selects (the last ``scenario=NAME``), or baseline."""
    choice = "baseline"
    for text in overrides:
        key, sep, value = text.lstrip("+").partition("=")
        if sep and key == "scenario":
            choice = value.strip()
    return choice


def launched(cfg: Any) -> bool:
    """Whether the config's scenario is launched during the run (``scenario.start_day`` or
    ``scenario.ramp_days`` above 0): its spec then needs the baseline's config too."""
    s = cfg["scenario"]
    return bool(s["start_day"] > 0 or s["ramp_days"] > 0)


def baseline_config(overrides: Sequence[str], config_dirs: Sequence[Path | str] = ()
                    ) -> DictConfig:
    """The config ``overrides`` give with ``scenario=baseline`` instead of their scenario:
    the business a launched scenario starts from."""
    rest = [o for o in overrides if o.lstrip("+").partition("=")[0].strip() != "scenario"]
    return compose_config([*rest, "scenario=baseline"], config_dirs)


def _searchpath(overrides: Sequence[str], config_dirs: Sequence[Path]) -> list[str]:
    """``overrides`` with the ``config_dirs`` added to the config search path (as
    ``--config-dir`` does on the command line)."""
    if not config_dirs:
        return list(overrides)
    from sim.userfiles import searchpath_dirs

    dirs = [*searchpath_dirs(overrides), *(Path(d) for d in config_dirs)]
    rest = [o for o in overrides if not o.lstrip("+").startswith("hydra.searchpath=")]
    entries = ",".join(f"file://{Path(d).resolve()}" for d in dirs)
    return [*rest, f"hydra.searchpath=[{entries}]"]


def hydra_message(err: BaseException, overrides: Sequence[str]) -> str:
    """A Hydra or OmegaConf composition error as one readable message: the key, the value
    and what is allowed, without Hydra's hints that do not apply here."""
    text = str(err)
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += "\n" + str(cause)
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("To append to your config use", "reference_type=", "object_type=",
                         "Config search path", "provider=", "Set the environment variable")):
            continue
        if s.startswith("full_key:"):
            s = "(key " + s.removeprefix("full_key:").strip() + ")"
        if s:
            keep.append(s)
    m = re.search(r"Key '([^']+)' not in '(\w+)'", text)
    if m and m.group(2) in _SCHEMA_CLASSES:
        known = [f.name for f in dataclasses.fields(_SCHEMA_CLASSES[m.group(2)])]
        near = difflib.get_close_matches(m.group(1), known, n=1)
        keep.append(f"known keys there: {', '.join(known)}"
                    + (f" (did you mean {near[0]!r}?)" if near else ""))
    bad = getattr(err, "override", None)  # Hydra's OverrideParseException names it
    if isinstance(bad, str) and bad:
        keep.insert(0, f"override {bad!r}:")
    return " ".join(keep) or type(err).__name__


_COMPOSED: dict[tuple[Any, ...], DictConfig] = {}


def _sources() -> tuple[str, ...]:
    """The config folders a composition reads now: the built-in configs, and inside a
    running Hydra app the folders of its search path (``--config-dir``)."""
    if not GlobalHydra.instance().is_initialized():
        return (str(CONFIG_DIR),)
    with contextlib.suppress(Exception):  # a Hydra internal: fall back to no reuse
        paths = [s.path for s in GlobalHydra.instance().config_loader().get_sources()
                 if s.scheme() == "file"]
        return tuple(dict.fromkeys(str(Path(p)) for p in paths))
    return ("?", str(id(GlobalHydra.instance().hydra)))


def _compose(overrides: Sequence[str]) -> DictConfig:
    """Hydra's composition of ``overrides``, remembered (a copy is returned) while no
    config file changes: a composition takes a few tenths of a second, and a command checks
    every option's config before it runs them (``sim.cli.preflight``), a test suite
    composes the same configs many times."""
    sources = _sources()
    folders = [Path(f) for f in sources if f != "?"]
    files = sorted(p for d in (*folders, SCENARIO_DIR, *_searchpath_dirs(overrides))
                   if d.is_dir() for p in d.rglob("*.yaml"))
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    key = (tuple(overrides), sources, digest.hexdigest())
    if key not in _COMPOSED:
        if len(_COMPOSED) >= 128:
            _COMPOSED.clear()
        _COMPOSED[key] = _compose_now(overrides)
    return copy.deepcopy(_COMPOSED[key])


def _compose_now(overrides: Sequence[str]) -> DictConfig:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sim.userfiles import ConfigFileError

    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name="config", overrides=list(overrides))
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, KeyError, ValueError, TypeError) as err:
        if isinstance(err, ConfigFileError):
            raise
        raise ConfigFileError(hydra_message(err, overrides)) from None


def _check_overrides(overrides: Sequence[str]) -> None:
    """Overrides Hydra would take and silently ignore."""
    from sim.userfiles import ConfigFileError

    for text in overrides:
        key, sep, value = text.partition("=")
        key = key.lstrip("+")
        if sep and value.strip() in ("{}", "[]") and not key.startswith(("hydra", "~")):
            if key in ("market.segments", "journey.stages"):
                raise ConfigFileError(f"override {text!r}: {key} cannot be empty (a market "
                                      "needs a segment, a journey a stage)")
            if key in GROWABLE_MAPS or key == "journey.report":
                raise ConfigFileError(
                    f"override {text!r}: Hydra merges a mapping given on the command line "
                    f"into the config, so {value.strip()} would change nothing; remove "
                    f"entries one by one with ~{key}.NAME")


def _entries(cfg: DictConfig, path: str) -> set[str]:
    node = OmegaConf.select(cfg, path)
    return set(node.keys()) if isinstance(node, DictConfig) else set()


def settle_scenario(cfg: DictConfig, choice: str, baseline: DictConfig | None = None) -> None:
    """Checks and defaults that need the composed config: a scenario file without
    ``scenario.name`` is named after its file; the name is a safe path component; with
    ``baseline`` (the same config with ``scenario=baseline``), every map entry the
    scenario adds is declared in ``scenario.adds``.

    Raises
    ------
    sim.userfiles.ConfigFileError : naming the key, the value and what is allowed.
    """
    from sim.userfiles import ConfigFileError

    if choice != "baseline" and cfg.scenario.name == "baseline":
        cfg.scenario.name = choice
    name = cfg.scenario.name
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise ConfigFileError(
            f"scenario.name = {name!r}: a name of 1 to 64 letters, digits, '_', '-' or '.' "
            "starting with a letter or digit (it names output folders; put prose in "
            "scenario.description)")
    if baseline is None:
        return
    declared = set(cfg.scenario.adds)
    for path in GROWABLE_MAPS:
        new = sorted(_entries(cfg, path) - _entries(baseline, path))
        undeclared = [f"{path}.{k}" for k in new if f"{path}.{k}" not in declared]
        if undeclared:
            known = sorted(_entries(baseline, path))
            near = {u: difflib.get_close_matches(u.rsplit(".", 1)[1], known, n=1)
                    for u in undeclared}
            hints = " ".join(f"Did you mean {path}.{v[0]}?" for v in near.values() if v)
            raise ConfigFileError(
                f"scenario {choice!r} adds {', '.join(undeclared)}, which the baseline does "
                f"not have (it has {', '.join(known) or 'none'}). {hints + ' ' if hints else ''}"
                f"If the entry is meant to be new, declare it in the scenario file: "
                f"scenario: {{adds: [{', '.join(undeclared)}]}}")
    stale = sorted(p for p in declared
                   if not any(p.startswith(m + ".") for m in GROWABLE_MAPS))
    if stale:
        raise ConfigFileError(f"scenario.adds = {stale}: entries of "
                              f"{', '.join(GROWABLE_MAPS)} (e.g. channels.podcast)")


def _searchpath_dirs(overrides: Sequence[str]) -> list[Path]:
    from sim.userfiles import searchpath_dirs

    return searchpath_dirs(overrides)


def _may_add_entries(choice: str, config_dirs: Sequence[Path | str]) -> bool:
    """Whether the scenario file could add map entries (so the baseline must be composed to
    tell): it sets keys under one of ``GROWABLE_MAPS``, pulls in other configs through a
    defaults list, or cannot be found here (inside a Hydra app, say)."""
    folders = [SCENARIO_DIR, *(Path(d) / "scenario" for d in config_dirs)]
    found = [f / f"{choice}.yaml" for f in folders if (f / f"{choice}.yaml").is_file()]
    if not found:
        return True
    node = OmegaConf.load(found[-1])  # checked as data already (sim.userfiles)
    if not isinstance(node, DictConfig) or "defaults" in node:
        return True
    return any(OmegaConf.select(node, path) is not None for path in GROWABLE_MAPS)


def compose_config(overrides: Sequence[str] = (),
                   config_dirs: Sequence[Path | str] = (),
                   baseline: DictConfig | None = None) -> DictConfig:
    """Compose the config as the CLI would, for notebooks and tests.

    ``config_dirs`` are folders of your own overlays (``--config-dir`` on the command line;
    ``hydra.searchpath=[file://DIR]`` among the overrides works too). Every YAML file in
    them is checked as data first (``sim.userfiles``). Inside a running Hydra app (a
    comparison launched from the command line) it composes with the app's own search path,
    so ``--config-dir`` overlays are found too. ``baseline``: the same config with
    ``scenario=baseline`` when the caller has it already (a comparison), else it is composed
    here for a scenario's check.

    Raises
    ------
    sim.errors.InputError : (``ConfigFileError``) an unsafe config file, an unknown key or
        group option, a value of the wrong type, an override Hydra would ignore, or a
        scenario that adds an undeclared channel, segment or stage.
    """
    from sim.userfiles import check_user_configs

    check_user_configs(config_dirs, overrides)
    _check_overrides(overrides)
    register_configs()
    overrides = _searchpath(overrides, [Path(d) for d in config_dirs])
    cfg = _compose(overrides)
    choice = scenario_choice(overrides)
    if (choice != "baseline" and baseline is None
            and _may_add_entries(choice, [*config_dirs, *_searchpath_dirs(overrides)])):
        rest = [o for o in overrides if scenario_choice([o]) == "baseline"
                or not o.lstrip("+").startswith("scenario=")]
        baseline = _baseline_entries(rest, [*config_dirs, *_searchpath_dirs(overrides)])
    settle_scenario(cfg, choice, baseline)
    return cfg


_BASELINE_CACHE: dict[tuple[Any, ...], tuple[Any, DictConfig]] = {}


def _baseline_entries(overrides: list[str], config_dirs: Sequence[Path | str]) -> DictConfig:
    """The entries of ``GROWABLE_MAPS`` in the config composed with ``scenario=baseline``,
    remembered per override list while no config file changes (a comparison or a test
    composes many scenarios on one baseline; a composition takes a few tenths of a
    second)."""
    files = sorted(p for d in (CONFIG_DIR, *map(Path, config_dirs))
                   for p in Path(d).rglob("*.yaml"))
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    key = (tuple(overrides), GlobalHydra.instance().is_initialized())
    if key in _BASELINE_CACHE and _BASELINE_CACHE[key][0] == stamp:
        return _BASELINE_CACHE[key][1]
    full = _compose([*overrides, "scenario=baseline"])
    entries = OmegaConf.create({})
    for path in GROWABLE_MAPS:
        OmegaConf.update(entries, path, {k: {} for k in _entries(full, path)}, merge=False)
    if len(_BASELINE_CACHE) > 64:
        _BASELINE_CACHE.clear()
    _BASELINE_CACHE[key] = (stamp, entries)
    return entries


def to_container(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """A resolved, schema-checked plain-dict copy of a config.

    A plain dict (e.g. ``to_container(cfg)`` edited in a test or notebook) is merged onto
    the schema first, so missing keys get their defaults and wrong types fail here.

    Raises
    ------
    sim.userfiles.ConfigFileError : a value of the wrong type, or an interpolation that
        does not resolve (``${oc.env:UNSET}``, ``${no.such.key}``), naming the key.
    """
    from omegaconf.errors import OmegaConfBaseException

    from sim.userfiles import ConfigFileError

    try:
        if not isinstance(cfg, DictConfig):
            cfg = OmegaConf.merge(OmegaConf.structured(RootConfig), cfg)
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise ConfigFileError(hydra_message(err, ())) from None

"""Structured-config schema, the config locations and composition (Hydra stops here and in spec).

The schema types every key, so a misspelled key or a wrong type fails when Hydra composes
the config, naming the key's path. It is registered first in the defaults list as ``schema``.
Scenario overlays from ``scenarios/`` are read as plain data and registered in the
``scenario`` group, so ``scenario=NAME`` and ``-m scenario=a,b`` work from a source checkout
and from a wheel alike. Nothing here instantiates ``_target_`` nodes: configs are data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
    "RootConfig",
    "compose_config",
    "register_configs",
    "scenario_names",
    "to_container",
]


def _locate(name: str) -> Path:
    """``configs/`` or ``scenarios/``: beside the package in a checkout, inside it from a wheel."""
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("sim") / name))


CONFIG_DIR = _locate("configs")
SCENARIO_DIR = _locate("scenarios")


# --------------------------------------------------------------------------- schema
@dataclass
class SegmentConfig:
    share: float = 1.0  # share of the market, shares sum to 1
    conversion: float = 1.0  # odds multiplier on forward exits of every stage
    order_value: float = 1.0  # multiplier on order value
    purchase_rate: float = 1.0  # multiplier on repeat purchase rate (retention model)
    churn: float = 1.0  # multiplier on churn (retention model)
    referral: float = 1.0  # multiplier on advocacy / referral propensity


@dataclass
class MarketConfig:
    size: int = 20_000  # potential customers
    segments: dict[str, SegmentConfig] = field(default_factory=dict)


@dataclass
class DwellConfig:
    kind: str = "exponential"  # exponential | gamma | lognormal | weibull | fixed
    mean_days: float = 1.0
    cv: float | None = None  # required for gamma, lognormal, weibull


@dataclass
class StageConfig:
    dwell: DwellConfig = field(default_factory=DwellConfig)
    # probability of each next state after a visit: another stage (itself = stay,
    # an earlier one = step back) or "checkout"; the remainder is lost
    exits: dict[str, float] = field(default_factory=dict)
    levers: list[str] = field(default_factory=list)  # content | usability | social_proof
    experience: float = 0.0  # experience points at each visit (the journey map's emotion)


@dataclass
class JourneyConfig:
    name: str = "custom"
    description: str = ""
    stages: dict[str, StageConfig] = field(default_factory=dict)
    # framework stage name -> engine states it covers (prospect stages, checkout,
    # purchase, advocacy); reports use these names, in this order
    report: dict[str, list[str]] = field(default_factory=dict)
    content_quality: float = 1.0  # odds multiplier on stages with lever "content"
    site_usability: float = 1.0  # odds multiplier on stages with lever "usability"
    social_proof: float = 0.0  # odds multiplier 1 + social_proof * advocate share of market


@dataclass
class CampaignConfig:
    start_day: float = 0.0
    end_day: float = 0.0
    spend_per_day: float = 0.0


@dataclass
class ChannelConfig:
    organic_reach_per_day: float = 0.0  # awareness hazard per unaware person without spend
    max_reach_per_day: float = 0.0  # extra hazard at full saturation of spend
    half_saturation_spend_per_day: float = 1_000.0  # Hill curve: spend giving half of max
    hill_shape: float = 1.0  # Hill exponent
    adstock_decay: float = 0.0  # geometric carry-over of spend from one day to the next
    spend_per_day: float = 0.0  # always-on spend
    campaigns: list[CampaignConfig] = field(default_factory=list)  # extra spend over [start, end)
    fixed_cost_per_day: float = 0.0  # cost that does not buy reach (tools, staff)
    quality: float = 1.0  # odds multiplier on forward exits of prospects from this channel


@dataclass
class CheckoutWeights:
    per_extra_step: float = 0.08  # log-odds of abandoning per step beyond the first
    forced_account: float = 0.35
    hidden_fees: float = 0.60
    per_missing_payment_method: float = 0.15  # below payment_methods_expected
    per_second_load: float = 0.05  # per second of page load beyond one
    trust: float = -0.50  # per unit of trust in [0, 1]


@dataclass
class CheckoutConfig:
    base_logit: float = -0.573  # intercept of the abandonment logit
    steps: int = 5
    forced_account: bool = True
    hidden_fees: bool = True
    payment_methods: int = 2
    payment_methods_expected: int = 4
    page_load_seconds: float = 3.0
    trust: float = 0.5  # security badges, reviews, clear returns: 0 to 1
    weights: CheckoutWeights = field(default_factory=CheckoutWeights)
    dwell: DwellConfig = field(default_factory=lambda: DwellConfig("fixed", 0.01, None))
    reminder: bool = True  # abandoned-cart reminder
    recovery_prob: float = 0.10  # chance the reminder recovers an abandoned cart
    recovery_delay_days: float = 1.0


@dataclass
class RepeatPurchaseConfig:
    """BG/NBD: purchase rate lambda ~ Gamma(r, alpha), drop-out p ~ Beta(a, b)."""

    r: float = 0.9  # Gamma shape of the purchase rate
    alpha_days: float = 60.0  # Gamma rate (days): mean rate r / alpha purchases per day
    a: float = 1.5  # Beta(a, b): drop-out probability after each repeat purchase
    b: float = 6.0


@dataclass
class SubscriptionConfig:
    """Shifted-beta-geometric: churn theta ~ Beta(alpha, beta) at each renewal."""

    period_days: float = 30.0
    alpha: float = 1.2
    beta: float = 15.0
    price_per_period: float = 25.0


@dataclass
class MessagingConfig:
    newsletter: bool = False
    newsletters_per_month: float = 4.0
    newsletter_rate_multiplier: float = 1.10  # on the purchase rate
    cost_per_message: float = 0.01
    recommendations: bool = False  # personalised recommendations
    recommendations_rate_multiplier: float = 1.10
    recommendations_cost_per_customer_per_month: float = 0.20
    cross_sell: bool = False
    cross_sell_order_value_multiplier: float = 1.10
    thank_you: bool = False  # thank-you and confirmation message after each purchase
    thank_you_cost: float = 0.05


@dataclass
class RetentionConfig:
    model: str = "repeat_purchase"  # repeat_purchase | subscription | none
    repeat: RepeatPurchaseConfig = field(default_factory=RepeatPurchaseConfig)
    subscription: SubscriptionConfig = field(default_factory=SubscriptionConfig)
    messaging: MessagingConfig = field(default_factory=MessagingConfig)


@dataclass
class LoyaltyConfig:
    enabled: bool = False
    enrol_prob: float = 0.40  # at the first purchase
    rate_multiplier: float = 1.25  # members buy more often
    dropout_multiplier: float = 0.75  # ... and drop out less (multiplies p or theta)
    discount: float = 0.05  # share of each member order given back
    cost_per_member_per_month: float = 0.50
    reward_experience: float = 0.10  # experience points per member purchase (rewards)


@dataclass
class SupportConfig:
    issue_prob: float = 0.08  # chance a purchase causes an issue (a ticket)
    agents: int = 1
    handling_kind: str = "gamma"  # exponential | gamma | lognormal | weibull | fixed
    handling_mean_minutes: float = 12.0
    handling_cv: float | None = 0.8
    patience_mean_minutes: float = 30.0  # exponential patience; the customer reneges after it
    first_contact_resolution: float = 0.75
    cost_per_agent_per_day: float = 25.0


@dataclass
class ExperienceConfig:
    """Experience score in [-2, 2], moved by touchpoints; it drives churn and advocacy."""

    checkout_per_abandon_prob: float = -1.0  # points at checkout: times the abandon probability
    recovered_cart: float = -0.2
    thank_you: float = 0.1
    wait_per_hour: float = -0.5  # at the desk
    ticket_resolved: float = 0.3
    ticket_unresolved: float = -0.8
    ticket_abandoned: float = -1.0
    bad_threshold: float = -0.5  # a touchpoint at or below this is a bad experience ...
    leave_after_bad: float = 0.33  # ... after which the customer leaves with this probability
    churn_per_point: float = 0.4  # drop-out odds multiplied by exp(-churn_per_point * score)
    advocacy_per_point: float = 0.8  # advocacy odds multiplied by exp(advocacy_per_point * score)


@dataclass
class AdvocacyConfig:
    advocate_prob: float = 0.15  # chance a buyer (with good enough experience) advocates
    min_experience: float = -0.5  # experience score needed to become an advocate
    wom_q_per_day: float = 0.02  # Bass imitation q: hazard per unaware person at A = M
    referral_rate_per_day: float = 0.004  # referrals per active advocate per day
    referral_conversion: float = 1.5  # odds multiplier on forward exits of referred prospects
    referral_entry_stage: str = "consideration"  # where referred prospects enter
    program: bool = False  # referral programme
    program_rate_multiplier: float = 2.0
    reward_per_referral: float = 10.0  # paid when a referred prospect first buys


@dataclass
class EconomicsConfig:
    order_value_mean: float = 80.0
    order_value_cv: float = 0.6  # lognormal
    gross_margin: float = 0.40  # share of order value kept after cost of goods
    annual_discount_rate: float = 0.10  # applied continuously to daily cash flows


@dataclass
class RunConfig:
    seed: int = 20261123
    replications: int = 10
    horizon_days: float = 365.0
    engine: str = "auto"  # agent | fast | auto (agent below 50,000 people, fast from there)
    # fast engine: population feedback (word of mouth, referrals, social proof) is read once
    # per tick of this many days
    tick_days: float = 1.0
    n_jobs: int = 1  # worker processes for replications; results never depend on it
    # replications first_replication .. first_replication + replications - 1: a big
    # experiment split into blocks (separate jobs) that `python -m sim.report` merges
    first_replication: int = 0
    progress: bool = True  # a progress bar on a terminal (never in CI or when piped)
    memory_guard: bool = True  # refuse a run whose estimated memory exceeds what is free
    # precision-driven replications: add replications until the 95% CI half-width of
    # precision_metric is at most target_rel_half_width x |mean| (or max_replications)
    target_rel_half_width: float | None = None
    precision_metric: str = "npv"
    max_replications: int = 200
    summary: bool = True  # print the summary table on the console
    plots: bool = True
    events: bool = False  # also write events.csv: every state entry of every customer


@dataclass
class ScenarioConfig:
    name: str = "baseline"
    description: str = ""
    cost_per_day: float = 0.0  # cost of the intervention itself


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
    compare_rank: str = "npv"


# ---------------------------------------------------------------------- registration
def _scenario_package(path: Path) -> str | None:
    first = path.read_text().splitlines()[:1]
    if first and first[0].startswith("# @package"):
        return first[0].split("@package", 1)[1].strip()
    return None


def register_configs(scenario_dirs: Sequence[Path] = ()) -> None:
    """Register the schema and the scenario overlays with Hydra's ConfigStore.

    Scenario files are loaded as data (``OmegaConf.load``); nothing in them is executed.
    """
    cs = ConfigStore.instance()
    cs.store(name="schema", node=RootConfig)
    for folder in (SCENARIO_DIR, *scenario_dirs):
        for path in sorted(Path(folder).glob("*.yaml")):
            cs.store(
                group="scenario",
                name=path.stem,
                node=OmegaConf.load(path),
                package=_scenario_package(path) or "scenario",
            )


def scenario_names() -> list[str]:
    """Names of the available scenarios, sorted: the built-in ones and, inside a running
    Hydra app, those of ``--config-dir`` folders too."""
    if GlobalHydra.instance().is_initialized():
        return sorted(GlobalHydra.instance().config_loader().get_group_options("scenario"))
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the config as the CLI would, for notebooks and tests.

    Inside a running Hydra app (a comparison launched from the command line) it composes
    with the app's own search path, so ``--config-dir`` overlays are found too.
    """
    register_configs()
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def to_container(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """A resolved, schema-checked plain-dict copy of a config.

    A plain dict (e.g. ``to_container(cfg)`` edited in a test or notebook) is merged onto
    the schema first, so missing keys get their defaults and wrong types fail here.
    """
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.merge(OmegaConf.structured(RootConfig), cfg)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]

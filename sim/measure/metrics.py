"""Measure one replication: headline metrics and the daily series, from the records.

Everything here is a pure function of a ``SimulationResult`` and its ``ModelSpec``; no
running averages are kept inside the engines (STYLE.md, "record events, then measure").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.engine.records import SimulationResult
from sim.model.spec import ModelSpec

__all__ = ["FINANCE_CONVENTION", "acquisition_months", "cohort_curves", "cohort_grid",
           "cumulative_values", "customer_values", "daily_table", "kaplan_meier",
           "ltv_groups", "metric_range", "monthly_pnl", "new_customers", "payback_curve",
           "replication_metrics", "residual_at_horizon", "shown_as_percent"]

DAYS_PER_MONTH = 365.25 / 12
RETENTION_CHECKPOINTS = {"3m": 3 * DAYS_PER_MONTH, "6m": 6 * DAYS_PER_MONTH,
                         "12m": 12 * DAYS_PER_MONTH}


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def reached_report_stages(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per framework stage: which customers reached it (any of its engine states)."""
    times = result.state_times()
    return {label: ~np.all(np.isnan(times[:, list(codes)]), axis=1)
            for label, codes in spec.report}


def _annuity(rate_per_day: float, delta: float, days: np.ndarray) -> np.ndarray:
    """Present value at the start of a flow of ``rate_per_day`` lasting ``days``."""
    if delta == 0:
        return rate_per_day * days
    return rate_per_day * -np.expm1(-delta * days) / delta


def in_force(spec: ModelSpec, result: SimulationResult, customer: np.ndarray,
             time: np.ndarray, value: Callable[[ModelSpec], float]) -> np.ndarray:
    """``value`` of the rules in force for each customer at each time: the scenario's, or
    with a launch the baseline's (``spec.before``) until the scenario reached them."""
    if spec.before is None:
        return np.full(np.shape(customer), value(spec), dtype=float)
    after = time >= result.customers["scenario_from"][customer]
    return np.where(after, value(spec), value(spec.before))


def running_spells(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The running costs of every buyer while active (loyalty fee, messaging) as spells of
    constant cost per day: ``customer``, ``start``, ``end`` (days; end = churn or the
    horizon), ``rate``. Two spells per buyer, split where a launched scenario reached them
    (the first empty without a launch); a member pays the fee from joining."""
    c = result.customers
    t0 = c["t_purchase"]
    buyers = np.flatnonzero(~np.isnan(t0))
    start = t0[buyers]
    end = np.where(np.isnan(c["t_churned"]), spec.horizon_days, c["t_churned"])[buyers]
    split = np.clip(c["scenario_from"][buyers], start, end)
    since = c["member_since"][buyers]
    before = spec.before or spec

    def rate(rules: ModelSpec, at: np.ndarray) -> np.ndarray:
        fee = np.where(since <= at, rules.loyalty.cost_per_member_per_day, 0.0)
        return fee + rules.retention.messaging_cost_per_day

    return {"customer": np.concatenate([buyers, buyers]),
            "start": np.concatenate([start, split]), "end": np.concatenate([split, end]),
            "rate": np.concatenate([rate(before, start), rate(spec, split)])}


def customer_values(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per customer (NaN for those who never bought): lifetime, costs caused and LTV.

    Conventions (README, "Economics"): money is discounted continuously at
    delta = ln(1 + annual rate) / 365 per day; a customer's LTV is valued at the first
    purchase, which itself counts undiscounted ("first margin now"). LTV = discounted margin
    of every order (after loyalty discounts) minus the discounted retention costs the
    customer caused: loyalty fee and messaging while active, thank-you messages, referral
    rewards for referred customers who bought. It is realised up to the horizon (censored).
    Acquisition spend and the service desk's staff are not allocated to customers.
    ``residual``: the expected value after the horizon (``residual_at_horizon``),
    discounted to the first purchase; ``clv`` = ``ltv`` + ``residual``.
    """
    c, p = result.customers, result.purchases
    n, delta = result.n_customers, spec.discount_rate_per_day
    t0 = c["t_purchase"]
    bought = ~np.isnan(t0)
    t_end = np.where(np.isnan(c["t_churned"]), spec.horizon_days, c["t_churned"])
    active_days = np.where(bought, t_end - t0, np.nan)
    age = p["time"] - t0[p["customer"]]
    disc = np.exp(-delta * age)
    margin_pv = np.bincount(p["customer"], weights=p["margin"] * disc, minlength=n)[:n]
    thanks = _thank_you_costs(result, spec)
    ty_pv = np.bincount(p["customer"], weights=thanks * disc, minlength=n)[:n]
    spells = running_spells(result, spec)
    who, rate = spells["customer"], spells["rate"]
    since = spells["start"] - t0[who], spells["end"] - t0[who]  # ages
    running_pv = np.bincount(who, weights=rate * (_annuity(1.0, delta, since[1])
                                                  - _annuity(1.0, delta, since[0])),
                             minlength=n)[:n]
    running = np.bincount(who, weights=rate * (since[1] - since[0]), minlength=n)[:n]
    # a referral reward is paid when the referred customer first buys
    referrer, r_time, reward = _paid_referrals(result, spec)
    r_age = r_time - t0[referrer]
    reward_pv = np.bincount(referrer, weights=reward * np.exp(-delta * r_age), minlength=n)[:n]
    rewards = np.bincount(referrer, weights=reward, minlength=n)[:n]
    costs = np.bincount(p["customer"], weights=thanks, minlength=n)[:n] + running + rewards
    costs_pv = ty_pv + running_pv + reward_pv
    ltv = np.where(bought, margin_pv - costs_pv, np.nan)
    # the residual value at the horizon, discounted to the first purchase like the rest
    residual = residual_at_horizon(result, spec) * np.exp(-delta * (spec.horizon_days - t0))
    return {"active_days": active_days, "costs": np.where(bought, costs, np.nan),
            "costs_pv": np.where(bought, costs_pv, np.nan),
            "margin_pv": np.where(bought, margin_pv, np.nan),
            "ltv": ltv, "residual": residual, "clv": ltv + residual}


def _spells_by_age(result: SimulationResult, spec: ModelSpec
                   ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The ``running_spells`` that cost something: customer, (start, end) as ages (days
    since the first purchase), rate."""
    spells = running_spells(result, spec)
    keep = (spells["rate"] > 0) & (spells["end"] > spells["start"])
    who = spells["customer"][keep]
    t0 = result.customers["t_purchase"][who]
    return who, (spells["start"][keep] - t0, spells["end"][keep] - t0), spells["rate"][keep]


def fixed_costs(spec: ModelSpec) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The costs per day that no customer causes, as spells (start, end, rate) in days:
    ``support`` (the desk's staff: the baseline's until a launch, the scenario's from it)
    and ``intervention`` (``scenario.cost_per_day``, charged from the launch)."""
    h, start = spec.horizon_days, min(spec.start_day, spec.horizon_days)
    before = spec.before or spec

    def staff(rules: ModelSpec) -> float:
        return rules.support.agents * rules.support.cost_per_agent_per_day

    return {"support": (np.array([0.0, start]), np.array([start, h]),
                        np.array([staff(before), staff(spec)])),
            "intervention": (np.array([start]), np.array([h]),
                             np.array([spec.scenario_cost_per_day]))}


def _thank_you_costs(result: SimulationResult, spec: ModelSpec) -> np.ndarray:
    """Per order: the thank-you message's cost under the rules in force then."""
    p = result.purchases
    return in_force(spec, result, p["customer"], p["time"],
                    lambda s: s.retention.thank_you_cost)


def _paid_referrals(result: SimulationResult, spec: ModelSpec
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Referral rewards, paid when the referred customer first buys: the referrer, the
    time, the amount (the referrer's programme then)."""
    t0, ref = result.customers["t_purchase"], result.referrals
    paid = ~np.isnan(t0[ref["customer"]]) if ref["customer"].size else np.zeros(0, bool)
    who, when = ref["referrer"][paid], t0[ref["customer"][paid]]
    return who, when, in_force(spec, result, who, when, lambda s: s.advocacy.reward_per_referral)


def residual_at_horizon(result: SimulationResult, spec: ModelSpec) -> np.ndarray:
    """Per customer: the expected discounted value after the horizon, at the horizon
    (0 for a customer who churned, NaN for one who never bought).

    Given the customer's state at the horizon: their purchase rate lambda, their drop-out
    p as it stands then (the loyalty multiplier and the experience's shift at their last
    score included; no further experience changes assumed), their expected margin per
    order m (expected order value x gross margin, less the loyalty discount) net of the
    thank-you cost, their running costs c per day (loyalty fee, messaging), under the rules
    in force for them at the horizon (with a launch: the scenario's if it reached them in
    the run, else the baseline's), discounted at delta per day:

    - repeat purchase (BG/NBD, drop-out after each purchase): future purchases arrive at
      lambda and the customer leaves at rate lambda p, so the residual is
      (lambda m - c) / (delta + lambda p) (the closed form of sum_k q^k (1 - p)^(k - 1)
      m - c E[integral of e^(-delta t) while alive], q = lambda / (lambda + delta));
    - subscription (shifted-beta-geometric, churn theta at each renewal, every P days, the
      next one a days after the horizon): e^(-delta a) [s m / (1 - s d) - c ... ], with
      s = 1 - theta and d = e^(-delta P) (``_subscription_residual``);
    - no further orders: -c / delta (running costs only).

    NaN where the sum diverges (no discounting and a customer who never leaves).
    """
    c = result.customers
    delta = spec.discount_rate_per_day
    bought = ~np.isnan(c["t_purchase"])
    alive = bought & np.isnan(c["t_churned"])
    member = c["loyalty_member"]

    def rule(value: Callable[[ModelSpec], float]) -> np.ndarray | float:
        """The rules in force at the horizon: the scenario's for a customer it reached in
        the run, else the baseline's (a launch after the horizon is not assumed)."""
        if spec.before is None:
            return value(spec)
        return np.where(c["scenario_from"] < spec.horizon_days, value(spec),
                        value(spec.before))

    odds = np.exp(-rule(lambda s: s.experience.churn_per_point)
                  * np.nan_to_num(c["experience"]))
    p = c["dropout"]
    shifted = np.where(p >= 1.0, 1.0, p * odds / (1.0 - p + p * odds))
    margin = (c["order_value_mean"] * (rule(lambda s: s.gross_margin)
                                       - np.where(member, rule(lambda s: s.loyalty.discount), 0.0))
              - rule(lambda s: s.retention.thank_you_cost))
    running = (np.where(member, rule(lambda s: s.loyalty.cost_per_member_per_day), 0.0)
               + rule(lambda s: s.retention.messaging_cost_per_day))
    ret = spec.retention
    with np.errstate(divide="ignore", invalid="ignore"):
        if ret.model == "subscription":
            value = _subscription_residual(result, spec, shifted, margin, running)
        else:
            lam = c["purchase_rate"]
            denom = delta + lam * shifted
            value = np.where(denom > 0, (lam * margin - running) / denom, np.nan)
    return np.where(alive, value, np.where(bought, 0.0, np.nan))


def _subscription_residual(result: SimulationResult, spec: ModelSpec, theta: np.ndarray,
                           margin: np.ndarray, running: np.ndarray) -> np.ndarray:
    """The subscription's residual at the horizon H: the next renewal at a = t_last + P - H
    (t_last: the last payment), each renewal kept with s = 1 - theta, paying m:
    e^(-delta a) s m / (1 - s d); running costs until the first renewal lost:
    c (1 - e^(-delta a) (1 - s) / (1 - s d)) / delta (c (a + P s / (1 - s)) without
    discounting)."""
    c, p = result.customers, result.purchases
    period, delta, h = spec.retention.period_days, spec.discount_rate_per_day, spec.horizon_days
    last = np.full(c["id"].size, np.nan)
    np.fmax.at(last, p["customer"], p["time"])
    a = np.maximum(last + period - h, 0.0)
    s = 1.0 - theta
    if delta == 0:
        return np.where(s < 1, s * margin / (1 - s) - running * (a + period * s / (1 - s)),
                        np.nan)
    d = math.exp(-delta * period)
    lead = np.exp(-delta * a)
    return (lead * s * margin / (1 - s * d)
            - running * (1 - lead * (1 - s) / (1 - s * d)) / delta)


def kaplan_meier(durations: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival: event times and S(t) just after each, with censoring.

    ``observed`` is False for durations cut by the horizon (still active).
    """
    order = np.argsort(durations, kind="stable")
    d, e = durations[order], observed[order]
    times = np.unique(d[e])
    at_risk = d.size - np.searchsorted(d, times, side="left")
    deaths = np.bincount(np.searchsorted(times, d[e]), minlength=times.size)
    return times, np.cumprod(1.0 - deaths / at_risk)


def survival_at(times: np.ndarray, surv: np.ndarray, t: float, longest: float) -> float:
    """S(t) from a Kaplan-Meier curve (1 before the first event); NaN past ``longest``,
    the longest duration observed, where the curve says nothing."""
    if t > longest:
        return float("nan")
    i = np.searchsorted(times, t, side="right")
    return float(surv[i - 1]) if i else 1.0


def payback_curve(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The average customer's discounted net value by age, the curve payback is read from.

    Net value at age a (days since the first purchase) is the discounted margin of the
    orders so far minus the retention costs so far, as in ``customer_values`` (so at a
    customer's last observable age it is the customer's LTV). At each whole age
    a = 0, 1, ..., floor(horizon) the average is over the customers observable that long
    (acquired at least a days before the horizon): the number at risk shrinks with age.

    Returns
    -------
    ``age_days``, ``customers_observable`` (count) and ``ltv_to_date_per_customer``
    (currency units, discounted to the first purchase; NaN where nobody is observable).
    """
    result = new_customers(result)
    c, p = result.customers, result.purchases
    t0 = c["t_purchase"]
    buyers = np.flatnonzero(~np.isnan(t0))
    delta, n_ages = spec.discount_rate_per_day, int(np.floor(result.horizon_days)) + 1
    ages = np.arange(n_ages, dtype=float)
    observable_until = result.horizon_days - t0  # the oldest age seen for each customer
    diff = np.zeros(n_ages + 1)

    def add(customer: np.ndarray, age: np.ndarray, amount: np.ndarray) -> None:
        """Amounts counted from their age until the customer's last observable age."""
        lo = np.minimum(np.ceil(age).astype(np.int64), n_ages)
        hi = np.minimum(np.floor(observable_until[customer]).astype(np.int64) + 1, n_ages)
        np.add.at(diff, lo, amount)
        np.add.at(diff, hi, -amount)

    age = p["time"] - t0[p["customer"]]
    add(p["customer"], age, (p["margin"] - _thank_you_costs(result, spec))
        * np.exp(-delta * age))
    who, when, reward = _paid_referrals(result, spec)
    when = when - t0[who]
    add(who, when, -reward * np.exp(-delta * when))
    total = np.cumsum(diff)[:n_ages]
    who, (a0, a1), rate = _spells_by_age(result, spec)
    if who.size:  # running costs while active, up to each observable age
        seen = ages[None, :] <= observable_until[who][:, None]
        run = (_annuity(1.0, delta, np.clip(ages[None, :], a0[:, None], a1[:, None]))
               - _annuity(1.0, delta, a0)[:, None])
        total -= (seen * run * rate[:, None]).sum(axis=0)
    observable = buyers.size - np.searchsorted(np.sort(observable_until[buyers]), ages)
    mean = np.where(observable > 0, total / np.maximum(observable, 1), np.nan)
    return {"age_days": ages, "customers_observable": observable,
            "ltv_to_date_per_customer": mean}


def payback_days(result: SimulationResult, spec: ModelSpec, cac: float) -> float:
    """Days from acquisition until the average customer's discounted net value covers CAC:
    the first whole age at which ``payback_curve`` reaches ``cac``. NaN if it never does
    within the horizon (or there is no buyer, or CAC is undefined).
    """
    if not np.isfinite(cac):
        return float("nan")
    curve = payback_curve(result, spec)
    hit = np.flatnonzero(curve["ltv_to_date_per_customer"] >= cac)
    return float(curve["age_days"][hit[0]]) if hit.size else float("nan")


def _acquisition(result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """Per awareness source: channel spend over the run (including fixed costs; nothing for
    word of mouth and referrals) and the first purchases it brought."""
    c = result.customers
    bought = ~np.isnan(c["t_purchase"])
    spend = np.zeros(len(result.channels))
    by_channel = result.spend_per_day.sum(axis=0)
    spend[:by_channel.size] = by_channel[:spend.size]
    return spend, np.bincount(c["channel"][bought], minlength=len(result.channels))


# money metrics that add up over customers: with an installed base, the headline value is
# the whole business's, new.<name> the new customers' and base.<name> the base's
BASE_TOTALS = ("revenue", "gross_margin", "discounts", "costs.retention", "profit", "npv",
               "npv_clv")


def replication_metrics(result: SimulationResult, spec: ModelSpec) -> dict[str, float]:
    """Headline metrics of one replication, flat ``group.name`` keys, plain floats.

    Conversion rates are shares of the customers who became aware; a funnel stage's
    ``step_rate`` is the share of the previous stage's customers who reached it. CAC is
    channel spend (including fixed costs) over the first purchases the channel brought;
    NaN when none.

    With an installed base (``market.base``) the journey and customer metrics are the new
    customers' (the base's in ``base_metrics``); the totals in ``BASE_TOTALS`` and the
    service desk's are the whole business's, with ``new.<name>`` and ``base.<name>``.
    """
    if not result.has_base:
        return _metrics(result, spec)
    base = result.customers["base"]
    out = _metrics(result.part(~base), spec)
    out |= _support_metrics(result, spec)  # one desk serves everyone
    b = base_metrics(result, spec)
    for key in BASE_TOTALS:
        out[f"new.{key}"] = out[key]
        out[key] = out[key] + b[f"base.{key}"]
    return out | b


def base_metrics(result: SimulationResult, spec: ModelSpec) -> dict[str, float]:
    """The installed base's metrics (``base.<name>``): its customers, those alive at the
    start and at the horizon, those who churned in the run, its orders and money (value
    counted from the start, discounted to day 0; no acquisition cost: it is sunk)."""
    c, p = result.customers, result.purchases
    base = c["base"]
    values = customer_values(result, spec)
    mine = base[p["customer"]]
    delta = spec.discount_rate_per_day
    margin = float(p["margin"][mine].sum())
    costs = float(np.nansum(values["costs"][base]))
    ltv = values["ltv"][base]
    npv = float((p["margin"][mine] * np.exp(-delta * p["time"][mine])).sum()
                - np.nansum(values["costs_pv"][base]))
    dead_at_start = c["t_churned"][base] == 0
    return {
        "base.customers": float(base.sum()),
        "base.alive_start": float((~dead_at_start).sum()),
        "base.active": float(np.isnan(c["t_churned"][base]).sum()),
        "base.churned": float((c["t_churned"][base] > 0).sum()),
        "base.orders": float(mine.sum()),
        "base.revenue": float(p["revenue"][mine].sum()),
        "base.gross_margin": margin,
        "base.discounts": float(p["discount"][mine].sum()),
        "base.costs.retention": costs,
        "base.profit": margin - costs,
        "base.npv": npv,
        "base.ltv.mean": float(ltv.mean()) if ltv.size else float("nan"),
        "base.clv.mean": float(values["clv"][base].mean()) if ltv.size else float("nan"),
        "base.npv_clv": npv + float(np.nansum(values["residual"][base])),  # t0 = day 0
        "base.loyalty_members": float(c["loyalty_member"][base].sum()),
        "base.advocates": float(c["advocate"][base].sum()),
        "base.referrals": float(c["referrals"][base].sum()),
    }


def _support_metrics(result: SimulationResult, spec: ModelSpec) -> dict[str, float]:
    """The service desk: tickets, waits, abandonment, first-contact resolution, load."""
    tk = result.tickets
    served = tk["outcome"] < 2
    queue = np.where(served, tk["start"], tk["end"]) - tk["arrival"]
    minutes = queue * 1440
    start, end, _ = fixed_costs(spec)["support"]
    agents = np.array([(spec.before or spec).support.agents, spec.support.agents])
    agent_days = float(agents @ (end - start))  # the staff on duty: with a launch, both
    return {
        "support.tickets": float(tk["outcome"].size),
        "support.wait_mean_minutes": float(minutes.mean()) if minutes.size else float("nan"),
        "support.wait_p90_minutes": (float(np.percentile(minutes, 90)) if minutes.size
                                     else float("nan")),
        "support.abandonment_rate": _ratio((tk["outcome"] == 2).sum(), tk["outcome"].size),
        "support.unresolved_rate": _ratio((tk["outcome"] == 1).sum(), served.sum()),
        "support.utilisation": _ratio((tk["end"][served] - tk["start"][served]).sum(),
                                      agent_days),
    }


def _metrics(result: SimulationResult, spec: ModelSpec) -> dict[str, float]:
    """``replication_metrics`` of a run without a base (or of its new customers)."""
    c = result.customers
    n = result.n_customers
    out: dict[str, float] = {"aware": float(n)}
    prev = np.ones(n, dtype=bool)  # the first stage's step is from awareness
    for label, mask in reached_report_stages(result, spec).items():
        k = int(mask.sum())
        out[f"funnel.{label}.reached"] = float(k)
        out[f"funnel.{label}.rate"] = _ratio(k, n)
        # step conversion: the share of the previous stage's customers who reached this
        # one. Not k / (previous count): a stage can be reached without the previous one
        # (advocacy after a single purchase, without retention; referrals entering past
        # awareness), and that ratio, no share of anything, can pass 1.
        out[f"funnel.{label}.step_rate"] = _ratio(int((mask & prev).sum()), int(prev.sum()))
        prev = mask

    bought = ~np.isnan(c["t_purchase"])
    n_buy = int(bought.sum())
    entries = int((~np.isnan(c["t_checkout"])).sum())
    n_ab = len(result.abandonments["customer"])
    n_rec = int(result.abandonments["recovered"].sum())
    out |= {
        "purchases": float(n_buy),
        "conversion_rate": _ratio(n_buy, n),
        "checkout.entries": float(entries),
        "checkout.abandonment_rate": _ratio(n_ab, entries),
        "checkout.recovered": float(n_rec),
        "checkout.recovery_rate": _ratio(n_rec, n_ab),
        "lost": float(np.isin(c["outcome"], (2, 3)).sum()),
        "in_journey": float((c["outcome"] == 0).sum()),
    }
    wait = c["t_purchase"][bought] - c["t_aware"][bought]
    out["time_to_purchase.mean_days"] = float(wait.mean()) if n_buy else float("nan")
    out["time_to_purchase.median_days"] = float(np.median(wait)) if n_buy else float("nan")

    # acquisition
    spend, acq = _acquisition(result)
    for j, name in enumerate(result.channels):
        out[f"acquisitions.{name}"] = float(acq[j])
        out[f"spend.{name}"] = float(spend[j])
        out[f"cac.{name}"] = _ratio(spend[j], acq[j])
    acquisition = float(result.spend_per_day.sum(axis=0).sum())
    out["spend.total"] = acquisition
    out["cac"] = _ratio(acquisition, n_buy)

    # life as a customer
    values = customer_values(result, spec)
    orders = c["purchases"][bought]
    churned = ~np.isnan(c["t_churned"][bought])
    active_days = values["active_days"][bought]
    times, surv = kaplan_meier(active_days, churned)
    out |= {
        "repeat_purchase_rate": _ratio((orders >= 2).sum(), n_buy),
        "purchases_per_customer": float(orders.mean()) if n_buy else float("nan"),
        "churned": float(churned.sum()),
        "active_customers": float(n_buy - churned.sum()),
        "monthly_churn": _ratio(churned.sum(), active_days.sum() / DAYS_PER_MONTH),
        **{f"retention.{k}": survival_at(times, surv, t, active_days.max()) if n_buy
           else float("nan") for k, t in RETENTION_CHECKPOINTS.items()},
        "loyalty_members": float(c["loyalty_member"].sum()),
    }

    # money: LTV per customer, totals, NPV of the whole scenario
    ltv = values["ltv"][bought]
    p = result.purchases
    delta = spec.discount_rate_per_day
    retention_costs = float(np.nansum(values["costs"]))
    spells = fixed_costs(spec)
    fixed_total = {k: float(rate @ (end - start)) for k, (start, end, rate) in spells.items()}
    fixed_pv = sum(float(rate @ (_annuity(1.0, delta, end) - _annuity(1.0, delta, start)))
                   for start, end, rate in spells.values())
    out |= {
        "revenue": float(p["revenue"].sum()),
        "gross_margin": float(p["margin"].sum()),
        "first_order_revenue": float(np.nansum(c["first_order_value"])),
        "discounts": float(p["discount"].sum()),
        "costs.acquisition": acquisition,
        "costs.retention": retention_costs,
        "costs.support": fixed_total["support"],
        "costs.intervention": fixed_total["intervention"],
        "profit": (float(p["margin"].sum()) - acquisition - retention_costs
                   - fixed_total["support"] - fixed_total["intervention"]),
        "roas": _ratio(p["revenue"].sum(), acquisition),
        "ltv.mean": float(ltv.mean()) if n_buy else float("nan"),
        "clv.mean": float(values["clv"][bought].mean()) if n_buy else float("nan"),
        **{f"ltv.p{q}": float(np.percentile(ltv, q)) if n_buy else float("nan")
           for q in (10, 50, 90)},
    }
    out["ltv_to_cac"] = _ratio(out["ltv.mean"], out["cac"])
    out["payback_days"] = payback_days(result, spec, out["cac"])
    # the mean of this across replications is the share that paid back within the horizon
    # (payback_days is NaN, and so left out of its mean, where it did not)
    out["paid_back"] = float(np.isfinite(out["payback_days"]))
    # NPV from day 0: every cash flow discounted to the start of the run (channel spend at
    # the start of its day, customers' costs from their acquisition, staff continuously)
    day_start = np.exp(-delta * np.arange(result.spend_per_day.shape[0]))
    npv = float((p["margin"] * np.exp(-delta * p["time"])).sum())
    npv -= float(result.spend_per_day.sum(axis=1) @ day_start)
    npv -= float(np.nansum(values["costs_pv"] * np.exp(-delta * c["t_purchase"])))
    npv -= fixed_pv
    out["npv"] = npv
    # NPV plus the residual value of the customers alive at the horizon, discounted to day 0
    # (each residual is discounted to its first purchase t0 in ``values``: on to day 0)
    out["npv_clv"] = npv + float(np.nansum(values["residual"] * np.exp(-delta * c["t_purchase"])))

    out |= _support_metrics(result, spec)

    # advocacy
    referral = len(result.channels) - 1
    advocate = c["advocate"]
    out |= {
        "advocates": float(advocate.sum()),
        "advocates_active": float((advocate & np.isnan(c["t_churned"])).sum()),
        "referrals": float(result.referrals["customer"].size),
        "referral_acquisitions": float(acq[referral]),
        "referral_share": _ratio(acq[referral], n_buy),
    }
    # the emotion curve: mean experience score on first entering each state
    ev = result.events
    for j, state in enumerate(result.states):
        sel = ev["state"] == j
        first = np.zeros(sel.sum(), dtype=bool)
        if first.size:
            _, idx = np.unique(ev["customer"][sel], return_index=True)
            first[idx] = True
        scores = ev["score"][sel][first]
        out[f"experience.{state}"] = float(scores.mean()) if scores.size else float("nan")
    return out


# The range of every headline metric, by name: confidence intervals are cut at it.
SHARES = {"conversion_rate", "checkout.abandonment_rate", "checkout.recovery_rate",
          "repeat_purchase_rate", "paid_back", "support.abandonment_rate",
          "support.unresolved_rate", "support.utilisation", "referral_share"}
NONNEGATIVE = {"aware", "purchases", "checkout", "lost", "in_journey", "time_to_purchase",
               "acquisitions", "spend", "cac", "purchases_per_customer", "churned",
               "monthly_churn",  # churns per customer-month: a rate, above 1 if lives are short
               "active_customers", "loyalty_members", "revenue", "first_order_revenue",
               "discounts", "costs", "roas", "payback_days", "support", "advocates",
               "advocates_active", "referrals", "referral_acquisitions", "customers", "alive_start",
               "active", "orders"}  # names or groups


def metric_range(name: str) -> tuple[float, float]:
    """The values the headline metric ``name`` can take: shares (conversion and other
    parts of a whole, retention, utilisation) in [0, 1], experience scores in [-2, 2];
    counts, durations, rates per month and amounts spent or received at least 0; the rest
    (LTV, LTV:CAC, gross margin, profit, NPV), and any name not listed, unbounded."""
    if name.startswith(("base.", "new.")):  # the base's and the new customers' parts
        name = name.split(".", 1)[1]
    group = name.split(".")[0]
    if name in SHARES or group == "retention" or (group == "funnel" and name.endswith("rate")):
        return 0.0, 1.0  # funnel: the share of the aware and of the previous stage
    if group == "experience":
        return -2.0, 2.0
    if name in NONNEGATIVE or group in NONNEGATIVE or group == "funnel":
        return 0.0, math.inf
    return -math.inf, math.inf


def shown_as_percent(name: str) -> bool:
    """Whether the metric ``name`` is shown as a percentage (a difference in percentage
    points), in tables and figures alike: the shares (``metric_range`` [0, 1]) and the
    monthly churn, a rate per customer-month."""
    return name == "monthly_churn" or metric_range(name) == (0.0, 1.0)


def daily_table(result: SimulationResult) -> dict[str, np.ndarray]:
    """Per day d (the interval [d, d+1)): new entries and occupancy of every state,
    cart abandonments, active customers, orders, revenue and margin, tickets, channel spend.

    ``reached_<state>`` counts first entries (it reconciles with the customers table);
    ``in_<state>`` is how many customers are in the state at the end of the day;
    ``active_customers`` have bought and not churned by the end of the day. With an
    installed base the counts and amounts are the whole business's, and the base's own
    follow in ``active_customers_base``, ``orders_base``, ``revenue_base``, ``margin_base``.
    """
    n_days = result.spend_per_day.shape[0]
    days = np.arange(n_days)
    c, ev = result.customers, result.events
    out: dict[str, np.ndarray] = {"day": days}

    def per_day(times: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        t = times[~np.isnan(times)] if weights is None else times
        return np.bincount(np.minimum(t.astype(np.int64), n_days - 1), weights=weights,
                           minlength=n_days)[:n_days]

    out["aware"] = per_day(c["t_aware"])
    for s in result.states:
        out[f"reached_{s}"] = per_day(c[f"t_{s}"])
    # occupancy: each event enters a state and leaves the customer's previous one
    order = np.lexsort((np.arange(ev["customer"].size), ev["customer"]))
    cust, t, state = ev["customer"][order], ev["time"][order], ev["state"][order]
    same = np.zeros(cust.size, dtype=bool)  # event i continues the path of event i - 1
    same[1:] = cust[1:] == cust[:-1]
    previous = np.zeros_like(state)
    previous[1:] = state[:-1]
    day = np.minimum(t.astype(np.int64), n_days - 1)
    n_states = len(result.states)
    flow = np.zeros((n_days, n_states))
    np.add.at(flow, (day, state), 1.0)
    np.add.at(flow, (day[same], previous[same]), -1.0)
    occupancy = np.cumsum(flow, axis=0)
    for j, s in enumerate(result.states):
        out[f"in_{s}"] = occupancy[:, j]
    out["abandoned_carts"] = per_day(result.abandonments["time"])
    out["active_customers"] = np.cumsum(out["reached_purchase"] - out["reached_churned"])
    p = result.purchases
    out["orders"] = per_day(p["time"])
    out["revenue"] = per_day(p["time"], p["revenue"])
    out["margin"] = per_day(p["time"], p["margin"])
    if result.has_base:
        base = c["base"]
        churned = c["t_churned"][base]
        out["active_customers_base"] = base.sum() - np.cumsum(per_day(churned))
        mine = base[p["customer"]]
        out["orders_base"] = per_day(p["time"][mine])
        out["revenue_base"] = per_day(p["time"][mine], p["revenue"][mine])
        out["margin_base"] = per_day(p["time"][mine], p["margin"][mine])
    out["tickets"] = per_day(result.tickets["arrival"])
    for j in range(result.spend_per_day.shape[1]):
        out[f"spend_{result.channels[j]}"] = result.spend_per_day[:, j]
    out["spend_total"] = result.spend_per_day.sum(axis=1)
    return out


# ------------------------------------------------------------------ the finance view
FINANCE_CONVENTION = (
    "continuous discounting at ln(1 + annual_discount_rate) / 365 per day; LTV, cohort curves "
    "and payback are valued at each customer's first purchase (its margin undiscounted) and "
    "realised to the horizon (no terminal value); NPV discounts every cash flow of the run "
    "to day 0")


def acquisition_months(t_purchase: np.ndarray) -> np.ndarray:
    """Acquisition cohort of each customer: the month of the run in which the first purchase
    fell (month c = days [c M, (c + 1) M), M = 365.25 / 12); -1 for those who never bought."""
    t = np.asarray(t_purchase, dtype=float)
    month = np.floor(np.where(np.isnan(t), -1.0, t) / DAYS_PER_MONTH)
    return np.where(np.isnan(t), -1, month).astype(np.int64)


def cohort_grid(horizon_days: float) -> dict[str, np.ndarray]:
    """Every (cohort, whole months since acquisition) a censored cohort curve has a point at.

    Cohort c holds the customers whose first purchase fell in [c M, min((c + 1) M, H)), with
    M = 365.25 / 12 days and H the horizon. Its curve has a point at m months since
    acquisition (age m M days) only if every one of its customers could reach that age by
    the horizon: min((c + 1) M, H) + m M <= H. Month 0 is the first purchase itself; the
    cohort of the last, partial month has that point only.
    """
    n = int(np.ceil(horizon_days / DAYS_PER_MONTH - 1e-9))
    start = np.arange(n) * DAYS_PER_MONTH
    end = np.minimum(start + DAYS_PER_MONTH, horizon_days)
    # the tolerance keeps a horizon of whole months from losing a point to rounding
    months = np.floor((horizon_days - end) / DAYS_PER_MONTH + 1e-9).astype(np.int64)
    cohort = np.repeat(np.arange(n), months + 1)
    since = (np.concatenate([np.arange(k + 1) for k in months]) if n
             else np.zeros(0, dtype=np.int64))
    return {"acquisition_month": cohort, "cohort_start_day": start[cohort],
            "cohort_end_day": end[cohort], "months_since_acquisition": since,
            "age_days": since * DAYS_PER_MONTH}


def cumulative_values(result: SimulationResult, spec: ModelSpec,
                      ages_days: np.ndarray) -> dict[str, np.ndarray]:
    """Per buyer and age: discounted margin and LTV realised up to that age.

    Parameters
    ----------
    ages_days : increasing ages, in days since each customer's first purchase.

    Returns
    -------
    ``customer`` (the buyers' ids, one per row); ``discounted_margin`` (buyers x ages): the
    margin of the orders placed at ages <= a, discounted to the first purchase as in
    ``customer_values``; ``ltv_to_date``: that minus the discounted retention costs caused
    up to age a (thank-you messages per order, loyalty fee and messaging while active,
    referral rewards when the referred customer first buys). Nothing happens after the
    horizon, so past a customer's last observable age (horizon - first purchase) both stay
    at their final values: ``ltv_to_date`` is then the customer's LTV.
    """
    c, p = result.customers, result.purchases
    t0 = c["t_purchase"]
    buyers = np.flatnonzero(~np.isnan(t0))
    row = np.full(result.n_customers, -1, dtype=np.int64)
    row[buyers] = np.arange(buyers.size)
    ages = np.asarray(ages_days, dtype=float)
    delta = spec.discount_rate_per_day
    margin = np.zeros((buyers.size, ages.size + 1))
    costs = np.zeros_like(margin)

    def add(target: np.ndarray, customer: np.ndarray, age: np.ndarray,
            amount: np.ndarray) -> None:
        # a flow at age x counts from the first age >= x; the last column takes the flows
        # later than every age asked for
        np.add.at(target, (row[customer], np.searchsorted(ages, age, side="left")), amount)

    age = p["time"] - t0[p["customer"]]
    disc = np.exp(-delta * age)
    add(margin, p["customer"], age, p["margin"] * disc)
    add(costs, p["customer"], age, _thank_you_costs(result, spec) * disc)
    who, when, reward = _paid_referrals(result, spec)
    when = when - t0[who]
    add(costs, who, when, reward * np.exp(-delta * when))
    margin = np.cumsum(margin, axis=1)[:, :-1]
    costs = np.cumsum(costs, axis=1)[:, :-1]
    who, (a0, a1), rate = _spells_by_age(result, spec)
    if who.size:  # running costs while active
        run = (_annuity(1.0, delta, np.clip(ages[None, :], a0[:, None], a1[:, None]))
               - _annuity(1.0, delta, a0)[:, None])
        np.add.at(costs, row[who], run * rate[:, None])
    return {"customer": buyers, "discounted_margin": margin, "ltv_to_date": margin - costs}


def cohort_curves(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Censored value curves of the acquisition cohorts of one replication.

    One row per point of ``cohort_grid(horizon)`` (the same rows in every replication):
    the grid's columns, then ``customers`` (the cohort's size), ``active`` (its customers
    still active at that age), ``discounted_margin`` and ``ltv_to_date`` (summed over the
    cohort at that age, see ``cumulative_values``; divide by ``customers`` for per-customer
    values). Every customer of a cohort is observable at each point of its curve, so a
    point is never an average over a shrinking set of customers.
    """
    result = new_customers(result)
    grid = cohort_grid(result.horizon_days)
    cohort, since = grid["acquisition_month"], grid["months_since_acquisition"]
    n_cohorts = int(cohort.max()) + 1 if cohort.size else 0
    ages = np.arange(int(since.max()) + 1 if since.size else 0) * DAYS_PER_MONTH
    values = cumulative_values(result, spec, ages)
    c, buyers = result.customers, values["customer"]
    month = acquisition_months(c["t_purchase"][buyers])
    t_churned = c["t_churned"][buyers]
    lifetime = t_churned - c["t_purchase"][buyers]  # NaN: still active at the horizon
    alive = np.isnan(lifetime)[:, None] | (lifetime[:, None] > ages[None, :])

    def per_cohort(x: np.ndarray) -> np.ndarray:
        out = np.zeros((n_cohorts, ages.size))
        np.add.at(out, month, x)
        return out[cohort, since]

    return {**grid, "customers": np.bincount(month, minlength=n_cohorts)[cohort],
            "active": per_cohort(alive.astype(float)),
            "discounted_margin": per_cohort(values["discounted_margin"]),
            "ltv_to_date": per_cohort(values["ltv_to_date"])}


def new_customers(result: SimulationResult) -> SimulationResult:
    """The run without its installed base (the run itself when it has none)."""
    return result.part(~result.customers["base"]) if result.has_base else result


def _base_group(result: SimulationResult, spec: ModelSpec) -> dict[str, object]:
    """The ``ltv_groups`` row of the installed base."""
    c, base = result.customers, result.customers["base"]
    values = customer_values(result, spec)
    ltv = values["ltv"][base]
    nan = float("nan")
    return {"dimension": "base", "group": "base", "acquisition_month": -1,
            "customers": float(base.sum()), "ltv_sum": float(ltv.sum()),
            "ltv_mean": float(ltv.mean()),
            **{f"ltv_p{q}": float(np.percentile(ltv, q)) for q in (10, 50, 90)},
            "clv_sum": float(values["clv"][base].sum()),
            "clv_mean": float(values["clv"][base].mean()),
            "discounted_margin_sum": float(values["margin_pv"][base].sum()),
            "retention_costs_sum": float(values["costs_pv"][base].sum()),
            "margin_sum": float(c["margin"][base].sum()),
            "revenue_sum": float(c["revenue"][base].sum()),
            "spend": nan, "cac": nan, "ltv_to_cac": nan}


PNL_COLUMNS = ("revenue_new", "revenue_base", "gross_margin_new", "gross_margin_base",
               "discounts", "acquisition_spend", "retention_costs_new",
               "retention_costs_base", "support_costs", "intervention_costs", "profit")


def monthly_pnl(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """One replication's profit and loss by month of the run (month k: days [k, k + 1) x
    365.25 / 12, the last one cut at the horizon), undiscounted, new customers and the
    installed base apart (the base's columns 0 without one).

    Revenue and gross margin (after loyalty discounts) in the month of each order;
    ``discounts`` the loyalty discounts given; acquisition spend by the day it is spent;
    retention costs in the month they fall: thank-you messages with their order, loyalty
    fees and messaging for each day a customer is active, referral rewards when the
    referred customer first buys (charged to the referrer's side); the desk's staff and the
    intervention's own cost per day. ``profit`` = gross margin - every cost. Summed over
    the months, each column is the run's total (``revenue``, ``gross_margin``,
    ``costs.*``, ``profit`` of ``replication_metrics``).
    """
    c, p = result.customers, result.purchases
    h = spec.horizon_days
    n_months = max(int(np.ceil(h / DAYS_PER_MONTH - 1e-9)), 1)
    edges = np.minimum(np.arange(n_months + 1) * DAYS_PER_MONTH, h)
    base = c["base"] if "base" in c else np.zeros(c["id"].size, bool)

    def month(t: np.ndarray) -> np.ndarray:
        return np.minimum((t / DAYS_PER_MONTH).astype(np.int64), n_months - 1)

    def by_month(t: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.bincount(month(t), weights=w, minlength=n_months)

    mine = base[p["customer"]]
    out = {"month": np.arange(n_months), "start_day": edges[:-1], "end_day": edges[1:]}
    for part, sel in (("new", ~mine), ("base", mine)):
        out[f"revenue_{part}"] = by_month(p["time"][sel], p["revenue"][sel])
        out[f"gross_margin_{part}"] = by_month(p["time"][sel], p["margin"][sel])
    out["discounts"] = by_month(p["time"], p["discount"])
    daily = result.spend_per_day.sum(axis=1)
    out["acquisition_spend"] = by_month(np.arange(daily.size, dtype=float), daily)
    # running costs per active day, split over the months each active spell overlaps
    def overlap(start: np.ndarray, end: np.ndarray) -> np.ndarray:  # (spells, months) days
        return np.clip(np.minimum(end[:, None], edges[None, 1:])
                       - np.maximum(start[:, None], edges[None, :-1]), 0.0, None)

    spells = running_spells(result, spec)
    running = overlap(spells["start"], spells["end"]) * spells["rate"][:, None]
    thank_you = _thank_you_costs(result, spec)
    referrer, paid_at, reward = _paid_referrals(result, spec)
    for part, who in (("new", ~base), ("base", base)):
        orders = who[p["customer"]]
        rewarded = who[referrer]
        out[f"retention_costs_{part}"] = (
            running[who[spells["customer"]]].sum(axis=0)
            + by_month(p["time"][orders], thank_you[orders])
            + by_month(paid_at[rewarded], reward[rewarded]))
    for name, (start, end, rate) in fixed_costs(spec).items():
        out[f"{name}_costs"] = rate @ overlap(start, end)
    out["profit"] = (out["gross_margin_new"] + out["gross_margin_base"]
                     - out["acquisition_spend"] - out["retention_costs_new"]
                     - out["retention_costs_base"] - out["support_costs"]
                     - out["intervention_costs"])
    return out


def ltv_groups(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """LTV of one replication's buyers by acquisition cohort, segment and source channel.

    One row per group, in an order fixed by the spec (the same in every replication):
    ``dimension`` ``total`` (group ``all``), ``cohort`` (group ``"0"``, ``"1"``, ...: the
    acquisition month, see ``cohort_grid``), ``segment`` and ``channel`` (the awareness
    sources, including word of mouth and referrals); with an installed base, a last row
    ``base`` (group ``base``): today's customers, each valued from the start, acquisition
    cost sunk (spend, CAC and LTV:CAC NaN).

    Columns: ``dimension``, ``group``, ``acquisition_month`` (-1 off the cohort rows),
    ``customers`` (first purchases), ``ltv_sum``, ``ltv_mean``, ``ltv_p10``, ``ltv_p50``,
    ``ltv_p90`` (``customer_values``), ``clv_sum`` and ``clv_mean`` (value to date plus the
    residual value at the horizon), ``discounted_margin_sum`` and ``retention_costs_sum``
    (discounted to each first purchase; their difference is ``ltv_sum``), ``margin_sum`` and
    ``revenue_sum`` (undiscounted, every order of the group's customers), ``spend`` (channel
    spend including fixed costs: all of it for the total, a channel's own, for a cohort the
    days that start in its month; NaN for segments), ``cac`` = spend / customers (the CAC
    metrics for the total and the channels) and ``ltv_to_cac`` = ltv_mean / cac. Money in
    currency units; NaN where a group has no customer.
    """
    if result.has_base:  # the new customers' groups, then one row for the base
        groups = ltv_groups(new_customers(result), spec)
        return {k: np.append(v, _base_group(result, spec)[k]) for k, v in groups.items()}
    c = result.customers
    values = customer_values(result, spec)
    buyers = np.flatnonzero(~np.isnan(c["t_purchase"]))
    n_cohorts = int(np.ceil(result.horizon_days / DAYS_PER_MONTH - 1e-9))
    spend, _ = _acquisition(result)
    daily_spend = result.spend_per_day.sum(axis=1)
    day_month = np.minimum(np.floor(np.arange(daily_spend.size) / DAYS_PER_MONTH).astype(
        np.int64), max(n_cohorts - 1, 0))
    cohort_spend = np.bincount(day_month, weights=daily_spend, minlength=n_cohorts)
    dims = [  # dimension, labels, each buyer's group, spend per group
        ("total", ["all"], np.zeros(buyers.size, np.int64),
         np.array([result.spend_per_day.sum(axis=0).sum()])),
        ("cohort", [str(k) for k in range(n_cohorts)],
         acquisition_months(c["t_purchase"][buyers]), cohort_spend),
        ("segment", list(result.segments), c["segment"][buyers].astype(np.int64),
         np.full(len(result.segments), np.nan)),
        ("channel", list(result.channels), c["channel"][buyers].astype(np.int64), spend),
    ]
    per_buyer = {"ltv": values["ltv"][buyers], "clv": values["clv"][buyers],
                 "discounted_margin": values["margin_pv"][buyers],
                 "retention_costs": values["costs_pv"][buyers],
                 "margin": c["margin"][buyers], "revenue": c["revenue"][buyers]}
    cols: dict[str, list] = {k: [] for k in (
        "dimension", "group", "acquisition_month", "customers", "ltv_sum", "ltv_mean",
        "ltv_p10", "ltv_p50", "ltv_p90", "clv_sum", "clv_mean", "discounted_margin_sum",
        "retention_costs_sum",
        "margin_sum", "revenue_sum", "spend", "cac", "ltv_to_cac")}
    nan = float("nan")
    for dim, labels, group, group_spend in dims:
        n = np.bincount(group, minlength=len(labels))
        sums = {k: np.bincount(group, weights=v, minlength=len(labels)) for k, v in
                per_buyer.items()}
        for g, label in enumerate(labels):
            ltv = per_buyer["ltv"][group == g]
            mean = float(ltv.mean()) if ltv.size else nan
            cac = _ratio(group_spend[g], n[g]) if np.isfinite(group_spend[g]) else nan
            cols["dimension"].append(dim)
            cols["group"].append(label)
            cols["acquisition_month"].append(g if dim == "cohort" else -1)
            cols["customers"].append(float(n[g]))
            cols["ltv_sum"].append(float(sums["ltv"][g]))
            cols["ltv_mean"].append(mean)
            cols["clv_sum"].append(float(sums["clv"][g]))
            cols["clv_mean"].append(float(sums["clv"][g] / n[g]) if n[g] else nan)
            for q in (10, 50, 90):
                cols[f"ltv_p{q}"].append(float(np.percentile(ltv, q)) if ltv.size else nan)
            for k in ("discounted_margin", "retention_costs", "margin", "revenue"):
                cols[f"{k}_sum"].append(float(sums[k][g]))
            cols["spend"].append(float(group_spend[g]))
            cols["cac"].append(cac)
            cols["ltv_to_cac"].append(_ratio(mean, cac) if np.isfinite(cac) else nan)
    return {k: np.asarray(v) for k, v in cols.items()}

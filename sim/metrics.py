"""Measure one replication: headline metrics and the daily series, from the records.

Everything here is a pure function of a ``SimulationResult`` and its ``ModelSpec``; no
running averages are kept inside the engines (STYLE.md, "record events, then measure").
"""

from __future__ import annotations

import numpy as np

from sim.engine.records import SimulationResult
from sim.spec import ModelSpec

__all__ = ["customer_values", "daily_table", "kaplan_meier", "replication_metrics"]

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


def customer_values(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per customer (NaN for those who never bought): lifetime, costs caused and LTV.

    Conventions (README, "Economics"): money is discounted continuously at
    delta = ln(1 + annual rate) / 365 per day; a customer's LTV is valued at the first
    purchase, which itself counts undiscounted ("first margin now"). LTV = discounted margin
    of every order (after loyalty discounts) minus the discounted retention costs the
    customer caused: loyalty fee and messaging while active, thank-you messages, referral
    rewards for referred customers who bought. It is realised up to the horizon (censored).
    Acquisition spend and the service desk's staff are not allocated to customers.
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
    ret, loy = spec.retention, spec.loyalty
    ty_pv = np.bincount(p["customer"], weights=ret.thank_you_cost * disc, minlength=n)[:n]
    days = np.nan_to_num(active_days)
    fees = np.where(c["loyalty_member"], loy.cost_per_member_per_day, 0.0)
    running_pv = _annuity(1.0, delta, days) * (fees + ret.messaging_cost_per_day)
    running = days * (fees + ret.messaging_cost_per_day)
    # a referral reward is paid when the referred customer first buys
    ref = result.referrals
    paid = ~np.isnan(t0[ref["customer"]]) if ref["customer"].size else np.zeros(0, bool)
    reward = spec.advocacy.reward_per_referral
    r_age = t0[ref["customer"][paid]] - t0[ref["referrer"][paid]]
    reward_pv = np.bincount(ref["referrer"][paid], weights=reward * np.exp(-delta * r_age),
                            minlength=n)[:n]
    rewards = np.bincount(ref["referrer"][paid], minlength=n)[:n] * reward
    costs = ret.thank_you_cost * c["purchases"] + running + rewards
    costs_pv = ty_pv + running_pv + reward_pv
    return {"active_days": active_days, "costs": np.where(bought, costs, np.nan),
            "costs_pv": np.where(bought, costs_pv, np.nan),
            "ltv": np.where(bought, margin_pv - costs_pv, np.nan)}


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


def payback_days(result: SimulationResult, spec: ModelSpec, cac: float) -> float:
    """Days from acquisition until the average customer's discounted net value covers CAC.

    Net value at age a (days since the first purchase) is the discounted margin of the
    orders so far minus the retention costs so far, as in ``customer_values``. At each age
    the average is over the customers observable that long (acquired at least a days before
    the horizon). NaN if it never covers CAC within the horizon.
    """
    c, p, ref = result.customers, result.purchases, result.referrals
    t0 = c["t_purchase"]
    buyers = np.flatnonzero(~np.isnan(t0))
    if not buyers.size or not np.isfinite(cac):
        return float("nan")
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
    add(p["customer"], age, (p["margin"] - spec.retention.thank_you_cost) * np.exp(-delta * age))
    paid = ~np.isnan(t0[ref["customer"]]) if ref["customer"].size else np.zeros(0, bool)
    who, when = ref["referrer"][paid], t0[ref["customer"][paid]] - t0[ref["referrer"][paid]]
    add(who, when, -spec.advocacy.reward_per_referral * np.exp(-delta * when))
    total = np.cumsum(diff)[:n_ages]
    rate = (np.where(c["loyalty_member"], spec.loyalty.cost_per_member_per_day, 0.0)
            + spec.retention.messaging_cost_per_day)[buyers]
    if np.any(rate > 0):  # running costs while active, up to each observable age
        active = np.nan_to_num(customer_values(result, spec)["active_days"][buyers])
        seen = ages[None, :] <= observable_until[buyers][:, None]
        run_days = np.minimum(ages[None, :], active[:, None])
        total -= (seen * _annuity(1.0, delta, run_days) * rate[:, None]).sum(axis=0)
    observable = buyers.size - np.searchsorted(np.sort(observable_until[buyers]), ages)
    mean = np.where(observable > 0, total / np.maximum(observable, 1), np.nan)
    hit = np.flatnonzero(mean >= cac)
    return float(ages[hit[0]]) if hit.size else float("nan")


def replication_metrics(result: SimulationResult, spec: ModelSpec) -> dict[str, float]:
    """Headline metrics of one replication, flat ``group.name`` keys, plain floats.

    Conversion rates are shares of the customers who became aware. CAC is channel spend
    (including fixed costs) over the first purchases the channel brought; NaN when none.
    """
    c = result.customers
    n = result.n_customers
    out: dict[str, float] = {"aware": float(n)}
    prev = n
    for label, mask in reached_report_stages(result, spec).items():
        k = int(mask.sum())
        out[f"funnel.{label}.reached"] = float(k)
        out[f"funnel.{label}.rate"] = _ratio(k, n)
        out[f"funnel.{label}.step_rate"] = _ratio(k, prev)
        prev = k

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
    spend = result.spend_per_day.sum(axis=0)
    acq = np.bincount(c["channel"][bought], minlength=len(result.channels))
    for j, name in enumerate(result.channels):
        s = float(spend[j]) if j < len(spend) else 0.0
        out[f"acquisitions.{name}"] = float(acq[j])
        out[f"spend.{name}"] = s
        out[f"cac.{name}"] = _ratio(s, acq[j])
    acquisition = float(spend.sum())
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
    h = spec.horizon_days
    support = spec.support.agents * spec.support.cost_per_agent_per_day
    retention_costs = float(np.nansum(values["costs"]))
    fixed = (support + spec.scenario_cost_per_day) * h
    out |= {
        "revenue": float(p["revenue"].sum()),
        "gross_margin": float(p["margin"].sum()),
        "first_order_revenue": float(np.nansum(c["first_order_value"])),
        "discounts": float(p["discount"].sum()),
        "costs.acquisition": acquisition,
        "costs.retention": retention_costs,
        "costs.support": support * h,
        "costs.intervention": spec.scenario_cost_per_day * h,
        "profit": float(p["margin"].sum()) - acquisition - retention_costs - fixed,
        "roas": _ratio(p["revenue"].sum(), acquisition),
        "ltv.mean": float(ltv.mean()) if n_buy else float("nan"),
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
    npv -= float(_annuity(support + spec.scenario_cost_per_day, delta, np.array(h)))
    out["npv"] = npv

    # service desk
    tk = result.tickets
    served = tk["outcome"] < 2
    queue = np.where(served, tk["start"], tk["end"]) - tk["arrival"]
    minutes = queue * 1440
    out |= {
        "support.tickets": float(tk["outcome"].size),
        "support.wait_mean_minutes": float(minutes.mean()) if minutes.size else float("nan"),
        "support.wait_p90_minutes": (float(np.percentile(minutes, 90)) if minutes.size
                                     else float("nan")),
        "support.abandonment_rate": _ratio((tk["outcome"] == 2).sum(), tk["outcome"].size),
        "support.unresolved_rate": _ratio((tk["outcome"] == 1).sum(), served.sum()),
        "support.utilisation": float((tk["end"][served] - tk["start"][served]).sum()
                                     / (spec.support.agents * h)),
    }

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


def daily_table(result: SimulationResult) -> dict[str, np.ndarray]:
    """Per day d (the interval [d, d+1)): new entries and occupancy of every state,
    cart abandonments, active customers, orders, revenue and margin, tickets, channel spend.

    ``reached_<state>`` counts first entries (it reconciles with the customers table);
    ``in_<state>`` is how many customers are in the state at the end of the day;
    ``active_customers`` have bought and not churned by the end of the day.
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
    out["tickets"] = per_day(result.tickets["arrival"])
    for j in range(result.spend_per_day.shape[1]):
        out[f"spend_{result.channels[j]}"] = result.spend_per_day[:, j]
    out["spend_total"] = result.spend_per_day.sum(axis=1)
    return out

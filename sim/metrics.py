"""Measure one replication: headline metrics and the daily series, from the records.

Everything here is a pure function of a ``SimulationResult`` and its ``ModelSpec``; no
running averages are kept inside the engines (STYLE.md, "record events, then measure").
"""

from __future__ import annotations

import numpy as np

from sim.engine.records import SimulationResult
from sim.spec import ModelSpec

__all__ = ["daily_table", "replication_metrics"]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def reached_report_stages(result: SimulationResult, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per framework stage: which customers reached it (any of its engine states)."""
    times = result.state_times()
    return {label: ~np.all(np.isnan(times[:, list(codes)]), axis=1)
            for label, codes in spec.report}


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
        "lost": float((c["outcome"] >= 2).sum()),
        "in_journey": float((c["outcome"] == 0).sum()),
        "advocates": float((~np.isnan(c["t_advocacy"])).sum()),
    }
    wait = c["t_purchase"][bought] - c["t_aware"][bought]
    out["time_to_purchase.mean_days"] = float(wait.mean()) if n_buy else float("nan")
    out["time_to_purchase.median_days"] = float(np.median(wait)) if n_buy else float("nan")
    out["revenue"] = float(np.nansum(c["first_order_value"]))
    out["gross_margin"] = float(np.nansum(c["first_margin"]))

    spend = result.spend_per_day.sum(axis=0)
    acq = np.bincount(c["channel"][bought], minlength=len(result.channels))
    for j, name in enumerate(result.channels):
        s = float(spend[j]) if j < len(spend) else 0.0
        out[f"acquisitions.{name}"] = float(acq[j])
        out[f"spend.{name}"] = s
        out[f"cac.{name}"] = _ratio(s, acq[j])
    out["spend.total"] = float(spend.sum())
    out["cac"] = _ratio(spend.sum(), n_buy)
    out["roas"] = _ratio(out["revenue"], spend.sum())
    return out


def daily_table(result: SimulationResult) -> dict[str, np.ndarray]:
    """Per day d (the interval [d, d+1)): new entries and occupancy of every state,
    cart abandonments, spend by channel, revenue and margin of first purchases.

    ``reached_<state>`` counts first entries (it reconciles with the customers table);
    ``in_<state>`` is how many customers are in the state at the end of the day.
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
    for j, name in enumerate(result.channels[:-1]):
        out[f"spend_{name}"] = result.spend_per_day[:, j]
    out["spend_total"] = result.spend_per_day.sum(axis=1)
    bought = ~np.isnan(c["t_purchase"])
    out["revenue"] = per_day(c["t_purchase"][bought], c["first_order_value"][bought])
    out["margin"] = per_day(c["t_purchase"][bought], c["first_margin"][bought])
    return out

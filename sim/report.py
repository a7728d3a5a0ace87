"""Readable text: the console summary of a run."""

from __future__ import annotations

import math

from sim.analysis import Estimate
from sim.spec import ModelSpec

__all__ = ["format_summary"]


def _num(x: float, pct: bool = False) -> str:
    if x is None or math.isnan(x):
        return "-"
    if pct:
        return f"{x:.1%}"
    return f"{x:,.0f}" if abs(x) >= 100 else (f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}")


def _ci(e: Estimate, pct: bool = False) -> str:
    if math.isnan(e.half_width):
        return _num(e.mean, pct)
    return f"{_num(e.mean, pct)} [{_num(e.low, pct)}, {_num(e.high, pct)}]"


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)

    def fmt(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    return ["", title, fmt(header), line, *(fmt(r) for r in rows)]


def format_summary(summary: dict[str, Estimate], spec: ModelSpec, n_replications: int) -> str:
    """The console summary: funnel, checkout, channels, time to purchase (95% CIs)."""
    out = [
        f"journey-sim: scenario '{spec.scenario_name}', journey '{spec.journey_name}', "
        f"engine {spec.engine}, {n_replications} replications x {spec.horizon_days:g} days, "
        f"market {spec.market_size:,}, seed {spec.seed}",
        "mean per replication [95% confidence interval across replications]",
    ]
    rows = []
    for label, _ in spec.report:
        rows.append([label, _ci(summary[f"funnel.{label}.reached"]),
                     _ci(summary[f"funnel.{label}.rate"], pct=True),
                     _ci(summary[f"funnel.{label}.step_rate"], pct=True)])
    out += _table("Funnel", ["stage", "customers", "of aware", "of previous stage"], rows)
    out += _table("Checkout", ["", "value"], [
        ["entries", _ci(summary["checkout.entries"])],
        ["cart abandonment", _ci(summary["checkout.abandonment_rate"], pct=True)],
        ["recovered by reminder", _ci(summary["checkout.recovered"])],
        ["first purchases", _ci(summary["purchases"])],
        ["conversion (of aware)", _ci(summary["conversion_rate"], pct=True)],
    ])
    rows = [[ch, _ci(summary[f"acquisitions.{ch}"]), _num(summary[f"spend.{ch}"].mean),
             _ci(summary[f"cac.{ch}"])] for ch in spec.channel_names]
    rows.append(["total", _ci(summary["purchases"]), _num(summary["spend.total"].mean),
                 _ci(summary["cac"])])
    out += _table("Acquisition by channel", ["channel", "first purchases", "spend", "CAC"], rows)
    out += _table("Time from awareness to first purchase (days)", ["", "value"], [
        ["mean", _ci(summary["time_to_purchase.mean_days"])],
        ["median", _ci(summary["time_to_purchase.median_days"])],
    ])
    out += _table(f"Life as a customer (retention model: {spec.retention.model})", ["", "value"], [
        ["repeat purchase rate", _ci(summary["repeat_purchase_rate"], pct=True)],
        ["purchases per customer", _ci(summary["purchases_per_customer"])],
        ["monthly churn", _ci(summary["monthly_churn"], pct=True)],
        *[[f"retention at {k}", _ci(summary[f"retention.{k}"], pct=True)]
          for k in ("3m", "6m", "12m")],
        ["loyalty members", _ci(summary["loyalty_members"])],
    ])
    out += _table("Value (discounted; LTV from the first purchase to the horizon)",
                  ["", "value"], [
        ["LTV mean", _ci(summary["ltv.mean"])],
        *[[f"LTV P{q}", _ci(summary[f"ltv.p{q}"])] for q in (10, 50, 90)],
        ["CAC", _ci(summary["cac"])],
        ["LTV : CAC", _ci(summary["ltv_to_cac"])],
        ["payback (days)", _ci(summary["payback_days"])],
        ["revenue", _ci(summary["revenue"])],
        ["gross margin", _ci(summary["gross_margin"])],
        ["NPV of the run", _ci(summary["npv"])],
    ])
    out += _table("Service desk", ["", "value"], [
        ["tickets", _ci(summary["support.tickets"])],
        ["wait, mean (minutes)", _ci(summary["support.wait_mean_minutes"])],
        ["wait, P90 (minutes)", _ci(summary["support.wait_p90_minutes"])],
        ["tickets abandoned", _ci(summary["support.abandonment_rate"], pct=True)],
        ["agent utilisation", _ci(summary["support.utilisation"], pct=True)],
    ])
    out += _table("Advocacy", ["", "value"], [
        ["advocates (ever)", _ci(summary["advocates"])],
        ["advocates active at the end", _ci(summary["advocates_active"])],
        ["referrals", _ci(summary["referrals"])],
        ["first purchases from referrals", _ci(summary["referral_share"], pct=True)],
    ])
    states = [s for s in spec.states if s != "lost"]
    out += _table("Experience score on entering each state (-2 .. +2)", ["state", "score"],
                  [[s, _ci(summary[f"experience.{s}"])] for s in states])
    return "\n".join(out)

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
    return "\n".join(out)

"""Readable text: the console summary of a run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sim.measure.stats import Estimate
from sim.model.spec import ModelSpec

__all__ = ["format_comparison", "format_summary", "write_comparison"]


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
    """The console summary: funnel, checkout, channels, time to purchase (95% CIs).

    A run with little to show says so once, under the title (``analysis.run_notes``): one
    replication (point values; an interval needs two), nobody aware in any replication and
    why that may be, nobody buying. A value that does not exist (CAC without a purchase)
    is "-".
    """
    from sim.measure.stats import run_notes

    plural = "replication" if n_replications == 1 else "replications"
    out = [
        f"journey-sim: scenario '{spec.scenario_name}', journey '{spec.journey_name}', "
        f"engine {spec.engine}, {n_replications} {plural} x {spec.horizon_days:g} "
        f"day{'' if spec.horizon_days == 1 else 's'}, "
        f"market {spec.market_size:,}, seed {spec.seed}",
    ]
    if n_replications > 1:
        out.append("mean per replication [95% confidence interval across replications]")
    out += run_notes(summary, spec, n_replications)
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


# ------------------------------------------------------------------ comparisons
def _fmt(x: float, metric: str) -> str:
    pct = metric in ("conversion_rate", "monthly_churn")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if pct:
        return f"{x * 100:+.2f} pp"
    return f"{x:+,.0f}" if abs(x) >= 100 else f"{x:+.2f}"


def format_comparison(table: pd.DataFrame, rank_by: str, replications: int) -> str:
    """The comparison as a Markdown table, one row per scenario, best first. With one
    replication the differences are point values, and the text says that an interval
    needs at least two replications."""
    def _with_interval(mean: float, low: float, high: float, text) -> str:
        if any(x is None or math.isnan(x) for x in (low, high)):
            return text(mean)  # no interval: the value alone
        return f"{text(mean)} [{text(low)}, {text(high)}]"

    metrics = list(dict.fromkeys(table["metric"]))
    ci = " [95% CI]" if replications > 1 else ""
    header = ["rank", "scenario", *[f"Δ {m}{ci}" for m in metrics],
              f"better in (of {replications})", "extra cost", f"ROI{ci}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, rows in table.groupby("scenario", sort=False):
        by = rows.set_index("metric")
        cells = [str(int(by["rank"].iloc[0])), name]
        for m in metrics:
            r = by.loc[m]
            cells.append(_with_interval(r["difference"], r["difference_low"],
                                        r["difference_high"], lambda x, m=m: _fmt(x, m)))
        r = by.loc[rank_by]
        cells.append("-" if math.isnan(r["share_better"]) else f"{r['share_better']:.0%}")
        cells.append(f"{r['extra_cost']:,.0f}")
        cells.append("-" if math.isnan(r["roi"]) else
                     _with_interval(r["roi"], r["roi_low"], r["roi_high"], lambda x: f"{x:.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    paired = (f"paired replication by replication ({replications} replications, common "
              "random numbers) with a 95% t interval" if replications > 1 else
              "that of the single replication (common random numbers): no interval, which "
              "needs at least two replications")
    intro = (f"Scenarios against the baseline, ranked by the difference in {rank_by}. Each "
             f"difference is {paired}; pp = percentage points. "
             "ROI = extra NPV / extra cost (every cost, undiscounted), per replication; "
             "'-' where the scenario costs nothing extra. 'better in' counts replications "
             f"where the scenario did better on {rank_by}.")
    return intro + "\n\n" + "\n".join(lines) + "\n"


def write_comparison(table: pd.DataFrame, per_replication: dict[str, list[dict]],
                     descriptions: dict[str, str], rank_by: str, out_dir: Path,
                     plots: bool = True, finance: pd.DataFrame | None = None,
                     ltv: pd.DataFrame | None = None) -> list[Path]:
    """comparison.csv, comparison.md, metrics.json (with the CRN variance ratios),
    finance.csv (one row per scenario: unit economics with CIs and the paired LTV and NPV
    differences from the baseline), ltv.csv when ``ltv`` is given (``Comparison.ltv()``:
    LTV by cohort, segment and channel per scenario, with paired differences) and
    comparison.png (forest plots) into ``out_dir``.

    ``finance`` is that table when the caller has it (``Comparison.finance()``, or
    ``finance_table`` with each job's ``metrics.json`` as ``python -m sim.report`` does);
    otherwise it is built from ``per_replication``, without the horizon and discount
    rate (left empty).
    """
    from sim import io
    from sim.measure.finance import finance_table
    from sim.present import figures

    out_dir = Path(out_dir)
    n = len(per_replication["baseline"])
    crn = {name: dict(zip(rows["metric"], rows["crn_variance_ratio"], strict=True))
           for name, rows in table.groupby("scenario", sort=False)}
    doc = {
        "rank_by": rank_by,
        "replications": n,
        "scenarios": descriptions,
        "comparison": table.to_dict(orient="records"),
        "crn_variance_ratio": crn,
        "per_replication": per_replication,
    }
    io.begin_outputs(out_dir)
    written = [io.write_table(table, out_dir / "comparison.csv"),
               io.write_text(format_comparison(table, rank_by, n), out_dir / "comparison.md")]
    if finance is None:
        finance = finance_table(per_replication)
    written.append(io.write_table(finance, out_dir / "finance.csv", io.FINANCE_FLOAT_FORMAT))
    if ltv is not None:
        written.append(io.write_table(ltv, out_dir / "ltv.csv", io.FINANCE_FLOAT_FORMAT))
    if plots:
        metrics = list(dict.fromkeys([rank_by, "ltv.mean", "conversion_rate"]))
        fig = figures.forest_figure(
            table, metrics, f"Scenarios vs baseline, {n} replication{'' if n == 1 else 's'}")
        try:
            written.append(io.save_figure(fig, out_dir / "comparison.png"))
        finally:
            figures.close(fig)
    return [*written, io.finish_outputs(doc, out_dir)]  # last: the folder is finished



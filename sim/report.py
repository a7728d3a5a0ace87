"""Readable text: the console summary of a run."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis import Estimate
from sim.spec import ModelSpec

__all__ = ["collect_blocks", "collect_multirun", "format_comparison", "format_merged",
           "format_summary", "main", "merged_document", "write_comparison", "write_merged"]


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


# ------------------------------------------------------------------ comparisons
def _fmt(x: float, metric: str) -> str:
    pct = metric in ("conversion_rate", "monthly_churn")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if pct:
        return f"{x * 100:+.2f} pp"
    return f"{x:+,.0f}" if abs(x) >= 100 else f"{x:+.2f}"


def format_comparison(table: pd.DataFrame, rank_by: str, replications: int) -> str:
    """The comparison as a Markdown table, one row per scenario, best first."""
    metrics = list(dict.fromkeys(table["metric"]))
    header = ["rank", "scenario", *[f"Δ {m} [95% CI]" for m in metrics],
              f"better in (of {replications})", "extra cost", "ROI [95% CI]"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, rows in table.groupby("scenario", sort=False):
        by = rows.set_index("metric")
        cells = [str(int(by["rank"].iloc[0])), name]
        for m in metrics:
            r = by.loc[m]
            cells.append(f"{_fmt(r['difference'], m)} [{_fmt(r['difference_low'], m)}, "
                         f"{_fmt(r['difference_high'], m)}]")
        r = by.loc[rank_by]
        cells.append(f"{r['share_better']:.0%}")
        cells.append(f"{r['extra_cost']:,.0f}")
        cells.append("-" if math.isnan(r["roi"]) else
                     f"{r['roi']:.2f} [{r['roi_low']:.2f}, {r['roi_high']:.2f}]")
        lines.append("| " + " | ".join(cells) + " |")
    intro = (f"Scenarios against the baseline, ranked by the difference in {rank_by}. Each "
             f"difference is paired replication by replication ({replications} replications, "
             "common random numbers) with a 95% t interval; pp = percentage points. "
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
    from sim import io, plotting
    from sim.analysis import finance_table

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
    written = [io.write_table(table, out_dir / "comparison.csv"),
               io.write_text(format_comparison(table, rank_by, n), out_dir / "comparison.md"),
               io.write_json(doc, out_dir / "metrics.json")]
    if finance is None:
        finance = finance_table(per_replication)
    written.append(io.write_table(finance, out_dir / "finance.csv", io.FINANCE_FLOAT_FORMAT))
    if ltv is not None:
        written.append(io.write_table(ltv, out_dir / "ltv.csv", io.FINANCE_FLOAT_FORMAT))
    if plots:
        metrics = list(dict.fromkeys([rank_by, "ltv.mean", "conversion_rate"]))
        fig = plotting.forest_figure(table, metrics, f"Scenarios vs baseline, {n} replications")
        written.append(io.save_figure(fig, out_dir / "comparison.png"))
        plotting.close(fig)
    return written


def collect_blocks(folder: Path) -> dict[str, dict[str, Any]]:
    """Every job's ``metrics.json`` under ``folder``, merged by scenario.

    Jobs of one scenario are replication blocks (``run.first_replication``,
    ``run.replications``) of one experiment: they must share the model (its fingerprint)
    and the seed and must not repeat a replication. Their per-replication metrics are put
    in replication order, so the merge equals running every replication in one job.
    Returns, per scenario: ``doc`` (the first block's document), ``ids`` (replications,
    sorted), ``per_replication`` (in that order), ``description``.
    """
    blocks: dict[str, list[tuple[Path, dict]]] = {}
    for path in sorted(Path(folder).glob("**/metrics.json")):
        doc = json.loads(path.read_text())
        if "per_replication" not in doc or "scenario" not in doc:
            continue  # e.g. an earlier comparison's own metrics.json
        if Path(path).parent == Path(folder):
            continue  # an earlier merge written here
        blocks.setdefault(doc["scenario"]["name"], []).append((path, doc))
    if not blocks:
        raise ValueError(f"no job's metrics.json under {folder}")
    merged = {}
    for name, jobs in blocks.items():
        ids: dict[int, dict] = {}
        first_path, first = jobs[0]
        for path, doc in jobs:
            if (doc.get("fingerprint"), doc["seed"]) != (first.get("fingerprint"), first["seed"]):
                raise ValueError(f"{path} and {first_path}: scenario {name!r} with a different "
                                 "model or seed; blocks of one experiment must differ only in "
                                 "run.first_replication and run.replications")
            rep_ids = doc.get("replication_ids", list(range(len(doc["per_replication"]))))
            for i, m in zip(rep_ids, doc["per_replication"], strict=True):
                if i in ids:
                    raise ValueError(f"{path}: replication {i} of scenario {name!r} appears in "
                                     "two jobs")
                ids[i] = {k: (math.nan if v is None else v) for k, v in m.items()}
        order = sorted(ids)
        merged[name] = {"doc": first, "ids": order, "per_replication": [ids[i] for i in order],
                        "description": first["scenario"].get("description", "")}
    return merged


def collect_multirun(folder: Path) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Per-replication metrics of every scenario of a Hydra multirun (blocks merged)."""
    merged = collect_blocks(folder)
    if "baseline" not in merged:
        raise ValueError(f"no job of scenario 'baseline' under {folder}: run the sweep with "
                         "scenario=baseline,...")
    base = merged["baseline"]
    for name, m in merged.items():
        if m["doc"]["seed"] != base["doc"]["seed"] or m["ids"] != base["ids"]:
            raise ValueError(f"scenario {name!r} and the baseline differ in seed or replications "
                             f"under {folder}: a paired comparison needs the same")
    return ({name: m["per_replication"] for name, m in merged.items()},
            {name: m["description"] for name, m in merged.items()})


def merged_document(block: dict[str, Any]) -> dict[str, Any]:
    """One scenario's merged blocks as the ``metrics.json`` a single job would write."""
    from sim.analysis import estimate
    from sim.metrics import metric_range

    per_rep = block["per_replication"]
    doc = dict(block["doc"])
    doc.update(replications=len(per_rep), first_replication=block["ids"][0],
               replication_ids=block["ids"], per_replication=per_rep,
               metrics={k: estimate(np.array([m[k] for m in per_rep], dtype=float), 0.95,
                                    metric_range(k)).as_dict() for k in per_rep[0]})
    return doc


def write_merged(block: dict[str, Any], folder: Path) -> tuple[dict[str, Any], list[Path]]:
    """One scenario's merged blocks: ``metrics.json`` and ``metrics.csv`` into ``folder``."""
    from sim import io

    doc = merged_document(block)
    rows = [{"metric": k, **v} for k, v in doc["metrics"].items()]
    return doc, [io.write_json(doc, folder / "metrics.json"),
                 io.write_table(pd.DataFrame(rows), folder / "metrics.csv")]


def format_merged(doc: dict[str, Any]) -> str:
    ids = doc["replication_ids"]
    out = [f"scenario {doc['scenario']['name']!r}: replications {ids[0]}..{ids[-1]} "
           f"({len(ids)}) merged from blocks"]
    for name in ("conversion_rate", "ltv.mean", "cac", "npv"):
        if name in doc["metrics"]:
            m = doc["metrics"][name]
            out.append(f"  {name}: {m['mean']:.6g} [{m['low']:.6g}, {m['high']:.6g}]")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.report MULTIRUN_DIR [--rank-by METRIC]``: compare the scenarios of a
    Hydra multirun (``python -m sim -m scenario=baseline,a,b``) from their job directories."""
    import argparse

    from sim.analysis import compare, finance_table

    parser = argparse.ArgumentParser(prog="python -m sim.report", description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rank-by", default="npv")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    try:
        blocks = collect_blocks(args.folder)
        if len(blocks) == 1:  # one scenario in blocks: its merged metrics
            doc, written = write_merged(next(iter(blocks.values())), args.folder)
            print(format_merged(doc))
            print(f"wrote {', '.join(p.name for p in written)} to {args.folder}")
            return 0
        runs, descriptions = collect_multirun(args.folder)
        base = runs.pop("baseline")
        table = compare(base, runs, rank_by=args.rank_by)
    except (ValueError, KeyError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    per_replication = {"baseline": base, **runs}
    # each job's metrics.json holds its horizon and discount rate
    finance = finance_table(per_replication, {k: blocks[k]["doc"] for k in per_replication})
    written = write_comparison(table, per_replication, descriptions, args.rank_by,
                               args.folder, plots=not args.no_plots, finance=finance)
    print(format_comparison(table, args.rank_by, len(base)))
    print(f"wrote {', '.join(p.name for p in written)} to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


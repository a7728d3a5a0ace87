"""How much, and which setting: the files, figures and Markdown of response curves, budget
allocations, goal seeks and sets of interventions (``sim.decide.optimise``,
``sim.decide.portfolio``).

Each analysis writes its tables (tidy CSV, one header row), a Markdown summary a strategist
can paste, its figure, a JSON file of its settings and provenance (the folder is finished
when it exists) and after it ``report.html`` (``sim.present.html``). Every run of a search
is a row of its runs table with the overrides that reproduce it as an ordinary run
(``python -m sim <overrides>``); no run writes files of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sim.measure.metrics import metric_range
from sim.measure.stats import HEADLINE

COVERS = ("The intervals (95 %) cover the simulation noise, given the assumptions; a PSA "
          "(psa.draws=N) covers the assumptions' uncertainty too.")


def _num(x: float, metric: str = "", sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if metric and metric_range(metric) == (0.0, 1.0):
        return f"{x:+.2%}" if sign else f"{x:.2%}"
    if abs(x) >= 100:
        return f"{x:+,.0f}" if sign else f"{x:,.0f}"
    return f"{x:+.4g}" if sign else f"{x:.4g}"


def _span(low: float, high: float, metric: str = "", sign: bool = False) -> str:
    return f"[{_num(low, metric, sign)}, {_num(high, metric, sign)}]"


def with_overrides(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``runs`` (a long study table whose ``keys`` columns hold each run's settings) with an
    ``overrides`` column: the command-line overrides that rerun it as an ordinary run."""
    def shown(v: float) -> str:  # as Hydra reads it back: 40 for 40.0, every digit kept
        return repr(int(v)) if float(v).is_integer() else repr(float(v))

    def line(row: pd.Series) -> str:
        parts = [f"{k}={shown(row[k])}" for k in keys
                 if isinstance(row[k], int | float) and not math.isnan(row[k])]
        parts.append(f"run.first_replication={int(row['replication'])}")
        return " ".join([*parts, "run.replications=1"])

    out = runs.copy()
    out["overrides"] = out.apply(line, axis=1) if len(out) else []
    return out


def _write(out_dir: Path, tables: Mapping[str, pd.DataFrame], markdown: tuple[str, str],
           figures_: dict, doc: dict[str, Any], name: str) -> list[Path]:
    from sim import io
    from sim.present import figures
    from sim.present.html import write_report

    out_dir = Path(out_dir)
    io.begin_outputs(out_dir, mark=name)
    written = [io.write_table(t, out_dir / f) for f, t in tables.items()]
    written.append(io.write_text(markdown[1].rstrip("\n") + "\n", out_dir / markdown[0]))
    for fname, fig in figures_.items():
        try:
            written.append(io.save_figure(fig, out_dir / f"{fname}.png"))
        finally:
            figures.close(fig)
    doc = {"covers": COVERS, **doc, "files": [p.name for p in written]}
    written.append(io.write_json(io.json_ready(doc), out_dir / name))
    return [*written, write_report(out_dir)]  # after the mark: the page that shows it


# ----------------------------------------------------------------------- response curves
def curves_markdown(result) -> str:
    """The response curves in words: where each key's marginal return crosses the
    threshold, the objective at each end, the runs."""
    st, obj = result.settings, result.settings["objective"]
    out = ["# Response curves", "",
           f"{len(result.keys)} key(s), each swept alone with the others at their config "
           f"values; {st['replications']} replications at every value, on the same streams "
           f"at every value (common random numbers), {st['runs']} runs, seed {st['seed']}. "
           + COVERS, ""]
    table = result.table
    for _, c in result.crossings.iterrows():
        key = c["key"]
        rows = table[(table["key"] == key) & (table["metric"] == obj)]
        best = rows.loc[rows["mean"].idxmax()]
        m = result.marginal[result.marginal["key"] == key]
        unit = m["unit"].iloc[0] if len(m) else ""
        where = (f"crosses {c['threshold']:g} at about **{c['value']:.4g}** ({c['note']})"
                 if not math.isnan(c["value"]) else c["note"])
        out.append(f"- **{key}**: the highest mean {obj} of the values tried is "
                   f"{_num(best['mean'], obj)} {_span(best['low'], best['high'], obj)} at "
                   f"{best['value']:g}; the marginal return, in {unit}, {where}.")
    out += ["", f"| key | value | {obj} | 95% CI | marginal return to the next value | "
            "95% CI |", "|---|---|---|---|---|---|"]
    for key in result.keys:
        rows = table[(table["key"] == key) & (table["metric"] == obj)].reset_index(drop=True)
        m = result.marginal[result.marginal["key"] == key].reset_index(drop=True)
        for i, r in rows.iterrows():
            mr = (f"{_num(m['marginal'][i], sign=True)} | "
                  f"{_span(m['low'][i], m['high'][i], sign=True)}" if i < len(m) else "- | -")
            out.append(f"| {key} | {r['value']:g} | {_num(r['mean'], obj)} | "
                       f"{_span(r['low'], r['high'], obj)} | {mr} |")
    out += ["", "Every headline metric at every value: curves.csv; the runs, with the "
            "overrides that rerun each as an ordinary run: curve_runs.csv."]
    return "\n".join(out)


def curve_figures(result) -> dict:
    """response_curves (the objective and its marginal return against each key) and
    response_metrics (the headline metrics); spend keys share one set of axes."""
    from sim.present import figures

    plt = figures.plt
    st, obj = result.settings, result.settings["objective"]
    spend = [k for k in result.keys if k.startswith("channels.") and k.endswith(".spend_per_day")]
    groups = [spend] if spend and len(spend) == len(result.keys) else [[k] for k in result.keys]
    table, marginal, cross = result.table, result.marginal, result.crossings.set_index("key")
    label = {k: (k.split(".")[1] if len(groups[0]) > 1 else k) for k in result.keys}
    figs = {}
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 4.2 * len(groups)), squeeze=False)
    for (left, right), keys in zip(axes, groups, strict=True):
        curves, marks, marg, crossings = {}, {}, {}, {}
        for k in keys:
            rows = table[(table["key"] == k) & (table["metric"] == obj)]
            curves[label[k]] = tuple(rows[c].to_numpy(dtype=float)
                                     for c in ("value", "mean", "low", "high"))
            if k in st.get("config_values", {}):
                marks[label[k]] = st["config_values"][k]
            m = marginal[marginal["key"] == k]
            marg[label[k]] = tuple(m[c].to_numpy(dtype=float)
                                   for c in ("at", "marginal", "low", "high"))
            crossings[label[k]] = float(cross.loc[k, "value"])
        xlabel = "spend per day" if len(keys) > 1 else keys[0]
        figures.plot_response(curves, obj, xlabel, marks, ax=left)
        unit = marginal[marginal["key"] == keys[0]]["unit"].iloc[0]
        ylabel = ("marginal ROI (per unit of\ndiscounted spend)" if "marginal ROI" in unit
                  else f"{obj} per unit")
        figures.plot_marginal(marg, st["threshold"], ylabel, xlabel, crossings, ax=right)
        left.set_title(f"{obj} against {xlabel}", fontsize=10, loc="left")
        right.set_title("marginal return between neighbouring values", fontsize=10, loc="left")
    fig.suptitle(f"Response curves: {st['replications']} replications per value on common "
                 "random numbers; bands and bars: 95% intervals (simulation noise). A band "
                 "covers each level; the marginal returns (right)\nare paired differences "
                 "between neighbouring values, so they are much surer than the bands suggest",
                 x=0.01, ha="left", fontsize=9)
    fig.tight_layout()
    figs["response_curves"] = fig
    metrics = [m for m in HEADLINE if m in set(table["metric"])]
    fig, axes = figures.panels(len(metrics) * len(groups), ncols=3)
    i = 0
    for keys in groups:
        xlabel = "spend per day" if len(keys) > 1 else keys[0]
        for metric in metrics:
            curves = {label[k]: tuple(table[(table["key"] == k) & (table["metric"] == metric)]
                                      [c].to_numpy(dtype=float)
                                      for c in ("value", "mean", "low", "high")) for k in keys}
            figures.plot_response(curves, metric, xlabel, ax=axes[i])
            axes[i].set_title(metric, fontsize=10)
            i += 1
    fig.tight_layout()
    figs["response_metrics"] = fig
    return figs


def write_curves(result, out_dir: Path, plots: bool = True) -> list[Path]:
    """curves.csv (key, value, metric, mean, low, high), marginal.csv, crossings.csv,
    curve_runs.csv (every run, with the overrides that rerun it), curves.md, the figures
    (response_curves.png, response_metrics.png) and, last, curves.json."""
    runs = with_overrides(result.runs, result.keys)
    tables = {"curves.csv": result.table, "marginal.csv": result.marginal,
              "crossings.csv": result.crossings, "curve_runs.csv": runs}
    return _write(out_dir, tables, ("curves.md", curves_markdown(result)),
                  curve_figures(result) if plots else {}, result.settings, "curves.json")


# --------------------------------------------------------------------- budget allocation
def allocation_markdown(result) -> str:
    """The allocation in words: the spend per channel, the gain with its interval and how
    often it was better, each channel's marginal ROI, the runs it took."""
    st, obj, t = result.settings, result.objective, result.table
    n = result.verify_replications
    spend = ", ".join(f"{r['proposed']:,.1f}/day on {r['channel']}" for _, r in t.iterrows())
    today = ", ".join(f"{r['current']:,.1f} on {r['channel']}" for _, r in t.iterrows())
    sure = result.gain_low > 0
    verdict = ("**Recommendation: move to the proposed allocation.**" if sure else
               "**Recommendation: keep today's allocation** (the proposal is not surely "
               "better on replications the search did not see).")
    out = ["# Budget allocation", "", verdict, "",
           f"Spend {spend}: {obj} {_num(result.gain, obj, True)} "
           f"{_span(result.gain_low, result.gain_high, obj, True)} against today's allocation "
           f"({today}), better in {result.better} of {n} replications (paired, fresh "
           "replications the search did not use).",
           "",
           f"Budget {st['budget']:,.2f} per day "
           f"({'spent in full' if st['budget_mode'] == 'fixed' else 'at most'}); "
           f"{st['runs']} simulation runs ({st['rounds']} round(s) of {st['design_points']} "
           f"designed allocations x {st['replications']} replications, then {n} x 2 to "
           f"verify); seed {st['seed']}. Method: {st['method']}. " + COVERS, "",
           "| channel | today | proposed | change | allowed | marginal ROI | 95% CI |",
           "|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        bound = f" (at its {r['at_bound']})" if r["at_bound"] else ""
        out.append(f"| {r['channel']} | {r['current']:,.1f} | {r['proposed']:,.1f}{bound} | "
                   f"{r['change']:+,.1f} | {r['lowest']:g} to {r['highest']:g} | "
                   f"{r['marginal_roi']:+.3f} | [{r['marginal_roi_low']:+.3f}, "
                   f"{r['marginal_roi_high']:+.3f}] |")
    interior = t[t["at_bound"] == ""]
    out += ["", "Marginal ROI: the extra objective per extra currency unit of spend over the "
            "horizon, discounted as NPV is (net of the spend itself for npv and npv_clv), "
            "from the last response surface's gradient. Where the optimum is interior the "
            "channels' marginal ROIs are equal (one extra unit is worth the same "
            f"anywhere); {len(interior)} of {len(t)} channels are interior here"
            + (f", {', '.join(t.loc[t['at_bound'] != '', 'channel'])} at a bound."
               if len(interior) < len(t) else ".")]
    if st["minimum"]:
        v = result.verification.set_index("metric")
        out += ["", "Floors: " + "; ".join(
            f"{m} at least {floor:g}: {_num(v.loc[m, 'proposed'], m)} with the proposal"
            for m, floor in st["minimum"].items())]
    return "\n".join(out)


def allocation_figures(result) -> dict:
    from sim.present import figures

    fig, axes = figures.plt.subplots(1, 2, figsize=(12, 0.5 * max(len(result.table), 3) + 2.4))
    figures.plot_allocation(result.table, tuple(axes))
    obj = result.objective
    fig.suptitle(f"Proposed allocation: {obj} {_num(result.gain, obj, True)} "
                 f"{_span(result.gain_low, result.gain_high, obj, True)} against "
                 f"today's, better in {result.better} of {result.verify_replications} fresh "
                 "replications (95% intervals: simulation noise)", x=0.01, ha="left",
                 fontsize=9)
    fig.tight_layout()
    return {"allocation": fig}


def write_allocation(result, out_dir: Path, plots: bool = True) -> list[Path]:
    """allocation.csv (per channel), allocation_verification.csv (per metric: today,
    proposed, the paired difference), allocation_rounds.csv, allocation_runs.csv (every
    run with its overrides), allocation.md, allocation.png and, last, allocation.json."""
    keys = [f"channels.{c}.spend_per_day" for c in result.channels]
    tables = {"allocation.csv": result.table,
              "allocation_verification.csv": result.verification,
              "allocation_rounds.csv": result.rounds,
              "allocation_runs.csv": with_overrides(result.runs, keys)}
    doc = {**result.settings, "channels": result.channels,
           "current": list(map(float, result.current)),
           "proposed": list(map(float, result.proposed)), "gain": result.gain,
           "gain_low": result.gain_low, "gain_high": result.gain_high,
           "better": result.better}
    return _write(out_dir, tables, ("allocation.md", allocation_markdown(result)),
                  allocation_figures(result) if plots else {}, doc, "allocation.json")


# -------------------------------------------------------------------------- goal seeking
def seek_markdown(result) -> str:
    st, m = result.settings, result.metric
    out = ["# Goal seek", "",
           f"**{result.key} = {result.value:.6g}** (95% interval {result.low:.6g} to "
           f"{result.high:.6g}) brings the mean {m} to {_num(result.reached, m)} "
           f"{_span(result.reached_low, result.reached_high, m)}; the target was "
           f"{_num(result.target, m)}.", "",
           f"Searched {st['low']:g} to {st['high']:g}: a grid, then regula falsi (Illinois) "
           f"on the mean over {st['replications']} replications on common random numbers, "
           f"down to a bracket of {st['tolerance']:.3g} "
           f"({'reached' if st['converged'] else 'not reached: the run budget ran out'}); "
           f"{st['runs']} runs, seed {st['seed']}. The value's interval is the metric's "
           f"interval at it over the local slope ({result.slope:.4g} {m} per unit). "
           + COVERS]
    return "\n".join(out)


def seek_figures(result) -> dict:
    """goal_seek: every value tried over the whole range (left) and near the answer
    (right), with the target and the answer's interval."""
    from sim.present import figures

    fig, (whole, near) = figures.plt.subplots(1, 2, figsize=(12, 4.8))
    args = (result.evaluations, result.key, result.metric, result.target, result.value,
            result.low, result.high)
    figures.plot_seek(*args, ax=whole)
    figures.plot_seek(*args, ax=near)
    st = result.settings
    half = max(4 * (result.high - result.low), (st["high"] - st["low"]) / 50)
    if math.isfinite(half):
        near.set_xlim(result.value - half, result.value + half)
        shown = result.evaluations[(result.evaluations["value"] - result.value).abs() <= half]
        if len(shown):
            lo, hi = float(shown["low"].min()), float(shown["high"].max())
            pad = 0.1 * (hi - lo) or abs(hi) * 0.05 or 1.0
            near.set_ylim(min(lo, result.target) - pad, max(hi, result.target) + pad)
    near.get_legend().remove()
    whole.set_title(f"Which {result.key} brings {result.metric} to "
                    f"{_num(result.target, result.metric)}: the range searched",
                    fontsize=10, loc="left")
    near.set_title("near the answer", fontsize=10, loc="left")
    fig.tight_layout()
    return {"goal_seek": fig}


def write_seek(result, out_dir: Path, plots: bool = True) -> list[Path]:
    """seek.csv (every value tried: mean and 95% interval), seek_runs.csv (every run with
    its overrides), seek.md, goal_seek.png and, last, seek.json."""
    tables = {"seek.csv": result.evaluations,
              "seek_runs.csv": with_overrides(result.runs, [result.key])}
    doc = {**result.settings, "value": result.value, "value_low": result.low,
           "value_high": result.high, "reached": result.reached, "slope": result.slope}
    return _write(out_dir, tables, ("seek.md", seek_markdown(result)),
                  seek_figures(result) if plots else {}, doc, "seek.json")


# ------------------------------------------------------------------ set of interventions
def portfolio_figures(result) -> dict:
    from sim.present import figures

    fig, ax = figures.plt.subplots(figsize=(9, 0.38 * max(min(len(result.sets), 15), 3) + 1.8))
    figures.plot_portfolio(result.sets, result.chosen, result.settings["objective"], ax=ax)
    ax.set_title(f"Sets of interventions within {result.settings['budget']:g} per day "
                 f"(chosen in bold)", fontsize=10, loc="left")
    fig.tight_layout()
    return {"portfolio": fig}


def write_portfolio(result, out_dir: Path, plots: bool = True) -> list[Path]:
    """portfolio_sets.csv, portfolio_verified.csv, portfolio_skipped.csv,
    portfolio_runs.csv, portfolio.md, portfolio.png and, last, portfolio.json."""
    runs = result.runs
    if "metric" not in runs.columns:  # one row per run: long, as every study table is
        ids = [c for c in ("round", "point", "option", "replication") if c in runs.columns]
        runs = runs.melt(id_vars=ids, var_name="metric", value_name="value")
    tables = {"portfolio_sets.csv": result.sets, "portfolio_verified.csv": result.verified,
              "portfolio_skipped.csv": result.skipped, "portfolio_runs.csv": runs}
    text = "# Which interventions to launch together\n\n" + result.markdown()
    text = text.replace("\nThe intervals", "\n\nThe intervals")  # a paragraph, not a bullet
    return _write(out_dir, tables, ("portfolio.md", text),
                  portfolio_figures(result) if plots else {},
                  {**result.settings, "chosen": result.chosen}, "portfolio.json")

"""Readable text: the console summary of a run, a comparison's table and ``comparison.md``,
a PSA's summary and ``psa.md``. What goes to the console fits ``CONSOLE_WIDTH`` columns."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from sim.measure.metrics import shown_as_percent
from sim.measure.stats import Estimate
from sim.model.spec import ModelSpec

__all__ = ["CONSOLE_WIDTH", "NOISE_ONLY", "PSA_COVERS", "format_comparison", "format_psa",
           "format_summary", "psa_figures", "psa_markdown", "write_comparison", "write_psa",
           "wrote_line"]

CONSOLE_WIDTH = 100  # columns of the terminal the console text is laid out for
MAX_NAME_CHARS = 30  # a longer scenario name is cut in the console's tables


def _wrap(text: str, width: int | None = CONSOLE_WIDTH) -> list[str]:
    """A paragraph as lines of at most ``width`` characters, the later ones indented two
    spaces (a name or a path is never broken); as one line without ``width``."""
    if width is None:
        return [text]
    return textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False) or [""]


def wrote_line(paths: Iterable[Path], folder: Path, width: int = CONSOLE_WIDTH) -> str:
    """``wrote a.csv, b.png, ... to FOLDER``, wrapped to ``width``."""
    return "\n".join(_wrap(f"wrote {', '.join(p.name for p in paths)} to {folder}", width))


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


def _table(title: str, header: list[str], rows: list[list[str]],
           width: int | None = CONSOLE_WIDTH, keys: int = 1) -> list[str]:
    """A titled table, its first ``keys`` columns left-aligned and the others
    right-aligned, no wider than ``width`` where it can be: columns that do not fit
    continue in a table of their own below ("(continued)"), which repeats the ``keys``
    columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    key_width = sum(widths[:keys]) + 2 * (keys - 1)
    parts: list[list[int]] = [[]]
    used = key_width
    for i in range(keys, len(header)):
        if parts[-1] and width is not None and used + 2 + widths[i] > width:
            parts.append([])
            used = key_width
        parts[-1].append(i)
        used += 2 + widths[i]
    out: list[str] = []
    for n, part in enumerate(parts):
        cols = [*range(keys), *part]

        def fmt(row: list[str], cols: list[int] = cols) -> str:
            return "  ".join(row[i].ljust(widths[i]) if i < keys else row[i].rjust(widths[i])
                             for i in cols)

        out += ["", *_wrap(title if n == 0 else f"{title} (continued)", width), fmt(header),
                "  ".join("-" * widths[i] for i in cols), *(fmt(r) for r in rows)]
    return out


def launch_line(spec: ModelSpec) -> str:
    """One line on a scenario launched during the run (``spec.before`` set)."""
    if spec.start_day >= spec.horizon_days:
        return (f"launched on day {spec.start_day:g}, after the horizon: the run is the "
                "baseline's")
    if spec.ramp_days == 0:
        return (f"launched on day {spec.start_day:g}: the baseline's rules until then, the "
                "scenario's for everyone from then on")
    return (f"launched on day {spec.start_day:g} with a {spec.ramp_days:g}-day ramp: the "
            f"scenario reaches customers evenly until day {spec.start_day + spec.ramp_days:g}, "
            "the baseline's rules apply to each until then")


def format_summary(summary: dict[str, Estimate], spec: ModelSpec, n_replications: int,
                   width: int | None = CONSOLE_WIDTH) -> str:
    """The console summary: funnel, checkout, channels, time to purchase (95% CIs).

    A run with little to show says so once, under the title (``analysis.run_notes``): one
    replication (point values; an interval needs two), nobody aware in any replication and
    why that may be, nobody buying. A value that does not exist (CAC without a purchase)
    is "-". Lines are at most ``width`` characters (a long note continues on lines
    indented two spaces, a wide table in a second table), ``None`` for no limit.
    """
    from sim.measure.stats import run_notes

    plural = "replication" if n_replications == 1 else "replications"
    what = (f"journey-sim: scenario '{spec.scenario_name}', journey '{spec.journey_name}', "
            f"engine {spec.engine}")
    size = (f"{n_replications} {plural} x {spec.horizon_days:g} "
            f"day{'' if spec.horizon_days == 1 else 's'}, "
            f"market {spec.market_size:,}, seed {spec.seed}")
    out = ([f"{what}, {size}"] if width is None or len(what) + len(size) + 2 <= width
           else [*_wrap(f"{what},", width), f"  {size}"])
    notes = [launch_line(spec)] if spec.before is not None else []
    if n_replications > 1:
        notes += ["mean per replication [95% confidence interval across replications]",
                  NOISE_ONLY]
    notes += run_notes(summary, spec, n_replications)
    out += [line for note in notes for line in _wrap(note, width)]

    def table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
        return _table(title, header, rows, width)

    rows = []
    for label, _ in spec.report:
        rows.append([label, _ci(summary[f"funnel.{label}.reached"]),
                     _ci(summary[f"funnel.{label}.rate"], pct=True),
                     _ci(summary[f"funnel.{label}.step_rate"], pct=True)])
    out += table("Funnel", ["stage", "customers", "of aware", "of previous stage"], rows)
    out += table("Checkout", ["", "value"], [
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
    out += table("Acquisition by channel", ["channel", "first purchases", "spend", "CAC"], rows)
    out += table("Time from awareness to first purchase (days)", ["", "value"], [
        ["mean", _ci(summary["time_to_purchase.mean_days"])],
        ["median", _ci(summary["time_to_purchase.median_days"])],
    ])
    out += table(f"Life as a customer (retention model: {spec.retention.model})", ["", "value"], [
        ["repeat purchase rate", _ci(summary["repeat_purchase_rate"], pct=True)],
        ["purchases per customer", _ci(summary["purchases_per_customer"])],
        ["monthly churn", _ci(summary["monthly_churn"], pct=True)],
        *[[f"retention at {k}", _ci(summary[f"retention.{k}"], pct=True)]
          for k in ("3m", "6m", "12m")],
        ["loyalty members", _ci(summary["loyalty_members"])],
    ])
    if "base.customers" in summary:
        out += table(f"Installed base ({spec.base.file}; value from the start, discounted, "
                      "acquisition cost sunk)", ["", "value"], [
            ["customers in the file", _num(summary["base.customers"].mean)],
            ["alive at the start", _ci(summary["base.alive_start"])],
            ["still active at the horizon", _ci(summary["base.active"])],
            ["orders", _ci(summary["base.orders"])],
            ["revenue", _ci(summary["base.revenue"])],
            ["value per customer", _ci(summary["base.ltv.mean"])],
            ["with the value after the horizon", _ci(summary["base.clv.mean"])],
            ["NPV of the base", _ci(summary["base.npv"])],
            ["loyalty members", _ci(summary["base.loyalty_members"])],
        ])
    new = " (new customers)" if "base.customers" in summary else ""
    out += table(f"Value{new} (discounted; LTV from the first purchase to the horizon)",
                  ["", "value"], [
        ["LTV mean", _ci(summary["ltv.mean"])],
        *[[f"LTV P{q}", _ci(summary[f"ltv.p{q}"])] for q in (10, 50, 90)],
        ["CLV mean (LTV + value after the horizon)", _ci(summary["clv.mean"])],
        ["CAC", _ci(summary["cac"])],
        ["LTV : CAC", _ci(summary["ltv_to_cac"])],
        ["payback (days)", _ci(summary["payback_days"])],
        ["revenue", _ci(summary["new.revenue" if new else "revenue"])],
        ["gross margin", _ci(summary["new.gross_margin" if new else "gross_margin"])],
        *([["NPV of the new customers", _ci(summary["new.npv"])]] if new else []),
        ["NPV of the run" + (" (new and base)" if new else ""), _ci(summary["npv"])],
        ["NPV + value after the horizon", _ci(summary["npv_clv"])],
    ])
    out += table("Service desk", ["", "value"], [
        ["tickets", _ci(summary["support.tickets"])],
        ["wait, mean (minutes)", _ci(summary["support.wait_mean_minutes"])],
        ["wait, P90 (minutes)", _ci(summary["support.wait_p90_minutes"])],
        ["tickets abandoned", _ci(summary["support.abandonment_rate"], pct=True)],
        ["agent utilisation", _ci(summary["support.utilisation"], pct=True)],
    ])
    out += table("Advocacy", ["", "value"], [
        ["advocates (ever)", _ci(summary["advocates"])],
        ["advocates active at the end", _ci(summary["advocates_active"])],
        ["referrals", _ci(summary["referrals"])],
        ["first purchases from referrals", _ci(summary["referral_share"], pct=True)],
    ])
    states = [s for s in spec.states if s != "lost"]
    out += table("Experience score on entering each state (-2 .. +2)", ["state", "score"],
                  [[s, _ci(summary[f"experience.{s}"])] for s in states])
    return "\n".join(out)


# ------------------------------------------------------------------ comparisons
def _fmt(x: float, metric: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if shown_as_percent(metric):
        return f"{x * 100:+.2f} pp"
    return f"{x:+,.0f}" if abs(x) >= 100 else f"{x:+.2f}"


def _with_interval(mean: float, low: float, high: float, text) -> str:
    if any(x is None or math.isnan(x) for x in (low, high)):
        return text(mean)  # no interval: the value alone
    return f"{text(mean)} [{text(low)}, {text(high)}]"


def _short(name: str, n_chars: int = MAX_NAME_CHARS) -> str:
    return name if len(name) <= n_chars else name[:n_chars - 3] + "..."


def format_comparison(table: pd.DataFrame, rank_by: str, replications: int,
                      reference: str = "baseline", width: int | None = None) -> str:
    """The comparison, one row per option, best first, against ``reference``. With one
    replication the differences are point values, and the text says that an interval
    needs at least two replications. The last line says what the intervals cover
    (simulation noise, given the assumptions) and points to the PSA.

    Without ``width``: one Markdown table, as wide as its content (``comparison.md``).
    With it (the console: ``CONSOLE_WIDTH``): the same numbers in tables no wider than
    ``width``: the ranking (the difference in ``rank_by``, the replications where it did
    better, the extra cost and the ROI), then the differences in the other metrics, as
    many to a table as fit; scenario names are cut to ``MAX_NAME_CHARS``.
    """
    metrics = list(dict.fromkeys(table["metric"]))
    ci = " [95% CI]" if replications > 1 else ""
    names, ranks, diffs, better, cost, roi = [], [], [], [], [], []
    for name, rows in table.groupby("scenario", sort=False):
        by = rows.set_index("metric")
        names.append(name)
        ranks.append(str(int(by["rank"].iloc[0])))
        diffs.append({m: _with_interval(by.loc[m, "difference"], by.loc[m, "difference_low"],
                                        by.loc[m, "difference_high"],
                                        lambda x, m=m: _fmt(x, m)) for m in metrics})
        r = by.loc[rank_by]
        better.append("-" if math.isnan(r["share_better"]) else f"{r['share_better']:.0%}")
        cost.append(f"{r['extra_cost']:,.0f}")
        roi.append("-" if math.isnan(r["roi"]) else
                   _with_interval(r["roi"], r["roi_low"], r["roi_high"], lambda x: f"{x:.2f}"))
    paired = (f"paired replication by replication ({replications} replications, common "
              "random numbers) with a 95% t interval" if replications > 1 else
              "that of the single replication (common random numbers): no interval, which "
              "needs at least two replications")
    against = "the baseline" if reference == "baseline" else f"{reference!r}"
    intro = (f"Options against {against}, ranked by the difference in {rank_by}. Each "
             f"difference is {paired}; pp = percentage points. "
             "ROI = extra NPV / extra cost (every cost, undiscounted), per replication; "
             "'-' where the scenario costs nothing extra. 'better in' counts replications "
             f"where the scenario did better on {rank_by}.")
    if width is None:
        header = ["rank", "scenario", *[f"Δ {m}{ci}" for m in metrics],
                  f"better in (of {replications})", "extra cost", f"ROI{ci}"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, name in enumerate(names):
            cells = [ranks[i], name, *diffs[i].values(), better[i], cost[i], roi[i]]
            lines.append("| " + " | ".join(cells) + " |")
        return intro + "\n\n" + "\n".join(lines) + "\n\n" + NOISE_ONLY + "\n"
    fill = textwrap.TextWrapper(width, break_long_words=False, break_on_hyphens=False).fill
    short = [_short(name) for name in names]
    ranking = _table(f"Ranked by the difference in {rank_by}, best first (#: rank)",
                     ["#", "scenario", f"Δ {rank_by}{ci}", f"better in (of {replications})",
                      "extra cost", f"ROI{ci}"],
                     [[ranks[i], short[i], diffs[i][rank_by], better[i], cost[i], roi[i]]
                      for i in range(len(names))], width, keys=2)
    others = [m for m in metrics if m != rank_by]
    every = _table(f"Differences from {against} in the other metrics{ci}",
                   ["scenario", *[f"Δ {m}" for m in others]],
                   [[short[i], *(diffs[i][m] for m in others)] for i in range(len(names))],
                   width) if others else []
    return "\n".join([fill(intro), *ranking, *every, "", fill(NOISE_ONLY)]) + "\n"


def write_comparison(table: pd.DataFrame, per_replication: dict[str, list[dict]],
                     descriptions: dict[str, str], rank_by: str, out_dir: Path,
                     plots: bool = True, finance: pd.DataFrame | None = None,
                     ltv: pd.DataFrame | None = None, reference: str = "baseline"
                     ) -> list[Path]:
    """comparison.csv, comparison.md, metrics.json (with the CRN variance ratios),
    finance.csv (one row per scenario: unit economics with CIs and the paired LTV and NPV
    differences from the baseline), ltv.csv when ``ltv`` is given (``Comparison.ltv()``:
    LTV by cohort, segment and channel per scenario, with paired differences) and
    comparison.png (forest plots) into ``out_dir``; after metrics.json, report.html
    (``sim.present.html``).

    ``finance`` is that table when the caller has it (``Comparison.finance()``, or
    ``finance_table`` with each job's ``metrics.json`` as ``python -m sim.report`` does);
    otherwise it is built from ``per_replication``, without the horizon and discount
    rate (left empty).
    """
    from sim import io
    from sim.measure.finance import finance_table
    from sim.present import figures
    from sim.present.html import write_report

    out_dir = Path(out_dir)
    n = len(per_replication["baseline"])
    crn = {name: dict(zip(rows["metric"], rows["crn_variance_ratio"], strict=True))
           for name, rows in table.groupby("scenario", sort=False)}
    doc = {
        "rank_by": rank_by,
        "reference": reference,
        "replications": n,
        "scenarios": descriptions,
        "comparison": table.to_dict(orient="records"),
        "crn_variance_ratio": crn,
        "per_replication": per_replication,
    }
    io.begin_outputs(out_dir)
    written = [io.write_table(table, out_dir / "comparison.csv"),
               io.write_text(format_comparison(table, rank_by, n, reference),
                             out_dir / "comparison.md")]
    if finance is None:
        finance = finance_table(per_replication)
    written.append(io.write_table(finance, out_dir / "finance.csv", io.FINANCE_FLOAT_FORMAT))
    if ltv is not None:
        written.append(io.write_table(ltv, out_dir / "ltv.csv", io.FINANCE_FLOAT_FORMAT))
    if plots:
        metrics = list(dict.fromkeys([rank_by, "ltv.mean", "conversion_rate"]))
        fig = figures.forest_figure(
            table, metrics, f"Options vs {reference}, {n} replication{'' if n == 1 else 's'}")
        try:
            written.append(io.save_figure(fig, out_dir / "comparison.png"))
        finally:
            figures.close(fig)
    written.append(io.finish_outputs(doc, out_dir))  # the folder is finished
    return [*written, write_report(out_dir)]  # then the page that shows it




# ------------------------------------------------------------ decisions under uncertainty
PSA_COVERS = ("Ranges here cover the assumptions' uncertainty and the simulation noise "
              "together (each draw is one set of assumptions, run on its own random streams).")
NOISE_ONLY = ("Intervals cover simulation noise only, given the assumptions; for how sure the "
              "answer is when the assumptions are guesses, run a PSA: psa.draws=256 "
              "(docs: how-to, decide under uncertainty).")


def _money(x: float, sign: bool = False) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:+,.0f}" if sign else f"{x:,.0f}"


def psa_markdown(result) -> str:
    """The PSA as Markdown a strategist can paste: the recommendation and how sure it is,
    the options' table, what to research first, the tornado, the assumptions."""
    s, ref, m = result.summary, result.reference, result.metric
    st = result.settings
    n, reps = st["points_run"], st["replications_per_draw"]
    best = s.iloc[0]
    runner_up = s.iloc[1] if len(s) > 1 else None
    out = ["# Which option: probabilistic sensitivity analysis", "",
           f"{n} draws of {len(result.points.columns)} uncertain assumptions ({st['design']} "
           f"design, seed {st['seed']}), {reps} replication{'s' if reps > 1 else ''} per "
           f"draw; every option runs on every draw with common random numbers. "
           + PSA_COVERS, ""]
    sure = (f"best in {best['prob_best']:.0%} of draws (Monte Carlo standard error "
            f"{best['prob_best_se']:.1%})")
    out.append(f"**Recommendation: {best['option']}**, the highest expected {m} "
               f"({_money(best['expected'])}); {sure}"
               + (f", beats {ref} in {best['prob_beats_reference']:.0%}"
                  if best["option"] != ref else "")
               + f". Choosing it now loses {_money(best['expected_loss'])} on average "
               f"against knowing every assumption exactly (the EVPI, {_money(result.evpi)}).")
    if runner_up is not None:
        gap = best["expected"] - runner_up["expected"]
        out.append(f"The runner-up, {runner_up['option']}, is {_money(gap)} behind in "
                   f"expectation and best in {runner_up['prob_best']:.0%} of draws.")
    out += ["", f"| rank | option | expected {m} | 95% range | Δ vs {ref} | 95% range | "
            f"P(beats {ref}) | P(best) | expected loss |", "|---" * 9 + "|"]
    for _, r in s.iterrows():
        beats = "-" if math.isnan(r["prob_beats_reference"]) else f"{r['prob_beats_reference']:.0%}"
        out.append(f"| {r['rank']} | {r['option']} | {_money(r['expected'])} | "
                   f"{_money(r['low'])} to {_money(r['high'])} | "
                   f"{_money(r['difference'], True)} | {_money(r['difference_low'], True)} to "
                   f"{_money(r['difference_high'], True)} | {beats} | {r['prob_best']:.0%} | "
                   f"{_money(r['expected_loss'])} |")
    out += ["", "P(best) accounts for the many-options bias: the largest of many estimated "
            "gains is biased upwards (the winner's curse), but each draw's winner is "
            "counted on that draw's own numbers. The ranges are percentiles across draws, "
            "not confidence intervals of the expected value (its standard error is in "
            "psa_summary.csv)."]
    ev = result.evppi
    out += ["", "## What to research first", "",
            f"The expected value of perfect information (EVPI) is {_money(result.evpi)}: "
            "the most that removing all uncertainty before deciding could be worth. Per "
            "assumption (EVPPI: nonparametric regression on the draws, Strong and Oakley):", ""]
    if len(ev) and result.evpi > 0:
        top = ev.iloc[0]
        se = ev["evpi_se"].iloc[0]
        out.append(f"Researching **{top['assumptions']}** first is worth up to "
                   f"{_money(top['evppi'])} ({top['share_of_evpi']:.0%} of the EVPI). "
                   f"Standard errors (bootstrap over the draws): EVPI ± {_money(se)}, "
                   "each EVPPI in the table.")
        out += ["", "| assumption(s) | EVPPI | ± SE | share of EVPI |", "|---|---|---|---|"]
        for _, r in ev.head(10).iterrows():
            out.append(f"| {r['assumptions']} | {_money(r['evppi'])} | {_money(r['evppi_se'])} "
                       f"| {r['share_of_evpi']:.0%} |")
        if ev["above_evpi"].any():
            out += ["", f"{int(ev['above_evpi'].sum())} estimate(s) exceed the EVPI, which "
                    "no partial information can: Monte Carlo and fitting error with "
                    f"{len(result.points)} draws. Run more draws before acting on the "
                    "ranking."]
    else:
        out.append("The same option is best on every draw: no research changes the "
                   "decision (EVPI 0).")
    if result.tornado is not None and len(result.tornado):
        t = result.tornado
        o = t["option"].iloc[0]
        out += ["", f"## One way at a time (tornado): {m} of {o} - {m} of {ref}", "",
                f"Each assumption at its P{st.get('low_percentile', 10):g} and "
                f"P{st.get('high_percentile', 90):g}, every other at its value; base "
                f"{_money(t['base'].iloc[0], True)}. Intervals: 95% over the replications "
                "(simulation noise).", "",
                "| assumption | low value | high value | Δ at low | Δ at high | swing |",
                "|---|---|---|---|---|---|"]
        for _, r in t.head(12).iterrows():
            out.append(f"| {r['assumption']} | {r['low_value']:.4g} | {r['high_value']:.4g} "
                       f"| {_money(r['low'], True)} | {_money(r['high'], True)} | "
                       f"{_money(r['swing'])} |")
    if result.sobol is not None:
        out += ["", "## Sobol indices", "", "| assumption | first order | total |",
                "|---|---|---|"]
        for _, r in result.sobol.iterrows():
            out.append(f"| {r['assumption']} | {r['first_order']:.2f} | "
                       f"{r['total_order']:.2f} |")
    noise = result.noise_share
    out += ["", "## Simulation noise", "",
            (f"Of the variance of {result.challenger}'s difference across draws, "
             f"{noise:.0%} is simulation noise (the spread between a draw's replications)."
             if not math.isnan(noise) else
             "Not measured: one replication per draw (psa.replications=2 or more measures "
             "it). The noise widens the ranges above and inflates the EVPI a little.")]
    out += ["", "## Assumptions", "", *(f"- {d}" for d in result.assumptions), ""]
    return "\n".join(out)


def format_psa(result) -> str:
    """The console summary of a PSA: the options' table and the top of the EVPPI."""
    s, ref, m = result.summary, result.reference, result.metric
    rows = [[str(r["rank"]), r["option"], _money(r["expected"]),
             f"{_money(r['difference_low'], True)} .. {_money(r['difference_high'], True)}",
             f"{r['prob_best']:.0%}", _money(r["expected_loss"])] for _, r in s.iterrows()]
    out = [f"journey-sim PSA: {result.settings['points_run']} draws of "
           f"{len(result.points.columns)} assumptions, reference {ref}", PSA_COVERS]
    out += _table(f"Options by expected {m}", ["rank", "option", f"expected {m}",
                                                f"Δ vs {ref} (95% range)", "P(best)",
                                                "expected loss"], rows)
    se = result.evppi["evpi_se"].iloc[0] if len(result.evppi) else math.nan
    out.append(f"\nrecommended: {result.recommended}; EVPI {_money(result.evpi)} "
               f"(± {_money(se)})")
    if len(result.evppi) and result.evpi > 0:
        top = result.evppi.iloc[0]
        out.append(f"research first: {top['assumptions']} (EVPPI {_money(top['evppi'])}, "
                   f"{top['share_of_evpi']:.0%} of the EVPI)")
    return "\n".join(out)


def write_psa(result, out_dir: Path, plots: bool = True) -> list[Path]:
    """The PSA's files into ``out_dir``: psa_runs.csv (the study, long: point, the
    assumptions' draws, option, replication, metric, value), psa_summary.csv,
    psa_metrics.csv (the headline metrics per option),
    acceptability.csv, evppi.csv, tornado.csv and sobol.csv (when run), psa.md, the
    figures (psa_cloud.png, acceptability.png, evppi.png, tornado.png), psa.json (the
    settings, the assumptions and the EVPI: the folder is finished) and after it
    report.html (``sim.present.html``)."""
    from sim import io
    from sim.decide.analysis import metrics_table
    from sim.decide.study import long_table
    from sim.present import figures
    from sim.present.html import write_report

    out_dir = Path(out_dir)
    io.begin_outputs(out_dir, mark="psa.json")
    written = [io.write_table(long_table(result.runs, result.points), out_dir / "psa_runs.csv"),
               io.write_table(result.summary, out_dir / "psa_summary.csv"),
               io.write_table(metrics_table(result.runs, result.reference),
                              out_dir / "psa_metrics.csv"),
               io.write_table(result.acceptability, out_dir / "acceptability.csv"),
               io.write_table(result.evppi, out_dir / "evppi.csv")]
    if result.tornado is not None:
        written.append(io.write_table(result.tornado, out_dir / "tornado.csv"))
    if result.sobol is not None:
        written.append(io.write_table(result.sobol, out_dir / "sobol.csv"))
    written.append(io.write_text(psa_markdown(result), out_dir / "psa.md"))
    if plots:
        for name, fig in psa_figures(result).items():
            try:
                written.append(io.save_figure(fig, out_dir / f"{name}.png"))
            finally:
                figures.close(fig)
    doc = {**result.settings, "options": list(result.summary["option"]),
           "recommended": result.recommended, "evpi": result.evpi,
           "noise_share": result.noise_share, "covers": PSA_COVERS,
           "files": [p.name for p in written]}
    written.append(io.write_json(io.json_ready(doc), out_dir / "psa.json"))
    return [*written, write_report(out_dir)]  # after the mark: the page that shows it


def psa_figures(result) -> dict:
    """The PSA's figures by name (matplotlib Figures)."""
    from sim.decide.analysis import net_benefit, run_costs
    from sim.present import figures

    plt = figures.plt
    ref, m = result.reference, result.metric
    nb, cost = net_benefit(result.runs, m), run_costs(result.runs)
    figs = {}
    try:
        fig, ax = plt.subplots(figsize=(8, 5.2))
        cloud = {o: (cost[o].to_numpy() - cost[ref].to_numpy(),
                     nb[o].to_numpy() - nb[ref].to_numpy()) for o in nb.columns if o != ref}
        figures.plot_psa_cloud(cloud, ref, m, ax=ax)
        ax.set_title(f"Each option against {ref}, {len(nb)} draws of the assumptions",
                     fontsize=10, loc="left")
        figs["psa_cloud"] = fig
        fig, ax = plt.subplots(figsize=(8, 4.5))
        figures.plot_acceptability(result.acceptability, ax=ax)
        ax.set_title("Probability each option is best (acceptability)", fontsize=10, loc="left")
        figs["acceptability"] = fig
        fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(result.evppi), 3) + 1.6))
        figures.plot_evppi(result.evppi, result.evpi, ax=ax)
        ax.set_title("What to research first: value of perfect information", fontsize=10,
                     loc="left")
        figs["evppi"] = fig
        if result.tornado is not None and len(result.tornado):
            t = result.tornado
            fig, ax = plt.subplots(figsize=(8.5, 0.5 * max(len(t), 3) + 1.6))
            figures.plot_tornado(t, ax=ax)
            ax.set_title(f"One way at a time: {t['option'].iloc[0]} vs {ref}", fontsize=10,
                         loc="left")
            figs["tornado"] = fig
        for f in figs.values():
            f.tight_layout()
    except BaseException:
        for f in figs.values():
            figures.close(f)
        raise
    return figs

"""The Markdown reports of the two calibrations and their figures: parameters with
standard errors and confidence intervals, goodness of fit (histogram, tracking, holdout,
dwell and exit fits), the expected value, and the command to run the simulator next.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim import io
from sim.calibrate import funnel
from sim.calibrate.fitted import (
    _g,
    _journey_groups,
    _transaction_groups,
    psa_command,
    run_command,
)
from sim.calibrate.journey import JourneyFit
from sim.calibrate.transactions import TransactionFit
from sim.present import figures

__all__ = ["journey_report", "transactions_report"]


# ------------------------------------------------------------------ transactions
def transactions_report(result: TransactionFit, name: str, written: Sequence[Path],
                        config_dir: Path | str = "DIR") -> str:
    """The Markdown report of a transaction fit (``config_dir``: where the configs went)."""
    d, bg = result.data, result.bgnbd
    unit = d.unit
    lo, hi = bg.interval()
    alpha_days, alpha_days_se = result.alpha_days
    n_rep = int((d.customers["x"] > 0).sum())
    out = [
        f"# Calibration from {d.source}: repeat buying and spend",
        "",
        f"Transactions: {d.n_rows:,} rows; {d.n_merged:,} merged into another purchase of the "
        f"same customer and day; {d.n_later:,} after the data used or of customers first "
        f"seen after the calibration period. Calibration period {d.first_date.date()} to "
        f"{d.calibration_end.date()}"
        + (f", holdout to {d.holdout_end.date()}" if d.holdout_end is not None else "")
        + f". {len(d.customers):,} customers, {n_rep:,} of them bought again "
        f"({int(d.customers['x'].sum()):,} repeat purchases). Time unit: {unit}.",
        *(f"\n**Warning:** {w}" for w in d.warnings),
        "",
        "## Repeat buying (BG/NBD, Fader, Hardie & Lee 2005)",
        "",
        f"lambda ~ Gamma(r, alpha) purchases per {unit}; after each repeat purchase the "
        "customer drops out with probability p ~ Beta(a, b).",
        "",
        "| parameter | estimate | standard error | 95% CI |",
        "|---|---|---|---|",
        *(f"| {n} | {_g(bg[n])} | {_g(bg.se_of(n), 3)} | [{_g(lo[i])}, {_g(hi[i])}] |"
          for i, n in enumerate(bg.names)),
        f"| alpha_days (simulator) | {_g(alpha_days)} | {_g(alpha_days_se, 3)} | "
        # alpha_days = alpha x days per unit: alpha's log-scale interval, scaled
        f"[{_g(lo[1] * d.days_per_unit)}, {_g(hi[1] * d.days_per_unit)}] |",
        "",
        f"Log-likelihood {bg.loglik:.6g} ({bg.n_obs:,} customers). Convergence: "
        f"{bg.n_starts} starting points, {bg.n_converged} converged, {bg.n_at_best} reached "
        "the best log-likelihood; Hessian positive definite.",
        *(f"\n**Warning:** {w}" for w in bg.warnings),
        "",
        f"Mean purchase rate r / alpha = {_g(bg['r'] / bg['alpha'])} per {unit} (one purchase "
        f"every {_g(alpha_days / bg['r'])} days while active); mean drop-out probability "
        f"a / (a + b) = {_g(bg['a'] / (bg['a'] + bg['b']))}.",
        "",
        "### Repeat purchases in the calibration period",
        "",
        "| repeat purchases | observed customers | expected customers |",
        "|---|---|---|",
        *(f"| {r.repeat_purchases} | {r.observed:,.0f} | {r.expected:,.1f} |"
          for r in result.histogram.itertuples()),
        "",
        f"Chi-square test (tail bins merged to expected counts of at least 5): "
        f"statistic {result.chi_square['statistic']:.4g}, {result.chi_square['df']} degrees of "
        f"freedom, p = {_g(result.chi_square['p_value'], 3)}.",
    ]
    if result.holdout is not None and result.holdout_summary is not None:
        hs = result.holdout_summary
        out += [
            "",
            "### Holdout",
            "",
            f"Purchases per customer in the holdout period ({_g(d.holdout_units)} {unit}s), "
            "actual against the model's conditional expectation, by repeat purchases in "
            "calibration:",
            "",
            "| repeat purchases | customers | actual mean | predicted mean |",
            "|---|---|---|---|",
            *(f"| {r.repeat_purchases} | {r.customers:,} | {r.actual_mean:.3f} | "
              f"{r.predicted_mean:.3f} |" for r in result.holdout.itertuples()),
            "",
            f"Total: actual {hs['actual_total']:,.0f}, predicted {hs['predicted_total']:,.1f}; "
            f"per customer: mean absolute error {hs['mean_absolute_error']:.3f}, RMSE "
            f"{hs['rmse']:.3f}, correlation {_g(hs['correlation'], 3)}.",
        ]
    if result.spend is not None:
        gg = result.spend
        glo, ghi = gg.interval()
        ov = result.order_value()
        sd = result.spend_diagnostics
        out += [
            "",
            "## Spend (Gamma-Gamma, Fader, Hardie & Lee 2005)",
            "",
            "The value of each repeat purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across "
            f"customers; fitted on the mean repeat-purchase value of {gg.n_obs:,} repeat buyers"
            + (f" ({sd['n_excluded_zero_value']} with a zero mean left out)"
               if sd.get("n_excluded_zero_value") else "") + ".",
            "",
            "| parameter | estimate | standard error | 95% CI |",
            "|---|---|---|---|",
            *(f"| {n} | {_g(gg[n])} | {_g(gg.se_of(n), 3)} | [{_g(glo[i])}, {_g(ghi[i])}] |"
              for i, n in enumerate(gg.names)),
            f"| order_value_mean (simulator) | {_g(ov['order_value_mean'])} | "
            f"{_g(ov['order_value_mean_se'], 3)} | |",
            f"| order_value_cv (simulator) | {_g(ov['order_value_cv'])} | "
            f"{_g(ov['order_value_cv_se'], 3)} | |",
            "",
            f"Log-likelihood {gg.loglik:.6g}. Convergence: {gg.n_starts} starting points, "
            f"{gg.n_converged} converged, {gg.n_at_best} reached the best log-likelihood.",
            *(f"\n**Warning:** {w}" for w in gg.warnings),
            "",
            "The model assumes spend is independent of purchase frequency: the correlation "
            f"between repeat purchases and mean value is {_g(sd['corr_frequency_value'], 3)}.",
        ]
    lt = result.ltv
    out += [
        "",
        "## Expected value",
        "",
        f"Discounting as in the simulator: continuously at ln(1 + {lt['annual_discount_rate']:g})"
        f" / 365 per day; horizon {lt['horizon_years']:g} years; gross margin "
        f"{lt['gross_margin']:g} of the amounts.",
        "",
        f"A new customer makes {lt['new_customer_expected_repeat_purchases']:.3f} repeat "
        "purchases in that horizon on average "
        f"({lt['new_customer_discounted_repeat_purchases']:.3f} discounted).",
    ]
    if "new_customer_ltv" in lt:
        out += [
            f"Expected LTV of a new customer (the simulator's convention: first margin now, "
            f"then the discounted repeat margins): {lt['new_customer_ltv']:,.2f}.",
            "",
            f"Existing customers, from the end of calibration: mean expected LTV "
            f"{lt['customer_ltv_mean']:,.2f} (P10 {lt['customer_ltv_p10']:,.2f}, P50 "
            f"{lt['customer_ltv_p50']:,.2f}, P90 {lt['customer_ltv_p90']:,.2f}), total "
            f"{lt['customer_ltv_total']:,.0f}; per customer in `customers.csv`.",
        ]
    out += ["", "## Files", "", *(f"- `{p.name}` ({p.parent.name}/)" for p in written), "",
            "Run the simulator on the fitted business (`business/fitted_" + name + ".yaml`: "
            "the fitted retention, economics and uncertainty, with the segments' and the "
            "experience's effects on buying made neutral, as the fit already contains them):",
            "", "```", run_command(_transaction_groups(result, name), config_dir), "```", "",
            "and with today's customers, the installed base of `customers.csv`:", "", "```",
            run_command(_transaction_groups(result, name), config_dir)
            + " market.base=customers.csv", "```", "",
            "(`--config-dir` names the folder holding business/, retention/, economics/ and "
            "uncertainty/; `market.base` the path of `customers.csv`, in this report's "
            "folder; add overrides after the choices as usual).", "",
            f"`uncertainty/fitted_{name}.yaml` holds the uncertainty of the estimates: the "
            "BG/NBD parameters jointly lognormal with the fit's covariance of their logs"
            + (", the Gamma-Gamma p, q and gamma likewise" if result.spend is not None
               else "")
            + ", and the baseline's other shared assumptions. A point run ignores it; a "
            "probabilistic sensitivity analysis (PSA) then propagates the fit's uncertainty "
            "into a comparison of options (name your scenarios in `compare=[...]`):", "",
            "```", psa_command(_transaction_groups(result, name), config_dir), "```", ""]
    return "\n".join(out)


def _save(ax: Any, path: Path, title: str) -> Path:
    ax.set_title(title, fontsize=10, loc="left")
    fig = ax.figure
    fig.tight_layout()
    saved = io.save_figure(fig, path)
    figures.close(fig)
    return saved


def _transaction_figures(result: TransactionFit, out_dir: Path) -> list[Path]:
    d = result.data
    h, chi = result.histogram, result.chi_square
    written = [_save(figures.plot_repeat_histogram(
        list(h["repeat_purchases"]), h["observed"].to_numpy(), h["expected"].to_numpy()),
        out_dir / "repeat_histogram.png",
        f"Repeat purchases, {d.source}: chi-square {chi['statistic']:.3g} "
        f"(df {chi['df']}, p = {_g(chi['p_value'], 2)})")]
    t = result.tracking
    written.append(_save(figures.plot_tracking(
        t["date"].to_numpy(), t["actual"].to_numpy(), t["expected"].to_numpy(),
        np.datetime64(d.calibration_end)), out_dir / "tracking.png",
        "Cumulative repeat purchases: observed vs BG/NBD"))
    if result.holdout is not None:
        ho = result.holdout
        written.append(_save(figures.plot_holdout(
            list(ho["repeat_purchases"]), ho["actual_mean"].to_numpy(),
            ho["predicted_mean"].to_numpy()), out_dir / "holdout.png",
            "Holdout: purchases per customer, observed vs predicted"))
    if result.spend is not None:
        sd = result.spend_diagnostics
        written.append(_save(figures.plot_spend_fit(sd["values"], sd["grid"], sd["density"]),
                             out_dir / "spend.png", "Mean repeat-purchase value per customer"))
        written.append(_save(figures.plot_value_distribution(
            result.customers["ltv"].to_numpy(),
            f"expected LTV per customer over {result.ltv['horizon_years']:g} years "
            "(discounted; axis cut at P99.5)"), out_dir / "ltv.png",
            "Expected LTV of the existing customers"))
    return written


# ------------------------------------------------------------------ journey
def journey_report(result: JourneyFit, name: str, written: Sequence[Path],
                   config_dir: Path | str = "DIR") -> str:
    """The Markdown report of a journey fit (``config_dir``: where the config went)."""
    d = result.data
    out = [
        f"# Calibration from {d.source}: the pre-purchase funnel",
        "",
        f"{d.n_rows:,} rows, {d.n_customers:,} customers, {d.start} to {d.end}; "
        f"{d.n_after:,} rows after a customer's checkout or loss (or after the end) are not "
        "part of the funnel. Losses are "
        + ("recorded in the log; a customer still in a stage at the end is censored."
           if d.lost_recorded else
           "not in the log: a customer whose entries stop is either still in the stage or was "
           "lost, and the likelihood weighs both (S(c) + F(c) P(lost)).")
        + f" Timestamp resolution {'1 day' if d.resolution_days == 1 else '1 second'} "
        "(visits recorded with zero length lasted less).",
        *(f"\n**Warning:** {w}" for w in d.warnings),
        "",
        f"Stages in order: {', '.join(d.order)} (the entry stage first).",
        "",
        "## Dwell times",
        "",
        "| stage | kind | mean days [95% CI] | cv [95% CI] | completed / open visits | "
        "AIC of each kind |",
        "|---|---|---|---|---|---|",
    ]
    for stage in d.order:
        f = result.stages[stage]
        dw = f.dwell
        ci = dw.interval()
        aics = ", ".join(f"{k} {c.aic:,.1f}" for k, c in f.candidates.items()
                         if np.isfinite(c.aic))
        out.append(f"| {stage} | {dw.kind} | {_g(dw.mean_days)} [{_g(ci['mean_days'][0])}, "
                   f"{_g(ci['mean_days'][1])}] | {_g(dw.cv)} [{_g(ci['cv'][0])}, "
                   f"{_g(ci['cv'][1])}] | {f.n_completed:,} / {f.n_open:,} | {aics or '-'} |")
    out += ["", "## Exit probabilities", "", "| stage | exit | probability | SE | 95% CI | "
            "visits |", "|---|---|---|---|---|---|"]
    for row in result.exit_table().itertuples():
        out.append(f"| {row.stage} | {row.exit} | {row.probability:.4f} | {row.se:.4f} | "
                   f"[{row.low:.4f}, {row.high:.4f}] | {row.visits:,} |")
    warnings = [w for f in result.stages.values() for w in f.warnings]
    if warnings:
        out += ["", *(f"**Warning:** {w}" for w in warnings)]
    if len(result.channels):
        out += ["", "## Channels", "",
                "Odds multiplier on the forward exits of each channel's customers against the "
                "pooled fit (as the simulator's `channels.<name>.quality`, relative to the "
                "average customer):", "", "| channel | customers | multiplier | 95% CI |",
                "|---|---|---|---|"]
        for r in result.channels.itertuples():
            out.append(f"| {r.channel} | {r.customers:,} | {_g(r.multiplier, 3)} | "
                       f"[{_g(r.low, 3)}, {_g(r.high, 3)}] |")
    out += ["", "## Files", "", *(f"- `{p.name}` ({p.parent.name}/)" for p in written), "",
            "Run the simulator on the fitted journey:", "", "```",
            run_command(_journey_groups(d.order, name), config_dir), "```", "",
            "(`--config-dir` names the folder holding journey/). Levers and experience points "
            "are left empty: add them to the file to let interventions act on the fitted "
            "stages.", ""]
    return "\n".join(out)


def _journey_figures(result: JourneyFit, out_dir: Path) -> list[Path]:
    order = result.data.order
    fig, axes = figures.panels(len(order))
    for ax, stage in zip(axes, order, strict=True):
        v, f = result.data.visits[stage], result.stages[stage]
        lengths = np.r_[v.durations, np.zeros(v.n_instant), v.open_days]
        done = np.r_[np.ones(v.n_completed, bool), np.zeros(v.open_days.size, bool)]
        top = 1.5 * float(np.percentile(v.durations, 99)) if v.durations.size else 1.0
        days = np.linspace(0, max(top, 1e-6), 200)
        # without recorded losses a visit "ends" at a recorded exit: the share without one
        # by day t is p_lost + (1 - p_lost) S(t), what Kaplan-Meier estimates then
        inferred = not v.lost_recorded
        curves = {}
        for kind, c in f.candidates.items():
            if kind == "fixed":
                surv = (days < c.mean_days).astype(float)
            else:
                surv = np.exp(funnel.dwell_logsf(kind, c.theta, days))
            if inferred:
                surv = c.lost_prob + (1 - c.lost_prob) * surv
            curves[f"{kind}{' (chosen)' if kind == f.dwell.kind else ''}"] = (days, surv)
        figures.plot_dwell_fit(lengths, done, curves, max_days=days[-1],
                                ylabel="share of visits without a recorded exit" if inferred
                                else "share of visits not yet ended", ax=ax)
        ax.set_title(stage, fontsize=10, loc="left")
    fig.suptitle(f"Dwell times, {result.data.source}", x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    written = [io.save_figure(fig, out_dir / "dwell.png")]
    figures.close(fig)
    fig, axes = figures.panels(len(order))
    for ax, stage in zip(axes, order, strict=True):
        ex = result.stages[stage].exits
        figures.plot_exit_probabilities([e.target for e in ex], np.array([e.prob for e in ex]),
                                         np.array([e.low for e in ex]),
                                         np.array([e.high for e in ex]), ax=ax)
        ax.set_title(stage, fontsize=10, loc="left")
    fig.suptitle(f"Exit probabilities, {result.data.source}", x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    written.append(io.save_figure(fig, out_dir / "exits.png"))
    figures.close(fig)
    return written

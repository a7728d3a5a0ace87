"""The explorer: a local web app for live what-if and a class demonstration.

A user picks a journey and a scenario, moves the main levers (channel spend, the checkout's
friction, the loyalty programme, the support desk, the referral programme) and sees the
funnel, conversion, churn, LTV and NPV with their 95 % intervals against the baseline (the
same journey and scenario without the lever changes, on common random numbers). A second
tab runs one replication and animates the population moving through the stages.

Why Dash (Plotly's framework for analytic web apps):

- it is well kept (regular releases, wide use) and an optional extra (``pip install
  journey-sim[app]``), so the simulator itself does not depend on it;
- its callbacks are server-side Python: the simulator runs as-is in the server process,
  with the command line's overrides and validation, and nothing is rewritten in JavaScript;
- its charts are Plotly's: intervals as error bars, and animation frames with play/pause
  that run in the browser, smooth without a round trip per frame;
- the page is an ordinary page, tested end to end in a real (headless) browser.

The layers hold as elsewhere: this module builds the page, the figures and the bodies of
the callbacks, and runs the simulator through a ``Backend`` it is given; ``sim.explore``,
the entry point on top, gives it one built on ``sim.api`` (``run``, ``Run.write``). The
callbacks' bodies are the methods of ``Explorer``: functions of the controls' values that
return figures and text, tested without a browser.

May import: ``sim.measure`` and below, dash (here only in ``sim``), plotly, werkzeug
(the server Dash runs on). Never ``sim.api``: the simulator comes in as the backend.
"""

from __future__ import annotations

import logging
import math
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from plotly.subplots import make_subplots

from sim.errors import InputError
from sim.measure.experiment import ExperimentResult
from sim.measure.stats import Estimate, paired, summarize

__all__ = ["Backend", "Explorer", "Lever", "Settings", "View", "create_app", "funnel_figure",
           "journey_animation", "lever_overrides", "levers_for", "serve"]

log = logging.getLogger(__name__)

NOISE_NOTE = ("Intervals are 95 % confidence intervals across replications: they cover the "
              "simulation noise, given the assumptions, not the uncertainty in the assumptions "
              "themselves (python -m sim psa.draws=... covers those). Changes are paired: the "
              "same simulated people with and without your changes (common random numbers).")


# ------------------------------------------------------------------------------ levers
@dataclass(frozen=True)
class Lever:
    """One control: a config key, its label and the slider's range (a typed value may lie
    outside the range: the config's own validation decides whether it can be)."""

    key: str  # the config key path, e.g. "checkout.steps"
    label: str
    kind: str  # "number", "integer" or "switch"
    section: str
    low: float = 0.0
    high: float = 1.0
    step: float = 1.0
    note: str = ""


CHECKOUT, LOYALTY, SUPPORT, REFERRALS = ("Checkout", "Loyalty programme", "Support desk",
                                         "Referral programme")
LEVERS = (
    Lever("checkout.steps", "Checkout pages", "integer", CHECKOUT, 1, 10, 1,
          "each page beyond the first adds to abandonment"),
    Lever("checkout.forced_account", "Account required to buy", "switch", CHECKOUT),
    Lever("checkout.hidden_fees", "Fees shown only at the end", "switch", CHECKOUT),
    Lever("checkout.payment_methods", "Payment methods offered", "integer", CHECKOUT, 0, 8, 1),
    Lever("checkout.page_load_seconds", "Page load time (seconds)", "number", CHECKOUT,
          0, 10, 0.5),
    Lever("loyalty.enabled", "Programme on", "switch", LOYALTY),
    Lever("loyalty.enrol_prob", "Share of first buyers who join", "number", LOYALTY,
          0, 1, 0.05),
    Lever("loyalty.discount", "Reward (share of each member order)", "number", LOYALTY,
          0, 0.3, 0.01),
    Lever("loyalty.rate_multiplier", "Members buy more often (x)", "number", LOYALTY,
          1, 2, 0.05),
    Lever("loyalty.dropout_multiplier", "Members drop out (x)", "number", LOYALTY,
          0.3, 1.2, 0.05),
    Lever("support.agents", "Agents at the desk", "integer", SUPPORT, 1, 10, 1),
    Lever("advocacy.program", "Programme on", "switch", REFERRALS),
    Lever("advocacy.reward_per_referral", "Reward per referred buyer", "number", REFERRALS,
          0, 50, 1),
    Lever("advocacy.program_rate_multiplier", "Referrals per advocate (x)", "number",
          REFERRALS, 1, 5, 0.1),
)
SECTION_NOTES = {
    LOYALTY: "the knobs act when the programme is on",
    REFERRALS: "the knobs act when the programme is on",
}


def lookup(cfg: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key of a plain config dict."""
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def levers_for(cfg: Mapping[str, Any]) -> list[Lever]:
    """The levers of a config: the spend per day of each channel whose reach grows with
    spend (its slider runs to four times today's spend, at least 200), then ``LEVERS``."""
    spends = []
    for name, channel in cfg["channels"].items():
        if channel.get("max_reach_per_day", 0) > 0:
            high = max(200.0, 50 * math.ceil(4 * channel["spend_per_day"] / 50))
            spends.append(Lever(f"channels.{name}.spend_per_day", name.replace("_", " "),
                                "number", "Spend per day by channel", 0, high, 5))
    return [*spends, *LEVERS]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _override(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    if isinstance(value, float):
        value = round(value, 9)  # slider steps of 0.05 arrive as 0.15000000000000002
        if value.is_integer() and abs(value) < 1e15:
            value = int(value)  # 3.0 -> 3: an integer key accepts it, a float key too
    return f"{key}={value!r}"


def lever_overrides(levers: Sequence[Lever], values: Mapping[str, Any],
                    defaults: Mapping[str, Any]) -> list[str]:
    """The overrides (``key=value``) of the levers whose value differs from ``defaults``;
    the values are not checked here: the config's validation checks them when they run.

    Raises
    ------
    InputError : a lever left empty (a number box cleared, or holding what is not a
        number), all of them in one message.
    """
    empty = [lever.key for lever in levers if values.get(lever.key) is None]
    if empty:
        raise InputError("no value for " + ", ".join(empty) + ": type a number")
    return [_override(lever.key, values[lever.key]) for lever in levers
            if not _same(values[lever.key], defaults[lever.key])]


# ----------------------------------------------------------------------- the simulator
class Backend(Protocol):
    """What the explorer needs of the simulator (``sim.explore.ApiBackend``: ``sim.api``)."""

    def journeys(self) -> list[str]:
        """The journey presets (``journey=`` options)."""

    def scenarios(self) -> list[str]:
        """The scenario names."""

    def config(self, overrides: Sequence[str]) -> dict[str, Any]:
        """The composed config, as a plain dict (raises ``InputError``)."""

    def run(self, overrides: Sequence[str], replications: int | None = None
            ) -> ExperimentResult:
        """Run it: every replication (raises ``InputError`` before running)."""

    def report(self, overrides: Sequence[str]) -> tuple[str, bytes]:
        """Run it and write its folder: (file name, content) of its report to send."""


@dataclass(frozen=True)
class Settings:
    """The run behind each update: a market size (None: the config's ``market.size``),
    replications and engine (``auto``: agent below 50,000 people, fast from there)."""

    market_size: int | None = None
    replications: int = 4
    engine: str = "auto"

    def overrides(self) -> list[str]:
        size = [f"market.size={self.market_size}"] if self.market_size is not None else []
        return [*size, f"run.replications={self.replications}", f"run.engine={self.engine}",
                "run.n_jobs=1", "run.progress=false"]

    def shown(self) -> list[str]:
        """The overrides that make ``python -m sim`` run what the explorer runs."""
        size = [f"market.size={self.market_size}"] if self.market_size is not None else []
        engine = [f"run.engine={self.engine}"] if self.engine != "auto" else []
        return [*size, f"run.replications={self.replications}", *engine]


def describe(spec: Any, replications: int, seconds: float | None = None) -> str:
    """"agent engine, 20,000 people, 4 replications x 730 days: 1.9 s"."""
    text = (f"{spec.engine} engine, {spec.market_size:,} people, {replications} "
            f"replication{'' if replications == 1 else 's'} x {spec.horizon_days:g} days")
    return text if seconds is None else f"{text}: {seconds:.1f} s"


# ----------------------------------------------------------------------------- metrics
# (name, label, what it is, unit, more is better)
METRICS = (
    ("conversion_rate", "Conversion", "buyers per person made aware", "pct", True),
    ("monthly_churn", "Monthly churn", "customers lost per customer-month", "pct", False),
    ("ltv.mean", "Customer LTV", "mean discounted value per buyer", "money", True),
    ("npv", "NPV", "discounted profit over the horizon", "money", True),
    ("npv_clv", "NPV + value after the horizon", "NPV plus the customers still alive",
     "money", True),
)


@dataclass(frozen=True)
class MetricRow:
    name: str
    label: str
    what: str
    unit: str
    baseline: Estimate
    current: Estimate
    difference: float  # current - baseline, paired replication by replication
    difference_low: float
    difference_high: float
    verdict: str  # "better", "worse", "unclear" (the interval holds 0) or "same" (no change)


def compare_metrics(base: ExperimentResult, current: ExperimentResult | None) -> list[MetricRow]:
    """Each headline metric of the baseline and of ``current`` (None: no change), with the
    paired difference and its 95 % interval."""
    b = summarize(base)
    c = b if current is None else summarize(current)
    rows = []
    for name, label, what, unit, up in METRICS:
        if current is None:
            d = {"difference": 0.0, "difference_low": 0.0, "difference_high": 0.0}
            verdict = "same"
        else:
            d = paired(base.metrics, current.metrics, name, up)
            low, high = d["difference_low"], d["difference_high"]
            verdict = ("unclear" if not (low > 0 or high < 0)  # NaN bounds: unclear too
                       else "better" if (low > 0) == up else "worse")
        rows.append(MetricRow(name, label, what, unit, b[name], c[name], d["difference"],
                              d["difference_low"], d["difference_high"], verdict))
    return rows


def fmt(x: float, unit: str, sign: bool = False, suffix: bool = True) -> str:
    """A metric's value for the page: a share in per cent with two decimals (a change in
    percentage points, "pt"), money in whole units; ``sign``: a change, signed."""
    if x is None or math.isnan(x):
        return "-"
    if unit == "pct":
        text = f"{100 * x:{'+,.2f' if sign else ',.2f'}}"
        return f"{text} {'pt' if sign else '%'}" if suffix else text
    return f"{x:{'+,.0f' if sign else ',.0f'}}"


def fmt_interval(low: float, high: float, unit: str, sign: bool = False) -> str:
    """"[4.08, 4.92] %", "[+1.58, +1.69] pt", "[-7,486, 26,621]"."""
    if math.isnan(low) or math.isnan(high):
        return "(no interval: one replication)"
    text = f"[{fmt(low, unit, sign, False)}, {fmt(high, unit, sign, False)}]"
    return f"{text} {'pt' if sign else '%'}" if unit == "pct" else text


def summary_line(rows: Sequence[MetricRow]) -> str:
    """Conversion and NPV in one line, with their changes (the narrow page keeps it in
    sight while the levers move)."""
    parts = []
    for r in rows:
        if r.name in ("conversion_rate", "npv"):
            change = f" ({fmt(r.difference, r.unit, True)})" if r.verdict != "same" else ""
            parts.append(f"{r.label} {fmt(r.current.mean, r.unit)}{change}")
    return " · ".join(parts)


def metric_cards(rows: Sequence[MetricRow]) -> list[html.Div]:
    """One card per metric: your settings' value and interval, the baseline's, the change."""
    cards = []
    for r in rows:
        changed = r.verdict != "same"
        change = (f"change {fmt(r.difference, r.unit, True)} "
                  f"{fmt_interval(r.difference_low, r.difference_high, r.unit, True)}"
                  if changed else "no change from the baseline")
        cards.append(html.Div(className=f"card {r.verdict}", id=f"card-{r.name}", children=[
            html.Div(r.label, className="card-label", title=r.what),
            html.Div(fmt(r.current.mean, r.unit), className="card-value",
                     id=f"value-{r.name.replace('.', '-')}"),
            html.Div(fmt_interval(r.current.low, r.current.high, r.unit),
                     className="card-interval"),
            html.Div(f"baseline {fmt(r.baseline.mean, r.unit)}", className="card-baseline"),
            html.Div(change, className="card-change"),
        ]))
    return cards


# ----------------------------------------------------------------------------- figures
BASELINE_COLOUR, CURRENT_COLOUR = "#9aa5b1", "#1f6feb"


def funnel_figure(stages: Sequence[str], base: Mapping[str, Estimate],
                  current: Mapping[str, Estimate] | None = None) -> go.Figure:
    """People reaching each stage of the journey (mean per replication, 95 % interval),
    the baseline's and, when the levers moved, your settings' side by side; the numbers
    under each stage's name ("118 → 192"), clear of the intervals' whiskers."""
    fig = go.Figure()
    series = [("baseline", base, BASELINE_COLOUR)]
    if current is not None:
        series.append(("your settings", current, CURRENT_COLOUR))
    top, means = 1.0, []
    for name, summary, colour in series:
        est = [summary[f"funnel.{s}.reached"] for s in stages]
        mean = np.array([e.mean for e in est])
        high = np.nan_to_num(np.array([e.high for e in est]) - mean)
        low = np.nan_to_num(mean - np.array([e.low for e in est]))
        top, means = max(top, float(np.nanmax(mean + high))), [*means, mean]
        fig.add_trace(go.Bar(
            y=list(stages), x=mean, orientation="h", name=name, marker_color=colour,
            error_x={"type": "data", "symmetric": False, "array": high, "arrayminus": low,
                     "color": "#444", "thickness": 1},
            hovertemplate="%{y}: %{x:,.0f}<extra>" + name + "</extra>"))
    numbers = [" → ".join(f"{m[i]:,.0f}" for m in means) for i in range(len(stages))]
    fig.update_layout(
        barmode="group", height=360, bargap=0.25, bargroupgap=0.05,
        margin={"l": 8, "r": 8, "t": 36, "b": 8},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        plot_bgcolor="white", font={"size": 13},
        uirevision="funnel")
    fig.update_xaxes(range=[0, top * 1.05], showgrid=True, gridcolor="#eee", tickformat=",~s",
                     title=None)
    fig.update_yaxes(autorange="reversed", automargin=True, tickvals=list(stages),
                     ticktext=[f"{s}<br><span style='font-size:11px;color:#57606a'>{n}</span>"
                               for s, n in zip(stages, numbers, strict=True)])
    return fig


def _stage_colours(states: Sequence[str]) -> list[str]:
    bought = list(states).index("purchase") if "purchase" in states else len(states)
    prospects = ["#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]
    customers = ["#74c476", "#41ab5d", "#238b45", "#006d2c"]
    return [prospects[min(i, len(prospects) - 1)] if i < bought
            else customers[min(i - bought, len(customers) - 1)] for i in range(len(states))]


MARKET_PARTS = (("not yet aware", "#d9d9d9"), ("prospects", "#4292c6"),
                ("customers", "#238b45"), ("churned", "#fd8d3c"), ("lost", "#737373"))
SPEEDS = (("slow", 450), ("normal", 150), ("fast", 50))  # milliseconds per frame


def _market_parts(daily: pd.DataFrame, states: Sequence[str], market_size: int
                  ) -> np.ndarray:
    """Per day: not yet aware, prospects, customers, churned, lost (people)."""
    bought = list(states).index("purchase") if "purchase" in states else len(states)
    live = [s for s in states if s not in ("churned", "lost")]
    prospects = sum(daily[f"in_{s}"].to_numpy() for s in live[:bought])
    customers = sum(daily[f"in_{s}"].to_numpy() for s in live[bought:])
    churned, lost = daily["in_churned"].to_numpy(), daily["in_lost"].to_numpy()
    aware = prospects + customers + churned + lost
    return np.column_stack([np.maximum(market_size - aware, 0), prospects, customers, churned,
                            lost])


def _frame_days(n_days: int, every_days: int) -> list[int]:
    days = list(range(0, n_days, every_days))
    return days if days[-1] == n_days - 1 else [*days, n_days - 1]


def journey_animation(daily: pd.DataFrame, states: Sequence[str], market_size: int,
                      every_days: int = 7) -> go.Figure:
    """One replication's population moving through the stages: the people in each stage
    of the journey, and the whole market split into not yet aware, prospects, customers,
    churned and lost, at the end of every ``every_days``-th day, as Plotly animation frames
    with play (at three speeds), pause and a slider.

    ``daily`` is one replication's daily table (``ExperimentResult.daily``: ``in_<state>``,
    the people in each state at the end of the day), ``states`` the engine's states.
    """
    daily = daily.sort_values("day").reset_index(drop=True)
    live = [s for s in states if s not in ("churned", "lost")]
    counts = np.column_stack([daily[f"in_{s}"].to_numpy() for s in live])
    parts = _market_parts(daily, states, market_size)
    days = _frame_days(len(daily), every_days)
    horizon = int(daily["day"].iloc[-1]) + 1
    labels = [s.replace("_", " ") for s in live]

    def traces(i: int) -> list[go.Bar]:
        return [go.Bar(x=counts[i], y=labels, orientation="h", marker_color=_stage_colours(live),
                       text=[f"{c:,.0f}" for c in counts[i]], textposition="outside",
                       cliponaxis=False, hovertemplate="%{y}: %{x:,}<extra></extra>"),
                go.Bar(x=parts[i], y=[name for name, _ in MARKET_PARTS], orientation="h",
                       marker_color=[colour for _, colour in MARKET_PARTS],
                       text=[f"{c:,.0f}" for c in parts[i]], textposition="outside",
                       cliponaxis=False, hovertemplate="%{y}: %{x:,}<extra></extra>")]

    def title(i: int) -> str:
        day = int(daily["day"].iloc[i])
        return (f"Day {day + 1} of {horizon}<br><span style='font-size:13px'>"
                f"{market_size - parts[i, 0]:,.0f} aware so far, {parts[i, 2]:,.0f} customers"
                "</span>")

    fig = make_subplots(rows=2, cols=1, row_heights=[len(live), len(MARKET_PARTS)],
                        vertical_spacing=0.14,
                        subplot_titles=("People in each stage of the journey",
                                        f"The whole market ({market_size:,} people)"))
    for row, trace in enumerate(traces(days[0]), start=1):
        fig.add_trace(trace, row=row, col=1)
    fig.frames = [go.Frame(data=traces(i), traces=[0, 1], name=str(i),
                           layout={"title": {"text": title(i)}}) for i in days]

    def play(ms: int) -> dict[str, Any]:
        return {"frame": {"duration": ms, "redraw": True}, "fromcurrent": True,
                "transition": {"duration": min(ms, 120)}, "mode": "immediate"}

    speeds = dict(SPEEDS)
    buttons = [{"label": "▶ play", "method": "animate", "args": [None, play(speeds["normal"])]},
               {"label": "❚❚", "method": "animate",
                "args": [[None], {"frame": {"duration": 0, "redraw": False},
                                  "mode": "immediate", "transition": {"duration": 0}}]},
               *({"label": f"▶ {name}", "method": "animate", "args": [None, play(ms)]}
                 for name, ms in SPEEDS if name != "normal")]
    steps = [{"method": "animate", "label": f"{int(daily['day'].iloc[i]) + 1}"
              if n % 13 == 0 or n == len(days) - 1 else "",
              "args": [[str(i)], {"mode": "immediate", "frame": {"duration": 0,
                                                                  "redraw": True},
                                  "transition": {"duration": 0}}]}
             for n, i in enumerate(days)]
    fig.update_layout(
        height=600, plot_bgcolor="white", font={"size": 13}, showlegend=False,
        title={"text": title(days[0]), "x": 0, "xanchor": "left", "font": {"size": 15},
               "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 12}},
        margin={"l": 8, "r": 16, "t": 84, "b": 120},
        updatemenus=[{"type": "buttons", "direction": "left", "showactive": False,
                      "font": {"size": 12}, "x": 0, "xanchor": "left", "y": -0.08,
                      "yanchor": "top",
                      "pad": {"t": 0, "r": 4}, "buttons": buttons}],
        sliders=[{"active": 0, "steps": steps, "x": 0, "len": 1, "y": -0.16,
                  "yanchor": "top", "pad": {"t": 10, "b": 0},
                  "currentvalue": {"visible": False}, "transition": {"duration": 0}}])
    fig.update_xaxes(range=[0, max(1.0, counts.max()) * 1.2], gridcolor="#eee",
                     tickformat=",~s", row=1, col=1)
    fig.update_xaxes(range=[0, market_size * 1.2], tickformat=",~s", gridcolor="#eee",
                     row=2, col=1)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig


# ---------------------------------------------------------------- the callbacks' bodies
@dataclass
class View:
    """What one update shows: the funnel, the metric cards, an error (None: none) and the
    line saying what ran and how long it took."""

    figure: go.Figure | None
    cards: list[html.Div] | None
    error: str | None
    info: str
    summary: str = ""  # conversion and NPV in one line
    rows: list[MetricRow] = field(default_factory=list)  # the numbers behind the cards
    command: str = ""  # the same run from the command line


class Explorer:
    """The callbacks' bodies: plain methods of the controls' values.

    Every run goes through ``backend`` with ``settings``' overrides; runs are serialised
    (Hydra's composition is global state, and two runs at once on a small machine would
    each take twice as long). The baseline of each (journey, scenario) is run once and
    kept: an update runs your settings only.
    """

    def __init__(self, backend: Backend, settings: Settings = Settings()) -> None:
        self.backend, self.settings = backend, settings
        self.journeys, self.scenarios = backend.journeys(), backend.scenarios()
        cfg = backend.config(settings.overrides())
        self.journey = str(cfg["journey"]["name"])
        self.scenario = "baseline"
        self.levers = levers_for(cfg)
        self._lock = threading.RLock()
        self._configs: dict[tuple[str, str], dict[str, Any]] = {}
        self._baselines: dict[tuple[str, str], ExperimentResult] = {}
        self._baseline_seconds: dict[tuple[str, str], float] = {}

    # the configs and the baselines
    def base_overrides(self, journey: str, scenario: str) -> list[str]:
        return [f"journey={journey}", f"scenario={scenario}", *self.settings.overrides()]

    def config(self, journey: str, scenario: str) -> dict[str, Any]:
        with self._lock:
            key = (journey, scenario)
            if key not in self._configs:
                self._configs[key] = self.backend.config(self.base_overrides(journey, scenario))
            return self._configs[key]

    def defaults(self, journey: str, scenario: str) -> dict[str, Any]:
        """Each lever's value in the journey and scenario, before any change."""
        cfg = self.config(journey, scenario)
        return {lever.key: lookup(cfg, lever.key) for lever in self.levers}

    def description(self, journey: str, scenario: str) -> str:
        s = self.config(journey, scenario)["scenario"]
        return str(s.get("description") or "")

    def baseline(self, journey: str, scenario: str) -> ExperimentResult:
        with self._lock:
            key = (journey, scenario)
            if key not in self._baselines:
                start = time.perf_counter()
                self._baselines[key] = self.backend.run(self.base_overrides(journey, scenario))
                self._baseline_seconds[key] = time.perf_counter() - start
            return self._baselines[key]

    def overrides(self, journey: str, scenario: str, values: Mapping[str, Any]) -> list[str]:
        """Your settings: the baseline's overrides and the levers that moved."""
        changed = lever_overrides(self.levers, values, self.defaults(journey, scenario))
        return [*self.base_overrides(journey, scenario), *changed]

    # the what-if tab
    def update(self, journey: str, scenario: str, values: Mapping[str, Any]) -> View:
        """The funnel and the headline metrics of your settings against the baseline.

        A value the config's validation refuses (a negative spend, no checkout page)
        gives a ``View`` with its message and no figure; nothing raises.
        """
        start = time.perf_counter()
        try:
            with self._lock:
                base_ov = self.base_overrides(journey, scenario)
                ov = self.overrides(journey, scenario, values)
                base = self.baseline(journey, scenario)
                current = self.backend.run(ov) if ov != base_ov else None
        except InputError as err:
            return View(None, None, str(err), "not updated (see the message): the results "
                        "shown are those of the last valid values")
        # the time of this update's runs; with nothing to run, that of the baseline's run
        seconds = (time.perf_counter() - start if current is not None
                   else self._baseline_seconds[(journey, scenario)])
        stages = [label for label, _ in base.spec.report]
        rows = compare_metrics(base, current)
        fig = funnel_figure(stages, summarize(base),
                            None if current is None else summarize(current))
        info = describe(base.spec, base.n_replications, seconds)
        command = shlex.join(["python", "-m", "sim", f"journey={journey}",
                              f"scenario={scenario}", *ov[len(base_ov):],
                              *self.settings.shown()])
        return View(fig, metric_cards(rows), None, info, summary_line(rows), rows, command)

    # the class tab
    def animate(self, journey: str, scenario: str, values: Mapping[str, Any],
                every_days: int = 7) -> tuple[go.Figure, str]:
        """One replication of your settings, animated a frame per ``every_days`` days, and
        the line saying what ran (raises ``InputError`` as ``backend.run``)."""
        start = time.perf_counter()
        with self._lock:
            exp = self.backend.run(self.overrides(journey, scenario, values), replications=1)
        daily = exp.daily()
        daily = daily[daily["replication"] == daily["replication"].iloc[0]]
        fig = journey_animation(daily, exp.spec.states, exp.spec.market_size, every_days)
        info = (f"one replication: {describe(exp.spec, 1, time.perf_counter() - start)}; "
                f"a frame every {every_days} days")
        return fig, info

    # the download
    def report(self, journey: str, scenario: str, values: Mapping[str, Any]
               ) -> tuple[str, bytes]:
        """Run your settings and return their report: (file name, content)."""
        with self._lock:
            return self.backend.report(self.overrides(journey, scenario, values))


# --------------------------------------------------------------------------------- page
CSS = """
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1b1f24; background: #f6f7f9; }
header { padding: 12px 20px; background: #fff; border-bottom: 1px solid #dde1e6; }
header h1 { font-size: 20px; margin: 0 0 4px 0; }
.run-info { font-size: 13px; color: #57606a; }
main { padding: 12px 20px 24px; }
.columns { display: grid; grid-template-columns: minmax(300px, 380px) 1fr; gap: 16px;
           align-items: start; }
.results { position: sticky; top: 8px; min-width: 0; }
.panel { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 12px 14px; }
.controls label.field { display: block; font-size: 13px; font-weight: 600; margin: 8px 0 4px; }
.scenario-description { font-size: 12px; color: #57606a; margin-top: 4px; min-height: 16px; }
details { border-top: 1px solid #eaecef; padding: 6px 0; }
summary { font-weight: 600; cursor: pointer; padding: 4px 0; }
.section-note { font-size: 12px; color: #57606a; margin: 0 0 4px; }
.lever { margin: 6px 0 10px; }
.lever-label { font-size: 13px; display: flex; justify-content: space-between; gap: 8px; }
.lever-key { font-size: 11px; color: #8b949e; font-family: ui-monospace, monospace; }
.lever-row { display: grid; grid-template-columns: 1fr 84px; gap: 10px; align-items: center; }
.lever-row input[type=number] { width: 84px; padding: 4px 6px; font-size: 14px;
                                border: 1px solid #c9d1d9; border-radius: 4px; }
.lever-row .dash-slider, .lever-row .rc-slider { min-width: 0; }
.switch label { margin-right: 14px; font-size: 14px; }
.alert { background: #fff1f0; border: 1px solid #f5b5ae; color: #82071e; border-radius: 6px;
         padding: 10px 12px; margin-bottom: 12px; white-space: pre-wrap; font-size: 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
         gap: 10px; margin-bottom: 12px; }
.card { background: #fff; border: 1px solid #dde1e6; border-left: 5px solid #9aa5b1;
        border-radius: 6px; padding: 8px 10px; }
.card.better { border-left-color: #1a7f37; } .card.worse { border-left-color: #cf222e; }
.card-label { font-size: 13px; font-weight: 600; }
.card-value { font-size: 22px; font-weight: 650; margin: 2px 0; }
.card-interval, .card-baseline, .card-change { font-size: 12px; color: #57606a; }
.card.better .card-change { color: #1a7f37; } .card.worse .card-change { color: #cf222e; }
.panel-title { font-size: 16px; margin: 0 0 4px; }
.stale { opacity: 0.4; }
code.command { font-size: 12px; overflow-wrap: anywhere; background: #eef1f4;
               padding: 1px 4px; border-radius: 3px; }
.summary-strip { display: none; }
.note { font-size: 12px; color: #57606a; margin: 8px 0; }
.actions { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 8px 0; }
button.action { background: #1f6feb; color: #fff; border: 0; border-radius: 6px;
                padding: 8px 14px; font-size: 14px; cursor: pointer; }
button.secondary { background: #fff; color: #1f6feb; border: 1px solid #1f6feb; }
.status { font-size: 13px; color: #57606a; }
@media (max-width: 800px) {
  .columns { grid-template-columns: 1fr; }
  .results { position: static; order: -1; }  /* the answer first, the levers below */
  .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  /* the levers sit below the results: conversion and NPV stay in sight while they move */
  .summary-strip { display: block; position: sticky; bottom: 0; z-index: 5; margin: 0 -8px;
                   background: #0d2a4f; color: #fff; font-size: 13px; padding: 8px 12px; }
  main { padding: 8px 8px 20px; }
  header { padding: 10px 12px; }
}
"""

INDEX = """<!DOCTYPE html>
<html lang="en">
<head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}
<style>""" + CSS + """</style>
<script>
// plotly.js rejects the promise of an animation that pause (or another play) interrupts,
// with no reason, and nothing catches it in its own play buttons: an uncaught "undefined"
// in the console on every pause. That rejection alone is expected; others still show.
window.addEventListener("unhandledrejection", function (event) {
  if (event.reason === undefined) { event.preventDefault(); }
});
</script></head>
<body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body>
</html>"""


def _lever_control(lever: Lever, value: Any) -> html.Div:
    dom = "lever-" + lever.key.replace(".", "-").replace("_", "-")
    label = html.Div(className="lever-label", children=[
        html.Span(lever.label, title=lever.note or None),
        html.Span(lever.key, className="lever-key")])
    if lever.kind == "switch":
        control = dcc.RadioItems(id={"type": "lever", "key": lever.key}, value=bool(value),
                                 options=[{"label": "yes", "value": True},
                                          {"label": "no", "value": False}],
                                 inline=True, className="switch")
        return html.Div(id=dom, className="lever", children=[label, control])
    slider = dcc.Slider(id={"type": "slider", "key": lever.key}, min=lever.low,
                        max=lever.high, step=lever.step, value=value, marks=None,
                        allow_direct_input=False, updatemode="mouseup")
    # no min or max on the box: a typed value goes to the config's validation as it is
    box = dcc.Input(id={"type": "lever", "key": lever.key}, type="number", value=value,
                    debounce=0.6, step="any", inputMode="decimal", name=lever.key)
    return html.Div(id=dom, className="lever",
                    children=[label, html.Div(className="lever-row", children=[slider, box])])


def _controls(explorer: Explorer) -> html.Div:
    defaults = explorer.defaults(explorer.journey, explorer.scenario)
    sections: dict[str, list[Lever]] = {}
    for lever in explorer.levers:
        sections.setdefault(lever.section, []).append(lever)
    parts: list[Any] = [
        html.Label("Journey", className="field", htmlFor="journey"),
        dcc.Dropdown(id="journey", value=explorer.journey, clearable=False,
                     options=[{"label": j.replace("_", " "), "value": j}
                              for j in explorer.journeys]),
        html.Label("Scenario", className="field", htmlFor="scenario"),
        dcc.Dropdown(id="scenario", value=explorer.scenario, clearable=False,
                     options=[{"label": s.replace("_", " "), "value": s}
                              for s in explorer.scenarios]),
        html.Div(explorer.description(explorer.journey, explorer.scenario),
                 id="scenario-description", className="scenario-description"),
    ]
    for n, (title, levers) in enumerate(sections.items()):
        note = SECTION_NOTES.get(title)
        parts.append(html.Details(open=n < 2, children=[
            html.Summary(title),
            *([html.P(note, className="section-note")] if note else []),
            *(_lever_control(lever, defaults[lever.key]) for lever in levers)]))
    parts.append(html.Div(className="actions", children=[
        html.Button("Back to the scenario's values", id="reset", n_clicks=0,
                    className="action secondary")]))
    return html.Div(className="panel controls", children=parts)


def _whatif(explorer: Explorer) -> html.Div:
    results = html.Div(className="results", children=[
        html.Div(id="alert", className="alert", role="alert", hidden=True),
        dcc.Loading(type="dot", delay_show=400, overlay_style={"visibility": "visible",
                                                                "opacity": 0.55},
                    children=html.Div(id="result-body", children=[
                        html.Div(id="cards", className="cards"),
                        html.Div(className="panel", children=[
                            html.Div("The funnel: people reaching each stage",
                                     className="card-label"),
                            dcc.Graph(id="funnel", config={"displaylogo": False,
                                                           "responsive": True},
                                      style={"height": "360px"})])])),
        html.P(NOISE_NOTE, className="note"),
        html.P(className="note", children=["The same run from the command line: ",
                                           html.Code(id="command", className="command")]),
        html.Div(className="actions", children=[
            html.Button("Download report", id="download-button", n_clicks=0,
                        className="action"),
            dcc.Loading(type="dot", children=html.Span(id="download-status",
                                                       className="status")),
            dcc.Download(id="download")]),
    ])
    strip = html.Div(id="summary-strip", className="summary-strip", role="status")
    return html.Div(className="columns", children=[_controls(explorer), results, strip])


def _classroom() -> html.Div:
    return html.Div(className="panel", children=[
        html.H2("The journey over time", className="panel-title"),
        html.P("One replication of the journey and scenario with the levers as set on the "
               "first tab, played week by week: who is where in the journey, and how the "
               "whole market moves from not yet aware to customers, churned and lost. Play "
               "(slow, normal or fast), pause (❚❚), or drag the slider to a day.",
               className="note"),
        html.Div(className="actions", children=[
            html.Button("Run one replication and animate", id="animate-button", n_clicks=0,
                        className="action"),
            dcc.Loading(type="dot", children=html.Span(id="animation-info",
                                                       className="status"))]),
        html.Div(id="animation-alert", className="alert", role="alert", hidden=True),
        dcc.Graph(id="animation", config={"displayModeBar": False, "responsive": True},
                  style={"height": "600px"}, figure=_empty("Press the button to run")),
    ])


def _empty(text: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#57606a"})
    fig.update_layout(xaxis_visible=False, yaxis_visible=False, plot_bgcolor="white",
                      margin={"l": 8, "r": 8, "t": 8, "b": 8})
    return fig


def layout(explorer: Explorer) -> html.Div:
    return html.Div([
        html.Header([html.H1("journey-sim explorer"),
                     html.Div(id="run-info", className="run-info",
                              children="running the baseline ...")]),
        html.Main(dcc.Tabs(id="tabs", value="whatif", mobile_breakpoint=0, children=[
            dcc.Tab(label="What if", value="whatif", children=_whatif(explorer)),
            dcc.Tab(label="Class mode", value="classroom",
                    children=_classroom())])),
    ])


def _values(ids: Sequence[Mapping[str, str]], values: Sequence[Any]) -> dict[str, Any]:
    return {i["key"]: v for i, v in zip(ids, values, strict=True)}


def _unexpected(err: Exception) -> str:
    log.exception("the explorer's callback failed")
    return f"unexpected error ({type(err).__name__}): {err}"


LEVER_IDS = State({"type": "lever", "key": ALL}, "id")


def _register_whatif(app: Dash, explorer: Explorer) -> None:
    """The levers kept in step, and the update of the results."""
    levers = {lever.key: lever for lever in explorer.levers}
    lever_values, lever_ids = Input({"type": "lever", "key": ALL}, "value"), LEVER_IDS

    @app.callback(
        Output({"type": "slider", "key": ALL}, "value"),
        Output({"type": "lever", "key": ALL}, "value"),
        Output("scenario-description", "children"),
        Input("journey", "value"), Input("scenario", "value"), Input("reset", "n_clicks"),
        Input({"type": "slider", "key": ALL}, "value"), lever_values,
        State({"type": "slider", "key": ALL}, "id"), lever_ids)
    def sync(journey, scenario, _reset, sliders, values, slider_ids, ids):
        """A slider moved: its box follows; a number typed: the slider follows when the
        number is in its range; the journey or scenario changed (or reset): both take the
        values of the journey and scenario."""
        trigger = ctx.triggered_id
        keys = [i["key"] for i in ids]
        if isinstance(trigger, dict) and trigger["type"] == "slider":
            moved = dict(zip([i["key"] for i in slider_ids], sliders, strict=True))
            key = trigger["key"]
            return ([no_update] * len(sliders),
                    [moved[key] if k == key else no_update for k in keys], no_update)
        if isinstance(trigger, dict):  # a number typed into a box
            typed = _values(ids, values)[trigger["key"]]
            lever = levers[trigger["key"]]
            fits = isinstance(typed, int | float) and lever.low <= typed <= lever.high
            return ([typed if i["key"] == trigger["key"] and fits else no_update
                     for i in slider_ids], [no_update] * len(values), no_update)
        try:
            defaults = explorer.defaults(journey, scenario)
            text = explorer.description(journey, scenario)
        except InputError as err:
            return [no_update] * len(sliders), [no_update] * len(values), str(err)
        return ([defaults[i["key"]] for i in slider_ids],
                [defaults[k] if not _same(v, defaults[k]) else no_update
                 for k, v in zip(keys, values, strict=True)], text)

    @app.callback(
        Output("funnel", "figure"), Output("cards", "children"), Output("alert", "children"),
        Output("alert", "hidden"), Output("run-info", "children"),
        Output("result-body", "className"), Output("summary-strip", "children"),
        Output("command", "children"),
        Input("journey", "value"), Input("scenario", "value"), lever_values, lever_ids)
    def update(journey, scenario, values, ids):
        stale = "not updated: see the message above the results"
        try:
            view = explorer.update(journey, scenario, _values(ids, values))
        except Exception as err:  # the page shows one line, the log the rest
            return (no_update, no_update, _unexpected(err), False, no_update, "stale", stale,
                    no_update)
        if view.error is not None:  # the last valid results stay, dimmed
            return (no_update, no_update, view.error, False, view.info, "stale", stale,
                    no_update)
        return (view.figure, view.cards, "", True, view.info, "", view.summary,
                view.command)


def _register_actions(app: Dash, explorer: Explorer) -> None:
    """The buttons: download the report, run and animate one replication."""
    lever_ids = LEVER_IDS

    @app.callback(
        Output("download", "data"), Output("download-status", "children"),
        Input("download-button", "n_clicks"), State("journey", "value"),
        State("scenario", "value"), State({"type": "lever", "key": ALL}, "value"), lever_ids,
        prevent_initial_call=True)
    def download(_clicks, journey, scenario, values, ids):
        try:
            name, content = explorer.report(journey, scenario, _values(ids, values))
        except InputError as err:
            return no_update, f"no report: {err}"
        except Exception as err:
            return no_update, _unexpected(err)
        return dcc.send_bytes(content, name), f"downloaded {name}"

    @app.callback(
        Output("animation", "figure"), Output("animation-info", "children"),
        Output("animation-alert", "children"), Output("animation-alert", "hidden"),
        Input("animate-button", "n_clicks"), State("journey", "value"),
        State("scenario", "value"), State({"type": "lever", "key": ALL}, "value"), lever_ids,
        prevent_initial_call=True)
    def animate(_clicks, journey, scenario, values, ids):
        try:
            fig, info = explorer.animate(journey, scenario, _values(ids, values))
        except InputError as err:
            return no_update, "", str(err), False
        except Exception as err:
            return no_update, "", _unexpected(err), False
        return fig, info, "", True


def create_app(explorer: Explorer) -> Dash:
    """The Dash app of ``explorer`` (its Flask server is ``app.server``)."""
    app = Dash(__name__, title="journey-sim explorer", update_title=None,
               serve_locally=True)
    app.index_string = INDEX
    app.layout = layout(explorer)
    _register_whatif(app, explorer)
    _register_actions(app, explorer)
    return app


def serve(app: Dash, host: str = "127.0.0.1", port: int = 0,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` on ``host``:``port`` (0: a free port) until interrupted; ``ready`` is
    called with the page's address once the port is listening.

    Raises
    ------
    OSError : the port is taken, or ``host`` is not an address of this machine.
    """
    import socket

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    # bound here, so that a port in use is an OSError (werkzeug would exit the process)
    sock = socket.create_server((host, port), family=family)
    try:
        server = make_server(host, sock.getsockname()[1], app.server, threaded=True,
                             fd=sock.fileno())
        try:
            if ready is not None:
                shown = f"[{host}]" if ":" in host else host
                ready(f"http://{shown}:{server.port}/")
            server.serve_forever()
        finally:
            server.server_close()
    finally:
        sock.close()

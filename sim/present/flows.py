"""The journey's flows as an interactive Sankey: a Plotly figure as a plain dict, ready for
``json.dumps`` and ``Plotly.newPlot`` in ``report.html`` (no plotly import here: the report
embeds plotly.js itself). The static figure is ``sim.present.figures.plot_flows``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sim.errors import InputError
from sim.measure.flows import EXIT_STATES, START, flow_nodes, state_order

__all__ = ["SANKEY_COLOURS", "sankey_spec"]

# as the static figure's (sim.present.figures.FLOW_COLOURS): stages blue, a customer's
# states green, lost grey, churned red, steps back orange
SANKEY_COLOURS = {"stage": (59, 110, 165), "customer": (46, 139, 87), "lost": (140, 140, 140),
                  "churned": (176, 58, 46), "back": (224, 123, 0)}
_CUSTOMER_STATES = ("purchase", "retention", "advocacy")
_NEEDED = ("source", "target", "kind", "count")


def _role(state: str) -> str:
    if state in EXIT_STATES:
        return state
    return "customer" if state in _CUSTOMER_STATES else "stage"


def _rgba(role: str, alpha: float = 1.0) -> str:
    r, g, b = SANKEY_COLOURS[role]
    return f"rgba({r},{g},{b},{alpha:g})"


def _count(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 or x == round(x) else f"{x:.1f}"


def _share(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.0%}" if x >= 0.095 or x == 0 else f"{x:.1%}"


def sankey_spec(table: pd.DataFrame, title: str | None = None) -> dict[str, Any]:
    """The flows of a run as a Plotly Sankey: ``{"data": [{"type": "sankey", ...}],
    "layout": {...}}``, plain Python values only (str, float, int, bool, lists, dicts; no
    NaN), so ``json.dumps`` writes it and ``Plotly.newPlot(div, data, layout)`` draws it.

    Contract: ``table`` is a flows table as ``flows.csv`` holds it (read back with
    ``pd.read_csv``) or ``Run.flows()`` returns it: the columns ``source``, ``target``,
    ``kind`` and ``count`` are needed, others are ignored; a table split ``by`` a group
    (a ``segment`` or ``channel`` column) is summed over its groups. One node per state
    (the journey's order; coloured: stages blue, a customer's states green, lost grey,
    churned red), one link per source and target: ``enter`` moves (from ``start``) are the
    aware, the base of every share, and are not drawn; loops (a stage visited again) are
    not links (a Sankey cannot draw a node to itself) but are counted in the node's hover;
    steps back are orange links. Hovering a node shows the customers who reached it, their
    share of the aware, its entries, repeat visits and those there at the horizon; a link
    shows its moves per replication and their share of the aware. A table from first-entry
    times (``from_first_entries`` true) says so in the title. An empty table (nobody
    aware) gives a Sankey without nodes and a note.

    Raises
    ------
    InputError : a needed column is missing.
    """
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise InputError(f"flows table: no column {', '.join(missing)} (needs "
                         f"{', '.join(_NEEDED)}, as flows.csv)")
    t = table.groupby(["source", "target", "kind"], sort=False)["count"].sum().reset_index()
    t = t[t["count"] > 0]
    first_entries = bool(table["from_first_entries"].astype(bool).any()
                         if "from_first_entries" in table.columns and len(table) else False)
    heading = title or "Journey flows (mean per replication)"
    if first_entries:
        heading += ": from first-entry times, without repeat visits or steps back"
    layout: dict[str, Any] = {"title": {"text": heading, "font": {"size": 14}},
                              "font": {"size": 12}, "height": 520,
                              "margin": {"l": 20, "r": 20, "t": 50, "b": 20}}
    aware = float(t.loc[t["kind"] == "enter", "count"].sum())
    if not aware > 0:
        layout["annotations"] = [{"text": "nothing to show: nobody became aware",
                                  "showarrow": False, "x": 0.5, "y": 0.5,
                                  "xref": "paper", "yref": "paper"}]
        return {"data": [{"type": "sankey", "node": {"label": []},
                          "link": {"source": [], "target": [], "value": []}}],
                "layout": layout}
    nodes = flow_nodes(t).set_index("state")
    states = [s for s in state_order(t) if s != START]
    index = {s: i for i, s in enumerate(states)}
    node_text = []
    for s in states:
        n = nodes.loc[s]
        lines = [f"<b>{s}</b>", f"reached by {_count(n['customers'])} customers "
                 f"({_share(n['customers'] / aware)} of the aware)"]
        if s not in EXIT_STATES:
            lines.append(f"entries: {_count(n['entries'])}"
                         + (f", of which {_count(n['loops'])} repeat visits"
                            if n["loops"] > 0 else ""))
            lines.append(f"there at the horizon: {_count(n['at_horizon'])}")
        node_text.append("<br>".join(lines))
    links = t[(t["kind"] != "enter") & (t["kind"] != "loop")]
    pairs = links.groupby(["source", "target"], sort=False)
    link: dict[str, list] = {"source": [], "target": [], "value": [], "color": [],
                             "customdata": []}
    for (source, target), rows in pairs:
        count = float(rows["count"].sum())
        kinds = dict(zip(rows["kind"], rows["count"], strict=True))
        back = "back" in kinds
        role = "back" if back else _role(target)
        what = ("steps back" if back else "leaving" if target in EXIT_STATES
                else "moves forward")
        text = (f"{source} \u2192 {target}: {_count(count)} {what} "
                f"({_share(count / aware)} of the aware)")
        if kinds.get("return", 0) > 0:
            text += f"<br>of which {_count(kinds['return'])} again after a step back"
        link["source"].append(index[source])
        link["target"].append(index[target])
        link["value"].append(round(count, 6))
        link["color"].append(_rgba(role, 0.65 if back else 0.35))
        link["customdata"].append(text)
    x, y = _positions(states)
    trace = {
        "type": "sankey",
        "arrangement": "snap",
        "valueformat": ",.1f",
        "node": {
            "label": [f"{s} {_count(nodes.loc[s, 'customers'])} "
                      f"({_share(nodes.loc[s, 'customers'] / aware)})" for s in states],
            "color": [_rgba(_role(s)) for s in states],
            "x": x,
            "y": y,
            "customdata": node_text,
            "hovertemplate": "%{customdata}<extra></extra>",
            "pad": 18,
            "thickness": 16,
            "line": {"width": 0},
        },
        "link": {**link, "hovertemplate": "%{customdata}<extra></extra>"},
    }
    return {"data": [trace], "layout": layout}


def _positions(states: list[str]) -> tuple[list[float], list[float]]:
    """Where each node starts (Plotly's normalised x and y of its centre; it can be
    dragged): the journey left to right on a row in the upper half (room above it for
    the steps back), lost below the middle of the journey, churned below its end."""
    main = [s for s in states if s not in EXIT_STATES]
    x, y = [], []
    for s in states:
        if s in main:
            x.append(round(0.01 + 0.9 * main.index(s) / max(len(main) - 1, 1), 4))
            y.append(0.35)
        elif s == "lost":
            x.append(0.5)
            y.append(0.88)
        else:
            x.append(0.99)
            y.append(0.88)
    return x, y

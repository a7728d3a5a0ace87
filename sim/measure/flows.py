"""Journey flows: how many customers move from each state to each other, per replication.

A customer's path is the states entered in order (the event log): awareness, the journey's
stages, checkout, purchase, retention, advocacy, and last lost or churned. Every pair of
consecutive entries is a move ``source -> target``; the first entry of each customer is a
move from ``start``. Each move has a ``kind`` (``FLOW_KINDS``):

- ``enter``: the first state a customer entered (from ``start``): awareness;
- ``forward``: into a state the customer had not been in before (the first entry; with
  ``enter`` these count the customers who reached each state, the funnel's ``reached``);
- ``loop``: into the state just left (another visit of the same stage);
- ``back``: into a state already visited, earlier in the journey (a step back);
- ``return``: into a state already visited, later in the journey (forward again after a
  step back);
- ``exit``: into ``lost`` or ``churned``.

Counts are summed over the replications' customers and divided by the number of
replications: the mean count per replication. Moves conserve customers: in every
replication, the moves into a state equal the moves out of it plus the customers who are in
it at the horizon (every lost or churned customer "is in" ``lost`` or ``churned``).

When only the first-entry times are known (``customers.csv``: ``t_<state>``, NaN = never),
``first_entry_flows`` orders each customer's first entries in time: loops, steps back and
returns cannot be seen, and ``from_first_entries`` is true. On a journey without steps back
or loops the two tables are the same.

The installed base's customers (``market.base``) are left out: they did not make the journey
during the run (as the funnel metrics leave them out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.engine import SimulationResult
from sim.errors import InputError
from sim.model.spec import POST_STATES

__all__ = ["BY", "EXIT_STATES", "FLOW_COLUMNS", "FLOW_KINDS", "START", "first_entry_flows",
           "flow_nodes", "journey_flows", "moves", "state_order"]

FLOW_KINDS = ("enter", "forward", "loop", "back", "return", "exit")
ENTER, FORWARD, LOOP, BACK, RETURN, EXIT = range(len(FLOW_KINDS))
EXIT_STATES = ("lost", "churned")
START = "start"  # the source of a customer's first move
BY = ("segment", "channel")  # what flows can be split by: columns of the customers table
FLOW_COLUMNS = ("source", "target", "kind", "count", "share_of_aware", "from_first_entries")


def _check_by(by: str | None) -> None:
    if by is not None and by not in BY:
        raise InputError(f"by={by!r}: flows split by one of {', '.join(BY)}, or None")


def moves(result: SimulationResult) -> dict[str, np.ndarray]:
    """Every move of one replication's new customers, one customer's path after another:
    ``customer``, ``time`` (days, of entering the target), ``source`` (state code, -1 for
    the first entry), ``target`` (state code) and ``kind`` (code into ``FLOW_KINDS``)."""
    ev, c, states = result.events, result.customers, result.states
    customer = np.asarray(ev["customer"], dtype=np.int64)
    keep = ~np.asarray(c["base"], dtype=bool)[customer] if "base" in c else slice(None)
    # both engines append a customer's entries in the order they happen: a stable sort
    # by customer keeps each path in order
    order = np.argsort(customer[keep], kind="stable")
    customer = customer[keep][order]
    target = np.asarray(ev["state"])[keep][order].astype(np.int64)
    time = np.asarray(ev["time"])[keep][order]
    first = np.ones(customer.size, dtype=bool)
    first[1:] = customer[1:] != customer[:-1]
    source = np.where(first, -1, np.roll(target, 1))
    new = np.zeros(customer.size, dtype=bool)  # the customer's first entry of the state
    new[np.unique(customer * len(states) + target, return_index=True)[1]] = True
    exits = np.isin(target, [states.index(s) for s in EXIT_STATES if s in states])
    kind = np.select([first, exits, target == source, new, target < source],
                     [ENTER, EXIT, LOOP, FORWARD, BACK], RETURN).astype(np.int8)
    return {"customer": customer, "time": time, "source": source, "target": target,
            "kind": kind}


def journey_flows(results: Sequence[SimulationResult], by: str | None = None) -> pd.DataFrame:
    """The flows between states from the event logs of ``results`` (the replications of one
    scenario), mean count per replication.

    Parameters
    ----------
    results : the replications (``ExperimentResult.results``).
    by : None, ``"segment"`` or ``"channel"`` (the source of awareness): one set of flows
        per group, in a first column of that name.

    Returns
    -------
    One row per (group,) source, target and kind, in the journey's order: ``source``
    (``START`` for the first entry), ``target``, ``kind`` (``FLOW_KINDS``), ``count`` (mean
    moves per replication, customers), ``share_of_aware`` (``count`` over the customers who
    became aware, of the group) and ``from_first_entries`` (false: from the event log).
    """
    _check_by(by)
    if not results:
        raise InputError("results: flows need at least one replication")
    r0 = results[0]
    states = list(r0.states)
    counts = _Counts(len(states))
    for r in results:
        m = moves(r)
        group = (np.asarray(r.customers[by], dtype=np.int64)[m["customer"]] if by
                 else np.zeros(m["customer"].size, dtype=np.int64))
        counts.add(group, m["source"], m["target"], m["kind"])
    groups = list(getattr(r0, {"segment": "segments", "channel": "channels"}[by])) if by else []
    return counts.table(len(results), states, by, groups, from_first_entries=False)


def first_entry_flows(customers: pd.DataFrame, states: Sequence[str] | None = None,
                      by: str | None = None, replications: int | None = None) -> pd.DataFrame:
    """The flows from each customer's first-entry times alone (``customers.csv``), when the
    event log is not at hand: each customer's states ordered by the time first entered
    (ties in the journey's order), consecutive pairs counted. Without the event log loops,
    steps back and returns are invisible: the table has ``enter``, ``forward`` and ``exit``
    moves only and ``from_first_entries`` true.

    Parameters
    ----------
    customers : the customers table (``Run.customers()`` or ``customers.csv`` read back):
        ``t_<state>`` first-entry times (days, NaN = never), ``replication``, and ``by``'s
        column; rows with ``base`` true are left out.
    states : the states in the journey's order; None: those of the ``t_<state>`` columns in
        their order (``t_aware``, the time of becoming aware, is not a state).
    by : None, ``"segment"`` or ``"channel"``.
    replications : replications the table covers; None: the distinct ``replication`` values
        (1 without that column).

    Returns
    -------
    The columns of ``journey_flows``.
    """
    _check_by(by)
    if states is None:
        states = [c[2:] for c in customers.columns if c.startswith("t_") and c != "t_aware"]
    states = list(states)
    missing = [f"t_{s}" for s in states if f"t_{s}" not in customers.columns]
    missing += [by] if by is not None and by not in customers.columns else []
    if missing:
        raise InputError(f"customers: no column {', '.join(missing)}; flows from first entries "
                         "need the first-entry time of every state (customers.csv)")
    if "base" in customers.columns:
        customers = customers[~customers["base"].astype(bool)]
    if replications is None:
        replications = (int(customers["replication"].nunique())
                        if "replication" in customers.columns else 1)
    groups: list[str] = []
    group = np.zeros(len(customers), dtype=np.int64)
    if by is not None:
        values = customers[by]
        groups = (list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype)
                  else list(pd.unique(values.dropna().astype(str))))
        group = pd.Categorical(values.astype(str).where(values.notna()),
                               categories=[str(g) for g in groups]).codes
        customers, group = customers[group >= 0], group[group >= 0]  # no group: left out
    times = customers[[f"t_{s}" for s in states]].to_numpy(dtype=float)
    # NaN sorts last; a stable sort breaks ties of time in the journey's order (a referred
    # prospect becomes aware and enters the entry stage at one instant)
    order = np.argsort(times, axis=1, kind="stable")
    n_entered = (~np.isnan(times)).sum(axis=1)
    exit_codes = [states.index(s) for s in EXIT_STATES if s in states]
    counts = _Counts(len(states))
    for k in range(times.shape[1]):
        sel = n_entered > k
        target = order[sel, k]
        source = order[sel, k - 1] if k else np.full(target.size, -1)
        kind = np.where(k == 0, ENTER, np.where(np.isin(target, exit_codes), EXIT, FORWARD))
        counts.add(group[sel], source, target, kind)
    return counts.table(max(replications, 1), states, by, groups, from_first_entries=True)


class _Counts:
    """Moves counted by group, source, target and kind, one replication's at a time (the
    moves of a large run are never held all at once): each move one integer key."""

    def __init__(self, n_states: int) -> None:
        self.n_states = n_states
        self.counts: dict[int, int] = {}

    def add(self, group: np.ndarray, source: np.ndarray, target: np.ndarray,
            kind: np.ndarray) -> None:
        n, k = self.n_states, len(FLOW_KINDS)
        key = ((np.asarray(group, np.int64) * (n + 1) + np.asarray(source, np.int64) + 1) * n
               + np.asarray(target, np.int64)) * k + np.asarray(kind, np.int64)
        for value, count in zip(*np.unique(key, return_counts=True), strict=True):
            self.counts[int(value)] = self.counts.get(int(value), 0) + int(count)

    def table(self, n_replications: int, states: list[str], by: str | None,
              groups: list[str], from_first_entries: bool) -> pd.DataFrame:
        """The counts as mean per replication, sorted by group, source, target, kind."""
        n, k = self.n_states, len(FLOW_KINDS)
        key = np.array(sorted(self.counts), dtype=np.int64)
        count = np.array([self.counts[x] for x in key], dtype=float) / n_replications
        kind, key = key % k, key // k
        target, key = key % n, key // n
        source, group = key % (n + 1) - 1, key // (n + 1)
        enter = kind == ENTER
        aware = np.bincount(group[enter], weights=count[enter], minlength=max(len(groups), 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = count / aware[group]
        names = np.array([*states, START], dtype=object)  # code -1 is START
        out = pd.DataFrame({
            "source": names[source],
            "target": names[target],
            "kind": np.array(FLOW_KINDS, dtype=object)[kind],
            "count": count,
            "share_of_aware": share,
            "from_first_entries": np.full(key.size, from_first_entries),
        })
        if by is not None:
            out.insert(0, by, np.array(groups, dtype=object)[group])
        return out


def state_order(table: pd.DataFrame) -> list[str]:
    """The states of a flows table in the journey's order: the journey's stages (in the
    order the table first leaves them, which is the journey's), then checkout, purchase,
    retention, advocacy, and last the exits, lost then churned."""
    names = [s for s in dict.fromkeys([*table["source"], *table["target"]]) if s != START]
    rank = {s: i for i, s in enumerate((*[p for p in POST_STATES if p not in EXIT_STATES],
                                        *EXIT_STATES))}
    return sorted(names, key=lambda s: rank.get(s, -1) + 1)  # stable: stages keep their order


def flow_nodes(table: pd.DataFrame) -> pd.DataFrame:
    """Per state of a flows table (summed over its groups, if split ``by``), in the
    journey's order (``state_order``): ``customers`` who reached it (``enter``, ``forward``
    and ``exit`` moves into it: first entries), ``share_of_aware`` of them, ``entries``
    (every move into it, loops included), ``leaving`` (every move out of it), ``loops`` and
    ``at_horizon`` = entries - leaving (customers in it at the horizon), all means per
    replication."""
    t = table.groupby(["source", "target", "kind"], sort=False)["count"].sum().reset_index()
    states = state_order(table)
    into = t.groupby("target")["count"].sum()
    out = t.groupby("source")["count"].sum()
    first = t[t["kind"].isin(["enter", "forward", "exit"])].groupby("target")["count"].sum()
    loops = t[t["kind"] == "loop"].groupby("target")["count"].sum()
    aware = float(t.loc[t["kind"] == "enter", "count"].sum())
    nodes = pd.DataFrame(index=pd.Index(states, name="state"))
    nodes["customers"] = first.reindex(states, fill_value=0.0)
    nodes["share_of_aware"] = nodes["customers"] / aware if aware else np.nan
    nodes["entries"] = into.reindex(states, fill_value=0.0)
    nodes["leaving"] = out.reindex(states, fill_value=0.0)
    nodes["loops"] = loops.reindex(states, fill_value=0.0)
    nodes["at_horizon"] = nodes["entries"] - nodes["leaving"]
    return nodes.reset_index()

"""The engines' result type, built from flat event records (no Hydra, no files).

An engine appends what happens to a ``RawRecords`` (awareness, every state entry with the
experience score at that moment, cart abandonments, purchases, referrals, tickets);
``build_result`` turns those lists into columnar arrays and the customers table, vectorised.
The agent engine fills plain lists as events happen; the fast engine hands over arrays
(events as a dict of columns, members as an array of customers, scores as (ids, values)).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from sim.engine.desk import TICKET_OUTCOMES, TicketLog
from sim.model.spec import ModelSpec

__all__ = ["OUTCOMES", "TICKET_OUTCOMES", "RawRecords", "SimulationResult", "build_result"]

# in_journey: still a prospect at the horizon; purchased: a customer still active at the
# horizon; lost / abandoned: left before buying (abandoned: at the checkout); churned:
# bought, then left
OUTCOMES = ("in_journey", "purchased", "lost", "abandoned", "churned")


@dataclass
class RawRecords:
    """What an engine writes while it runs: plain lists, appended in time order."""

    aware_time: list[float] = field(default_factory=list)
    # the installed base's segments; base customer j is recorded as customer -1 - j
    base_segment: list[int] = field(default_factory=list)
    # with a launched scenario: the time it reaches each customer (new, then the base's)
    switch: list[float] = field(default_factory=list)
    base_switch: list[float] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    segment: list[int] = field(default_factory=list)
    order_z: list[float] = field(default_factory=list)
    # every state entry, flat: customer, time, state, experience score, customer, ...
    # (or a dict of those four columns); a customer's entries in time order
    events: list[float] | dict[str, np.ndarray] = field(default_factory=list)
    ab_customer: list[int] = field(default_factory=list)
    ab_time: list[float] = field(default_factory=list)
    purchases: dict[str, list] = field(default_factory=lambda: {
        "customer": [], "time": [], "value": [], "discount": []})
    referrals: dict[str, list] = field(default_factory=lambda: {
        "referrer": [], "customer": [], "time": []})
    members: dict[int, float] | np.ndarray = field(default_factory=dict)  # customer -> enrolment
    # buyer -> latest experience score, or (customers, scores) arrays
    score: dict[int, float] | tuple[np.ndarray, np.ndarray] = field(default_factory=dict)
    # buyer -> (purchase rate per day, drop-out before the experience's shift, expected
    # order value), or (customers, rates, drop-outs, values) arrays: what the residual
    # value at the horizon reads
    traits: dict[int, tuple[float, float, float]] | tuple[np.ndarray, ...] = field(
        default_factory=dict)
    tickets: TicketLog = field(default_factory=TicketLog)
    n_sim_events: int = 0


@dataclass
class SimulationResult:
    """One replication of one scenario.

    Attributes
    ----------
    customers : columns of equal length, one row per customer who became aware
        (``id`` is the awareness order), then one per customer of the installed base
        (``base`` true; ``channel`` -1, aware and a customer since before the start: their
        ``t_purchase`` is 0, and those not alive at the start churned at 0). Times are
        days since the start; NaN = never.
    events : every state entry: ``customer``, ``time`` (days), ``state`` (code into
        ``states``), ``score`` (experience score on entering).
    abandonments : every cart abandonment: ``customer``, ``time``, ``recovered``.
    purchases : every order: ``customer``, ``time``, ``value`` (before the loyalty
        discount), ``discount``, ``revenue`` = value - discount, ``margin`` = value x gross
        margin - discount.
    referrals : ``referrer``, ``customer`` (the referred), ``time``.
    tickets : ``customer``, ``arrival``, ``start`` (NaN if abandoned), ``end``, ``outcome``
        (code into ``TICKET_OUTCOMES``), all in days.
    spend_per_day : (days, channels) channel spend including fixed costs, currency units.
    """

    states: tuple[str, ...]
    channels: tuple[str, ...]  # awareness sources: channels, word of mouth, referral
    segments: tuple[str, ...]
    horizon_days: float
    seed: int
    replication: int
    customers: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    abandonments: dict[str, np.ndarray]
    purchases: dict[str, np.ndarray]
    referrals: dict[str, np.ndarray]
    tickets: dict[str, np.ndarray]
    spend_per_day: np.ndarray
    n_sim_events: int  # SimPy events scheduled (timeouts, processes, interrupts, requests)

    @property
    def n_customers(self) -> int:
        return len(self.customers["id"])

    def state_times(self) -> np.ndarray:
        """(customers, states) first entry time of each state, NaN if never reached."""
        return np.column_stack([self.customers[f"t_{s}"] for s in self.states])

    @property
    def has_base(self) -> bool:
        """Whether the run started with an installed base (``market.base``)."""
        return bool(self.customers["base"].any()) if "base" in self.customers else False

    def part(self, keep: np.ndarray) -> SimulationResult:
        """The same run restricted to the customers where ``keep`` is true, renumbered
        0, 1, ... in order: their rows, events, orders, tickets, and the referrals made and
        received within the part (the spend and the run's totals stay as they are)."""
        keep = np.asarray(keep, dtype=bool)
        row = np.full(keep.size, -1, dtype=np.int64)
        row[keep] = np.arange(int(keep.sum()))

        def rows(table: dict[str, np.ndarray], *columns: str) -> dict[str, np.ndarray]:
            sel = np.logical_and.reduce([keep[table[c]] for c in columns])
            out = {k: v[sel] for k, v in table.items()}
            for c in columns:
                out[c] = row[out[c]].astype(table[c].dtype)
            return out

        return dataclasses.replace(
            self, customers={k: v[keep] for k, v in self.customers.items()}
            | {"id": np.arange(int(keep.sum()), dtype=np.int64)},
            events=rows(self.events, "customer"),
            abandonments=rows(self.abandonments, "customer"),
            purchases=rows(self.purchases, "customer"),
            referrals=rows(self.referrals, "referrer", "customer"),
            tickets=rows(self.tickets, "customer"))

    def journey_of(self, customer: int) -> list[tuple[float, str]]:
        """One customer's path: (time in days, state) in order, for teaching."""
        sel = self.events["customer"] == customer
        return [(float(t), self.states[s])
                for t, s in zip(self.events["time"][sel], self.events["state"][sel], strict=True)]


def _array(values: list, dtype) -> np.ndarray:
    return np.asarray(values, dtype=dtype)


def build_result(spec: ModelSpec, seed: int, replication: int, rec: RawRecords
                 ) -> SimulationResult:
    """Derive the columnar tables and the customers table from the raw records of a run."""
    n_new, n_base = len(rec.aware_time), len(rec.base_segment)
    n = n_new + n_base
    states = spec.states
    code = {s: i for i, s in enumerate(states)}

    def ids(customer, dtype=np.int64) -> np.ndarray:
        """Customer ids as rows: base customer -1 - j becomes row n_new + j."""
        a = np.asarray(customer, dtype=np.int64)
        return (np.where(a < 0, n_new - 1 - a, a) if n_base else a).astype(dtype)

    if isinstance(rec.events, dict):
        ev_c, ev_t = rec.events["customer"], rec.events["time"]
        ev_s, ev_e = rec.events["state"], rec.events["score"]
    else:
        flat = np.asarray(rec.events, dtype=float).reshape(-1, 4)
        ev_c = ids(flat[:, 0], np.int32)
        ev_t = flat[:, 1].copy()
        ev_s = flat[:, 2].astype(np.int16)
        ev_e = flat[:, 3].copy()

    first = np.full((n, len(states)), np.inf)
    np.minimum.at(first, (ev_c, ev_s), ev_t)
    for col in first.T:  # column by column: no (customers x states) temporary
        col[np.isinf(col)] = np.nan
    last = np.full(n, -1, dtype=np.int64)  # each customer's last event (appended in order)
    np.maximum.at(last, ev_c, np.arange(ev_c.size))
    final_state = ev_s[last] if n else np.zeros(0, np.int16)
    score = ev_e[last] if n else np.zeros(0)
    if isinstance(rec.score, dict):  # buyers' scores move between state entries
        for k, s in rec.score.items():
            score[k if k >= 0 else n_new - 1 - k] = s
    else:
        score[rec.score[0]] = rec.score[1]

    rate, dropout, order_value = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if isinstance(rec.traits, dict):
        if rec.traits:
            who = ids(np.fromiter(rec.traits, np.int64, len(rec.traits)))
            rate[who], dropout[who], order_value[who] = np.array(list(rec.traits.values())).T
    else:
        who, *values = rec.traits
        rate[who], dropout[who], order_value[who] = values

    ab_c = ids(rec.ab_customer)
    abandoned_cart = np.zeros(n, dtype=bool)
    abandoned_cart[ab_c] = True
    bought = ~np.isnan(first[:, code["purchase"]])
    outcome = np.zeros(n, dtype=np.int8)  # in_journey
    outcome[bought] = 1
    outcome[final_state == code["lost"]] = 2
    outcome[(final_state == code["lost"]) & abandoned_cart] = 3
    outcome[~np.isnan(first[:, code["churned"]])] = 4

    p = rec.purchases
    p_c = ids(p["customer"])
    value = _array(p["value"], float)
    discount = _array(p["discount"], float)
    p_time = _array(p["time"], float)
    # with a launch, the time the scenario reached each customer: their orders before it
    # earn the baseline's margin
    switch = np.zeros(n)
    gross_margin: float | np.ndarray = spec.gross_margin
    if spec.before is not None:
        switch = np.concatenate([_array(rec.switch, float), _array(rec.base_switch, float)])
        gross_margin = np.where(p_time >= switch[p_c], spec.gross_margin,
                                spec.before.gross_margin)
    purchases = {"customer": p_c, "time": p_time, "value": value,
                 "discount": discount, "revenue": value - discount,
                 "margin": value * gross_margin - discount}
    is_first = np.zeros(p_c.size, dtype=bool)
    if p_c.size:
        _, first_idx = np.unique(p_c, return_index=True)
        is_first[first_idx] = True
    first_value = np.full(n, np.nan)
    first_value[p_c[is_first]] = value[is_first]
    first_margin = np.full(n, np.nan)
    first_margin[p_c[is_first]] = purchases["margin"][is_first]  # after any loyalty discount
    ref = {"referrer": ids(rec.referrals["referrer"]),
           "customer": _array(rec.referrals["customer"], np.int64),
           "time": _array(rec.referrals["time"], float)}
    member = np.zeros(n, dtype=bool)
    member_since = np.full(n, np.nan)
    if isinstance(rec.members, dict):
        joined = ids(np.fromiter(rec.members, np.int64, len(rec.members)))
        member_since[joined] = np.fromiter(rec.members.values(), float, len(rec.members))
    else:  # the fast engine: members join at their first purchase
        joined = ids(rec.members)
        member_since[joined] = first[joined, code["purchase"]]
    member[joined] = True
    t = rec.tickets

    customers = {
        "id": np.arange(n, dtype=np.int64),
        "base": np.arange(n) >= n_new,
        "segment": np.concatenate([_array(rec.segment, np.int16),
                                   _array(rec.base_segment, np.int16)]),
        "channel": np.concatenate([_array(rec.source, np.int16), np.full(n_base, -1, np.int16)]),
        "t_aware": np.concatenate([_array(rec.aware_time, float), np.zeros(n_base)]),
        **{f"t_{s}": first[:, i] for i, s in enumerate(states)},
        "state": final_state,
        "outcome": outcome,
        "abandoned_cart": abandoned_cart,
        "first_order_value": first_value,
        "first_margin": first_margin,
        "purchases": np.bincount(p_c, minlength=n)[:n],
        "revenue": np.bincount(p_c, weights=purchases["revenue"], minlength=n)[:n],
        "margin": np.bincount(p_c, weights=purchases["margin"], minlength=n)[:n],
        "loyalty_member": member,
        "member_since": member_since,
        "scenario_from": switch,
        "advocate": ~np.isnan(first[:, code["advocacy"]]),
        "referrals": np.bincount(ref["referrer"], minlength=n)[:n],
        "experience": score,
        "purchase_rate": rate,
        "dropout": dropout,
        "order_value_mean": order_value,
    }
    recovered = (~np.isnan(first[ab_c, code["purchase"]]) if ab_c.size
                 else np.zeros(0, bool))
    n_days = int(np.ceil(spec.horizon_days))
    return SimulationResult(
        states=states,
        channels=spec.channel_names,
        segments=spec.segment_names,
        horizon_days=spec.horizon_days,
        seed=seed,
        replication=replication,
        customers=customers,
        events={"customer": ev_c, "time": ev_t, "state": ev_s, "score": ev_e},
        abandonments={"customer": ab_c, "time": _array(rec.ab_time, float),
                      "recovered": recovered},
        purchases=purchases,
        referrals=ref,
        tickets={"customer": ids(t.customer), "arrival": _array(t.arrival, float),
                 "start": _array(t.start, float), "end": _array(t.end, float),
                 "outcome": _array(t.outcome, np.int8)},
        spend_per_day=np.asarray(spec.spend_per_day[:n_days]),
        n_sim_events=rec.n_sim_events,
    )

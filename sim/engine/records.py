"""The engines' result type, built from flat event records (no Hydra, no files).

An engine records what happens (awareness, every state entry, cart abandonments); the
customers table and the daily series are derived here, vectorised, from those records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.spec import ModelSpec

__all__ = ["OUTCOMES", "SimulationResult", "build_result"]

OUTCOMES = ("in_journey", "purchased", "lost", "abandoned")


@dataclass
class SimulationResult:
    """One replication of one scenario.

    Attributes
    ----------
    customers : columns of equal length, one row per customer who became aware
        (``id`` is the awareness order). Times are days since the start; NaN = never.
    events : every state entry: ``customer``, ``time`` (days), ``state`` (code into ``states``).
    abandonments : every cart abandonment: ``customer``, ``time``, ``recovered``.
    spend_per_day : (days, channels) spend including fixed costs, currency units.
    """

    states: tuple[str, ...]
    channels: tuple[str, ...]  # awareness sources, word of mouth last
    segments: tuple[str, ...]
    horizon_days: float
    seed: int
    replication: int
    customers: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    abandonments: dict[str, np.ndarray]
    spend_per_day: np.ndarray
    n_sim_events: int  # SimPy events processed (timeouts and interrupts)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def n_customers(self) -> int:
        return len(self.customers["id"])

    def state_times(self) -> np.ndarray:
        """(customers, states) first entry time of each state, NaN if never reached."""
        return np.column_stack([self.customers[f"t_{s}"] for s in self.states])

    def journey_of(self, customer: int) -> list[tuple[float, str]]:
        """One customer's path: (time in days, state) in order, for teaching."""
        sel = self.events["customer"] == customer
        return [(float(t), self.states[s])
                for t, s in zip(self.events["time"][sel], self.events["state"][sel], strict=True)]


def build_result(
    spec: ModelSpec,
    seed: int,
    replication: int,
    aware_time: list[float],
    segment: list[int],
    source: list[int],
    order_z: list[float],
    ev_customer: list[int],
    ev_time: list[float],
    ev_state: list[int],
    ab_customer: list[int],
    ab_time: list[float],
    n_sim_events: int,
) -> SimulationResult:
    """Derive the customers table from the raw records of a run."""
    n = len(aware_time)
    states = spec.states
    lost, purchase = spec.code("lost"), spec.code("purchase")
    ev_c = np.asarray(ev_customer, dtype=np.int64)
    ev_t = np.asarray(ev_time, dtype=float)
    ev_s = np.asarray(ev_state, dtype=np.int16)

    first = np.full((n, len(states)), np.inf)
    np.minimum.at(first, (ev_c, ev_s), ev_t)
    first[np.isinf(first)] = np.nan
    # the last recorded state of each customer (events are appended in time order)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, ev_c, np.arange(ev_c.size))
    final_state = ev_s[last]

    ab_c = np.asarray(ab_customer, dtype=np.int64)
    abandoned_cart = np.zeros(n, dtype=bool)
    abandoned_cart[ab_c] = True
    bought = ~np.isnan(first[:, purchase])
    outcome = np.zeros(n, dtype=np.int8)  # in_journey
    outcome[bought] = 1
    outcome[final_state == lost] = 2
    outcome[(final_state == lost) & abandoned_cart] = 3

    seg = np.asarray(segment, dtype=np.int16)
    value = np.where(
        bought,
        np.exp(spec.order_log_mean + spec.order_log_sd * np.asarray(order_z, dtype=float))
        * np.asarray(spec.segment_order_value)[seg],
        np.nan,
    )
    customers = {
        "id": np.arange(n, dtype=np.int64),
        "segment": seg,
        "channel": np.asarray(source, dtype=np.int16),
        "t_aware": np.asarray(aware_time, dtype=float),
        **{f"t_{s}": first[:, i] for i, s in enumerate(states) if s != "lost"},
        "t_lost": first[:, lost],
        "state": final_state,
        "outcome": outcome,
        "abandoned_cart": abandoned_cart,
        "first_order_value": value,
        "first_margin": value * spec.gross_margin,
    }
    recovered = ~np.isnan(first[ab_c, purchase]) if ab_c.size else np.zeros(0, bool)
    n_days = int(np.ceil(spec.horizon_days))
    return SimulationResult(
        states=states,
        channels=spec.channel_names,
        segments=spec.segment_names,
        horizon_days=spec.horizon_days,
        seed=seed,
        replication=replication,
        customers=customers,
        events={"customer": ev_c, "time": ev_t, "state": ev_s},
        abandonments={"customer": ab_c, "time": np.asarray(ab_time, dtype=float),
                      "recovered": recovered},
        spend_per_day=np.asarray(spec.spend_per_day[:n_days]),
        n_sim_events=n_sim_events,
    )

"""The service desk: a SimPy Resource with ``agents`` servers and customer patience.

A ticket queues for a free agent; a customer whose patience runs out first reneges
(abandons the ticket). Served tickets take their handling time and are resolved at first
contact with a given probability. Both engines use this one implementation, and the
Erlang C / Erlang A oracle tests drive it directly with Poisson arrivals.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import simpy

__all__ = ["TICKET_OUTCOMES", "TicketLog", "serve"]

TICKET_OUTCOMES = ("resolved", "unresolved", "abandoned")


@dataclass
class TicketLog:
    """Flat records of every ticket: arrival, start of service (NaN if abandoned), end."""

    customer: list[int] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    outcome: list[int] = field(default_factory=list)  # index into TICKET_OUTCOMES


def serve(env: simpy.Environment, desk: simpy.Resource, log: TicketLog, customer: int,
          handling_days: float, patience_days: float, resolved: bool
          ) -> Generator[simpy.Event, object, tuple[int, float]]:
    """Queue at ``desk``; return (outcome code, wait in days). Use with ``yield from``."""
    arrival = env.now
    with desk.request() as request:
        got = yield request | env.timeout(patience_days)
        if request not in got:  # patience ran out first: the customer hangs up
            outcome, start = 2, float("nan")
        else:
            start = env.now
            yield env.timeout(handling_days)
            outcome = 0 if resolved else 1
    log.customer.append(customer)
    log.arrival.append(arrival)
    log.start.append(start)
    log.end.append(env.now)
    log.outcome.append(outcome)
    wait = (start if outcome < 2 else env.now) - arrival
    return outcome, wait

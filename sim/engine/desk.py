"""The service desk: a SimPy Resource with ``agents`` servers and customer patience.

A ticket queues for a free agent; a customer whose patience runs out first reneges
(abandons the ticket). Served tickets take their handling time and are resolved at first
contact with a given probability. Both engines use this one implementation, and the
Erlang C / Erlang A oracle tests drive it directly with Poisson arrivals.

``serve`` is the desk as a process step (``yield from serve(...)``: the agent engine's
customer processes wait on it). ``Desk`` is the same queue driven by callbacks, without a
process per ticket, for the fast engine; given the same tickets the two log the same
outcomes (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import simpy

__all__ = ["TICKET_OUTCOMES", "Desk", "TicketLog", "serve"]

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


class Desk:
    """The desk driven by callbacks: ``submit`` tickets, hear of each one's end.

    A ticket joins the queue of ``resource`` at its arrival time; when an agent takes it
    before the customer's patience runs out it is handled for its handling time, otherwise
    the customer hangs up at arrival + patience. At the end the ticket is logged and
    ``on_done(customer, outcome, wait)`` is called with ``env.now`` at the end.
    """

    def __init__(self, env: simpy.Environment, resource: simpy.Resource, log: TicketLog,
                 on_done: Callable[[int, int, float], None]):
        self.env, self.resource, self.log, self.on_done = env, resource, log, on_done

    def submit(self, customer: int, arrival: float, handling_days: float,
               patience_days: float, resolved: bool) -> None:
        """A ticket arriving at ``arrival`` (not before ``env.now``)."""
        ev = self.env.timeout(arrival - self.env.now)
        ev.callbacks.append(lambda _e: self._queue(customer, arrival, handling_days,
                                                   patience_days, resolved))

    def _queue(self, customer: int, arrival: float, handling: float, patience: float,
               resolved: bool) -> None:
        request = self.resource.request()
        if request.triggered:  # an agent is free: served at once
            self._serve(request, customer, arrival, handling, resolved)
            return
        timer = self.env.timeout(patience)

        def granted(_e: simpy.Event) -> None:
            if not timer.processed:
                self._serve(request, customer, arrival, handling, resolved)

        def renege(_e: simpy.Event) -> None:
            if not request.triggered:  # still queued: the customer hangs up
                request.cancel()
                self._done(customer, arrival, float("nan"), 2)

        request.callbacks.append(granted)
        timer.callbacks.append(renege)

    def _serve(self, request: simpy.Event, customer: int, arrival: float, handling: float,
               resolved: bool) -> None:
        start = self.env.now

        def finish(_e: simpy.Event) -> None:
            self.resource.release(request)
            self._done(customer, arrival, start, 0 if resolved else 1)

        self.env.timeout(handling).callbacks.append(finish)

    def _done(self, customer: int, arrival: float, start: float, outcome: int) -> None:
        log, end = self.log, self.env.now
        log.customer.append(customer)
        log.arrival.append(arrival)
        log.start.append(start)
        log.end.append(end)
        log.outcome.append(outcome)
        self.on_done(customer, outcome, (start if outcome < 2 else end) - arrival)

"""Engines: ``simulate(spec, seed, replication)`` -> ``SimulationResult``.

- ``agent``: every customer a SimPy process, the model as it reads on paper.
- ``fast``: the same model, population-level: prospects advanced in batches with SimPy
  clocking the events that interact (the service desk, campaigns).
- ``desk``: the support desk both engines share (agents, queue, abandonment).
- ``records``: what a replication returns, the same from both engines.

Engines know nothing of Hydra, files or plots; randomness comes in as (seed, replication).
May import: ``sim.model`` (the spec, distributions, random streams), numpy, scipy, simpy.
"""

from __future__ import annotations

from sim.engine.agent import simulate_agent
from sim.engine.fast import simulate_fast
from sim.engine.records import OUTCOMES, TICKET_OUTCOMES, SimulationResult
from sim.model.spec import ModelSpec

__all__ = ["OUTCOMES", "TICKET_OUTCOMES", "SimulationResult", "simulate"]

_ENGINES = {"agent": simulate_agent, "fast": simulate_fast}


def simulate(spec: ModelSpec, seed: int | None = None, replication: int = 0) -> SimulationResult:
    """One replication of ``spec`` with the engine it names (``run.engine``)."""
    return _ENGINES[spec.engine](spec, spec.seed if seed is None else seed, replication)

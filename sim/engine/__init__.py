"""Engines: ``simulate(spec, seed, replication)`` -> ``SimulationResult``.

Engines know nothing of Hydra, files or plots; randomness comes in as (seed, replication).
"""

from __future__ import annotations

from sim.engine.agent import simulate_agent
from sim.engine.fast import simulate_fast
from sim.engine.records import OUTCOMES, TICKET_OUTCOMES, SimulationResult
from sim.spec import ModelSpec

__all__ = ["OUTCOMES", "TICKET_OUTCOMES", "SimulationResult", "simulate"]

_ENGINES = {"agent": simulate_agent, "fast": simulate_fast}


def simulate(spec: ModelSpec, seed: int | None = None, replication: int = 0) -> SimulationResult:
    """One replication of ``spec`` with the engine it names (``run.engine``)."""
    return _ENGINES[spec.engine](spec, spec.seed if seed is None else seed, replication)

"""Random streams: every draw comes from a stream derived from (seed, replication, stream).

Streams are ``SeedSequence(seed, spawn_key=(replication, stream_id, *more))``. Stream ids are
append-only: adding a stream never changes the numbers of an existing one. Customer draws
are made in blocks indexed by the customer's awareness order, so a customer's random numbers
do not depend on when events fire (common random numbers across scenarios).
"""

from __future__ import annotations

import zlib
from enum import IntEnum

import numpy as np

__all__ = ["Stream", "generator", "name_key", "stream_key"]


class Stream(IntEnum):
    """Stream ids. Append new ones at the end; never renumber."""

    AWARENESS = 0  # order statistics of the awareness thresholds
    SEGMENT = 1  # one uniform per customer: segment
    SOURCE = 2  # one uniform per customer: source channel at awareness
    STAGE = 3  # per stage (keyed by name): exit uniforms per visit
    CHECKOUT = 4  # abandonment, recovery and checkout dwell uniforms
    ORDER = 5  # order value normals
    ADVOCACY = 6  # advocacy uniform
    OVERFLOW = 7  # per-customer generator for visits beyond the pre-drawn ones
    DWELL = 8  # per stage (keyed by name; 0 = checkout): dwell times per visit
    LIFE = 9  # per buyer (keyed by customer): purchases beyond the pre-drawn ones ...
    DESK = 10  # ... except the service desk's draws (per customer)
    LIFE_BLOCK = 11  # per block: a buyer's traits and first purchases' uniforms (then LIFE)
    FAST = 12  # the fast engine's counter-based streams (keyed by purpose, see engine/fast.py)
    SPEND = 13  # per block: a buyer's Gamma-Gamma spend level (economics.order_value_model)
    BASE = 14  # per block of the installed base: alive, segment, spend level, traits, orders
    BASE_LIFE = 15  # per base customer (keyed by row, then 0: orders beyond, 1: the desk)
    ROLLOUT = 16  # per block: when a launched scenario reaches each customer (0: new, 1: base)


def name_key(name: str) -> int:
    """A stable integer for a name (stage names key their own streams)."""
    return zlib.crc32(name.encode())


def generator(seed: int, replication: int, stream: Stream, *more: int) -> np.random.Generator:
    """The Generator for one stream of one replication."""
    ss = np.random.SeedSequence(seed, spawn_key=(replication, int(stream), *more))
    return np.random.Generator(np.random.PCG64(ss))


def stream_key(seed: int, replication: int, stream: Stream, *more: int) -> int:
    """A 64-bit key for one stream of one replication (for counter-based draws)."""
    ss = np.random.SeedSequence(seed, spawn_key=(replication, int(stream), *more))
    return int(ss.generate_state(1, np.uint64)[0])

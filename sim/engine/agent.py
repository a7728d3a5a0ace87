"""The agent engine: one SimPy process per customer who becomes aware.

The readable reference engine. A market process turns the awareness hazard into exact
awareness times; each aware customer then walks the stage graph, tries the checkout and,
on purchase, may become an advocate who feeds word of mouth and social proof.

Randomness is tied to customers (DESIGN.md section 5). Customer k (the k-th to become
aware) owns row k of every per-customer draw: segment, source channel, a dwell and an exit
uniform for each of its first ``VISITS`` visits to each stage, checkout and order-value
draws. Those rows come from streams keyed by (seed, replication, stream, block), never from
the order in which events fire, so a scenario that changes one customer's path leaves
everyone else's numbers alone (common random numbers).

Awareness uses the order statistics of exponential thresholds: person i becomes aware
when the cumulative hazard H(t) = integral of h(s) ds passes an Exp(1) threshold E_i, with
h(t) = sum_c reach_c(t) + q A(t) / M. Sorted, the thresholds are
E_(k) = E_(k-1) + X_k / (M - k), X_k ~ Exp(1) (Renyi's representation). The market process
waits exactly until H reaches the next threshold; h is piecewise constant (reach changes
at day boundaries, A at each new advocate, which interrupts the wait), so times are exact.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import simpy

from sim.engine.records import SimulationResult, build_result
from sim.rng import Stream, generator, name_key
from sim.spec import ModelSpec

__all__ = ["simulate_agent"]

BLOCK = 1024  # customers per block of pre-drawn random numbers
VISITS = 4  # visits per stage drawn ahead; later visits use the customer's overflow stream


def _cumulative(probs: tuple[float, ...], forward: tuple[bool, ...], mult: float) -> list[float]:
    """Cumulative exit probabilities after the odds shift (see ``spec.odds_shift``)."""
    w = [p * mult if f else p for p, f in zip(probs, forward, strict=True)]
    total = sum(w) + max(0.0, 1.0 - sum(probs))
    acc, out = 0.0, []
    for x in w:
        acc += x / total
        out.append(acc)
    return out


def _split(probs: tuple[float, ...], forward: tuple[bool, ...], mult: float):
    """Cumulative forward weights (times ``mult``), other weights, and the lost share.

    With a live multiplier b the cumulative exit weight up to exit j is
    b * fwd[j] + other[j], out of b * fwd[-1] + other[-1] + lost.
    """
    fwd, other, a, o = [], [], 0.0, 0.0
    for p, f in zip(probs, forward, strict=True):
        a, o = (a + p * mult, o) if f else (a, o + p)
        fwd.append(a)
        other.append(o)
    return fwd, other, max(0.0, 1.0 - sum(probs))


class _Blocks:
    """Per-customer random numbers, drawn a block of ``BLOCK`` customers at a time."""

    def __init__(self, spec: ModelSpec, seed: int, replication: int):
        self.spec, self.seed, self.rep = spec, seed, replication
        self.index = -1

    def load(self, b: int) -> None:
        spec, seed, rep = self.spec, self.seed, self.rep
        self.index = b
        u = generator(seed, rep, Stream.SEGMENT, b).random(BLOCK)
        seg = np.searchsorted(np.cumsum(spec.segment_shares)[:-1], u, side="right")
        self.segment = seg.tolist()
        self.source = generator(seed, rep, Stream.SOURCE, b).random(BLOCK).tolist()
        # flat per stage: customer i, visit v at [i * VISITS + v]
        self.dwell, self.exit = [], []
        for st in spec.stages:
            key = name_key(st.name)
            dwell_rng = generator(seed, rep, Stream.DWELL, b, key)
            exit_rng = generator(seed, rep, Stream.STAGE, b, key)
            self.dwell.append(st.dwell.sample(dwell_rng, BLOCK * VISITS).tolist())
            self.exit.append(exit_rng.random(BLOCK * VISITS).tolist())
        g = generator(seed, rep, Stream.CHECKOUT, b)
        u = g.random((BLOCK, 2))
        co_dwell = spec.checkout.dwell.sample(generator(seed, rep, Stream.DWELL, b, 0), BLOCK)
        self.checkout = np.column_stack([co_dwell, u]).tolist()
        self.order_z = generator(seed, rep, Stream.ORDER, b).standard_normal(BLOCK).tolist()
        self.advocate = generator(seed, rep, Stream.ADVOCACY, b).random(BLOCK).tolist()


class AgentModel:
    """One replication of the agent engine. Build it, call ``run()`` once."""

    def __init__(self, spec: ModelSpec, seed: int, replication: int):
        self.spec, self.seed, self.replication = spec, seed, replication
        self.env = simpy.Environment()
        self.blocks = _Blocks(spec, seed, replication)
        m = spec.market_size
        x = generator(seed, replication, Stream.AWARENESS).exponential(size=m)
        self.thresholds = np.cumsum(x / (m - np.arange(m))).tolist()
        self.advocates = 0
        # records
        self.aware_time: list[float] = []
        self.source: list[int] = []
        self.segment: list[int] = []
        self.order_z: list[float] = []
        self.ev_customer: list[int] = []
        self.ev_time: list[float] = []
        self.ev_state: list[int] = []
        self.ab_customer: list[int] = []
        self.ab_time: list[float] = []
        # static exit tables per (stage, segment, channel); social proof is applied live
        n_ch = len(spec.channel_names)
        quality = [c.quality for c in spec.channels] + [1.0]
        self.cum, self.split = [], []
        for st in spec.stages:
            lever = (spec.content_quality if "content" in st.levers else 1.0) * (
                spec.site_usability if "usability" in st.levers else 1.0)
            mult = [[lever * spec.segment_conversion[g] * quality[c] for c in range(n_ch)]
                    for g in range(len(spec.segment_names))]
            self.cum.append([[_cumulative(st.probs, st.forward, x) for x in row] for row in mult])
            self.split.append([[_split(st.probs, st.forward, x) for x in row] for row in mult])
        # social proof only shifts forward exits: stages without one skip the live branch
        self.social = [spec.social_proof > 0 and "social_proof" in st.levers and any(st.forward)
                       for st in spec.stages]
        self.reach_total = spec.reach_per_day.sum(axis=1).tolist()
        self.reach_cum = np.cumsum(spec.reach_per_day, axis=1).tolist()
        self.market = self.env.process(self._market())

    # ------------------------------------------------------------------ market
    def _market(self):
        env, spec, thresholds = self.env, self.spec, self.thresholds
        m, q = spec.market_size, spec.wom_q_per_day
        last_day = len(self.reach_total) - 1
        cum_hazard, k = 0.0, 0
        while k < m:
            t0 = env.now
            day = min(int(t0), last_day)
            h = self.reach_total[day] + q * self.advocates / m
            to_boundary = day + 1 - t0
            # max(): rounding may leave the hazard a hair past the threshold
            to_next = max(0.0, thresholds[k] - cum_hazard) / h if h > 0 else math.inf
            try:
                yield env.timeout(min(to_next, to_boundary))
            except simpy.Interrupt:  # the number of advocates changed: h changes now
                cum_hazard += h * (env.now - t0)
                continue
            if to_next <= to_boundary:
                cum_hazard = thresholds[k]
                self._become_aware(k, day, q * self.advocates / m)
                k += 1
            else:
                cum_hazard += h * to_boundary

    def _become_aware(self, k: int, day: int, wom_hazard: float) -> None:
        b, i = divmod(k, BLOCK)
        blk = self.blocks
        if blk.index != b:
            blk.load(b)
        cum = self.reach_cum[day]
        u = blk.source[i] * (cum[-1] + wom_hazard)
        source = bisect.bisect_right(cum, u) if u < cum[-1] else len(cum)
        seg = blk.segment[i]
        self.segment.append(seg)
        self.order_z.append(blk.order_z[i])
        self.aware_time.append(self.env.now)
        self.source.append(source)
        self.env.process(self._customer(k, seg, source, blk.dwell, blk.exit, i * VISITS,
                                        blk.checkout[i], blk.advocate[i]))

    def _advocate_joins(self) -> None:
        self.advocates += 1
        if self.spec.wom_q_per_day > 0 and self.market.is_alive:
            self.market.interrupt()

    # ---------------------------------------------------------------- customer
    def _customer(self, k, seg, source, dwell, exits, base, checkout_draws, u_advocate):
        """One customer's journey. ``dwell``/``exits`` hold its block's draws from ``base``."""
        env, spec = self.env, self.spec
        timeout = env.timeout
        record_c, record_t, record_s = (self.ev_customer.append, self.ev_time.append,
                                        self.ev_state.append)
        stages, cum_tables, social = spec.stages, self.cum, self.social
        checkout, purchase, advocacy, lost = range(spec.n_stages, spec.n_stages + 4)
        stage = 0
        visits = [0] * spec.n_stages
        overflow = None
        record_c(k), record_t(env.now), record_s(0)
        while True:  # the prospect stages
            v = visits[stage]
            visits[stage] = v + 1
            if v < VISITS:
                d, u = dwell[stage][base + v], exits[stage][base + v]
            else:  # a long loop: this customer's own stream, still independent of the rest
                if overflow is None:
                    overflow = generator(self.seed, self.replication, Stream.OVERFLOW, k)
                d, u = float(stages[stage].dwell.sample(overflow, 1)[0]), overflow.random()
            yield timeout(d)
            st = stages[stage]
            if social[stage]:  # odds shift by social proof, live: see spec.odds_shift
                boost = 1.0 + spec.social_proof * self.advocates / spec.market_size
                fwd, other, lost_share = self.split[stage][seg][source]
                x = u * (boost * fwd[-1] + other[-1] + lost_share)
                j = 0
                while j < len(fwd) and x >= boost * fwd[j] + other[j]:
                    j += 1
            else:
                j = bisect.bisect_right(cum_tables[stage][seg][source], u)
            target = st.targets[j] if j < len(st.targets) else -1
            record_c(k), record_t(env.now)
            if target < 0:
                record_s(lost)
                return
            record_s(target)
            if target == checkout:
                break
            stage = target
        # checkout: one attempt, abandonment from the friction model, maybe a reminder
        checkout_dwell, u_abandon, u_recover = checkout_draws
        yield timeout(checkout_dwell)
        co = spec.checkout
        if u_abandon < co.abandon_prob:
            self.ab_customer.append(k)
            self.ab_time.append(env.now)
            if u_recover >= co.recovery_prob:
                record_c(k), record_t(env.now), record_s(lost)
                return
            yield timeout(co.recovery_delay_days)
        record_c(k), record_t(env.now), record_s(purchase)
        if u_advocate < spec.advocate_prob:
            record_c(k), record_t(env.now), record_s(advocacy)
            self._advocate_joins()

    # --------------------------------------------------------------------- run
    def run(self) -> SimulationResult:
        self.env.run(until=self.spec.horizon_days)
        return build_result(
            self.spec, self.seed, self.replication, self.aware_time, self.segment,
            self.source, self.order_z, self.ev_customer, self.ev_time, self.ev_state,
            self.ab_customer, self.ab_time,
            next(self.env._eid),  # SimPy's own count of scheduled events
        )


def simulate_agent(spec: ModelSpec, seed: int, replication: int) -> SimulationResult:
    """Run one replication of ``spec`` with the agent engine."""
    return AgentModel(spec, seed, replication).run()

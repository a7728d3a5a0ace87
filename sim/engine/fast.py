"""The fast engine: customers live in numpy arrays; SimPy keeps the clock and the desk.

The same model as the agent engine (``sim/engine/agent.py``, the readable reference), laid
out for millions of customers. Every customer is a row of a few arrays (segment, source,
stage, next event time, visits per stage, experience score, buyer traits). Time advances
in ticks of ``run.tick_days``; within a tick every customer whose next event falls in the
tick is moved in vectorised batches until no event of the tick is left. A batch takes its
customers through the steps in the order they follow each other (a stage exit, the
checkout, a recovered cart, a renewal or the step after a ticket, a purchase), one
vectorised call per step, so a customer may take several steps in one batch and one step
in each of several batches. Customers are independent within a tick (the feedback below
is read at its start, referrals go to its advocates in customer order), so how the batches
are cut changes only the order of rows in the tables and, for late tickets (below), the
order in which tickets raised at the same instant queue. Event times are exact and
continuous: a customer who leaves a stage at t = 3.27 is recorded at 3.27 and enters the
next stage at 3.27 plus an exact dwell draw.

What the tick approximates, and only that: population feedback is read once per tick.
Word of mouth and referrals (the awareness hazard's A(t) and R(t)) and social proof (the
live odds shift from the advocate share) use the advocates active at the start of the
tick, and a referral is credited to one of those advocates. Within a tick awareness is
still exact for that hazard (order statistics of exponential thresholds, as in the agent
engine). With ``tick_days`` = 1 the advocate count these mechanisms see lags the true one
by less than one day.

The service desk is the same SimPy Resource as in the agent engine, driven by callbacks:
a ticket arrives at its exact time, waits for an agent, reneges when its patience runs
out, is handled and resolved or not. A ticket's end moves the customer on (score, leave,
next purchase) in a batch at the end of its tick, at the exact end time. One corner is
bounded by the tick: a ticket raised by a purchase that follows the customer's previous
ticket within the same tick joins the queue at the tick's end, and the tickets table
records that time as its arrival (``late_tickets`` counts them).

Randomness is counter-based and tied to customers (DESIGN.md section 5): the uniform for
(purpose, customer, counter) is the SplitMix64 output function applied to a 64-bit key of
(seed, replication, purpose) plus the (customer, counter) index times the golden gamma,
i.e. element ``index`` of a SplitMix64 sequence. The counter names the draw: the visit to
a stage, the order number and slot after a purchase. A customer's numbers therefore do not
depend on batch composition or event order, and an intervention that changes one
customer's path leaves everyone else's draws alone. Gamma draws use Marsaglia and Tsang's
method with the attempts numbered within the draw's counter range.

References
----------
Steele, G. L., Lea, D. & Flood, C. H. (2014). Fast splittable pseudorandom number
generators. OOPSLA '14 (SplitMix64).
Marsaglia, G. & Tsang, W. W. (2000). A simple method for generating gamma variables.
ACM TOMS 26(3), 363-372.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
import simpy
from scipy import special

from sim.engine.desk import Desk
from sim.engine.records import RawRecords, SimulationResult, build_result
from sim.model.distributions import Dwell
from sim.model.rng import Stream, generator, name_key, stream_key
from sim.model.spec import ModelSpec

__all__ = ["FastModel", "simulate_fast"]

# ----------------------------------------------------------------- counter-based draws
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_COUNTER_BITS = np.uint64(24)  # counters per (purpose, customer): 16.7 million
_TO_UNIT = 2.0**-53
SLOTS_PER_DRAW = 128  # counters reserved per gamma draw (Marsaglia-Tsang attempts, boost)
ORDER_SLOTS = 8  # counters per purchase: order value, issue, advocacy, drop-out, gap
DESK_SLOTS = SLOTS_PER_DRAW + 4  # counters per ticket: resolve, leave, patience, handling


class Purpose(IntEnum):
    """Sub-streams of ``Stream.FAST``. Append only."""

    SEGMENT = 0
    SOURCE = 1
    EXIT = 2  # keyed by stage name; counter = visit
    DWELL = 3  # keyed by stage name (0: checkout); counter = visit * SLOTS_PER_DRAW + slot
    CHECKOUT = 4  # counter 0: abandonment, 1: recovery
    FIRST_ORDER = 5  # the first order's value (normal quantile)
    FIRST_ADVOCACY = 6
    TRAITS = 7  # purchase rate, drop-out, subscription churn, loyalty enrolment
    ORDER = 8  # counter = order * ORDER_SLOTS + slot
    DESK = 9  # counter = order * DESK_SLOTS + slot
    SPEND = 10  # counter 0: the buyer's Gamma-Gamma spend level


def uniforms(key: int | np.ndarray, customer: np.ndarray, counter: int | np.ndarray
             ) -> np.ndarray:
    """Uniforms in (0, 1), one per (customer, counter), from a 64-bit stream key."""
    x = (customer.astype(np.uint64) << _COUNTER_BITS) | np.asarray(counter, dtype=np.uint64)
    x *= _GOLDEN
    x += np.asarray(key, dtype=np.uint64)
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT


def standard_gamma(shape: float, key: int, customer: np.ndarray, base: np.ndarray | int
                   ) -> np.ndarray:
    """Gamma(shape, 1) draws by Marsaglia-Tsang, attempt a on counters base + 2a, 2a + 1.

    Every draw makes its first attempt (accepted with probability above 0.95 for every
    shape); the rejected ones try again, one attempt at a time. Shapes below 1 use
    Gamma(shape + 1) * U^(1 / shape) with U on counter base + 127.
    """
    a = shape + 1.0 if shape < 1.0 else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    base = np.broadcast_to(np.asarray(base, dtype=np.int64), customer.shape)
    out = np.empty(customer.size)
    todo = np.arange(customer.size)
    cu, cb = customer, base
    for attempt in range((SLOTS_PER_DRAW - 2) // 2):
        u = uniforms(key, cu[:, None], cb[:, None] + (2 * attempt + np.arange(2)))
        z = special.ndtri(u[:, 0])
        v = 1.0 + c * z
        v3 = np.maximum(v, 1e-100) ** 3
        ok = (v > 0) & (np.log(u[:, 1]) < 0.5 * z * z + d - d * v3 + d * np.log(v3))
        out[todo[ok]] = d * v3[ok]
        if ok.all():
            break
        todo = todo[~ok]
        cu, cb = customer[todo], base[todo]
    else:  # pragma: no cover - probability below 1e-80 per draw
        raise RuntimeError("gamma sampler: no acceptance in 63 attempts")
    if shape < 1.0:
        out *= uniforms(key, customer, base + SLOTS_PER_DRAW - 1) ** (1.0 / shape)
    return out


def sample_dwell(dwell: Dwell, key: int, customer: np.ndarray, visit: np.ndarray | int
                 ) -> np.ndarray:
    """Dwell times (days) of ``customer`` on their ``visit``-th visit, as scale x standard."""
    if dwell.kind == "fixed":
        return np.full(customer.size, dwell.mean_days)
    base = np.asarray(visit, dtype=np.int64) * SLOTS_PER_DRAW
    if dwell.kind == "gamma":
        return dwell.scale * standard_gamma(dwell.shape, key, customer, base)
    u = uniforms(key, customer, base)
    if dwell.kind == "exponential":
        return dwell.scale * -np.log(u)
    if dwell.kind == "lognormal":
        return dwell.scale * np.exp(dwell.shape * special.ndtri(u))
    return dwell.scale * (-np.log(u)) ** (1.0 / dwell.shape)  # weibull


def _shift(p: np.ndarray | float, odds_multiplier: np.ndarray | float) -> np.ndarray:
    """Probabilities with their odds multiplied (1 stays 1, 0 stays 0); vectorised."""
    x = np.multiply(p, odds_multiplier)
    return np.where(np.asarray(p) >= 1.0, 1.0, x / np.maximum(1.0 - np.asarray(p) + x, 1e-300))


class _Columns:
    """A table grown in place: one large array per column (amortised doubling).

    Large arrays live in their own memory maps, so what the run frees goes back to the
    system; thousands of small chunks would fragment the heap instead.
    """

    def __init__(self, capacity: int = 1024, **dtypes: type):
        # untouched capacity costs address space, not memory: pages come when written
        self.cols = {name: np.empty(max(capacity, 1024), dtype) for name, dtype in dtypes.items()}
        self.n = 0

    def add(self, **cols) -> None:
        """Append equal-length columns; a scalar stands for a constant column."""
        m = next(c.size for c in cols.values() if isinstance(c, np.ndarray))
        end = self.n + m
        for name, col in cols.items():
            buf = self.cols[name]
            if end > buf.size:
                buf = self.cols[name] = _grown(buf, end)
            buf[self.n:end] = col
        self.n = end

    def columns(self) -> dict[str, np.ndarray]:
        """The columns, trimmed to their length (the buffers are handed over)."""
        out = {}
        for name, buf in self.cols.items():
            buf.resize(self.n, refcheck=False)
            out[name] = buf
        self.cols = {}
        return out


def _grown(buf: np.ndarray, at_least: int) -> np.ndarray:
    new = np.empty(max(at_least, buf.size * 2), buf.dtype)
    new[:buf.size] = buf
    return new


class FastModel:
    """One replication of the fast engine. Build it, call ``run()`` once."""

    def __init__(self, spec: ModelSpec, seed: int, replication: int):
        self.spec, self.seed, self.replication = spec, seed, replication
        self.env = simpy.Environment()
        self.rec = RawRecords()
        self.desk = Desk(self.env, simpy.Resource(self.env, capacity=spec.support.agents),
                         self.rec.tickets, self._ticket_done)
        self.u_leave: dict[int, float] = {}  # customers at the desk: their leave uniform
        m, n_st = spec.market_size, spec.n_stages
        self.n_stages = n_st
        # engine phases: 0..n_st-1 dwelling in a stage; then the steps after it
        self.CHECKOUT, self.RECOVER, self.BUY = n_st, n_st + 1, n_st + 2
        self.DESK, self.AFTER_DESK, self.RENEW, self.DONE = n_st + 3, n_st + 4, n_st + 5, -1
        self.state_of = {name: spec.code(name) for name in
                         ("checkout", "purchase", "retention", "advocacy", "churned", "lost")}

        keys: dict[tuple[int, ...], int] = {}

        def key(purpose: Purpose, *more: int) -> int:
            at = (int(purpose), *more)
            if at not in keys:
                keys[at] = stream_key(seed, replication, Stream.FAST, *at)
            return keys[at]

        self.key = key
        self.exit_keys = np.array([key(Purpose.EXIT, name_key(s.name)) for s in spec.stages],
                                  dtype=np.uint64)
        self.dwell_keys = [key(Purpose.DWELL, name_key(s.name)) for s in spec.stages]
        self.checkout_dwell_key = key(Purpose.DWELL, 0)
        x = generator(seed, replication, Stream.AWARENESS).exponential(size=m)
        x /= m - np.arange(m)
        self.thresholds = np.cumsum(x)  # the agent engine's thresholds, same stream
        del x
        # one row per person who may become aware, in awareness order
        self.seg = np.zeros(m, np.int8)
        self.src = np.zeros(m, np.int8)
        self.t_aware = np.zeros(m)
        self.phase = np.full(m, self.DONE, np.int8)
        self.next_time = np.full(m, np.inf)
        self.visits = np.zeros((m, max(n_st, 1)), np.uint16)
        self.score = np.zeros(m)
        self.n_orders = np.zeros(m, np.int32)
        self.rate = np.zeros(m)  # purchase rate per day (buyers)
        self.drop = np.zeros(m)  # drop-out (BG/NBD) or churn per period (subscription)
        self.member = np.zeros(m, bool)
        self.advocate = np.zeros(m, bool)  # an active advocate
        self.desk_leaves = np.zeros(m, bool)  # the last ticket made the customer leave
        self.n_aware = 0
        self.cum_hazard = 0.0
        self.active = np.zeros(0, np.int64)  # customers with something still to happen
        # population feedback, read once per tick
        self.n_advocates = 0
        self.referral_rate = 0.0
        self.advocates_by_segment = np.zeros(len(spec.segment_names), np.int64)
        self.advocate_ids: list[np.ndarray] = []
        self.candidates: tuple[np.ndarray, np.ndarray] | None = None
        self._build_exit_tables()
        self.reach_total = spec.reach_per_day.sum(axis=1)
        self.reach_cum = np.cumsum(spec.reach_per_day, axis=1)
        self.seg_cum = np.cumsum(spec.segment_shares)[:-1]
        self.seg_order_value = np.asarray(spec.segment_order_value)
        self.seg_rate_per_day = (spec.advocacy.referral_rate_per_day
                                 * np.asarray(spec.segment_referral))
        # records
        self.events = _Columns(3 * m, customer=np.int32, time=float, state=np.int16, score=float)
        self.purchases = _Columns(m // 4, customer=np.int64, time=float, value=float,
                                  discount=float)
        self.abandon = _Columns(customer=np.int64, time=float)
        self.referrals = _Columns(referrer=np.int64, customer=np.int64, time=float)
        self.members = _Columns(customer=np.int64, time=float)
        self.n_batched_events = 0
        self.late_tickets = 0

    # ------------------------------------------------------------------ tables
    def _build_exit_tables(self) -> None:
        """Per (stage, segment x source): cumulative forward and other exit weights.

        With the live social-proof multiplier b (1 for stages without the lever) the
        cumulative probability up to exit j is (b fwd_j + other_j) / (b fwd + other + lost),
        exactly the agent engine's rule (see ``spec.odds_shift``).
        """
        spec = self.spec
        quality = [c.quality for c in spec.channels] + [1.0, spec.advocacy.referral_conversion]
        n_src, n_seg = len(quality), len(spec.segment_names)
        self.n_src = n_src
        n_exits = max((len(st.probs) for st in spec.stages), default=0)
        shape = (max(self.n_stages, 1), n_seg * n_src, n_exits)
        fwd, other = np.zeros(shape), np.zeros(shape)
        lost = np.zeros(shape[:2])
        self.targets = np.full((shape[0], n_exits + 1), -1, np.int64)  # -1: lost
        self.pad = np.zeros(shape, bool)  # exits a stage does not have
        for s, st in enumerate(spec.stages):
            n = len(st.probs)
            self.targets[s, :n] = st.targets
            self.pad[s, :, n:] = True
            lever = ((spec.content_quality if "content" in st.levers else 1.0)
                     * (spec.site_usability if "usability" in st.levers else 1.0))
            for g in range(n_seg):
                for c in range(n_src):
                    mult = lever * spec.segment_conversion[g] * quality[c]
                    f = np.cumsum([p * mult if fw else 0.0
                                   for p, fw in zip(st.probs, st.forward, strict=True)])
                    o = np.cumsum([0.0 if fw else p
                                   for p, fw in zip(st.probs, st.forward, strict=True)])
                    row = g * n_src + c
                    fwd[s, row, :n], other[s, row, :n] = f, o
                    if n:  # a stage without exits loses every visitor: weights stay 0
                        fwd[s, row, n:], other[s, row, n:] = f[-1], o[-1]
                    lost[s, row] = max(0.0, 1.0 - sum(st.probs))
        self.fwd, self.other, self.lost = fwd, other, lost
        self.social = np.array([spec.social_proof > 0 and "social_proof" in st.levers
                                and any(st.forward) for st in spec.stages] or [False])
        self.points = np.array([st.experience for st in spec.stages] + [0.0])  # + checkout
        self.boost = None
        self._exit_table(1.0)

    def _exit_table(self, boost: float) -> None:
        if boost == self.boost:
            return
        b = np.where(self.social, boost, 1.0)[:, None, None]
        total = b[:, :, 0] * self.fwd[:, :, -1] + self.other[:, :, -1] + self.lost
        cum = (b * self.fwd + self.other) / np.where(total > 0, total, 1.0)[:, :, None]
        cum[self.pad] = np.inf
        self.cum, self.boost = cum, boost

    # ------------------------------------------------------------------ market
    def _awareness(self, t0: float, t1: float) -> np.ndarray:
        """Everyone who becomes aware in [t0, t1): exact times for this tick's hazard."""
        spec, m = self.spec, self.spec.market_size
        wom = spec.wom_q_per_day * self.n_advocates / m
        ref = self.referral_rate
        last_day = len(self.reach_total) - 1
        k0, t = self.n_aware, t0
        times: list[np.ndarray] = []
        while t < t1 and self.n_aware < m:
            day = min(int(t), last_day)
            end = min(t1, day + 1.0) if day < last_day else t1
            c = self.reach_total[day] + wom
            k = self.n_aware
            if c <= 0 and ref <= 0:  # nobody can become aware in this stretch
                t = end
                continue
            # expected arrivals in [t, end) plus a margin; extended if it falls short
            guess = int((m - k) * min(1.0, (c + ref / max(m - k, 1)) * (end - t)) * 1.2) + 64
            while True:
                j = np.arange(k, min(m, k + guess))
                h = c + ref / (m - j)
                gaps = np.diff(self.thresholds[j], prepend=self.cum_hazard)
                np.maximum(gaps, 0.0, out=gaps)
                at = t + np.cumsum(gaps / h)
                n_in = int(np.searchsorted(at, end))
                if n_in < j.size or j[-1] == m - 1:
                    break
                guess *= 2
            if n_in:
                times.append(at[:n_in])
                self.cum_hazard = self.thresholds[k + n_in - 1]
                t_last = at[n_in - 1]
            else:
                t_last = t
            self.n_aware = k + n_in
            if self.n_aware < m:
                h_next = c + ref / (m - self.n_aware)
                self.cum_hazard += h_next * (end - t_last)
            t = end
        new = np.arange(k0, self.n_aware)
        if new.size:
            self._arrive(new, np.concatenate(times), wom, ref)
        return new

    def _arrive(self, k: np.ndarray, t: np.ndarray, wom: float, ref: float) -> None:
        """New customers: segment, source (channel, word of mouth or referral), first stage."""
        spec, m = self.spec, self.spec.market_size
        day = np.minimum(t.astype(np.int64), len(self.reach_total) - 1)
        self.seg[k] = np.searchsorted(self.seg_cum, uniforms(self.key(Purpose.SEGMENT), k, 0),
                                      side="right")
        paid = self.reach_total[day]
        ref_k = ref / (m - k)
        x = uniforms(self.key(Purpose.SOURCE), k, 0) * (paid + wom + ref_k)
        n_ch = self.reach_cum.shape[1]
        src = np.full(k.size, n_ch)  # word of mouth
        is_paid = x < paid
        if is_paid.any():
            cum = self.reach_cum[day[is_paid]]
            src[is_paid] = (x[is_paid, None] >= cum).sum(axis=1)
        is_ref = ~is_paid & (x >= paid + wom) & (ref_k > 0)
        if is_ref.any():
            src[is_ref] = n_ch + 1
            self._credit_referrals(k[is_ref], t[is_ref],
                                   (x[is_ref] - paid[is_ref] - wom) / ref_k[is_ref])
        self.src[k] = src
        self.t_aware[k] = t
        score = np.full(k.size, np.clip(self.points[0], -2.0, 2.0))
        self.events.add(customer=k, time=t, state=0, score=score)
        stage = np.zeros(k.size, np.int64)
        entry = spec.advocacy.referral_entry
        if entry and is_ref.any():  # referred prospects start considering at once
            score[is_ref] = np.clip(score[is_ref] + self.points[entry], -2.0, 2.0)
            stage[is_ref] = entry
            self.events.add(customer=k[is_ref], time=t[is_ref], state=entry,
                            score=score[is_ref])
        self.score[k] = score
        self._enter_stages(k, t, stage)
        self.active = np.concatenate([self.active, k])
        self.n_batched_events += k.size

    def _credit_referrals(self, k: np.ndarray, t: np.ndarray, position: np.ndarray) -> None:
        """Each referral goes to an advocate active at the tick's start, chosen in
        proportion to referral rates (``position`` in [0, 1) is the draw's place)."""
        if self.candidates is None:  # once per tick: the advocates active at its start,
            ids = np.concatenate(self.advocate_ids)  # in customer order whatever the order
            ids = np.sort(ids[self.advocate[ids]], kind="stable")  # they joined in (timsort:
            # the previous tick's list is sorted already)
            self.advocate_ids = [ids]
            self.candidates = ids, np.cumsum(self.seg_rate_per_day[self.seg[ids]])
        ids, cum = self.candidates
        pick = np.minimum(np.searchsorted(cum, position * cum[-1], side="right"), ids.size - 1)
        self.referrals.add(referrer=ids[pick], customer=k, time=t)

    # ---------------------------------------------------------------- prospects
    def _enter_stages(self, k: np.ndarray, t: np.ndarray, stage: np.ndarray) -> None:
        """Customers ``k`` enter prospect stages ``stage`` at ``t``: draw their dwell."""
        self.phase[k] = stage
        nt = np.empty(k.size)
        for s in np.flatnonzero(np.bincount(stage, minlength=self.n_stages)):
            sel = stage == s
            ks = k[sel]
            nt[sel] = t[sel] + sample_dwell(self.spec.stages[s].dwell, self.dwell_keys[s], ks,
                                            self.visits[ks, s])
        self.next_time[k] = nt

    def _exits(self, k: np.ndarray) -> None:
        """Prospects at the end of a visit: stay, step back, move on, check out or lost."""
        s = self.phase[k].astype(np.int64)
        v = self.visits[k, s]
        self.visits[k, s] = v + 1
        u = uniforms(self.exit_keys[s], k, v)
        row = self.seg[k].astype(np.int64) * self.n_src + self.src[k]
        j = (u[:, None] >= self.cum[s, row]).sum(axis=1)
        target = self.targets[s, j]
        t = self.next_time[k]
        lost = target < 0
        if lost.any():
            self._end(k[lost], t[lost], self.state_of["lost"])
        go = ~lost
        k, t, target = k[go], t[go], target[go]
        score = np.clip(self.score[k] + self.points[target], -2.0, 2.0)
        self.score[k] = score
        self.events.add(customer=k, time=t, state=target, score=score)
        co = target == self.n_stages
        if co.any():
            kc = k[co]
            self.phase[kc] = self.CHECKOUT
            self.next_time[kc] = t[co] + sample_dwell(self.spec.checkout.dwell,
                                                      self.checkout_dwell_key, kc, 0)
        if not co.all():
            st = ~co
            self._enter_stages(k[st], t[st], target[st])

    def _end(self, k: np.ndarray, t: np.ndarray, state: int) -> None:
        """Record the final state entry (lost or churned); nothing more happens."""
        self.events.add(customer=k, time=t, state=state, score=self.score[k])
        self.phase[k] = self.DONE
        self.next_time[k] = np.inf

    def _checkout(self, k: np.ndarray) -> None:
        spec, co = self.spec, self.spec.checkout
        t = self.next_time[k]
        self.score[k] = np.clip(self.score[k] + spec.experience.checkout_per_abandon_prob
                                * co.abandon_prob, -2.0, 2.0)
        key = self.key(Purpose.CHECKOUT)
        abandon = uniforms(key, k, 0) < co.abandon_prob
        if abandon.any():
            ka, ta = k[abandon], t[abandon]
            self.abandon.add(customer=ka, time=ta)
            recover = uniforms(key, ka, 1) < co.recovery_prob
            self._end(ka[~recover], ta[~recover], self.state_of["lost"])
            self.phase[ka[recover]] = self.RECOVER
            self.next_time[ka[recover]] = ta[recover] + co.recovery_delay_days
        self.phase[k[~abandon]] = self.BUY  # buys now (same time, next batch)

    def _recover(self, k: np.ndarray) -> None:
        self.score[k] = np.clip(self.score[k] + self.spec.experience.recovered_cart, -2.0, 2.0)
        self.phase[k] = self.BUY

    # ------------------------------------------------------- life as a customer
    def _traits(self, k: np.ndarray, t: np.ndarray) -> None:
        """First purchase: the buyer's purchase rate, drop-out, and loyalty membership."""
        spec, ret, loy = self.spec, self.spec.retention, self.spec.loyalty
        key = self.key(Purpose.TRAITS)
        seg = self.seg[k]
        u = uniforms(key, k[:, None], np.arange(4))
        member = (u[:, 3] < loy.enrol_prob) if loy.enabled else np.zeros(k.size, bool)
        # by inverse transform, as in the agent engine: a scenario that changes r or (a, b)
        # moves each customer's trait monotonically instead of redrawing it
        lam = special.gammaincinv(ret.r, u[:, 0]) / ret.alpha_days
        if ret.model == "subscription":
            p = special.betaincinv(ret.sub_alpha, ret.sub_beta, u[:, 2])
        else:
            p = special.betaincinv(ret.a, ret.b, u[:, 1])
        self.rate[k] = (lam * np.asarray(spec.segment_purchase_rate)[seg] * ret.rate_multiplier
                        * np.where(member, loy.rate_multiplier, 1.0))
        self.drop[k] = np.minimum(1.0, p * np.asarray(spec.segment_churn)[seg]
                                  * np.where(member, loy.dropout_multiplier, 1.0))
        if member.any():
            self.member[k[member]] = True
            self.members.add(customer=k[member], time=t[member])

    def _rates(self, k: np.ndarray) -> np.ndarray:
        """Purchase rates per day as the customers table holds them (see RawRecords)."""
        ret = self.spec.retention
        if ret.model == "subscription":
            return np.full(k.size, 1.0 / ret.period_days)
        return self.rate[k] if ret.model == "repeat_purchase" else np.zeros(k.size)

    def _order_values(self, k: np.ndarray) -> np.ndarray:
        """Each buyer's expected order value (see ``AgentModel._life``)."""
        spec, ret = self.spec, self.spec.retention
        mult = self.seg_order_value[self.seg[k]] * ret.order_value_multiplier
        if ret.model == "subscription":
            return ret.price_per_period * mult
        if spec.order_value_model == "gamma_gamma":
            nu = special.gammaincinv(spec.gg_q, uniforms(self.key(Purpose.SPEND), k, 0)
                                     ) / spec.gg_gamma
            return spec.gg_p / nu * mult
        return math.exp(spec.order_log_mean + spec.order_log_sd ** 2 / 2) * mult

    def _buy(self, k: np.ndarray) -> None:
        """A purchase: the first, a repeat or a renewal (see ``AgentModel._life``)."""
        spec, ret, loy, ex, adv = (self.spec, self.spec.retention, self.spec.loyalty,
                                   self.spec.experience, self.spec.advocacy)
        t = self.next_time[k]
        n = self.n_orders[k]
        first = n == 0
        if first.any():
            self._traits(k[first], t[first])
        # this purchase's uniforms: order value, issue, advocacy, drop-out, gap
        u = uniforms(self.key(Purpose.ORDER), k[:, None],
                     n.astype(np.int64)[:, None] * ORDER_SLOTS + np.arange(5))
        seg_value = self.seg_order_value[self.seg[k]]
        if ret.model == "subscription":
            value = ret.price_per_period * seg_value
        elif spec.order_value_model == "gamma_gamma":  # see AgentModel._life
            uo = u[:, 0]
            if first.any():
                uo[first] = uniforms(self.key(Purpose.FIRST_ORDER), k[first], 0)
            nu = special.gammaincinv(spec.gg_q, uniforms(self.key(Purpose.SPEND), k, 0)
                                     ) / spec.gg_gamma
            value = special.gammaincinv(spec.gg_p, uo) / nu * seg_value
        else:
            z = special.ndtri(u[:, 0])
            if first.any():
                z[first] = special.ndtri(uniforms(self.key(Purpose.FIRST_ORDER), k[first], 0))
            value = np.exp(spec.order_log_mean + spec.order_log_sd * z) * seg_value
        value = value * ret.order_value_multiplier
        member = self.member[k]
        self.purchases.add(customer=k, time=t, value=value,
                           discount=np.where(member, value * loy.discount, 0.0))
        n1 = n + 1
        self.n_orders[k] = n1
        score = self.score[k]
        if ret.thank_you:
            score = np.clip(score + ex.thank_you, -2.0, 2.0)
        if member.any():
            score = np.where(member, np.clip(score + loy.reward_experience, -2.0, 2.0), score)
        self.score[k] = score
        for order, state in ((1, "purchase"), (2, "retention")):
            sel = n1 == order
            if sel.any():
                self.events.add(customer=k[sel], time=t[sel], state=self.state_of[state],
                                score=score[sel])
        # advocacy: a satisfied customer may start to advocate
        could = ~self.advocate[k] & (score >= adv.min_experience)
        if could.any() and spec.advocate_prob > 0:
            kc = k[could]
            u_adv = u[could, 2]
            f = first[could]
            if f.any():
                u_adv[f] = uniforms(self.key(Purpose.FIRST_ADVOCACY), kc[f], 0)
            p = _shift(spec.advocate_prob, np.exp(ex.advocacy_per_point * score[could]))
            yes = u_adv < p
            joins = kc[yes]
            if joins.size:
                self.events.add(customer=joins, time=t[could][yes],
                                state=self.state_of["advocacy"], score=self.score[joins])
                self._advocates_change(joins, +1)
        # an issue goes to the service desk; the others decide now
        issue = u[:, 1] < spec.support.issue_prob
        if issue.any():
            self._raise_tickets(k[issue], t[issue], n[issue])
            calm = ~issue
            k, t, n, u = k[calm], t[calm], n[calm], u[calm]
        self._decide(k, t, n, np.zeros(k.size, bool), u[:, 3], u[:, 4])

    def _decide(self, k: np.ndarray, t: np.ndarray, order: np.ndarray, leaves: np.ndarray,
                u_drop: np.ndarray | None = None, u_gap: np.ndarray | None = None) -> None:
        """After a purchase (and its ticket, if any): churn now, renew later, or buy again.

        ``order`` is the purchase's number (0: the first); ``u_drop``, ``u_gap`` its
        drop-out and gap uniforms (drawn here when not given).
        """
        spec, ret = self.spec, self.spec.retention
        if not k.size:
            return
        if ret.model == "none":
            self._churn(k[leaves], t[leaves])
            self.phase[k[~leaves]] = self.DONE
            self.next_time[k[~leaves]] = np.inf
            return
        if ret.model == "subscription":
            self._churn(k[leaves], t[leaves])
            stay = ~leaves
            self.phase[k[stay]] = self.RENEW
            self.next_time[k[stay]] = t[stay] + ret.period_days
            return
        if u_drop is None or u_gap is None:
            u = uniforms(self.key(Purpose.ORDER), k[:, None],
                         order.astype(np.int64)[:, None] * ORDER_SLOTS + np.array([3, 4]))
            u_drop, u_gap = u[:, 0], u[:, 1]
        odds = np.exp(-spec.experience.churn_per_point * self.score[k])
        # BG/NBD: drop-out after each repeat purchase, not after the first
        leaves = leaves | ((order >= 1) & (u_drop < _shift(self.drop[k], odds)))
        if leaves.any():
            self._churn(k[leaves], t[leaves])
            stay = ~leaves
            k, t, u_gap = k[stay], t[stay], u_gap[stay]
        self.phase[k] = self.BUY
        self.next_time[k] = t - np.log(u_gap) / self.rate[k]

    def _renew(self, k: np.ndarray) -> None:
        """Subscription: at the end of a period the customer renews or churns."""
        t = self.next_time[k]
        slot = (self.n_orders[k].astype(np.int64) - 1) * ORDER_SLOTS
        odds = np.exp(-self.spec.experience.churn_per_point * self.score[k])
        leaves = uniforms(self.key(Purpose.ORDER), k, slot + 3) < _shift(self.drop[k], odds)
        self._churn(k[leaves], t[leaves])
        self.phase[k[~leaves]] = self.BUY

    def _churn(self, k: np.ndarray, t: np.ndarray) -> None:
        if not k.size:
            return
        self._end(k, t, self.state_of["churned"])
        adv = k[self.advocate[k]]
        if adv.size:
            self._advocates_change(adv, -1)

    def _advocates_change(self, k: np.ndarray, sign: int) -> None:
        self.advocate[k] = sign > 0
        if sign > 0:
            self.advocate_ids.append(k)
        self.n_advocates += sign * k.size
        # from whole counts, not a running sum: the same total whatever the order of joining
        count = self.advocates_by_segment
        count += sign * np.bincount(self.seg[k], minlength=count.size)
        self.referral_rate = float(count @ self.seg_rate_per_day)

    # --------------------------------------------------------------- the desk
    def _raise_tickets(self, k: np.ndarray, t: np.ndarray, order: np.ndarray) -> None:
        """Tickets to the SimPy desk, with their draws made here (vectorised)."""
        sup, key = self.spec.support, self.key(Purpose.DESK)
        base = order.astype(np.int64) * DESK_SLOTS
        resolved = uniforms(key, k, base) < sup.first_contact_resolution
        u_leave = uniforms(key, k, base + 1)
        patience = -np.log(uniforms(key, k, base + 2)) * sup.patience_mean_days
        handling = sample_dwell(sup.handling, key, k, 0) if sup.handling.kind == "fixed" else (
            sup.handling.scale * self._handling_standard(key, k, base + 3))
        self.phase[k] = self.DESK
        self.next_time[k] = np.inf
        now = self.env.now
        for args in zip(k.tolist(), t.tolist(), handling.tolist(), patience.tolist(),
                        resolved.tolist(), u_leave.tolist(), strict=True):
            if args[1] < now:  # only after a ticket that ended earlier in the same tick
                self.late_tickets += 1
            self.u_leave[args[0]] = args[5]
            self.desk.submit(args[0], max(args[1], now), *args[2:5])

    def _handling_standard(self, key: int, k: np.ndarray, base: np.ndarray) -> np.ndarray:
        d = self.spec.support.handling
        if d.kind == "gamma":
            return standard_gamma(d.shape, key, k, base)
        u = uniforms(key, k, base)
        if d.kind == "exponential":
            return -np.log(u)
        if d.kind == "lognormal":
            return np.exp(d.shape * special.ndtri(u))
        return (-np.log(u)) ** (1.0 / d.shape)

    def _ticket_done(self, k: int, outcome: int, wait: float) -> None:
        """The ticket's wait and outcome are one touchpoint; the customer moves on at this
        time, in the next batch."""
        ex = self.spec.experience
        points = ex.wait_per_day * wait + (ex.ticket_resolved, ex.ticket_unresolved,
                                           ex.ticket_abandoned)[outcome]
        self.score[k] = min(2.0, max(-2.0, self.score[k] + points))
        u_leave = self.u_leave.pop(k)
        self.desk_leaves[k] = points <= ex.bad_threshold and u_leave < ex.leave_after_bad
        self.phase[k] = self.AFTER_DESK
        self.next_time[k] = self.env.now

    def _after_desk(self, k: np.ndarray) -> None:
        self._decide(k, self.next_time[k], self.n_orders[k] - 1, self.desk_leaves[k])

    # --------------------------------------------------------------------- run
    def _batch(self, due: np.ndarray, until: float) -> None:
        """Move the customers ``due`` on, step by step in the order the steps follow each
        other: a stage exit, then the checkout, a recovered cart, a renewal or the step
        after a ticket, then a purchase. A customer whose exit leads to a checkout that
        also falls before ``until``, and from there to a purchase, takes all three steps
        in this one batch; each step is a vectorised call over everyone at that step."""
        for handle, at_step in ((self._exits, lambda ph: ph < self.n_stages),
                                (self._checkout, lambda ph: ph == self.CHECKOUT),
                                (self._recover, lambda ph: ph == self.RECOVER),
                                (self._renew, lambda ph: ph == self.RENEW),
                                (self._after_desk, lambda ph: ph == self.AFTER_DESK),
                                (self._buy, lambda ph: ph == self.BUY)):
            k = due[at_step(self.phase[due]) & (self.next_time[due] < until)]
            if k.size:
                self.n_batched_events += k.size
                handle(k)

    def _advance(self, until: float) -> None:
        """Process every customer event before ``until``, batch by batch."""
        act = self.active
        act = act[self.phase[act] != self.DONE]
        self.active = act
        nt = self.next_time[act]
        due = act[nt < until]
        while due.size:
            self._batch(due, until)
            due = due[self.next_time[due] < until]

    def run(self) -> SimulationResult:
        spec, tick = self.spec, self.spec.tick_days
        horizon = spec.horizon_days
        n_ticks = math.ceil(horizon / tick)
        m = spec.market_size
        for i in range(n_ticks):
            t0, t1 = i * tick, min(horizon, (i + 1) * tick)
            self._exit_table(1.0 + spec.social_proof * self.n_advocates / m)
            self.candidates = None
            self._awareness(t0, t1)
            self._advance(t1)
            self.env.run(until=t1)
            # customers whose ticket ended in this tick move on now (churn, next order),
            # so the next tick's feedback already sees an advocate who left
            self._advance(t1)
        return self._result()

    def _result(self) -> SimulationResult:
        n, rec = self.n_aware, self.rec
        rec.aware_time = self.t_aware[:n].copy()
        rec.source = self.src[:n].copy()
        rec.segment = self.seg[:n].copy()
        # a buyer's score moves between state entries; the others' is their last event's
        buyers = np.flatnonzero(self.n_orders[:n] > 0)
        score = self.score[buyers]
        rec.traits = (buyers, self._rates(buyers), self.drop[buyers],
                      self._order_values(buyers))
        # the working arrays go before the tables are built: peak memory is the tables'
        for name in ("t_aware", "src", "seg", "score", "phase", "next_time", "visits",
                     "n_orders", "rate", "drop", "member", "advocate", "desk_leaves",
                     "thresholds", "active"):
            setattr(self, name, None)
        rec.events = self.events.columns()
        ab = self.abandon.columns()
        rec.ab_customer, rec.ab_time = ab["customer"], ab["time"]
        rec.purchases = self.purchases.columns()
        rec.referrals = self.referrals.columns()
        rec.members = self.members.columns()["customer"]
        rec.score = (buyers, score)
        rec.n_sim_events = next(self.env._eid) + self.n_batched_events
        return build_result(self.spec, self.seed, self.replication, rec)


def simulate_fast(spec: ModelSpec, seed: int, replication: int) -> SimulationResult:
    """Run one replication of ``spec`` with the fast engine."""
    return FastModel(spec, seed, replication).run()

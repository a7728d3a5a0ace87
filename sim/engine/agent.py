"""The agent engine: every customer who becomes aware, followed one by one, exactly.

The readable reference engine. A market process turns the awareness hazard into exact
awareness times; each aware customer then walks the stage graph, tries the checkout and,
after a first purchase, lives as a customer (a SimPy process of its own): buys again
(BG/NBD) or renews a subscription (shifted-beta-geometric), may join the loyalty programme,
raise tickets at the service desk, become an advocate who refers others, and eventually
churns. An experience score in
[-2, 2] follows the customer through every touchpoint and moves churn and advocacy.

Randomness is tied to customers (DESIGN.md section 5). Customer k (the k-th to become
aware) owns row k of every per-customer draw: segment, source channel, a dwell and an exit
uniform for each of its first ``VISITS`` visits to each stage, checkout and order-value
draws. Those rows come from streams keyed by (seed, replication, stream, block), never from
the order in which events fire, so a scenario that changes one customer's path leaves
everyone else's numbers alone (common random numbers). A buyer's life after the first
purchase draws from that customer's own stream (seed, replication, LIFE, k).

Awareness uses the order statistics of exponential thresholds: person i becomes aware
when the cumulative hazard H(t) = integral of h(s) ds passes an Exp(1) threshold E_i, with
h(t) = sum_c reach_c(t) + q A(t) / M + R(t) / U(t): channel reach, word of mouth from the
A(t) advocates (Bass), and referrals, which the advocates make at a total rate R(t) and
which land on one of the U(t) unaware people. Sorted, the thresholds are
E_(k) = E_(k-1) + X_k / (M - k), X_k ~ Exp(1) (Renyi's representation). The market process
waits exactly until H reaches the next threshold; h is piecewise constant (reach changes
at day boundaries, A and R when an advocate joins or leaves, which interrupts the wait,
U at each awareness), so awareness times are exact.

Events only where customers meet. A prospect's walk keeps its own clock and runs ahead of
the simulation's (``_prospect``), waiting for it only where it reads what others did (the
advocates counted by social proof); the market's clock moves on without an event while
nothing else is due before its next step. Waiting for every step as an event of its own
gives the same tables bit for bit, with about four times as many events.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import math
from functools import partial
from statistics import NormalDist

import numpy as np
import simpy
from scipy import special

from sim.engine.desk import serve
from sim.engine.records import RawRecords, SimulationResult, build_result
from sim.model.base import p_alive
from sim.model.rng import Stream, generator, name_key
from sim.model.spec import ModelSpec

__all__ = ["AgentModel", "simulate_agent"]

_NORMAL = NormalDist()
BLOCK = 1024  # customers per block of pre-drawn random numbers
VISITS = 4  # visits per stage drawn ahead; later visits use the customer's overflow stream
TRAITS = 4  # a buyer's lasting traits: purchase rate, drop-out, churn, loyalty enrolment
PER_ORDER = 5  # uniforms per purchase: order value, issue, advocacy, drop-out, next gap
ORDERS = 6  # purchases drawn ahead; later ones use the customer's own LIFE stream
_TINY = 2.0**-53  # uniforms for inverse transforms kept inside (0, 1)


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


def _shift(p: float, odds_multiplier: float) -> float:
    """Probability ``p`` with its odds multiplied (1 stays 1, 0 stays 0)."""
    if p >= 1.0:
        return 1.0
    x = p * odds_multiplier
    return x / (1.0 - p + x)


def _clip(score: float) -> float:
    return -2.0 if score < -2.0 else (2.0 if score > 2.0 else score)


class _Wake(simpy.Event):
    """An event at the absolute time ``at``, calling ``callback`` if one is given.

    SimPy schedules by delay, and ``now + (at - now)`` need not equal ``at`` in floating
    point; the clocks that run ahead of the simulation's (the market's, a prospect's walk)
    must meet it exactly (a purchase at time t starts the customer's life at t, bit for
    bit), so this event goes on SimPy's queue at ``at`` itself.
    """

    def __init__(self, env: simpy.Environment, at: float, callback=None) -> None:
        self.env, self.callbacks = env, [] if callback is None else [callback]
        self._ok, self._value = True, None
        heapq.heappush(env._queue, (at, simpy.events.NORMAL, next(env._eid), self))


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
        # flat per stage: customer i, visit v at [i * VISITS + v]. Memoryviews: an item
        # reads as a Python float, made only for the few visits a prospect really makes
        # (a list would make every float of the block up front: most are never read)
        self.dwell, self.exit = [], []
        for st in spec.stages:
            key = name_key(st.name)
            dwell_rng = generator(seed, rep, Stream.DWELL, b, key)
            exit_rng = generator(seed, rep, Stream.STAGE, b, key)
            dwell = np.ascontiguousarray(st.dwell.sample(dwell_rng, BLOCK * VISITS), float)
            self.dwell.append(memoryview(dwell))
            self.exit.append(memoryview(exit_rng.random(BLOCK * VISITS)))
        g = generator(seed, rep, Stream.CHECKOUT, b)
        u = g.random((BLOCK, 2))
        co_dwell = spec.checkout.dwell.sample(generator(seed, rep, Stream.DWELL, b, 0), BLOCK)
        self.checkout = np.column_stack([co_dwell, u]).tolist()
        self.order_z = generator(seed, rep, Stream.ORDER, b).standard_normal(BLOCK).tolist()
        self.advocate = generator(seed, rep, Stream.ADVOCACY, b).random(BLOCK).tolist()
        self.life = generator(seed, rep, Stream.LIFE_BLOCK, b).random(
            (BLOCK, TRAITS + ORDERS * PER_ORDER))
        # when a launched scenario reaches each customer (drawn only with a launch)
        self.switch = (spec.switch_times(generator(seed, rep, Stream.ROLLOUT, 0, b).random(
            BLOCK)).tolist() if spec.before is not None else None)
        # what a prospect's walk takes along (the block's lists, not ``self``: the next
        # block replaces them while a walk may still be waiting)
        self.rows = (self.dwell, self.exit, self.checkout, self.advocate, self.life)


class _Tables:
    """What prospects and customers read of one spec: the scenario's, or with a launch
    (``spec.before``) the baseline's too, each customer reading the one in force for them."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        # static exit tables per (stage, segment, source); social proof is applied live
        n_src = len(spec.channel_names)
        quality = [c.quality for c in spec.channels] + [1.0, spec.advocacy.referral_conversion]
        cum, self.split = [], []
        for st in spec.stages:
            lever = (spec.content_quality if "content" in st.levers else 1.0) * (
                spec.site_usability if "usability" in st.levers else 1.0)
            mult = [[lever * spec.segment_conversion[g] * quality[c] for c in range(n_src)]
                    for g in range(len(spec.segment_names))]
            cum.append([[_cumulative(st.probs, st.forward, x) for x in row] for row in mult])
            self.split.append([[_split(st.probs, st.forward, x) for x in row] for row in mult])
        # per (segment, source): the exit table of every stage, looked up once per customer
        self.cum_by = [[[table[g][c] for table in cum] for c in range(n_src)]
                       for g in range(len(spec.segment_names))]
        self.points = [st.experience for st in spec.stages]
        self.first_score = _clip(self.points[0])
        # social proof only shifts forward exits: stages without one skip the live branch
        self.social = [spec.social_proof > 0 and "social_proof" in st.levers and any(st.forward)
                       for st in spec.stages]
        # an advocate's referral rate per segment
        self.referral = [spec.advocacy.referral_rate_per_day * r for r in spec.segment_referral]


class AgentModel:
    """One replication of the agent engine. Build it, call ``run()`` once.

    ``stepwise = True`` turns off the two shortcuts (the walk's own clock, the market's
    clock moving without events): every step then waits for the simulation clock as an
    event of its own. The tests check that both ways give the same tables, bit for bit.
    """

    stepwise = False

    def __init__(self, spec: ModelSpec, seed: int, replication: int):
        self.spec, self.seed, self.replication = spec, seed, replication
        self.env = simpy.Environment()
        self.blocks = _Blocks(spec, seed, replication)
        m = spec.market_size
        x = generator(seed, replication, Stream.AWARENESS).exponential(size=m)
        self.thresholds = np.cumsum(x / (m - np.arange(m))).tolist()
        self.n_aware = 0
        # active advocates: count, total referral rate, and per segment a list to pick from
        self.advocates = 0
        self.referral_rate = 0.0
        # with a launch, view 0 is the business before it (the baseline), view 1 the
        # scenario's; without one both are the scenario's
        after = _Tables(spec)
        self.views = (_Tables(spec.before) if spec.before is not None else after, after)
        # active advocates per view and segment, to pick a referrer from; advocate k's
        # (view, slot) in them
        self.advocate_lists: list[list[list[int]]] = [
            [[] for _ in spec.segment_names] for _ in self.views]
        self.advocate_slot: dict[int, tuple[int, int]] = {}
        before = spec.before or spec
        self.desk = simpy.Resource(self.env, capacity=(
            before.support.agents if spec.start_day > 0 else spec.support.agents))
        if spec.start_day > 0 and before.support.agents != spec.support.agents:
            self.env.process(self._restaff())
        self.rec = RawRecords()
        self.horizon = spec.horizon_days
        self.spend_rows: dict[int, list[float]] = {}  # Gamma-Gamma spend uniforms by block
        # exit targets with "lost" (-1) appended: index len(exits) means lost
        self.targets = [(*st.targets, -1) for st in spec.stages]
        self.referral_source = len(spec.channel_names) - 1
        # what every prospect's walk reads (one tuple, unpacked once per walk)
        n_stages = len(spec.stages)  # the checkout's code; lost is 5 codes after it
        self.walk_context = (self.views, self.rec, self.rec.events.extend, spec.stages,
                             self.targets, n_stages, n_stages + 5, self.horizon,
                             self.stepwise)
        self.reach_total = spec.reach_per_day.sum(axis=1).tolist()
        self.reach_cum = np.cumsum(spec.reach_per_day, axis=1).tolist()
        self.market = self.env.process(self._market())
        if spec.base is not None:
            self._start_base()

    # ------------------------------------------------------------------ market
    def _market(self):
        env, spec, thresholds, reach_total = self.env, self.spec, self.thresholds, self.reach_total
        m, q = spec.market_size, spec.wom_q_per_day
        last_day = len(reach_total) - 1
        peek, stepwise = env.peek, self.stepwise
        cum_hazard, k, now = 0.0, 0, env.now
        while k < m:  # (conditionals, not min() and max(): this loop runs once per person)
            t0 = now
            day = int(t0)
            if day > last_day:
                day = last_day
            wom = q * self.advocates / m
            referral = self.referral_rate / (m - k)
            h = reach_total[day] + wom + referral
            to_boundary = day + 1 - t0
            # rounding may leave the hazard a hair past the threshold: wait 0 then
            gap = thresholds[k] - cum_hazard
            to_next = (gap if gap > 0.0 else 0.0) / h if h > 0 else math.inf
            step = to_next if to_next < to_boundary else to_boundary
            if not stepwise and t0 + step < peek():
                # nothing else happens before then, so nothing can change the hazard:
                # the market's clock moves on by itself, without an event
                now = t0 + step
            else:
                try:
                    yield _Wake(env, t0 + step)
                except simpy.Interrupt:  # advocates joined or left: the hazard changes now
                    now = env.now
                    cum_hazard += h * (now - t0)
                    continue
                now = env.now
            if to_next <= to_boundary:
                cum_hazard = thresholds[k]
                self._become_aware(k, now, day, wom, referral)
                k += 1
            else:
                cum_hazard += h * to_boundary

    def _become_aware(self, k: int, now: float, day: int, wom: float, referral: float
                      ) -> None:
        b, i = divmod(k, BLOCK)
        blk = self.blocks
        if blk.index != b:
            blk.load(b)
        cum = self.reach_cum[day]
        paid = cum[-1]
        u = blk.source[i] * (paid + wom + referral)
        if u < paid:
            source = bisect.bisect_right(cum, u)
        elif u < paid + wom or referral == 0:
            source = len(cum)  # word of mouth
        else:
            source = len(cum) + 1
            self._record_referral(k, now, (u - paid - wom) / referral)
        seg = blk.segment[i]
        rec = self.rec
        rec.segment.append(seg)
        rec.order_z.append(blk.order_z[i])
        rec.aware_time.append(now)
        rec.source.append(source)
        switch = 0.0
        if blk.switch is not None:
            switch = blk.switch[i]
            rec.switch.append(switch)
        self._follow(self._prospect(k, now, seg, source, blk.rows, i, switch))

    def _record_referral(self, k: int, now: float, u: float) -> None:
        """Credit the referral to an advocate, chosen in proportion to referral rates.

        ``u`` in [0, 1) is the position of the draw within the referral share of the
        hazard, so no extra random number is needed.
        """
        target = u * self.referral_rate
        for view, lists in zip(self.views, self.advocate_lists, strict=True):
            for g, advocates in enumerate(lists):
                weight = view.referral[g] * len(advocates)
                if target < weight and advocates:
                    referrer = advocates[min(int(target / weight * len(advocates)),
                                             len(advocates) - 1)]
                    break
                target -= weight
            else:
                continue
            break
        else:  # rounding at the very top of the range
            referrer = next(a[-1] for lists in reversed(self.advocate_lists)
                            for a in reversed(lists) if a)
        self.rec.referrals["referrer"].append(referrer)
        self.rec.referrals["customer"].append(k)
        self.rec.referrals["time"].append(now)

    def _advocacy_changed(self, k: int, seg: int, view: int, joins: bool) -> None:
        """Advocate k (segment ``seg``, reading ``view``) starts or stops advocating."""
        rate = self.views[view].referral[seg]
        advocates = self.advocate_lists[view][seg]
        if joins:
            self.advocate_slot[k] = (view, len(advocates))
            advocates.append(k)
        else:  # swap-remove
            slot = self.advocate_slot.pop(k)[1]
            last = advocates.pop()
            if last != k:
                advocates[slot] = last
                self.advocate_slot[last] = (view, slot)
        self.advocates += 1 if joins else -1
        # exactly 0 without advocates, whatever the rounding of the running sum
        self.referral_rate = (self.referral_rate + (rate if joins else -rate)
                              if self.advocates else 0.0)
        if (self.spec.wom_q_per_day > 0 or rate > 0) and self.market.is_alive:
            self.market.interrupt()

    def _restaff(self):
        """The desk's staff changes at the launch (``support.agents`` of the scenario)."""
        yield self.env.timeout(self.spec.start_day)
        self.desk._capacity = self.spec.support.agents  # SimPy has no public setter
        self.desk._trigger_put(None)  # more agents: serve the queue at once

    # ---------------------------------------------------------------- prospect
    def _follow(self, walk, _event: simpy.Event | None = None) -> None:
        """Run a prospect's walk (see ``_prospect``) on to the next time it must wait for."""
        for at in walk:  # (a loop, not next(): most walks end without waiting at all)
            _Wake(self.env, at, partial(self._follow, walk))
            return

    def _prospect(self, k, now, seg, source, rows, i, switch):
        """One prospect's journey, from awareness at ``now`` to a first purchase or loss.

        ``rows`` are the block's draws (``_Blocks.rows``), ``i`` the prospect's row,
        ``switch`` the time a launched scenario reaches them (before it they read the
        baseline's tables). The walk keeps its own clock ``t``: a visit's outcome depends
        only on the prospect's own draws, so the walk runs ahead of the simulation clock and
        records each state entry at its time. It yields a time only where it must read what
        others did by then (the advocates that social proof counts): ``_follow`` wakes it at
        exactly that time. A buyer's life after the first purchase is a SimPy process
        started at the purchase time. Nothing at or after the horizon is recorded, as the
        event loop would not reach it.
        """
        views, rec, record, stages, targets, checkout, lost, horizon, stepwise = \
            self.walk_context
        t = now
        reached = t >= switch
        view = views[reached]
        spec, social, points, cum_tables = (view.spec, view.social, view.points,
                                            view.cum_by[seg][source])
        dwell, exits, checkout_rows, advocate_rows, life_rows = rows
        base = i * VISITS
        stage = spec.advocacy.referral_entry if source == self.referral_source else 0
        score = view.first_score
        record((k, t, 0, score))
        if stage:  # a referred prospect: aware through the referral, considering at once
            score = _clip(score + points[stage])
            record((k, t, stage, score))
        visits = [0] * checkout
        overflow = None
        while True:  # the prospect stages
            v = visits[stage]
            visits[stage] = v + 1
            if v < VISITS:
                d, u = dwell[stage][base + v], exits[stage][base + v]
            else:  # a long loop: this customer's own stream, still independent of the rest
                if overflow is None:
                    overflow = generator(self.seed, self.replication, Stream.OVERFLOW, k)
                d, u = float(stages[stage].dwell.sample(overflow, 1)[0]), overflow.random()
            t += d
            if t >= horizon:
                return
            if not reached and t >= switch:  # the launched scenario reaches this prospect
                reached, view = True, views[1]
                spec, social, points, cum_tables = (view.spec, view.social, view.points,
                                                    view.cum_by[seg][source])
            if stepwise or social[stage]:
                yield t  # wait for the simulation clock: the advocates of time t
            if social[stage]:  # odds shift by social proof, live: see spec.odds_shift
                boost = 1.0 + spec.social_proof * self.advocates / spec.market_size
                fwd, other, lost_share = view.split[stage][seg][source]
                x = u * (boost * fwd[-1] + other[-1] + lost_share)
                j = 0
                while j < len(fwd) and x >= boost * fwd[j] + other[j]:
                    j += 1
            else:
                j = bisect.bisect_right(cum_tables[stage], u)
            target = targets[stage][j]
            if target < 0:
                record((k, t, lost, score))
                return
            if target < checkout and points[target]:
                score = _clip(score + points[target])
            record((k, t, target, score))
            if target == checkout:
                break
            stage = target
        # checkout: one attempt, abandonment from the friction model, maybe a reminder
        checkout_dwell, u_abandon, u_recover = checkout_rows[i]
        t += checkout_dwell
        if t >= horizon:
            return
        if stepwise:
            yield t
        if not reached and t >= switch:
            reached, spec = True, views[1].spec
        co, ex = spec.checkout, spec.experience
        score = _clip(score + ex.checkout_per_abandon_prob * co.abandon_prob)
        if u_abandon < co.abandon_prob:
            rec.ab_customer.append(k)
            rec.ab_time.append(t)
            if u_recover >= co.recovery_prob:
                record((k, t, lost, score))
                return
            t += co.recovery_delay_days
            if t >= horizon:
                return
            if stepwise:
                yield t
            score = _clip(score + ex.recovered_cart)
        _Wake(self.env, t, lambda _: self.env.process(self._life(
            k, seg, score, advocate_rows[i], life_rows[i], switch)))

    # ------------------------------------------------------- life as a customer
    def _life(self, k, seg, score, u_first_advocate, life, switch, known=None):
        """From the first purchase to churn (or the horizon).

        ``switch``: the time a launched scenario reaches the customer; until then they live
        in the baseline's business (``reach`` switches them over: the loyalty programme's
        offer, the scenario's multipliers and costs). ``known``: a customer of the installed
        base (``_start_base``), alive at the start with traits drawn from their posterior:
        (purchase rate, drop-out, spend level, loyalty member in the log). Their life starts
        with the wait for their next purchase.
        """
        env = self.env
        reached = env.now >= switch
        spec = self.views[reached].spec
        ret, loy, sup, ex, adv = (spec.retention, spec.loyalty, spec.support, spec.experience,
                                  spec.advocacy)
        purchase, retention, advocacy, churned = range(spec.n_stages + 1, spec.n_stages + 5)
        # Common random numbers: the customer's own numbers, in a fixed pattern whatever the
        # scenario (traits first, then the same uniforms at every purchase), so switching a
        # mechanism on or off does not shift the draws that come after it. The first ORDERS
        # purchases come from the block's row; later ones from the customer's LIFE stream.
        draws = life.tolist()
        rng = None
        desk_rng = None  # the desk's draws: a stream of their own, made at the first ticket
        # traits by inverse transform: a scenario that changes r or a, b moves each
        # customer's trait monotonically instead of redrawing it
        gamma_gamma = spec.order_value_model == "gamma_gamma"
        value_multiplier = spec.segment_order_value[seg]
        u_enrol = draws[3]
        if known is None:
            u_rate, u_drop_trait, u_theta = draws[:3]
            lam = float(special.gammaincinv(ret.r, u_rate)) / ret.alpha_days
            p_drop = float(special.betaincinv(ret.a, ret.b, u_drop_trait))
            theta = float(special.betaincinv(ret.sub_alpha, ret.sub_beta, u_theta))
            in_log = False
            own_rate = lam * spec.segment_purchase_rate[seg]
            own_drop = ((p_drop if ret.model == "repeat_purchase" else theta)
                        * spec.segment_churn[seg])
            if gamma_gamma:  # the buyer's spend level, from a stream of its own
                nu = self._spend_level(k)
        else:  # their own history stands in for the segment's multipliers
            own_rate, own_drop, nu, in_log = known
            if gamma_gamma:
                value_multiplier = 1.0
        rec = self.rec
        # loyalty: the offer at the first purchase (a base customer: at the start), or when
        # a launched programme reaches the customer
        member = loy.enabled and (in_log or u_enrol < loy.enrol_prob)
        if member:
            rec.members[k] = env.now

        def behave() -> tuple[float, float]:
            """Purchase rate and drop-out under the rules in force; the traits recorded."""
            r = own_rate * ret.rate_multiplier * (loy.rate_multiplier if member else 1.0)
            d = min(1.0, own_drop * (loy.dropout_multiplier if member else 1.0))
            if ret.model == "subscription":
                rec.traits[k] = (1.0 / ret.period_days, d, ret.price_per_period
                                 * spec.segment_order_value[seg] * ret.order_value_multiplier)
            else:  # the expected order: the buyer's own under Gamma-Gamma, else the population's
                mean = (spec.gg_p / nu if gamma_gamma
                        else math.exp(spec.order_log_mean + spec.order_log_sd ** 2 / 2))
                rec.traits[k] = (r if ret.model == "repeat_purchase" else 0.0, d,
                                 mean * value_multiplier * ret.order_value_multiplier)
            return r, d

        rate, drop = behave()
        advocate, n_orders = False, 0
        rec.score[k] = score

        def reach() -> None:
            """The launched scenario reaches the customer: its rules from now on."""
            nonlocal reached, spec, ret, loy, sup, ex, adv, member, rate, drop
            reached, spec = True, self.views[1].spec
            ret, loy, sup, ex, adv = (spec.retention, spec.loyalty, spec.support,
                                      spec.experience, spec.advocacy)
            if not member and loy.enabled and (in_log or u_enrol < loy.enrol_prob):
                member = True
                rec.members[k] = switch  # the offer comes with the launch
            rate, drop = behave()
            if advocate:  # refers at the scenario's rate from now on
                self._advocacy_changed(k, seg, 0, joins=False)
                self._advocacy_changed(k, seg, 1, joins=True)

        def wait(amount: float, at_rate: bool):
            """Wait ``amount`` (an Exp(1) hazard used up at the purchase rate, or days),
            switching to the scenario's rules on the way if it reaches the customer then:
            the rest of the hazard is used up at the new rate."""
            if not reached and switch < self.horizon:
                to_switch = switch - env.now
                if to_switch > 0 and (amount / rate if at_rate else amount) >= to_switch:
                    yield env.timeout(to_switch)
                    amount = max(amount - (to_switch * rate if at_rate else to_switch), 0.0)
                if to_switch <= 0 or env.now >= switch:
                    reach()
            yield env.timeout(amount / rate if at_rate else amount)

        if known is not None:  # bought before the run: wait for the next purchase
            n_orders = 1
            hazard = -math.log1p(-draws[TRAITS + PER_ORDER - 1])
            if reached:
                yield env.timeout(hazard / rate)
            else:
                yield from wait(hazard, True)

        def record(code: int) -> None:
            rec.events.extend((k, env.now, code, score))

        def touch(points: float, u_leave: float = 1.0) -> bool:
            """A touchpoint after the first purchase; True if it makes the customer leave."""
            nonlocal score
            score = rec.score[k] = _clip(score + points)
            return points <= ex.bad_threshold and u_leave < ex.leave_after_bad

        while True:
            # ---- a purchase: the first, a repeat or a renewal
            if n_orders < ORDERS:
                at = TRAITS + n_orders * PER_ORDER
                u_order, u_issue, u_advocate, u_drop, u_gap = draws[at:at + PER_ORDER]
            else:
                if rng is None:
                    rng = self._own_stream(k, Stream.LIFE)
                u_order, u_issue, u_advocate, u_drop, u_gap = rng.random(PER_ORDER).tolist()
            if ret.model == "subscription":
                value = ret.price_per_period * spec.segment_order_value[seg]
            elif gamma_gamma:  # Gamma(p, rate nu) around the buyer's level, by inverse transform
                u = _NORMAL.cdf(rec.order_z[k]) if n_orders == 0 else u_order
                u = min(max(u, _TINY), 1.0 - _TINY)
                value = float(special.gammaincinv(spec.gg_p, u)) / nu * value_multiplier
            else:
                z = rec.order_z[k] if n_orders == 0 else _NORMAL.inv_cdf(u_order)
                value = (math.exp(spec.order_log_mean + spec.order_log_sd * z)
                         * value_multiplier)
            value *= ret.order_value_multiplier
            rec.purchases["customer"].append(k)
            rec.purchases["time"].append(env.now)
            rec.purchases["value"].append(value)
            rec.purchases["discount"].append(value * loy.discount if member else 0.0)
            n_orders += 1
            if ret.thank_you:
                touch(ex.thank_you)
            if member:
                touch(loy.reward_experience)
            if n_orders <= 2:  # first purchase, then retained: bought again or renewed
                record(purchase if n_orders == 1 else retention)
            # ---- advocacy: a satisfied customer may start to advocate
            if not advocate and score >= adv.min_experience:
                u = u_first_advocate if n_orders == 1 else u_advocate
                if u < _shift(spec.advocate_prob, math.exp(ex.advocacy_per_point * score)):
                    advocate = True
                    record(advocacy)
                    self._advocacy_changed(k, seg, reached, joins=True)
            # ---- an issue goes to the service desk
            leaves = False
            if u_issue < sup.issue_prob:
                if desk_rng is None:
                    desk_rng = self._own_stream(k, Stream.DESK)
                u_resolve, u_leave = desk_rng.random(2).tolist()
                handling = float(sup.handling.sample(desk_rng, 1)[0])
                patience = float(desk_rng.exponential(sup.patience_mean_days))
                resolved = u_resolve < sup.first_contact_resolution
                outcome, waited = yield from serve(env, self.desk, rec.tickets, k, handling,
                                                   patience, resolved)
                if not reached and env.now >= switch:
                    reach()
                # the ticket is one touchpoint: its wait and its outcome together
                points = (ex.ticket_resolved, ex.ticket_unresolved, ex.ticket_abandoned)[outcome]
                leaves = touch(ex.wait_per_day * waited + points, u_leave)
            # ---- churn, or wait for the next purchase
            churn_odds = math.exp(-ex.churn_per_point * score)
            if not leaves and ret.model == "none":
                return
            if not leaves and ret.model == "subscription":
                if reached:
                    yield env.timeout(ret.period_days)
                else:
                    yield from wait(ret.period_days, False)
                leaves = u_drop < _shift(drop, churn_odds)
            elif not leaves:  # BG/NBD: drop-out after each repeat purchase, not the first
                leaves = n_orders > 1 and u_drop < _shift(drop, churn_odds)
                if not leaves:
                    if reached:  # (the common case: no launch, or after it)
                        yield env.timeout(-math.log1p(-u_gap) / rate)
                    else:
                        yield from wait(-math.log1p(-u_gap), True)
            if leaves:
                record(churned)
                if advocate:
                    self._advocacy_changed(k, seg, reached, joins=False)
                return

    def _own_stream(self, k: int, stream: Stream) -> np.random.Generator:
        """Customer k's own stream for its later orders (LIFE) or the desk (DESK); a base
        customer (k < 0) has streams of its own, so new customers' numbers never move."""
        if k >= 0:
            return generator(self.seed, self.replication, stream, k)
        return generator(self.seed, self.replication, Stream.BASE_LIFE, -1 - k,
                         int(stream == Stream.DESK))

    # ------------------------------------------------------------ installed base
    def _start_base(self) -> None:
        """Today's customers (``spec.base``) at time 0, customer ids -1, -2, ...

        Base row j draws from the BASE stream's block j // BLOCK: whether alive
        (P(alive) given the history), its segment where the file gives none, its spend
        level, then the traits and first orders' uniforms of a buyer. Rate and drop-out
        come from the posterior given the history by inverse transform, so a draw of the
        fitted parameters moves each customer's traits monotonically. Dead customers are
        recorded as churned at 0; the living start ``_life`` with a neutral experience
        score and, when the programme runs, as members of the loyalty programme if the file
        says so or if they take its offer (at the start, or when a launched programme
        reaches them: their time from the ROLLOUT stream, key 1).
        """
        spec, base, ret = self.spec, self.spec.base, self.spec.retention
        n, width = len(base), 3 + TRAITS + ORDERS * PER_ORDER
        rows = np.concatenate([
            generator(self.seed, self.replication, Stream.BASE, b).random((BLOCK, width))
            for b in range(-(-n // BLOCK))])[:n]
        u_alive, u_segment, u_spend, life = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3:]
        x, age = base.x, base.age
        alive = u_alive < p_alive(ret.r, ret.alpha_days, ret.a, ret.b, x, base.t_x, age)
        drawn = np.searchsorted(np.cumsum(spec.segment_shares)[:-1], u_segment, side="right")
        segment = np.where(base.segment >= 0, base.segment, drawn)
        tiny = np.clip(life[:, :2], _TINY, 1.0 - _TINY)
        rate = special.gammaincinv(ret.r + x, tiny[:, 0]) / (ret.alpha_days + age)
        drop = special.betaincinv(ret.a, ret.b + x, tiny[:, 1])
        nu = np.full(n, np.nan)
        if spec.order_value_model == "gamma_gamma":  # Gamma(q + p x, rate gamma + x m)
            known = ~np.isnan(base.mean_value)
            xs = np.where(known, x, 0.0)
            nu = (special.gammaincinv(spec.gg_q + spec.gg_p * xs,
                                      np.clip(u_spend, _TINY, 1.0 - _TINY))
                  / (spec.gg_gamma + xs * np.where(known, base.mean_value, 0.0)))
        switch = np.zeros(n)
        if spec.before is not None:
            switch = spec.switch_times(np.concatenate([
                generator(self.seed, self.replication, Stream.ROLLOUT, 1, b).random(BLOCK)
                for b in range(-(-n // BLOCK))])[:n])
            self.rec.base_switch = switch.tolist()
        self.rec.base_segment = segment.tolist()
        purchase, churned = spec.n_stages + 1, spec.n_stages + 4
        for j in range(n):
            k = -1 - j
            self.rec.events.extend((k, 0.0, purchase, 0.0))
            if not alive[j]:
                self.rec.events.extend((k, 0.0, churned, 0.0))
                continue
            known = (float(rate[j]), float(drop[j]), float(nu[j]), bool(base.member[j]))
            self.env.process(self._life(k, int(segment[j]), 0.0, 1.0, life[j],
                                        float(switch[j]), known))

    def _spend_level(self, k: int) -> float:
        """Buyer k's Gamma-Gamma spend level nu ~ Gamma(q, rate gamma), by inverse transform
        of row k of the SPEND stream: drawn only when that model is on, so the lognormal
        model's numbers stay as they were."""
        b, i = divmod(k, BLOCK)
        if b not in self.spend_rows:
            self.spend_rows[b] = generator(self.seed, self.replication, Stream.SPEND,
                                           b).random(BLOCK).tolist()
        u = min(max(self.spend_rows[b][i], _TINY), 1.0 - _TINY)
        return float(special.gammaincinv(self.spec.gg_q, u)) / self.spec.gg_gamma

    # --------------------------------------------------------------------- run
    def run(self) -> SimulationResult:
        # A run allocates millions of short-lived objects and almost no reference cycles;
        # the cyclic collector would only rescan them (about 15 % of the time at 100k).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self.env.run(until=self.spec.horizon_days)
        finally:
            if enabled:
                gc.enable()
        self.rec.n_sim_events = next(self.env._eid)  # SimPy's own count of scheduled events
        return build_result(self.spec, self.seed, self.replication, self.rec)


def simulate_agent(spec: ModelSpec, seed: int, replication: int) -> SimulationResult:
    """Run one replication of ``spec`` with the agent engine."""
    return AgentModel(spec, seed, replication).run()

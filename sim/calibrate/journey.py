"""A journey event log prepared and fitted: every prospect stage's dwell time and exit
probabilities (``funnel``), censored at the end of the data, and the channels' odds
multipliers. ``journey_from_run`` turns the simulator's own state entries into such a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.calibrate import funnel
from sim.calibrate.inputs import (
    _duplicates,
    _ids,
    _parse_option_date,
    _parse_times,
    _require_columns,
    check_date_format,
)
from sim.calibrate.mle import CalibrationError
from sim.model.spec import POST_STATES

__all__ = ["JourneyData", "JourneyFit", "fit_journey", "journey_from_run", "prepare_journey"]


@dataclass(frozen=True)
class JourneyData:
    """A journey event log cut into visits of the prospect stages (see
    ``sim.calibrate.funnel.stage_visits``); ``channel_visits`` per channel when given."""

    order: tuple[str, ...]  # prospect stages, the entry stage first
    visits: dict[str, funnel.StageVisits]
    channel_visits: dict[str, dict[str, funnel.StageVisits]]
    channel_customers: dict[str, int]
    n_rows: int
    n_customers: int
    n_after: int  # rows after a customer's checkout or loss, or after the end
    start: pd.Timestamp
    end: pd.Timestamp
    lost_recorded: bool
    resolution_days: float
    source: str
    n_duplicates: int = 0  # rows dropped as exact copies of an earlier row
    warnings: tuple[str, ...] = ()  # about the data: printed on stderr, and in the report


def prepare_journey(table: pd.DataFrame, source: str = "events",
                    customer_col: str = "customer_id", stage_col: str = "stage",
                    timestamp_col: str = "timestamp", channel_col: str | None = "channel",
                    end: str | None = None, checkout: Sequence[str] = ("checkout", "purchase"),
                    lost: str = "lost", date_format: str | None = None) -> JourneyData:
    """Check a journey event log and cut it into stage visits.

    Stages named in ``checkout`` end a customer's prospect path as the exit ``checkout``;
    ``lost`` ends it as a loss (when the log never names ``lost``, losses are inferred from
    customers whose entries stop). Every other stage is a prospect stage; the entry stage
    is the one most customers start in, the others follow in the order customers reach
    them. Rows that are exact copies of an earlier row (every column equal) are dropped,
    with a warning that counts them: entering a stage twice at the same recorded instant
    would be a visit of length zero ending in itself, a self-loop the data do not have.
    Timestamps are ISO unless ``date_format`` (strftime codes) says otherwise; ``end``
    accepts ISO or that format.

    Raises
    ------
    CalibrationError : missing columns, no rows, empty ids or stages, bad timestamps or
        timestamps outside ``FIRST_DATE`` .. ``LAST_DATE``, no checkout stage named, the
        lost stage among the checkout stages, a single customer, a stage name the simulator
        reserves, no customer reaching the checkout.
    """
    checkout = (checkout,) if isinstance(checkout, str) else tuple(str(c) for c in checkout)
    if not checkout or not all(c.strip() for c in checkout):
        raise CalibrationError(f"--checkout {','.join(checkout)!r}: name the stages that mean "
                               "the customer went to buy, comma-separated (such as "
                               "checkout,purchase)")
    if lost in checkout:
        raise CalibrationError(f"--lost {lost!r} is also one of the checkout stages "
                               f"(--checkout {','.join(checkout)!r}); a stage is one or the "
                               "other")
    _require_columns(table, {"customer": (customer_col, "--customer-col"),
                             "stage": (stage_col, "--stage-col"),
                             "timestamp": (timestamp_col, "--timestamp-col")}, source)
    ids = _ids(table[customer_col], customer_col, source)
    stages = _ids(table[stage_col], stage_col, source)
    check_date_format(date_format)
    when = _parse_times(table[timestamp_col], timestamp_col, source, date_format)
    n_rows = len(table)
    dup, where = _duplicates(table)
    n_dup = int(dup.sum())
    notes = []
    if n_dup:
        notes.append(f"{source}: {n_dup:,} row{'s' if n_dup > 1 else ''} dropped as exact "
                     f"cop{'ies' if n_dup > 1 else 'y'} of an earlier row ({where}); a stage "
                     "entered twice at the same recorded time cannot be told from a copy")
        keep = ~dup
        table = table[keep].reset_index(drop=True)
        ids, stages, when = (v[keep].reset_index(drop=True) for v in (ids, stages, when))
    stop = _parse_option_date(end, "--end", date_format)
    stop = when.max() if stop is None else stop
    if stop < when.min():
        raise CalibrationError(f"--end {stop} is before the first entry ({when.min()})")
    checkout_set = frozenset(checkout)
    seen = set(stages.unique())
    has_lost = lost in seen
    reserved = sorted((seen - checkout_set - {lost}) & set(POST_STATES))
    in_window = (when <= stop).to_numpy()
    n_customers = ids[in_window].nunique()
    if n_customers < 2:
        who = f" ({ids[in_window].iloc[0]!r})" if n_customers else ""
        raise CalibrationError(f"{source}: {n_customers} customer{who} by the end of the data; "
                               "the funnel needs many customers")
    start = when.min()
    time_days = ((when - start) / pd.Timedelta(days=1)).to_numpy(float)
    stop_days = (stop - start) / pd.Timedelta(days=1)
    whole_days = bool((when == when.dt.normalize()).all())
    resolution = 1.0 if whole_days else 1.0 / 86400
    codes, _ = pd.factorize(ids)
    rows = np.flatnonzero(in_window)
    order_idx = rows[np.lexsort((rows, time_days[rows], codes[rows]))]
    cust, stg, t = codes[order_idx], stages.to_numpy()[order_idx], time_days[order_idx]

    # prospect stages and their order: the most common first stage, then by the mean rank
    # of first entry among the customers who reach them
    is_end = np.isin(stg, list(checkout_set | {lost}))
    new_customer = np.r_[True, cust[1:] != cust[:-1]]
    seg_id = np.cumsum(new_customer) - 1
    ended = np.maximum.accumulate(np.where(is_end, np.arange(cust.size), -1))
    first_row = np.flatnonzero(new_customer)
    before_end = ended < first_row[seg_id]  # no checkout / loss yet on this customer's path
    path = before_end & ~is_end
    if reserved and np.isin(stg[path], reserved).any():
        raise CalibrationError(f"{source}: stage {reserved[0]!r} is a name the simulator "
                               "reserves; list it in --checkout if it means the customer went "
                               "on to buy, or rename it")
    firsts = pd.Series(stg[first_row][path[first_row]])
    if firsts.empty:
        raise CalibrationError(f"{source}: no customer starts in a prospect stage")
    entry = firsts.value_counts().index[0]
    ranks: dict[str, list[int]] = {}
    frame = pd.DataFrame({"c": cust[path], "s": stg[path]}).drop_duplicates()
    frame["rank"] = frame.groupby("c").cumcount()
    for s, r in frame.groupby("s")["rank"]:
        ranks[str(s)] = r.tolist()
    others = sorted((s for s in ranks if s != entry), key=lambda s: (np.mean(ranks[s]), s))
    order = (entry, *others)
    visits = funnel.stage_visits(cust, stg, t, stop_days, order, checkout_set,
                             lost if has_lost else None, resolution)
    if not any("checkout" in v.targets for v in visits.values()):
        raise CalibrationError(f"{source}: no customer reached a checkout stage "
                               f"({', '.join(sorted(checkout_set))}); name it with --checkout")
    # rows used: the prospect path and the entry that ends it (its first checkout or loss)
    previous_end = np.r_[-1, ended[:-1]]
    first_end = is_end & (previous_end < first_row[seg_id])
    n_after = int(len(table) - path.sum() - first_end.sum())  # duplicates apart
    channel_visits: dict[str, dict[str, funnel.StageVisits]] = {}
    channel_customers: dict[str, int] = {}
    if channel_col is not None and channel_col in table.columns:
        chan = table[channel_col].astype(str).str.strip().to_numpy()[order_idx]
        first_channel = pd.Series(chan[first_row], index=cust[first_row])
        per_row = first_channel.reindex(cust).to_numpy()
        for name in sorted(set(first_channel)):
            if not name:
                continue
            sel = per_row == name
            channel_visits[name] = funnel.stage_visits(cust[sel], stg[sel], t[sel], stop_days,
                                                   order, checkout_set,
                                                   lost if has_lost else None, resolution)
            channel_customers[name] = int((first_channel == name).sum())
    return JourneyData(order, visits, channel_visits, channel_customers, n_rows,
                       int(n_customers), n_after, start, stop, has_lost, resolution,
                       source, n_dup, tuple(notes))


@dataclass(frozen=True)
class JourneyFit:
    """Every stage's fit, the channel multipliers and the stage order."""

    data: JourneyData
    stages: dict[str, funnel.StageFit]
    channels: pd.DataFrame  # channel, customers, multiplier, se, low, high

    def exit_table(self) -> pd.DataFrame:
        rows = []
        for name, f in self.stages.items():
            for e in f.exits:
                rows.append({"stage": name, "exit": e.target, "probability": e.prob,
                             "se": e.se, "low": e.low, "high": e.high, "visits": e.count})
        return pd.DataFrame(rows)

    def stage_table(self) -> pd.DataFrame:
        rows = []
        for name, f in self.stages.items():
            for kind, c in f.candidates.items():
                ci = c.interval()
                rows.append({"stage": name, "kind": kind, "chosen": kind == f.dwell.kind,
                             "mean_days": c.mean_days, "mean_se": c.mean_se,
                             "mean_low": ci["mean_days"][0], "mean_high": ci["mean_days"][1],
                             "cv": c.cv, "cv_se": c.cv_se, "cv_low": ci["cv"][0],
                             "cv_high": ci["cv"][1], "loglik": c.loglik, "aic": c.aic,
                             "completed_visits": f.n_completed, "open_visits": f.n_open})
        return pd.DataFrame(rows)


def fit_journey(data: JourneyData) -> JourneyFit:
    """Fit every prospect stage, then the channels' forward-odds multipliers."""
    fits = {name: funnel.fit_stage(data.visits[name]) for name in data.order}
    rows = []
    for name, visits in data.channel_visits.items():
        m, se, lo, hi = funnel.channel_multiplier(fits, visits, data.order)
        rows.append({"channel": name, "customers": data.channel_customers[name],
                     "multiplier": m, "se": se, "low": lo, "high": hi})
    return JourneyFit(data, fits, pd.DataFrame(rows))


# ------------------------------------------------------------ simulator output as input
def journey_from_run(events: pd.DataFrame, channels: pd.Series | None = None,
                     start: str = "2024-01-01") -> pd.DataFrame:
    """The simulator's state entries (``run.events(replication)``: ``customer``, ``time``,
    ``state``) as a journey event log: ``customer_id``, ``stage``, ``timestamp`` (ISO,
    day 0 = ``start``) and, given each customer's source ``channels`` (indexed by
    customer), ``channel``."""
    when = pd.Timestamp(start) + pd.to_timedelta(events["time"].to_numpy(float), unit="D")
    out = pd.DataFrame({"customer_id": events["customer"].to_numpy(),
                        "stage": events["state"].astype(str).to_numpy(),
                        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f")})
    if channels is not None:
        out["channel"] = channels.reindex(events["customer"].to_numpy()).astype(str).to_numpy()
    return out

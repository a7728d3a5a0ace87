"""A transaction log prepared and fitted: repeat buying (BG/NBD), spend (Gamma-Gamma),
their diagnostics and the expected LTV per customer.

Conventions: a customer's transactions on the same calendar day are one purchase (amounts
summed); the first purchase starts the customer's clock and only later purchases are
repeats. The fit runs in days or weeks (``--unit``); the LTV discounts continuously at
ln(1 + annual rate) / 365 per day, as the simulator does. ``transactions_from_run`` turns
the simulator's own orders into such a log.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
way: an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284.
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
customer base analysis. *Journal of Marketing Research* 42(4), 415-430.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal, stats

from sim.calibrate import buying
from sim.calibrate.inputs import (
    _duplicates,
    _ids,
    _line,
    _parse_option_date,
    _parse_times,
    _require_columns,
    check_date_format,
    check_options,
)
from sim.calibrate.mle import CalibrationError, MLFit, delta_se

__all__ = ["TransactionData", "TransactionFit", "fit_transactions", "prepare_transactions",
           "transactions_from_run"]

DAYS_PER_YEAR = 365.0  # the simulator's discounting: ln(1 + annual rate) / 365 per day
BASE_WINDOWS_DAYS = (30, 90, 365)  # customers.csv: expected purchases in the next ... days
DAYS_PER_UNIT = {"day": 1.0, "week": 7.0}
HIST_BINS = 8  # repeat purchases 0 .. 6 and 7+, as in Fader, Hardie & Lee (2005)
MAX_AMOUNT = 1e12  # one transaction, in currency units: larger is a unit or export error


@dataclass(frozen=True)
class TransactionData:
    """A transaction log summarised for the BG/NBD and Gamma-Gamma models.

    ``customers``: one row per customer whose first purchase is on or before the end of
    calibration: ``customer_id``, ``first_purchase`` (date), ``x`` (repeat purchases in
    the calibration period), ``t_x`` and ``T`` (ages at the last repeat purchase and at
    the end of calibration, in ``unit``s), ``mean_repeat_value`` (NaN when x = 0),
    ``purchases_holdout`` (NaN without a holdout). ``purchases``: every purchase (a
    customer's day) of those customers up to the end of the data used: ``customer_id``,
    ``day``, ``amount``, ``repeat`` (not the first).
    """

    customers: pd.DataFrame
    purchases: pd.DataFrame
    unit: str
    first_date: pd.Timestamp
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp | None
    n_rows: int
    n_merged: int  # transactions merged into another on the same day
    n_later: int  # transactions after the data used (or of customers first seen later)
    n_zero: int  # purchases of zero value
    source: str
    n_duplicates: int = 0  # rows that are exact copies of an earlier row
    warnings: tuple[str, ...] = ()  # about the data: printed on stderr, and in the report

    @property
    def days_per_unit(self) -> float:
        return DAYS_PER_UNIT[self.unit]

    @property
    def holdout_units(self) -> float:
        if self.holdout_end is None:
            return 0.0
        return (self.holdout_end - self.calibration_end).days / self.days_per_unit


def prepare_transactions(table: pd.DataFrame, source: str = "transactions",
                         customer_col: str = "customer_id", date_col: str = "date",
                         amount_col: str = "amount", calibration_end: str | None = None,
                         holdout_end: str | None = None, unit: str = "day",
                         drop_duplicates: bool = False, date_format: str | None = None
                         ) -> TransactionData:
    """Check a transaction log and summarise it per customer.

    Rows that are exact copies of an earlier row (every column equal) are counted in a
    warning; they are kept (and so summed into the customer's purchase of the day) unless
    ``drop_duplicates``. Dates are ISO unless ``date_format`` (strftime codes, such as
    ``%d/%m/%Y``) says otherwise; the date options accept ISO or that format.

    Raises
    ------
    CalibrationError : missing columns, empty data, an empty customer id, a date that is
        not ISO or outside ``FIRST_DATE`` .. ``LAST_DATE``, an amount that is not a finite
        number, is negative or above ``MAX_AMOUNT`` (naming the file line), a calibration
        end before the first purchase, a holdout end not after it, a single customer.
    """
    if unit not in DAYS_PER_UNIT:
        raise CalibrationError(f"--unit {unit!r}: one of {', '.join(DAYS_PER_UNIT)}")
    _require_columns(table, {"customer": (customer_col, "--customer-col"),
                             "date": (date_col, "--date-col"),
                             "amount": (amount_col, "--amount-col")}, source)
    ids = _ids(table[customer_col], customer_col, source)
    check_date_format(date_format)
    when = _parse_times(table[date_col], date_col, source, date_format)
    text = table[amount_col].astype(str).str.strip()
    amount = pd.to_numeric(text, errors="coerce")
    bad = (amount.isna() | ~np.isfinite(amount)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CalibrationError(f"{source}, line {_line(row)}: {amount_col} {text.iloc[row]!r} "
                               "is not a number (a finite amount, such as 12.50)")
    negative = (amount < 0).to_numpy()
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise CalibrationError(
            f"{source}, line {_line(row)}: {amount_col} {text.iloc[row]} is negative (refunds "
            "and returns are not purchases: net them against their purchase or drop them)")
    huge = (amount > MAX_AMOUNT).to_numpy()
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise CalibrationError(
            f"{source}, line {_line(row)}: {amount_col} {text.iloc[row]} is more than the "
            f"{MAX_AMOUNT:g} a transaction may have (amounts in one currency unit)")
    notes = []
    dup, where = _duplicates(table)
    n_dup = int(dup.sum())
    if n_dup:
        notes.append(
            f"{source}: {n_dup:,} row{'s are' if n_dup > 1 else ' is an'} exact cop"
            f"{'ies' if n_dup > 1 else 'y'} of an earlier row ({where}); "
            + ("dropped (--drop-duplicates)" if drop_duplicates else
               "kept, each summed into its customer's purchase of the day: if they are "
               "repeated exports of one order, remove them (or pass --drop-duplicates)"))
        if drop_duplicates:
            keep = ~dup
            ids, when, amount = ids[keep], when[keep], amount[keep]
    day = when.dt.normalize()
    end = _parse_option_date(calibration_end, "--calibration-end", date_format)
    end = day.max() if end is None else end.normalize()
    hold = _parse_option_date(holdout_end, "--holdout-end", date_format)
    first_date = day.min()
    if end < first_date:
        raise CalibrationError(f"--calibration-end {end.date()} is before the first "
                               f"transaction ({first_date.date()})")
    if hold is not None:
        hold = hold.normalize()
        if hold <= end:
            raise CalibrationError(f"--holdout-end {hold.date()} must be after the end of "
                                   f"calibration ({end.date()}; set it with --calibration-end)")
    last_used = end if hold is None else hold

    frame = pd.DataFrame({"customer_id": ids, "day": day, "amount": amount.astype(float)})
    merged = frame.groupby(["customer_id", "day"], sort=True, as_index=False)["amount"].sum()
    first = merged.groupby("customer_id")["day"].transform("min")
    keep = (first <= end) & (merged["day"] <= last_used)
    n_later = int(len(frame) - frame.merge(merged.loc[keep, ["customer_id", "day"]],
                                           on=["customer_id", "day"]).shape[0])
    purchases = merged.loc[keep].reset_index(drop=True)
    purchases["repeat"] = purchases["day"] > first[keep].to_numpy()
    n_customers = purchases["customer_id"].nunique()
    if n_customers == 0:
        raise CalibrationError(f"{source}: no purchase on or before the end of calibration "
                               f"({end.date()})")
    if n_customers == 1:
        raise CalibrationError(
            f"{source}: only one customer ({purchases['customer_id'].iloc[0]!r}) bought by the "
            "end of calibration; the models describe a population and need many customers")

    dpu = DAYS_PER_UNIT[unit]
    cal = purchases[purchases["day"] <= end]
    g = cal.groupby("customer_id", sort=True)
    customers = pd.DataFrame({"first_purchase": g["day"].min()})
    rep = cal[cal["repeat"]].groupby("customer_id")
    customers["x"] = rep.size().reindex(customers.index, fill_value=0).astype(int)
    last = rep["day"].max().reindex(customers.index)
    customers["t_x"] = ((last - customers["first_purchase"]).dt.days.fillna(0) / dpu)
    customers["T"] = (end - customers["first_purchase"]).dt.days / dpu
    customers["mean_repeat_value"] = rep["amount"].mean().reindex(customers.index)
    if hold is not None:
        later = purchases[purchases["day"] > end].groupby("customer_id").size()
        customers["purchases_holdout"] = later.reindex(customers.index, fill_value=0)
    else:
        customers["purchases_holdout"] = np.nan
    customers = customers.reset_index()
    return TransactionData(
        customers=customers, purchases=purchases, unit=unit, first_date=first_date,
        calibration_end=end, holdout_end=hold, n_rows=len(table),
        n_merged=int(len(frame) - len(merged)), n_later=n_later,
        n_zero=int((purchases["amount"] == 0).sum()), source=source, n_duplicates=n_dup,
        warnings=tuple(notes))


@dataclass(frozen=True)
class TransactionFit:
    """Fitted repeat buying and spend, with diagnostics and expected LTV per customer."""

    data: TransactionData
    bgnbd: MLFit  # (r, alpha, a, b), alpha per unit of data.unit
    spend: MLFit | None  # (p, q, gamma); None with --no-spend
    histogram: pd.DataFrame  # repeat purchases: observed and expected customers
    chi_square: dict[str, float]
    tracking: pd.DataFrame  # day, actual and expected cumulative repeat purchases
    holdout: pd.DataFrame | None  # by calibration repeat purchases: actual, predicted
    holdout_summary: dict[str, float] | None
    customers: pd.DataFrame  # data.customers plus predictions and LTV
    ltv: dict[str, Any]
    spend_diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def alpha_days(self) -> tuple[float, float]:
        """alpha converted to days (a rate per unit: alpha_days = units x alpha), with SE."""
        dpu = self.data.days_per_unit
        return self.bgnbd["alpha"] * dpu, self.bgnbd.se_of("alpha") * dpu

    def order_value(self) -> dict[str, float]:
        """The simulator's order value (lognormal mean and cv) matching the fitted
        Gamma-Gamma mean and cv of a single purchase value, with delta-method SEs."""
        if self.spend is None:
            return {}
        est, cov = self.spend.estimate, self.spend.cov
        mean, cv = buying.gg_order_value(est)
        out = {"order_value_mean": mean, "order_value_cv": cv,
               "order_value_mean_se": math.nan, "order_value_cv_se": math.nan}
        if np.isfinite(mean):
            out["order_value_mean_se"] = delta_se(
                lambda v: buying.gg_order_value(v)[0], est, cov)
        if np.isfinite(cv):
            out["order_value_cv_se"] = delta_se(
                lambda v: buying.gg_order_value(v)[1], est, cov)
        return out


def _histogram(params: np.ndarray, x: np.ndarray, big_t: np.ndarray
               ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Observed and expected customers by repeat purchases (0 .. 6, 7+) and a chi-square
    test (tail bins merged until every expected count is at least 5)."""
    k = HIST_BINS - 1
    values, counts = np.unique(big_t, return_counts=True)
    expected = np.zeros(HIST_BINS)
    for j in range(k):
        expected[j] = float(counts @ buying.bgnbd_pmf(params, j, values))
    expected[k] = max(x.size - expected[:k].sum(), 0.0)
    observed = np.array([(x == j).sum() for j in range(k)] + [(x >= k).sum()], dtype=float)
    labels = [str(j) for j in range(k)] + [f"{k}+"]
    obs, exp = list(observed), list(expected)
    while len(exp) > 2 and exp[-1] < 5:
        exp[-2] += exp.pop()
        obs[-2] += obs.pop()
    o, e = np.array(obs), np.array(exp)
    stat = float(((o - e) ** 2 / np.where(e > 0, e, np.nan)).sum())
    df = len(e) - 1 - 4
    p = float(stats.chi2.sf(stat, df)) if df >= 1 else math.nan
    table = pd.DataFrame({"repeat_purchases": labels, "observed": observed,
                          "expected": expected})
    return table, {"statistic": stat, "df": df, "p_value": p, "bins": len(e)}


def _tracking(data: TransactionData, params: np.ndarray) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration customers by day: observed, and the
    model's expectation sum_i E[X(day - first_i)] (unconditional, as in Fader, Hardie &
    Lee 2005, figure 2)."""
    start = data.first_date
    stop = data.holdout_end or data.calibration_end
    n_days = (stop - start).days + 1
    first_day = (data.customers["first_purchase"] - start).dt.days.to_numpy()
    cohort = np.bincount(first_day, minlength=n_days)[:n_days].astype(float)
    ages = np.arange(n_days) / data.days_per_unit
    ex = buying.bgnbd_expected(params, ages)
    # direct sums for short periods, FFT for long ones (a log may span up to 300 years:
    # 1e10 products directly); the FFT's rounding can dip below zero
    expected = np.maximum(signal.convolve(cohort, ex, method="auto")[:n_days], 0.0)
    rep = data.purchases[data.purchases["repeat"]]
    day = (rep["day"] - start).dt.days.to_numpy()
    actual = np.cumsum(np.bincount(day, minlength=n_days)[:n_days])
    return pd.DataFrame({"date": start + pd.to_timedelta(np.arange(n_days), unit="D"),
                         "actual": actual, "expected": expected})


def fit_transactions(data: TransactionData, spend: bool = True, n_starts: int = 6,
                     annual_discount_rate: float = 0.10, gross_margin: float = 1.0,
                     ltv_years: float = 3.0) -> TransactionFit:
    """Fit BG/NBD (and Gamma-Gamma with ``spend``) and compute the diagnostics and LTVs.

    LTV per customer = gross_margin x expected value of a purchase (Gamma-Gamma,
    conditional on the customer's repeat purchases) x discounted expected purchases over
    the next ``ltv_years`` after the end of calibration (continuous discounting at
    ln(1 + annual_discount_rate) / 365 per day, the simulator's). The LTV of a new customer
    uses the simulator's convention: the first purchase's margin undiscounted plus the
    discounted repeat purchases of the following ``ltv_years``.

    Raises
    ------
    CalibrationError : an option out of its range (``check_options``), or the data cannot
        support a fit (no repeat buyers, parameters not identified).
    """
    check_options(n_starts=n_starts, annual_discount_rate=annual_discount_rate,
                  gross_margin=gross_margin, ltv_years=ltv_years)
    c = data.customers
    x, t_x, big_t = c["x"].to_numpy(float), c["t_x"].to_numpy(float), c["T"].to_numpy(float)
    if not np.any(x > 0):
        raise CalibrationError(
            f"{data.source}: no customer bought again on a later day within the calibration "
            f"period ({len(c)} customers, each with purchases on one day only), so repeat "
            "buying cannot be fitted")
    bg = buying.fit_bgnbd(x, t_x, big_t, n_starts=n_starts)
    params = bg.estimate
    gg = None
    spend_diag: dict[str, Any] = {}
    if spend:
        buyers = (x > 0) & (c["mean_repeat_value"].fillna(0).to_numpy() > 0)
        if buyers.sum() < 2:
            raise CalibrationError(f"{data.source}: fewer than two customers with repeat "
                                   "purchases of positive value; the spend model cannot be "
                                   "fitted (use --no-spend to fit repeat buying only)")
        m = c["mean_repeat_value"].to_numpy(float)[buyers]
        try:
            gg = buying.fit_gamma_gamma(x[buyers], m, n_starts=n_starts)
        except CalibrationError as err:
            raise CalibrationError(f"{err} (use --no-spend to fit repeat buying only)") from None
        if gg["q"] <= 1:
            raise CalibrationError("Gamma-Gamma: q <= 1, so the mean purchase value is "
                                   "infinite; the spend model does not fit these data (use "
                                   "--no-spend)")
        corr = float(np.corrcoef(x[buyers], m)[0, 1]) if buyers.sum() > 2 else math.nan
        grid = np.linspace(0, float(np.percentile(m, 99.5)) * 1.05, 300)[1:]
        xs, nx = np.unique(x[buyers], return_counts=True)
        dens = sum(w * np.exp(buying.gg_loglik(gg.estimate, np.full(grid.size, xv), grid))
                   for xv, w in zip(xs, nx, strict=True)) / nx.sum()
        spend_diag = {"n_buyers": int(buyers.sum()), "n_excluded_zero_value":
                      int(((x > 0) & ~buyers).sum()), "corr_frequency_value": corr,
                      "values": m, "grid": grid, "density": dens}
    hist, chi = _histogram(params, x, big_t)
    tracking = _tracking(data, params)

    table = c.copy()
    # in days whatever the fit's unit: a customer base the simulator reads (market.base)
    table.insert(table.columns.get_loc("T") + 1, "t_x_days", c["t_x"] * data.days_per_unit)
    table.insert(table.columns.get_loc("T") + 2, "T_days", c["T"] * data.days_per_unit)
    table["p_alive"] = buying.bgnbd_p_alive(params, x, t_x, big_t)
    holdout = holdout_summary = None
    if data.holdout_end is not None:
        pred = buying.bgnbd_conditional_expected(params, data.holdout_units, x, t_x, big_t)
        table["predicted_holdout"] = pred
        actual = table["purchases_holdout"].to_numpy(float)
        group = np.minimum(x, HIST_BINS - 1).astype(int)
        labels = [str(j) for j in range(HIST_BINS - 1)] + [f"{HIST_BINS - 1}+"]
        rows = []
        for j, label in enumerate(labels):
            sel = group == j
            if sel.any():
                rows.append({"repeat_purchases": label, "customers": int(sel.sum()),
                             "actual_mean": float(actual[sel].mean()),
                             "predicted_mean": float(pred[sel].mean())})
        holdout = pd.DataFrame(rows)
        holdout_summary = {
            "customers": len(actual), "actual_total": float(actual.sum()),
            "predicted_total": float(pred.sum()),
            "mean_absolute_error": float(np.abs(actual - pred).mean()),
            "rmse": float(np.sqrt(((actual - pred) ** 2).mean())),
            "correlation": float(np.corrcoef(actual, pred)[0, 1]) if actual.std() > 0
            else math.nan,
            "weeks" if data.unit == "week" else "days": data.holdout_units,
        }

    dpu = data.days_per_unit
    delta = math.log1p(annual_discount_rate) / DAYS_PER_YEAR * dpu
    horizon = ltv_years * DAYS_PER_YEAR / dpu
    for days in BASE_WINDOWS_DAYS:  # what finance plans with: the next month, quarter, year
        table[f"expected_purchases_{days}d"] = buying.bgnbd_conditional_expected(
            params, days / dpu, x, t_x, big_t)
    table["expected_purchases"] = buying.bgnbd_conditional_expected(params, horizon, x, t_x, big_t)
    det = buying.bgnbd_discounted_purchases(params, x, t_x, big_t, delta, horizon)
    table["discounted_purchases"] = det
    det_new = float(buying.bgnbd_discounted_purchases(params, np.zeros(1), np.zeros(1),
                                                  np.zeros(1), delta, horizon)[0])
    ltv: dict[str, Any] = {
        "annual_discount_rate": annual_discount_rate, "gross_margin": gross_margin,
        "horizon_years": ltv_years,
        "discount_rate_per_day": math.log1p(annual_discount_rate) / DAYS_PER_YEAR,
        "new_customer_discounted_repeat_purchases": det_new,
        "new_customer_expected_repeat_purchases":
            float(buying.bgnbd_expected(params, np.array([horizon]))[0]),
    }
    if gg is not None:
        value = buying.gg_conditional_mean(gg.estimate, x, c["mean_repeat_value"].fillna(0))
        table["expected_value"] = value
        table["ltv"] = gross_margin * value * det
        mean_value = buying.gg_order_value(gg.estimate)[0]
        ltv |= {"new_customer_ltv": gross_margin * mean_value * (1 + det_new),
                "customer_ltv_mean": float(table["ltv"].mean()),
                "customer_ltv_total": float(table["ltv"].sum()),
                **{f"customer_ltv_p{q}": float(np.percentile(table["ltv"], q))
                   for q in (10, 50, 90)}}
    return TransactionFit(data, bg, gg, hist, chi, tracking, holdout, holdout_summary, table,
                          ltv, spend_diag)


# ------------------------------------------------------------ simulator output as input
def transactions_from_run(purchases: pd.DataFrame, start: str = "2024-01-01") -> pd.DataFrame:
    """The simulator's orders (``run.purchases()``: ``customer``, ``time`` in days,
    ``value`` and, for several replications, ``replication``) as a transaction log:
    ``customer_id``, ``date`` (ISO date-time, day 0 = ``start``), ``amount``.

    Customer numbers restart in every replication, so when the orders come from more than
    one replication the ids become ``"<replication>-<customer>"``: each replication's
    customers are distinct people of one larger sample, never merged into one history.
    """
    when = pd.Timestamp(start) + pd.to_timedelta(purchases["time"].to_numpy(float), unit="D")
    ids = purchases["customer"].to_numpy()
    if "replication" in purchases and purchases["replication"].nunique() > 1:
        ids = (purchases["replication"].astype(str) + "-"
               + purchases["customer"].astype(str)).to_numpy()
    return pd.DataFrame({"customer_id": ids,
                         "date": when.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                         "amount": np.round(purchases["value"].to_numpy(float), 2)})

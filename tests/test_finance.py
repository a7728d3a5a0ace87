"""The finance view: LTV by cohort, segment and channel, cohort value curves, payback, the
finance summary, their files and figures.

Covered: the tables reconcile with the customers table and the headline metrics (sums of
customers, LTV, margin, revenue and spend over the groups equal the run's totals; the
customer-weighted mean of the cohorts' LTV is ``ltv.mean``); value to date reaches each
customer's LTV and agrees with an independent computation from the order log; the payback
curve is the observable customers' mean of it; censoring (no cohort point beyond what the
horizon allows); closed forms (constant margin and no churn: the cumulative discounted
margin is a geometric annuity; shifted-beta-geometric churn: its expectation, within 4
standard errors); the CSV files load back with their documented columns; the comparison's
finance table; the command line writes everything.

Statistical tests name their seed and allow ``K_SE`` = 4 standard errors computed from the
sample (customers are independent).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import special

import sim
from sim import api
from sim.engine import simulate
from sim.measure import finance, metrics, stats
from sim.measure.metrics import DAYS_PER_MONTH
from sim.model.config import compose_config, to_container
from sim.model.spec import build_spec
from sim.present import figures
from sim.present.text import write_comparison

matplotlib.use("Agg")

K_SE = 4.0  # standard errors allowed in every statistical comparison
TIMEOUT_S = 300

# the documented columns (README, "The finance view")
CI = ("", "_ci_low", "_ci_high")
LTV_COLUMNS = [
    "dimension", "group", "acquisition_month", "cohort_start_day", "cohort_end_day",
    "months_observed", *(f"customers{s}" for s in CI), *(f"ltv_mean{s}" for s in CI),
    "ltv_p10", "ltv_p50", "ltv_p90", "ltv_total", *(f"clv_mean{s}" for s in CI), "clv_total",
    "discounted_margin_per_customer",
    "retention_costs_per_customer", "margin_total", "revenue_total", "spend",
    *(f"cac{s}" for s in CI), *(f"ltv_to_cac{s}" for s in CI), "n_replications"]
COHORT_COLUMNS = [
    "acquisition_month", "cohort_start_day", "cohort_end_day", "months_since_acquisition",
    "age_days", "customers", *(f"active_share{s}" for s in CI),
    *(f"discounted_margin_per_customer{s}" for s in CI),
    *(f"ltv_to_date_per_customer{s}" for s in CI), "n_replications"]
PAYBACK_COLUMNS = [
    "age_days", "customers_observable", *(f"ltv_to_date_per_customer{s}" for s in CI),
    *(f"cac{s}" for s in CI), "n_replications"]
FINANCE_VALUES = ("customers", "ltv_mean", "ltv_p10", "ltv_p50", "ltv_p90", "clv_mean", "cac",
                  "ltv_to_cac", "payback_days", "paid_back_share", "npv", "npv_clv", "revenue",
                  "gross_margin", "acquisition_spend", "profit")
FINANCE_COLUMNS = ["scenario", "replications", "horizon_days", "annual_discount_rate",
                   "discounting", *(f"{v}{s}" for v in FINANCE_VALUES for s in CI)]
DIFFERENCE_COLUMNS = [f"{v}_difference{s}" for v in ("ltv_mean", "clv_mean", "npv", "npv_clv")
                      for s in CI]
PNL_COLUMNS = ["month", "start_day", "end_day", "revenue_new", "revenue_base",
               "gross_margin_new", "gross_margin_base", "discounts", "acquisition_spend",
               "retention_costs_new", "retention_costs_base", "support_costs",
               "intervention_costs", *(f"profit{s}" for s in CI), "cumulative_profit"]
FINANCE_FILES = {"finance.csv": FINANCE_COLUMNS, "ltv.csv": LTV_COLUMNS,
                 "cohorts.csv": COHORT_COLUMNS, "payback.csv": PAYBACK_COLUMNS,
                 "pnl.csv": PNL_COLUMNS}

# a small run where every retention cost is on (loyalty fee, newsletter, thank-you notes,
# referral rewards), so that the net value differs from the margin
COSTLY = ["run=smoke", "run.replications=3", "run.horizon_days=240", "market.size=6000",
          "loyalty.enabled=true", "retention.messaging.newsletter=true",
          "retention.messaging.thank_you=true", "advocacy.program=true"]


@pytest.fixture(scope="module")
def costly() -> sim.Run:
    return sim.run(overrides=COSTLY)


def replications(run: sim.Run):
    return zip(run.experiment.results, run.experiment.metrics, strict=True)


# ----------------------------------------------------------- value to date, per customer
def test_value_to_date_reaches_ltv_and_agrees_with_the_order_log(costly: sim.Run) -> None:
    """``cumulative_values`` at each age against a direct computation from the order log,
    referrals and the running costs (purchases x ages broadcast, no cumulative sums);
    past the horizon it is each customer's LTV of ``customer_values`` (exact up to
    rounding)."""
    spec = costly.spec
    delta = spec.discount_rate_per_day
    assert spec.retention.messaging_cost_per_day > 0 and spec.retention.thank_you_cost > 0
    for result, _ in replications(costly):
        ages = np.array([0.0, 0.5, 7.0, 30.0, 95.5, 180.0, 10 * spec.horizon_days])
        got = metrics.cumulative_values(result, spec, ages)
        c, p, ref = result.customers, result.purchases, result.referrals
        buyers = got["customer"]
        t0 = c["t_purchase"]
        np.testing.assert_array_equal(buyers, np.flatnonzero(~np.isnan(t0)))
        values = metrics.customer_values(result, spec)
        np.testing.assert_allclose(got["ltv_to_date"][:, -1], values["ltv"][buyers],
                                   rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(got["discounted_margin"][:, -1], values["margin_pv"][buyers],
                                   rtol=1e-10, atol=1e-9)
        # independently: every flow against every age
        row = {k: i for i, k in enumerate(buyers)}
        rows = np.array([row[k] for k in p["customer"]])
        age = p["time"] - t0[p["customer"]]
        upto = age[:, None] <= ages[None, :]
        disc = np.exp(-delta * age)[:, None]
        margin = np.zeros((buyers.size, ages.size))
        np.add.at(margin, rows, upto * disc * p["margin"][:, None])
        costs = np.zeros_like(margin)
        np.add.at(costs, rows, upto * disc * spec.retention.thank_you_cost)
        paid = ~np.isnan(t0[ref["customer"]])
        r_age = t0[ref["customer"][paid]] - t0[ref["referrer"][paid]]
        np.add.at(costs, np.array([row[k] for k in ref["referrer"][paid]], dtype=int),
                  (r_age[:, None] <= ages[None, :]) * np.exp(-delta * r_age)[:, None]
                  * spec.advocacy.reward_per_referral)
        assert paid.sum() > 0  # referral rewards are exercised
        rate = (np.where(c["loyalty_member"], spec.loyalty.cost_per_member_per_day, 0.0)
                + spec.retention.messaging_cost_per_day)[buyers]
        running = np.minimum(ages[None, :], values["active_days"][buyers][:, None])
        costs += rate[:, None] * (1 - np.exp(-delta * running)) / delta
        np.testing.assert_allclose(got["discounted_margin"], margin, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(got["ltv_to_date"], margin - costs, rtol=1e-10, atol=1e-9)
        # at age 0: the first order, undiscounted
        np.testing.assert_allclose(got["discounted_margin"][:, 0], c["first_margin"][buyers],
                                   rtol=1e-12)
        assert np.all(np.diff(got["discounted_margin"], axis=1) >= -1e-12)


def test_payback_curve_is_the_observable_customers_mean(costly: sim.Run) -> None:
    """The payback curve (a running sum of flows by age) equals, at every whole age, the
    mean of ``cumulative_values`` over the customers observable that long (a matrix per
    customer): two implementations; ``payback_days`` is its first age at CAC."""
    spec = costly.spec
    for result, m in replications(costly):
        curve = metrics.payback_curve(result, spec)
        ages = curve["age_days"]
        values = metrics.cumulative_values(result, spec, ages)
        t0 = result.customers["t_purchase"][values["customer"]]
        seen = ages[None, :] <= (spec.horizon_days - t0)[:, None]
        np.testing.assert_array_equal(curve["customers_observable"], seen.sum(axis=0))
        mean = (values["ltv_to_date"] * seen).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
        ok = seen.sum(axis=0) > 0
        np.testing.assert_allclose(curve["ltv_to_date_per_customer"][ok], mean[ok],
                                   rtol=1e-9, atol=1e-9)
        assert np.all(np.isnan(curve["ltv_to_date_per_customer"][~ok]))
        hit = np.flatnonzero(curve["ltv_to_date_per_customer"] >= m["cac"])
        expected = float(ages[hit[0]]) if hit.size else float("nan")
        np.testing.assert_equal(m["payback_days"], expected)


# ------------------------------------------------------------------ reconciliation
def test_ltv_groups_reconcile_with_the_metrics_and_customers(costly: sim.Run) -> None:
    """Per replication, for each dimension (cohort, segment, channel): customers, LTV,
    margin, revenue and (cohorts, channels) spend add up to the run's totals; the
    customer-weighted mean LTV is ``ltv.mean``; the total row and the channels' CAC are the
    headline metrics; cohorts match a group-by of the customers table."""
    spec = costly.spec
    customers = costly.customers()
    for result, m in replications(costly):
        g = pd.DataFrame(metrics.ltv_groups(result, spec))
        total = g[g["dimension"] == "total"].iloc[0]
        assert total["customers"] == m["purchases"]
        for key, metric in (("ltv_mean", "ltv.mean"), ("ltv_p10", "ltv.p10"),
                            ("ltv_p50", "ltv.p50"), ("ltv_p90", "ltv.p90"), ("cac", "cac"),
                            ("ltv_to_cac", "ltv_to_cac"), ("spend", "spend.total"),
                            ("margin_sum", "gross_margin"), ("revenue_sum", "revenue")):
            assert total[key] == pytest.approx(m[metric], rel=1e-12), key
        for dim in ("cohort", "segment", "channel"):
            rows = g[g["dimension"] == dim]
            assert rows["customers"].sum() == m["purchases"], dim
            weighted = (rows["customers"] * rows["ltv_mean"].fillna(0)).sum() / m["purchases"]
            assert weighted == pytest.approx(m["ltv.mean"], rel=1e-12), dim
            for key in ("ltv_sum", "margin_sum", "revenue_sum", "discounted_margin_sum",
                        "retention_costs_sum"):
                assert rows[key].sum() == pytest.approx(total[key], rel=1e-12), (dim, key)
        np.testing.assert_allclose(g["discounted_margin_sum"] - g["retention_costs_sum"],
                                   g["ltv_sum"], rtol=1e-12, atol=1e-9)
        assert total["retention_costs_sum"] > 0
        cohorts, channels = g[g["dimension"] == "cohort"], g[g["dimension"] == "channel"]
        assert cohorts["spend"].sum() == pytest.approx(m["spend.total"], rel=1e-12)
        assert channels["spend"].sum() == pytest.approx(m["spend.total"], rel=1e-12)
        for _, row in channels.iterrows():
            np.testing.assert_equal(row["cac"], m[f"cac.{row['group']}"])
            assert row["customers"] == m[f"acquisitions.{row['group']}"]
        # the customers table, grouped by the month of the first purchase
        mine = customers[(customers["replication"] == result.replication)
                         & customers["t_purchase"].notna()]
        month = np.floor(mine["t_purchase"] / DAYS_PER_MONTH).astype(int)
        by = mine.groupby(month)["ltv"].agg(["size", "sum"])
        assert list(cohorts["acquisition_month"]) == list(range(len(cohorts)))
        got = cohorts.set_index("acquisition_month")
        np.testing.assert_array_equal(got.loc[by.index, "customers"], by["size"])
        np.testing.assert_allclose(got.loc[by.index, "ltv_sum"], by["sum"], rtol=1e-12)
        assert (got.drop(by.index)["customers"] == 0).all()


def test_ltv_table_aggregates_the_replications(costly: sim.Run) -> None:
    """Across replications: the total row repeats the headline estimates (mean and CI);
    totals of the groups add up to the mean totals (means are linear); every CI column is
    the t interval of the replications' values."""
    table = costly.ltv()
    exp, summary = costly.experiment, costly.summary
    total = table[table["dimension"] == "total"].iloc[0]
    for key, metric in (("ltv_mean", "ltv.mean"), ("cac", "cac"), ("ltv_to_cac", "ltv_to_cac"),
                        ("customers", "purchases")):
        e = summary[metric]
        assert (total[key], total[f"{key}_ci_low"], total[f"{key}_ci_high"]) == pytest.approx(
            (e.mean, e.low, e.high), rel=1e-12), key
    for q in (10, 50, 90):
        assert total[f"ltv_p{q}"] == pytest.approx(summary[f"ltv.p{q}"].mean, rel=1e-12)
    ltv_totals = np.mean([m["purchases"] * m["ltv.mean"] for m in exp.metrics])
    for dim in ("cohort", "segment", "channel"):
        rows = table[table["dimension"] == dim]
        assert rows["customers"].sum() == pytest.approx(summary["purchases"].mean, rel=1e-12)
        assert rows["ltv_total"].sum() == pytest.approx(ltv_totals, rel=1e-12)
        assert rows["margin_total"].sum() == pytest.approx(summary["gross_margin"].mean,
                                                           rel=1e-12)
        assert rows["revenue_total"].sum() == pytest.approx(summary["revenue"].mean, rel=1e-12)
    # a cohort row against the t interval of its replications' values
    cohort = table[(table["dimension"] == "cohort") & (table["group"] == "1")].iloc[0]
    per_rep = [pd.DataFrame(metrics.ltv_groups(r, costly.spec)).query(
        "dimension == 'cohort' and group == '1'").iloc[0]["ltv_mean"]
        for r in exp.results]
    e = stats.estimate(np.array(per_rep))
    assert (cohort["ltv_mean"], cohort["ltv_mean_ci_low"], cohort["ltv_mean_ci_high"]) == (
        pytest.approx(e.mean), pytest.approx(e.low), pytest.approx(e.high))
    assert cohort["n_replications"] == e.n
    # every row's count and CAC intervals: the t interval of the replications' values, cut
    # at 0 (metrics.metric_range), as the headline metrics' are
    per_rep = pd.concat([pd.DataFrame(metrics.ltv_groups(r, costly.spec)) for r in exp.results])
    for (dim, group), rows in per_rep.groupby(["dimension", "group"]):
        row = table[(table["dimension"] == dim) & (table["group"] == group)].iloc[0]
        for key in ("customers", "cac"):
            if key not in rows or rows[key].isna().all():
                continue
            whole = stats.estimate(rows[key].to_numpy(float))
            assert row[f"{key}_ci_low"] == pytest.approx(max(whole.low, 0.0), abs=1e-12)
            assert row[f"{key}_ci_high"] == pytest.approx(whole.high)


# ------------------------------------------------------------------------ censoring
@pytest.mark.parametrize("horizon", [31.0, 120.0, 240.0, 365.25, 730.0, 730.5])
def test_cohort_grid_is_censored_by_the_horizon(horizon: float) -> None:
    """Every cohort point can be reached by every customer of the cohort (cohort end + age
    <= horizon) and the next month could not; every month of the run has a cohort, whose
    curve starts at month 0."""
    grid = metrics.cohort_grid(horizon)
    end, age = grid["cohort_end_day"], grid["age_days"]
    assert np.all(end + age <= horizon + 1e-6)
    cohorts = np.unique(grid["acquisition_month"])
    assert list(cohorts) == list(range(math.ceil(horizon / DAYS_PER_MONTH - 1e-9)))
    for c in cohorts:
        since = grid["months_since_acquisition"][grid["acquisition_month"] == c]
        assert list(since) == list(range(since.size))
        end_c = min((c + 1) * DAYS_PER_MONTH, horizon)
        assert end_c + since.size * DAYS_PER_MONTH > horizon - 1e-6  # one more: too far
    assert grid["cohort_start_day"][0] == 0.0
    assert end.max() == pytest.approx(horizon)


def test_cohort_table_points_are_all_observed(costly: sim.Run) -> None:
    """In the simulation: every customer of a cohort was acquired in the cohort's month and
    could reach each of its points by the horizon; the table has exactly the grid's points,
    the whole cohort in each, and its values are the per-replication sums / cohort sizes."""
    spec = costly.spec
    table = costly.cohorts()
    grid = pd.DataFrame(metrics.cohort_grid(spec.horizon_days))
    pd.testing.assert_frame_equal(table[list(grid.columns)], grid, check_dtype=False)
    customers = costly.customers()
    buyers = customers[customers["t_purchase"].notna()]
    month = np.floor(buyers["t_purchase"] / DAYS_PER_MONTH).astype(int)
    last = table.groupby("acquisition_month")["age_days"].max()
    assert np.all(buyers["t_purchase"] + last.loc[month].to_numpy() <= spec.horizon_days)
    sizes = buyers.groupby([buyers["replication"], month]).size().unstack(fill_value=0)
    size = sizes.reindex(columns=last.index, fill_value=0).mean(axis=0)
    np.testing.assert_allclose(table["customers"], size.loc[table["acquisition_month"]])
    for result in costly.experiment.results:
        curves = metrics.cohort_curves(result, spec)
        assert np.all(curves["active"] <= curves["customers"])
        first = curves["months_since_acquisition"] == 0
        np.testing.assert_array_equal(curves["active"][first], curves["customers"][first])
    assert np.all(table["active_share"].between(0, 1))
    # monotone within a cohort: margin accumulates, customers only leave
    for _, rows in table.groupby("acquisition_month"):
        assert np.all(np.diff(rows["discounted_margin_per_customer"].dropna()) >= -1e-9)
        assert np.all(np.diff(rows["active_share"].dropna()) <= 1e-12)


# ------------------------------------------------------------------------ closed forms
@functools.cache
def _base() -> dict[str, Any]:
    return to_container(compose_config([]))


def subscription_config(size: int, horizon_days: float, alpha: float, beta: float,
                        period_days: float, margin: float, annual_rate: float,
                        messaging: bool = False) -> dict[str, Any]:
    """A market of subscribers and nothing else (as ``life_config`` in test_lifetime):
    one instant stage to a checkout nobody abandons, organic reach 5 per day (every first
    purchase within a few days), a subscription of ``margin`` per period (one segment,
    multipliers 1), churn theta ~ Beta(alpha, beta) at each renewal; no experience effects,
    tickets, loyalty, advocacy; with ``messaging`` a newsletter whose cost runs daily."""
    c = copy.deepcopy(_base())
    gross_margin = 0.5
    c["market"] = {"size": size, "segments": {"all": {"share": 1.0}}}
    c["channels"] = {"organic": {"organic_reach_per_day": 5.0}}
    c["journey"] = {"name": "subscribe",
                    "stages": {"shop": {"dwell": {"kind": "fixed", "mean_days": 0.0},
                                        "exits": {"checkout": 1.0}}},
                    "report": {"shop": ["shop"], "purchase": ["purchase"]}}
    c["checkout"] |= {"base_logit": -60.0, "dwell": {"kind": "fixed", "mean_days": 0.0}}
    c["advocacy"] |= {"advocate_prob": 0.0, "wom_q_per_day": 0.0, "referral_rate_per_day": 0.0,
                      "referral_entry_stage": "shop", "program": False}
    c["experience"] |= {"churn_per_point": 0.0, "leave_after_bad": 0.0,
                        "advocacy_per_point": 0.0}
    c["support"]["issue_prob"] = 0.0
    c["loyalty"]["enabled"] = False
    for key in ("newsletter", "recommendations", "cross_sell", "thank_you"):
        c["retention"]["messaging"][key] = False
    c["retention"]["messaging"]["newsletter"] = messaging
    c["retention"]["model"] = "subscription"
    c["retention"]["subscription"] = {"alpha": alpha, "beta": beta, "period_days": period_days,
                                      "price_per_period": margin / gross_margin}
    c["economics"] |= {"gross_margin": gross_margin, "annual_discount_rate": annual_rate}
    c["run"]["horizon_days"] = float(horizon_days)
    return c


ANNUITY_SEED = 7801


def test_constant_margin_no_churn_follows_the_annuity() -> None:
    """Margin m every P = 30 days from the first purchase, no churn (theta ~ 1e-12), a
    newsletter costing c per day: at age a the LTV to date of every customer is
    m (1 - q^(K+1)) / (1 - q) - c (1 - e^(-delta a)) / delta, q = e^(-delta P),
    K = floor(a / P), exactly (seed ANNUITY_SEED); so are the cohort curves, the payback
    curve at ages between renewals, and the discounted margin without the cost term."""
    m, period, rate = 12.0, 30.0, 0.12
    spec = build_spec(subscription_config(2_000, 400.0, 1.0, 1e12, period, m, rate,
                                          messaging=True))
    result = simulate(spec, seed=ANNUITY_SEED, replication=0)
    delta, cost = spec.discount_rate_per_day, spec.retention.messaging_cost_per_day
    assert delta == pytest.approx(math.log(1 + rate) / 365, rel=1e-12) and cost > 0
    np.testing.assert_allclose(result.purchases["margin"], m, rtol=1e-12)
    assert np.all(np.isnan(result.customers["t_churned"]))
    q = math.exp(-delta * period)

    def expected(age: np.ndarray, with_cost: bool = True) -> np.ndarray:
        k = np.floor(age / period)
        value = m * (1 - q ** (k + 1)) / (1 - q)
        return value - cost * -np.expm1(-delta * age) / delta if with_cost else value

    curves = pd.DataFrame(metrics.cohort_curves(result, spec))
    first = curves[curves["acquisition_month"] == 0]
    assert first["customers"].iloc[0] == result.n_customers == 2_000  # all in month 0
    ages = first["age_days"].to_numpy()
    # after month 0 (the first payment) the points fall between renewals
    assert np.all(np.abs(ages[1:] / period - np.round(ages[1:] / period)) > 1e-3)
    np.testing.assert_allclose(first["ltv_to_date"] / first["customers"], expected(ages),
                               rtol=1e-10)
    np.testing.assert_allclose(first["discounted_margin"] / first["customers"],
                               expected(ages, with_cost=False), rtol=1e-10)
    np.testing.assert_array_equal(first["active"], first["customers"])
    payback = metrics.payback_curve(result, spec)
    between = (payback["age_days"] % period == period / 2) & (
        payback["customers_observable"] == result.n_customers)
    assert between.sum() >= 10
    np.testing.assert_allclose(payback["ltv_to_date_per_customer"][between],
                               expected(payback["age_days"][between]), rtol=1e-10)


SBG_SEED = 7802


@functools.cache
def sbg_run():
    alpha, beta, period, m, rate = 2.0, 6.0, 30.0, 10.0, 0.12
    spec = build_spec(subscription_config(6_000, 400.0, alpha, beta, period, m, rate))
    return spec, simulate(spec, seed=SBG_SEED, replication=0), (alpha, beta, period, m)


def test_cohort_curve_follows_the_shifted_beta_geometric_expectation() -> None:
    """theta ~ Beta(2, 6) per renewal: a subscriber pays at age jP while it survived j
    renewals, probability S(j) = B(alpha, beta + j) / B(alpha, beta), so the expected
    discounted margin to age a is m sum_{j <= a/P} S(j) e^(-delta j P) and the share still
    active S(floor(a / P)) (seed SBG_SEED). Each point of the first cohort's curve within
    4 x sample SD / sqrt(n) of the former; the active share within 4 binomial SE."""
    spec, result, (alpha, beta, period, m) = sbg_run()
    delta = spec.discount_rate_per_day
    curves = pd.DataFrame(metrics.cohort_curves(result, spec))
    first = curves[curves["acquisition_month"] == 0]
    n = int(first["customers"].iloc[0])
    assert n == result.n_customers
    ages = first["age_days"].to_numpy()
    values = metrics.cumulative_values(result, spec, ages)["discounted_margin"]
    assert len(ages) >= 12
    for j, age in enumerate(ages):
        k = np.arange(int(age // period) + 1)
        survival = np.exp(special.betaln(alpha, beta + k) - special.betaln(alpha, beta))
        mean = m * float((survival * np.exp(-delta * k * period)).sum())
        se = values[:, j].std(ddof=1) / math.sqrt(n) if j else 0.0
        got = float(first["discounted_margin"].iloc[j]) / n
        assert abs(got - mean) <= K_SE * se + 1e-9, (age, got, mean, se)
        alive = survival[-1]
        share = float(first["active"].iloc[j]) / n
        assert abs(share - alive) <= K_SE * math.sqrt(alive * (1 - alive) / n) + 1e-12, age


# ------------------------------------------------------------------- files and the CLI
def run_py(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in ``cwd``, importing the same ``sim`` as this test session."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    src = str(Path(sim.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def cli_run(smoke_cli_run: tuple[subprocess.CompletedProcess[str], Path]) -> Path:
    """The folder of ``python -m sim run=smoke`` (conftest.smoke_cli_run, shared with
    test_cli)."""
    proc, out = smoke_cli_run
    assert proc.returncode == 0, proc.stderr
    return out


def test_cli_writes_the_finance_files_with_their_columns(cli_run: Path) -> None:
    """``python -m sim run=smoke`` writes the five tables (one header row, the documented
    columns, numbers where numbers belong) and the two new figures."""
    for name, columns in FINANCE_FILES.items():
        table = pd.read_csv(cli_run / name)
        assert list(table.columns) == columns, name
        numeric = [c for c in columns if c not in ("dimension", "group", "scenario",
                                                   "discounting")]
        for column in numeric:
            assert pd.api.types.is_numeric_dtype(table[column]), (name, column)
    for name in ("cohorts.png", "payback.png", "ltv.png"):
        assert (cli_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    finance = pd.read_csv(cli_run / "finance.csv")
    assert len(finance) == 1 and finance["scenario"].iloc[0] == "baseline"
    assert finance["discounting"].iloc[0] == metrics.FINANCE_CONVENTION
    assert finance["annual_discount_rate"].iloc[0] == pytest.approx(0.10, rel=1e-9)
    assert finance["horizon_days"].iloc[0] == 120
    ltv = pd.read_csv(cli_run / "ltv.csv")
    assert set(ltv["dimension"]) == {"total", "cohort", "segment", "channel"}
    assert ltv.loc[ltv["dimension"] == "cohort", "acquisition_month"].notna().all()
    assert ltv.loc[ltv["dimension"] != "cohort", "acquisition_month"].isna().all()
    doc = pd.read_json(cli_run / "metrics.json", typ="series")
    total = ltv[ltv["dimension"] == "total"].iloc[0]
    assert total["ltv_mean"] == pytest.approx(doc["metrics"]["ltv.mean"]["mean"], rel=1e-9)
    assert finance["npv"].iloc[0] == pytest.approx(doc["metrics"]["npv"]["mean"], rel=1e-9)
    assert finance["npv_ci_low"].iloc[0] == pytest.approx(doc["metrics"]["npv"]["low"],
                                                          rel=1e-9)


def test_written_tables_load_back_as_they_were(costly: sim.Run, tmp_path: Path) -> None:
    """``Run.write`` round trip: each CSV equals the API's DataFrame (10 significant
    digits), so a spreadsheet sees what the API returns."""
    costly.write(tmp_path, plots=False)
    for name, frame in (("finance", costly.finance()), ("ltv", costly.ltv()),
                        ("cohorts", costly.cohorts()), ("payback", costly.payback()),
                        ("pnl", costly.pnl())):
        back = pd.read_csv(tmp_path / f"{name}.csv")
        assert list(back.columns) == list(frame.columns) == FINANCE_FILES[f"{name}.csv"]
        assert len(back) == len(frame)
        for column in frame.columns:
            if pd.api.types.is_numeric_dtype(back[column]):
                np.testing.assert_allclose(back[column].astype(float),
                                           frame[column].astype(float), rtol=1e-9,
                                           equal_nan=True, err_msg=f"{name}.{column}")
            else:
                assert list(back[column].astype(str)) == list(frame[column].astype(str))


# -------------------------------------------------------------------- the comparison
@pytest.fixture(scope="module")
def comparison() -> api.Comparison:
    return api.compare(["remove_hidden_fees", "loyalty_program"], overrides=["run=smoke"])


def test_comparison_finance_has_one_row_per_scenario_with_cis(comparison: api.Comparison,
                                                              tmp_path: Path) -> None:
    """One row per scenario, the baseline first; every value with its interval; the paired
    differences are those of the comparison table (and zero for the baseline); the file
    written beside comparison.csv loads back with the documented columns. Without the
    specs (a multirun merged by ``python -m sim.report``) the same values, the horizon and
    discount rate empty."""
    table = comparison.finance()
    assert list(table["scenario"]) == ["baseline", "remove_hidden_fees", "loyalty_program"]
    assert list(table.columns) == FINANCE_COLUMNS + DIFFERENCE_COLUMNS
    for value in ("ltv_mean", "cac", "npv", "ltv_to_cac"):
        assert (table[f"{value}_ci_low"] <= table[value]).all(), value
        assert (table[value] <= table[f"{value}_ci_high"]).all(), value
    base = table.iloc[0]
    assert base["npv_difference"] == 0 and base["ltv_mean_difference"] == 0
    for _, row in table.iloc[1:].iterrows():
        for value, metric in (("npv", "npv"), ("ltv_mean", "ltv.mean")):
            ref = comparison.table.query(f"scenario == '{row['scenario']}' "
                                         f"and metric == '{metric}'").iloc[0]
            assert row[f"{value}_difference"] == pytest.approx(ref["difference"], rel=1e-12)
            assert row[f"{value}_difference_ci_low"] == pytest.approx(ref["difference_low"],
                                                                     rel=1e-12)
        est = comparison.runs[row["scenario"]].summary["npv"]
        assert (row["npv"], row["npv_ci_low"], row["npv_ci_high"]) == pytest.approx(
            (est.mean, est.low, est.high), rel=1e-12)
    per_rep = {k: r.experiment.metrics for k, r in comparison.runs.items()}
    descriptions = {k: r.spec.scenario_description for k, r in comparison.runs.items()}
    written = write_comparison(comparison.table, per_rep, descriptions, comparison.rank_by,
                               tmp_path / "with", plots=False, finance=table)
    assert "finance.csv" in [p.name for p in written]
    back = pd.read_csv(tmp_path / "with" / "finance.csv")
    assert list(back.columns) == FINANCE_COLUMNS + DIFFERENCE_COLUMNS
    assert back["annual_discount_rate"].tolist() == pytest.approx([0.1] * 3)
    write_comparison(comparison.table, per_rep, descriptions, comparison.rank_by,
                     tmp_path / "without", plots=False)
    merged = pd.read_csv(tmp_path / "without" / "finance.csv")
    assert list(merged.columns) == list(back.columns)
    assert merged[["horizon_days", "annual_discount_rate"]].isna().all().all()
    pd.testing.assert_frame_equal(merged.drop(columns=["horizon_days", "annual_discount_rate"]),
                                  back.drop(columns=["horizon_days", "annual_discount_rate"]))


def test_comparison_ltv_by_group_with_paired_differences(comparison: api.Comparison) -> None:
    """ltv.csv of a comparison: each scenario's own ltv_table, the baseline first, plus
    paired differences per group. Oracles: the baseline differs from itself by exactly 0;
    the total row's LTV difference is the comparison table's ltv.mean difference; the
    group totals' differences add up to the total's in every dimension; and a segment's
    difference recomputed from the customers tables (sum of LTV per replication, scenario
    minus baseline, averaged) is the same number."""
    table = comparison.ltv()
    names = ["baseline", "remove_hidden_fees", "loyalty_program"]
    assert list(dict.fromkeys(table["scenario"])) == names
    diff_cols = [f"{c}_difference{s}" for c in ("ltv_mean", "ltv_total")
                 for s in ("", "_ci_low", "_ci_high")]
    for name in names:
        rows = table[table["scenario"] == name].reset_index(drop=True)
        own = finance.ltv_table(comparison.runs[name].experiment)
        pd.testing.assert_frame_equal(rows.drop(columns=["scenario", *diff_cols]), own)
    base = table[table["scenario"] == "baseline"]
    assert (base["ltv_total_difference"] == 0).all()
    assert (base["ltv_mean_difference"].dropna() == 0).all()
    for name in names[1:]:
        rows = table[table["scenario"] == name]
        total = rows[rows["dimension"] == "total"].iloc[0]
        ref = comparison.table.query(f"scenario == '{name}' and metric == 'ltv.mean'").iloc[0]
        assert total["ltv_mean_difference"] == pytest.approx(ref["difference"], rel=1e-9)
        assert total["ltv_mean_difference_ci_low"] == pytest.approx(ref["difference_low"],
                                                                    rel=1e-9)
        for dim in ("cohort", "segment", "channel"):
            part = rows.loc[rows["dimension"] == dim, "ltv_total_difference"].sum()
            assert part == pytest.approx(total["ltv_total_difference"], rel=1e-9, abs=1e-6), dim
        premium = rows[(rows["dimension"] == "segment") & (rows["group"] == "premium")].iloc[0]
        sums = {k: comparison.runs[k].customers().query("segment == 'premium'")
                .groupby("replication")["ltv"].sum() for k in ("baseline", name)}
        assert premium["ltv_total_difference"] == pytest.approx(
            (sums[name] - sums["baseline"]).mean(), rel=1e-9)


@pytest.mark.slow
def test_cli_compare_writes_finance_csv(tmp_path: Path) -> None:
    out = tmp_path / "compare"
    proc = run_py(tmp_path, "-m", "sim", "run=smoke", "run.plots=false",
                  "compare=[remove_hidden_fees]", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "finance.csv")
    assert list(table["scenario"]) == ["baseline", "remove_hidden_fees"]
    assert list(table.columns) == FINANCE_COLUMNS + DIFFERENCE_COLUMNS
    assert table["annual_discount_rate"].tolist() == pytest.approx([0.1, 0.1])
    ltv = pd.read_csv(out / "ltv.csv")
    assert list(dict.fromkeys(ltv["scenario"])) == ["baseline", "remove_hidden_fees"]
    assert {"ltv_mean_difference", "ltv_total_difference_ci_high"} <= set(ltv.columns)


# ---------------------------------------------------------------------------- figures
def test_finance_figures_take_an_axes_and_return_it(costly: sim.Run) -> None:
    fig, axes = figures.plt.subplots(1, 3)
    try:
        assert figures.plot_cohort_curves(costly.cohorts(), costly.summary["cac"],
                                           ax=axes[0]) is axes[0]
        assert figures.plot_payback(costly.payback(), costly.summary["payback_days"],
                                     ax=axes[1]) is axes[1]
        marks = {"P10": costly.summary["ltv.p10"], "P50": costly.summary["ltv.p50"],
                 "P90": costly.summary["ltv.p90"], "mean": costly.summary["ltv.mean"]}
        ax = figures.plot_ltv(costly.customers()["ltv"].to_numpy(), ax=axes[2], marks=marks)
        assert ax is axes[2]
        labels = ax.get_legend_handles_labels()[1]
        assert [label.split()[0] for label in labels] == ["P10", "P50", "P90", "mean"]
        assert labels[0].startswith(f"P10 {costly.summary['ltv.p10'].mean:,.0f}")
    finally:
        figures.close(fig)
    for name, figure in costly.figures().items():
        assert figure.axes, name
        figures.close(figure)


# ------------------------------------------------------------ monthly profit and loss
@pytest.mark.parametrize("overrides", [
    ["run=smoke", "loyalty.enabled=true", "retention.messaging.newsletter=true",
     "advocacy.program=true", "scenario.cost_per_day=3"],
    ["run=smoke", "retention=subscription", "run.engine=fast"],
])
def test_monthly_pnl_adds_up_to_the_run(overrides: list[str]) -> None:
    """Summed over the months, every column of the P&L is the run's total of the same
    thing (revenue, margin, discounts, acquisition, retention, support and intervention
    costs, profit), in every replication: two independent computations of the same money."""
    from sim.measure.metrics import monthly_pnl

    run = sim.run(overrides=overrides)
    for res, m in zip(run.experiment.results, run.experiment.metrics, strict=True):
        pnl = monthly_pnl(res, run.spec)
        total = {k: v.sum() for k, v in pnl.items()}
        pairs = {"revenue": total["revenue_new"] + total["revenue_base"],
                 "gross_margin": total["gross_margin_new"] + total["gross_margin_base"],
                 "discounts": total["discounts"],
                 "costs.acquisition": total["acquisition_spend"],
                 "costs.retention": total["retention_costs_new"] + total["retention_costs_base"],
                 "costs.support": total["support_costs"],
                 "costs.intervention": total["intervention_costs"],
                 "profit": total["profit"]}
        for key, value in pairs.items():
            assert value == pytest.approx(m[key], rel=1e-9, abs=1e-6), key
        assert pnl["end_day"][-1] == run.spec.horizon_days
    table = run.pnl()  # across replications: the mean of each month, the profit's CI
    assert len(table) == pnl["month"].size
    assert table["cumulative_profit"].iloc[-1] == pytest.approx(
        np.mean([m["profit"] for m in run.experiment.metrics]), rel=1e-9)
    assert (table["profit_ci_low"] <= table["profit"]).all()

"""The installed base (``market.base``): today's customers, read from a file, simulated on.

Oracles: a base simulated forward without interventions buys, in total, what the BG/NBD
conditional expectation E[Y(t) | x, t_x, T] says, summed over its customers, and the share
alive at the start is the sum of P(alive) (Fader, Hardie & Lee 2005, eqs. 10 and 11: the
published closed forms, written out here; ``sim.calibrate`` computes the expectation by
quadrature instead); invariants: the new customers'
numbers do not move when a base is added, the base's and the new customers' parts add up
to the business's totals, the same seed gives the same tables.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from sim.engine import simulate
from sim.measure.metrics import BASE_TOTALS, daily_table, replication_metrics
from sim.model.config import compose_config
from sim.model.spec import SpecError, build_spec

R, ALPHA, A, B = 0.9, 60.0, 1.5, 6.0  # the default retention config (repeat_purchase)
# no experience effect on drop-out, so the base lives by BG/NBD alone
NEUTRAL = ["experience.churn_per_point=0", "experience.leave_after_bad=0"]


def history(n: int, seed: int, days: float = 365.0, params=(0.6, 40.0, 0.8, 2.5)
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) of ``n`` customers drawn from a BG/NBD with ``params`` (r, alpha, a, b),
    ages uniform on (1, days): a history as a transaction log would give it."""
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    age = rng.uniform(1, days, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > age[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, age


def write_base(path: Path, x, t_x, age, extra: dict[str, list] | None = None) -> str:
    columns = {"customer_id": [f"c{i}" for i in range(len(x))], "x": [int(v) for v in x],
               "t_x_days": list(t_x), "T_days": list(age)} | (extra or {})
    lines = [",".join(columns)] + [",".join(str(col[i]) for col in columns.values())
                                   for i in range(len(x))]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def p_alive(x, t_x, age, r=R, alpha=ALPHA, a=A, b=B) -> np.ndarray:
    """Fader, Hardie & Lee (2005), eq. 11."""
    xs = np.maximum(x, 1.0)
    odds = a / (b + xs - 1) * ((alpha + age) / (alpha + t_x)) ** (r + xs)
    return np.where(x > 0, 1 / (1 + odds), 1.0)


def expected_purchases(t: float, x, t_x, age, r=R, alpha=ALPHA, a=A, b=B) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: Fader, Hardie & Lee (2005), eq. 10 (the 2F1 closed form; a > 1),
    P(alive) times (a + b + x - 1) / (a - 1) [1 - ((alpha + T) / (alpha + T + t))^(r + x)
    2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))]."""
    x, age = np.asarray(x, float), np.asarray(age, float)
    z = t / (alpha + age + t)
    alive_part = (a + b + x - 1) / (a - 1) * (
        1 - ((alpha + age) / (alpha + age + t)) ** (r + x)
        * special.hyp2f1(r + x, b + x, a + b + x - 1, z))
    return p_alive(x, t_x, age, r, alpha, a, b) * alive_part


@pytest.fixture(scope="module")
def base_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, tuple]:
    x, t_x, age = history(1500, seed=11)
    path = tmp_path_factory.mktemp("base") / "customers.csv"
    return write_base(path, x, t_x, age), (x, t_x, age)


def base_runs(path: str, horizon: float, reps: int, *extra: str) -> tuple[list, object]:
    cfg = compose_config(overrides=[f"market.base={path}", "market.size=200",
                                    f"run.horizon_days={horizon}", *NEUTRAL, *extra])
    spec = build_spec(cfg)
    return [simulate(spec, seed=2026, replication=k) for k in range(reps)], spec


def check_forward(path: str, x, t_x, age, t: float, reps: int) -> None:
    """The base's orders in (0, t] against sum E[Y(t) | x, t_x, T], and the customers
    alive at the start against sum P(alive), each within 4 standard errors of the mean of
    ``reps`` replications (seed 2026)."""
    results, _ = base_runs(path, t, reps)
    orders, alive = [], []
    for res in results:
        base = res.customers["base"]
        orders.append(base[res.purchases["customer"]].sum())
        alive.append((res.customers["t_churned"][base] != 0).sum())
    for name, sims, expected in (
            ("orders", orders, expected_purchases(t, x, t_x, age).sum()),
            ("alive", alive, p_alive(x, t_x, age).sum())):
        sims = np.asarray(sims, float)
        se = sims.std(ddof=1) / math.sqrt(sims.size)
        assert abs(sims.mean() - expected) < 4 * se, (name, sims.mean(), expected, se)


def test_base_forward_matches_bgnbd_conditional_expectation(base_file) -> None:
    """A 1,500-customer base, 24 replications of 120 days."""
    path, (x, t_x, age) = base_file
    check_forward(path, x, t_x, age, 120.0, 24)


def test_base_leaves_new_customers_numbers_alone(base_file) -> None:
    """Adding a base (with advocacy and the desk off, so that it cannot reach the new
    customers through referrals, word of mouth or the queue) leaves every new customer's
    path exactly as it was: their numbers come from streams of their own."""
    path, _ = base_file
    quiet = ["advocacy.advocate_prob=0", "support.issue_prob=0", "market.size=3000",
             "run.horizon_days=200"]
    without = simulate(build_spec(compose_config(overrides=quiet)), seed=5, replication=0)
    with_base = simulate(build_spec(compose_config(overrides=[*quiet, f"market.base={path}"])),
                         seed=5, replication=0)
    new = with_base.part(~with_base.customers["base"])
    for key in ("t_aware", "t_purchase", "t_churned", "segment", "channel", "revenue"):
        np.testing.assert_array_equal(new.customers[key], without.customers[key], err_msg=key)
    np.testing.assert_array_equal(new.purchases["value"], without.purchases["value"])


def test_base_parts_add_up_and_new_metrics_unchanged(base_file) -> None:
    """The business's totals are the new customers' plus the base's; the journey metrics
    are the new customers' only (the base never enters the funnel)."""
    path, _ = base_file
    results, spec = base_runs(path, 200.0, 1)
    res = results[0]
    m = replication_metrics(res, spec)
    for key in BASE_TOTALS:
        assert m[key] == pytest.approx(m[f"new.{key}"] + m[f"base.{key}"], rel=1e-12), key
    base = res.customers["base"]
    assert m["aware"] == (~base).sum()
    assert m["purchases"] == (~np.isnan(res.customers["t_purchase"]) & ~base).sum()
    assert m["base.customers"] == base.sum() == 1500
    assert m["revenue"] == pytest.approx(res.purchases["revenue"].sum(), rel=1e-12)
    assert m["base.orders"] == base[res.purchases["customer"]].sum()
    # the base's value counts from the start, its acquisition cost is sunk: the new part's
    # NPV carries every channel's spend, the base's none
    assert m["base.npv"] == pytest.approx(m["base.ltv.mean"] * m["base.customers"], rel=1e-9)
    # the daily table's base columns add up to the base's totals
    daily = daily_table(res)
    assert daily["orders_base"].sum() == m["base.orders"]
    assert daily["revenue_base"].sum() == pytest.approx(m["base.revenue"], rel=1e-12)
    assert daily["active_customers_base"][-1] == m["base.active"]
    assert np.all(daily["active_customers_base"] <= daily["active_customers"])


def test_base_is_deterministic(base_file) -> None:
    path, _ = base_file
    a, _ = base_runs(path, 60.0, 1)
    b, _ = base_runs(path, 60.0, 1)
    for key in a[0].purchases:
        np.testing.assert_array_equal(a[0].purchases[key], b[0].purchases[key])


def test_base_loyalty_offer_at_launch(base_file) -> None:
    """A loyalty programme offers enrolment to every active base customer at the start:
    the share of members among those alive at the start is the enrolment probability
    (seed 2026, binomial SE)."""
    path, _ = base_file
    results, spec = base_runs(path, 30.0, 1, "loyalty.enabled=true")
    res = results[0]
    base = res.customers["base"]
    alive = base & (res.customers["t_churned"] != 0)
    share = res.customers["loyalty_member"][alive].mean()
    p = spec.loyalty.enrol_prob
    se = math.sqrt(p * (1 - p) / alive.sum())
    assert abs(share - p) < 4 * se, (share, p, se)
    assert not res.customers["loyalty_member"][base & ~alive].any()


def test_base_gamma_gamma_spend_posterior(tmp_path: Path) -> None:
    """With Gamma-Gamma spend, a base customer's orders are Gamma(p, nu) around a level
    from the posterior nu ~ Gamma(q + p x, gamma + x m): customers with many repeat
    purchases at mean m keep ordering at about m. Seed 2026: the mean order of the heavy
    buyers is within 4 SE of the posterior predictive mean p (gamma + x m) / (q + p x - 1)."""
    n = 400
    x, t_x, age = np.full(n, 20.0), np.full(n, 300.0), np.full(n, 310.0)
    path = write_base(tmp_path / "b.csv", x, t_x, age, {"mean_repeat_value": [150.0] * n})
    results, spec = base_runs(path, 120.0, 1, "economics.order_value_model=gamma_gamma")
    res = results[0]
    mine = res.customers["base"][res.purchases["customer"]]
    values = res.purchases["value"][mine]
    p, q, g = spec.gg_p, spec.gg_q, spec.gg_gamma
    expected = p * (g + 20 * 150.0) / (q + p * 20 - 1)
    # orders of one customer are correlated through nu: the SE from customer means
    cust = res.purchases["customer"][mine]
    means = np.bincount(cust, weights=values)[np.unique(cust)] / np.bincount(cust)[
        np.unique(cust)]
    se = means.std(ddof=1) / math.sqrt(means.size)
    assert abs(values.mean() - expected) < 4 * se, (values.mean(), expected, se)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("content", "message"), [
    ("", "empty"),
    ("a,b\n1,2\n", "no column x, t_x_days, T_days"),
    ("x,t_x_days,T_days\n", "no customers"),
    ("x,t_x_days,T_days\n1.5,2,3\n", "line 2: column x = '1.5'"),
    ("x,t_x_days,T_days\n1,5,3\n", "line 2: t_x_days = 5 is after T_days = 3"),
    ("x,t_x_days,T_days\n0,2,3\n", "t_x_days = 2 with x = 0"),
    ("x,t_x_days,T_days\n1,nan,3\n", "column t_x_days = 'nan'"),
    ("x,t_x_days,T_days\n1e300,2,3\n", "column x = '1e300': a whole number >= 0 (repeat "
     "purchases), at most 1e+09"),
    ("x,t_x_days,T_days,segment\n1,2,3,vip\n", "segment 'vip' is not a segment"),
    ("x,t_x_days,T_days,loyalty_member\n1,2,3,maybe\n", "loyalty_member = 'maybe'"),
    ("x,t_x_days,T_days\n1,2\n", "line 2: no value in column 'T_days'"),
])
def test_bad_base_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "base.csv"
    path.write_text(content)
    with pytest.raises(SpecError) as err:
        build_spec(compose_config(overrides=[f"market.base={path}"]))
    text = str(err.value)
    assert "market.base" in text and message in text, text


def test_base_refused_where_it_cannot_run(base_file, tmp_path: Path) -> None:
    path, _ = base_file
    for override, words in (("retention=subscription", "retention.model=repeat_purchase"),
                            ("run.engine=fast", "run.engine=agent")):
        with pytest.raises(SpecError, match=words):
            build_spec(compose_config(overrides=[f"market.base={path}", override]))
    with pytest.raises(SpecError, match="no such"):
        build_spec(compose_config(overrides=[f"market.base={tmp_path / 'missing.csv'}"]))
    with pytest.raises(SpecError, match="not a regular file"):
        build_spec(compose_config(overrides=[f"market.base={tmp_path}"]))


def test_auto_engine_is_agent_with_a_base(base_file) -> None:
    path, _ = base_file
    spec = build_spec(compose_config(overrides=[f"market.base={path}", "market.size=200000"]))
    assert spec.engine == "agent"


def test_p_alive_matches_the_closed_form() -> None:
    from sim.model.base import p_alive as sim_p_alive

    x, t_x, age = history(300, seed=3)
    np.testing.assert_allclose(sim_p_alive(R, ALPHA, A, B, x, t_x, age),
                               p_alive(x, t_x, age), rtol=1e-12)


# ------------------------------------------- a fitted business that reproduces itself
@pytest.fixture(scope="module")
def fitted_shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two years of orders of the simulated business (seed 5, 5,000 people), calibrated on
    the first 18 months with a 6-month holdout, as `python -m sim.calibrate transactions`
    does: the fitted business (business=fitted_shop) and its customer base."""
    import pandas as pd

    from sim.calibrate import calibrate_transactions, transactions_from_run

    root = tmp_path_factory.mktemp("shop")
    history = simulate(build_spec(compose_config(overrides=[
        "market.size=5000", "run.horizon_days=730"])), seed=5, replication=0)
    p = history.purchases
    orders = transactions_from_run(pd.DataFrame(
        {"customer": p["customer"], "time": p["time"], "value": p["value"]}), "2024-01-01")
    orders.to_csv(root / "orders.csv", index=False)
    fit, _ = calibrate_transactions(
        root / "orders.csv", name="shop", config_dir=root / "cfg", out_dir=root / "out",
        calibration_end="2025-06-30", holdout_end="2025-12-31", n_starts=2, plots=False)
    return {"root": root, "fit": fit, "base": root / "out" / "customers.csv",
            "holdout_days": (fit.data.holdout_end - fit.data.calibration_end).days}


def fitted_runs(shop: dict, horizon: float, reps: int, *extra: str) -> tuple[list, object]:
    cfg = compose_config([f"market.base={shop['base']}", "business=fitted_shop",
                          "market.size=500", f"run.horizon_days={horizon}", *extra],
                         config_dirs=[shop["root"] / "cfg"])
    spec = build_spec(cfg)
    return [simulate(spec, seed=2026, replication=k) for k in range(reps)], spec


def test_fitted_base_reproduces_the_fits_holdout_prediction(fitted_shop: dict) -> None:
    """The base of the fitted business simulated over the holdout (seed 2026, 16
    replications) buys, in total, what the fit's own holdout prediction in customers.csv
    says (sum of predicted_holdout, E[Y(t) | x, t_x, T] under the fitted parameters), and
    the customers alive at the start match the sum of its p_alive, within 4 SE."""
    import pandas as pd

    table = pd.read_csv(fitted_shop["base"])
    results, spec = fitted_runs(fitted_shop, fitted_shop["holdout_days"], 16,
                                "support.issue_prob=0")
    assert spec.order_value_model == "gamma_gamma" and spec.experience.churn_per_point == 0
    for name, sims, expected in (
            ("orders", [r.customers["base"][r.purchases["customer"]].sum() for r in results],
             table["predicted_holdout"].sum()),
            ("alive", [(r.customers["t_churned"][r.customers["base"]] != 0).sum()
                       for r in results], table["p_alive"].sum())):
        sims = np.asarray(sims, float)
        se = sims.std(ddof=1) / math.sqrt(sims.size)
        assert abs(sims.mean() - expected) < 4 * se, (name, sims.mean(), expected, se)


def test_fitted_spend_is_the_fitted_gamma_gamma(fitted_shop: dict) -> None:
    """In the fitted business, the new customers' repeat orders (seed 2026, one replication
    of a year, 5,000 people) have the fitted Gamma-Gamma mean p gamma / (q - 1): their
    mean within 4 SE (the SE from per-customer means: one customer's orders share nu)."""
    results, spec = fitted_runs(fitted_shop, 365.0, 1, "market.size=5000")
    res = results[0]
    p = res.purchases
    new = ~res.customers["base"][p["customer"]]
    first = p["time"] == res.customers["t_purchase"][p["customer"]]
    repeat = new & ~first
    cust = p["customer"][repeat]
    ids, counts = np.unique(cust, return_counts=True)
    sums = np.bincount(cust, weights=p["value"][repeat])[ids]
    expected = spec.gg_p * spec.gg_gamma / (spec.gg_q - 1)
    # mean over orders = sum of customer sums / orders; its SE by the ratio estimator
    mean = sums.sum() / counts.sum()
    se = math.sqrt(((sums - mean * counts) ** 2).sum()) / counts.sum()
    assert ids.size > 100
    assert abs(mean - expected) < 4 * se, (mean, expected, se)


def test_a_parameter_draw_recomputes_every_posterior(base_file) -> None:
    """In a PSA each draw builds its own spec, so the base's posteriors follow the drawn
    parameters: with a larger r every base customer alive in both runs buys at a higher
    rate (their own uniform through Gamma(r + x, alpha + T)'s inverse: monotone), and the
    drop-outs follow b the other way."""
    path, _ = base_file
    low, _ = base_runs(path, 30.0, 1, "retention.repeat.r=0.9", "retention.repeat.b=6")
    high, _ = base_runs(path, 30.0, 1, "retention.repeat.r=1.8", "retention.repeat.b=12")
    a, b = (r[0].part(r[0].customers["base"]).customers for r in (low, high))  # file order
    both = ~np.isnan(a["purchase_rate"]) & ~np.isnan(b["purchase_rate"])
    assert both.sum() > 500
    assert (b["purchase_rate"][both] > a["purchase_rate"][both]).all()
    assert (b["dropout"][both] < a["dropout"][both]).all()


def test_members_from_the_file_only_where_the_programme_runs(tmp_path: Path) -> None:
    """``loyalty_member`` in the file makes a member when the run has a loyalty programme,
    and nobody a member when it has none."""
    x, t_x, age = history(200, seed=4)
    path = write_base(tmp_path / "m.csv", x, t_x, age, {"loyalty_member": ["true"] * 200})
    off, _ = base_runs(path, 30.0, 1)
    on, _ = base_runs(path, 30.0, 1, "loyalty.enabled=true")
    for res, expected in ((off[0], False), (on[0], True)):
        c = res.customers
        alive = c["base"] & (c["t_churned"] != 0)
        assert alive.sum() > 50
        assert (c["loyalty_member"][alive] == expected).all()

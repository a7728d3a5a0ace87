"""``python -m sim.calibrate`` with bad, hostile and careless input.

Every probe of the hardening issue is kept as a regression test: dates out of range in a
log and in the options, numeric options that are NaN, infinite, negative or huge,
duplicated rows, names that YAML or OmegaConf would read differently (``${...}``, quotes,
colons, ``#``, line breaks), the default output folder and folders inside the package,
named pipes and links to devices. Each bad input gives one line ``error: ...`` on stderr
naming the file line or option, the value and what is allowed, and exit status 2 (``1``
for a folder that cannot be written); from Python a ``CalibrationError`` (an
``InputError``). A property-based test (hypothesis) then feeds malformed transaction and
journey logs: each either fits and writes its files, or stops with that one line.

The fits here use small synthetic logs (seeds named) and one optimiser start, so a fit
takes well under a second; ``TIME_BOUND_S`` is the bound a single example must meet.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from sim import calibrate
from sim.calibrate import cli, fitted, inputs, workflow
from sim.calibrate.mle import CalibrationError
from sim.errors import EXIT_INPUT, EXIT_OUTPUT, InputError
from sim.model.config import CONFIG_DIR, SCENARIO_DIR, compose_config, to_container

TIME_BOUND_S = 30.0  # one fuzz example (read, check, fit with one start, write), generous
FAST = ["--starts", "1", "--no-plots"]  # transactions: one optimiser start
FAST_J = ["--no-plots"]


# ----------------------------------------------------------------------------- logs
def transactions(n: int = 60, seed: int = 1) -> pd.DataFrame:
    """A small transaction log of 2024 drawn from BG/NBD and Gamma-Gamma (seed ``seed``):
    first purchases in the first 300 days, purchase rate ~ Gamma(1, 30 days), drop-out
    ~ Beta(1, 4) after each repeat purchase, values ~ Gamma(4, nu), nu ~ Gamma(5, 1/100)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        lam, drop, nu = rng.gamma(1.0, 1 / 30), rng.beta(1.0, 4.0), rng.gamma(5.0, 1 / 100)
        t = rng.uniform(0, 300)
        while t < 366:
            rows.append((f"c{i}", (pd.Timestamp("2024-01-01") + pd.Timedelta(days=t))
                         .strftime("%Y-%m-%d"), round(rng.gamma(4.0, 1 / nu), 2)))
            if len(rows) > 1 and rows[-2][0] == f"c{i}" and rng.random() < drop:
                break
            t += rng.exponential(1 / lam)
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def journey(n: int = 80, seed: int = 2, stages: tuple[str, str] = ("awareness",
                                                                  "consideration"),
            channels: tuple[str, str] = ("search", "social")) -> pd.DataFrame:
    """A small journey log (seed ``seed``): each customer enters ``stages[0]`` on one of
    the first 30 days, stays Exp(2 days), moves on with probability 0.6 (else is lost);
    in ``stages[1]`` stays Exp(3 days) and goes to checkout with probability 0.5, back
    with 0.1, else is lost. Timestamps to the second, losses recorded."""
    rng = np.random.default_rng(seed)
    first, second = stages
    rows = []
    for i in range(n):
        t = rng.uniform(0, 30)
        channel = channels[i % 2]
        stage = first
        for _ in range(20):
            rows.append((f"u{i}", stage, t, channel))
            t += rng.exponential(2.0 if stage == first else 3.0)
            u = rng.random()
            if stage == first:
                nxt = second if u < 0.6 else "lost"
            else:
                nxt = "checkout" if u < 0.5 else first if u < 0.6 else "lost"
            if nxt in ("checkout", "lost"):
                rows.append((f"u{i}", nxt, t, channel))
                break
            stage = nxt
    table = pd.DataFrame(rows, columns=["customer_id", "stage", "t", "channel"])
    table["timestamp"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(table.pop("t"), "D")
                          ).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return table[["customer_id", "stage", "timestamp", "channel"]]


def run(argv: list[str]) -> tuple[int, str, str]:
    """``cli.main`` with stdout and stderr captured (works inside hypothesis, where
    pytest's function-scoped capture fixtures do not)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def one_error(code: int, out: str, err: str, *needles: str) -> str:
    """Status 2, nothing on stdout, one line ``error: ...`` holding every needle."""
    assert code == EXIT_INPUT, (code, err)
    assert out == "", out
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def folders(tmp_path: Path) -> list[str]:
    return ["--config-dir", str(tmp_path / "cfg"), "--out", str(tmp_path / "out")]


@pytest.fixture(scope="module")
def tx_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "shop.csv"
    transactions().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def journey_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "events.csv"
    journey().to_csv(path, index=False)
    return path


def test_the_synthetic_logs_fit(tx_csv: Path, journey_csv: Path, tmp_path: Path) -> None:
    """The good logs every probe starts from fit and write their configs (so a refusal
    below is caused by the change the probe makes)."""
    code, _, err = run(["transactions", str(tx_csv), *folders(tmp_path), *FAST])
    assert code == 0 and err == "", err
    assert (tmp_path / "cfg" / "retention" / "fitted_shop.yaml").is_file()
    code, _, err = run(["journey", str(journey_csv), *folders(tmp_path), *FAST_J])
    assert code == 0 and err == "", err
    assert (tmp_path / "cfg" / "journey" / "fitted_events.yaml").is_file()


# ----------------------------------------------------------------- the customer base
def test_customer_base_pseudonymised_sorted_and_windowed(tx_csv: Path, tmp_path: Path) -> None:
    """customers.csv: one row per customer of the log, ids replaced by 16-hex salted hashes
    (distinct, none equal to a log id, new ones on every calibration) unless --keep-ids;
    the most valuable first; expected purchases in the next 30, 90 and 365 days growing
    with the window and equal, over 365 days, to the LTV's expected purchases with
    --ltv-years 1; P(alive) in [0, 1]."""
    log = pd.read_csv(tx_csv)
    out = []
    for k, extra in enumerate(([], [], ["--keep-ids"])):
        code, _, err = run(["transactions", str(tx_csv), "--config-dir", str(tmp_path / "c"),
                            "--out", str(tmp_path / f"o{k}"), "--ltv-years", "1", "--force",
                            *extra, *FAST])
        assert code == 0, err
        out.append(pd.read_csv(tmp_path / f"o{k}" / "customers.csv", dtype={"customer_id": str}))
    hashed, again, kept = out
    ids = set(log["customer_id"].astype(str))
    assert len(hashed) == len(ids) and hashed["customer_id"].is_unique
    assert hashed["customer_id"].str.fullmatch("[0-9a-f]{16}").all()
    assert not set(hashed["customer_id"]) & ids
    assert not set(hashed["customer_id"]) & set(again["customer_id"])  # a new salt each time
    assert set(kept["customer_id"]) == ids
    for table in out:
        assert table["ltv"].is_monotonic_decreasing
        assert ((table["p_alive"] >= 0) & (table["p_alive"] <= 1)).all()
        e30, e90, e365 = (table[f"expected_purchases_{d}d"] for d in (30, 90, 365))
        assert ((e30 >= 0) & (e30 <= e90) & (e90 <= e365)).all()
        np.testing.assert_allclose(e365, table["expected_purchases"], rtol=1e-9)
    # the same customers, the same numbers, whatever their names
    cols = ["x", "t_x", "T", "p_alive", "expected_purchases_90d", "ltv"]
    np.testing.assert_allclose(hashed[cols].to_numpy(), kept[cols].to_numpy(), rtol=1e-9)


# ------------------------------------------------------------------------ dates
@pytest.mark.parametrize(("value", "line"), [("9999-12-31", 5), ("1800-01-01", 5),
                                             ("2300-06-01T10:00:00+02:00", 5)])
def test_log_date_out_of_range(value: str, line: int, tmp_path: Path) -> None:
    """A date pandas cannot hold in nanoseconds (``OutOfBoundsDatetime`` before) or just
    far away: one line naming the file line, the value and the dates allowed."""
    src = tmp_path / "far.csv"
    src.write_text("customer_id,date,amount\nA,2024-01-02,10\nA,2024-02-02,12.5\n"
                   f"B,2024-01-05,8\nB,{value},3\n")
    one_error(*run(["transactions", str(src), *folders(tmp_path)]),
              f"far.csv, line {line}: date {value!r}", "1900-01-01 to 2199-12-31")
    src.write_text("customer_id,stage,timestamp\n1,awareness,2024-01-01\n"
                   f"1,checkout,{value}\n2,awareness,2024-01-02\n")
    one_error(*run(["journey", str(src), *folders(tmp_path)]),
              f"far.csv, line 3: timestamp {value!r}", "1900-01-01 to 2199-12-31")
    assert not (tmp_path / "cfg").exists()


def test_date_format_reads_other_logs_alike(tx_csv: Path, journey_csv: Path,
                                            tmp_path: Path) -> None:
    """The same logs written as 31/01/2024 (and '01/31/2024 13:05'), read with
    --date-format, fit to the same configs as the ISO logs; the date options take ISO or
    the format."""
    iso = pd.read_csv(tx_csv)
    dmy = iso.assign(date=pd.to_datetime(iso["date"]).dt.strftime("%d/%m/%Y"))
    dmy.to_csv(tmp_path / "shop.csv", index=False)
    run(["transactions", str(tx_csv), "--config-dir", str(tmp_path / "a"), "--out",
         str(tmp_path / "oa"), "--calibration-end", "2024-12-01", *FAST])
    code, _, err = run(["transactions", str(tmp_path / "shop.csv"), "--config-dir",
                        str(tmp_path / "b"), "--out", str(tmp_path / "ob"),
                        "--date-format", "%d/%m/%Y", "--calibration-end", "01/12/2024",
                        *FAST])
    assert code == 0, err
    fitted_a = (tmp_path / "a" / "retention" / "fitted_shop.yaml").read_text()
    fitted_b = (tmp_path / "b" / "retention" / "fitted_shop.yaml").read_text()
    strip = [line for line in fitted_a.splitlines() if "sha256" not in line]
    assert strip == [line for line in fitted_b.splitlines() if "sha256" not in line]
    events = pd.read_csv(journey_csv)
    mdy = events.assign(timestamp=pd.to_datetime(events["timestamp"])
                        .dt.strftime("%m/%d/%Y %H:%M:%S"))
    mdy.to_csv(tmp_path / "events.csv", index=False)
    code, _, err = run(["journey", str(tmp_path / "events.csv"), *folders(tmp_path),
                        "--date-format", "%m/%d/%Y %H:%M:%S", "--end", "2024-03-01",
                        *FAST_J])
    assert code == 0, err


def test_date_format_errors_name_the_line_or_the_format(tmp_path: Path) -> None:
    """A date that does not match --date-format: one line naming the file line, the value
    and the format; a format without day, month and year, or one pandas cannot read, is
    refused before the file is read; nothing is written."""
    src = tmp_path / "shop.csv"
    src.write_text("customer_id,date,amount\nA,02/01/2024,10\nA,2024-02-02,12.5\n")
    one_error(*run(["transactions", str(src), *folders(tmp_path), "--date-format",
                    "%d/%m/%Y"]),
              "shop.csv, line 3: date '2024-02-02'", "--date-format '%d/%m/%Y'")
    for fmt in ("%d/%m", "dd/mm/yyyy", "%d/%m/%Y %Q"):
        one_error(*run(["transactions", str(src), *folders(tmp_path), "--date-format", fmt]),
                  f"--date-format {fmt!r}")
    src.write_text("customer_id,date,amount\nA,02/01/2024,10\nA,02/02/2024,12.5\n")
    one_error(*run(["transactions", str(src), *folders(tmp_path), "--date-format",
                    "%d/%m/%Y", "--calibration-end", "2024/13/01"]),
              "--calibration-end '2024/13/01'", "or a date in --date-format '%d/%m/%Y'")
    assert not (tmp_path / "cfg").exists()


@pytest.mark.parametrize(("command", "option", "value"), [
    ("transactions", "--holdout-end", "2999-01-01"),
    ("transactions", "--calibration-end", "1066-10-14"),
    ("transactions", "--calibration-end", "99999-01-01"),
    ("transactions", "--holdout-end", "now"),
    ("journey", "--end", "9999-12-31"),
])
def test_date_option_out_of_range(command: str, option: str, value: str, tx_csv: Path,
                                  journey_csv: Path, tmp_path: Path) -> None:
    src = tx_csv if command == "transactions" else journey_csv
    err = one_error(*run([command, str(src), *folders(tmp_path), option, value]),
                    f"{option} {value!r}")
    assert "1900-01-01 to 2199-12-31" in err or "not an ISO date" in err, err


# ---------------------------------------------------------------- numeric options
@pytest.mark.parametrize(("option", "value", "allowed"), [
    ("--annual-discount-rate", "nan", "[0, 1]"),
    ("--annual-discount-rate", "inf", "[0, 1]"),
    ("--annual-discount-rate", "-0.1", "[0, 1]"),
    ("--annual-discount-rate", "1e308", "[0, 1]"),
    ("--ltv-years", "nan", "(0, 50]"),
    ("--ltv-years", "-inf", "(0, 50]"),
    ("--ltv-years", "0", "(0, 50]"),
    ("--ltv-years", "1e6", "(0, 50]"),
    ("--gross-margin", "nan", "(0, 1]"),
    ("--gross-margin", "1.5", "(0, 1]"),
    ("--starts", "0", "[1, 50]"),
    ("--starts", "1000000", "[1, 50]"),
])
def test_numeric_option_out_of_range(option: str, value: str, allowed: str, tx_csv: Path,
                                     tmp_path: Path) -> None:
    """NaN, infinities, negatives and huge values: refused before the file is read, with
    the option, the value and the range (a NaN discount rate used to reach the report)."""
    shown = repr(int(value)) if option == "--starts" else repr(float(value))
    one_error(*run(["transactions", str(tx_csv), *folders(tmp_path), f"{option}={value}"]),
              f"{option} {shown} is not in {allowed}")
    assert not (tmp_path / "out").exists()


def test_every_bad_option_in_one_message(tx_csv: Path, tmp_path: Path) -> None:
    err = one_error(*run(["transactions", str(tx_csv), *folders(tmp_path),
                          "--annual-discount-rate", "nan", "--ltv-years", "inf",
                          "--gross-margin", "-1", "--starts", "0"]))
    for option in ("--annual-discount-rate nan", "--ltv-years inf", "--gross-margin -1",
                   "--starts 0"):
        assert option in err, err


def test_options_checked_from_python(tmp_path: Path) -> None:
    """The Python API refuses the same values, before it looks for the file."""
    with pytest.raises(CalibrationError, match=r"--ltv-years nan is not in \(0, 50\]"):
        calibrate.calibrate_transactions(tmp_path / "missing.csv", config_dir=tmp_path / "c",
                                         out_dir=tmp_path / "o", ltv_years=float("nan"))
    data = calibrate.prepare_transactions(transactions())
    with pytest.raises(CalibrationError, match="--annual-discount-rate"):
        calibrate.fit_transactions(data, annual_discount_rate=float("inf"))
    with pytest.raises(CalibrationError, match=r"--starts 2\.5"):
        inputs.check_options(n_starts=2.5)
    assert issubclass(CalibrationError, InputError)


# --------------------------------------------------------------------- duplicates
def test_duplicate_transactions_warned_and_optionally_dropped(tmp_path: Path) -> None:
    """Every row twice: the same-day rule sums the copies (each purchase doubles), so the
    run says so on stderr and in the report, with the count and the first line; with
    ``--drop-duplicates`` the fit is the one of the log without copies."""
    table = transactions()
    src = tmp_path / "twice.csv"
    pd.concat([table, table]).to_csv(src, index=False)
    n = len(table)
    code, _, err = run(["transactions", str(src), *folders(tmp_path), *FAST])
    assert code == 0, err
    warning = [w for w in err.splitlines() if w.startswith("warning: ")]
    assert len(warning) == 1 and f"{n:,} rows are exact copies" in warning[0], err
    assert f"line {n + 2}, a copy of line 2" in warning[0]
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"{n:,} rows are exact copies" in report
    kept = calibrate.prepare_transactions(pd.concat([table, table]))
    once = calibrate.prepare_transactions(table)
    assert kept.purchases["amount"].sum() == pytest.approx(2 * once.purchases["amount"].sum())
    dropped = calibrate.prepare_transactions(pd.concat([table, table]), drop_duplicates=True)
    pd.testing.assert_frame_equal(dropped.customers, once.customers)
    assert "dropped" in dropped.warnings[0] and once.warnings == ()


def test_duplicated_journey_rows_dropped(journey_csv: Path, tmp_path: Path) -> None:
    """Every row twice used to fit invented self-loops (awareness -> awareness 0.5): the
    copies are dropped with a warning counting them, and the fit is the original's."""
    table = pd.read_csv(journey_csv, dtype=str)
    src = tmp_path / "twice.csv"
    pd.concat([table, table]).to_csv(src, index=False)
    code, _, err = run(["journey", str(src), *folders(tmp_path), *FAST_J])
    assert code == 0, err
    assert f"warning: twice.csv: {len(table):,} rows dropped as exact copies" in err, err
    assert f"{len(table):,} rows dropped" in (tmp_path / "out" / "report.md").read_text()
    written = yaml.safe_load((tmp_path / "cfg" / "journey" / "fitted_twice.yaml").read_text())
    assert "awareness" not in written["stages"]["awareness"]["exits"]  # no self-loop
    clean = calibrate.fit_journey(calibrate.prepare_journey(table)).exit_table()
    doubled = calibrate.fit_journey(calibrate.prepare_journey(pd.concat([table, table])))
    pd.testing.assert_frame_equal(doubled.exit_table(), clean)


# ------------------------------------------------------------- text written into YAML
# stage names (keys of the written journey: no "${", which sim.userfiles refuses in keys),
# then channel names (only in the report and fit.json)
AWKWARD = ["it's \"quoted\"", "a: b # c", "line\nbreak", "yes", "null", "back\\slash $x",
           "tab\there", "Überlegung \u2028 ü", "[list], {map}", "${oc.env:HOME}",
           "\\${y} #1"]


def _no_unescaped_interpolation(text: str) -> None:
    for m in re.finditer(r"\$\{", text):
        assert m.start() > 0 and text[m.start() - 1] == "\\", text[max(0, m.start() - 30):
                                                                   m.start() + 30]


def test_yaml_round_trips_awkward_names(tmp_path: Path) -> None:
    """Stage names with quotes, colons, ``#``, a line break, YAML words (``yes``,
    ``null``), backslashes, brackets and ``${...}``, channel names and a file name with
    ``${oc.env:HOME}``: the written journey parses, and YAML, OmegaConf and the real
    composition (a search path, as ``--config-dir`` gives; the command the run prints next)
    give the same strings back; no unescaped ``${`` is in any written YAML file."""
    first, second = AWKWARD[0], AWKWARD[1]
    table = journey(n=200, stages=(first, second), channels=(AWKWARD[-2], AWKWARD[-1]))
    # more stages (one named like a resolver): ten customers each start in one, then go on
    rest = [*AWKWARD[2:-2], "${oc.env:JOURNEY_SIM_UNSET} stage"]
    starts = table.groupby("customer_id", sort=False).head(1).reset_index(drop=True)
    rng = np.random.default_rng(3)
    extra = starts.iloc[:10 * len(rest)].copy()
    extra["stage"] = np.repeat(rest, 10)
    extra["timestamp"] = (pd.to_datetime(extra["timestamp"]) - pd.to_timedelta(
        rng.uniform(0.5, 2.0, len(extra)), "D")).dt.strftime("%Y-%m-%dT%H:%M:%S")
    table = pd.concat([extra, table])
    name = "${oc.env:HOME} shop's: #1"
    src = tmp_path / f"{name}.csv"
    table.to_csv(src, index=False)
    cfg_dir = tmp_path / "cfg"
    code, out, err = run(["journey", str(src), "--name", "odd", "--config-dir", str(cfg_dir),
                          "--out", str(tmp_path / "out"), *FAST_J])
    assert code == 0, err
    path = cfg_dir / "journey" / "fitted_odd.yaml"
    text = path.read_text()
    _no_unescaped_interpolation(text)
    stages = [first, second, *rest]
    loaded = yaml.safe_load(text)
    assert sorted(loaded["stages"]) == sorted(stages)
    resolved = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert sorted(resolved["stages"]) == sorted(stages)
    assert resolved["description"] == f"fitted from {name}.csv"
    for stage in stages:
        assert resolved["report"][stage] == [stage]
    # the command printed next, its --config-dir as the search path
    line = next(x for x in out.splitlines() if x.startswith("next: "))
    argv = shlex.split(line.removeprefix("next: "))
    assert argv[:5] == ["python", "-m", "sim", "--config-dir", str(cfg_dir)]
    composed = compose_config([f"hydra.searchpath=[file://{cfg_dir}]", *argv[5:]])
    plain = to_container(composed)
    assert sorted(plain["journey"]["stages"]) == sorted(stages)
    assert plain["journey"]["description"] == f"fitted from {name}.csv"
    assert {s: plain["journey"]["report"][s] for s in stages} == {s: [s] for s in stages}
    assert plain["advocacy"]["referral_entry_stage"] in stages
    channels = json.loads((tmp_path / "out" / "fit.json").read_text())["channels"]
    assert sorted(c["channel"] for c in channels) == sorted(AWKWARD[-2:])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=30))
def test_yaml_scalars_round_trip(text: str) -> None:
    """Any text as a value, a key and a comment: YAML then OmegaConf give it back, and no
    unescaped ``${`` is written."""
    doc = (f"# {fitted._comment(text)}\n{fitted._yaml_key(text or 'k')}: "
           f"{fitted._yaml_str(text)}\nlist: [{fitted._yaml_str(text)}]\n")
    _no_unescaped_interpolation(doc)
    back = OmegaConf.to_container(OmegaConf.create(yaml.safe_load(doc)), resolve=True)
    assert back == {text or "k": text, "list": [text]}


def test_retention_comments_stay_comments(tmp_path: Path) -> None:
    """A file name with a line break and ``${`` lands in the header comments only."""
    src = tmp_path / "a\nb: ${oc.env:HOME}.csv"
    transactions().to_csv(src, index=False)
    code, _, err = run(["transactions", str(src), "--name", "t", *folders(tmp_path), *FAST])
    assert code == 0, err
    for group in ("retention", "economics", "uncertainty", "business"):
        text = (tmp_path / "cfg" / group / "fitted_t.yaml").read_text()
        _no_unescaped_interpolation(text)
        assert all(x.startswith("#") for x in text.splitlines()[:3]), text
        assert "a\\nb: \\${oc.env:HOME}.csv" in text
        if group != "uncertainty":
            assert set(yaml.safe_load(text)) <= {
                "model", "repeat", "defaults", "order_value_mean", "order_value_cv",
                "order_value_model", "gamma_gamma", "market", "experience"}
        assert "oc.env" not in json.dumps(yaml.safe_load(text))  # in comments only


def test_refused_fit_leaves_no_config(tx_csv: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """When the economics config does not validate (here forced: e.g. an order value beyond
    the simulator's range), neither config is written; the retention one used to be
    written before the economics one was checked."""
    check = workflow._check_config

    def refuse_economics(section: str, *args: object) -> None:
        if section == "economics":
            raise CalibrationError("the fitted economics config does not validate: test")
        check(section, *args)

    monkeypatch.setattr(workflow, "_check_config", refuse_economics)
    one_error(*run(["transactions", str(tx_csv), *folders(tmp_path), *FAST]),
              "economics config does not validate")
    assert not list(tmp_path.rglob("*.yaml"))


# ---------------------------------------------------------------- output folders
def test_default_config_dir_is_fitted_in_working_dir(tx_csv: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config-dir the configs go to ./fitted, the report to ./outputs, never into
    the package; the command printed next and the report name the folder."""
    before = sorted(p.name for p in (CONFIG_DIR / "retention").iterdir())
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["transactions", str(tx_csv), "--name", "mine", *FAST])
    assert code == 0, err
    assert (tmp_path / "fitted" / "retention" / "fitted_mine.yaml").is_file()
    assert (tmp_path / "fitted" / "economics" / "fitted_mine.yaml").is_file()
    command = "python -m sim --config-dir fitted business=fitted_mine"
    assert f"next: {command}\n" in out
    assert (f"base: {command} market.base=outputs/calibration/transactions_mine/customers.csv"
            in out)
    report = tmp_path / "outputs" / "calibration" / "transactions_mine" / "report.md"
    assert command in report.read_text()
    assert sorted(p.name for p in (CONFIG_DIR / "retention").iterdir()) == before


@pytest.mark.parametrize("where", ["configs", "scenarios", "package"])
@pytest.mark.parametrize("option", ["--config-dir", "--out"])
def test_package_folders_refused(where: str, option: str, tx_csv: Path,
                                 tmp_path: Path) -> None:
    folder = {"configs": CONFIG_DIR, "scenarios": SCENARIO_DIR,
              "package": Path(inputs.__file__).parent.parent}[where] / "fitted_here"
    argv = ["transactions", str(tx_csv), "--config-dir", str(tmp_path / "cfg"), "--out",
            str(tmp_path / "out"), option, str(folder)]
    one_error(*run(argv), option, "the simulator's own files", "./fitted")
    assert not folder.exists()


def test_output_folder_under_a_file(tx_csv: Path, tmp_path: Path) -> None:
    one_error(*run(["transactions", str(tx_csv), "--config-dir", str(tmp_path / "cfg"),
                    "--out", str(tx_csv / "report")]), "--out", "is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_without_permission(tx_csv: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(["transactions", str(tx_csv), "--config-dir", str(locked / "c")])
    assert code == EXIT_OUTPUT and err.count("\n") == 1 and "no permission" in err, err


def test_existing_config_needs_force(tx_csv: Path, tmp_path: Path) -> None:
    assert run(["transactions", str(tx_csv), *folders(tmp_path), *FAST])[0] == 0
    one_error(*run(["transactions", str(tx_csv), *folders(tmp_path), *FAST]),
              "exists already", "--force")
    assert run(["transactions", str(tx_csv), *folders(tmp_path), *FAST, "--force"])[0] == 0


# ------------------------------------------------------------------ untrusted files
def test_unreadable_inputs(tmp_path: Path) -> None:
    """A named pipe (hung before), a link to /dev/zero (filled the memory before), a
    folder, a missing file, bytes that are not UTF-8, a file over the size limit."""
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"customer_id,date,amount\n\xff\xfe,2024-01-01,1\n")
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(257 * 2**20)  # sparse: no disk used
    cases = {pipe: "not a regular file", zero: "not a regular file",
             tmp_path: "not a regular file", tmp_path / "missing.csv": "no such",
             binary: "not UTF-8", big: "more than the"}
    for path, needle in cases.items():
        for command in ("transactions", "journey"):
            one_error(*run([command, str(path), *folders(tmp_path)]), str(path), needle)
    with pytest.raises(InputError, match="not a regular file"):
        inputs.io.read_csv_text(pipe)


def test_bom_and_line_endings_read_alike(tmp_path: Path) -> None:
    """A byte-order mark and CRLF line endings (a spreadsheet's export) give the same data
    as the plain file."""
    table = transactions()
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    table.to_csv(plain, index=False)
    excel.write_bytes(b"\xef\xbb\xbf" + table.to_csv(index=False, lineterminator="\r\n")
                      .encode())
    a = calibrate.prepare_transactions(inputs.io.read_csv_text(plain))
    b = calibrate.prepare_transactions(inputs.io.read_csv_text(excel))
    pd.testing.assert_frame_equal(a.customers, b.customers)


def test_other_delimiter_named(tmp_path: Path) -> None:
    src = tmp_path / "semi.csv"
    transactions().to_csv(src, index=False, sep=";")
    one_error(*run(["transactions", str(src), *folders(tmp_path)]),
              "missing column(s) 'customer_id', 'date', 'amount'",
              "the header holds ';': columns are separated by commas")


@pytest.mark.slow
def test_command_line_process_one_line(tmp_path: Path) -> None:
    """As a process: a date pandas cannot hold (an ``OutOfBoundsDatetime`` traceback
    before) and a named pipe (a hang before) each give exactly one line on stderr and exit
    status 2, within a minute."""
    src = tmp_path / "far.csv"
    src.write_text("customer_id,date,amount\nA,2024-01-02,10\nA,9999-12-31,12.5\n")
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    for args, needle in ((["transactions", str(src)], "line 3: date '9999-12-31'"),
                         (["journey", str(pipe)], "not a regular file")):
        proc = subprocess.run([sys.executable, "-m", "sim.calibrate", *args,
                               "--config-dir", str(tmp_path / "cfg")], capture_output=True,
                              text=True, check=False, timeout=60, cwd=tmp_path)
        assert proc.returncode == EXIT_INPUT, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], \
            proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_flat_channel_likelihood_found_by_fuzzing(tmp_path: Path) -> None:
    """A case the fuzz test found: three customers, the stage names swapped by the options,
    a channel whose forward-odds likelihood is nearly flat: its interval's upper end used
    to overflow (``OverflowError: math range error``); now the fit finishes and the
    interval is open-ended."""
    src = tmp_path / "log.csv"
    src.write_text(
        " customer_id ,stage,timestamp,channel\n"
        "u0,awareness,2024-01-20T02:36:44,search\nu0,consideration,2024-01-22T03:33:11,search\n"
        "u0,lost,2024-01-22T03:42:59,search\nu1,awareness,2024-01-28T09:11:02,social\n"
        "u1,lost,2024-01-29T17:30:57,social\nu2,awareness,2024-01-17T07:24:35,search\n"
        "u2,lost,2024-01-29T10:10:55,search\n")
    code, _, err = run(["journey", str(src), *folders(tmp_path), *FAST_J, "--checkout", "lost",
                        "--lost", "checkout"])
    assert code == 0, err
    channels = json.loads((tmp_path / "out" / "fit.json").read_text())["channels"]
    assert {c["channel"] for c in channels} == {"search", "social"}
    assert all(c["high"] is None or c["high"] > c["multiplier"] for c in channels), channels


# ------------------------------------------------------------------------- fuzzing
GARBAGE = ["", " ", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "-5", "0", "1e-320",
           "9999-12-31", "0001-01-01", "2024-02-30", "2024-01-01T25:00", "x" * 200, "\"",
           "'", "${oc.env:HOME}", "${oc.env:NOPE_NOT_SET}", "#", ":", "null", "\ufeff",
           "\x00", "1,5", "2024/01/01", "2024-01-01T00:00:00+14:00", "2024-01-01Z",
           "１２", "\u2028", "DROP TABLE", "[1]", "{a: 1}"]


@st.composite
def mangled_log(draw: st.DrawFn, kind: str) -> bytes:
    """A small good log, mangled: columns dropped, renamed or added, cells replaced by
    garbage, rows duplicated or cut, one customer only, a BOM, another delimiter or line
    ending, the file truncated or emptied."""
    # a third of the examples keep their cells, columns and size (a BOM, the line endings
    # and the options still vary), so the "fits and writes" branch is exercised too
    whole = draw(st.sampled_from([True, False, False]))
    seed = draw(st.integers(0, 3))
    n = 40 if whole else draw(st.sampled_from([40, 40, 2, 3]))
    table = (transactions(n, seed) if kind == "transactions" else journey(n, seed)).astype(str)
    cols = list(table.columns)
    for _ in range(0 if whole else draw(st.sampled_from([1, 1, 2, 3, 5]))):
        op = draw(st.sampled_from(["cell", "cell", "cell", "drop_col", "rename_col", "add_col",
                                   "dup_rows", "one_customer", "shuffle", "head"]))
        if not len(table.columns):
            break
        if op == "cell" and len(table):
            row = draw(st.integers(0, len(table) - 1))
            col = draw(st.integers(0, len(table.columns) - 1))
            table.iloc[row, col] = draw(st.sampled_from(GARBAGE) | st.text(max_size=8))
        elif op == "drop_col" and len(table.columns) > 1:
            table = table.drop(columns=draw(st.sampled_from(list(table.columns))))
        elif op == "rename_col":
            col = draw(st.sampled_from(list(table.columns)))
            table = table.rename(columns={col: draw(st.sampled_from(
                [col.upper(), f" {col} ", col + "_x", "", *cols]))})
        elif op == "add_col":
            table[draw(st.sampled_from(["note", "amount", "stage", "x"]))] = draw(
                st.sampled_from(GARBAGE))
        elif op == "dup_rows":
            table = pd.concat([table, table.head(draw(st.integers(1, len(table) + 1)))])
        elif op == "one_customer" and "customer_id" in table:
            table["customer_id"] = "same"
        elif op == "shuffle":
            table = table.sample(frac=1.0, random_state=draw(st.integers(0, 9)))
        elif op == "head":
            table = table.head(draw(st.integers(0, 3)))
    sep = "," if whole else draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    text = table.to_csv(index=False, sep=sep,
                        lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a byte-order mark
    cut = None if whole else draw(st.sampled_from([None, None, None, 0, 1, 30, -3]))
    if cut is not None:
        data = data[:cut]
    if not whole and draw(st.integers(0, 4)) == 0:
        data = data + draw(st.binary(max_size=20))
    return data


def _fuzz_one(kind: str, data: bytes, options: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "log.csv"
        src.write_bytes(data)
        start = time.perf_counter()
        code, out, err = run([kind, str(src), "--config-dir", str(tmp_path / "cfg"), "--out",
                              str(tmp_path / "out"),
                              *(FAST if kind == "transactions" else FAST_J), *options])
        elapsed = time.perf_counter() - start
        assert elapsed < TIME_BOUND_S, f"{elapsed:.1f} s"
        configs = sorted((tmp_path / "cfg").rglob("*.yaml"))
        # --hypothesis-show-statistics: how many fitted, and why the others stopped
        event("fitted" if code == 0 else re.sub(r"line \d+|'[^']*'|\d+", "_", err)[:70])
        if code == 0:
            assert all(line.startswith("warning: ") for line in err.splitlines()), err
            assert configs and (tmp_path / "out" / "report.md").is_file()
            for path in configs:
                text = path.read_text()
                _no_unescaped_interpolation(text)
                yaml.safe_load(text)
        else:
            one_error(code, out, err)
            assert not configs


TX_OPTIONS = st.sampled_from([[], [], ["--unit", "week"], ["--no-spend"],
                              ["--calibration-end", "2024-09-30", "--holdout-end",
                               "2024-12-31"], ["--drop-duplicates"]])
JOURNEY_OPTIONS = st.sampled_from([[], [], ["--end", "2024-02-15"], ["--checkout", "checkout"],
                                   ["--lost", "nothing"], ["--channel-col", "stage"],
                                   ["--checkout", "lost", "--lost", "checkout"]])
FUZZ = settings(max_examples=10, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=mangled_log("transactions"), options=TX_OPTIONS)
def test_fuzz_transaction_logs(data: bytes, options: list[str]) -> None:
    """Every mangled transaction log fits and writes its files, or stops with one line
    and status 2; never another exception, within ``TIME_BOUND_S``."""
    _fuzz_one("transactions", data, options)


@FUZZ
@given(data=mangled_log("journey"), options=JOURNEY_OPTIONS)
def test_fuzz_journey_logs(data: bytes, options: list[str]) -> None:
    _fuzz_one("journey", data, options)


@pytest.mark.slow
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kind=st.sampled_from(["transactions", "journey"]), data=st.data())
def test_fuzz_logs_many(kind: str, data: st.DataObject) -> None:
    """The two fuzz tests with more examples, new ones each run (``--runslow``)."""
    log = data.draw(mangled_log(kind))
    options = data.draw(TX_OPTIONS if kind == "transactions" else JOURNEY_OPTIONS)
    _fuzz_one(kind, log, options)


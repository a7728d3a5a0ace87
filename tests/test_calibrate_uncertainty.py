"""The uncertainty group a transaction fit writes (``uncertainty/fitted_<name>.yaml``).

- Written with the other fitted files, it composes with them (``--config-dir``) and reads
  with ``read_uncertainty``: the BG/NBD parameters as one ``joint_lognormal`` whose medians
  are the estimates (the retention file's values) and whose ``log_cov`` is the fit's
  covariance of the log-parameters, recomputed here from ``MLFit.cov`` (``cov / outer(est,
  est)``; alpha fitted in weeks: log alpha_days = log alpha_weeks + log 7, same
  covariance); the Gamma-Gamma p, q, gamma as a second ``joint_lognormal`` on
  ``economics.gamma_gamma`` with the spend fit's covariance of the logs; every other shared
  assumption of the package's ``uncertainty/baseline`` kept as
  it is, the ones the fit replaces dropped (one distribution per key).
- Draws: ``JointAssumption.from_uniforms`` on ``N_DRAWS`` independent uniforms (seed
  ``SEED``): the logs' means within ``K_SE`` = 4 standard errors (``sd / sqrt(n)``) of
  log(median), the sample correlation of the logs of (r, alpha_days) within
  4 x (1 - rho^2) / sqrt(n) (the standard error of a correlation) of the fit's.
- ``fit.json`` holds the log covariance with the parameter names; the command printed next
  and the report name the uncertainty group and the PSA command.
- Refusals: an existing uncertainty file without ``--force``, or an uncertainty group that
  does not read, stop the calibration before any config is written.

The fits use the synthetic logs of ``test_calibrate`` and ``test_calibrate_inputs``.
"""

from __future__ import annotations

import functools
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_calibrate import GENERATED, generated_transactions, write_csv
from test_calibrate_inputs import folders, one_error, run, transactions

from sim.calibrate import calibrate_transactions, fitted, workflow
from sim.calibrate.mle import CalibrationError
from sim.model.config import compose_config, to_container
from sim.model.uncertainty import JointAssumption, read_uncertainty

K_SE = 4.0
SEED = 20240611
N_DRAWS = 20_000
KEYS = ["r", "alpha_days", "a", "b"]
FAST = ["--starts", "1", "--no-plots"]


@functools.cache
def _baseline_group() -> dict[str, Any]:
    return to_container(compose_config(["uncertainty=baseline"]))["uncertainty"]


def _leaves(node: Any, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every distribution of an uncertainty tree by its dotted key path."""
    if isinstance(node, dict) and "dist" not in node:
        out = {}
        for k, child in node.items():
            out |= _leaves(child, (*keys, k))
        return out
    return {".".join(keys): node}


@pytest.fixture(scope="module")
def weekly(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Transactions drawn from BG/NBD + Gamma-Gamma (GENERATED["days"], seed 7), fitted in
    weeks through the Python API (its ``MLFit`` at hand), the configs composed."""
    root = tmp_path_factory.mktemp("fit")
    src = write_csv(generated_transactions(*GENERATED["days"][:9], seed=7), root / "t.csv")
    result, written = calibrate_transactions(src, name="u", config_dir=root / "cfg",
                                             out_dir=root / "out", unit="week", n_starts=2,
                                             plots=False)
    cfg = to_container(compose_config(["business=fitted_u"], config_dirs=[root / "cfg"]))
    return {"root": root, "src": src, "result": result, "written": written, "cfg": cfg,
            "uncertainty": read_uncertainty({"baseline": cfg})}


def test_written_with_the_other_configs(weekly: dict[str, Any]) -> None:
    root = weekly["root"]
    path = root / "cfg" / "uncertainty" / "fitted_u.yaml"
    assert path in weekly["written"]
    text = path.read_text()
    # provenance, what it is and how to use it, in comments (wrapped: joined here)
    comments = " ".join(line.lstrip("# ") for line in text.splitlines()
                        if line.lstrip().startswith("#"))
    assert "sha256" in comments and "t.csv" in comments and str(root) not in text
    assert "business=fitted_u psa.draws=256" in comments
    assert "p, q, gamma jointly lognormal" in comments
    assert yaml.safe_load(text) == weekly["cfg"]["uncertainty"]


def test_joint_medians_and_covariance_are_the_fit(weekly: dict[str, Any]) -> None:
    """Medians: the estimates (as the retention file holds them); log_cov: the fit's
    covariance of the logs, recomputed from MLFit.cov (alpha in weeks)."""
    result, unc, cfg = weekly["result"], weekly["uncertainty"], weekly["cfg"]
    joint, spend = unc.joints
    assert joint.base == "retention.repeat" and list(joint.keys) == KEYS
    assert joint.names == [f"retention.repeat.{k}" for k in KEYS]
    bg = result.bgnbd
    assert result.data.unit == "week"
    estimates = [bg["r"], 7.0 * bg["alpha"], bg["a"], bg["b"]]
    assert list(joint.median) == pytest.approx(estimates, rel=1e-5)
    assert list(joint.median) == [cfg["retention"]["repeat"][k] for k in KEYS]
    order = [bg.names.index(n) for n in ("r", "alpha", "a", "b")]
    cov = np.asarray(bg.cov)[np.ix_(order, order)]
    est = np.asarray(bg.estimate)[order]
    log_cov = cov / np.outer(est, est)
    np.testing.assert_allclose(np.asarray(joint.log_cov), log_cov, rtol=1e-10, atol=0)
    # fit.json: the same matrix, with the names
    doc = json.loads((weekly["root"] / "out" / "fit.json").read_text())
    assert doc["bgnbd"]["log_cov"]["names"] == list(bg.names)
    np.testing.assert_allclose(np.asarray(doc["bgnbd"]["log_cov"]["matrix"])[
        np.ix_(order, order)], log_cov, rtol=1e-10, atol=0)
    assert doc["gamma_gamma"]["log_cov"]["names"] == ["p", "q", "gamma"]
    assert "uncertainty/fitted_u.yaml" in doc["configs"]
    # spend: the same for the Gamma-Gamma fit, medians the economics file's values
    gg = result.spend
    assert spend.base == "economics.gamma_gamma" and list(spend.keys) == ["p", "q", "gamma"]
    assert list(spend.median) == [cfg["economics"]["gamma_gamma"][k] for k in spend.keys]
    assert list(spend.median) == pytest.approx(list(gg.estimate), rel=1e-5)
    gg_log_cov = np.asarray(gg.cov) / np.outer(gg.estimate, gg.estimate)
    np.testing.assert_allclose(np.asarray(spend.log_cov), gg_log_cov, rtol=1e-10, atol=0)


def test_draws_follow_the_fit(weekly: dict[str, Any]) -> None:
    """N_DRAWS draws from independent uniforms (seed SEED): log-means within K_SE standard
    errors of log(median), the (r, alpha_days) correlation within K_SE standard errors of
    a correlation of the fit's."""
    joint = weekly["uncertainty"].joints[0]
    assert isinstance(joint, JointAssumption)
    u = np.random.default_rng(SEED).random((N_DRAWS, len(joint.keys)))
    x = np.log(joint.from_uniforms(u))
    cov = np.asarray(joint.log_cov)
    sd = np.sqrt(np.diag(cov))
    z = np.abs(x.mean(axis=0) - np.log(joint.median)) / (sd / math.sqrt(N_DRAWS))
    assert np.all(z <= K_SE), z
    rho = cov[0, 1] / (sd[0] * sd[1])
    assert abs(rho) > 0.3  # r and alpha are estimated together: a correlation to keep
    sample = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert abs(sample - rho) <= K_SE * (1 - rho**2) / math.sqrt(N_DRAWS), (sample, rho)


def test_spend_and_shared_assumptions(weekly: dict[str, Any]) -> None:
    """The spend from the Gamma-Gamma fit (jointly, see above), no distribution on the
    matched lognormal's keys (the fitted economics simulates gamma_gamma), the baseline's
    other shared assumptions as they are, the ones the fit replaces gone."""
    cfg, unc = weekly["cfg"], weekly["uncertainty"]
    leaves = _leaves(cfg["uncertainty"])
    assert cfg["economics"]["order_value_model"] == "gamma_gamma"
    assert leaves["economics.gamma_gamma"]["dist"] == "joint_lognormal"
    assert "economics.order_value_mean" not in leaves
    assert "economics.order_value_cv" not in leaves
    base = _leaves(_baseline_group())
    replaced = {"economics.order_value_mean", "economics.order_value_cv",
                *(f"retention.repeat.{k}" for k in KEYS)}
    joints = {"retention.repeat", "economics.gamma_gamma"}
    assert {k: v for k, v in base.items() if k not in replaced} == {
        k: v for k, v in leaves.items() if k not in replaced | joints}
    assert set(base) & replaced  # the baseline had some of them: they were dropped
    names = set(unc.names)
    drawn = {*(f"retention.repeat.{k}" for k in KEYS),
             *(f"economics.gamma_gamma.{k}" for k in ("p", "q", "gamma"))}
    assert names == (set(base) - replaced) | drawn
    assert len(unc.names) == len(names)  # one distribution per key


def test_report_and_command(weekly: dict[str, Any]) -> None:
    report = (weekly["root"] / "out" / "report.md").read_text()
    cfg_dir = weekly["root"] / "cfg"
    command = fitted.run_command(["business=fitted_u"], cfg_dir)
    assert f"{command}\n" in report
    assert f"{command} psa.draws=256 'compare=[" in report
    assert "propagates the fit's uncertainty" in report


def test_without_spend_keeps_the_baseline_economics(tmp_path: Path) -> None:
    """--no-spend: no economics file, the baseline's economics assumptions kept; the
    command printed next and the PSA line name the uncertainty group."""
    src = tmp_path / "shop.csv"
    transactions(n=120, seed=3).to_csv(src, index=False)
    code, out, err = run(["transactions", str(src), "--no-spend", *folders(tmp_path), *FAST])
    assert code == 0, err
    cfg_dir = tmp_path / "cfg"
    command = fitted.run_command(["business=fitted_shop"], cfg_dir)
    assert f"next: {command}\n" in out
    psa_line = next(line for line in out.splitlines() if line.startswith("psa: "))
    argv = shlex.split(psa_line.removeprefix("psa: ").split("  (")[0])
    assert argv[-2:] == ["psa.draws=256", "compare=[remove_hidden_fees,seo]"]
    assert not (cfg_dir / "economics").exists()
    cfg = to_container(compose_config(argv[5:-2], config_dirs=[cfg_dir]))
    assert cfg["economics"]["order_value_model"] == "lognormal"  # the baseline's
    leaves = _leaves(cfg["uncertainty"])
    base = _leaves(_baseline_group())
    for key in ("economics.order_value_mean", "economics.gross_margin"):
        if key in base:
            assert leaves[key] == base[key]
    assert "retention.repeat.r" not in leaves and leaves["retention.repeat"]["dist"] == (
        "joint_lognormal")
    read_uncertainty({"baseline": cfg})


def test_rerun_refuses_to_overwrite(tmp_path: Path) -> None:
    """With every fitted file there, a rerun without --force refuses; with only the
    uncertainty file there, it refuses naming it, and writes nothing (no retention or
    economics file, no report, the uncertainty file untouched)."""
    src = tmp_path / "shop.csv"
    transactions().to_csv(src, index=False)
    assert run(["transactions", str(src), *folders(tmp_path), *FAST])[0] == 0
    one_error(*run(["transactions", str(src), *folders(tmp_path), *FAST]),
              "exists already", "--force")
    target = tmp_path / "cfg" / "uncertainty" / "fitted_shop.yaml"
    other = tmp_path / "other"
    (other / "cfg" / "uncertainty").mkdir(parents=True)
    kept = other / "cfg" / "uncertainty" / "fitted_shop.yaml"
    kept.write_bytes(target.read_bytes())
    err = one_error(*run(["transactions", str(src), *folders(other), *FAST]),
                    "exists already", "--force")
    assert "uncertainty" in err and "fitted_shop.yaml" in err
    assert sorted(p for p in other.rglob("*") if p.is_file()) == [kept]
    assert kept.read_bytes() == target.read_bytes()
    assert run(["transactions", str(src), *folders(tmp_path), *FAST, "--force"])[0] == 0


def test_uncertainty_that_does_not_read_leaves_no_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An uncertainty group read_uncertainty refuses (here forced: a median outside its
    key's range) stops the calibration before any config is written."""
    make = workflow.uncertainty_yaml

    def out_of_range(*args: Any) -> str:
        return make(*args).replace("median: [", "median: [-", 1)

    monkeypatch.setattr(workflow, "uncertainty_yaml", out_of_range)
    src = tmp_path / "shop.csv"
    transactions().to_csv(src, index=False)
    one_error(*run(["transactions", str(src), *folders(tmp_path), *FAST]),
              "uncertainty", "retention.repeat.median")
    assert not list(tmp_path.rglob("*.yaml"))
    with pytest.raises(CalibrationError, match="does not read back"):
        fitted.check_composed({"uncertainty/fitted_x.yaml": "# @package _global_\n"
                               "uncertainty: {}\n"}, ["uncertainty=fitted_x"])


@pytest.mark.slow
def test_psa_runs_on_the_fit(weekly: dict[str, Any]) -> None:
    """The PSA command the fit prints, made small (2 draws, one scenario, run=smoke): the
    fitted assumptions are drawn."""
    cfg_dir, out = weekly["root"] / "cfg", weekly["root"] / "psa"
    argv = [sys.executable, "-m", "sim", "--config-dir", str(cfg_dir), "business=fitted_u",
            "psa.draws=2", "compare=[seo]",
            "psa.tornado=false", "run=smoke", "run.n_jobs=1", "run.plots=false",
            f"hydra.run.dir={out}"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = (out / "psa_runs.csv").read_text().splitlines()[0].split(",")
    for key in [*(f"retention.repeat.{k}" for k in KEYS),
                *(f"economics.gamma_gamma.{k}" for k in ("p", "q", "gamma")),
                "economics.gross_margin"]:
        assert key in header, key

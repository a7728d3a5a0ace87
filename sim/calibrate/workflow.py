"""The two calibrations end to end, as ``python -m sim.calibrate`` runs them: check the
options and folders, read the log, fit, validate the fitted configs (a transaction fit's
three groups also composed together, its uncertainty group read), and only then write
them, with the tables, ``fit.json``, the figures and the report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim import io
from sim.calibrate.fitted import (
    _check_config,
    _transaction_groups,
    business_yaml,
    check_composed,
    economics_values,
    economics_yaml,
    journey_yaml,
    referral_entry,
    retention_yaml,
    uncertainty_yaml,
)
from sim.calibrate.inputs import (
    DEFAULT_CONFIG_DIR,
    OPTION_RANGES,
    _output_dir,
    _read,
    _targets_free,
    check_options,
    clean_name,
)
from sim.calibrate.journey import JourneyFit, fit_journey, prepare_journey
from sim.calibrate.mle import MLFit
from sim.calibrate.reports import (
    _journey_figures,
    _transaction_figures,
    journey_report,
    transactions_report,
)
from sim.calibrate.transactions import TransactionFit, fit_transactions, prepare_transactions

__all__ = ["base_table", "calibrate_journey", "calibrate_transactions", "pseudonyms"]


def _fit_doc(f: MLFit) -> dict[str, Any]:
    lo, hi = f.interval()
    return {"parameters": {n: {"estimate": float(f.estimate[i]), "se": float(f.se[i]),
                               "low": float(lo[i]), "high": float(hi[i])}
                           for i, n in enumerate(f.names)},
            "covariance": f.cov.tolist(),
            # of the logs of the estimates, as the fit works on them (and the uncertainty
            # group draws them)
            "log_cov": {"names": list(f.names), "matrix": f.log_cov.tolist()},
            "loglik": f.loglik, "n": f.n_obs,
            "starts": f.n_starts, "converged": f.n_converged, "at_best": f.n_at_best,
            "warnings": list(f.warnings)}


def _folders(kind: str, path: Path, name: str | None, config_dir: Path | None,
             out_dir: Path | None) -> tuple[str, Path, Path]:
    """The config's name and the checked config and report folders of a calibration."""
    name = clean_name(name or path.stem)
    config_dir = _output_dir(DEFAULT_CONFIG_DIR if config_dir is None else config_dir,
                             "--config-dir")
    out_dir = _output_dir(Path("outputs", "calibration", f"{kind}_{name}")
                          if out_dir is None else out_dir, "--out")
    return name, config_dir, out_dir


def pseudonyms(ids: pd.Series) -> pd.Series:
    """Each id replaced by a salted hash (16 hex digits): the same id gets the same
    pseudonym within one call, and no one can go back, as the salt is random and never
    written."""
    salt = secrets.token_bytes(16)
    codes = {v: hashlib.blake2b(str(v).encode(), digest_size=8, salt=salt).hexdigest()
             for v in ids.unique()}
    return ids.map(codes)


def base_table(customers: pd.DataFrame, keep_ids: bool = False) -> pd.DataFrame:
    """The customer base as ``customers.csv`` holds it: one row per customer, the most
    valuable first (``ltv``, else ``expected_purchases``), ids pseudonymised unless
    ``keep_ids``."""
    key = "ltv" if "ltv" in customers else "expected_purchases"
    table = customers.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)
    if not keep_ids:
        table["customer_id"] = pseudonyms(table["customer_id"])
    return table


def calibrate_transactions(path: Path, name: str | None = None, config_dir: Path | None = None,
                           out_dir: Path | None = None, force: bool = False,
                           plots: bool = True, keep_ids: bool = False,
                           **options: Any) -> tuple[TransactionFit, list[Path]]:
    """Read, fit, write the configs and the report; returns the fit and the files written.

    ``customers.csv`` lists the customer base (``base_table``): customer ids pseudonymised
    unless ``keep_ids``. ``config_dir`` defaults to ``./fitted`` (``DEFAULT_CONFIG_DIR``),
    ``out_dir`` to ``outputs/calibration/transactions_<name>``, both relative to the
    working directory; neither may lie inside the installed package. ``options`` go to
    ``prepare_transactions`` (column names, periods, unit, drop_duplicates, date_format) and
    ``fit_transactions`` (spend, n_starts, annual_discount_rate, gross_margin, ltv_years),
    and are checked before the file is read.

    Raises
    ------
    CalibrationError : any bad input (an ``InputError``): the file, its contents, an
        option, a folder inside the package, a config that exists already without ``force``.
    OutputError : a folder that cannot be written.
    """
    path = Path(path)
    name, config_dir, out_dir = _folders("transactions", path, name, config_dir, out_dir)
    prep = {k: options.pop(k) for k in ("customer_col", "date_col", "amount_col",
                                         "calibration_end", "holdout_end", "unit",
                                         "drop_duplicates", "date_format")
            if k in options}
    check_options(**{k: v for k, v in options.items() if k in OPTION_RANGES})
    groups = ["retention", *(["economics"] if options.get("spend", True) else []),
              "uncertainty", "business"]
    targets = [config_dir / group / f"fitted_{name}.yaml" for group in groups]
    _targets_free(targets, force)
    table, sha = _read(path, "transaction log")
    data = prepare_transactions(table, source=path.name, **prep)
    result = fit_transactions(data, **options)
    bg = result.bgnbd
    alpha_days = result.alpha_days[0]
    _check_config("retention", {"model": "repeat_purchase",
                                "repeat": {"r": bg["r"], "alpha_days": alpha_days,
                                           "a": bg["a"], "b": bg["b"]}})
    texts = [retention_yaml(result, name, path.name, sha)]
    if result.spend is not None:
        _check_config("economics", economics_values(result)[0])
        texts.append(economics_yaml(result, name, path.name, sha))
    texts.append(uncertainty_yaml(result, name, path.name, sha))
    texts.append(business_yaml(result, name, path.name, sha))
    check_composed({f"{group}/fitted_{name}.yaml": text
                    for group, text in zip(groups, texts, strict=True)},
                   _transaction_groups(result, name))
    # every check passed: only now write, so a refusal leaves no config behind
    written = [io.write_new_text(text, target, overwrite=force)
               for text, target in zip(texts, targets, strict=True)]

    written.append(io.write_table(base_table(result.customers, keep_ids),
                                  out_dir / "customers.csv"))
    written.append(io.write_table(result.histogram, out_dir / "repeat_histogram.csv"))
    written.append(io.write_table(result.tracking, out_dir / "tracking.csv"))
    if result.holdout is not None:
        written.append(io.write_table(result.holdout, out_dir / "holdout.csv"))
    doc = {
        "source": {"file": path.name, "sha256": sha, "rows": data.n_rows},
        "periods": {"first_purchase": str(data.first_date.date()),
                    "calibration_end": str(data.calibration_end.date()),
                    "holdout_end": None if data.holdout_end is None
                    else str(data.holdout_end.date())},
        "unit": data.unit, "fitted_on": dt.date.today().isoformat(),
        "bgnbd": _fit_doc(bg) | {"alpha_days": {"estimate": alpha_days,
                                                "se": result.alpha_days[1]}},
        "gamma_gamma": None if result.spend is None
        else _fit_doc(result.spend) | result.order_value()
        | {"corr_frequency_value": result.spend_diagnostics["corr_frequency_value"]},
        "chi_square": result.chi_square,
        "holdout": result.holdout_summary,
        "ltv": result.ltv,
        "configs": [f"{p.parent.name}/{p.name}" for p in written[:len(targets)]],
    }
    written.append(io.write_json(doc, out_dir / "fit.json"))
    if plots:
        written += _transaction_figures(result, out_dir)
    report = transactions_report(result, name, written, config_dir)
    written.append(io.write_text(report, out_dir / "report.md"))
    return result, written


def calibrate_journey(path: Path, name: str | None = None, config_dir: Path | None = None,
                      out_dir: Path | None = None, force: bool = False, plots: bool = True,
                      **options: Any) -> tuple[JourneyFit, list[Path]]:
    """Read, fit, write ``journey/fitted_<name>.yaml`` and the report (folders as in
    ``calibrate_transactions``: ``./fitted`` and ``outputs/calibration/journey_<name>`` by
    default, never inside the package); ``options`` go to ``prepare_journey``.

    Raises
    ------
    CalibrationError : any bad input, as in ``calibrate_transactions``.
    OutputError : a folder that cannot be written.
    """
    path = Path(path)
    name, config_dir, out_dir = _folders("journey", path, name, config_dir, out_dir)
    target = config_dir / "journey" / f"fitted_{name}.yaml"
    _targets_free([target], force)
    table, sha = _read(path, "journey log")
    data = prepare_journey(table, source=path.name, **options)
    result = fit_journey(data)
    text = journey_yaml(result, name, path.name, sha)
    _check_config("journey", yaml.safe_load(text), referral_entry(data.order)[0])
    written = [io.write_new_text(text, target, overwrite=force)]
    written.append(io.write_table(result.stage_table(), out_dir / "dwell.csv"))
    written.append(io.write_table(result.exit_table(), out_dir / "exits.csv"))
    if len(result.channels):
        written.append(io.write_table(result.channels, out_dir / "channels.csv"))
    doc = {"source": {"file": path.name, "sha256": sha, "rows": data.n_rows},
           "period": {"start": str(data.start), "end": str(data.end)},
           "fitted_on": dt.date.today().isoformat(), "order": list(data.order),
           "lost_recorded": data.lost_recorded, "resolution_days": data.resolution_days,
           "dwell": result.stage_table().to_dict(orient="records"),
           "exits": result.exit_table().to_dict(orient="records"),
           "channels": result.channels.to_dict(orient="records"),
           "config": target.name}
    written.append(io.write_json(doc, out_dir / "fit.json"))
    if plots:
        written += _journey_figures(result, out_dir)
    written.append(io.write_text(journey_report(result, name, written, config_dir),
                                 out_dir / "report.md"))
    return result, written

"""Calibrate the simulator from your own data: ``python -m sim.calibrate``.

``transactions FILE``: a transaction log (one row per transaction: customer, date, amount)
fitted with the BG/NBD repeat-buying model and the Gamma-Gamma spend model; writes
``retention/fitted_<name>.yaml`` and ``economics/fitted_<name>.yaml`` into the config folder
(``--config-dir``, default ``./fitted``) and a report (parameters with standard errors,
diagnostics, figures, expected LTV per customer) into the output folder. The simulator then
runs on them with ``python -m sim --config-dir fitted retention=fitted_<name>
economics=fitted_<name>``.

``journey FILE``: a journey event log (one row each time a customer enters a stage) fitted
stage by stage (dwell time and exit probabilities, censored at the end of the data); writes
``journey/fitted_<name>.yaml`` and a report.

Bad input prints one line ``error: ...`` on stderr and exits with status 2 (the checks are
in ``inputs``); a folder that cannot be written, status 1. Warnings about the data go to
stderr and the report.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np

from sim.calibrate.fitted import (
    _baseline,
    _g,
    _journey_groups,
    _transaction_groups,
    psa_command,
    referral_entry,
    run_command,
)
from sim.calibrate.inputs import (
    DEFAULT_CONFIG_DIR,
    FIRST_DATE,
    LAST_DATE,
    OPTION_RANGES,
    check_options,
    clean_name,
)
from sim.calibrate.journey import JourneyFit
from sim.calibrate.transactions import DAYS_PER_UNIT, TransactionFit
from sim.calibrate.workflow import calibrate_journey, calibrate_transactions
from sim.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT, InputError

__all__ = ["main"]


def _range_help(key: str) -> str:
    low, high, low_in, high_in, _ = OPTION_RANGES[key]
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim.calibrate",
        description="Fit the simulator's repeat buying and spend to a transaction log, or its "
                    "funnel to a journey event log, and write configs the simulator uses.",
        epilog="Bad input prints one line 'error: ...' and exits with status 2; a folder that "
               "cannot be written, status 1. Warnings about the data go to stderr and the "
               "report.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", help="config name: writes fitted_<name>.yaml (default: the "
                                       "file name)")
    common.add_argument("--config-dir", type=Path, default=None,
                        help=f"folder of config groups to write into (default: "
                             f"./{DEFAULT_CONFIG_DIR}; never the installed package); run the "
                             "simulator with python -m sim --config-dir DIR ...")
    common.add_argument("--out", type=Path, default=None,
                        help="report folder (default: outputs/calibration/<command>_<name>)")
    common.add_argument("--force", action="store_true", help="replace existing configs")
    common.add_argument("--no-plots", action="store_true", help="write no figures")
    common.add_argument("--customer-col", default="customer_id")
    common.add_argument("--date-format", default=None,
                        help="how the log writes its dates, in strftime codes, such as "
                             "%%d/%%m/%%Y or '%%m/%%d/%%Y %%H:%%M' (default: ISO dates, "
                             "YYYY-MM-DD); the date options accept ISO or this format")

    t = sub.add_parser("transactions", parents=[common],
                       help="BG/NBD repeat buying and Gamma-Gamma spend from transactions")
    t.add_argument("file", type=Path, help="CSV: customer_id, date, amount (one row per "
                                           "transaction)")
    t.add_argument("--date-col", default="date")
    t.add_argument("--amount-col", default="amount")
    t.add_argument("--calibration-end", help="last day of the calibration period (default: "
                                             "the last date in the file)")
    t.add_argument("--holdout-end", help="last day of a holdout period after the calibration "
                                         "period, to test the predictions (dates: ISO, "
                                         f"{FIRST_DATE.date()} to {LAST_DATE.date()}, in "
                                         "the file too)")
    t.add_argument("--unit", choices=sorted(DAYS_PER_UNIT), default="day",
                   help="time unit of the fit (the configs are always in days)")
    t.add_argument("--no-spend", action="store_true", help="fit repeat buying only")
    t.add_argument("--keep-ids", action="store_true",
                   help="keep the log's customer ids in customers.csv (by default they are "
                        "replaced by salted hashes that cannot be traced back)")
    t.add_argument("--drop-duplicates", action="store_true",
                   help="drop rows that are exact copies of an earlier row (by default they "
                        "are kept, with a warning)")
    t.add_argument("--gross-margin", type=float, default=1.0,
                   help="share of the amounts kept as margin, for the LTV, in "
                        f"{_range_help('gross_margin')} (default 1)")
    t.add_argument("--annual-discount-rate", type=float, default=0.10,
                   help=f"in {_range_help('annual_discount_rate')} (default 0.10)")
    t.add_argument("--ltv-years", type=float, default=3.0,
                   help=f"LTV horizon in years, in {_range_help('ltv_years')} (default 3)")
    t.add_argument("--starts", type=int, default=6,
                   help=f"starting points of the optimiser, in {_range_help('n_starts')} "
                        "(default 6)")

    j = sub.add_parser("journey", parents=[common],
                       help="stage dwell times and exit probabilities from a journey event log")
    j.add_argument("file", type=Path, help="CSV: customer_id, stage, timestamp (one row each "
                                           "time a customer enters a stage), optional channel")
    j.add_argument("--stage-col", default="stage")
    j.add_argument("--timestamp-col", default="timestamp")
    j.add_argument("--channel-col", default="channel",
                   help="optional column: the channel that brought the customer")
    j.add_argument("--end", help="end of the data (default: the last timestamp); customers "
                                 "still in a stage then are censored (dates: ISO, "
                                 f"{FIRST_DATE.date()} to {LAST_DATE.date()}, in the file too)")
    j.add_argument("--checkout", default="checkout,purchase",
                   help="comma-separated stages that mean the customer went to buy "
                        "(default: checkout,purchase)")
    j.add_argument("--lost", default="lost", help="the stage that records a lost prospect, "
                                                  "if the log has one (default: lost)")
    return parser


def _one_line(text: object) -> str:
    """A message on one line: line breaks in file or stage names shown escaped."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def _run(args: argparse.Namespace) -> tuple[str, list[Path], list[str], list[str]]:
    """Fit as the arguments say: the summary, the files written, the warnings and the
    command to run next."""
    common = {"name": args.name, "config_dir": args.config_dir, "out_dir": args.out,
              "force": args.force, "plots": not args.no_plots}
    # numerical noise of odd data (overflow in a tail term, a log of zero) is judged by
    # the fit's own checks, which raise or warn in words; numpy's warnings would only
    # add lines without a file or option to them
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if args.command == "transactions":
            check_options(gross_margin=args.gross_margin,
                          annual_discount_rate=args.annual_discount_rate,
                          ltv_years=args.ltv_years, n_starts=args.starts)
            result, written = calibrate_transactions(
                args.file, customer_col=args.customer_col, date_col=args.date_col,
                amount_col=args.amount_col, calibration_end=args.calibration_end,
                holdout_end=args.holdout_end, unit=args.unit, spend=not args.no_spend,
                drop_duplicates=args.drop_duplicates, date_format=args.date_format,
                keep_ids=args.keep_ids,
                n_starts=args.starts,
                annual_discount_rate=args.annual_discount_rate,
                gross_margin=args.gross_margin, ltv_years=args.ltv_years, **common)
            fits = [result.bgnbd, *([result.spend] if result.spend is not None else [])]
            notes = [*result.data.warnings, *(w for f in fits for w in f.warnings)]
            groups = _transaction_groups(result, clean_name(args.name or args.file.stem))
            return _transactions_summary(result), written, notes, groups
        checkout = tuple(s.strip() for s in args.checkout.split(",") if s.strip())
        result, written = calibrate_journey(
            args.file, customer_col=args.customer_col, stage_col=args.stage_col,
            timestamp_col=args.timestamp_col, channel_col=args.channel_col,
            end=args.end, checkout=checkout, lost=args.lost, date_format=args.date_format,
            **common)
        notes = [*result.data.warnings, *(w for f in result.stages.values() for w in f.warnings)]
        groups = _journey_groups(result.data.order, clean_name(args.name or args.file.stem))
        return _journey_summary(result), written, notes, groups


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.calibrate {transactions,journey} FILE [options]``; see ``--help``.

    Returns 0, or ``EXIT_INPUT`` (2) after one line ``error: ...`` on stderr for bad input,
    ``EXIT_OUTPUT`` (1) when a folder cannot be written, ``EXIT_INTERRUPTED`` on Ctrl-C.
    """
    args = _parser().parse_args(argv)
    try:
        summary, written, notes, groups = _run(args)
    except (InputError, FileExistsError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as err:  # OutputError, or a write that failed (disk full, permissions)
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: cannot write the outputs: {_one_line(where)}"
              f"{_one_line(err.strerror or err)}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        print("error: interrupted; files already written are complete, the rest are missing",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for note in notes:
        print(f"warning: {_one_line(note)}", file=sys.stderr)
    print(summary)
    configs = [p for p in written if p.suffix == ".yaml"]
    print("\nwrote " + ", ".join(str(p) for p in configs))
    print(f"report: {written[-1]} (and {len(written) - len(configs) - 1} more files in "
          f"{written[-1].parent})")
    config_dir = args.config_dir if args.config_dir is not None else DEFAULT_CONFIG_DIR
    print(f"next: {run_command(groups, config_dir)}")
    base = next((p for p in written if p.name == "customers.csv"), None)
    if base is not None:
        print(f"base: {run_command(groups, config_dir)} {shlex.quote(f'market.base={base}')}"
              "  (today's customers too)")
    if any(g.startswith(("uncertainty=", "business=")) for g in groups):
        print(f"psa:  {psa_command(groups, config_dir)}  (the fit's uncertainty propagated; "
              "your scenarios in compare=[...])")
    return 0


def _transactions_summary(result: TransactionFit) -> str:
    bg = result.bgnbd
    lines = [f"BG/NBD ({result.data.unit}s), {bg.n_obs:,} customers, log-likelihood "
             f"{bg.loglik:.6g}:"]
    lines += [f"  {n:<6} {_g(bg[n]):>10}  (SE {_g(bg.se_of(n), 3)})" for n in bg.names]
    a_days, a_se = result.alpha_days
    lines.append(f"  alpha_days {_g(a_days)} (SE {_g(a_se, 3)})")
    if result.spend is not None:
        gg = result.spend
        ov = result.order_value()
        lines.append(f"Gamma-Gamma, {gg.n_obs:,} repeat buyers, log-likelihood {gg.loglik:.6g}:")
        lines += [f"  {n:<6} {_g(gg[n]):>10}  (SE {_g(gg.se_of(n), 3)})" for n in gg.names]
        lines.append(f"  order value mean {_g(ov['order_value_mean'])}, cv "
                     f"{_g(ov['order_value_cv'])}")
    chi = result.chi_square
    lines.append(f"chi-square (repeat purchase histogram): {chi['statistic']:.4g}, df "
                 f"{chi['df']}, p = {_g(chi['p_value'], 3)}")
    return "\n".join(lines)


def _journey_summary(result: JourneyFit) -> str:
    lines = [f"Funnel from {result.data.n_customers:,} customers; losses "
             + ("recorded" if result.data.lost_recorded else "inferred") + ":"]
    override = referral_entry(result.data.order)[1]
    if override:
        lines.append(f"  note: the journey has no stage "
                     f"{_baseline()['advocacy']['referral_entry_stage']!r} for referred "
                     f"prospects: run the simulator with {shlex.quote(override)}")
    for stage in result.data.order:
        f = result.stages[stage]
        exits = ", ".join(f"{e.target} {e.prob:.3f}" for e in f.exits)
        lines.append(f"  {stage}: {f.dwell.kind} mean {_g(f.dwell.mean_days)} days, cv "
                     f"{_g(f.dwell.cv)}; exits {exits}")
    return "\n".join(lines)

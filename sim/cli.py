"""The command line: ``python -m sim [overrides]`` (a Hydra app).

Before Hydra runs anything (and before it makes an output folder), every config folder the
user named is checked as data (``sim.userfiles``) and the config is composed and validated
once, with every comparison option. Any input problem is printed as one line,
``error: ...``, and the exit status is 2 (``sim.errors.EXIT_INPUT``); outputs that cannot
be written exit 1, Ctrl-C exits 130. Outputs go to Hydra's run directory, which is passed
down explicitly (no chdir).
"""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sim.api import (
    check_comparison,
    check_metric_name,
    check_psa,
    check_task,
    compare,
    psa,
    run,
    run_task,
    scenario_list,
    task_of,
)
from sim.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT, InputError, SimError
from sim.model.config import (
    CONFIG_DIR,
    baseline_config,
    compose_config,
    hydra_message,
    launched,
    register_configs,
    settle_scenario,
)
from sim.present.text import (
    CONSOLE_WIDTH,
    format_comparison,
    format_psa,
    format_summary,
    launch_line,
    write_comparison,
    wrote_line,
)
from sim.userfiles import ConfigFileError, check_user_configs

log = logging.getLogger("sim")

MAX_PREFLIGHT_JOBS = 200  # a sweep larger than this is checked job by job as it runs


def _compare_names(cfg: DictConfig, config_dirs: Sequence[Path] = ()) -> list[str]:
    value = cfg.compare
    return scenario_list(OmegaConf.to_container(value) if OmegaConf.is_config(value)
                         else value, config_dirs)


def _without_compare(overrides: Sequence[str]) -> list[str]:
    return [o for o in overrides
            if not o.lstrip("+~").startswith(("compare=", "compare_rank=", "compare_reference=",
                                               "scenario="))]


def _compare(cfg: DictConfig, out_dir: Path) -> float:
    """``compare=...``: the baseline and the named scenarios, paired, ranked. Returns (to a
    Hydra sweeper) the largest difference in ``compare_rank`` from the reference, not
    ``run.objective``."""
    names = _compare_names(cfg)
    keep = _without_compare(HydraConfig.get().overrides.task)
    result = compare(names, overrides=keep, rank_by=cfg.compare_rank,
                     reference=cfg.compare_reference)
    descriptions = {k: r.spec.scenario_description for k, r in result.runs.items()}
    per_rep = {k: r.experiment.metrics for k, r in result.runs.items()}
    written = write_comparison(result.table, per_rep, descriptions, result.rank_by, out_dir,
                               plots=cfg.run.plots, finance=result.finance(),
                               ltv=result.ltv(), reference=result.reference)
    if cfg.run.summary:
        print(format_comparison(result.table, result.rank_by, result.replications,
                                result.reference, width=CONSOLE_WIDTH))
        launched_spec = next((r.spec for r in result.runs.values() if r.spec.before), None)
        if launched_spec is not None:
            print(textwrap.fill(f"Every scenario {launch_line(launched_spec)}.",
                                CONSOLE_WIDTH, break_on_hyphens=False) + "\n")
        print(wrote_line(written, out_dir))
    best = result.table[result.table["metric"] == result.rank_by]
    return float(best["difference"].max()) if len(best) else float("nan")


NEEDS_OPTIONS = ("a PSA compares options: name the scenarios with compare=[...] (the "
                 "baseline is always one of them), e.g. psa.draws=256 "
                 "'compare=[remove_hidden_fees,seo]'")


def _psa(cfg: DictConfig, out_dir: Path) -> float:
    """``psa.draws=N compare=...``: the PSA, its tornado, the files; the journal of
    finished runs is removed once every file is written."""
    if cfg.compare in (None, "", []):
        raise ConfigFileError(f"psa.draws={cfg.psa.draws}: {NEEDS_OPTIONS}")
    names = _compare_names(cfg)
    keep = _without_compare(HydraConfig.get().overrides.task)
    decision = psa(names, overrides=keep, journal_dir=out_dir)
    written = decision.write(out_dir, plots=cfg.run.plots)
    for journal in out_dir.glob("*.partial.jsonl"):
        journal.unlink(missing_ok=True)
    if cfg.run.summary:
        print(format_psa(decision.result))
        print("\n" + wrote_line(written, out_dir))
    return float(decision.summary["expected"].iloc[0])


def _task(cfg: DictConfig, out_dir: Path) -> float:
    """``curve.keys``, ``allocate.channels``, ``seek.key`` or ``portfolio.budget``: the
    analysis, its files; returns (to a Hydra sweeper) its answer's objective."""
    overrides = list(HydraConfig.get().overrides.task)
    answer = run_task(overrides)
    written = answer.write(out_dir, plots=cfg.run.plots)
    if cfg.run.summary:
        print(answer.markdown())
        print("\n" + wrote_line(written, out_dir))
    r, kind = answer.result, answer.kind
    if kind == "curve":
        rows = r.table[r.table["metric"] == r.settings["objective"]]
        return float(rows["mean"].max())
    if kind == "allocate":
        v = r.verification.set_index("metric")
        return float(v.loc[r.objective, "proposed"])
    if kind == "seek":
        return float(r.value)
    return float(r.sets.set_index("set").loc[r.chosen, "gain_mean"])


def _fail(err: SimError) -> None:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(EXIT_INPUT if isinstance(err, InputError) else EXIT_OUTPUT)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> float:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if task_of(cfg) is not None:
            return _task(cfg, out_dir)
        if cfg.psa.draws > 0:
            return _psa(cfg, out_dir)
        if cfg.compare not in (None, "", []):
            return _compare(cfg, out_dir)
        settle_scenario(cfg, HydraConfig.get().runtime.choices.get("scenario", "baseline"))
        before = (baseline_config(HydraConfig.get().overrides.task) if launched(cfg)
                  else None)
        result = run(cfg, before=before)
        written = result.write(out_dir, plots=cfg.run.plots, events=cfg.run.events)
    except SimError as err:
        _fail(err)
    if cfg.run.summary:
        print(format_summary(result.summary, result.spec, result.experiment.n_replications))
        print("\n" + wrote_line(written, out_dir))
    # the value a Hydra sweeper optimises: run.objective's mean over the replications
    # (checked before the run: sim.api.run and preflight)
    return float(result.summary[cfg.run.objective].mean)


def _jobs(overrides: list[str]) -> list[list[str]]:
    """The override lists of a multirun's jobs (Hydra's basic sweep: every combination).

    A sweeper that searches (``hydra/sweeper=optuna``, chosen on the command line only: a
    config file cannot choose one, ``sim.userfiles``) picks its values as it goes, so each
    ``key=interval(a,b)`` is checked at its two ends, ``key=a,b``: a key's allowed range
    holds everywhere between two values it holds at. Its trials are checked as they run.
    """
    # Hydra's own sweep expansion (hydra-core is pinned below 1.4)
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(overrides)
        sweeper = next((str(o.value()) for o in reversed(parsed)
                        if o.key_or_group == "hydra/sweeper"), "basic")
        interval = next((o for o in parsed if o.is_interval_sweep()), None)
        if interval is not None and sweeper == "basic":
            raise ConfigFileError(
                f"override {interval.input_line!r}: interval(...) is a range to search, "
                "which Hydra's basic sweeper cannot run; choose a sweeper that searches "
                "(hydra/sweeper=optuna, from pip install hydra-optuna-sweeper) or list the "
                "values (a,b,c or range(start,stop,step))")
        if interval is not None:
            parsed = parser.parse_overrides([
                f"{o.get_key_element()}={o.value().start},{o.value().end}"
                if o.is_interval_sweep() else o.input_line for o in parsed])
        batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except HydraException as err:
        raise ConfigFileError(hydra_message(err, overrides)) from None
    return [list(job) for batch in batches for job in batch]


def _check_job(overrides: list[str], config_dirs: list[Path]) -> None:
    """Compose and validate one job as ``_app`` will run it, without running it."""
    from sim.api import check_memory, check_work
    from sim.model.config import scenario_choice
    from sim.model.spec import build_spec

    cfg = compose_config(overrides, config_dirs)
    if task_of(cfg) is not None:
        check_task(overrides, config_dirs)
        return
    if cfg.psa.draws > 0:
        if cfg.compare in (None, "", []):
            raise ConfigFileError(f"psa.draws={cfg.psa.draws}: {NEEDS_OPTIONS}")
        check_psa(_compare_names(cfg, config_dirs), _without_compare(overrides), config_dirs)
        return
    if cfg.compare not in (None, "", []):
        if scenario_choice(overrides) != "baseline":
            raise ConfigFileError(
                f"compare with scenario={scenario_choice(overrides)}: a comparison runs the "
                "baseline and the scenarios it names; put the scenario in the list, e.g. "
                "compare=[seo,guest_checkout]")
        specs = check_comparison(_compare_names(cfg, config_dirs),
                                 _without_compare(overrides), cfg.compare_rank, config_dirs,
                                 cfg.compare_reference)
        check_metric_name(specs["baseline"], cfg.run.objective, "run.objective")
        return
    spec = build_spec(cfg, before=(baseline_config(overrides, config_dirs) if launched(cfg)
                                   else None))
    check_metric_name(spec, cfg.run.objective, "run.objective")
    check_memory(spec)
    check_work(spec)


def preflight(argv: Sequence[str]) -> None:
    """Check everything the command line was given before Hydra runs: the config folders
    (as data), options that would load code, then every job's config as it will run.

    Raises
    ------
    sim.errors.InputError : the first problem, as one message.
    """
    from hydra._internal.utils import get_args_parser

    # Hydra's own parser, so the options mean what Hydra will take them to mean; a bad
    # option exits here with argparse's message and status 2
    args = get_args_parser().parse_args(list(argv))
    if args.experimental_rerun:
        raise ConfigFileError("--experimental-rerun loads a pickled file, which can run "
                              "code; rerun with the saved overrides instead")
    if args.config_path is not None or args.config_name not in (None, "config"):
        raise ConfigFileError("--config-path and --config-name replace the built-in config; "
                              "keep your overlays in a folder and pass --config-dir DIR")
    config_dirs = [Path(args.config_dir)] if args.config_dir else []
    check_user_configs(config_dirs, args.overrides)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return
    jobs = _jobs(args.overrides) if args.multirun else [list(args.overrides)]
    for job in jobs[:MAX_PREFLIGHT_JOBS]:
        _check_job(job, config_dirs)


def main() -> None:
    """Entry point of ``python -m sim`` and the ``journey-sim`` script."""
    try:
        preflight(sys.argv[1:])
        register_configs()
        _app()
    except SimError as err:
        _fail(err)
    except KeyboardInterrupt:
        print("interrupted: stopped before the outputs were complete (a run folder without "
              "metrics.json, or psa.json for a PSA, or the .json of an analysis, is "
              "unfinished; a PSA picks up its finished runs when the same command is run "
              "with hydra.run.dir=<that folder>)",
              file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)

"""The command line: ``python -m sim [overrides]`` (a Hydra app).

Validation problems are printed as one message, without a traceback, and the exit status
is 2. Outputs go to Hydra's run directory, which is passed down explicitly (no chdir).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sim.api import compare, run, scenario_list
from sim.config import CONFIG_DIR, register_configs
from sim.report import format_comparison, format_summary, write_comparison
from sim.spec import SpecError

log = logging.getLogger("sim")


def _compare(cfg: DictConfig, out_dir: Path) -> float:
    """``compare=...``: the baseline and the named scenarios, paired, ranked."""
    names = scenario_list(OmegaConf.to_container(cfg.compare)
                          if OmegaConf.is_config(cfg.compare) else cfg.compare)
    keep = [o for o in HydraConfig.get().overrides.task
            if not o.lstrip("+~").startswith(("compare=", "compare_rank=", "scenario="))]
    result = compare(names, overrides=keep, rank_by=cfg.compare_rank)
    descriptions = {k: r.spec.scenario_description for k, r in result.runs.items()}
    per_rep = {k: r.experiment.metrics for k, r in result.runs.items()}
    written = write_comparison(result.table, per_rep, descriptions, result.rank_by, out_dir,
                               plots=cfg.run.plots, finance=result.finance(),
                               ltv=result.ltv())
    if cfg.run.summary:
        print(format_comparison(result.table, result.rank_by, result.replications))
        print(f"wrote {', '.join(p.name for p in written)} to {out_dir}")
    best = result.table[result.table["metric"] == result.rank_by]
    return float(best["difference"].max()) if len(best) else float("nan")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> float:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if cfg.compare not in (None, "", []):
            return _compare(cfg, out_dir)
        result = run(cfg)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    written = result.write(out_dir, plots=cfg.run.plots, events=cfg.run.events)
    if cfg.run.summary:
        print(format_summary(result.summary, result.spec, result.experiment.n_replications))
        print(f"\nwrote {', '.join(p.name for p in written)} to {out_dir}")
    # the value a Hydra sweeper would optimise
    return float(result.summary["conversion_rate"].mean)


def main() -> None:
    """Entry point of ``python -m sim`` and the ``journey-sim`` script."""
    register_configs()
    _app()

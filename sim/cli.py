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
from omegaconf import DictConfig

from sim.api import run
from sim.config import CONFIG_DIR, register_configs
from sim.report import format_summary
from sim.spec import SpecError

log = logging.getLogger("sim")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> float:
    try:
        result = run(cfg)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    written = result.write(out_dir, plots=cfg.run.plots)
    if cfg.run.summary:
        print(format_summary(result.summary, result.spec, result.experiment.n_replications))
        print(f"\nwrote {', '.join(p.name for p in written)} to {out_dir}")
    # the value a Hydra sweeper would optimise
    return float(result.summary["conversion_rate"].mean)


def main() -> None:
    """Entry point of ``python -m sim`` and the ``journey-sim`` script."""
    register_configs()
    _app()

"""The Python API for notebooks and scripts: ``sim.run(overrides=[...])``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from sim.analysis import Estimate, summarize
from sim.config import compose_config
from sim.experiment import ExperimentResult, run_experiment
from sim.spec import ModelSpec, build_spec

__all__ = ["Run", "run"]


@dataclass
class Run:
    """A finished run of one scenario: the spec, every replication, metrics with CIs."""

    experiment: ExperimentResult
    summary: dict[str, Estimate]

    @property
    def spec(self) -> ModelSpec:
        return self.experiment.spec

    @property
    def stages(self) -> list[str]:
        """The journey framework's stage names, in order."""
        return [label for label, _ in self.spec.report]

    def metrics(self) -> pd.DataFrame:
        """One row per metric: mean, sd, n, half_width, low, high (95% CI)."""
        return pd.DataFrame({k: v.as_dict() for k, v in self.summary.items()}).T

    def funnel(self) -> pd.DataFrame:
        """One row per framework stage: customers reaching it, share of the aware and step
        conversion from the previous stage, each as mean and 95% CI (low, high)."""
        rows = {}
        for stage in self.stages:
            row = {}
            for key, name in (("reached", "reached"), ("rate", "share_of_aware"),
                              ("step_rate", "step_conversion")):
                e = self.summary[f"funnel.{stage}.{key}"]
                row |= {name: e.mean, f"{name}_low": e.low, f"{name}_high": e.high}
            rows[stage] = row
        return pd.DataFrame(rows).T.rename_axis("stage")

    def customers(self) -> pd.DataFrame:
        """One row per aware customer, all replications."""
        return self.experiment.customers()

    def daily(self) -> pd.DataFrame:
        """Per replication and day: entries, occupancy, spend, revenue."""
        return self.experiment.daily()

    def events(self, replication: int = 0) -> pd.DataFrame:
        """Every state entry of one replication."""
        return self.experiment.events(replication)

    def journey_of(self, customer: int, replication: int = 0) -> list[tuple[float, str]]:
        """One customer's path: (day, state) in order."""
        return self.experiment.results[replication].journey_of(customer)

    def write(self, out_dir: str | Path, plots: bool = True) -> list[Path]:
        """Write metrics.json, customers.csv, daily.csv (and funnel.png) into ``out_dir``."""
        from sim import io

        written = io.write_outputs(self.experiment, self.summary, Path(out_dir))
        if plots:
            from sim import plotting

            fig = plotting.funnel_figure(self.summary, self.stages, self.title)
            written.append(io.save_figure(fig, Path(out_dir) / "funnel.png"))
            plotting.close(fig)
        return written

    @property
    def title(self) -> str:
        s = self.spec
        return (f"{s.scenario_name}: {s.journey_name} journey, "
                f"{self.experiment.n_replications} replications x {s.horizon_days:g} days")


def run(cfg: DictConfig | None = None, overrides: Sequence[str] = ()) -> Run:
    """Compose (or take) a config, validate it, run every replication, summarise.

    Parameters
    ----------
    cfg : a composed config; when None, the built-in config is composed with ``overrides``.
    overrides : Hydra overrides, e.g. ``["run=smoke", "checkout.hidden_fees=false"]``.

    Raises
    ------
    sim.spec.SpecError : listing every invalid key, its value and what is allowed.
    """
    if cfg is None:
        cfg = compose_config(overrides)
    elif overrides:
        raise ValueError("pass either cfg or overrides, not both")
    exp = run_experiment(build_spec(cfg))
    return Run(exp, summarize(exp))

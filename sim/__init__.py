"""journey-sim: a customer-journey simulator and what-if modeller.

>>> import sim
>>> result = sim.run(overrides=["run=smoke"])
>>> result.summary["conversion_rate"].mean  # doctest: +SKIP
"""

from sim.api import Run, run
from sim.errors import InputError, OutputError
from sim.model.config import compose_config
from sim.model.spec import ModelSpec, SpecError, build_spec

__all__ = ["InputError", "ModelSpec", "OutputError", "Run", "SpecError", "build_spec",
           "compose_config", "run"]
__version__ = "0.1.0"

"""The model definition: what a scenario says, checked before anything runs.

- ``config``: the config schema (every key with its type and allowed range) and the Hydra
  composition of the config tree, the scenario overlays and a user's own folders.
- ``checks``: the schema-driven checks of a composed config (unknown keys, every number
  within its declared range) and the ``Checker`` that collects every problem found.
- ``spec``: ``build_spec``, a composed config checked section by section into the frozen
  ``ModelSpec`` every later stage reads.
- ``uncertainty``: uncertain assumptions (distributions on config keys, from the
  ``uncertainty`` group and scenario files), checked, drawn and applied to a config.
- ``base``: the installed base (``market.base``), today's customers read from a CSV file,
  and their BG/NBD probability of being alive.
- ``distributions``: the dwell-time families, parameterised by mean and cv.
- ``rng``: named random streams, the basis of common random numbers across scenarios.

May import: ``sim.errors``, ``sim.userfiles`` (config folders a user hands us are read as
data), numpy, scipy; Hydra and OmegaConf in ``config`` only. Nothing above this stage.
"""

from sim.model.config import compose_config
from sim.model.spec import ModelSpec, SpecError, build_spec

__all__ = ["ModelSpec", "SpecError", "build_spec", "compose_config"]

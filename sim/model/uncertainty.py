"""Uncertain assumptions: distributions on config keys, read as data, checked, drawn.

An assumption is a key path of the model and a distribution, written as a nested mapping in
the ``uncertainty`` group (every option alike) or under ``scenario.uncertainty`` (that
scenario only)::

    checkout:
      weights:
        hidden_fees: {dist: triangular, low: 0.3, mode: 0.6, high: 0.9}

A mapping with a ``dist`` key is an assumption; any other mapping goes one level down the
key path. The families, by intuitive parameters:

==================  ======================================================================
``point``           ``value``: no uncertainty (a degenerate distribution)
``uniform``         ``low``, ``high``
``triangular``      ``low``, ``mode``, ``high``
``normal``          ``mean``, ``sd``
``lognormal``       ``mean`` and ``sd`` or ``cv`` (of the value, not of its log)
``gamma``           ``mean`` and ``sd`` or ``cv``
``beta``            ``mean``, ``sd``, optionally ``low`` and ``high`` (default 0 and 1)
``joint_lognormal`` ``keys`` (names below this node), ``median`` and ``log_cov``: values
                    whose logs are jointly normal (a calibration's fitted parameters)
==================  ======================================================================

``effect`` says what a draw is: ``value`` (the default: the key's value), ``multiply`` (a
multiplier of the baseline's value of the key) or ``add`` (an increment to it). A scenario's
effect stated relative to the baseline moves with a draw of the baseline's own assumption on
the key, so that one draw moves every option alike.

A distribution on a bounded key is truncated to the key's allowed range (``mass_cut`` says
how much probability was cut); one whose stated range leaves the allowed range is refused.
A draw of an integer key is rounded. Points drawn for a study are returned in draw units (a
value, a multiplier or an increment) as one row per draw, one column per assumption.
"""

from __future__ import annotations

import copy
import difflib
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats
from scipy.stats import qmc

from sim.model.checks import Checker, dotted, numeric_values
from sim.model.config import Range
from sim.model.spec import SpecError

__all__ = [
    "DESIGNS",
    "FAMILIES",
    "Assumption",
    "JointAssumption",
    "Uncertainty",
    "read_uncertainty",
]

FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # family: (required parameters, optional parameters)
    "point": (("value",), ()),
    "uniform": (("low", "high"), ()),
    "triangular": (("low", "mode", "high"), ()),
    "normal": (("mean", "sd"), ()),
    "lognormal": (("mean",), ("sd", "cv")),
    "gamma": (("mean",), ("sd", "cv")),
    "beta": (("mean", "sd"), ("low", "high")),
}
JOINT = "joint_lognormal"
EFFECTS = ("value", "multiply", "add")
DESIGNS = ("sobol", "lhs", "random")
# key paths an assumption may not name: how a run runs, not what the business is
_NOT_ASSUMPTIONS = ("run", "psa", "compare", "compare_rank", "uncertainty", "curve",
                    "allocate", "seek", "portfolio")
MIN_MASS = 1e-9  # a truncated distribution keeping less than this is refused


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Assumption:
    """One uncertain key, for every option (``option`` None) or for one scenario."""

    key: str  # the config key path, e.g. "checkout.weights.hidden_fees"
    family: str
    params: Mapping[str, float]
    effect: str  # value | multiply | add
    option: str | None
    point: float  # the key's value in the config (the option's, or the baseline's if relative)
    allowed: Range
    lo: float = -math.inf  # the truncation, in draw units
    hi: float = math.inf
    mass_cut: float = 0.0

    @property
    def name(self) -> str:
        """The assumption's name in tables: the key path, prefixed by its scenario."""
        return self.key if self.option is None else f"{self.option}:{self.key}"

    @property
    def integer(self) -> bool:
        return self.allowed.integer

    def _dist(self) -> Any:
        return _frozen(self.family, self.params)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Draw-unit values at probabilities ``u`` of the truncated distribution."""
        u = np.asarray(u, dtype=float)
        if self.family == "point":
            return np.full(u.shape, float(self.params["value"]))
        d = self._dist()
        f_lo, f_hi = d.cdf(self.lo), d.cdf(self.hi)
        x = d.ppf(f_lo + u * (f_hi - f_lo))
        return np.clip(x, self.lo, self.hi)

    def percentile(self, q: float) -> float:
        """The draw-unit value at percentile ``q`` (0-100)."""
        return float(self.ppf(np.array([q / 100.0]))[0])

    def mean(self) -> float:
        """The mean of the truncated distribution (draw units), by quadrature of its ppf."""
        u = (np.arange(4096) + 0.5) / 4096
        return float(self.ppf(u).mean())

    def describe(self) -> str:
        params = ", ".join(f"{k} {v:g}" for k, v in self.params.items())
        rel = {"value": "", "multiply": " (multiplies the baseline value)",
               "add": " (added to the baseline value)"}[self.effect]
        cut = f"; {self.mass_cut:.1%} of its mass outside {self.allowed} cut" if \
            self.mass_cut > 0.0005 else ""
        return f"{self.name}: {self.family}({params}){rel}{cut}"


@dataclass(frozen=True)
class JointAssumption:
    """Values whose logs are jointly normal: ``keys`` below ``base``, median and covariance."""

    base: str
    keys: tuple[str, ...]
    median: tuple[float, ...]
    log_cov: tuple[tuple[float, ...], ...]
    option: str | None
    allowed: tuple[Range, ...]

    @property
    def names(self) -> list[str]:
        prefix = "" if self.option is None else f"{self.option}:"
        return [f"{prefix}{self.base}.{k}" for k in self.keys]

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        """(n, len(keys)) values from (n, len(keys)) independent uniforms."""
        z = special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
        # a square root of the covariance that exists for a singular one too (a parameter
        # fixed, or two perfectly correlated): V = Q diag(w) Q', root Q diag(sqrt(w))
        w, q = np.linalg.eigh(np.asarray(self.log_cov))
        root = q * np.sqrt(np.clip(w, 0.0, None))
        x = np.exp(np.log(np.asarray(self.median)) + z @ root.T)
        for j, rng in enumerate(self.allowed):  # clip to the allowed range (rarely binding)
            lo = rng.lo if not rng.lo_open else np.nextafter(rng.lo, np.inf)
            hi = rng.hi if not rng.hi_open else np.nextafter(rng.hi, -np.inf)
            x[:, j] = np.clip(x[:, j], lo, hi)
        return x


def _frozen(family: str, p: Mapping[str, float]) -> Any:
    """The scipy distribution of a family by its intuitive parameters."""
    if family == "uniform":
        return stats.uniform(p["low"], p["high"] - p["low"])
    if family == "triangular":
        width = p["high"] - p["low"]
        return stats.triang((p["mode"] - p["low"]) / width, p["low"], width)
    if family == "normal":
        return stats.norm(p["mean"], p["sd"])
    sd = p["sd"] if "sd" in p else p.get("cv", 0.0) * p["mean"]
    if family == "lognormal":
        s2 = math.log1p((sd / p["mean"]) ** 2)
        return stats.lognorm(math.sqrt(s2), scale=p["mean"] * math.exp(-s2 / 2))
    if family == "gamma":
        shape = (p["mean"] / sd) ** 2
        return stats.gamma(shape, scale=p["mean"] / shape)
    if family == "beta":
        lo, hi = p.get("low", 0.0), p.get("high", 1.0)
        m, v = (p["mean"] - lo) / (hi - lo), (sd / (hi - lo)) ** 2
        k = m * (1 - m) / v - 1
        return stats.beta(m * k, (1 - m) * k, loc=lo, scale=hi - lo)
    raise ValueError(family)


def _degenerate(family: str, p: Mapping[str, float]) -> float | None:
    """The single value of a zero-width distribution, else None."""
    if family == "point":
        return p["value"]
    if family in ("uniform", "triangular") and p["low"] == p["high"]:
        return p["low"]
    sd = p.get("sd", p.get("cv", 0.0) * p.get("mean", 0.0))
    if family in ("normal", "lognormal", "gamma", "beta") and sd == 0:
        return p["mean"]
    return None


def _check_params(path: str, leaf: Mapping[str, Any], chk: Checker) -> dict[str, float] | None:
    """The family's parameters as floats, or None with every problem added."""
    family = leaf["dist"]
    need, optional = FAMILIES[family]
    known = {"dist", "effect", *need, *optional}
    ok = True
    for k in leaf:
        if k not in known:
            chk.add(f"{path}.{k}", leaf[k], f"a parameter of {family}: "
                    f"{', '.join(need + optional)}, and effect")
            ok = False
    for k in need:
        if k not in leaf:
            chk.add(f"{path}.{k}", None, f"required by {family} ({', '.join(need)})")
            ok = False
    p = {k: leaf[k] for k in (*need, *optional) if k in leaf}
    for k, v in p.items():
        if not _number(v):
            chk.add(f"{path}.{k}", v, "a finite number")
            ok = False
    if not ok:
        return None
    p = {k: float(v) for k, v in p.items()}

    def bad(k: str, allowed: str) -> None:
        nonlocal ok
        chk.add(f"{path}.{k}", p.get(k), allowed)
        ok = False

    if family in ("lognormal", "gamma"):
        if ("sd" in p) == ("cv" in p):
            bad("sd", f"{family} takes its spread as sd or as cv, one of them")
        elif p["mean"] <= 0:
            bad("mean", f"a positive number ({family} values are positive)")
        elif p.get("sd", 0) < 0 or p.get("cv", 0) < 0:
            bad("sd" if "sd" in p else "cv", "a number >= 0")
    if family == "uniform" and p["low"] > p["high"]:
        bad("low", f"at most high ({p['high']:g})")
    if family == "triangular" and not p["low"] <= p["mode"] <= p["high"]:
        bad("mode", f"between low ({p['low']:g}) and high ({p['high']:g})")
    if family in ("normal", "beta") and p["sd"] < 0:
        bad("sd", "a number >= 0")
    if family == "beta" and ok:
        lo, hi = p.get("low", 0.0), p.get("high", 1.0)
        if not lo < hi:
            bad("low", f"below high ({hi:g})")
        elif not lo < p["mean"] < hi and p["sd"] > 0:
            bad("mean", f"strictly between low ({lo:g}) and high ({hi:g})")
        elif p["sd"] ** 2 >= (p["mean"] - lo) * (hi - p["mean"]):
            bad("sd", f"below sqrt((mean - low)(high - mean)) = "
                f"{math.sqrt(max((p['mean'] - lo) * (hi - p['mean']), 0)):.4g}: a beta "
                "distribution this wide does not exist")
    return p if ok else None


def _leaves(node: Any, keys: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(key path, leaf) of every assumption in a nested mapping; a non-mapping where a
    mapping was expected is yielded as a leaf for the caller to refuse."""
    if isinstance(node, Mapping) and "dist" not in node:
        for k, child in node.items():
            yield from _leaves(child, (*keys, str(k)))
    else:
        yield keys, node


def _truncation(family: str, p: Mapping[str, float], effect: str, reference: float,
                allowed: Range) -> tuple[float, float, float, str | None]:
    """(lo, hi, mass cut, problem) of a distribution on a key with range ``allowed``, in draw
    units (for a relative effect, through the reference value)."""
    lo, hi = allowed.lo, allowed.hi
    if effect == "add":
        lo, hi = lo - reference, hi - reference
    elif effect == "multiply":
        if reference == 0:
            return -math.inf, math.inf, 0.0, None  # 0 x anything is 0: always allowed
        lo, hi = sorted((lo / reference, hi / reference))
    if family == "point":
        v = p["value"]
        return lo, hi, 0.0, (None if lo <= v <= hi else "a value the key allows")
    if family in ("uniform", "triangular") or (family == "beta" and ("low" in p or
                                                                    "high" in p)):
        a, b = p.get("low", 0.0), p.get("high", 1.0)
        if a < lo - 1e-12 * abs(lo) or b > hi + 1e-12 * abs(hi):
            return lo, hi, 0.0, "a range within what the key allows"
        return lo, hi, 0.0, None
    d = _frozen(family, p)
    kept = float(d.cdf(hi) - d.cdf(lo))
    if kept < MIN_MASS:
        return lo, hi, 1.0, "a distribution with some mass in what the key allows"
    return lo, hi, max(0.0, 1.0 - kept), None


@dataclass
class Uncertainty:
    """Every assumption of a set of options: the shared ones first, then each scenario's."""

    assumptions: list[Assumption] = field(default_factory=list)
    joints: list[JointAssumption] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The columns of a draw table: every assumption, a joint one key by key."""
        return [a.name for a in self.assumptions] + [n for j in self.joints for n in j.names]

    def __len__(self) -> int:
        return len(self.names)

    def describe(self) -> list[str]:
        out = [a.describe() for a in self.assumptions]
        for j in self.joints:
            sd = np.sqrt(np.diag(np.asarray(j.log_cov)))
            out.append(f"{', '.join(j.names)}: jointly lognormal, medians "
                       f"{', '.join(f'{m:.4g}' for m in j.median)}, sd of the logs "
                       f"{', '.join(f'{s:.3g}' for s in sd)}")
        return out

    # ------------------------------------------------------------------ drawing points
    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        """(n, len(self)) draw-unit values from (n, len(self)) uniforms in (0, 1)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        cols = [a.ppf(u[:, i]) for i, a in enumerate(self.assumptions)]
        i = len(self.assumptions)
        for j in self.joints:
            k = len(j.keys)
            cols.extend(j.from_uniforms(u[:, i:i + k]).T)
            i += k
        return np.column_stack(cols) if cols else np.empty((u.shape[0], 0))

    def sample(self, n: int, seed: int, design: str = "sobol") -> np.ndarray:
        """``n`` draws (n, len(self)): scrambled Sobol' points (``sobol``), a Latin
        hypercube (``lhs``) or independent uniforms (``random``), seeded by ``seed``."""
        d = len(self)
        if d == 0:
            return np.empty((n, 0))
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x05A,)))
        if design == "sobol":
            with warnings.catch_warnings():  # n need not be a power of 2 (less balanced)
                warnings.simplefilter("ignore", UserWarning)
                u = qmc.Sobol(d, scramble=True, seed=rng).random(n)
        elif design == "lhs":
            u = qmc.LatinHypercube(d, seed=rng).random(n)
        elif design == "random":
            u = rng.random((n, d))
        else:
            raise ValueError(design)
        return self.from_uniforms(np.clip(u, 1e-12, 1 - 1e-12))

    # --------------------------------------------------------------- applying a point
    def apply(self, configs: Mapping[str, Mapping[str, Any]], option: str,
              values: Mapping[str, float]) -> dict[str, Any]:
        """``option``'s config (a copy of ``configs[option]``; ``configs`` holds every option's
        composed config as a plain dict, the baseline's among them) with the assumptions
        named in ``values`` set, in draw units; an assumption not named keeps its key's
        value. A shared assumption sets every option that keeps the baseline's value of the
        key (a scenario that sets the key itself keeps its own value, or takes its own
        assumption's draw); a scenario's own sets that scenario only. A relative draw
        multiplies (or adds to) the baseline's value of the key in this point."""
        base = configs["baseline"]
        cfg = copy.deepcopy(configs[option])
        drawn: dict[str, float] = {}  # the baseline's value of each shared key, this point
        for a in self.assumptions:
            if a.option is None and a.name in values:
                drawn[a.key] = _value(a, float(values[a.name]), a.point)
                if _get(cfg, a.key) == _get(base, a.key):
                    _set(cfg, a.key, drawn[a.key], a.allowed)
        for j in self.joints:
            for key, name, allowed in zip(j.keys, j.names, j.allowed, strict=True):
                path = f"{j.base}.{key}"
                if name in values and (j.option == option or (
                        j.option is None and _get(cfg, path) == _get(base, path))):
                    _set(cfg, path, float(values[name]), allowed)
        for a in self.assumptions:
            if a.option == option and a.name in values:
                reference = drawn.get(a.key, _get(base, a.key))
                _set(cfg, a.key, _value(a, float(values[a.name]), reference), a.allowed)
        return cfg


def _value(a: Assumption, draw: float, reference: float) -> float:
    if a.effect == "multiply":
        return reference * draw
    if a.effect == "add":
        return reference + draw
    return draw


def _get(cfg: Mapping[str, Any], key: str) -> Any:
    node: Any = cfg
    for k in key.split("."):
        node = node[k]
    return node


def _set(cfg: dict[str, Any], key: str, value: float, allowed: Range) -> None:
    *parents, last = key.split(".")
    node = cfg
    for k in parents:
        node = node[k]
    lo = allowed.lo if not allowed.lo_open else np.nextafter(allowed.lo, math.inf)
    hi = allowed.hi if not allowed.hi_open else np.nextafter(allowed.hi, -math.inf)
    value = min(max(float(value), lo), hi)  # a relative draw on a drawn reference
    node[last] = round(value) if allowed.integer else float(value)


# ------------------------------------------------------------------- reading and checking
def _numeric_keys(cfg: Mapping[str, Any]) -> dict[str, tuple[Any, Range]]:
    """Every numeric key of a composed config (plain dict) an assumption may name: its
    value and allowed range."""
    out = {}
    for keys, value, allowed in numeric_values(cfg):
        path = dotted(keys)
        if keys[0] in _NOT_ASSUMPTIONS or (keys[0] == "scenario" and path
                                           != "scenario.cost_per_day"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[path] = (value, allowed)
    return out


def _read_leaf(where: str, keys: tuple[str, ...], leaf: Any, option: str | None,
               numeric: Mapping[str, tuple[Any, Range]],
               base_numeric: Mapping[str, tuple[Any, Range]],
               chk: Checker) -> Assumption | JointAssumption | None:
    key = ".".join(keys)
    path = f"{where}.{key}" if key else where
    if not isinstance(leaf, Mapping):
        chk.add(path, leaf, "a distribution: a mapping with dist (one of "
                f"{', '.join([*FAMILIES, JOINT])}) and its parameters")
        return None
    family = leaf["dist"]
    if family == JOINT:
        return _read_joint(path, key, leaf, option, numeric, chk)
    if family not in FAMILIES:
        chk.add(f"{path}.dist", family, f"one of {', '.join([*FAMILIES, JOINT])}")
        return None
    effect = leaf.get("effect", "value")
    if effect not in EFFECTS:
        chk.add(f"{path}.effect", effect, f"one of {', '.join(EFFECTS)}")
        return None
    if key not in numeric:
        _no_such_key(path, key, leaf, numeric, chk)
        return None
    point, allowed = numeric[key]
    reference = base_numeric.get(key, (point, allowed))[0] if effect != "value" else point
    if effect != "value" and key not in base_numeric:
        chk.add(f"{path}.effect", effect, "value: the baseline has no such key to be "
                "relative to")
        return None
    p = _check_params(path, leaf, chk)
    if p is None:
        return None
    single = _degenerate(family, p)
    if single is not None:
        p, family = {"value": float(single)}, "point"
    lo, hi, cut, problem = _truncation(family, p, effect, reference, allowed)
    if problem:
        what = {"value": "", "multiply": f" (x the baseline's {reference:g})",
                "add": f" (+ the baseline's {reference:g})"}[effect]
        chk.add(path, {k: v for k, v in leaf.items()},
                f"{problem}{what}: {key} must be {allowed.describe()}")
        return None
    return Assumption(key, family, p, effect, option, float(reference), allowed, lo, hi, cut)


def _no_such_key(path: str, key: str, leaf: Any, numeric: Mapping[str, Any],
                 chk: Checker) -> None:
    close = difflib.get_close_matches(key, list(numeric), n=1, cutoff=0.75)
    hint = f"did you mean {close[0]}? " if close else ""
    chk.add(path, dict(leaf), f"a numeric key of the model: {key} is not one. {hint}"
            "(the keys: python -m sim --cfg job; run, psa and compare settings cannot be "
            "uncertain, nor a scenario's keys other than scenario.cost_per_day)")


def _read_joint(path: str, key: str, leaf: Mapping[str, Any], option: str | None,
                numeric: Mapping[str, tuple[Any, Range]], chk: Checker) -> JointAssumption | None:
    allowed_params = {"dist", "keys", "median", "log_cov"}
    extra = [k for k in leaf if k not in allowed_params]
    if extra:
        chk.add(f"{path}.{extra[0]}", leaf[extra[0]], f"a parameter of {JOINT}: keys, median, "
                "log_cov")
        return None
    keys, median, cov = leaf.get("keys"), leaf.get("median"), leaf.get("log_cov")
    if not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
        chk.add(f"{path}.keys", keys, "a list of key names below this node")
        return None
    n = len(keys)
    if not (isinstance(median, list) and len(median) == n and all(_number(m) and m > 0
                                                                  for m in median)):
        chk.add(f"{path}.median", median, f"a list of {n} positive numbers")
        return None
    if not (isinstance(cov, list) and len(cov) == n and all(
            isinstance(r, list) and len(r) == n and all(_number(x) for x in r) for r in cov)):
        chk.add(f"{path}.log_cov", cov, f"a {n} x {n} matrix of numbers")
        return None
    c = np.asarray(cov, dtype=float)
    if not np.allclose(c, c.T) or np.linalg.eigvalsh((c + c.T) / 2).min() < -1e-12:
        chk.add(f"{path}.log_cov", cov, "a symmetric positive semi-definite covariance")
        return None
    ranges = []
    for k, m in zip(keys, median, strict=True):
        full = f"{key}.{k}"
        if full not in numeric:
            _no_such_key(f"{path}.keys", full, leaf, numeric, chk)
            return None
        rng = numeric[full][1]
        if m not in rng:
            chk.add(f"{path}.median", median, f"{full} must be {rng.describe()}")
            return None
        ranges.append(rng)
    return JointAssumption(key, tuple(keys), tuple(float(m) for m in median),
                           tuple(tuple(float(x) for x in r) for r in cov), option, tuple(ranges))


def read_uncertainty(configs: Mapping[str, Mapping[str, Any]]) -> Uncertainty:
    """The assumptions of a set of options' composed configs (plain dicts, ``baseline``
    first): the ``uncertainty`` group of the baseline's config, and each scenario's own
    ``scenario.uncertainty``.

    Raises
    ------
    SpecError : every problem, naming the key path under ``uncertainty`` (or
        ``scenario.uncertainty (scenario NAME)``), the value and what is allowed.
    """
    chk = Checker()
    base = configs["baseline"]
    base_numeric = _numeric_keys(base)
    out = Uncertainty()
    for option, cfg in configs.items():
        if option != "baseline" and cfg.get("uncertainty") != base.get("uncertainty"):
            chk.add(f"uncertainty (scenario {option})", "set by the scenario file",
                    "the same for every option: a scenario's own assumptions go under "
                    "scenario.uncertainty")
    sources: list[tuple[str, str | None, Any, Mapping[str, tuple[Any, Range]]]] = [
        ("uncertainty", None, base.get("uncertainty") or {}, base_numeric)]
    for option, cfg in configs.items():
        if option != "baseline":
            sources.append((f"scenario.uncertainty (scenario {option})", option,
                            (cfg.get("scenario") or {}).get("uncertainty") or {},
                            _numeric_keys(cfg)))
    if (base.get("scenario") or {}).get("uncertainty"):
        sources.append(("scenario.uncertainty (scenario baseline)", "baseline",
                        base["scenario"]["uncertainty"], base_numeric))
    seen: set[str] = set()
    for where, option, tree, numeric in sources:
        if not isinstance(tree, Mapping):
            chk.add(where, tree, "a mapping of key paths to distributions")
            continue
        for keys, leaf in _leaves(tree):
            item = _read_leaf(where, keys, leaf, option, numeric, base_numeric, chk)
            if item is None:
                continue
            names = [item.name] if isinstance(item, Assumption) else item.names
            for name in names:
                if name in seen:
                    chk.add(f"{where}.{'.'.join(keys)}", name, "one distribution per key")
                seen.add(name)
            (out.assumptions if isinstance(item, Assumption) else out.joints).append(item)
    if chk.problems:
        raise SpecError(chk.problems)
    return out

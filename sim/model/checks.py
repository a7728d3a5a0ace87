"""The schema-driven half of config validation, independent of what the model means.

``Checker`` collects problems (key path, value given, what is allowed) so that one
``SpecError`` can list them all; ``known_keys`` reports and drops every key the schema does not
know; ``check_ranges`` checks every number against the range its schema field declares. The
checks of what a section means (stage graphs, shares summing to 1, ...) live in ``spec``, next
to the model they describe.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from sim.model.config import Range, RootConfig, field_range, to_container
from sim.model.distributions import KINDS, Dwell, make_dwell

__all__ = [
    "Checker", "check_ranges", "declared_range", "dotted", "known_keys", "numeric_values",
    "unknown_keys",
]


class Checker:
    """The problems found in a config so far, in the order they were found."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, Any, str]] = []

    def add(self, path: str, value: Any, allowed: str) -> None:
        self.problems.append((path, value, allowed))

    def reported(self, path: str) -> bool:
        return any(p == path for p, _, _ in self.problems)

    def dwell(self, path: str, d: Mapping[str, Any]) -> Dwell | None:
        """The dwell time a config block describes, or None with its problem added."""
        if d["kind"] not in KINDS:
            self.add(f"{path}.kind", d["kind"], f"one of {', '.join(KINDS)}")
            return None
        try:
            return make_dwell(d["kind"], d["mean_days"], d["cv"])
        except ValueError as err:
            key = "cv" if str(err).startswith("cv") else "mean_days"
            self.add(f"{path}.{key}", d[key], str(err).rsplit(", got", 1)[0])
            return None


# --------------------------------------------------------------- schema-driven checks
# maps whose entries the user names (a '+' override may add an entry to them)
_NAMED_MAPS = ("market.segments", "journey.stages", "journey.stages.*.exits", "journey.report",
               "channels")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def dotted(keys: tuple[Any, ...]) -> str:
    """``("channels", "ads", "campaigns", 0, "end_day")``: ``channels.ads.campaigns[0].end_day``"""
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def _children(node: Any, tp: Any) -> Iterator[tuple[Any, Any, Any, dataclasses.Field | None]]:
    """(key, child, child's type, its schema field) of a config node of schema type ``tp``;
    keys the schema does not know come with type None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(node, Mapping):
        fields = {f.name: f for f in dataclasses.fields(tp)}
        for key, child in node.items():
            f = fields.get(key)
            yield key, child, (_hints(tp)[key] if f else None), f
    elif origin is dict and isinstance(node, Mapping):
        for key, child in node.items():
            yield key, child, args[1], None
    elif origin is list and isinstance(node, list):
        for i, child in enumerate(node):
            yield i, child, args[0], None


def unknown_keys(node: Any, tp: Any = RootConfig, keys: tuple[Any, ...] = ()
                 ) -> Iterator[tuple[tuple[Any, ...], Any, list[str]]]:
    """Every key of a config (a plain nested dict) that the schema does not know: its path,
    its value and the keys known at that place. ``hydra`` at the top is Hydra's own."""
    for key, child, child_tp, _ in _children(node, tp):
        if child_tp is None:
            if not (keys == () and key == "hydra"):
                yield (*keys, key), child, [f.name for f in dataclasses.fields(tp)]
        else:
            yield from unknown_keys(child, child_tp, (*keys, key))


def _unknown_key_problem(keys: tuple[Any, ...], value: Any, known: list[str]
                         ) -> tuple[str, Any, str]:
    path, parent = dotted(keys), dotted(keys[:-1])
    close = difflib.get_close_matches(str(keys[-1]), known, n=1, cutoff=0.6)
    where = f"no such key in {parent}" if parent else "no such top-level key"
    hint = (f"did you mean {dotted((*keys[:-1], close[0]))!r}? " if close
            else f"the keys are {', '.join(known)}. ")
    return (path, value, f"{where}: {hint}A '+key=value' override adds only an entry "
            f"to one of the named maps ({', '.join(_NAMED_MAPS)}); every other key exists "
            "already: set it without '+'")


def _pruned(tree: Any, paths: list[tuple[Any, ...]]) -> Any:
    """A copy of ``tree`` without the given key paths."""
    tree = copy.deepcopy(tree)
    for keys in paths:
        node = tree
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return tree


def numeric_values(node: Any, tp: Any = RootConfig, allowed: Range | None = None,
                   keys: tuple[Any, ...] = (), with_none: bool = False
                   ) -> Iterator[tuple[tuple[Any, ...], Any, Range]]:
    """(key path, value, allowed range) of every numeric value of a config (a plain nested
    dict checked for unknown keys), maps' entries included; None (an optional key left
    out) only ``with_none``."""
    children = list(_children(node, tp))
    if (not children and allowed is not None and (node is not None or with_none)
            and not isinstance(node, Mapping | list)):
        yield keys, node, allowed
    for key, child, child_tp, f in children:
        if child_tp is not None:
            rng = field_range(f) if f is not None else allowed
            yield from numeric_values(child, child_tp, rng, (*keys, key), with_none)


def check_ranges(c: Mapping[str, Any], chk: Checker) -> None:
    """Every numeric value finite and within the range its schema field declares; a key
    that a specific check has reported already is not reported twice."""
    for keys, value, allowed in numeric_values(c):
        path = dotted(keys)
        if value not in allowed and not chk.reported(path):
            chk.add(path, value, allowed.describe())


def declared_range(*keys: str) -> Range:
    """The range the schema declares for the field at a key path of the root config."""
    tp: Any = RootConfig
    for k in keys[:-1]:
        tp = _hints(tp)[k]
    return field_range(next(f for f in dataclasses.fields(tp) if f.name == keys[-1]))


def known_keys(cfg: Any, chk: Checker, complete: bool = False) -> dict[str, Any]:
    """The config as a resolved plain dict, every key the schema does not know reported and
    left out (so the rest is checked too and one message lists every problem).
    ``complete``: a plain dict from ``to_container``, used as it is when every key is
    known."""
    # a plain dict is merged onto the schema, which refuses unknown keys: drop them first;
    # a composed config keeps every key, however it got there, in its container
    c = cfg if isinstance(cfg, dict) else to_container(cfg)
    unknown = list(unknown_keys(c))
    for keys, value, known in unknown:
        chk.add(*_unknown_key_problem(keys, value, known))
    if unknown:
        c = _pruned(c, [k for k, _, _ in unknown])
    elif complete and isinstance(cfg, dict):
        return c
    return to_container(c) if isinstance(cfg, dict) else c

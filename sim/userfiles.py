"""Config files a user hands the tool, checked as data before Hydra reads them.

A scenario, a fitted config or any group file in a folder given with ``--config-dir`` or
``hydra.searchpath`` is untrusted input. Hydra would instantiate a ``hydra.callbacks`` entry
with a ``_target_`` from such a file (it would run code), resolve ``${oc.env:...}`` in it
(it would read the environment) and hang on an alias bomb. So every YAML file in those
folders is read here first, as plain YAML without executing anything, and refused with one
message naming the file and the key when it:

- sets any ``hydra`` key (the file's package is ``hydra...``, it lives in a ``hydra/``
  group folder, it is a ``_global_`` overlay with a ``hydra`` key, or its defaults list
  selects a ``hydra/...`` option): Hydra settings belong on the command line;
- has an instantiation key (``_target_``, ``_partial_``, ``_args_``, ``_call_``,
  ``_recursive_``, ``_convert_``) anywhere;
- uses a resolver (``${name:...}``); plain interpolation of the config's own keys
  (``${market.size}``) is allowed, and ``\\${`` is a literal dollar-brace;
- has a YAML tag other than the plain types (``!!python/object/...``, ``!!binary``, ...),
  is not valid YAML, is larger than ``MAX_FILE_BYTES`` or expands (through aliases) to
  more than ``MAX_NODES`` nodes.

Overrides typed on the command line are the user's own choice and are not restricted,
except ``--experimental-rerun`` (it unpickles a file, which can run code).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import grammar_parser
from omegaconf.errors import GrammarParseError
from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser

from sim.errors import InputError

__all__ = [
    "INSTANTIATION_KEYS",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "ConfigFileError",
    "check_config_dir",
    "check_yaml_file",
    "package_of",
    "read_user_bytes",
    "read_user_text",
    "searchpath_dirs",
]

INSTANTIATION_KEYS = frozenset({"_target_", "_partial_", "_args_", "_call_", "_recursive_",
                                "_convert_"})
MAX_FILE_BYTES = 1 << 20  # a config file is a few hundred lines
MAX_NODES = 100_000  # after alias expansion: far above any real config, far below a bomb
MAX_FILES = 2_000  # YAML files in one config folder
MAX_DEPTH = 4  # group folders nested this deep (hydra/launcher is 2)
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in (
    "str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge"))
# top-level sections of the config: a scenario file that sets them needs the _global_ header
_MODEL_SECTIONS = frozenset({"scenario", "market", "journey", "channels", "checkout",
                             "retention", "loyalty", "support", "experience", "advocacy",
                             "economics", "run", "compare", "compare_rank", "compare_reference",
                             "uncertainty", "psa", "curve", "allocate", "seek",
                             "portfolio"})
_PACKAGE = re.compile(r"^#\s*@package\s+(\S+)")


MAX_USER_FILE_BYTES = 256 * 2**20  # a log, a metrics.json or a config: never more than this


def read_user_bytes(path: Path, what: str = "file",
                    max_bytes: int = MAX_USER_FILE_BYTES) -> bytes:
    """The bytes of a file a user handed us, read only if it is a regular file (not a pipe,
    a device or a link to one) of at most ``max_bytes``.

    Raises
    ------
    sim.errors.InputError : one line naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        # O_NONBLOCK: opening a pipe must not wait for a writer; the checks are made on the
        # file actually opened (fstat), so nothing can be swapped in between
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: not a regular file (a folder, pipe or device); "
                         f"expected a {what}") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the {what} ({err.strerror})") from None
    st = os.fstat(fd)  # a link to /dev/zero opens the character device
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(f"{path}: not a regular file (a folder, pipe or device); "
                         f"expected a {what}")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise InputError(f"{path}: {st.st_size:,} bytes, more than the {max_bytes:,} a "
                             f"{what} may have")
        try:
            data = f.read(max_bytes + 1)
        except OSError as err:
            raise InputError(f"{path}: cannot read the {what} ({err.strerror})") from None
    if len(data) > max_bytes:  # grew while we read it
        raise InputError(f"{path}: more than the {max_bytes:,} bytes a {what} may have")
    return data


def read_user_text(path: Path, what: str = "file",
                   max_bytes: int = MAX_USER_FILE_BYTES) -> str:
    """``read_user_bytes`` decoded as UTF-8 (a byte-order mark is dropped).

    Raises
    ------
    sim.errors.InputError : as ``read_user_bytes``, or the file is not UTF-8 text.
    """
    data = read_user_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


class ConfigFileError(InputError):
    """A config file or config folder a user gave is unsafe or malformed."""


def package_of(text: str) -> str | None:
    """The ``# @package`` header of a config file's text (first line), or None."""
    first = text.split("\n", 1)[0]
    m = _PACKAGE.match(first.strip())
    return m.group(1) if m else None


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document once every alias is expanded, in time linear in the text:
    an alias points at the same node object, so sizes are memoised by identity."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = _children(node)
        if done:
            size[id(node)] = min(1 + sum(size[id(c)] for c in children), MAX_NODES + 1)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _nodes(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every distinct node once (aliases are not followed twice)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(_children(node))


def _resolver_calls(text: str) -> list[str]:
    """The resolver calls (``${name:...}``) in a string; plain interpolations are fine."""
    if "${" not in text:
        return []
    try:
        tree = grammar_parser.parse(text)
    except GrammarParseError:
        return [text]
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, OmegaConfGrammarParser.InterpolationResolverContext):
            found.append(node.getText())
            continue
        stack.extend(node.getChild(i) for i in range(getattr(node, "getChildCount",
                                                                 lambda: 0)()))
    return found


def _key_paths(node: yaml.Node, prefix: str = "") -> Iterator[tuple[str, yaml.Node, Any]]:
    """(dotted path, key node, value node) of every mapping entry, depth first."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            path = f"{prefix}.{name}" if prefix else name
            yield path, key, value
            yield from _key_paths(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _key_paths(item, f"{prefix}[{i}]")


def _load_node(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigFileError(f"{path}: not valid YAML{where}: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{path}: not valid YAML: {err}") from None
    except RecursionError:
        raise ConfigFileError(f"{path}: nested too deeply to be a config") from None


def check_yaml_file(path: Path, group: str = "") -> None:
    """Refuse a user's config file that could run code, read the environment or hang
    (see the module docstring); ``group`` is the file's folder relative to the config
    folder (``scenario``, ``hydra/launcher``, or "" at the top).

    Raises
    ------
    ConfigFileError, InputError : one message naming the file, the key and why.
    """
    path = Path(path)
    try:
        text = read_user_text(path, "config file", MAX_FILE_BYTES)
    except InputError as err:
        raise ConfigFileError(str(err)) from None
    if group == "hydra" or group.startswith("hydra/"):
        raise ConfigFileError(f"{path}: a config file in a 'hydra' group folder; Hydra "
                              "settings (launchers, callbacks, output folders) are given on "
                              "the command line, never by a file handed to the tool")
    package = package_of(text)
    root = _load_node(path, text)
    if root is None:  # an empty file: nothing to check
        return
    if _expanded_size(root) > MAX_NODES:
        raise ConfigFileError(f"{path}: expands (through YAML aliases) to more than "
                              f"{MAX_NODES:,} values; a config file cannot be that large")
    for node in _nodes(root):
        if node.tag not in _PLAIN_TAGS:
            line = node.start_mark.line + 1
            raise ConfigFileError(f"{path}, line {line}: YAML tag {node.tag!r} is not "
                                  "allowed; a config holds plain numbers, text, true/false, "
                                  "lists and mappings")
    if package is not None and (package == "hydra" or package.startswith("hydra.")):
        raise ConfigFileError(f"{path}: '# @package {package}' sets Hydra's own settings; "
                              "give those on the command line")
    at_top = package in (None, "_global_") and group == ""
    if group == "scenario" and package is None and isinstance(root, yaml.MappingNode):
        top = {str(getattr(k, "value", "")) for k, _ in root.value}
        if top & _MODEL_SECTIONS:
            raise ConfigFileError(
                f"{path}: the first line must be '# @package _global_' (a scenario overlays "
                f"keys of the whole config, here {', '.join(sorted(top & _MODEL_SECTIONS))}); "
                "without it every key is read as a key of 'scenario'")
    for key_path, key, value in _key_paths(root):
        name = key_path.rsplit(".", 1)[-1].split("[", 1)[0]
        line = key.start_mark.line + 1
        if name in INSTANTIATION_KEYS:
            raise ConfigFileError(
                f"{path}, line {line}: key {key_path!r}: '{name}' asks Hydra to create "
                "objects (run code); config files are data: use the documented keys "
                "(e.g. 'kind: gamma')")
        if key_path == "hydra" and (package == "_global_" or at_top):
            raise ConfigFileError(
                f"{path}, line {line}: key 'hydra': a scenario or config file may set model "
                "keys only; Hydra settings are given on the command line")
        if ((key_path == "market.base" and (package == "_global_" or at_top))
                or (key_path == "base" and (package or group) == "market")):
            raise ConfigFileError(
                f"{path}, line {line}: key 'market.base': a file handed to the tool cannot "
                "name another file to read; give the installed base on the command line "
                "(market.base=customers.csv)")
        if key_path.startswith("defaults[") and isinstance(value, yaml.ScalarNode):
            _check_default_entry(path, line, f"{value.value}")
        if isinstance(value, yaml.ScalarNode) and _resolver_calls(str(value.value)):
            raise ConfigFileError(
                f"{path}, line {value.start_mark.line + 1}: key {key_path!r} = "
                f"{value.value!r}: resolvers ({', '.join(_resolver_calls(str(value.value)))}) "
                "are not allowed in config files; use a number or text, or "
                "${other.key} to repeat another key's value")
    keys = {id(k) for node in _nodes(root) if isinstance(node, yaml.MappingNode)
            for k, _ in node.value}
    for node in _nodes(root):  # list items (keys never resolve: a stage may be named ${x})
        if (isinstance(node, yaml.ScalarNode) and id(node) not in keys
                and _resolver_calls(str(node.value))):
            raise ConfigFileError(
                f"{path}, line {node.start_mark.line + 1}: {node.value!r}: resolvers are not "
                "allowed in config files")
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if getattr(key, "value", None) == "defaults" and isinstance(value,
                                                                        yaml.SequenceNode):
                for item in value.value:
                    for entry in _children(item) or [item]:
                        if isinstance(entry, yaml.ScalarNode):
                            _check_default_entry(path, entry.start_mark.line + 1,
                                                 str(entry.value))


def _check_default_entry(path: Path, line: int, entry: str) -> None:
    words = entry.replace("override ", "").replace("optional ", "").strip().lstrip("/")
    if words == "hydra" or words.startswith(("hydra/", "hydra:", "hydra@")):
        raise ConfigFileError(f"{path}, line {line}: defaults entry {entry!r} selects Hydra "
                              "settings; give those on the command line")


def _yaml_files(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every ``*.yaml`` file under ``folder`` (not in hidden folders), with its group."""
    count = 0
    stack: list[tuple[Path, int]] = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            entries = sorted(here.iterdir())
        except OSError as err:
            raise ConfigFileError(f"{here}: cannot read the config folder "
                                  f"({err.strerror})") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if depth < MAX_DEPTH:
                    stack.append((entry, depth + 1))
            elif entry.suffix == ".yaml":
                count += 1
                if count > MAX_FILES:
                    raise ConfigFileError(
                        f"{folder}: more than {MAX_FILES:,} YAML files; point --config-dir "
                        "at a folder of overlays (e.g. my_overlays/ with scenario/ inside)")
                yield entry, entry.parent.relative_to(folder).as_posix().strip(".")


def check_config_dir(folder: Path | str, option: str = "--config-dir") -> list[Path]:
    """Check every YAML file of a user's config folder (``check_yaml_file``); returns them.

    Raises
    ------
    ConfigFileError : the folder does not exist, or one of its files is refused.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigFileError(f"{option} {folder}: no such folder")
    files = []
    for path, group in _yaml_files(folder):
        check_yaml_file(path, group)
        files.append(path)
    return files


def searchpath_dirs(overrides: Iterable[str]) -> list[Path]:
    """The ``file://`` (or plain path) folders of ``hydra.searchpath`` overrides.

    Raises
    ------
    ConfigFileError : a search path entry that is not a local folder (``pkg://`` modules
        are not config folders a user hands us).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    found: list[Path] = []
    for text in overrides:
        if "searchpath" not in text:
            continue
        try:
            (override,) = OverridesParser.create().parse_overrides([text])
        except HydraException as err:
            raise ConfigFileError(f"override {text!r}: {err}") from None
        if override.key_or_group != "hydra.searchpath" or override.is_delete():
            continue
        value = override.value()
        for entry in value if isinstance(value, list) else [value]:
            entry = str(entry)
            if entry.startswith("pkg://"):
                raise ConfigFileError(
                    f"override {text!r}: search path {entry!r}: only folders (file://DIR) "
                    "can be added to the config search path")
            found.append(Path(entry.removeprefix("file://")))
    return found


def check_user_configs(config_dirs: Sequence[Path | str] = (),
                       overrides: Sequence[str] = ()) -> list[Path]:
    """Check every config folder a user named: ``config_dirs`` and the folders of
    ``hydra.searchpath`` overrides. Returns the folders."""
    dirs = [Path(d) for d in config_dirs]
    for d in dirs:
        check_config_dir(d)
    extra = searchpath_dirs(overrides)
    for d in extra:
        check_config_dir(d, "hydra.searchpath")
    return [*dirs, *extra]

"""Reference pages generated from the code at build time, so they cannot drift.

Directives (MyST syntax, e.g. ```` ```{config-table} market ``` ````):

- ``config-table SECTION [SECTION ...]``: one table of every key under the named top-level
  config sections: dotted key (map entries as ``*``, list items as ``[]``), type, value in
  the default composed config, allowed range (``field_range``) or values, and meaning (the
  ``#`` comment above the schema field or at the end of its line).
- ``config-groups``: the config groups (``configs/<group>/*.yaml``) and their options.
- ``scenario-list``: the scenarios (``scenarios/*.yaml``) with their descriptions.
- ``command-help COMMAND``: the output of ``python -m ... --help``, run at build time.
- ``hydra-options``: the options of ``python -m sim`` (Hydra's command-line parser).

The functions without Sphinx in them (``config_rows`` and ``config_table``) are also used
by tests/test_docs.py.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import io
import os
import pkgutil
import re
import subprocess
import sys
import tokenize
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

ENUM = re.compile(r"(?<![\w|])([a-z_]+(?:\s*\|\s*[a-z_]+)+)\s*")
LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`")


@dataclass
class Row:
    """One documented config key."""

    key: str  # dotted path: map entries as ``*``, list items as ``[]``
    type: str  # the annotation as written in the schema
    defaults: list[tuple[str, Any]]  # (entry, value) in the default config; entry "" if one
    new_entry: Any  # the value a new map entry starts with (keys under ``*`` only)
    allowed: str  # range, values or ""
    meaning: str


# ----------------------------------------------------------------- reading the schema
@functools.cache
def _comments(path: str) -> tuple[dict[int, str], frozenset[int]]:
    """Comment text by line, and the lines that hold only a comment."""
    text = Path(path).read_text()
    by_line: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = text.splitlines()
    only = frozenset(n for n in by_line if lines[n - 1].lstrip().startswith("#"))
    return by_line, only


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of a schema dataclass: the ``#`` lines directly above it
    and the comment at the end of its line(s), read from the source with ``tokenize``."""
    path = inspect.getsourcefile(cls)
    assert path is not None
    by_line, only = _comments(path)
    tree = ast.parse(Path(path).read_text())
    cdef = next(n for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    out = {}
    for stmt in cdef.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above = []
        line = stmt.lineno - 1
        while line in only:
            above.insert(0, by_line[line])
            line -= 1
        end = stmt.end_lineno or stmt.lineno
        trailing = [by_line[n] for n in range(stmt.lineno, end + 1)
                    if n in by_line and n not in only]
        out[stmt.target.id] = " ".join([*above, *trailing]).strip()
    return out


@functools.cache
def _code_enums() -> tuple[tuple[str, ...], ...]:
    """Module-level tuples of names in the ``sim.model`` package (``KINDS``, ``ENGINES``...)."""
    import sim.model

    found = []
    for info in pkgutil.iter_modules(sim.model.__path__, "sim.model."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (name.isupper() and isinstance(value, tuple | frozenset) and len(value) > 1
                    and all(isinstance(v, str) for v in value)):
                found.append(tuple(sorted(value)) if isinstance(value, frozenset) else value)
    return tuple(found)


def _enum(comment: str) -> tuple[list[str], str]:
    """Values a comment lists (``a | b | c``), ordered and completed from the code's own
    constant where one matches; and the rest of the comment."""
    m = ENUM.search(comment)
    if not m:
        return [], comment
    listed = [v.strip() for v in m.group(1).split("|")]
    rest = f"{comment[:m.start()].strip()} {comment[m.end():].strip()}".strip()
    best: tuple[str, ...] = ()
    for const in _code_enums():
        if set(const) <= set(listed) and len(const) > len(best):
            best = const
    return [*best, *(v for v in listed if v not in best)], rest


def _walk(cls: type, prefix: list[str], new: Any) -> list[tuple[list[str], Any, Any, Any]]:
    """(key path, field, resolved type, value for a new entry) of every documented key."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        key = [*prefix, f.name]
        value = getattr(new, f.name) if new is not None else None
        origin, args = typing.get_origin(t), typing.get_args(t)
        if dataclasses.is_dataclass(t):
            out += _walk(t, key, value)  # type: ignore[arg-type]
        elif origin is dict and dataclasses.is_dataclass(args[1]):
            out.append((key, f, t, value))
            out += _walk(args[1], [*key, "*"], args[1]())
        elif origin is list and args and dataclasses.is_dataclass(args[0]):
            out.append((key, f, t, value))
            out += _walk(args[0], [*key, "[]"], args[0]())
        else:
            out.append((key, f, t, value))
    return out


def _values(node: Any, key: list[str], entry: str = "") -> list[tuple[str, Any]]:
    """The values at a key pattern in a plain config, each with the entry it belongs to."""
    if not key:
        return [(entry, node)]
    head, rest = key[0], key[1:]
    if head == "*" and isinstance(node, dict):
        return [v for k, sub in node.items()
                for v in _values(sub, rest, f"{entry}.{k}" if entry else str(k))]
    if head == "[]" and isinstance(node, list):
        return [v for i, sub in enumerate(node) for v in _values(sub, rest, f"{entry}[{i}]")]
    if isinstance(node, dict) and head in node:
        return _values(node[head], rest, entry)
    return []


def config_rows(sections: list[str] | None = None) -> list[Row]:
    """The rows of the config reference (all sections, or the named top-level ones)."""
    from sim.model.config import RootConfig, field_range

    default = _default_config()
    rows = []
    for key, f, t, new in _walk(RootConfig, [], None):
        if sections is not None and key[0] not in sections:
            continue
        owner = next(c for c in _schema_classes() if f in dataclasses.fields(c))
        allowed, meaning = "", field_comments(owner).get(f.name, "")
        values, rest = _enum(meaning)
        if values:
            allowed, meaning = " | ".join(values), rest
        rng = field_range(f)
        if rng is not None:
            allowed = f"each value in {rng}" if typing.get_origin(t) is dict else str(rng)
        if dataclasses.is_dataclass(_element(t)):
            meaning = meaning or "named entries; each has the keys below"
        rows.append(Row(".".join(key).replace(".[]", "[]"), _type_name(f), _values(default, key),
                        new if "*" in key or "[]" in key else None, allowed, meaning))
    return rows


def _element(t: Any) -> Any:
    args = typing.get_args(t)
    return args[-1] if typing.get_origin(t) in (dict, list) and args else None


def _type_name(f: dataclasses.Field[Any]) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


@functools.cache
def _schema_classes() -> tuple[type, ...]:
    from sim.model import config

    return tuple(c for c in vars(config).values()
                 if isinstance(c, type) and dataclasses.is_dataclass(c))


@functools.cache
def _default_config() -> dict[str, Any]:
    from sim.model.config import compose_config, to_container

    return to_container(compose_config([]))


def section_notes(sections: list[str]) -> list[tuple[str, str]]:
    """(key, docstring) of the schema classes under the named sections that have one."""
    from sim.model.config import RootConfig

    out = []
    todo: list[tuple[str, type]] = [(f.name, t) for f, t in _fields(RootConfig)
                                    if f.name in sections]
    while todo:
        key, t = todo.pop(0)
        cls = t if dataclasses.is_dataclass(t) else _element(t)
        if not dataclasses.is_dataclass(cls):
            continue
        key = key if dataclasses.is_dataclass(t) else key + (
            ".*" if typing.get_origin(t) is dict else "[]")
        doc = _docstring(cls)
        if doc:
            out.append((key, " ".join(doc.split())))
        todo += [(f"{key}.{f.name}", ft) for f, ft in _fields(cls)]
    return out


def _fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _docstring(cls: type) -> str | None:
    """The class's own docstring (a dataclass without one gets its signature as __doc__)."""
    path = inspect.getsourcefile(cls)
    assert path is not None
    tree = ast.parse(Path(path).read_text())
    cdef = next(n for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    return ast.get_docstring(cdef)


def section_names() -> list[str]:
    """The top-level keys of the config, in schema order."""
    from sim.model.config import RootConfig

    return [f.name for f in dataclasses.fields(RootConfig)]


# ------------------------------------------------------------------- rendering
def fmt(value: Any) -> str:
    """A value as YAML would show it inline."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return repr(value)


def _inline(text: str) -> list[nodes.Node]:
    """Text with ``literal`` and `literal` spans as literal nodes."""
    out: list[nodes.Node] = []
    pos = 0
    for m in LITERAL.finditer(text):
        if m.start() > pos:
            out.append(nodes.Text(text[pos:m.start()]))
        out.append(nodes.literal(text=m.group(1) or m.group(2)))
        pos = m.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


def _short(value: Any) -> str:
    """A value for the table: a map of entries by its entry names, a list of entries by
    their number (their keys have rows of their own)."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return ", ".join(map(str, value))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return f"{len(value)} item{'s' if len(value) > 1 else ''}"
    return fmt(value)


def _default_cell(row: Row) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    wildcard = "*" in row.key or "[]" in row.key
    if not wildcard:
        return [nodes.literal(text=_short(row.defaults[0][1]))] if row.defaults else []
    shown = [_short(v) for _, v in row.defaults]
    if len(shown) > 1 and len(set(shown)) == 1:
        out += [nodes.literal(text=shown[0]), nodes.Text(" in every entry")]
    else:
        for i, (entry, _) in enumerate(row.defaults):
            out += [nodes.Text(("; " if i else "") + f"{entry}: "), nodes.literal(text=shown[i])]
    if row.new_entry is not None:
        out += [nodes.Text("; " if out else ""), nodes.Text("a new entry: "),
                nodes.literal(text=fmt(row.new_entry))]
    return out


COLUMNS = (("Key", 22), ("Type", 10), ("Default", 24), ("Allowed", 12), ("Meaning", 32))


def config_table(rows: list[Row]) -> nodes.table:
    """A docutils table of config rows."""
    table = nodes.table(classes=["config-reference"])
    group = nodes.tgroup(cols=len(COLUMNS))
    table += group
    for _, width in COLUMNS:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += _table_row([[nodes.Text(name)] for name, _ in COLUMNS])
    body = nodes.tbody()
    group += body
    for row in rows:
        body += _table_row([
            [nodes.literal(text=row.key)],
            [nodes.Text(row.type)],
            _default_cell(row),
            [nodes.Text(row.allowed)] if row.allowed else [],
            _inline(row.meaning),
        ])
    return table


def _table_row(cells: list[list[nodes.Node]]) -> nodes.row:
    tr = nodes.row()
    for content in cells:
        entry = nodes.entry()
        para = nodes.paragraph()
        para += content
        entry += para
        tr += entry
    return tr


def _simple_table(head: list[str], rows: list[list[list[nodes.Node]]],
                  widths: list[int]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(head))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    thead = nodes.thead()
    group += thead
    thead += _table_row([[nodes.Text(h)] for h in head])
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += _table_row(cells)
    return table


def _first_comment(path: Path) -> str:
    """The opening comment of a YAML file (without ``# @package``), as one line."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    return first


def config_groups() -> list[tuple[str, str, bool, str]]:
    """(group, option, whether it is the default, its description) for each option of each
    config group: the yaml files under ``configs/<group>/``."""
    import yaml

    from sim.model.config import CONFIG_DIR

    defaults: dict[str, str] = {}
    for item in yaml.safe_load((CONFIG_DIR / "config.yaml").read_text())["defaults"]:
        if isinstance(item, dict):
            defaults.update({str(k): str(v) for k, v in item.items()})
    out = []
    for folder in sorted(p for p in CONFIG_DIR.rglob("*") if p.is_dir()):
        group = folder.relative_to(CONFIG_DIR).as_posix()
        for path in sorted(folder.glob("*.yaml")):
            out.append((group, path.stem, defaults.get(group) == path.stem,
                        _first_comment(path)))
    return out


def scenarios() -> list[tuple[str, str, float]]:
    """(name, description, cost per day) of each built-in scenario."""
    import yaml

    from sim.model.config import SCENARIO_DIR

    out = []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        node = (yaml.safe_load(path.read_text()) or {}).get("scenario", {})
        out.append((path.stem, str(node.get("description", "")),
                    float(node.get("cost_per_day", 0.0))))
    return out


# ------------------------------------------------------------------- directives
class ConfigTable(SphinxDirective):
    """``config-table SECTION ...``: the keys of the named top-level config sections."""

    required_arguments = 1
    optional_arguments = 20

    def run(self) -> list[nodes.Node]:
        known = section_names()
        unknown = [a for a in self.arguments if a not in known]
        if unknown:
            raise self.error(f"config-table: no config section {unknown} "
                             f"(known: {', '.join(known)})")
        out: list[nodes.Node] = []
        notes = section_notes(list(self.arguments))
        if notes:
            items = nodes.bullet_list()
            for key, doc in notes:
                item = nodes.list_item()
                para = nodes.paragraph()
                para += [nodes.literal(text=key), nodes.Text(": "), *_inline(doc)]
                item += para
                items += item
            out.append(items)
        return [*out, config_table(config_rows(list(self.arguments)))]


class ConfigGroups(SphinxDirective):
    """``config-groups``: each option of each group of configs/, the defaults marked."""

    def run(self) -> list[nodes.Node]:
        rows = []
        for group, option, default, about in config_groups():
            rows.append([[nodes.literal(text=group)],
                         [nodes.literal(text=option),
                          *([nodes.Text(" (default)")] if default else [])],
                         _inline(about)])
        return [_simple_table(["Group", "Option", "What it is"], rows, [14, 26, 60])]


class ScenarioList(SphinxDirective):
    """``scenario-list``: the built-in scenarios."""

    def run(self) -> list[nodes.Node]:
        rows = [[[nodes.literal(text=name)], _inline(about), [nodes.Text(f"{cost:g}")]]
                for name, about, cost in scenarios()]
        return [_simple_table(["Scenario", "Description", "cost_per_day"], rows,
                              [18, 70, 12])]


class CommandHelp(SphinxDirective):
    """``command-help python -m MODULE [ARGS]``: the command's output, run at build time.

    Option ``:until: TEXT`` stops before the first line starting with TEXT.
    """

    required_arguments = 1
    optional_arguments = 20
    option_spec = {"until": directives.unchanged}  # noqa: RUF012

    def run(self) -> list[nodes.Node]:
        argv = list(self.arguments)
        if argv[0] != "python":
            raise self.error("command-help: the command starts with 'python -m'")
        env = {**os.environ, "COLUMNS": "90", "MPLBACKEND": "Agg"}
        done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                              env=env, timeout=120, check=False)
        if done.returncode != 0:
            raise self.error(f"command-help: {' '.join(argv)} exited {done.returncode}: "
                             f"{done.stderr.strip()[-500:]}")
        lines = done.stdout.rstrip().splitlines()
        until = self.options.get("until")
        if until:
            cut = next((i for i, line in enumerate(lines) if line.startswith(until)), None)
            if cut is None:
                raise self.error(f"command-help: no line starts with {until!r}")
            lines = lines[:cut]
        text = "\n".join(lines).rstrip()
        block = nodes.literal_block(text, text, language="text")
        return [block]


class HydraOptions(SphinxDirective):
    """``hydra-options``: the options Hydra's parser accepts, with their help."""

    def run(self) -> list[nodes.Node]:
        from hydra._internal.utils import get_args_parser

        rows = []
        for action in get_args_parser()._actions:
            if not action.option_strings:
                name, about = "overrides", "key=value arguments (see above)"
            else:
                name = ", ".join(action.option_strings)
                about = action.help if isinstance(action.help, str) else (
                    "install or uninstall shell completion (bash, fish, zsh)")
            choices = f"[{'|'.join(map(str, action.choices or ()))}]"
            if action.choices and choices not in about:
                about += f" {choices}"
            about = re.sub(r"(?<![\w`])(--[\w-]+)", r"``\1``", " ".join(about.split()))
            rows.append([[nodes.literal(text=name)], _inline(about)])
        return [_simple_table(["Option", "Meaning"], rows, [30, 70])]


# ------------------------------------------------------------------- docstrings
# The docstrings write their sections numpy-style but with one "name : meaning" line per
# entry (no type line), which napoleon would read as "name : type". Those sections become
# reST fields here, before napoleon sees them.
SECTIONS = {"Parameters": "param", "Other Parameters": "param", "Raises": "raises",
            "Returns": "returns", "Yields": "returns", "Attributes": "attributes"}
ENTRY = re.compile(r"^(\S.*?) : (.*)$")


def _is_header(lines: list[str], i: int) -> bool:
    return (i + 1 < len(lines) and lines[i].strip() in SECTIONS
            and not lines[i].startswith((" ", "\t"))
            and re.fullmatch(r"-{3,}", lines[i + 1].strip()) is not None)


def _entries(lines: list[str], i: int) -> tuple[list[tuple[str, list[str]]], int]:
    """The entries of a section starting at line i, and the line after the section."""
    entries: list[tuple[str, list[str]]] = []
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not line.strip():
            i += 1
        elif line.startswith((" ", "\t")) and entries:
            entries[-1][1].append(line.strip())
            i += 1
        elif _is_header(lines, i) or line.startswith((" ", "\t")):
            break
        elif (m := ENTRY.match(line)) is not None:
            entries.append((m.group(1), [m.group(2)]))
            i += 1
        elif nxt.strip() and nxt.startswith((" ", "\t")):
            entries.append((line.strip(), []))
            i += 1
        else:
            break
    return entries, i


def _field_lines(kind: str, entries: list[tuple[str, list[str]]]) -> list[str]:
    out: list[str] = []
    if kind == "attributes":
        out += [".. rubric:: Attributes", ""]
        for name, desc in entries:
            out += [f"``{name}``", *(f"   {d}" for d in desc or ["\\"]), ""]
        return out
    for name, desc in entries:
        text = " ".join(desc)
        if kind == "returns":
            out.append(f":returns: ``{name}``" + (f": {text}" if text else ""))
        else:
            out.append(f":{kind} {name}: {text}")
    return [*out, ""]


def process_docstring(app: Any, what: str, name: str, obj: Any, options: Any,
                      lines: list[str]) -> None:
    """Rewrite "name : meaning" sections as reST fields (see above), in place."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _is_header(lines, i):
            kind = SECTIONS[lines[i].strip()]
            entries, i = _entries(lines, i + 2)
            if out and out[-1].strip():
                out.append("")
            out += _field_lines(kind, entries)
        else:
            out.append(lines[i])
            i += 1
    lines[:] = out


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", process_docstring, priority=400)
    app.add_directive("config-table", ConfigTable)
    app.add_directive("config-groups", ConfigGroups)
    app.add_directive("scenario-list", ScenarioList)
    app.add_directive("command-help", CommandHelp)
    app.add_directive("hydra-options", HydraOptions)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

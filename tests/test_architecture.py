"""Architecture rules, checked on the source with ``ast`` (DESIGN.md section 3, STYLE.md).

- Imports go one way: every ``sim.*`` import (module level or inside a function) targets a
  lower layer, except that modules of ``sim.engine`` (the agent engine, the shared records
  and the service desk, all layer 2) may import each other. The layer map covers every
  module and names no module that is gone.
- Each stage of the flow is a subpackage whose ``__init__`` says what lives there and what
  it may import.
- matplotlib only in ``sim/present/figures.py``; hydra and omegaconf only in the config, API and CLI
  modules; ``print`` only in the CLI; the engine imports no Hydra, OmegaConf, matplotlib or
  pandas, reads and writes no files and keeps no global state.
- numpy Generators only: no ``np.random.seed`` or legacy ``np.random.<dist>`` calls.
- Configs are data: no ``_target_`` / ``instantiate`` in the code or the YAML, and no absolute
  paths in ``configs/`` or ``scenarios/``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sim"

# lowest first; a module may import only from a lower layer (sim.engine: also its own package).
# The subpackages are the stages of the data flow (DESIGN.md section 8): model -> engine ->
# measure -> present -> calibrate (a command) -> report, api, cli (the entry points). Within a
# subpackage its modules are ordered too, and its __init__ sits on top of them.
LAYERS: dict[str, float] = {
    "sim.errors": 0,
    # files users hand us (configs, logs, folders) read and checked as data
    "sim.userfiles": 0.2,
    # atomic writing and the finished-folder protocol: every stage may write through it
    "sim.io": 0.3,
    "sim.model.distributions": 1.0,
    "sim.model.rng": 1.0,
    # the installed base: today's customers, a file the user hands us, read as data
    "sim.model.base": 1.05,
    "sim.model.config": 1.1,
    "sim.model.checks": 1.15,
    "sim.model.spec": 1.2,
    # uncertain assumptions: distributions on the keys the spec checks
    "sim.model.uncertainty": 1.3,
    "sim.model": 1.9,
    "sim.engine": 2,
    "sim.measure.metrics": 3.0,
    "sim.measure.experiment": 3.1,
    "sim.measure.stats": 3.2,
    "sim.measure.finance": 3.3,
    # the journey's flows between states, from the event log or first-entry times
    "sim.measure.flows": 3.4,
    "sim.measure": 3.9,
    # studies of many runs, their pure analyses, then the designs that combine them
    "sim.decide.study": 4.0,
    "sim.decide.analysis": 4.0,
    "sim.decide.psa": 4.1,
    "sim.decide.optimise": 4.1,
    "sim.decide.portfolio": 4.1,
    "sim.decide": 4.9,
    "sim.present.figures": 5.0,
    # the interactive Sankey's figure (a plain dict; report.html embeds it)
    "sim.present.flows": 5.0,
    # a run's tables and, through figures, its flows.png
    "sim.present.tables": 5.02,
    # report.html of a finished folder: below the writers that call it after their mark
    "sim.present.html": 5.05,
    "sim.present.text": 5.1,
    "sim.present.decisions": 5.1,
    # the explorer app (Dash): its page, figures and callbacks, given a simulator to run
    "sim.present.explore": 5.2,
    "sim.present": 5.9,
    # `python -m sim.calibrate`: the shared maximum likelihood, the likelihoods and fits
    # (numpy/scipy only), then the funnel's, which uses the spec's odds shift; then the input
    # checks, the two logs' preparation and fits, the fitted YAML, the reports (drawn through
    # present), the calibrations end to end (written through io) and the command line
    "sim.calibrate.mle": 6.0,
    "sim.calibrate.buying": 6.1,
    "sim.calibrate.funnel": 6.2,
    "sim.calibrate.inputs": 6.3,
    "sim.calibrate.transactions": 6.4,
    "sim.calibrate.journey": 6.45,
    "sim.calibrate.fitted": 6.5,
    "sim.calibrate.reports": 6.6,
    "sim.calibrate.workflow": 6.7,
    "sim.calibrate.cli": 6.8,
    "sim.calibrate": 6.9,
    "sim.calibrate.__main__": 6.95,
    # `python -m sim.report`: reads finished folders, writes through present
    "sim.report": 7,
    "sim.api": 8,
    # `python -m sim.explore`: the explorer app (present) given sim.api as its simulator
    "sim.explore": 8.5,
    "sim.cli": 9,
    "sim": 9,
    # `python -m sim` is a shim over the CLI (`from sim.cli import main`), so within the top
    # layer it sits just above sim.cli
    "sim.__main__": 9.5,
}
SAME_LAYER_PACKAGES = ("sim.engine",)
# the stages of the flow: each a subpackage whose __init__ says what lives there and what it
# may import
STAGES = ("model", "engine", "measure", "decide", "present", "calibrate")

MATPLOTLIB_ALLOWED = {"sim/present/figures.py"}
HYDRA_ALLOWED = {"sim/model/config.py", "sim/userfiles.py", "sim/api.py", "sim/cli.py"}
PRINT_ALLOWED = {"sim/cli.py"}
# print allowed in their entry points (main / __main__)
REPORT_ENTRY_FILES = {"sim/report.py", "sim/calibrate/cli.py", "sim/explore.py"}
ENGINE_BANNED_IMPORTS = {"hydra", "omegaconf", "matplotlib", "pandas",
                         # file I/O has no place in the engine either
                         "pathlib", "shutil", "tempfile", "pickle", "csv", "json", "io"}
FILE_IO_ATTRS = {"open", "write_text", "write_bytes", "read_text", "read_bytes", "to_csv",
                 "to_json", "to_parquet", "savefig", "savetxt", "loadtxt", "genfromtxt",
                 "savez", "savez_compressed", "tofile", "fromfile"}
NUMPY_RANDOM_ALLOWED = {"Generator", "default_rng", "SeedSequence", "BitGenerator", "PCG64",
                        "PCG64DXSM", "Philox", "SFC64", "MT19937"}
INSTANTIATE_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
HYDRA_CALLABLES = {"instantiate", "call", "get_class", "get_method", "get_object"}


# ------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Import:
    file: str  # repo-relative path, forward slashes
    line: int
    importer: str  # dotted module name of the file
    target: str  # dotted module imported (resolved)
    source: str  # the import statement as written


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def known_modules() -> set[str]:
    return {module_name(p) for p in python_files()}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=rel(path))


def layer_of(module: str) -> tuple[str, float] | None:
    """The layer-map entry covering ``module`` (the longest matching prefix)."""
    best = None
    for name, layer in LAYERS.items():
        if (module == name or module.startswith(name + ".")) and (
                best is None or len(name) > len(best[0])):
            best = (name, layer)
    return best


def _package_of(importer: str, is_package: bool) -> str:
    return importer if is_package else importer.rpartition(".")[0]


def imports_in(tree: ast.Module, file: str, importer: str, is_package: bool,
               modules: set[str]) -> Iterator[Import]:
    """Every import in ``tree`` (at any depth), resolved to the module it loads.

    ``from sim import io`` loads ``sim.io`` when that is a module, else the package ``sim``.
    ``importlib.import_module("sim.x")`` and ``__import__("sim.x")`` with a literal count too.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, node.lineno, importer, alias.name, ast.unparse(node))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(importer, is_package)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            stmt = ast.unparse(node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(file, node.lineno, importer, sub if sub in modules else base, stmt)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id == "__import__"))):
            name = node.args[0].value
            yield Import(file, node.lineno, importer, name, f"import_module({name!r})")


def all_imports() -> list[Import]:
    modules = known_modules()
    out = []
    for path in python_files():
        out.extend(imports_in(parse(path), rel(path), module_name(path),
                              path.name == "__init__.py", modules))
    return out


def layering_violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        if not (imp.target == "sim" or imp.target.startswith("sim.")):
            continue
        src, dst = layer_of(imp.importer), layer_of(imp.target)
        where = f"{imp.file}:{imp.line} `{imp.source}`"
        if src is None or dst is None:
            missing = imp.importer if src is None else imp.target
            problems.append(f"{where}: module {missing} is not in the layer map of "
                            "tests/test_architecture.py (add it to LAYERS)")
            continue
        if dst[1] < src[1]:
            continue
        same_pkg = any(src[0] == dst[0] == pkg for pkg in SAME_LAYER_PACKAGES)
        if same_pkg:
            continue
        problems.append(
            f"{where}: {imp.importer} (layer {src[1]:g}, {src[0]}) imports {imp.target} "
            f"(layer {dst[1]:g}, {dst[0]}); imports must go to a lower layer")
    return problems


def top_level(name: str) -> str:
    return name.split(".")[0]


def format_problems(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n" + "\n".join(f"  - {p}" for p in problems)


def docstring_nodes(tree: ast.Module) -> set[int]:
    """ids of the Constant nodes that are docstrings (prose, not code)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                out.add(id(body[0].value))
    return out


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def legacy_random_calls(tree: ast.Module, file: str) -> list[str]:
    """Uses of ``numpy.random`` other than Generators, bit generators and seed sequences."""
    aliases: dict[str, str] = {}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if top_level(a.name) == "numpy":
                    aliases[a.asname or "numpy"] = a.name if a.asname else "numpy"
                if a.name == "random" and a.asname is None:
                    problems.append(f"{file}:{node.lineno} `import random`: the stdlib random "
                                    "module is global state; use a numpy Generator")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if node.module == "numpy.random" and a.name not in NUMPY_RANDOM_ALLOWED:
                    problems.append(f"{file}:{node.lineno} `from numpy.random import {a.name}`"
                                    ": legacy global-state numpy random API")
                elif top_level(node.module) == "numpy":
                    aliases[a.asname or a.name] = full
                elif node.module == "random":
                    problems.append(f"{file}:{node.lineno} `from random import {a.name}`: "
                                    "use a numpy Generator")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = dotted(node)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        full = f"{aliases[head]}.{rest}" if head in aliases and rest else aliases.get(head, name)
        if full.startswith("numpy.random."):
            attr = full.split(".")[2]
            if attr not in NUMPY_RANDOM_ALLOWED:
                problems.append(f"{file}:{node.lineno} `{name}`: legacy global-state numpy "
                                "random API; draw from a Generator passed in (`rng`)")
    return sorted(set(problems))


# --------------------------------------------------------------------- the rules
def test_scan_sees_the_package() -> None:
    """Guard against a vacuous pass: the scan finds the modules and their sim imports."""
    modules = known_modules()
    assert {"sim", "sim.model.spec", "sim.engine", "sim.engine.agent", "sim.cli"} <= modules
    sim_imports = [i for i in all_imports() if top_level(i.target) == "sim"]
    assert len(sim_imports) >= 20, sim_imports
    importers = {i.importer for i in sim_imports}
    assert {"sim.model.spec", "sim.engine.agent", "sim.measure.metrics", "sim.api"} <= importers


def test_every_module_has_a_layer() -> None:
    unmapped = sorted(m for m in known_modules() if layer_of(m) is None)
    assert not unmapped, format_problems(
        "modules missing from LAYERS in tests/test_architecture.py", unmapped)


def test_layer_map_has_no_stale_entries() -> None:
    """Every entry of LAYERS names a module that exists (a renamed module is noticed)."""
    stale = sorted(set(LAYERS) - known_modules())
    assert not stale, format_problems("LAYERS entries without a module", stale)


def test_engine_modules_are_one_layer() -> None:
    """Every module of sim/engine (the agent engine, the shared records and the service
    desk) sits in layer 2 through the sim.engine entry; no engine module has an entry of its
    own that could move it out of the package's layer."""
    engine = {m for m in known_modules() if m == "sim.engine" or m.startswith("sim.engine.")}
    assert {"sim.engine", "sim.engine.agent", "sim.engine.desk", "sim.engine.records"} <= engine
    for module in sorted(engine):
        assert layer_of(module) == ("sim.engine", 2), module
    assert [name for name in LAYERS if name.startswith("sim.engine.")] == []
    # the desk is shared within the package: the agent engine and the records use it
    desk_users = {i.importer for i in all_imports() if i.target == "sim.engine.desk"}
    assert {"sim.engine.agent", "sim.engine.records"} <= desk_users


def test_the_folder_list_reads_as_the_pipeline() -> None:
    """Each stage is a subpackage whose __init__ docstring says what lives there and what
    it may import, and every module of a stage is named in it; nothing else is a package."""
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert packages == sorted(STAGES)
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        doc = ast.get_docstring(parse(init)) or ""
        assert "May import" in doc or "may import" in doc, f"{rel(init)}: say what it may import"
        modules = sorted(p.stem for p in (PACKAGE / stage).glob("*.py")
                         if not p.name.startswith("__"))
        unnamed = [m for m in modules if f"``{m}``" not in doc]
        assert not unnamed, f"{rel(init)}: its docstring does not name {unnamed}"


def test_every_package_is_installed() -> None:
    """pyproject.toml ships every subpackage (a wheel without one fails only on import)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    wanted = {"sim", *(f"sim.{s}" for s in STAGES)}
    assert wanted <= listed, sorted(wanted - listed)


def test_imports_go_one_way() -> None:
    problems = layering_violations(all_imports())
    assert not problems, format_problems("imports against the layering", problems)


@pytest.mark.parametrize(
    ("importer", "source", "is_package", "bad"),
    [
        ("sim.measure.metrics", "from sim.measure.experiment import run_experiment", False,
         True),
        ("sim.measure.metrics", "def f():\n    from sim import api\n", False, True),
        ("sim.model.spec", "from sim import build_spec", False, True),  # the package is on top
        ("sim.model.spec", "from sim.model import build_spec", False, True),  # so is its own
        ("sim.measure.stats", "from sim.present import figures", False, True),
        ("sim.present.text", "from sim.measure import stats", False, False),
        ("sim.engine.agent", "from . import records\nfrom .records import build_result",
         False, False),
        ("sim.engine.agent", "from ..measure import metrics", False, True),
        ("sim.engine", "import sim.engine.agent", True, False),
        ("sim.model.rng", "import importlib\nimportlib.import_module('sim.model.spec')", False,
         True),
        ("sim.api", "def f():\n    from sim import io\n    from sim.present import figures\n",
         False, False),
        ("sim.cli", "from sim.__main__ import x", False, True),
        ("sim.__main__", "from sim.cli import main", False, False),
    ],
)
def test_layering_checker_itself(importer: str, source: str, is_package: bool,
                                 bad: bool) -> None:
    """The checker flags upward imports (also relative and inside functions) and names them."""
    tree = ast.parse(source)
    imports = list(imports_in(tree, "x.py", importer, is_package, known_modules()))
    problems = layering_violations(imports)
    assert bool(problems) == bad, problems
    if bad:
        assert all("x.py:" in p and importer in p for p in problems)


def test_matplotlib_only_in_plotting() -> None:
    problems = [f"{i.file}:{i.line} `{i.source}`" for i in all_imports()
                if top_level(i.target) == "matplotlib" and i.file not in MATPLOTLIB_ALLOWED]
    assert not problems, format_problems(
        f"matplotlib imported outside {sorted(MATPLOTLIB_ALLOWED)}", problems)


def test_hydra_and_omegaconf_stop_at_the_config_layer() -> None:
    problems = [f"{i.file}:{i.line} `{i.source}`" for i in all_imports()
                if top_level(i.target) in {"hydra", "omegaconf"} and i.file not in HYDRA_ALLOWED]
    assert not problems, format_problems(
        f"hydra/omegaconf imported outside {sorted(HYDRA_ALLOWED)}", problems)


def _inside_entry_point(tree: ast.Module, target: ast.AST) -> bool:
    """Is ``target`` inside ``def main`` or ``if __name__ == "__main__":``?"""
    for node in ast.walk(tree):
        entry = isinstance(node, ast.FunctionDef) and node.name == "main"
        entry = entry or (isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
        if entry and any(n is target for n in ast.walk(node)):
            return True
    return False


def test_print_only_in_the_cli() -> None:
    problems = []
    for path in python_files():
        tree = parse(path)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"):
                file = rel(path)
                if file in PRINT_ALLOWED:
                    continue
                if file in REPORT_ENTRY_FILES and _inside_entry_point(tree, node):
                    continue
                problems.append(f"{file}:{node.lineno} `{ast.unparse(node)[:60]}`")
    assert not problems, format_problems(
        "print() outside the CLI (log or return instead)", problems)


def test_engine_is_pure() -> None:
    """No Hydra, OmegaConf, matplotlib, pandas or file I/O in sim/engine, no global state."""
    problems = []
    for path in sorted((PACKAGE / "engine").rglob("*.py")):
        file, tree = rel(path), parse(path)
        for imp in imports_in(tree, file, module_name(path), path.name == "__init__.py",
                              known_modules()):
            if top_level(imp.target) in ENGINE_BANNED_IMPORTS:
                problems.append(f"{file}:{imp.line} `{imp.source}`: banned in the engine")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else (
                    func.attr if isinstance(func, ast.Attribute) else None)
                if name == "open" or (isinstance(func, ast.Attribute)
                                      and func.attr in FILE_IO_ATTRS):
                    problems.append(f"{file}:{node.lineno} `{ast.unparse(node)[:60]}`: "
                                    "file I/O in the engine")
            elif isinstance(node, ast.Global):
                problems.append(f"{file}:{node.lineno} `global {', '.join(node.names)}`: "
                                "the engine keeps no global state")
    assert (PACKAGE / "engine" / "agent.py").is_file()
    assert not problems, format_problems("engine purity", problems)


def test_no_legacy_numpy_random() -> None:
    problems = []
    for path in python_files():
        problems += legacy_random_calls(parse(path), rel(path))
    assert not problems, format_problems("legacy / global numpy random", problems)


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import numpy as np\nnp.random.seed(1)", True),
        ("import numpy as np\nx = np.random.normal(size=3)", True),
        ("import numpy\nnumpy.random.random()", True),
        ("from numpy.random import randint", True),
        ("import numpy.random as npr\nnpr.shuffle([1])", True),
        ("from numpy import random as r\nr.uniform()", True),
        ("import random", True),
        ("import numpy as np\nrng = np.random.default_rng(1)\nrng.normal()", False),
        ("import numpy as np\nnp.random.Generator(np.random.PCG64(np.random.SeedSequence(1)))",
         False),
        ("def f(rng):\n    return rng.weibull(2.0, 3)", False),
    ],
)
def test_legacy_random_checker_itself(source: str, bad: bool) -> None:
    assert bool(legacy_random_calls(ast.parse(source), "x.py")) == bad


def _code_identifiers_and_strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Identifiers and string literals of the code (docstrings are prose and left out)."""
    docs = docstring_nodes(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, ast.alias):
            yield line, node.name
            if node.asname:
                yield line, node.asname
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield line, node.name
        elif (isinstance(node, ast.keyword) and node.arg) or isinstance(node, ast.arg):
            yield line, node.arg


# sim/userfiles.py refuses these keys in user files, so it spells them out, once
USERFILES = "sim/userfiles.py"
REFUSED_KEY_LITERALS = {"_target_"}


def test_no_target_or_instantiate_in_the_code() -> None:
    """Scenario files are data: nothing in sim/ instantiates ``_target_`` nodes.

    Docstrings may say so in prose (sim/config.py does); code identifiers and string literals
    may not mention ``_target_`` or ``instantiate``, nor import Hydra's instantiate helpers.
    """
    problems = []
    for path in python_files():
        file, tree = rel(path), parse(path)
        for line, text in _code_identifiers_and_strings(tree):
            if file == USERFILES and text in REFUSED_KEY_LITERALS:
                continue  # the checker names the keys it refuses
            if "_target_" in text or "instantiate" in text.lower():
                problems.append(f"{file}:{line} {text!r}")
        for imp in imports_in(tree, file, module_name(path), path.name == "__init__.py",
                              known_modules()):
            if imp.target.startswith("hydra.utils") or (
                    imp.target == "hydra" and any(f" {n}" in imp.source or f"{n}," in imp.source
                                                  for n in HYDRA_CALLABLES)):
                problems.append(f"{file}:{imp.line} `{imp.source}`")
    assert not problems, format_problems("_target_ / instantiate in sim/", problems)


def data_files() -> list[Path]:
    files = [p for d in ("configs", "scenarios") for p in sorted((REPO / d).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    return files


def walk_yaml(node: object, path: str = "") -> Iterator[tuple[str, object, bool]]:
    """(key path, item, is_key) for every key and scalar of a parsed YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            yield sub, k, True
            yield from walk_yaml(v, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_yaml(v, f"{path}[{i}]")
    else:
        yield path, node, False


def test_data_files_are_yaml_and_parse() -> None:
    files = data_files()
    yamls = [p for p in files if p.suffix in {".yaml", ".yml"}]
    assert (REPO / "configs" / "config.yaml") in yamls
    assert (REPO / "scenarios" / "baseline.yaml") in yamls
    for p in yamls:
        yaml.safe_load(p.read_text(encoding="utf-8"))  # raises on a broken file


def test_no_target_or_instantiate_in_configs_and_scenarios() -> None:
    problems = []
    for p in data_files():
        if p.suffix not in {".yaml", ".yml"}:
            continue
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        for key_path, item, is_key in walk_yaml(doc):
            if is_key and str(item) in INSTANTIATE_KEYS:
                problems.append(f"{rel(p)}: key {key_path}")
            elif isinstance(item, str) and ("_target_" in item or "instantiate" in item):
                problems.append(f"{rel(p)}: {key_path} = {item!r}")
    assert not problems, format_problems("instantiate machinery in YAML (configs are data)",
                                         problems)


ABSOLUTE_VALUE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\|file:///|file://[A-Za-z]:)")
ABSOLUTE_ANYWHERE = re.compile(
    r"(?:^|[\s=:,'\"\[(])(?:/(?:home|Users|root|tmp|work|usr|etc|var|opt|mnt|srv|private|data)"
    r"(?:/|\b)|[A-Za-z]:\\|~/)")


def test_no_absolute_paths_in_configs_and_scenarios() -> None:
    problems = []
    for p in data_files():
        text = p.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if ABSOLUTE_ANYWHERE.search(line):
                problems.append(f"{rel(p)}:{n} {line.strip()!r}")
        if p.suffix in {".yaml", ".yml"}:
            for key_path, item, _ in walk_yaml(yaml.safe_load(text)):
                if isinstance(item, str) and ABSOLUTE_VALUE.match(item.strip()):
                    problems.append(f"{rel(p)}: {key_path} = {item!r}")
    assert not problems, format_problems("absolute paths in configs/ or scenarios/", problems)


@pytest.mark.parametrize(
    ("value", "bad"),
    [("/home/me/scenarios", True), ("~/x", True), ("C:\\data\\x", True),
     ("file:///opt/sim", True), ("outputs/${now:%Y-%m-%d}", False), ("pkg://sim.configs", False),
     ("file://${oc.env:SIM_ROOT}/scenarios", False), ("5/10", False)],
)
def test_absolute_path_patterns(value: str, bad: bool) -> None:
    flagged = bool(ABSOLUTE_VALUE.match(value)) or bool(ABSOLUTE_ANYWHERE.search(value))
    assert flagged == bad

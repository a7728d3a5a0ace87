"""The documentation cannot go stale: every code block of every page under docs/ runs, and
the reference pages cover every config key and every public name.

Conventions for the pages (docs/**/*.md; the tutorials' notebooks run in the docs build and
in test_notebooks.py instead):

- ```python blocks run in order, one namespace per page, in a fresh temporary working
  directory, with MPLBACKEND=Agg. Pages use small sizes themselves
  (``sim.run(overrides=["run=smoke"])``).
- ```console blocks: a line starting with ``$ `` is a command (a trailing ``\\`` continues it
  on the next line); the lines up to the next ``$ `` are its shown output, not compared.
  In ```bash, ```sh and ```shell blocks every line is a command. A page's commands run in
  order, in the same temporary directory as its python blocks, and must exit 0.
- ``python -m sim`` (or ``journey-sim``) runs small: ``run=smoke`` is added unless the
  command chooses ``run=``; ``market.size``, ``run.replications`` and ``run.n_jobs`` above
  the smoke values are lowered to them, and ``psa.draws`` to 8; ``run.plots=false`` is
  added unless the command chooses ``run.plots``.
- An argument with ``<...>`` in it (``multirun/<date>/<time>``) is the newest path matching
  it, each ``<...>`` read as ``*``. ``cd DIR`` changes the directory for the page's later
  commands.
- ``pip install`` and ``pytest`` lines are not run; the extras named must exist in
  pyproject.toml.
- A block preceded by the MyST comment ``% exit status: N`` expects status N from each of its
  commands (a page showing an error).
- A block preceded by ``% not run: <reason>`` is not run: its python is compiled, and its
  ``python -m sim`` commands are checked with ``sim.cli.preflight`` (every job composed and
  validated, the memory and work guards off); if its ``--config-dir`` folder does not exist
  here (a user's own), only the overrides' syntax is checked.
- Other blocks (yaml, text, json, ...) are data and not run.

Running the pages is slow (every command starts a simulation), so those tests are marked
slow: ``pytest --runslow tests/test_docs.py`` (CI runs them). The checks of the blocks'
syntax, the reference pages and the runner itself run by default.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import shlex
import subprocess
import sys
import tomllib
import traceback
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import journey_docs  # noqa: E402  (docs/_ext, the Sphinx extension of the reference pages)

# the README's examples are held to the same rules (its markers are HTML comments,
# ``<!-- not run: reason -->``, which GitHub does not show)
PAGES = [*sorted(p for p in DOCS.rglob("*.md")
                 if not any(part.startswith(("_", ".")) or part == "jupyter_execute"
                            for part in p.relative_to(DOCS).parts)),
         ROOT / "README.md"]
PAGE_IDS = [p.relative_to(ROOT).as_posix() for p in PAGES]

LANGS = {"python": "python", "py": "python", "python3": "python", "ipython": "python",
         "console": "console", "shell-session": "console",
         "bash": "shell", "sh": "shell", "shell": "shell", "zsh": "shell"}
CODE_DIRECTIVES = ("code-block", "code", "sourcecode", "code-cell")
OPERATORS = {"&&", "||", ";"}
SMOKE_CAPS = {"market.size": 3000, "run.replications": 2, "run.n_jobs": 2, "psa.draws": 8}
INFO_OPTIONS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                "--shell-completion", "-sc"}
PLACEHOLDER = re.compile(r"<(?=[^<>\s])[^<>]*(?<=[^<>\s])>")  # <date>, not "< in >"


# ------------------------------------------------------------------------- parsing
@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str  # python | console | shell
    code: str
    not_run: str | None = None  # the reason given
    status: int = 0  # the exit status its commands must end with

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _parser() -> Any:
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions={"colon_fence", "deflist"})
    return create_md_parser(config, RendererHTML)


def _directive_body(content: str) -> tuple[str, int]:
    """A directive's content without its options (``:key: value`` lines or a ``---`` block),
    and the number of lines dropped."""
    lines = content.splitlines()
    i = 0
    if lines and lines[0].strip() == "---":
        i = next((j + 1 for j in range(1, len(lines)) if lines[j].strip() == "---"), 0)
    while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):
        i += 1
    return "\n".join(lines[i:]), i


def parse_blocks(page: Path, text: str | None = None, offset: int = 0) -> list[Block]:
    """The runnable code blocks of a MyST page, in order, with their markers."""
    text = page.read_text() if text is None else text
    tokens = _parser().parse(text)
    blocks: list[Block] = []
    for i, tok in enumerate(tokens):
        if tok.type not in ("fence", "colon_fence"):
            continue
        line = offset + (tok.map[0] if tok.map else 0) + 1
        info = tok.info.strip()
        lang = info.split()[0] if info else ""
        body = tok.content
        if lang.startswith("{"):
            name = lang.strip("{}")
            arg = info.split()[1] if len(info.split()) > 1 else ""
            if name not in CODE_DIRECTIVES:  # an admonition, a tab...: look inside
                inner, dropped = _directive_body(body)
                blocks += parse_blocks(page, inner, line + dropped)
                continue
            lang = arg or "python"
            body, _ = _directive_body(body)
        if lang.lower() not in LANGS:
            continue
        block = Block(page, line, LANGS[lang.lower()], body)
        prev = tokens[i - 1] if i else None
        markers: list[str] = []
        if prev is not None and prev.type == "myst_line_comment":
            markers = [c.strip().lstrip("%").strip() for c in prev.content.splitlines()]
        elif prev is not None and prev.type == "html_block":
            markers = re.findall(r"<!--\s*(.*?)\s*-->", prev.content, re.DOTALL)
        if markers:
            for comment in markers:
                if comment.startswith("not run"):
                    block.not_run = comment.partition(":")[2].strip() or "not run"
                m = re.match(r"exit status:\s*(\d+)", comment)
                if m:
                    block.status = int(m.group(1))
        blocks.append(block)
    return blocks


def commands(block: Block) -> Iterator[list[str]]:
    """The commands of a console or shell block, each as shell words (operators like ``|``
    or ``>`` kept as words); ``a && b`` and ``a; b`` are two commands."""
    texts: list[str] = []
    current: str | None = None
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if current is None:
            if block.lang == "console":
                if not line.startswith("$ "):
                    continue  # shown output
                line = line[2:]
            elif not line.strip() or line.lstrip().startswith("#"):
                continue
        elif block.lang == "console" and line.startswith("> "):
            line = line[2:]
        if line.endswith("\\"):
            current = (current or "") + line[:-1] + " "
            continue
        texts.append((current or "") + line)
        current = None
    if current is not None:
        texts.append(current)
    for text in texts:
        held = PLACEHOLDER.findall(text)  # kept whole: <, > are shell operators too
        for i, ph in enumerate(held):
            text = text.replace(ph, f"@@{i}@@", 1)
        lex = shlex.shlex(text, posix=True, punctuation_chars="&;|<>")
        lex.whitespace_split = True
        words: list[str] = []
        for word in lex:
            for i, ph in enumerate(held):
                word = word.replace(f"@@{i}@@", ph)
            if word in OPERATORS:
                if words:
                    yield words
                words = []
            else:
                words.append(word)
        if words:
            yield words


def _program(words: list[str]) -> tuple[list[str], list[str]]:
    """(environment assignments before the program, the rest)."""
    i = 0
    while i < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]):
        i += 1
    return words[:i], words[i:]


def sim_argv(words: list[str]) -> list[str] | None:
    """The arguments of a ``python -m sim`` or ``journey-sim`` command, else None."""
    _, cmd = _program(words)
    if cmd[:3] in (["python", "-m", "sim"], ["python3", "-m", "sim"]):
        args = cmd[3:]
    elif cmd[:1] == ["journey-sim"]:
        args = cmd[1:]
    else:
        return None
    stop = next((i for i, w in enumerate(args) if set(w) <= set("&;|<>0123456789")
                 and set(w) & set("&;|<>")), len(args))
    return args[:stop]


def smoke_argv(argv: list[str]) -> list[str]:
    """``python -m sim`` arguments made small: ``run=smoke`` added unless ``run=`` is chosen,
    sizes above the smoke values lowered to them, and no figures unless ``run.plots`` is
    chosen (drawing them is about half of a smoke run's time; the suite checks them in its
    own tests: test_cli, test_decide, test_docs_outputs)."""
    if INFO_OPTIONS & set(argv):
        return list(argv)
    out, chosen, plots = [], False, False
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if arg.startswith("-") or not sep:
            out.append(arg)
            continue
        chosen |= key == "run"
        plots |= key == "run.plots"
        if key in SMOKE_CAPS:
            cap = SMOKE_CAPS[key]
            value = ",".join(str(min(int(float(v)), cap)) if _is_number(v) else v
                             for v in value.split(","))
            arg = arg[:len(arg) - len(arg.partition("=")[2])] + value
        out.append(arg)
    out += [] if plots else ["run.plots=false"]
    return out if chosen else [*out, "run=smoke"]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def pip_extras(words: list[str]) -> list[str]:
    """The extras a ``pip install`` command names (``".[dev]"``, ``journey-sim[docs]``)."""
    return [extra.strip() for w in words for m in re.finditer(r"\[([^\]]*)\]", w)
            for extra in m.group(1).split(",") if extra.strip()]


def _is_pip(cmd: list[str]) -> bool:
    return cmd[:1] in (["pip"], ["pip3"]) or cmd[1:3] == ["-m", "pip"]


def _is_pytest(cmd: list[str]) -> bool:
    return cmd[:1] == ["pytest"] or cmd[1:3] == ["-m", "pytest"]


def known_extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project.get("optional-dependencies", {}))


# ------------------------------------------------------------------------- checking
def check_static(block: Block) -> None:
    """What can be checked without running: python compiles, pip names real extras,
    ``python -m sim`` overrides parse."""
    if block.lang == "python":
        try:
            compile(block.code, block.where(), "exec")
        except SyntaxError as err:
            raise AssertionError(f"{block.where()}: python block does not compile: {err}") \
                from None
        return
    for words in commands(block):
        _, cmd = _program(words)
        if _is_pip(cmd):
            unknown = sorted(set(pip_extras(cmd)) - known_extras())
            assert not unknown, (f"{block.where()}: pip extras {unknown} are not in "
                                 f"pyproject.toml (known: {sorted(known_extras())})")
        argv = sim_argv(words)
        if argv is not None:
            _parse_overrides(block, argv)


def _parse_overrides(block: Block, argv: list[str]) -> None:
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"{block.where()}: bad options in python -m sim "
                             f"{shlex.join(argv)}") from None
    overrides = [o for o in args.overrides if not PLACEHOLDER.search(o)]
    try:
        OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise AssertionError(f"{block.where()}: python -m sim {shlex.join(argv)}: "
                             f"{err}") from None


def preflight(block: Block, argv: list[str], cwd: Path) -> None:
    """A not-run ``python -m sim`` command checked as the CLI checks it before running."""
    from hydra._internal.utils import get_args_parser

    from sim.cli import preflight as sim_preflight
    from sim.errors import SimError

    args = get_args_parser().parse_args(argv)
    folder = Path(args.config_dir) if args.config_dir else None
    if folder is not None and not folder.is_absolute():
        folder = cwd / folder
    if (folder is not None and not folder.is_dir()) or any(map(PLACEHOLDER.search, argv)):
        _parse_overrides(block, argv)  # a user's own folder or file: syntax only
        return
    guards = ("run.memory_guard=", "run.work_guard=")
    checked = [a for a in argv if not a.lstrip("+").startswith(guards)]
    here = Path.cwd()
    try:
        os.chdir(cwd)
        sim_preflight([*checked, "run.memory_guard=false", "run.work_guard=false"])
    except SimError as err:
        raise AssertionError(f"{block.where()}: python -m sim {shlex.join(argv)}: "
                             f"{err}") from None
    finally:
        os.chdir(here)


def _placeholders(block: Block, words: list[str], cwd: Path) -> list[str]:
    out = []
    for word in words:
        if PLACEHOLDER.search(word):
            pattern = PLACEHOLDER.sub("*", word)
            matches = sorted(cwd.glob(pattern), key=lambda p: p.stat().st_mtime)
            assert matches, f"{block.where()}: nothing matches {word} ({pattern})"
            word = str(matches[-1].relative_to(cwd))
        out.append(word)
    return out


def _shell_text(words: list[str]) -> str:
    return " ".join(w if set(w) & set("&;|<>") and set(w) <= set("&;|<>0123456789")
                    else shlex.quote(w) for w in words)


def run_command(block: Block, words: list[str], cwd: Path, env: dict[str, str]) -> Path:
    """Run one command of a block; returns the working directory for the next one."""
    assign, cmd = _program(words)
    if cmd[:1] == ["cd"]:
        target = (cwd / (cmd[1] if len(cmd) > 1 else ".")).resolve()
        assert target.is_dir(), f"{block.where()}: cd {cmd[1:]}: no such folder"
        return target
    if _is_pip(cmd) or _is_pytest(cmd):
        return cwd  # checked by check_static, not run
    argv = sim_argv(words)
    if argv is not None:
        rest = cmd[(1 if cmd[0] == "journey-sim" else 3) + len(argv):]
        cmd = [sys.executable, "-m", "sim", *smoke_argv(argv), *rest]
    elif cmd[:1] in (["python"], ["python3"]):
        cmd = [sys.executable, *cmd[1:]]
    cmd = _placeholders(block, cmd, cwd)
    text = _shell_text([*assign, *cmd])
    done = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    assert done.returncode == block.status, (
        f"{block.where()}: `{shlex.join(words)}` exited {done.returncode} "
        f"(expected {block.status})\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return cwd


def run_page(page: Path, workdir: Path, blocks: list[Block] | None = None) -> None:
    """Run every block of a page in order in ``workdir`` (see the conventions above)."""
    blocks = parse_blocks(page) if blocks is None else blocks
    env = {**os.environ, "MPLBACKEND": "Agg"}
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    cwd = workdir
    for block in blocks:
        check_static(block)
        if block.lang == "python":
            if block.not_run is None:
                _exec(block, namespace, cwd)
            continue
        for words in commands(block):
            argv = sim_argv(words)
            if block.not_run is not None:
                if argv is not None and not INFO_OPTIONS & set(argv):
                    preflight(block, argv, cwd)
                continue
            cwd = run_command(block, words, cwd, env)


def _exec(block: Block, namespace: dict[str, Any], cwd: Path) -> None:
    import matplotlib.pyplot as plt

    here = Path.cwd()
    os.chdir(cwd)
    try:
        exec(compile(block.code, block.where(), "exec"), namespace)
    except Exception:
        raise AssertionError(f"{block.where()}: python block failed\n"
                             f"{traceback.format_exc(limit=-3)}") from None
    finally:
        os.chdir(here)
        plt.close("all")


# --------------------------------------------------------------------------- tests
@pytest.fixture(autouse=True)
def _agg(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    monkeypatch.setenv("MPLBACKEND", "Agg")
    matplotlib.use("Agg")


def test_pages_found() -> None:
    assert DOCS / "index.md" in PAGES
    assert DOCS / "reference" / "config.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_blocks_well_formed(page: Path) -> None:
    """Fast: python compiles, pip extras exist, ``python -m sim`` options and overrides
    parse. Running the blocks is ``test_page_runs``."""
    for block in parse_blocks(page):
        check_static(block)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_runs(page: Path, tmp_path: Path) -> None:
    run_page(page, tmp_path)


# the runner itself
GOOD = """\
# A page

```python
x = 2 + 2
```

```python
assert x == 4  # one namespace per page
from pathlib import Path
Path("made.txt").write_text("here")
```

```console
$ python -c "from pathlib import Path; assert Path('made.txt').exists()"
shown output, not compared
$ mkdir -p runs/2026-01-01 && cd runs
$ python -c "import sys; sys.exit(0)"
```

% exit status: 2
```console
$ python -c "import sys; sys.exit(2)"
```

% not run: a python block that would need a cluster
```python
raise SystemExit("never runs")
```

````{note}
```python
y = x + 1
```
````

```yaml
not: run
```
"""


def test_runner_runs_a_good_page(tmp_path: Path) -> None:
    page = tmp_path / "good.md"
    page.write_text(GOOD)
    blocks = parse_blocks(page)
    assert [b.lang for b in blocks] == ["python", "python", "console", "console", "python",
                                       "python"]
    assert blocks[3].status == 2 and blocks[4].not_run
    work = tmp_path / "work"
    work.mkdir()
    run_page(page, work)
    assert (work / "made.txt").read_text() == "here"


@pytest.mark.parametrize("body", [
    "```python\nraise ValueError('stale')\n```\n",
    "```python\nx = (\n```\n",
    "```console\n$ python -c \"import sys; sys.exit(3)\"\n```\n",
    "```bash\npython -c 'import sys; sys.exit(1)'\n```\n",
    "```console\n$ pip install -e \".[no_such_extra]\"\n```\n",
    "```console\n$ python -m sim 'market.size=[1,'\n```\n",
    "```console\n$ python -m sim.report runs/<date>/<time>\n```\n",
], ids=["python-error", "python-syntax", "console-status", "bash-status", "pip-extra",
        "override-syntax", "placeholder-unmatched"])
def test_runner_fails_on_a_broken_block(body: str, tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text("# Broken\n\n" + body)
    with pytest.raises(AssertionError, match=r"broken\.md"):
        run_page(page, tmp_path)


def test_runner_checks_not_run_commands(tmp_path: Path) -> None:
    page = tmp_path / "cluster.md"
    page.write_text("% not run: a SLURM cluster\n```console\n"
                    "$ python -m sim -m hydra/launcher=slurm market.size=1000000 "
                    "run.replications=100 scenario=baseline,seo\n"
                    "$ python -m sim --config-dir my_own_configs scenario=mine\n```\n")
    run_page(page, tmp_path)  # valid: a big sweep is checked, a user's folder is not needed
    page.write_text("% not run: a SLURM cluster\n```console\n"
                    "$ python -m sim -m scenario=baseline,seo checkout.no_such_key=1\n```\n")
    with pytest.raises(AssertionError, match="no_such_key"):
        run_page(page, tmp_path)


def test_readme_markers_are_html_comments(tmp_path: Path) -> None:
    """The README marks its blocks with HTML comments (GitHub shows a MyST ``%`` line)."""
    page = tmp_path / "README.md"
    page.write_text("# R\n\n<!-- not run: a user's own log -->\n```console\n"
                    "$ python -m sim.calibrate transactions orders.csv\n```\n\n"
                    "<!-- exit status: 2 -->\n```console\n$ python -m sim no_such=1\n```\n"
                    "\n```console\n$ python -m sim --help\n```\n")
    blocks = parse_blocks(page)
    assert [(b.not_run, b.status) for b in blocks] == [
        ("a user's own log", 0), (None, 2), (None, 0)]
    assert ROOT / "README.md" in PAGES


def test_smoke_argv() -> None:
    assert smoke_argv(["scenario=seo"]) == ["scenario=seo", "run.plots=false", "run=smoke"]
    assert smoke_argv(["-m", "market.size=1000,1000000", "run.replications=50"]) == [
        "-m", "market.size=1000,3000", "run.replications=2", "run.plots=false", "run=smoke"]
    assert smoke_argv(["run=default", "run.n_jobs=8", "run.plots=true"]) == [
        "run=default", "run.n_jobs=2", "run.plots=true"]
    assert smoke_argv(["--cfg", "job"]) == ["--cfg", "job"]
    smoke = (ROOT / "configs" / "run" / "smoke.yaml").read_text()
    assert "replications: 2" in smoke and "size: 3000" in smoke  # SMOKE_CAPS


def test_commands_split() -> None:
    block = Block(Path("p.md"), 1, "console",
                  "$ pip install -e \".[dev]\" && python -m sim \\\n>   scenario=seo\nout\n"
                  "$ python -m sim.report multirun/<date>/<time> > report.txt  # a comment\n")
    assert list(commands(block)) == [
        ["pip", "install", "-e", ".[dev]"], ["python", "-m", "sim", "scenario=seo"],
        ["python", "-m", "sim.report", "multirun/<date>/<time>", ">", "report.txt"]]


# the reference pages
def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, f"[{i}]"))
    else:
        yield path


def _matches(key: str, path: tuple[str, ...], container: bool) -> bool:
    parts = key.replace("[]", ".[]").split(".")
    if len(path) < len(parts) or (len(path) > len(parts) and not container):
        return False
    return all((p == "*" and not q.startswith("[")) or (p == "[]" and q.startswith("["))
               or p == q
               for p, q in zip(parts, path, strict=False))


def test_config_reference_covers_every_key() -> None:
    """Every leaf of the default config has a row in the rendered tables; a key whose value
    is a map or list of plain values (``journey.stages.*.exits``) covers its entries."""
    from sim.model.config import compose_config, to_container

    rows = journey_docs.config_rows()
    text = journey_docs.config_table(rows).astext()
    missing = []
    for path in _leaves(to_container(compose_config([]))):
        # a map, a list, or data of its own form (Any: compare, the uncertainty trees)
        hits = [r for r in rows if _matches(r.key, path,
                                            r.type.startswith(("dict", "list", "Any")))]
        if not hits or not all(r.key in text for r in hits):
            missing.append(".".join(path))
    assert not missing, f"config keys missing from the reference: {missing}"


def test_config_reference_gives_every_key_a_meaning() -> None:
    """Every key's row says what it means: a schema field without a comment in
    sim/model/config.py (above it or at the end of its line) fails here."""
    silent = [r.key for r in journey_docs.config_rows() if not r.meaning.strip()]
    assert not silent, f"schema fields without a comment in sim/model/config.py: {silent}"


def test_enum_comments() -> None:
    """An enumeration may lead or follow the meaning in a field's comment."""
    assert journey_docs._enum("agent | fast | auto (agent below 50,000)")[1] == (
        "(agent below 50,000)")
    values, rest = journey_docs._enum("the family of the time spent per visit "
                                      "exponential | gamma | lognormal | weibull | fixed")
    assert rest == "the family of the time spent per visit" and "gamma" in values
    assert journey_docs._enum("probability of each next state") == (
        [], "probability of each next state")


def test_config_reference_shows_every_range() -> None:
    from sim.model.config import RootConfig, field_range

    rows = {r.key: r for r in journey_docs.config_rows()}
    text = journey_docs.config_table(list(rows.values())).astext()
    seen: set[type] = set()
    todo: list[type] = [RootConfig]
    ranged = 0
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for f in dataclasses.fields(cls):
            rng = field_range(f)
            keys = [k for k in rows if re.search(rf"(^|\.){re.escape(f.name)}$", k)]
            if rng is not None:
                ranged += 1
                assert any(str(rng) in rows[k].allowed for k in keys), (cls.__name__, f.name)
                assert str(rng) in text
        hints = typing.get_type_hints(cls)
        for t in hints.values():
            for c in (t, *typing.get_args(t)):
                if dataclasses.is_dataclass(c) and isinstance(c, type):
                    todo.append(c)
    assert ranged > 50


def test_config_page_has_every_section() -> None:
    page = (DOCS / "reference" / "config.md").read_text()
    shown = {name for line in re.findall(r"^```\{config-table\}(.*)$", page, re.M)
             for name in line.split()}
    assert shown == set(journey_docs.section_names())
    assert "{config-groups}" in page and "{scenario-list}" in page


# the curated public API: these names, and only these, are documented in reference/api.md
API_MODULES = ["sim", "sim.model", "sim.measure", "sim.decide", "sim.present", "sim.calibrate",
               "sim.io"]
API_CURATED = {"sim.api": ["Run", "Comparison", "compare", "run", "psa", "check_psa", "Decision",
                           "curves", "allocate", "seek", "portfolio", "run_task", "check_task",
                           "Answer"],
               "sim.engine": ["simulate", "SimulationResult"]}
# autodoc directives, inside ```{eval-rst} blocks (MyST would read their output as markdown)
AUTODOC = re.compile(r"^\.\. auto(?:function|class|exception|data|method|attribute)::\s+(\S+)",
                     re.M)


def _resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_api_reference_documents_the_public_names() -> None:
    public = [f"{m}.{n}" for m in API_MODULES for n in importlib.import_module(m).__all__]
    for module, names in API_CURATED.items():
        assert set(names) <= set(importlib.import_module(module).__all__), module
        public += [f"{module}.{n}" for n in names]
    documented = AUTODOC.findall((DOCS / "reference" / "api.md").read_text())
    assert len(documented) == len(set(documented)), "a name is documented twice"
    # a name re-exported elsewhere (sim.run is sim.api.run) is documented once
    ids = {id(_resolve(d)): d for d in documented}
    undocumented = sorted(n for n in public if id(_resolve(n)) not in ids)
    assert not undocumented, f"public names missing from docs/reference/api.md: {undocumented}"
    public_ids = {id(_resolve(n)) for n in public}
    extra = sorted(d for d in documented if id(_resolve(d)) not in public_ids)
    assert not extra, f"documented but not public (not in an __all__): {extra}"
    assert len(ids) == len(documented), "one object documented under two names"


def test_cli_page_exit_statuses() -> None:
    """The exit statuses on the command-line page are those of sim.errors."""
    from sim.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT

    page = (DOCS / "reference" / "cli.md").read_text()
    shown = {int(s) for s in re.findall(r"^\| (\d+) \|", page, re.M)}
    assert shown == {0, EXIT_OUTPUT, EXIT_INPUT, EXIT_INTERRUPTED}
    rows = dict(re.findall(r"^\| (\d+) \| (.*) \|$", page, re.M))
    assert "bad input" in rows[str(EXIT_INPUT)] and "written" in rows[str(EXIT_OUTPUT)]
    assert "Ctrl-C" in rows[str(EXIT_INTERRUPTED)]

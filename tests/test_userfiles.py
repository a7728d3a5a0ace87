"""Config files a user hands the tool are data: they run nothing, read nothing, write nowhere.

The probes of the hardening review, kept as regression tests: scenario overlays that set
``hydra.callbacks`` with a ``_target_`` (Hydra would instantiate it: ``tempfile.mkdtemp``,
``builtins.open`` truncating a file), instantiation keys anywhere, ``${oc.env:...}``, YAML
tags, alias bombs, a missing ``# @package _global_`` header, a misspelled channel that would
add a new free channel, and scenario names that would steer the output folder.
Each is checked through the Python API (``sim.compose_config`` / ``sim.run``) and, for the
ones that matter most, through ``python -m sim`` (exit status 2, one line, nothing run).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from test_cli import outputs_in, run_cli

import sim
from sim.errors import InputError
from sim.model.config import _run_name, compose_config, register_configs, slug
from sim.userfiles import (
    MAX_NODES,
    ConfigFileError,
    check_config_dir,
    check_yaml_file,
    searchpath_dirs,
)

GLOBAL = "# @package _global_\n"


def overlay(root: Path, name: str, text: str, group: str = "scenario") -> Path:
    """Write ``root/group/name.yaml`` and return ``root`` (the folder for --config-dir)."""
    folder = root / group if group else root
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    return root


def refused(root: Path, *overrides: str) -> str:
    with pytest.raises(ConfigFileError) as err:
        compose_config(list(overrides), config_dirs=[root])
    return str(err.value)


# ------------------------------------------------------------ code in a config file
def test_callback_overlay_is_refused_before_hydra_runs_it(tmp_path: Path) -> None:
    """The reported exploit: a scenario setting hydra.callbacks made Hydra call mkdtemp and
    truncate a file. Through the command line: exit 2, the file and key named, nothing
    created, the victim file intact, no run folder."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    made = tmp_path / "made"
    made.mkdir()
    root = overlay(tmp_path / "mine", "evil", GLOBAL + f"""\
scenario:
  name: evil
hydra:
  callbacks:
    mk:
      _target_: tempfile.mkdtemp
      dir: {made}
    trunc:
      _target_: builtins.open
      file: {victim}
      mode: w
""")
    proc = run_cli(tmp_path, "--config-dir", str(root), "scenario=evil", "run=smoke",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "evil.yaml" in proc.stderr and "'hydra'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(made.iterdir()) == []
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("group", "header", "body", "words"), [
    ("scenario", GLOBAL, "channels:\n  search:\n    _target_: os.getcwd\n", "_target_"),
    ("scenario", GLOBAL, "market:\n  segments:\n    a:\n      _partial_: true\n", "_partial_"),
    ("scenario", GLOBAL, "x:\n  - {_call_: true}\n", "_call_"),
    ("scenario", "# @package hydra.callbacks\n", "x: {a: 1}\n", "@package hydra"),
    ("hydra/callbacks", "", "x:\n  y: 1\n", "'hydra' group folder"),
    ("scenario", GLOBAL, "defaults:\n  - override /hydra/launcher: cores\n", "selects Hydra"),
    # a file cannot make the tool read another file (the installed base)
    ("scenario", GLOBAL, "market:\n  base: /etc/passwd\n", "market.base"),
    ("market", "", "size: 10\nbase: ../secret.csv\n", "market.base"),
])
def test_instantiation_and_hydra_keys_refused(tmp_path: Path, group: str, header: str,
                                              body: str, words: str) -> None:
    root = overlay(tmp_path, "bad", header + body, group)
    with pytest.raises(ConfigFileError) as err:
        check_config_dir(root)
    message = str(err.value)
    assert "bad.yaml" in message and words in message


def test_resolvers_refused_plain_interpolation_and_escapes_kept(tmp_path: Path) -> None:
    root = overlay(tmp_path, "envy", GLOBAL + "scenario:\n  description: ${oc.env:HOME}\n")
    message = refused(root, "scenario=envy")
    assert "envy.yaml, line 3" in message and "oc.env:HOME" in message
    assert "resolvers" in message
    nested = overlay(tmp_path / "n", "n", GLOBAL + "scenario:\n  description: a${b.${oc.env:X}}\n")
    assert "oc.env:X" in refused(nested, "scenario=n")
    ok = overlay(tmp_path / "ok", "fine", GLOBAL + """\
scenario:
  description: '${scenario.name} costs \\${money} a day'
""")
    cfg = compose_config(["scenario=fine"], config_dirs=[ok])
    assert cfg.scenario.description == "fine costs ${money} a day"


def test_yaml_tags_and_invalid_yaml_refused(tmp_path: Path) -> None:
    tag = overlay(tmp_path / "t", "tag", GLOBAL + "scenario: !!python/object/apply:os.getcwd []\n")
    message = refused(tag, "scenario=tag")
    assert "tag.yaml, line 2" in message and "python/object/apply" in message
    broken = overlay(tmp_path / "b", "broken", GLOBAL + "scenario: [unclosed\n")
    message = refused(broken, "scenario=broken")
    assert "broken.yaml" in message and "not valid YAML" in message and "line" in message


def test_alias_bomb_refused_quickly(tmp_path: Path) -> None:
    lines = [GLOBAL.strip(), "a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):  # 9 ** 10 strings once expanded
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    root = overlay(tmp_path, "bomb", "\n".join(lines) + "\n")
    start = time.perf_counter()
    message = refused(root, "scenario=bomb")
    assert time.perf_counter() - start < 5  # linear in the text: a hang would time out
    assert "bomb.yaml" in message and f"{MAX_NODES:,}" in message


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    root = overlay(tmp_path, "dry", GLOBAL + """\
scenario:
  name: dry
channels:
  search: &same {spend_per_day: 5.0}
  social: *same
""")
    cfg = compose_config(["scenario=dry"], config_dirs=[root])
    assert cfg.channels.search.spend_per_day == cfg.channels.social.spend_per_day == 5.0


def test_oversized_and_special_files_refused(tmp_path: Path) -> None:
    big = overlay(tmp_path / "big", "big", GLOBAL + "# " + "x" * (2 << 20) + "\n")
    assert "bytes" in refused(big, "scenario=big")
    pipe_root = tmp_path / "pipe"
    (pipe_root / "scenario").mkdir(parents=True)
    import os

    os.mkfifo(pipe_root / "scenario" / "fifo.yaml")
    assert "not a regular file" in refused(pipe_root, "scenario=fifo")


# ------------------------------------------------------------------ shape of overlays
def test_missing_package_header_is_named(tmp_path: Path) -> None:
    root = overlay(tmp_path, "nohdr", "scenario:\n  name: nohdr\ncheckout:\n  hidden_fees: false\n")
    message = refused(root, "scenario=nohdr")
    assert "# @package _global_" in message and "nohdr.yaml" in message


def test_misspelled_channel_refused_declared_one_accepted(tmp_path: Path) -> None:
    typo = overlay(tmp_path / "t", "typo", GLOBAL + "channels:\n  serach:\n"
                   "    organic_reach_per_day: 0.01\n")
    message = refused(typo, "scenario=typo")
    assert "channels.serach" in message and "channels.search" in message
    assert "adds" in message
    new = overlay(tmp_path / "n", "podcast", GLOBAL + """\
scenario:
  adds: [channels.podcast]
channels:
  podcast:
    organic_reach_per_day: 0.001
""")
    cfg = compose_config(["scenario=podcast"], config_dirs=[new])
    assert "podcast" in cfg.channels and cfg.scenario.name == "podcast"
    seg = overlay(tmp_path / "s", "seg", GLOBAL + "market:\n  segments:\n    studnets:\n"
                  "      share: 0.0\n")
    assert "market.segments.studnets" in refused(seg, "scenario=seg")


@pytest.mark.slow
def test_scenario_without_name_is_named_after_its_file(tmp_path: Path) -> None:
    root = overlay(tmp_path / "mine", "cheaper_ads", GLOBAL + "checkout:\n  hidden_fees: false\n")
    cfg = compose_config(["scenario=cheaper_ads", "run=smoke"], config_dirs=[root])
    assert cfg.scenario.name == "cheaper_ads"
    proc = run_cli(tmp_path, "--config-dir", str(root), "scenario=cheaper_ads", "run=smoke",
                   "run.plots=false", "run.summary=false", "run.replications=2",
                   "market.size=300")
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "outputs").glob("*/*")
    assert folder.name.endswith("_cheaper_ads")
    assert "metrics.json" in outputs_in(folder)


# ----------------------------------------------------------------- names and paths
@pytest.mark.parametrize("name", ["/../../../../elsewhere/x", "../x", "a/b", ".hidden", "",
                                  "x" * 65, "spaces are prose"])
def test_unsafe_scenario_names_refused(tmp_path: Path, name: str) -> None:
    root = overlay(tmp_path, "n", GLOBAL + yaml.safe_dump({"scenario": {"name": name}}))
    assert "scenario.name" in refused(root, "scenario=n")
    with pytest.raises(ConfigFileError, match=r"scenario\.name"):
        compose_config([f"scenario.name='{name}'"])


def test_run_folder_name_is_one_safe_component() -> None:
    for text in ["/../../../../elsewhere/x", "..", "a/b\\c", "", "x" * 200, "ok_name-1.2"]:
        name = slug(text)
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert 1 <= len(name) <= 64
    assert slug("ok_name-1.2") == "ok_name-1.2"
    assert _run_name("baseline", "baseline", None) == "baseline"
    assert _run_name("mine", "baseline", None) == "mine"
    assert _run_name("seo", "seo", ["seo", "guest_checkout"]) == "compare_seo+guest_checkout"
    assert _run_name("baseline", "baseline", "all") == "compare_all"


@pytest.mark.slow
def test_path_traversal_name_cannot_leave_outputs(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run=smoke", "scenario.name=/../../../../elsewhere/x")
    assert proc.returncode == 2 and "scenario.name" in proc.stderr
    assert not (tmp_path / "outputs").exists()  # refused before Hydra made a folder
    sweep = run_cli(tmp_path, "-m", "run=smoke", "run.replications=2", "market.size=200",
                    "run.plots=false", "run.summary=false",
                    "scenario.description=../../../../escaped", f"hydra.sweep.dir={tmp_path / 'm'}")
    assert sweep.returncode == 0, sweep.stderr
    made = [p for p in tmp_path.rglob("metrics.json")]
    assert len(made) == 1 and (tmp_path / "m") in made[0].parents
    assert made[0].parent.parent == tmp_path / "m"  # one folder level, not escaped


# -------------------------------------------------------------------- search paths
def test_searchpath_folders_are_checked_from_python(tmp_path: Path) -> None:
    root = overlay(tmp_path, "evil", GLOBAL + "hydra:\n  job:\n    name: x\n")
    with pytest.raises(ConfigFileError, match=r"evil\.yaml"):
        sim.run(overrides=[f"hydra.searchpath=[file://{root}]", "scenario=evil"])
    with pytest.raises(ConfigFileError, match="pkg://"):
        searchpath_dirs(["hydra.searchpath=[pkg://os]"])
    with pytest.raises(ConfigFileError, match=r"evil\.yaml"):
        register_configs([root / "scenario"])


def test_shipped_configs_and_scenarios_pass_the_checks() -> None:
    """Our own scenarios and groups are data too (the launcher presets in hydra/ are ours
    and never checked as user files)."""
    from sim.model.config import CONFIG_DIR, SCENARIO_DIR

    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        check_yaml_file(path, "scenario")
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        group = path.parent.relative_to(CONFIG_DIR).as_posix().strip(".")
        if not group.startswith("hydra") and path.name != "config.yaml":  # ours: sets hydra
            check_yaml_file(path, group)


@pytest.mark.slow
def test_experimental_rerun_and_config_path_refused(tmp_path: Path) -> None:
    for args in (["--experimental-rerun", str(tmp_path / "config.pickle")],
                 ["--config-path", str(tmp_path)]):
        proc = run_cli(tmp_path, *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_every_input_error_is_an_input_error(tmp_path: Path) -> None:
    """From Python, one exception type for every input problem."""
    probes = [["+foo=1"], ["checkout.hiden_fees=false"], ["market.size=abc"],
              ["journey=nope"], ["channels={}"], ["journey.stages={}"],
              ["scenario=does_not_exist"], ["run.replications=0"]]
    for overrides in probes:
        with pytest.raises(InputError):
            sim.run(overrides=["run=smoke", *overrides])


@pytest.mark.slow
def test_your_own_scenario_in_a_comparison(tmp_path: Path) -> None:
    """A scenario of a --config-dir folder can be compared (the checks before the run know
    the folder's scenarios too); the folder is named after the comparison."""
    root = overlay(tmp_path / "mine", "short_checkout", GLOBAL + """\
scenario:
  description: Three checkout steps instead of five.
checkout:
  steps: 3
""")
    proc = run_cli(tmp_path, "--config-dir", str(root), "compare=[short_checkout]",
                   "run=smoke", "run.plots=false", "run.summary=false", "market.size=300",
                   "run.replications=2")
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "outputs").glob("*/*")
    assert folder.name.endswith("_compare_short_checkout")
    assert "short_checkout" in (folder / "comparison.csv").read_text()

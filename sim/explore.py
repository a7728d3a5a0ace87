"""``python -m sim.explore``: the explorer, a local web app for live what-if and a class
demonstration (``sim.present.explore`` builds it; see there why it is a Dash app).

This entry point gives the app its simulator: ``ApiBackend`` runs every update through
``sim.api.run`` with the overrides the controls make, so a value goes through the same
validation as on the command line, and writes the report with ``sim.api.Run.write``.
It serves on 127.0.0.1 only unless told otherwise (``--host``).

Each update runs your settings on the default market (20,000 people, the agent engine)
with 4 replications, and compares them with the baseline's run, kept once per journey and
scenario: 1.5 to 4 seconds on a two-core machine (the agent engine is the quicker one at
this size). ``--market-size`` and ``--replications`` trade the time per update against the
width of the intervals (the page says which).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import threading
import webbrowser
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim import api
from sim.errors import EXIT_INPUT, InputError
from sim.measure.experiment import ExperimentResult
from sim.model.config import CONFIG_DIR, compose_config, scenario_names, to_container

__all__ = ["ApiBackend", "main"]

log = logging.getLogger(__name__)


class ApiBackend:
    """The explorer's simulator: ``sim.api`` with the built-in configs and scenarios."""

    def journeys(self) -> list[str]:
        return sorted(p.stem for p in (CONFIG_DIR / "journey").glob("*.yaml"))

    def scenarios(self) -> list[str]:
        return scenario_names()

    def config(self, overrides: Sequence[str]) -> dict[str, Any]:
        return to_container(compose_config(overrides))

    def run(self, overrides: Sequence[str], replications: int | None = None
            ) -> ExperimentResult:
        return api.run(overrides=overrides, replications=replications).experiment

    def report(self, overrides: Sequence[str]) -> tuple[str, bytes]:
        """Run, write the run's folder (``Run.write``) and return its ``report.html``; a
        zip of the whole folder where the folder has no report."""
        result = api.run(overrides=overrides)
        with tempfile.TemporaryDirectory(prefix="journey-sim-explore-") as tmp:
            folder = Path(tmp) / "run"
            result.write(folder)
            report = folder / "report.html"
            if report.is_file():
                return "journey-sim-report.html", report.read_bytes()
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        zf.write(path, Path("journey-sim-run") / path.relative_to(folder))
            return "journey-sim-run.zip", buffer.getvalue()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sim.explore",
        description="The explorer: a local web app to move the levers of a journey and "
                    "scenario and see the funnel, conversion, churn, LTV and NPV against the "
                    "baseline, and to animate one replication for a class.")
    p.add_argument("--port", type=int, default=0,
                   help="the port to serve on (default: a free one, printed)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to serve on (default: 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true",
                   help="do not open the page in a browser")
    p.add_argument("--market-size", type=int, default=None, metavar="N",
                   help="people in the market of every run (default: market.size, 20,000)")
    p.add_argument("--replications", type=int, default=4, metavar="N",
                   help="replications per update (default: 4)")
    p.add_argument("--engine", choices=("auto", "agent", "fast"), default="auto",
                   help="the engine (default: auto, the agent engine below 50,000 people)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Start the explorer; returns the exit status (2 for bad options or settings)."""
    from sim.present.explore import Explorer, Settings, create_app, describe, serve

    args = parser().parse_args(argv)
    # figures are drawn in the server's threads: never a GUI backend
    os.environ.setdefault("MPLBACKEND", "Agg")
    logging.basicConfig(level=logging.WARNING)
    settings = Settings(args.market_size, args.replications, args.engine)
    try:
        explorer = Explorer(ApiBackend(), settings)
        # the first baseline now: it checks the settings and makes the first page quick
        base = explorer.baseline(explorer.journey, explorer.scenario)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    app = create_app(explorer)

    def ready(url: str) -> None:
        print(f"journey-sim explorer: {url} ({describe(base.spec, base.n_replications)} "
              "per update); Ctrl-C stops it", flush=True)
        if not args.no_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    try:
        serve(app, args.host, args.port, ready)
    except OSError as err:  # the port is taken, or the address is not this machine's
        print(f"error: cannot serve on {args.host}:{args.port}: {err.strerror or err}",
              file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Budget allocation: the spend of four channels on the default business.

``python benchmarks/allocate.py`` runs the allocation of issue 16's target: the daily spend
of search, social, paid_ads and email on the default 20,000-person market, budget today's
total, the default search (``allocate.*``: 3 rounds of 24 designed allocations x 4
replications, then today's allocation against the proposal on 20 fresh replications), on
``--n-jobs`` workers (default 2: both cores busy). It prints the wall time against the
target of 600 s, the number of simulation runs, the proposal and its verified gain.

Options: ``--n-jobs K``, ``--override KEY=VALUE`` (repeatable, e.g.
``allocate.rounds=2``), ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import environment, load_average

from sim.api import allocate

TARGET_SECONDS = 600.0
CHANNELS = ["search", "social", "paid_ads", "email"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--override", action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(environment())
    print(f"load average at the start: {load_average()}")
    t0 = time.perf_counter()
    answer = allocate(CHANNELS, overrides=[f"run.n_jobs={args.n_jobs}", "run.progress=false",
                                           *args.override])
    wall = time.perf_counter() - t0
    r = answer.result
    print(f"\n{r.n_runs} runs, n_jobs={args.n_jobs}, overrides {args.override or 'none'}")
    print(f"  wall time {wall:.1f} s; target {TARGET_SECONDS:.0f} s: ratio "
          f"{wall / TARGET_SECONDS:.2f} -> {'PASS' if wall <= TARGET_SECONDS else 'FAIL'}")
    print(f"  {wall / r.n_runs * args.n_jobs:.3f} core-s per run")
    print(answer.markdown())
    print(f"load average at the end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": r.n_runs, "n_jobs": args.n_jobs, "wall_s": wall,
            "channels": CHANNELS, "current": list(map(float, r.current)),
            "proposed": list(map(float, r.proposed)), "gain": r.gain,
            "gain_low": r.gain_low, "gain_high": r.gain_high, "better": r.better,
            "overrides": args.override}, indent=2))


if __name__ == "__main__":
    main()

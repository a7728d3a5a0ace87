"""PSA throughput: a probabilistic sensitivity analysis of the default business.

``python benchmarks/psa.py`` runs the study of issue 14's target: 256 draws of the
baseline's uncertain assumptions (``configs/uncertainty/baseline.yaml`` and each scenario's
own), the baseline and three scenarios on every draw, one replication each (1,024 runs of
the default 20,000-person market), on ``--n-jobs`` workers (default 2: both cores busy),
then the analysis (summary, EVPI, EVPPI per assumption) and the files (``write_psa``).

It prints:

- the wall time of each phase: composing and checking the options (once per option), the
  study, the analysis, writing; and the total against the target of 300 s;
- the per-run overhead: on ``--sample`` runs timed one by one in this process, the share of
  a run's time spent outside the engine (applying the draw to the config and checking it,
  ``build_spec(complete=True)``, and computing its metrics) against the target of 20 %;
  the composition, analysis and writing are added to the overhead in the study-level share.

Options: ``--draws N``, ``--n-jobs K``, ``--sample K``, ``--scenarios a,b,c``,
``--override KEY=VALUE`` (repeatable, e.g. ``run.engine=fast``), ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import environment, load_average

from sim.decide import run_psa
from sim.decide.study import Study, _run_one, _set_study
from sim.engine import simulate
from sim.measure.metrics import replication_metrics
from sim.model.config import compose_config, to_container
from sim.model.spec import build_spec
from sim.model.uncertainty import read_uncertainty
from sim.present.text import write_psa

TARGET_SECONDS = 300.0
TARGET_OVERHEAD = 0.20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=256)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=8)
    parser.add_argument("--scenarios", default="remove_hidden_fees,seo,loyalty_program")
    parser.add_argument("--override", action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(environment())
    print(f"load average at the start: {load_average()}")

    t0 = time.perf_counter()
    names = ["baseline", *args.scenarios.split(",")]
    configs = {n: to_container(compose_config([*args.override, f"scenario={n}"]))
               for n in names}
    for cfg in configs.values():
        build_spec(cfg)
    uncertainty = read_uncertainty(configs)
    seed = configs["baseline"]["run"]["seed"]
    t_compose = time.perf_counter() - t0

    # per-run overhead, one run at a time in this process
    points = uncertainty.sample(max(args.sample, 1), seed)
    study = Study(configs, uncertainty, points, 1, seed)
    _set_study(study)
    spec_s = engine_s = metrics_s = 0.0
    for i in range(args.sample):
        option = names[i % len(names)]
        a = time.perf_counter()
        spec = build_spec(uncertainty.apply(configs, option, study.values(i)), complete=True)
        b = time.perf_counter()
        result = simulate(spec, seed, i)
        c = time.perf_counter()
        replication_metrics(result, spec)
        d = time.perf_counter()
        spec_s, engine_s, metrics_s = spec_s + b - a, engine_s + c - b, metrics_s + d - c
    _run_one(0, names[0], 0)  # the worker's own path, once (imports warmed)
    per_run = spec_s + engine_s + metrics_s
    run_overhead = (spec_s + metrics_s) / per_run if per_run else float("nan")

    t1 = time.perf_counter()
    result = run_psa(configs, uncertainty, args.draws, seed, n_jobs=args.n_jobs,
                     progress=False)
    t_study = time.perf_counter() - t1
    with tempfile.TemporaryDirectory() as tmp:
        t2 = time.perf_counter()
        write_psa(result, Path(tmp), plots=True)
        t_write = time.perf_counter() - t2
    total = t_compose + t_study + t_write
    n_runs = len(result.runs)
    # the engine's share of the study: the sampled engine time per run, spread over workers
    engine_wall = engine_s / max(args.sample, 1) * n_runs / args.n_jobs
    overhead = 1 - engine_wall / total

    print(f"\n{n_runs} runs ({args.draws} draws x {len(names)} options x 1 replication), "
          f"{len(uncertainty)} assumptions, n_jobs={args.n_jobs}, "
          f"overrides {args.override or 'none'}")
    print(f"  compose and check the options: {t_compose:8.1f} s")
    print(f"  the study (every run) and the analysis: {t_study:8.1f} s "
          f"({t_study / n_runs * args.n_jobs:.3f} core-s per run)")
    print(f"  write the tables and figures:  {t_write:8.1f} s")
    print(f"  total: {total:.1f} s; target {TARGET_SECONDS:.0f} s: ratio "
          f"{total / TARGET_SECONDS:.2f} -> {'PASS' if total <= TARGET_SECONDS else 'FAIL'}")
    print(f"\nper run, {args.sample} runs timed one by one: spec {spec_s / args.sample:.3f} s, "
          f"engine {engine_s / args.sample:.3f} s, metrics {metrics_s / args.sample:.3f} s")
    print(f"  overhead per run (spec + metrics) / run: {run_overhead:.1%}; study-level "
          f"overhead (all but the engine's time): {overhead:.1%}; target "
          f"{TARGET_OVERHEAD:.0%} -> {'PASS' if overhead <= TARGET_OVERHEAD else 'FAIL'}")
    print(f"load average at the end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": n_runs, "draws": args.draws, "n_jobs": args.n_jobs,
            "compose_s": t_compose, "study_s": t_study, "write_s": t_write, "total_s": total,
            "spec_s_per_run": spec_s / args.sample, "engine_s_per_run": engine_s / args.sample,
            "metrics_s_per_run": metrics_s / args.sample, "run_overhead": run_overhead,
            "study_overhead": overhead, "overrides": args.override}, indent=2))


if __name__ == "__main__":
    main()

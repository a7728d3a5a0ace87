"""PSA throughput: a probabilistic sensitivity analysis of the default business.

``python benchmarks/psa.py`` runs the study of issue 14's target: 256 draws of the
baseline's uncertain assumptions (``configs/uncertainty/baseline.yaml`` and each scenario's
own), the baseline and three scenarios on every draw, one replication each (1,024 runs of
the default 20,000-person market), on ``--n-jobs`` workers (default 2: both cores busy),
then the analysis (summary, EVPI, EVPPI per assumption) and the files (``write_psa``).

It prints:

- the wall time of each phase: composing and checking the options (once per option), the
  study, the analysis, writing; and the total against the target of 300 s;
- the per-run overhead, measured inside the study's own workers while they run (the
  study's functions are wrapped with timers before the pool forks): the time each run
  spends applying its draw and checking the config (``build_spec(complete=True)``) and
  computing its metrics, plus the composition and the writing, against the time the
  engine runs, target 20 % of the total; and the rest of the wall time (the analysis, the
  pool's start and any core left idle) separately, so nothing is hidden in either figure.

Options: ``--draws N``, ``--n-jobs K``, ``--scenarios a,b,c``,
``--override KEY=VALUE`` (repeatable, e.g. ``run.engine=fast``), ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import environment, load_average

from sim.decide import psa as psa_module
from sim.decide import run_psa
from sim.decide import study as study_module
from sim.model.config import compose_config, to_container
from sim.model.spec import build_spec
from sim.model.uncertainty import Uncertainty, read_uncertainty
from sim.present.text import write_psa

TARGET_SECONDS = 300.0
TARGET_OVERHEAD = 0.20


def _timed(fn, name: str, log: Path):
    """``fn`` that appends "name seconds" to ``log`` after every call (in any process)."""
    def timed(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        with log.open("a") as f:
            f.write(f"{name} {time.perf_counter() - t:.6f}\n")
        return out
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=256)
    parser.add_argument("--n-jobs", type=int, default=2)
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

    # time every phase of every run inside the workers: the study's functions are wrapped
    # here, before the pool forks, and each call appends its phase and duration to a file
    log = Path(tempfile.mkdtemp()) / "phases.txt"
    for name in ("build_spec", "simulate", "replication_metrics"):
        setattr(study_module, name, _timed(getattr(study_module, name), name, log))
    Uncertainty.apply = _timed(Uncertainty.apply, "apply", log)
    analysis = {"s": 0.0}
    real_summarise = psa_module.summarise_psa

    def summarise(*a, **k):
        t = time.perf_counter()
        out = real_summarise(*a, **k)
        analysis["s"] += time.perf_counter() - t
        return out

    psa_module.summarise_psa = summarise

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
    phase = {"apply": 0.0, "build_spec": 0.0, "simulate": 0.0, "replication_metrics": 0.0}
    for line in log.read_text().splitlines():
        name, seconds = line.split()
        phase[name] += float(seconds)
    spec_s, engine_s, metrics_s = (phase["apply"] + phase["build_spec"], phase["simulate"],
                                   phase["replication_metrics"])
    overhead_s = t_compose + spec_s + metrics_s + t_write
    overhead = overhead_s / (overhead_s + engine_s)
    cores = total * args.n_jobs  # core-seconds the run had
    rest = cores - overhead_s - engine_s  # the analysis, the pool, idle cores, dispatch

    print(f"\n{n_runs} runs ({args.draws} draws x {len(names)} options x 1 replication), "
          f"{len(uncertainty)} assumptions, n_jobs={args.n_jobs}, "
          f"overrides {args.override or 'none'}")
    print(f"  compose and check the options: {t_compose:8.1f} s")
    print(f"  the study (every run) and the analysis: {t_study:8.1f} s "
          f"({t_study / n_runs * args.n_jobs:.3f} core-s per run; the analysis "
          f"{analysis['s']:.1f} s of it)")
    print(f"  write the tables and figures:  {t_write:8.1f} s")
    print(f"  total: {total:.1f} s; target {TARGET_SECONDS:.0f} s: ratio "
          f"{total / TARGET_SECONDS:.2f} -> {'PASS' if total <= TARGET_SECONDS else 'FAIL'}")
    print(f"\nper run, in the workers: spec {spec_s / n_runs:.3f} s, engine "
          f"{engine_s / n_runs:.3f} s, metrics {metrics_s / n_runs:.3f} s")
    print(f"  overhead (composition, spec, metrics, writing) / (that + engine): "
          f"{overhead:.1%}; target {TARGET_OVERHEAD:.0%} -> "
          f"{'PASS' if overhead <= TARGET_OVERHEAD else 'FAIL'}")
    print(f"  of the {cores:.0f} core-s the study had: engine {engine_s / cores:.1%}, "
          f"overhead {overhead_s / cores:.1%}, the rest (analysis, pool start, idle "
          f"cores, task dispatch) {rest / cores:.1%}")
    print(f"load average at the end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": n_runs, "draws": args.draws, "n_jobs": args.n_jobs,
            "compose_s": t_compose, "study_s": t_study, "analysis_s": analysis["s"],
            "write_s": t_write, "total_s": total, "spec_s_per_run": spec_s / n_runs,
            "engine_s_per_run": engine_s / n_runs, "metrics_s_per_run": metrics_s / n_runs,
            "overhead": overhead, "rest_share": rest / cores,
            "overrides": args.override}, indent=2))


if __name__ == "__main__":
    main()

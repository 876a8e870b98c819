"""``make bench``: every speed benchmark of the project, in one command.

Runs, in order, ``benchmarks.bench_core.main`` (the NumPy/SciPy core),
``benchmarks.bench_torch.main`` and ``benchmarks.bench_hydra.main`` (with ``--crossover`` unless
``--quick``), passing ``--quick``, ``--threads`` and ``--out`` through, each in a
child process so that one benchmark's peak memory is returned before the next starts. Each writes
its ``<stem>.{json,md,png}``; this script records the machine, the library versions and the
process settings to ``benchmarks/results/environment.json`` (``--out`` changes the folder).

The process restarts itself once with the malloc tunables of ``shared/BENCHMARKING.md`` and
explicit thread counts (see :mod:`benchmarks._env`). Run::

    python benchmarks/run_all.py            # full: several minutes on 2 cores
    python benchmarks/run_all.py --quick
    python benchmarks/run_all.py --quick --out results/bench   # leave benchmarks/results alone
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

__all__ = ["main", "BENCHMARKS"]

BENCHMARKS = ("bench_core", "bench_torch", "bench_hydra")


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the quick preset of every benchmark")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    p.add_argument("--threads", type=int, default=1,
                   help="OMP/OPENBLAS/MKL_NUM_THREADS for the process (default 1; see bench_core --help)")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR,
                   help="results folder of every benchmark and of environment.json")
    return p


def main(argv=None):
    """Run the benchmarks; return 0 when every benchmark that exists succeeded, else 1.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``): ``--quick``, ``--only NAME ...``, ``--threads N``,
        ``--out DIR``.
    """
    argv, args = _env.parse_args(_parser(), argv)
    passed = (["--quick"] if args.quick else []) + ["--out", str(args.out)]
    command = " ".join(["python", "benchmarks/run_all.py", *argv])
    os.environ.setdefault("LDR_BENCH_COMMAND", command)
    started = time.perf_counter()
    record = _env.environment(include_torch=True)
    record["command"] = command
    record["benchmarks"] = {}
    failures = 0
    for name in args.only or BENCHMARKS:
        arguments = passed + ["--threads", str(args.threads)]
        if name == "bench_hydra" and not args.quick:
            arguments.append("--crossover")  # the table that sets hydra.AUTO_FFT_BLOCK_SIZE
        print(f"run_all: {name}.main({arguments})", flush=True)
        t0 = time.perf_counter()
        # Each benchmark in its own process (same environment, so no second restart): with the
        # malloc settings a process keeps its peak memory, and one process for all of them was
        # killed for memory on a 24 GB machine. A failure is reported and the others still run.
        code = subprocess.run(
            [sys.executable, "-c", f"import sys; from benchmarks import {name} as b; sys.exit(b.main({arguments!r}))"],
            cwd=_env.REPO_ROOT, env=os.environ.copy(),
        ).returncode
        status = "ok" if not code else f"failed (exit {code})"
        failures += bool(code)
        record["benchmarks"][name] = {"status": status, "wall_time_s": round(time.perf_counter() - t0, 1)}
        print(f"run_all: {name} {status} in {record['benchmarks'][name]['wall_time_s']} s", flush=True)
    record["wall_time_s"] = round(time.perf_counter() - started, 1)
    _env.write_json(Path(args.out) / "environment.json", record)
    print(f"run_all: wrote {Path(args.out) / 'environment.json'}; "
          f"{'all benchmarks ran' if not failures else f'{failures} benchmark(s) failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    _env.ensure_process_settings(__file__, sys.argv[1:], _parser().parse_args(sys.argv[1:]).threads)
    sys.exit(main())

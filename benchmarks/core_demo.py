r"""A short tour of the ``ldr`` core: exact reconstruction, fast products, and their speed.

For every structure class (n = 64, displacement rank r = 2, float64) it prints

- the displacement residual :math:`\|A W - W B - G H\| / \|G H\|` of ``W = ldr.LDRMatrix(...).dense()``,
- the distance of ``W`` from :func:`scipy.linalg.solve_sylvester` ``(A, -B, G H)``, a dense
  solve that knows nothing of the structure,
- the error of the fast products ``W @ x`` and ``W.T @ x`` against the dense matrix,

then times a Toeplitz-like ``W @ X`` (batch 64) by FFTs against a GEMM with the dense matrix at
a few sizes. Run ``python benchmarks/core_demo.py`` (not part of ``make bench``: it checks as it times);
``--quick`` times three sizes. About 10-20 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

if __name__ == "__main__":
    # Restart once with one BLAS thread (the timings are this thread's CPU time, which other
    # jobs on a shared machine disturb far less than wall-clock time) and with the malloc
    # settings of benchmarks/_env.py: without them every product page-faults its temporaries
    # again, 2-3x slower here.
    _env.ensure_process_settings(__file__, sys.argv[1:], threads=1)

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

import ldr  # noqa: E402

__all__ = ["main"]


def _cases(n, r, rng):
    """(name, W) for each structure class, random generators of rank r."""
    G = rng.standard_normal((n, r))
    H = rng.standard_normal((r, n))
    # Nodes in [1, 2]: W's rows are g_i H (v_i I - Z_0)^{-1}, with entries v_i^{-k}; |v_i| >= 1
    # keeps them O(1) (nodes below 1 give entries up to v^-n and a meaningless residual).
    nodes = np.sort(rng.uniform(1.0, 2.0, n))
    v = np.linspace(-1.0, 1.0, n)
    u = v + 1.0 / n  # Cauchy nodes interleaved with v: disjoint, closest gap 1/n
    return [
        ("low-rank (I, 0)", ldr.low_rank(G, H)),
        ("Toeplitz-like (Z_1, Z_-1)", ldr.toeplitz_like(G, H)),
        ("Hankel-like (Z_1, Z_0^T)", ldr.hankel_like(G, H)),
        ("Vandermonde-like (diag v, Z_0)", ldr.vandermonde_like(G, H, nodes)),
        ("Cauchy-like (diag v, diag u)", ldr.cauchy_like(G, H, v, u)),
        ("Toeplitz (classic, rank 2)", ldr.toeplitz(rng.standard_normal(n), rng.standard_normal(n))),
    ]


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def reconstruction_table(n=64, r=2, seed=0):
    """Print the reconstruction and product checks; return the largest relative error seen."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    X = rng.standard_normal((n, 8))
    print(f"Reconstruction and products, n = {n}, rank r = {r} (classic Toeplitz: 2), float64")
    header = f"  {'class':32s} {'|AW-WB-GH|/|GH|':>16s} {'vs solve_sylvester':>19s} {'W@x':>9s} {'W.T@x':>9s} {'W@X':>9s}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    worst = 0.0
    for name, W in _cases(n, r, rng):
        D = W.dense()
        GH = W.G @ W.H
        A, B = W.A.dense(), W.B.dense()
        residual = _relative(ldr.displacement(W.A, W.B, D), GH)
        sylvester = _relative(D, scipy.linalg.solve_sylvester(A, -B, GH))
        errors = [_relative(W @ x, D @ x), _relative(W.T @ x, D.T @ x), _relative(W @ X, D @ X)]
        worst = max(worst, residual, sylvester, *errors)
        print(f"  {name:32s} {residual:16.1e} {sylvester:19.1e} " + " ".join(f"{e:9.1e}" for e in errors))
    print(f"  largest relative error: {worst:.1e} (float64 round-off is ~1e-16 per operation)\n")
    return worst


def _time(fn, repeats):
    fn()  # warm-up: FFT plans, cached generator spectra
    samples = []
    for _ in range(repeats):
        calls, start = 0, time.process_time()
        while True:
            fn()
            calls += 1
            elapsed = time.process_time() - start
            if elapsed > 0.02:
                break
        samples.append(elapsed / calls)
    return float(np.median(samples))


def timing_table(sizes, r=4, batch=64, repeats=5, seed=1):
    """Print fast vs dense times of a Toeplitz-like ``W @ X``; return the rows."""
    rng = np.random.default_rng(seed)
    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    malloc = "set" if os.environ.get("MALLOC_MMAP_MAX_") == "0" else "not set (slower products)"
    print(f"Toeplitz-like W @ X, rank r = {r}, batch {batch}, float64: CPU time per call, median of "
          f"{repeats} (BLAS threads: {threads}, scipy.fft workers: 1, malloc settings {malloc})")
    print(f"  {'n':>6s} {'fast (FFT)':>12s} {'dense GEMM':>12s} {'dense/fast':>11s}")
    rows = []
    for n in sizes:
        W = ldr.toeplitz_like(rng.standard_normal((n, r)) / np.sqrt(n), rng.standard_normal((r, n)))
        X = rng.standard_normal((n, batch))
        # A GEMM's cost does not depend on the values, so any dense n x n matrix times it; W.dense()
        # itself would take seconds at n = 4096 and is checked above at n = 64.
        D = rng.standard_normal((n, n))
        fast = _time(lambda: W @ X, repeats)
        dense = _time(lambda: D @ X, repeats)
        rows.append((n, fast, dense))
        print(f"  {n:6d} {fast * 1e3:10.3f}ms {dense * 1e3:10.3f}ms {dense / fast:10.2f}x")
    print("  fast: 2r + 2 = %d real FFTs (length ~2n; n on the Z_1 side when n is 5-smooth), "
          "O(r n log n) per column;\n  dense: O(n^2) per column.\n" % (2 * r + 2))
    return rows


def main(argv=None):
    """Print the reconstruction checks and the timing table. Returns 0, or 1 if a check fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="three sizes (256, 1024, 4096)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(f"ldr core demo (numpy {np.__version__}, scipy {scipy.__version__})\n")
    worst = reconstruction_table()
    sizes = (256, 1024, 4096) if args.quick else (256, 512, 1024, 2048, 4096)
    timing_table(sizes)
    if worst > 1e-8:
        print(f"FAILED: a reconstruction or product error of {worst:.1e} exceeds 1e-8")
        return 1
    print("All reconstruction and product checks agree with the dense references.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

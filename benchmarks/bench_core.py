r"""Speed of the NumPy/SciPy ``ldr`` core: Toeplitz-like ``W @ X`` against its peers.

For each dtype (float64, float32), size n and displacement rank r, with a batch of k = 64
columns (``X`` of shape (n, k), the :func:`numpy.matmul` convention), one run times, in turn:

``fast``
    ``W @ X`` for ``W = ldr.toeplitz_like(G, H)`` (square, operators (Z_1, Z_-1)): 2r + 2 real
    FFTs of length ``next_fast_len(2n - 1)``.
``dense``
    ``D @ X`` with the materialised matrix ``D = W.dense()`` built beforehand (one GEMM).
``bare_fft``
    Only the 2r + 2 transforms that the fast product performs, on preallocated inputs of the
    same shapes (one forward of the batch, r inverse and r forward of the (k, r) stack, one
    inverse): the floor that any FFT implementation of this algorithm pays.
``matmul_toeplitz`` (plain Toeplitz only)
    :func:`scipy.linalg.matmul_toeplitz` on the same matrix and batch, compared with
    ``ldr.toeplitz(c, r) @ X`` (which keeps its entries: one convolution, 2 FFTs) and with the
    same matrix given by its rank-2 displacement generators alone (6 FFTs).

The machines are shared and noisy (±35 % between runs), so every figure reported is a ratio of
times measured in the same repeat, with the methods' order rotated between repeats; the median
and the range over the repeats are reported. By default everything runs on one thread (one BLAS
thread, one scipy.fft worker) and is timed in process CPU time, which other jobs on a shared
machine disturb far less than elapsed time; ``--threads N`` switches to N threads and wall time.
Run::

    python benchmarks/bench_core.py            # full: several minutes on 2 cores
    python benchmarks/bench_core.py --quick    # about a minute

Writes ``benchmarks/results/core_toeplitz_like.{json,md,png}`` (``--out`` changes the folder).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

__all__ = ["main", "run"]

FULL = {"sizes": (256, 1024, 4096), "ranks": (1, 4, 16), "repeats": 7, "target_s": 0.15}
QUICK = {"sizes": (256, 1024), "ranks": (1, 4), "repeats": 3, "target_s": 0.04}
DTYPES = ("float64", "float32")
STEM = "core_toeplitz_like"


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (about a minute)")
    p.add_argument("--batch", type=int, default=64, help="columns of X (default 64)")
    p.add_argument("--sizes", type=int, nargs="+", help="override the sizes n")
    p.add_argument("--ranks", type=int, nargs="+", help="override the displacement ranks r")
    p.add_argument("--repeats", type=int, help="override the number of repeats")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads (default 1: on a shared 2-core machine a second thread waits "
                        "for a busy core and GEMMs jump to ~16 ms); also scipy.fft workers unless --fft-workers")
    p.add_argument("--fft-workers", type=int, help="scipy.fft workers for every FFT method (default --threads)")
    p.add_argument("--clock", choices=tuple(_env.CLOCKS),
                   help="cpu: process CPU time (default with one thread: other jobs on a shared machine "
                        "disturb it far less); wall: elapsed time (default with several threads)")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR, help="results folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


# -- cases ------------------------------------------------------------------------------------------
def _e_side_length(n, e):
    """FFT length that ldr uses on the e side (a plain circulant may use a cyclic length n)."""
    try:
        from ldr.toeplitz_like import _transform_length
    except ImportError:  # older ldr: every side at next_fast_len(2n - 1)
        from ldr.krylov import fft_length

        return fft_length(n)
    return _transform_length(n, e)


def _bare_fft(np, scipy_fft, n, r, k, dtype, rng, e_length=None):
    """The transforms of one fast product, on preallocated inputs of the same shapes.

    r >= 1: the 2r + 2 transforms of a Toeplitz-like product, all at N = next_fast_len(2n - 1)
    (the baseline), or with the e side's r + 1 at ``e_length``; r = 0: the 2 of
    one convolution (one forward of the batch, one inverse).
    """
    N = scipy_fft.next_fast_len(2 * n - 1, real=True)
    Ne = e_length or N
    F, Fe = N // 2 + 1, Ne // 2 + 1
    x = rng.standard_normal((k, n)).astype(dtype)
    t = rng.standard_normal((k, r, n)).astype(dtype)
    ctype = np.result_type(dtype, np.complex64)
    y = (rng.standard_normal((k, r, F)) + 1j * rng.standard_normal((k, r, F))).astype(ctype)
    a = (rng.standard_normal((k, Fe)) + 1j * rng.standard_normal((k, Fe))).astype(ctype)

    def bare():
        scipy_fft.rfft(x, N, axis=-1)  # the batch
        scipy_fft.irfft(y, N, axis=-1)  # r inverse (f-side products)
        scipy_fft.rfft(t, Ne, axis=-1)  # r forward (into the e side)
        scipy_fft.irfft(a, Ne, axis=-1)  # one inverse of the sum

    def bare_convolution():
        scipy_fft.rfft(x, N, axis=-1)
        scipy_fft.irfft(a, N, axis=-1)

    return (bare if r else bare_convolution), N


def _dense_by_recursion(np, ldr, W):
    """Dense W (float64 or complex128) in O(n^2) memory, from its displacement Z_e W - W Z_f = G H.

    Entry by entry the equation says W[i, j+1] = W[i-1, j] - (G H)[i, j] (i >= 1, j <= n-2), so
    the first row and column (two fast products) determine the rest. ``W.dense()`` applies W to
    the identity, whose (n, r, n) spectra need ~10 GB at n = 4096, r = 16: on a shared machine
    that got this benchmark killed for memory.
    """
    m, n = W.shape
    work = np.result_type(W.G.dtype, W.H.dtype, np.float64)
    G, H = W.G.astype(work), W.H.astype(work)
    W64 = ldr.toeplitz_like(G, H, e=W.e, f=W.f)
    column = W64 @ np.eye(n, 1, dtype=work)[:, 0]
    row = W64.T @ np.eye(m, 1, dtype=work)[:, 0]
    GH = G @ H
    D = np.empty((m, n), dtype=work)
    D[0] = row
    for i in range(1, m):
        D[i, 0] = column[i]
        np.subtract(D[i - 1, :-1], GH[i, :-1], out=D[i, 1:])
    return D


def _relative_error(np, fast, dense):
    scale = np.linalg.norm(dense)
    return float(np.linalg.norm(fast - dense) / scale) if scale else float(np.linalg.norm(fast))


def _toeplitz_like_case(dtype, n, r, k, repeats, target_s, seed, clock):
    import numpy as np
    import scipy.fft

    import ldr

    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, r)).astype(dtype) / math.sqrt(n)
    H = rng.standard_normal((r, n)).astype(dtype)
    X = rng.standard_normal((n, k)).astype(dtype)
    W = ldr.toeplitz_like(G, H)
    D64 = _dense_by_recursion(np, ldr, W)
    check = _relative_error(np, D64, W.dense().astype(D64.dtype)) if n <= 1024 else None
    D = np.ascontiguousarray(D64.astype(dtype))
    del D64
    bare, N = _bare_fft(np, scipy.fft, n, r, k, np.dtype(dtype), rng)
    e_length = _e_side_length(n, W.e)
    methods = {"fast": lambda: W @ X, "dense": lambda: D @ X, "bare_fft": bare}
    if e_length != N:  # ldr's e side is shorter than the baseline assumes: time both
        methods["own_fft"] = _bare_fft(np, scipy.fft, n, r, k, np.dtype(dtype), rng, e_length)[0]
    times, calls = _env.measure(methods, repeats, target_s, clock)
    return {
        "kind": "toeplitz_like",
        "dtype": dtype,
        "n": n,
        "r": r,
        "batch": k,
        "fft_length": N,
        "e_side_fft_length": e_length,
        "ffts_per_product": 2 * r + 2,
        "calls_per_block": calls,
        "times_s": {name: _env.summary(v) for name, v in times.items()},
        "ratios": _env.ratios(times, [("fast", "bare_fft"), ("fast", "dense")]
                          + ([("fast", "own_fft")] if "own_fft" in times else [])),
        "relative_error_vs_dense": _relative_error(np, W @ X, D @ X),
        "dense_built_by": "displacement recursion in float64 (O(n^2) memory)",
        "dense_recursion_vs_W_dense": check,
    }


def _toeplitz_case(dtype, n, k, repeats, target_s, seed, fft_workers, clock):
    import numpy as np
    import scipy.fft
    import scipy.linalg

    import ldr

    rng = np.random.default_rng(seed)
    c = rng.standard_normal(n).astype(dtype)
    row = rng.standard_normal(n).astype(dtype)
    row[0] = c[0]
    X = rng.standard_normal((n, k)).astype(dtype)
    W = ldr.toeplitz(c, row)  # keeps its entries: W @ X is one convolution, 2 FFTs
    generic = ldr.toeplitz_like(W.G, W.H)  # the same matrix from its rank-2 generators alone: 6 FFTs
    D = np.ascontiguousarray(scipy.linalg.toeplitz(c, row))
    bare, N = _bare_fft(np, scipy.fft, n, 0, k, np.dtype(dtype), rng)

    def peer():
        return scipy.linalg.matmul_toeplitz((c, row), X, check_finite=False, workers=fft_workers)

    methods = {"fast": lambda: W @ X, "matmul_toeplitz": peer, "dense": lambda: D @ X, "bare_fft": bare,
               "rank2_generators": lambda: generic @ X}
    times, calls = _env.measure(methods, repeats, target_s, clock)
    reference = D @ X
    return {
        "kind": "toeplitz",
        "dtype": dtype,
        "n": n,
        "r": W.rank,
        "batch": k,
        "fft_length": N,
        "matmul_toeplitz_fft_length": 2 * n - 1,
        "ffts_per_product": 2,
        "rank2_generators_ffts_per_product": 2 * W.rank + 2,
        "calls_per_block": calls,
        "times_s": {name: _env.summary(v) for name, v in times.items()},
        "ratios": _env.ratios(
            times, [("fast", "matmul_toeplitz"), ("fast", "bare_fft"), ("fast", "dense"),
                    ("rank2_generators", "matmul_toeplitz"), ("fast", "rank2_generators")]
        ),
        "relative_error_vs_dense": _relative_error(np, W @ X, reference),
        "rank2_generators_relative_error_vs_dense": _relative_error(np, generic @ X, reference),
        "matmul_toeplitz_relative_error_vs_dense": _relative_error(np, np.asarray(peer()), reference),
    }


# -- targets (from the core issue) ----------------------------------------------------------------
def _targets(cases):
    """Evaluate the three performance checks on the median ratios."""
    rows = []
    for case in cases:
        ratios, n, r = case["ratios"], case["n"], case["r"]
        label = f"{case['kind']} {case['dtype']} n={n} r={r}"
        if case["kind"] == "toeplitz_like" and n >= 1024:
            value = ratios["fast/bare_fft"]["median"]
            rows.append({"target": "fast <= 1.5x bare FFT (n >= 1024)", "case": label,
                         "median_ratio": value, "met": value <= 1.5})
            if r <= 4:
                value = ratios["fast/dense"]["median"]
                rows.append({"target": "fast < dense (n >= 1024, r <= 4)", "case": label,
                             "median_ratio": value, "met": value < 1.0})
        if case["kind"] == "toeplitz":
            value = ratios["fast/matmul_toeplitz"]["median"]
            rows.append({"target": "fast <= matmul_toeplitz (plain Toeplitz)", "case": label,
                         "median_ratio": value, "met": value <= 1.0})
    return rows


# -- output -----------------------------------------------------------------------------------------
def _table(result, kind, header, cells):
    """Markdown table of the cases of one kind: ``header`` names the columns, ``cells(case)`` fills a row."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for case in result["cases"]:
        if case["kind"] == kind:
            lines.append("| " + " | ".join(cells(case)) + " |")
    return lines


def _toeplitz_like_cells(case):
    t, q = case["times_s"], case["ratios"]
    own = "fast/own_fft" in q
    return [case["dtype"], str(case["n"]), str(case["r"]), _env.fmt_ms(t["fast"]), _env.fmt_ms(t["dense"]),
            _env.fmt_ms(t["bare_fft"]), _env.fmt_ms(t["own_fft"]) if own else "=",
            _env.fmt_ratio(q["fast/bare_fft"]), _env.fmt_ratio(q["fast/own_fft"]) if own else "=",
            _env.fmt_ratio(q["fast/dense"]), f"{case['relative_error_vs_dense']:.1e}"]


def _toeplitz_cells(case):
    t, q = case["times_s"], case["ratios"]
    times = [_env.fmt_ms(t[name]) for name in ("fast", "matmul_toeplitz", "dense", "bare_fft", "rank2_generators")]
    quotients = [_env.fmt_ratio(q[name]) for name in ("fast/matmul_toeplitz", "fast/bare_fft", "fast/dense",
                                                      "rank2_generators/matmul_toeplitz")]
    return [case["dtype"], str(case["n"]), *times, *quotients]


def _markdown(result):
    env, settings = result["environment"], result["settings"]
    used = env["settings"]["environment_used"]
    found = env["settings"]["environment_as_found"] or {}
    pools = env["settings"]["thread_pools"] or []
    blas = ", ".join(
        f"{p['internal_api']} {p['version'] or ''} ({p['architecture'] or p['user_api']}, "
        f"{p['num_threads']} thread(s))" for p in pools
    ) or "threadpoolctl not installed"
    trap = {k: found.get(k) for k in _env.OPENBLAS_TRAP}
    lines = _env.markdown_header("Toeplitz-like `W @ X`, NumPy/SciPy backend", result) + [
        f"- Versions: numpy {env['versions']['numpy']}, scipy {env['versions']['scipy']}, "
        f"python {env['versions']['python']}; BLAS: {blas}",
        f"- Threads: OMP/OPENBLAS/MKL_NUM_THREADS = {used.get('OPENBLAS_NUM_THREADS')}; "
        f"scipy.fft workers = {settings['fft_workers']} (for ldr, the bare FFTs and matmul_toeplitz)",
        f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as found: {trap}; unset in the benchmark process",
        f"- Clock: {'process CPU time' if settings['clock'] == 'cpu' else 'wall-clock time'}. "
        f"Batch k = {settings['batch']}, {settings['repeats']} repeats; each time is one block of "
        f"calls lasting ≥ {settings['target_s']} s; methods' order rotated between repeats. "
        "Ratios are per repeat, shown as median (min–max).",
        "",
        "## Toeplitz-like (Z_1, Z_-1), random rank-r generators",
        "",
        "`fast` = `W @ X`: 2r+2 real FFTs, the f side's r+1 at length next_fast_len(2n−1), the e "
        "side's r+1 (Z_1: a plain circulant) at length n when n is 5-smooth, else 2n; `dense` = GEMM "
        "with the prebuilt matrix; `bare FFT` = 2r+2 transforms alone, all at next_fast_len(2n−1) "
        "(the baseline); `own FFT` = the transforms `fast` actually performs, alone (its "
        "ratio is the overhead around them). Times in ms (median).",
        "",
        *_table(result, "toeplitz_like",
                ["dtype", "n", "r", "fast", "dense", "bare FFT", "own FFT", "fast / bare FFT", "fast / own FFT",
                 "fast / dense", "rel. err"], _toeplitz_like_cells),
        "",
        "## Plain Toeplitz: `ldr.toeplitz(c, r) @ X` vs `scipy.linalg.matmul_toeplitz`",
        "",
        "`ldr.toeplitz` keeps the matrix's entries, so `W @ X` is one convolution: 2 real FFTs of "
        "length next_fast_len(2n−1). matmul_toeplitz also takes 2 (plus one of the Toeplitz vector) "
        "but at length 2n−1, which is not a fast length (8191 is prime). `rank-2 gen.` is the same "
        "matrix as `ldr.toeplitz_like(W.G, W.H)`, i.e. from its displacement generators alone "
        "(2r+2 = 6 FFTs), the path a plain Toeplitz took before it kept its entries.",
        "",
        *_table(result, "toeplitz",
                ["dtype", "n", "ldr", "matmul_toeplitz", "dense", "bare FFT (2)", "rank-2 gen.",
                 "ldr / matmul_toeplitz", "ldr / bare FFT", "ldr / dense", "rank-2 gen. / matmul_toeplitz"],
                _toeplitz_cells),
    ]
    lines += _env.targets_markdown(result["targets"], "Performance checks, on the median ratio")
    return "\n".join(lines)


_STYLES = {
    "fast": ("ldr fast (W @ X)", "C0", "o-"),
    "dense": ("dense GEMM", "C3", "s-"),
    "bare_fft": ("bare FFTs (2r+2 at 2n; plain Toeplitz: 2)", "C2", "^--"),
    "own_fft": ("ldr's own FFTs alone", "C2", "x:"),
    "matmul_toeplitz": ("scipy matmul_toeplitz", "C1", "d-"),
    "rank2_generators": ("ldr from rank-2 generators", "C4", "v:"),
}


def _plot(result, path):
    """Log-log time vs n: one panel per dtype (rows) and rank / plain Toeplitz (columns)."""
    cases, settings, env = result["cases"], result["settings"], result["environment"]
    ranks = sorted({c["r"] for c in cases if c["kind"] == "toeplitz_like"})
    dtypes = [d for d in DTYPES if any(c["dtype"] == d for c in cases)]
    columns = [(f"Toeplitz-like r = {r}", "toeplitz_like", r) for r in ranks] + [("plain Toeplitz", "toeplitz", None)]
    grid = [[(f"{name}, {dtype}", [c for c in cases if c["kind"] == kind and c["dtype"] == dtype
                                   and (r is None or c["r"] == r)]) for name, kind, r in columns]
            for dtype in dtypes]
    clock = "CPU" if settings["clock"] == "cpu" else "wall"
    _env.plot_time_grid(
        path, grid, _STYLES, n2_through="dense", nlogn_through="fast", xlabel="n (W is n×n)",
        ylabel=f"{clock} time per W @ X (ms), batch {settings['batch']}",
        title=f"ldr NumPy/SciPy backend: time vs n (median; band: range over {settings['repeats']} repeats)\n"
              f"{env['machine']['cpu_model']}, {settings['threads']} thread(s), {clock} time",
    )


# -- entry points -----------------------------------------------------------------------------------
def run(quick=False, batch=64, sizes=None, ranks=None, repeats=None, threads=1, fft_workers=None,
        clock=None, progress=print):
    """Run the benchmark and return the result dictionary (no files written).

    Parameters
    ----------
    quick : bool
        Use the quick preset (sizes 256, 1024; ranks 1, 4; 3 repeats).
    batch : int
        Columns of ``X``.
    sizes, ranks : sequence of int, optional
        Override the preset's sizes n and ranks r.
    repeats : int, optional
        Override the preset's repeat count.
    threads : int, optional
        BLAS thread limit applied through threadpoolctl when it is installed.
    fft_workers : int, optional
        scipy.fft workers for every FFT-based method (default ``threads``, else 1).
    clock : {"cpu", "wall"}, optional
        Process CPU time (default when one thread and one FFT worker) or elapsed time.
    progress : callable
        Receives one line per case.

    Returns
    -------
    dict
        ``settings``, ``environment`` (:func:`benchmarks._env.environment`), ``cases`` (one per
        dtype, n and r, plus a plain Toeplitz case per dtype and n: ``times_s`` per method and
        ``ratios``, each a median/min/max summary over the repeats) and ``targets``.
    """
    import contextlib

    import scipy.fft

    preset = dict(QUICK if quick else FULL)
    sizes = tuple(sizes or preset["sizes"])
    ranks = tuple(ranks or preset["ranks"])
    repeats = repeats or preset["repeats"]
    fft_workers = fft_workers or threads or 1
    clock = clock or ("cpu" if (threads or 1) == 1 and fft_workers == 1 else "wall")
    tick = _env.CLOCKS[clock]
    limiter = contextlib.nullcontext()
    if threads:
        try:
            import threadpoolctl

            limiter = threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
        except ImportError:
            pass  # the environment variables set by the script's restart apply instead
    cases = []
    seed = 0
    with limiter, scipy.fft.set_workers(fft_workers):
        for dtype in DTYPES:
            for n in sizes:
                for r in ranks:
                    seed += 1
                    case = _toeplitz_like_case(dtype, n, r, batch, repeats, preset["target_s"], seed, tick)
                    cases.append(case)
                    q = case["ratios"]
                    progress(f"  toeplitz_like {dtype:7s} n={n:5d} r={r:2d}: fast/bare_fft "
                             f"{_env.fmt_ratio(q['fast/bare_fft'])}, fast/dense {_env.fmt_ratio(q['fast/dense'])}")
                seed += 1
                case = _toeplitz_case(dtype, n, batch, repeats, preset["target_s"], seed, fft_workers, tick)
                cases.append(case)
                progress(f"  toeplitz      {dtype:7s} n={n:5d} r= 2: fast/matmul_toeplitz "
                         f"{_env.fmt_ratio(case['ratios']['fast/matmul_toeplitz'])}")
        environment = _env.environment()
    return {
        "benchmark": "core_toeplitz_like",
        "settings": {"quick": quick, "batch": batch, "sizes": list(sizes), "ranks": list(ranks),
                     "repeats": repeats, "target_s": preset["target_s"], "threads": threads,
                     "fft_workers": fft_workers, "clock": clock, "dtypes": list(DTYPES)},
        "environment": environment,
        "cases": cases,
        "targets": _targets(cases),
    }


main = _env.command_line(
    _parser, run, script="bench_core.py", stem=STEM, markdown=_markdown, plot=_plot, caption="time vs n",
    banner=lambda args: f"Toeplitz-like W @ X ({'quick' if args.quick else 'full'}), {args.threads} thread(s)",
)

if __name__ == "__main__":
    _env.ensure_process_settings(__file__, sys.argv[1:], _parser().parse_args(sys.argv[1:]).threads)
    sys.exit(main())

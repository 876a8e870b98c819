r"""Growth of Cauchy-like and Vandermonde-like ``W @ X`` with n, against a dense GEMM with W prebuilt.

float32, square n×n, displacement rank r = 4, a batch of 64 columns, one thread. Methods, timed in
one run with their order rotated between repeats (ratios are per repeat; see BENCHMARKING.md):

``cauchy_fast``
    ``ldr.cauchy_like(..., method="fast")`` on interlaced real nodes (``v_i = -1 + 2i/n``,
    ``u_j = v_j + 1/n``), default float32 tolerance 1e-5: the treecode of :mod:`ldr.fast_cauchy`.
``cauchy_exact``
    The same matrix, ``method="exact"``: streamed Cauchy tiles, one GEMM per tile (r·64 columns).
``vandermonde_exact``
    A Vandermonde-like matrix on unit-circle nodes (roots of -1), f = 1, complex64: r + 1 FFTs
    and streamed power tiles.
``vandermonde_fast``
    The same matrix, ``method="fast"``: the Vandermonde-to-Cauchy identity and the treecode.
``dense``
    ``X^T @ W^T`` with a prebuilt float32 n×n matrix (one GEMM, 64 columns).

The exact paths cost O(r n²) per batch and are timed up to ``--exact-max`` (default 4096).
Run::

    python benchmarks/bench_node_kernels.py            # n = 256 ... 16384, a few minutes
    python benchmarks/bench_node_kernels.py --quick    # n = 256 ... 4096

Writes ``benchmarks/results/core_node_kernels.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

__all__ = ["main", "run"]

STEM = "core_node_kernels"
FULL = {"sizes": (256, 1024, 4096, 16384), "repeats": 3, "target_s": 0.05}
QUICK = {"sizes": (256, 1024, 4096), "repeats": 3, "target_s": 0.02}
METHODS = ("cauchy_fast", "cauchy_exact", "vandermonde_fast", "vandermonde_exact", "dense")


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n up to 4096")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--exact-max", type=int, default=4096, help="largest n for the O(r n^2) exact paths")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=tuple(_env.CLOCKS), default="cpu")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR, help="results folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


def _case(n, r, batch, exact_max, repeats, target_s, clock, seed):
    import numpy as np

    import ldr

    rng = np.random.default_rng(seed)
    f32 = np.float32
    # Interlaced equispaced nodes, 1/n apart: distinct in float32 up to n = 16384 and beyond
    # (Chebyshev points crowd to 1e-8 at the ends and collide in float32 there).
    v = (-1 + 2 * np.arange(n) / n).astype(f32)
    u = (-1 + (2 * np.arange(n) + 1) / n).astype(f32)
    G, H = rng.standard_normal((n, r)).astype(f32), rng.standard_normal((r, n)).astype(f32)
    X = rng.standard_normal((batch, n)).astype(f32)
    fast = ldr.cauchy_like(G, H, v, u, method="fast")
    exact = ldr.cauchy_like(G, H, v, u, method="exact")
    nodes = np.exp(1j * np.pi * (2 * np.arange(n) + 1) / n).astype(np.complex64)
    vand = ldr.vandermonde_like(G.astype(np.complex64), H.astype(np.complex64), nodes, f=1.0, method="exact")
    vand_fast = ldr.vandermonde_like(G.astype(np.complex64), H.astype(np.complex64), nodes, f=1.0, method="fast")
    dense = rng.standard_normal((n, n)).astype(f32)  # GEMM time does not depend on the values
    methods = {"cauchy_fast": lambda: fast.matvec(X), "vandermonde_fast": lambda: vand_fast.matvec(X),
               "dense": lambda: X @ dense.T}
    if n <= exact_max:
        methods["cauchy_exact"] = lambda: exact.matvec(X)
        methods["vandermonde_exact"] = lambda: vand.matvec(X)
    times, calls = _env.measure(methods, repeats, target_s, clock, warmup=1)
    error = vand_error = None
    if n <= exact_max:
        y_fast, y_exact = fast.matvec(X), exact.matvec(X)
        error = float(np.linalg.norm(y_fast - y_exact) / np.linalg.norm(y_exact))
        v_fast, v_exact = vand_fast.matvec(X), vand.matvec(X)
        vand_error = float(np.linalg.norm(v_fast - v_exact) / np.linalg.norm(v_exact))
    pairs = [(name, "dense") for name in methods if name != "dense"]
    plan = fast._fast_plan(np.dtype(f32), False)
    return {
        "n": n, "r": r, "batch": batch, "calls": calls,
        "times_s": {name: _env.summary(t) for name, t in times.items()},
        "ratios": _env.ratios(times, pairs),
        "fast_vs_exact_relative_difference": error,
        "vandermonde_fast_vs_exact_relative_difference": vand_error,
        "tree": {"p": plan.p, "levels": plan.levels},
    }


def run(quick=False, batch=64, rank=4, exact_max=4096, threads=1, clock="cpu", progress=print):
    """Run the benchmark; returns the result dictionary (no files written)."""
    import contextlib

    preset = QUICK if quick else FULL
    limiter = contextlib.nullcontext()
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
    except ImportError:
        pass
    cases = []
    with limiter:
        for seed, n in enumerate(preset["sizes"]):
            case = _case(n, rank, batch, exact_max, preset["repeats"], preset["target_s"], _env.CLOCKS[clock], seed)
            cases.append(case)
            progress(f"  n={n:6d}: " + ", ".join(f"{k} {_env.fmt_ratio(q)}" for k, q in case["ratios"].items()))
    return {
        "benchmark": STEM,
        "settings": {"quick": quick, "batch": batch, "rank": rank, "exact_max": exact_max, "threads": threads,
                     "clock": clock, "dtype": "float32", "sizes": list(preset["sizes"]), "repeats": preset["repeats"]},
        "environment": _env.environment(),
        "cases": cases,
    }


def _markdown(result):
    lines = _env.markdown_header("Cauchy-like / Vandermonde-like `W @ X` vs dense GEMM (float32)", result)
    lines += ["", "Times in ms per product (median over repeats); ratios are time / dense GEMM time, median "
              "(min–max) over repeats measured in the same run.", "",
              "| n | fast Cauchy | exact Cauchy | fast Vandermonde | exact Vandermonde | dense GEMM | fast Cauchy/dense "
              "| exact Cauchy/dense | fast Vandermonde/dense | exact Vandermonde/dense | Cauchy fast vs exact "
              "| Vandermonde fast vs exact | tree p, levels |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in result["cases"]:
        t, q = case["times_s"], case["ratios"]
        cell = lambda name: _env.fmt_ms(t[name]) if name in t else "–"  # noqa: E731
        ratio = lambda name: _env.fmt_ratio(q[f"{name}/dense"]) if f"{name}/dense" in q else "–"  # noqa: E731
        err = [case[k] for k in ("fast_vs_exact_relative_difference", "vandermonde_fast_vs_exact_relative_difference")]
        err = ["–" if e is None else f"{e:.1e}" for e in err]
        lines.append(f"| {case['n']} | {cell('cauchy_fast')} | {cell('cauchy_exact')} | {cell('vandermonde_fast')} | "
                     f"{cell('vandermonde_exact')} | {cell('dense')} | {ratio('cauchy_fast')} | {ratio('cauchy_exact')} | "
                     f"{ratio('vandermonde_fast')} | {ratio('vandermonde_exact')} | {err[0]} | {err[1]} | "
                     f"{case['tree']['p']}, {case['tree']['levels']} |")
    lines += ["", "Relative differences are ‖fast − exact‖ / ‖exact‖ over the batch (float32 / complex64 "
              "arithmetic on both sides). The dense GEMM is real float32; the Vandermonde matrices are complex64."]
    return "\n".join(lines)


def _plot(result, path):
    plt = _env.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, style in (("cauchy_fast", "o-"), ("cauchy_exact", "s--"), ("vandermonde_fast", "v-"),
                        ("vandermonde_exact", "^--"), ("dense", "k.-")):
        pts = [(c["n"], c["times_s"][name]["median"] * 1e3) for c in result["cases"] if name in c["times_s"]]
        if pts:
            ax.loglog(*zip(*pts), style, label=name, base=2)
    ax.set_xlabel("n (square, r = %d, batch %d)" % (result["settings"]["rank"], result["settings"]["batch"]))
    ax.set_ylabel("ms per W @ X (one thread, float32)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


main = _env.command_line(
    _parser, run, script="bench_node_kernels.py", stem=STEM, markdown=_markdown, plot=_plot, caption="time vs n",
    banner=lambda args: f"Cauchy/Vandermonde-like W @ X ({'quick' if args.quick else 'full'}), {args.threads} thread(s)",
)

if __name__ == "__main__":
    _env.ensure_process_settings(__file__, sys.argv[1:], _parser().parse_args(sys.argv[1:]).threads)
    sys.exit(main())

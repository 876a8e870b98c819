r"""Growth of Cauchy-like and Vandermonde-like ``W @ X`` with n, against a dense GEMM with W prebuilt.

float32, square n×n, displacement rank r = 4, a batch of 64 columns, one thread. Methods, timed in
one run with their order rotated between repeats (ratios are per repeat; see BENCHMARKING.md):

``cauchy_fast``
    ``ldr.cauchy_like(..., method="fast")`` on interlaced real nodes (``v_i = -1 + 2i/n``,
    ``u_j = v_j + 1/n``), default float32 tolerance 1e-5: the one-dimensional FMM of
    :mod:`ldr.fast_cauchy`.
``cauchy_exact``
    The same matrix, ``method="exact"``: streamed Cauchy tiles, one GEMM per tile (r·64 columns).
``vandermonde_exact``
    A Vandermonde-like matrix on unit-circle nodes (roots of -1), f = 1, complex64: r + 1 FFTs
    and streamed power tiles.
``vandermonde_fast``
    The same matrix, ``method="fast"``: the Vandermonde-to-Cauchy identity (diagonal route,
    f' = f = 1: one DFT of X) and the FMM on the unit circle, in complex64.
``dense``
    ``X @ W^T`` with a prebuilt real float32 n×n matrix (one GEMM, 64 columns).
``dense_complex``
    ``X @ W^T`` with a prebuilt complex64 n×n matrix (X cast beforehand): the dense product a
    complex Vandermonde-like W would need.

The exact paths cost O(r n²) per batch and are timed up to ``--exact-max`` (default 4096).
``--accuracy`` adds a table of the fast paths' errors against float64 dense oracles at one size
(clustered, separated, interlaced, complex, unit-circle nodes; float64 and float32), relative to
:math:`\|C\|_2 \|x\|` (Cauchy) or :math:`\|W\|_2 \|x\|` (Vandermonde). Run::

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
FULL = {"sizes": (256, 1024, 2048, 4096, 8192, 16384), "repeats": 3, "target_s": 0.05, "accuracy_n": 2048}
QUICK = {"sizes": (256, 1024, 2048, 4096), "repeats": 3, "target_s": 0.02, "accuracy_n": 512}
METHODS = ("cauchy_fast", "cauchy_exact", "vandermonde_fast", "vandermonde_exact", "dense", "dense_complex")


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
    p.add_argument("--no-accuracy", dest="accuracy", action="store_false", help="skip the error table")
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
    dense_c = (dense + 1j * dense).astype(np.complex64)
    Xc = X.astype(np.complex64)
    methods = {"cauchy_fast": lambda: fast.matvec(X), "vandermonde_fast": lambda: vand_fast.matvec(X),
               "vandermonde_t_fast": lambda: vand_fast.T.matvec(X),  # W^T x: the transposed identity
               "dense": lambda: X @ dense.T, "dense_complex": lambda: Xc @ dense_c.T}
    if n <= exact_max:
        methods["cauchy_exact"] = lambda: exact.matvec(X)
        methods["vandermonde_exact"] = lambda: vand.matvec(X)
        methods["vandermonde_t_exact"] = lambda: vand.T.matvec(X)
    times, calls = _env.measure(methods, repeats, target_s, clock, warmup=1)
    error = vand_error = vand_t_error = None
    if n <= exact_max:
        y_fast, y_exact = fast.matvec(X), exact.matvec(X)
        error = float(np.linalg.norm(y_fast - y_exact) / np.linalg.norm(y_exact))
        v_fast, v_exact = vand_fast.matvec(X), vand.matvec(X)
        vand_error = float(np.linalg.norm(v_fast - v_exact) / np.linalg.norm(v_exact))
        t_fast, t_exact = vand_fast.T.matvec(X), vand.T.matvec(X)
        vand_t_error = float(np.linalg.norm(t_fast - t_exact) / np.linalg.norm(t_exact))
    pairs = [(name, "dense") for name in methods if name != "dense"]
    pairs += [("vandermonde_fast", "dense_complex"), ("vandermonde_t_fast", "dense_complex")]
    plan = fast._fast_plan(np.dtype(f32), False)
    return {
        "n": n, "r": r, "batch": batch, "calls": calls,
        "times_s": {name: _env.summary(t) for name, t in times.items()},
        "ratios": _env.ratios(times, pairs),
        "fast_vs_exact_relative_difference": error,
        "vandermonde_fast_vs_exact_relative_difference": vand_error,
        "vandermonde_transpose_fast_vs_exact_relative_difference": vand_t_error,
        "tree": {"p": plan.p, "levels": plan.levels, "kind": plan.kind},
    }


def _power_norm(apply, apply_t, n, rng, iterations=30):
    """‖A‖₂ by power iteration on AᴴA (a lower bound: errors relative to it are upper bounds)."""
    import numpy as np

    x = rng.standard_normal(n) + 0j
    for _ in range(iterations):
        x = apply_t(apply(x))
        x /= np.linalg.norm(x)
    return float(np.linalg.norm(apply(x)))


def _accuracy(n, seed):
    """Fast-path errors against float64 dense oracles at size n (see the module docstring)."""
    import numpy as np

    import ldr

    rng = np.random.default_rng(seed)
    families = {
        "separated (real)": (rng.uniform(0, 1, n), rng.uniform(1.5, 4, n)),
        "interlaced 1e-9 (real)": (np.sort(rng.uniform(-1, 1, n)), np.sort(rng.uniform(-1, 1, n)) + 1e-9),
        "clustered 1e-4 (real)": (np.concatenate([rng.normal(0, 1e-4, n // 2), rng.normal(3, 1, n - n // 2)]),
                                  np.concatenate([rng.normal(2e-5, 1e-4, n // 2), rng.normal(3.01, 1, n - n // 2)])),
        "complex rows, real columns": (rng.standard_normal(n) + 1j * rng.standard_normal(n), rng.standard_normal(n)),
        "unit circle": (np.exp(2j * np.pi * (np.arange(n) + 0.5) / n), np.exp(1j * (2 * np.pi * np.arange(n) / n + 0.03))),
    }
    rows = []
    x = rng.standard_normal((4, n))
    for name, (v, u) in families.items():
        C = 1.0 / (v[:, None] - u[None, :])
        norm = _power_norm(lambda z: C @ z, lambda z: C.conj().T @ z, n, rng)
        exact = x @ C.T
        for dtype in ("float64", "float32"):
            low = {"float64": (np.float64, np.complex128), "float32": (np.float32, np.complex64)}[dtype]
            cast = lambda a: a.astype(low[1] if np.iscomplexobj(a) else low[0])  # noqa: E731
            vv, uu = cast(v), cast(u)
            # The oracle uses the rounded nodes: the error measured is the method's, not the rounding of v.
            Cr = 1.0 / (vv.astype(complex)[:, None] - uu.astype(complex)[None, :])
            W = ldr.cauchy_like(cast(np.ones((n, 1))), cast(np.ones((1, n))), vv, uu, method="fast")
            y = W.matvec(cast(x))
            plan = W._fast_plan(y.dtype, False)
            err = float(np.linalg.norm(y - x @ Cr.T) / (norm * np.linalg.norm(x)))
            rows.append({"kernel": "Cauchy", "nodes": name, "dtype": dtype, "method": plan.kind, "p": plan.p,
                         "error": err, "tol": 1e-12 if dtype == "float64" else 1e-5})
        del exact
    for name, v in (("roots of -1, f = 1", np.exp(1j * np.pi * (2 * np.arange(n) + 1) / n)),
                    ("jittered roots of -1, f = 1", np.exp(1j * np.pi * (2 * np.arange(n) + 1 + rng.uniform(-.3, .3, n)) / n)),
                    ("disc radius 0.9, f = 1", 0.9 * np.sqrt(rng.uniform(0, 1, n)) * np.exp(2j * np.pi * rng.uniform(0, 1, n)))):
        G, H = rng.standard_normal((n, 4)), rng.standard_normal((4, n))
        for dtype, cname in (("float64", np.complex128), ("float32", np.complex64)):
            vv, Gc, Hc = (a.astype(cname) for a in (v, G, H))
            D = ldr.vandermonde_like(Gc.astype(complex), Hc.astype(complex), vv.astype(complex), f=1.0, method="exact").dense()
            norm = _power_norm(lambda z: D @ z, lambda z: D.conj().T @ z, n, rng)
            W = ldr.vandermonde_like(Gc, Hc, vv, f=1.0, method="fast")
            y = W.matvec(x.astype(cname))
            vplan = next(iter(W._vplans.values()))
            err = float(np.linalg.norm(y - x @ D.T) / (norm * np.linalg.norm(x)))
            rows.append({"kernel": "Vandermonde", "nodes": name, "dtype": dtype, "method": vplan.plan.kind,
                         "p": vplan.plan.p, "error": err, "tol": 1e-12 if dtype == "float64" else 1e-5})
    return {"n": n, "rows": rows}


def run(quick=False, batch=64, rank=4, exact_max=4096, threads=1, clock="cpu", accuracy=True, progress=print):
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
        errors = _accuracy(preset["accuracy_n"], 99) if accuracy else None
    return {
        "benchmark": STEM,
        "settings": {"quick": quick, "batch": batch, "rank": rank, "exact_max": exact_max, "threads": threads,
                     "clock": clock, "dtype": "float32", "sizes": list(preset["sizes"]), "repeats": preset["repeats"]},
        "environment": _env.environment(),
        "cases": cases,
        "accuracy": errors,
    }


def _formatters(case):
    """Table cells of one case: a method's time in ms and a ratio, "–" where it was not measured."""
    t, q = case["times_s"], case["ratios"]
    return (lambda name: _env.fmt_ms(t[name]) if name in t else "–",
            lambda key: _env.fmt_ratio(q[key]) if key in q else "–")


def _markdown(result):
    lines = _env.markdown_header("Cauchy-like / Vandermonde-like `W @ X` vs dense GEMM (float32)", result)
    lines += ["", "Times in ms per product (median over repeats); ratios are time / dense GEMM time, median "
              "(min–max) over repeats measured in the same run. `dense` is a real float32 GEMM, `dense_complex` "
              "a complex64 one (the prebuilt form of a complex Vandermonde-like W).", "",
              "| n | fast Cauchy | exact Cauchy | fast Vandermonde | exact Vandermonde | dense GEMM | complex dense "
              "| fast Cauchy/dense | exact Cauchy/dense | fast Vandermonde/dense | fast Vandermonde/complex dense "
              "| exact Vandermonde/dense | Cauchy fast vs exact | Vandermonde fast vs exact | tree p, levels |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in result["cases"]:
        cell, ratio = _formatters(case)
        err = [case[k] for k in ("fast_vs_exact_relative_difference", "vandermonde_fast_vs_exact_relative_difference")]
        err = ["–" if e is None else f"{e:.1e}" for e in err]
        lines.append(f"| {case['n']} | {cell('cauchy_fast')} | {cell('cauchy_exact')} | {cell('vandermonde_fast')} | "
                     f"{cell('vandermonde_exact')} | {cell('dense')} | {cell('dense_complex')} | "
                     f"{ratio('cauchy_fast/dense')} | {ratio('cauchy_exact/dense')} | {ratio('vandermonde_fast/dense')} | "
                     f"{ratio('vandermonde_fast/dense_complex')} | {ratio('vandermonde_exact/dense')} | {err[0]} | {err[1]} | "
                     f"{case['tree']['p']}, {case['tree']['levels']} |")
    lines += ["", "Relative differences are ‖fast − exact‖ / ‖exact‖ over the batch (float32 / complex64 "
              "arithmetic on both sides).", "",
              "The transpose of the Vandermonde-like matrix, `W.T @ X` (the transposed Vandermonde-to-Cauchy "
              "identity; exact: the streamed power sums):", "",
              "| n | fast Wᵀx | exact Wᵀx | fast Wᵀx/complex dense | exact Wᵀx/dense | fast vs exact |",
              "|---:|---:|---:|---:|---:|---:|"]
    for case in result["cases"]:
        cell, ratio = _formatters(case)
        err = case.get("vandermonde_transpose_fast_vs_exact_relative_difference")
        lines.append(f"| {case['n']} | {cell('vandermonde_t_fast')} | {cell('vandermonde_t_exact')} | "
                     f"{ratio('vandermonde_t_fast/dense_complex')} | {ratio('vandermonde_t_exact/dense')} | "
                     f"{'–' if err is None else f'{err:.1e}'} |")
    acc = result.get("accuracy")
    if acc:
        lines += ["", f"## Accuracy of the fast paths (n = {acc['n']}, default tolerances)", "",
                  "Error ‖fast − dense‖ / (‖K‖₂ ‖x‖) against a float64 dense oracle built from the same (rounded) nodes, "
                  "K = C(v, u) or the Vandermonde-like W (‖K‖₂ by power iteration), four right-hand sides.", "",
                  "| kernel | nodes | dtype | method | p | error | tol |", "|---|---|---|---|---:|---:|---:|"]
        for row in acc["rows"]:
            lines.append(f"| {row['kernel']} | {row['nodes']} | {row['dtype']} | {row['method']} | {row['p']} | "
                         f"{row['error']:.1e} | {row['tol']:.0e} |")
    return "\n".join(lines)


def _plot(result, path):
    plt = _env.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, style in (("cauchy_fast", "o-"), ("cauchy_exact", "s--"), ("vandermonde_fast", "v-"),
                        ("vandermonde_exact", "^--"), ("dense", "k.-"), ("dense_complex", "k:")):
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

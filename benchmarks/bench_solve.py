r"""Direct solves with ``ldr.solve`` against dense LU and Levinson, and their backward errors.

For each size n, one run times, in turn, on the same random Toeplitz matrix T (first column and
row standard normal) and right-hand side b:

``ldr``
    ``ldr.solve(W, b)`` with its defaults, W = ``ldr.toeplitz(c, r)``: a plain Toeplitz matrix
    takes the Levinson route (two Levinson solves for the first and last columns of
    :math:`T^{-1}`, then Gohberg–Semencul products in :math:`O(n \log n)` for the solve, its
    refinement, the backward-error check and the condition bound), with the pivoted elimination
    as a fallback.
``ldr_nocheck``
    The same with ``check=False`` (no condition estimate).
``dense_lu``
    :func:`scipy.linalg.solve` on the dense matrix (LAPACK ``gesv`` plus its condition
    estimate), :math:`O(n^3)`.
``levinson``
    :func:`scipy.linalg.solve_toeplitz` (Levinson–Durbin, :math:`O(n^2)`, no pivoting; plain
    Toeplitz only).

and, for each of ``--ranks``, the same comparison with dense LU on a Toeplitz-like matrix with
random generators of that displacement rank (n ≤ 2048), which takes the elimination on the
generators (DFTs to a Cauchy-like matrix, blocked Gaussian elimination with partial pivoting,
:math:`O(rn^2)`, one refinement step and Hager's estimate). Accuracy: the backward error
:math:`\lVert Tx - b\rVert_1 / (\lVert T\rVert_1 \lVert x\rVert_1)` of every method, on the
random matrices above and on ill-conditioned ones (Kac–Murdock–Szegő :math:`\rho^{|i-j|}` with
:math:`\rho = 1 - 10^{-4}`, condition ~1e9, and the prolate matrix, condition up to ~1e15), and
for one matrix of every class at n = 512 against dense LU.

Batches (B Toeplitz-like matrices of order n, r = 2, one right-hand side each): ``ldr.solve`` on
the batch (its elimination takes every entry in each step up to ``ldr.gko.BATCH_MAX_N``) against
a Python loop of ``ldr.solve`` over the entries and against ``numpy.linalg.solve`` on the dense
stack.

Every figure is a ratio of times measured in the same repeat (methods' order rotated), on one
thread, in process CPU time (``shared/BENCHMARKING.md``). Run::

    python benchmarks/bench_solve.py            # full: n = 256 ... 8192, ~15 minutes on 2 cores
    python benchmarks/bench_solve.py --quick    # n = 256, 1024: about a minute

Writes ``benchmarks/results/solve/solve.{json,md,png}`` (``--out`` changes the folder).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

__all__ = ["main", "run"]

FULL = {"sizes": (256, 512, 1024, 2048, 4096, 8192), "ranks": (2, 4), "repeats": 3, "target_s": 0.05,
        "accuracy_sizes": (256, 1024, 2048), "batches": ((64, 64), (16, 256), (8, 512))}
QUICK = {"sizes": (256, 1024), "ranks": (4,), "repeats": 3, "target_s": 0.02, "accuracy_sizes": (256,),
         "batches": ((16, 64),)}
STEM = "solve"
# Dense LU at 8192 takes ~30 s per call on one core: its repeats are capped separately.
DENSE_LIMIT_REPEATS = {8192: 1, 4096: 2}


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n = 256, 1024 only (about a minute)")
    p.add_argument("--sizes", type=int, nargs="+", help="override the sizes n")
    p.add_argument("--ranks", type=int, nargs="+", help="displacement ranks of the random Toeplitz-like rows")
    p.add_argument("--repeats", type=int, help="override the number of repeats")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (default 1)")
    p.add_argument("--clock", choices=tuple(_env.CLOCKS), default="cpu", help="cpu (default) or wall time")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR / "solve", help="results folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


# -- accuracy ---------------------------------------------------------------------------------------
def _backward_error(np, D, x, b):
    """‖D x − b‖₁ / (‖D‖₁ ‖x‖₁), the normwise backward error in the 1-norm."""
    return float(np.abs(D @ x - b).sum() / (np.abs(D).sum(axis=0).max() * np.abs(x).sum()))


def _solvers(np, scipy_linalg, ldr, c, r):
    W = ldr.toeplitz(c, r)
    D = scipy_linalg.toeplitz(c, r)
    return W, D, {
        "ldr": lambda b: ldr.solve(W, b),
        "dense_lu": lambda b: scipy_linalg.solve(D, b),
        "levinson": lambda b: scipy_linalg.solve_toeplitz((c, r), b),
    }


def _ill_conditioned(np, n, kind):
    if kind == "kms":
        column = (1 - 1e-4) ** np.arange(n)
        return column, column.copy()
    # Prolate matrix: sin(2 pi w k) / (pi k), w = 0.45; its condition number grows exponentially.
    k = np.arange(1, n)
    column = np.concatenate([[2 * 0.45], np.sin(2 * np.pi * 0.45 * k) / (np.pi * k)])
    return column, column.copy()


def _accuracy(np, scipy_linalg, ldr, sizes, seed):
    rows = []
    rng = np.random.default_rng(seed)
    for n in sizes:
        cases = {"random": (rng.standard_normal(n), rng.standard_normal(n))}
        cases["kms"] = _ill_conditioned(np, n, "kms")
        cases["prolate"] = _ill_conditioned(np, n, "prolate")
        for kind, (c, r) in cases.items():
            r = r.copy()
            r[0] = c[0]
            W, D, solvers = _solvers(np, scipy_linalg, ldr, c, r)
            b = rng.standard_normal(n)
            row = {"n": n, "matrix": kind, "cond_1": float(np.linalg.cond(D, 1)), "backward_error": {}, "warned": {}}
            for name, solve in solvers.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        x = solve(b)
                    except np.linalg.LinAlgError as exc:
                        row["backward_error"][name] = None
                        row["warned"][name] = f"error: {exc}"
                        continue
                row["backward_error"][name] = _backward_error(np, D, x, b)
                row["warned"][name] = "; ".join(str(w.message)[:80] for w in caught) or None
            eta = row["backward_error"]
            row["ldr_over_dense_lu"] = eta["ldr"] / eta["dense_lu"] if eta["dense_lu"] else None
            rows.append(row)
    return rows


def _every_class(np, scipy_linalg, ldr, n, seed):
    """Backward error of ldr.solve and of dense LU for one matrix of every class."""
    rng = np.random.default_rng(seed)
    g, h = rng.standard_normal((n, 3)), rng.standard_normal((3, n))
    angles = 2 * np.pi * (np.arange(n) + 0.5) / n
    matrices = {
        "toeplitz_like (Z_1, Z_-1)": ldr.toeplitz_like(g, h),
        "toeplitz_like (Z_0, Z_1)": ldr.toeplitz_like(g, h, e=0.0, f=1.0),
        "hankel_like": ldr.hankel_like(g, h),
        "vandermonde_like (unit-circle nodes, f=1)": ldr.vandermonde_like(g, h, np.exp(1j * angles), f=1.0),
        "cauchy_like": ldr.cauchy_like(g, h, np.exp(1j * angles), 1.5 * np.exp(1j * (angles + 0.01))),
        "low_rank (r = n + 1)": ldr.low_rank(rng.standard_normal((n, n + 1)), rng.standard_normal((n + 1, n))),
    }
    rows = []
    for name, W in matrices.items():
        D = W.dense()
        b = rng.standard_normal(n)
        rows.append({
            "class": name,
            "n": n,
            "cond_1": float(np.linalg.cond(D, 1)),
            "ldr": _backward_error(np, D, ldr.solve(W, b), b),
            "dense_lu": _backward_error(np, D, scipy_linalg.solve(D, b), b),
        })
    return rows


# -- timing ---------------------------------------------------------------------------------------
def _timing_case(np, scipy_linalg, ldr, n, rank, repeats, target_s, clock, seed):
    """One size: ``rank=None`` is the plain Toeplitz matrix, otherwise random generators of that rank."""
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(n)
    plain = rank is None
    if plain:
        c, r = rng.standard_normal(n), rng.standard_normal(n)
        r[0] = c[0]
        W = ldr.toeplitz(c, r)
        D = scipy_linalg.toeplitz(c, r)
    else:
        W = ldr.toeplitz_like(rng.standard_normal((n, rank)) / math.sqrt(n), rng.standard_normal((rank, n)))
        D = W.dense()
    methods = {
        "ldr": lambda: ldr.solve(W, b),
        "ldr_nocheck": lambda: ldr.solve(W, b, check=False),
        "dense_lu": lambda: scipy_linalg.solve(D, b, check_finite=False),
    }
    if plain:
        methods["levinson"] = lambda: scipy_linalg.solve_toeplitz((c, r), b, check_finite=False)
    # The slow methods get one call per block and no warm-up beyond one call.
    reps = min(repeats, DENSE_LIMIT_REPEATS.get(n, repeats))
    times, calls = _env.measure(methods, reps, target_s, clock, warmup=0 if n >= 4096 else 1)
    pairs = [("ldr", "dense_lu"), ("ldr_nocheck", "dense_lu")]
    if plain:
        pairs += [("ldr", "levinson"), ("ldr_nocheck", "levinson")]
    x = ldr.solve(W, b)
    return {
        "n": n,
        "r": 2 if plain else rank,
        "plain": plain,
        "matrix": "toeplitz (random column and row)" if plain else f"toeplitz_like r={rank} (random generators)",
        "repeats": reps,
        "calls_per_block": calls,
        "times_s": {name: _env.summary(v) for name, v in times.items()},
        "ratios": _env.ratios(times, pairs),
        "ldr_backward_error": _backward_error(np, D, x, b),
    }


def _batch_case(np, ldr, batch, n, repeats, target_s, clock, seed):
    """A batch of ``batch`` Toeplitz-like matrices of order n (r = 2): one batched call against a loop."""
    rng = np.random.default_rng(seed)
    G, H = rng.standard_normal((batch, n, 2)) / math.sqrt(n), rng.standard_normal((batch, 2, n))
    W = ldr.toeplitz_like(G, H)
    entries = [ldr.toeplitz_like(G[i], H[i]) for i in range(batch)]
    D = W.dense()
    b = rng.standard_normal((batch, n, 1))
    methods = {
        "ldr_batched": lambda: ldr.solve(W, b),
        "ldr_loop": lambda: [ldr.solve(entries[i], b[i]) for i in range(batch)],
        "dense_lu_batched": lambda: np.linalg.solve(D, b),
    }
    times, calls = _env.measure(methods, repeats, target_s, clock, warmup=1)
    x = ldr.solve(W, b)
    eta = max(_backward_error(np, D[i], x[i, :, 0], b[i, :, 0]) for i in range(batch))
    return {
        "batch": batch,
        "n": n,
        "repeats": repeats,
        "calls_per_block": calls,
        "times_s": {name: _env.summary(v) for name, v in times.items()},
        "ratios": _env.ratios(times, [("ldr_batched", "ldr_loop"), ("ldr_batched", "dense_lu_batched")]),
        "ldr_backward_error": eta,
    }


def _targets(cases, accuracy=(), classes=()):
    rows = []
    for row in accuracy:
        eta = row["backward_error"]["ldr"]
        if row["matrix"] == "random":
            rows.append({"target": "backward error <= 1e-12 (well-conditioned)", "case": f"toeplitz n={row['n']}",
                         "median_ratio": eta, "met": eta is not None and eta <= 1e-12})
        elif row["ldr_over_dense_lu"] is not None:
            value = row["ldr_over_dense_lu"]
            rows.append({"target": "backward error within 10x of dense LU (ill-conditioned)",
                         "case": f"{row['matrix']} n={row['n']} (cond {row['cond_1']:.0e})", "median_ratio": value,
                         "met": value <= 10})
    for row in classes:
        if row["cond_1"] < 1e12:
            rows.append({"target": "backward error <= 1e-12 (well-conditioned)", "case": f"{row['class']} n={row['n']}",
                         "median_ratio": row["ldr"], "met": row["ldr"] <= 1e-12})
    for case in cases:
        n, ratios = case["n"], case["ratios"]
        if n >= 1024 and not case["plain"]:
            value = ratios["ldr/dense_lu"]["median"]
            rows.append({"target": "ldr.solve faster than dense LU (n >= 1024)", "case": f"toeplitz_like r={case['r']} n={n}",
                         "median_ratio": value, "met": value < 1})
        if n >= 2048 and case["plain"]:
            value = ratios["ldr/levinson"]["median"]
            rows.append({"target": "within 3x of solve_toeplitz (n >= 2048)", "case": f"toeplitz n={n}",
                         "median_ratio": value, "met": value <= 3})
    return rows


def run(quick=False, sizes=None, ranks=None, repeats=None, clock="cpu", progress=print):
    """Run the benchmark; returns the result dictionary (see the module docstring)."""
    import numpy as np
    import scipy.linalg

    import ldr

    load_start = os.getloadavg()  # the machine may be shared: recorded with the results
    config = dict(QUICK if quick else FULL)
    sizes = tuple(sizes or config["sizes"])
    ranks = tuple(ranks or config["ranks"])
    repeats = repeats or config["repeats"]
    timer = _env.CLOCKS[clock]
    cases = []
    for rank in (None,) + ranks:
        for n in sizes:
            if rank is not None and n > 2048:
                continue  # the Toeplitz-like rows show the r dependence; the plain Toeplitz rows the scaling
            case = _timing_case(np, scipy.linalg, ldr, n, rank, repeats, config["target_s"], timer, seed=n + (rank or 2))
            cases.append(case)
            progress(f"  {case['matrix']} n={n}: " + ", ".join(f"{k} {_env.fmt_ratio(v)}" for k, v in case["ratios"].items()))
    batches = []
    for batch, n in config["batches"]:
        row = _batch_case(np, ldr, batch, n, repeats, config["target_s"], timer, seed=batch + n)
        batches.append(row)
        progress(f"  batch of {batch}, n={n}: " + ", ".join(f"{k} {_env.fmt_ratio(v)}" for k, v in row["ratios"].items()))
    accuracy = _accuracy(np, scipy.linalg, ldr, config["accuracy_sizes"], seed=1)
    progress("  accuracy done")
    classes = _every_class(np, scipy.linalg, ldr, 512 if not quick else 128, seed=2)
    return {
        "benchmark": "ldr.solve vs dense LU and Levinson",
        "environment": _env.environment(),
        "clock": clock,
        "cases": cases,
        "batches": batches,
        "accuracy": accuracy,
        "every_class": classes,
        "targets": _targets(cases, accuracy, classes),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
    }


def _fmt(value):
    return "—" if value is None else f"{value:.2e}"


def _markdown(result):
    lines = _env.markdown_header("`ldr.solve`: direct solves on the generators", result)
    if "load_average" in result:
        start, end = (", ".join(f"{v:.2f}" for v in result["load_average"][k]) for k in ("start", "end"))
        lines += [f"- Load average (1, 5, 15 min) at the start: {start}; at the end: {end}"]
    lines += [""]
    lines += ["## Time (median over repeats; ratios within a repeat: median (min–max))", "",
              "| matrix | n | ldr ms | ldr_nocheck ms | dense LU ms | Levinson ms | ldr / dense LU | ldr / Levinson | ldr_nocheck / Levinson |",
              "|---|---|---|---|---|---|---|---|---|"]
    for case in result["cases"]:
        lines.append(_timing_row(case, [case["matrix"], case["n"]], ["ldr", "ldr_nocheck", "dense_lu", "levinson"],
                                 ["ldr/dense_lu", "ldr/levinson", "ldr_nocheck/levinson"]))
    if result.get("batches"):
        lines += ["", "## Batches of Toeplitz-like matrices (r = 2): one call for the batch", "",
                  "`ldr_batched` = `ldr.solve(W, b)` with W of batch shape (B,); `ldr_loop` = a Python loop of "
                  "`ldr.solve` over the entries; `dense_lu_batched` = `numpy.linalg.solve` on the (B, n, n) "
                  "stack (LAPACK, batched in C).", "",
                  "| B | n | ldr_batched ms | ldr_loop ms | dense LU ms | batched / loop | batched / dense LU | "
                  "max backward error |", "|---|---|---|---|---|---|---|---|"]
        for row in result["batches"]:
            lines.append(_timing_row(row, [row["batch"], row["n"]], ["ldr_batched", "ldr_loop", "dense_lu_batched"],
                                     ["ldr_batched/ldr_loop", "ldr_batched/dense_lu_batched"],
                                     [_fmt(row["ldr_backward_error"])]))
    lines += ["", "## Backward error ‖Tx − b‖₁ / (‖T‖₁‖x‖₁), Toeplitz matrices", "",
              "| n | matrix | cond₁ | ldr | dense LU | Levinson | ldr / dense LU | notes |", "|---|---|---|---|---|---|---|---|"]
    for row in result["accuracy"]:
        e = row["backward_error"]
        notes = "; ".join(f"{k}: {v}" for k, v in row["warned"].items() if v)
        ratio = row["ldr_over_dense_lu"]
        lines.append(f"| {row['n']} | {row['matrix']} | {row['cond_1']:.1e} | {_fmt(e['ldr'])} | {_fmt(e['dense_lu'])} | "
                     f"{_fmt(e['levinson'])} | {'—' if ratio is None else f'{ratio:.2g}'} | {notes} |")
    lines += ["", "## Backward error, one matrix of every class", "", "| class | n | cond₁ | ldr | dense LU |",
              "|---|---|---|---|---|"]
    for row in result["every_class"]:
        lines.append(f"| {row['class']} | {row['n']} | {row['cond_1']:.1e} | {_fmt(row['ldr'])} | {_fmt(row['dense_lu'])} |")
    lines += [""] + _targets_markdown(result["targets"])
    return "\n".join(lines)


def _timing_row(case, first, methods, ratios, last=()):
    """A table row: ``first`` cells, the methods' times, the ratios (— when absent), ``last`` cells."""
    t, q = case["times_s"], case["ratios"]
    cells = [str(c) for c in first]
    cells += [_env.fmt_ms(t[m]) if m in t else "—" for m in methods]
    cells += [_env.fmt_ratio(q[k]) if k in q else "—" for k in ratios]
    return "| " + " | ".join(cells + list(last)) + " |"


def _targets_markdown(rows):
    """Like ``_env.targets_markdown``, with values in ``%.3g`` (backward errors are ~1e-17)."""
    lines = ["", "## Targets (issue 17)", "", "| target | case | value (time ratio or backward error) | met |",
             "|---|---|---:|---|"]
    for row in rows:
        value = row["median_ratio"]
        lines.append(f"| {row['target']} | {row['case']} | {'—' if value is None else f'{value:.3g}'} | "
                     f"{'yes' if row['met'] else '**no**'} |")
    return lines + ["", f"{sum(row['met'] for row in rows)} of {len(rows)} target checks met.", ""]


def _plot(result, path):
    styles = {
        "ldr": ("ldr.solve", "C0", "o-"),
        "ldr_nocheck": ("ldr.solve(check=False)", "C9", "o--"),
        "dense_lu": ("scipy.linalg.solve (dense LU)", "C3", "s-"),
        "levinson": ("scipy.linalg.solve_toeplitz", "C2", "^-"),
    }
    matrices = list(dict.fromkeys(c["matrix"] for c in result["cases"]))
    grid = [[(name.split(" (")[0], [c for c in result["cases"] if c["matrix"] == name]) for name in matrices]]
    _env.plot_time_grid(path, grid, styles, title="Direct solve, one thread (CPU time)", xlabel="n",
                        ylabel="time per solve (ms)", n2_through="ldr")


main = _env.command_line(
    _parser, run, script="bench_solve.py", stem=STEM, markdown=_markdown, plot=_plot, caption="time vs n",
    banner=lambda args: f"ldr.solve ({'quick' if args.quick else 'full'}), {args.threads} thread(s)",
)

if __name__ == "__main__":
    _env.ensure_process_settings(__file__, sys.argv[1:], _parser().parse_args(sys.argv[1:]).threads)
    sys.exit(main())

r"""Speed of the torch backend: Toeplitz-like ``W @ X`` (float32, CPU) against dense and bare FFTs.

For each size n, displacement rank r and batch b, ``X`` has shape (b, n) (the ``F.linear``
convention) and ``W`` is the square Toeplitz-like weight of ``ldr.nn.LDRLinear(n, n,
structure="toeplitz_like", rank=r, bias=False)``, operators (Z_1, Z_-1). One run times, in turn:

Forward (under ``torch.no_grad``)
    ``layer``: ``layer(X)``, which rebuilds ``W`` and its generator spectra on every call (as in
    training); ``cached``: ``W.matvec(X)`` with ``W = layer.ldr_matrix()`` built once (spectra
    cached, as in inference); ``dense``: ``F.linear(X, D)`` with the prebuilt dense weight ``D``;
    ``bare_fft``: only the transforms that the product performs, on preallocated inputs of the
    same shapes; ``bare_fft_2n``: the 2r + 2 real transforms of length ``fft_length(n)`` (about
    2n) of the plain algorithm.
Forward + backward
    ``layer_fb``: ``layer(X)`` and ``torch.autograd.grad`` with respect to G, H and X (X
    requires grad, as for a hidden layer; the layer's custom backward reuses the forward's
    spectra, :func:`ldr.nn.square_toeplitz_like_matvec`); ``matvec_fb``: the same through
    autograd of the core's ``W.matvec`` (the layer's product before the custom backward);
    ``plain_fb``: a plain implementation, 2(r + 1) real FFTs of length ``fft_length(n)`` per
    row (both sides zero-padded and folded) under autograd, the comparison of issue 18
    (target ``layer_fb / plain_fb <= 0.7`` at n >= 1024); ``dense_fb``: ``F.linear(X, D)`` with
    respect to D and X. The floor quoted for it is twice ``bare_fft``: autograd's backward of
    each batch transform is one transform of the same size.

The machines are shared and noisy (±35 % between runs), so every figure reported is a ratio of
times measured in the same repeat, the methods' order rotated between repeats; the median and
the range over the repeats are reported. By default everything runs on one thread and is timed
in process CPU time, which other jobs disturb far less than elapsed time; ``--threads N`` uses N
intra-op threads and wall time. Run::

    python benchmarks/bench_torch.py            # full: 18 cases, about 10-15 minutes on 2 cores
    python benchmarks/bench_torch.py --quick    # about a minute

Writes ``benchmarks/results/torch_toeplitz_like.{json,md,png}`` (``--out`` changes the folder;
``--no-plot`` skips the PNG). The PNG plots, on log-log axes, the time of every method against n,
one panel per (batch, rank), with guides of n² and n log n growth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

__all__ = ["main", "run"]

FULL = {"sizes": (256, 1024, 4096), "ranks": (1, 4, 16), "batches": (64, 1024), "repeats": 5, "target_s": 0.15}
QUICK = {"sizes": (256, 1024), "ranks": (1, 4), "batches": (64,), "repeats": 3, "target_s": 0.04}
STEM = "torch_toeplitz_like"


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes, ranks, batches and repeats (about a minute)")
    p.add_argument("--sizes", type=int, nargs="+", help="override the sizes n")
    p.add_argument("--ranks", type=int, nargs="+", help="override the displacement ranks r")
    p.add_argument("--batches", type=int, nargs="+", help="override the batch sizes b")
    p.add_argument("--repeats", type=int, help="override the number of repeats")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op (and OMP/MKL) threads; default 1, timed in process CPU time")
    p.add_argument("--clock", choices=tuple(_env.CLOCKS),
                   help="cpu (default with one thread) or wall (default with several)")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR, help="results folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


# -- one case ---------------------------------------------------------------------------------------
def _transforms(torch, n, r, b, e, f):
    """The transforms of one square Toeplitz-like product as (kind, shape, length) triples.

    Mirrors ``ToeplitzLike._matvec``: the f side (first) and the e side (second) each use
    ``_transform_length(n, weight)`` (length n for a plain circulant side of a 5-smooth n, else
    ``fft_length(n)``).
    """
    from ldr.toeplitz_like import _transform_length

    lf, le = _transform_length(n, f), _transform_length(n, e)
    return [("rfft", (b, n), lf), ("irfft", (b, r, lf // 2 + 1), lf), ("rfft", (b, r, n), le), ("irfft", (b, le // 2 + 1), le)]


def _bare(torch, plan, generator):
    """A callable running the transforms of ``plan`` on preallocated inputs."""
    inputs = []
    for kind, shape, length in plan:
        if kind == "rfft":
            inputs.append((torch.fft.rfft, torch.randn(shape, generator=generator), length))
        else:
            data = torch.randn(shape + (2,), generator=generator)
            inputs.append((torch.fft.irfft, torch.view_as_complex(data), length))

    def bare():
        for transform, data, length in inputs:
            transform(data, n=length)

    return bare


def _plain_matvec(torch, G, H, x, e, f):
    """The plain Toeplitz-like product: 2(r + 1) real FFTs of length fft_length(n), folded, autograd."""
    from ldr.krylov import fft_length

    n = x.shape[-1]
    L = fft_length(n)

    def fold(c, weight):
        head, wrap = c[..., :n], c[..., n : 2 * n - 1]
        return head + weight * torch.nn.functional.pad(wrap, (0, 1))

    t = fold(torch.fft.irfft(torch.fft.rfft(H.flip(-1), n=L) * torch.fft.rfft(x, n=L).unsqueeze(-2), n=L), f)
    acc = (torch.fft.rfft(G.t(), n=L) * torch.fft.rfft(t, n=L)).sum(-2)
    return fold(torch.fft.irfft(acc, n=L), e) / (e - f)


def _case(torch, n, r, b, repeats, target_s, seed, clock):
    import torch.nn.functional as F

    import ldr
    from ldr.krylov import fft_length
    from ldr.nn import LDRLinear

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = LDRLinear(n, n, structure="toeplitz_like", rank=r, bias=False)
    X = torch.randn(b, n, generator=generator)
    gY = torch.randn(b, n, generator=generator)
    with torch.no_grad():
        W = layer.ldr_matrix()
        D = layer.dense_weight().contiguous()
    e, f = layer.structure_kwargs["e"], layer.structure_kwargs["f"]
    plan = _transforms(torch, n, r, b, e, f)
    bare = _bare(torch, plan, generator)
    bare_2n = _bare(torch, [(k, s[:-1] + (fft_length(n) // 2 + 1,) if k == "irfft" else s, fft_length(n))
                            for k, s, _ in plan], generator)
    Xg = X.clone().requires_grad_(True)
    Dg = D.clone().requires_grad_(True)
    params = [layer.G, layer.H, Xg]

    def layer_forward():
        with torch.no_grad():
            return layer(X)

    def cached_forward():
        with torch.no_grad():
            return W.matvec(X)

    def dense_forward():
        with torch.no_grad():
            return F.linear(X, D)

    def layer_fb():
        return torch.autograd.grad(layer(Xg), params, gY)

    def dense_fb():
        return torch.autograd.grad(F.linear(Xg, Dg), [Dg, Xg], gY)

    def matvec_fb():
        return torch.autograd.grad(layer.ldr_matrix().matvec(Xg), params, gY)

    def plain_fb():
        return torch.autograd.grad(_plain_matvec(torch, layer.G, layer.H, Xg, e, f), params, gY)

    methods = {
        "layer": layer_forward, "cached": cached_forward, "dense": dense_forward, "bare_fft": bare,
        "bare_fft_2n": bare_2n, "layer_fb": layer_fb, "dense_fb": dense_fb, "matvec_fb": matvec_fb,
        "plain_fb": plain_fb,
    }
    times, calls = _env.measure(methods, repeats, target_s, clock)
    reference = dense_forward().double()
    error = float((layer_forward().double() - reference).norm() / reference.norm())
    # The three backward implementations agree (the plain one is the independent check).
    grads = [torch.cat([g.reshape(-1) for g in fb()]).double() for fb in (layer_fb, matvec_fb, plain_fb)]
    grad_error = max(float((g - grads[2]).norm() / grads[2].norm()) for g in grads[:2])
    return {
        "n": n, "r": r, "batch": b, "e": e, "f": f,
        "transforms": [{"kind": k, "shape": list(s), "length": length} for k, s, length in plan],
        "fft_length_2n": fft_length(n),
        "calls_per_block": calls,
        "times_s": {name: _env.summary(v) for name, v in times.items()},
        "ratios": _env.ratios(times, [
            ("layer", "bare_fft", 1), ("cached", "bare_fft", 1), ("layer", "bare_fft_2n", 1),
            ("layer", "dense", 1), ("cached", "dense", 1), ("layer_fb", "dense_fb", 1),
            ("layer_fb", "bare_fft", 2), ("layer_fb", "plain_fb", 1), ("matvec_fb", "plain_fb", 1),
        ]),
        "relative_error_vs_dense": error,
        "gradient_relative_error_vs_plain": grad_error,
        "torch_version": torch.__version__,
        "ldr_version": ldr.__version__,
    }


def _targets(cases):
    """The performance checks, on median ratios of the training-style forward (``layer``)."""
    rows = []
    for c in cases:
        if c["n"] < 1024:
            continue
        label = f"n={c['n']} r={c['r']} b={c['batch']}"
        value = c["ratios"]["layer/bare_fft"]["median"]
        rows.append({"target": "forward <= 1.5x bare FFT (n >= 1024)", "case": label, "median_ratio": value,
                     "met": value <= 1.5})
        if c["r"] <= 4:
            value = c["ratios"]["layer/dense"]["median"]
            rows.append({"target": "forward < dense (n >= 1024, r <= 4)", "case": label, "median_ratio": value,
                         "met": value < 1.0})
        value = c["ratios"]["layer_fb/plain_fb"]["median"]
        rows.append({"target": "fwd+bwd <= 0.7x plain 2(r+1)-FFT (n >= 1024)", "case": label,
                     "median_ratio": value, "met": value <= 0.7})
    return rows


# -- output -----------------------------------------------------------------------------------------
def _row(case):
    t, q = case["times_s"], case["ratios"]
    ms, ratio = _env.fmt_ms, _env.fmt_ratio
    return (f"| {case['n']} | {case['r']} | {case['batch']} | {ms(t['layer'])} | {ms(t['cached'])} | "
            f"{ms(t['dense'])} | {ms(t['bare_fft'])} | {ratio(q['layer/bare_fft'])} | "
            f"{ratio(q['layer/bare_fft_2n'])} | {ratio(q['layer/dense'])} | {ratio(q['cached/dense'])} | "
            f"{ms(t['layer_fb'])} | {ratio(q['layer_fb/dense_fb'])} | {ratio(q['layer_fb/2bare_fft'])} | "
            f"{ratio(q['layer_fb/plain_fb'])} | {ratio(q['matvec_fb/plain_fb'])} | "
            f"{case['relative_error_vs_dense']:.1e} |")


def _markdown(result):
    env, settings = result["environment"], result["settings"]
    used = env["settings"]["environment_used"]
    lines = _env.markdown_header("Toeplitz-like `W @ X` on the torch backend (float32, CPU)", result) + [
        f"- Versions: torch {env['versions'].get('torch')}, numpy {env['versions']['numpy']}, "
        f"python {env['versions']['python']}",
        f"- Threads: torch.get_num_threads() = {env['settings'].get('torch_num_threads')}; "
        f"OMP/MKL_NUM_THREADS = {used.get('OMP_NUM_THREADS')}",
        f"- Clock: {'process CPU time' if settings['clock'] == 'cpu' else 'wall-clock time'}; "
        f"{settings['repeats']} repeats, each time one block of calls lasting ≥ {settings['target_s']} s; "
        "the methods' order rotated between repeats. Ratios are per repeat: median (min–max).",
        "",
        "Operators (Z_1, Z_-1), square n×n, weight from `ldr.nn.LDRLinear(n, n, rank=r, bias=False)`. "
        "`layer` = `layer(X)` under no_grad (rebuilds W and its generator spectra, as in training); "
        "`cached` = `W.matvec(X)` with W built once; `dense` = `F.linear` with the prebuilt weight; "
        "`bare FFT` = the transforms the product performs (r + 1 real transforms of length ≈ 2n for "
        "the Z_-1 side, r + 1 of length n for the circulant Z_1 side when n is 5-smooth); "
        "`bare 2n` = 2r + 2 transforms of length ≈ 2n (the plain algorithm). fwd+bwd: gradients "
        "with respect to G, H and X vs `F.linear` with respect to D and X; its floor is 2× bare FFT. "
        "`plain` = 2(r + 1) real FFTs of length ≈ 2n under autograd; `autograd matvec` = the core's "
        "`W.matvec` under autograd (the layer before its custom backward). "
        "Times in ms (median).",
        "",
        "| n | r | b | layer | cached | dense | bare FFT | layer / bare FFT | layer / bare 2n "
        "| layer / dense | cached / dense | fwd+bwd ms | fwd+bwd / dense | fwd+bwd / 2 bare "
        "| fwd+bwd / plain | autograd matvec fwd+bwd / plain | rel. err |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *map(_row, result["cases"]),
    ]
    lines += _env.targets_markdown(result["targets"], "Performance checks, on the median ratio of `layer`")
    return "\n".join(lines)


# Forward: solid lines; forward + backward: dashed, in the colour of the same method's forward.
_STYLES = {
    "layer": ("LDR forward, layer(X) (rebuilds W)", "C0", "o-"),
    "cached": ("LDR forward, W built once", "C9", "v-"),
    "dense": ("dense forward, F.linear", "C3", "s-"),
    "bare_fft": ("bare FFTs of the product", "C2", "^-"),
    "bare_fft_2n": ("bare 2r+2 FFTs of length ≈ 2n", "C2", "x:"),
    "layer_fb": ("LDR forward + backward", "C0", "o--"),
    "dense_fb": ("dense forward + backward", "C3", "s--"),
}


def _plot(result, path):
    """Log-log time vs n of every method: one panel per batch size (rows) and rank (columns)."""
    cases, settings, env = result["cases"], result["settings"], result["environment"]
    ranks = sorted({c["r"] for c in cases})
    grid = [[(f"Toeplitz-like r = {r}, batch {b}", [c for c in cases if c["batch"] == b and c["r"] == r])
             for r in ranks] for b in sorted({c["batch"] for c in cases})]
    clock = "CPU" if settings["clock"] == "cpu" else "wall"
    _env.plot_time_grid(
        path, grid, _STYLES, n2_through="dense", nlogn_through="layer", xlabel="n (W is n×n)",
        ylabel=f"{clock} time per call (ms)", legend_columns=3,
        title=f"ldr torch backend, float32 CPU: time vs n (median; band: range over {settings['repeats']} repeats)\n"
              f"{env['machine']['cpu_model']}, torch {env['versions'].get('torch')}, {settings['threads']} "
              f"thread(s), {clock} time",
    )


# -- entry points -----------------------------------------------------------------------------------
def run(quick=False, sizes=None, ranks=None, batches=None, repeats=None, threads=1, clock=None, progress=print):
    """Run the benchmark and return the result dictionary (no files written).

    Parameters
    ----------
    quick : bool
        The quick preset (n ∈ {256, 1024}, r ∈ {1, 4}, b = 64, 3 repeats).
    sizes, ranks, batches : sequence of int, optional
        Override the preset's sizes n, ranks r and batch sizes b.
    repeats : int, optional
        Override the preset's repeat count.
    threads : int
        torch intra-op threads.
    clock : {"cpu", "wall"}, optional
        Process CPU time (default with one thread) or elapsed time.
    progress : callable
        Receives one line per case.

    Returns
    -------
    dict
        ``settings``, ``environment``, ``cases`` (one per batch, n and r: ``times_s`` of the
        forward, forward + backward and bare-FFT methods, and their ``ratios``, each summarised
        over the repeats) and ``targets`` (performance checks, for n >= 1024).
    """
    import torch

    preset = dict(QUICK if quick else FULL)
    sizes = tuple(sizes or preset["sizes"])
    ranks = tuple(ranks or preset["ranks"])
    batches = tuple(batches or preset["batches"])
    repeats = repeats or preset["repeats"]
    clock = clock or ("cpu" if threads == 1 else "wall")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    cases, seed = [], 0
    try:
        for b in batches:
            for n in sizes:
                for r in ranks:
                    seed += 1
                    case = _case(torch, n, r, b, repeats, preset["target_s"], seed, _env.CLOCKS[clock])
                    cases.append(case)
                    q = case["ratios"]
                    progress(f"  n={n:5d} r={r:2d} b={b:5d}: layer/bare_fft {_env.fmt_ratio(q['layer/bare_fft'])}, "
                             f"layer/dense {_env.fmt_ratio(q['layer/dense'])}, "
                             f"fwd+bwd/dense {_env.fmt_ratio(q['layer_fb/dense_fb'])}, "
                             f"fwd+bwd/plain {_env.fmt_ratio(q['layer_fb/plain_fb'])} "
                             f"(autograd matvec {_env.fmt_ratio(q['matvec_fb/plain_fb'])})")
        environment = _env.environment(include_torch=True)
    finally:
        torch.set_num_threads(previous)
    return {
        "benchmark": STEM,
        "settings": {"quick": quick, "sizes": list(sizes), "ranks": list(ranks), "batches": list(batches),
                     "repeats": repeats, "target_s": preset["target_s"], "threads": threads, "clock": clock,
                     "dtype": "float32", "device": "cpu"},
        "environment": environment,
        "cases": cases,
        "targets": _targets(cases),
    }


main = _env.command_line(
    _parser, run, script="bench_torch.py", stem=STEM, markdown=_markdown, plot=_plot,
    caption="time vs n, torch backend",
    banner=lambda args: f"Toeplitz-like W @ X, float32 CPU ({'quick' if args.quick else 'full'}), "
                        f"{args.threads} thread(s)",
)

if __name__ == "__main__":
    _env.ensure_process_settings(__file__, sys.argv[1:], _parser().parse_args(sys.argv[1:]).threads)
    sys.exit(main())

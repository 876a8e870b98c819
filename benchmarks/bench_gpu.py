r"""GPU benchmarks of issue 18: the HyDRA train step against LoRA, and the Toeplitz-like product
against bare cuFFT. Run by ``benchmarks/gpu_check.sh``.

Train step
    forward + backward + ``AdamW.step()`` of one ``nn.Linear(N, N)`` on T tokens, base layer
    and input in ``--dtypes`` (bfloat16 and float32), x requiring a gradient: ``frozen``,
    ``lora`` (rank 4) and :class:`hydra.HydraLinear` (k = 4, rank 1, pool 3072, half fixed)
    for every structure on the dense path, and on the fft path where ``auto`` picks it. The same code as on the CPU: the dense path
    is one GEMM with the merged weight when the base weight is in the update's dtype (float32)
    and the base GEMM plus a float32 update otherwise (bfloat16), through
    :mod:`hydra.autograd` in both cases. Ratios to LoRA per repeat; peak memory of two steps
    (``torch.cuda.max_memory_allocated`` above the memory held before them; CUDA only).
Toeplitz-like product
    ``ldr.nn.LDRLinear(n, n, "toeplitz_like", rank=r)`` forward and forward + backward
    (float32) against the bare transforms the product performs (cuFFT on CUDA), the plain
    2(r + 1)-FFT implementation under autograd (``plain_fb``) and a dense ``F.linear``.

Times are wall-clock with ``torch.cuda.synchronize()`` around each timed block, median and
range over the repeats, the cases' order rotated. ``--device cpu --dry-run`` runs the same code
paths at tiny sizes (and bfloat16 on the CPU), which is how it is tested without a GPU::

    python benchmarks/bench_gpu.py                         # CUDA, full (a few minutes)
    python benchmarks/bench_gpu.py --device cpu --dry-run  # seconds, any machine

Writes ``gpu_check.{json,md}`` under ``--out`` (default ``benchmarks/results/gpu``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402
from benchmarks.bench_hydra import _make_case  # noqa: E402

__all__ = ["main", "run"]

STEM = "gpu_check"
STRUCTURES = ("toeplitz", "toeplitz_like", "hankel_like", "vandermonde_like", "cauchy_like", "low_rank")
FULL = {"layer": 4096, "tokens": 8192, "sizes": (1024, 4096, 16384), "batches": (64, 1024), "ranks": (1, 4),
        "repeats": 5, "target_s": 0.2}
DRY = {"layer": 64, "tokens": 32, "sizes": (64,), "batches": (4,), "ranks": (1,), "repeats": 2, "target_s": 0.0}


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --dry-run: tests the script)")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, 2 repeats: exercises every code path")
    p.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], help="train-step dtypes")
    p.add_argument("--repeats", type=int, help="override the number of repeats")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR / "gpu", help="results folder")
    p.add_argument("--no-plot", action="store_true", help="(no plot is drawn; accepted for symmetry)")
    return p


def _clock(torch, device):
    if device.startswith("cuda"):
        def tick():
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return tick
    return time.perf_counter


def _peak_mib(torch, step, device):
    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def _train_steps(torch, preset, dtypes, device, repeats, clock, progress):
    rows = []
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        import hydra

        blocks = (math.ceil(preset["layer"] / 4),) * 2
        names = ["frozen", "lora"] + [f"hydra/{s}/dense" for s in STRUCTURES]
        names += [f"hydra/{s}/fft" for s in STRUCTURES if hydra.auto_path(s, blocks) == "fft"]
        names += ["hydra/toeplitz/dense@dense"]  # the correlation route against the dYᵀX GEMM
        cases = {name: _make_case(name, preset["layer"], preset["tokens"], device=device, dtype=dtype) for name in names}
        times, _ = _env.measure({k: v[0] for k, v in cases.items()}, repeats, preset["target_s"], clock, warmup=1)
        for name in names:
            row = {"dtype": dtype_name, "case": name, "trainable": cases[name][1], "gradient_route": cases[name][2],
                   "step_s": _env.summary(times[name]),
                   "ratio_vs_lora": _env.summary([a / b for a, b in zip(times[name], times["lora"])]),
                   "peak_mib": _peak_mib(torch, cases[name][0], device)}
            rows.append(row)
            progress(f"  {dtype_name:8s} {name:24s} {1e3 * row['step_s']['median']:9.2f} ms   x LoRA "
                     f"{_env.fmt_ratio(row['ratio_vs_lora'])}")
        del cases
    return rows


def _products(torch, preset, device, repeats, clock, progress):
    import torch.nn.functional as F

    from benchmarks.bench_torch import _plain_matvec, _transforms
    from ldr.nn import LDRLinear

    rows = []
    for b in preset["batches"]:
        for n in preset["sizes"]:
            for r in preset["ranks"]:
                gen = torch.Generator().manual_seed(n + r + b)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(n + r)
                    layer = LDRLinear(n, n, structure="toeplitz_like", rank=r, bias=False).to(device)
                X = torch.randn(b, n, generator=gen).to(device)
                gY = torch.randn(b, n, generator=gen).to(device)
                Xg = X.clone().requires_grad_(True)
                params = [layer.G, layer.H, Xg]
                e, f = layer.structure_kwargs["e"], layer.structure_kwargs["f"]
                bare_inputs = []
                for kind, shape, length in _transforms(torch, n, r, b, e, f):
                    if kind == "rfft":
                        bare_inputs.append((torch.fft.rfft, torch.randn(shape, generator=gen).to(device), length))
                    else:
                        data = torch.view_as_complex(torch.randn(shape + (2,), generator=gen)).to(device)
                        bare_inputs.append((torch.fft.irfft, data, length))
                with torch.no_grad():
                    D = layer.dense_weight().contiguous()

                def bare():
                    for transform, data, length in bare_inputs:
                        transform(data, n=length)

                def forward():
                    with torch.no_grad():
                        return layer(X)

                def dense():
                    with torch.no_grad():
                        return F.linear(X, D)

                methods = {
                    "layer": forward, "bare_fft": bare, "dense": dense,
                    "layer_fb": lambda: torch.autograd.grad(layer(Xg), params, gY),
                    "plain_fb": lambda: torch.autograd.grad(_plain_matvec(torch, layer.G, layer.H, Xg, e, f), params, gY),
                }
                times, _ = _env.measure(methods, repeats, preset["target_s"], clock, warmup=1)
                q = _env.ratios(times, [("layer", "bare_fft"), ("layer", "dense"), ("layer_fb", "plain_fb"),
                                        ("layer_fb", "bare_fft", 2)])
                rows.append({"n": n, "r": r, "batch": b, "times_s": {k: _env.summary(v) for k, v in times.items()},
                             "ratios": q})
                progress(f"  n={n:6d} r={r} b={b:5d}: layer/bare cuFFT {_env.fmt_ratio(q['layer/bare_fft'])}, "
                         f"fwd+bwd/plain {_env.fmt_ratio(q['layer_fb/plain_fb'])}, layer/dense "
                         f"{_env.fmt_ratio(q['layer/dense'])}")
    return rows


def run(device="cuda", dry_run=False, dtypes=("bfloat16", "float32"), repeats=None, progress=print):
    """Run both GPU benchmarks and return the result dictionary (no files written).

    Parameters
    ----------
    device : str
        ``"cuda"`` (or ``"cuda:N"``), or ``"cpu"`` to test the script.
    dry_run : bool
        Tiny sizes and 2 repeats.
    dtypes : sequence of str
        Train-step dtypes.
    repeats : int, optional
    progress : callable

    Returns
    -------
    dict
    """
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`device` = {device!r} but torch.cuda.is_available() is False; use --device cpu --dry-run")
    preset = dict(DRY if dry_run else FULL)
    repeats = repeats or preset["repeats"]
    clock = _clock(torch, device)
    progress(f"  device {device}, layer {preset['layer']}x{preset['layer']}, {preset['tokens']} tokens, "
             f"{repeats} repeats")
    steps = _train_steps(torch, preset, dtypes, device, repeats, clock, progress)
    products = _products(torch, preset, device, repeats, clock, progress)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return {
        "benchmark": STEM,
        "settings": {"device": device, "device_name": name, "dry_run": dry_run, "layer": preset["layer"],
                     "tokens": preset["tokens"], "dtypes": list(dtypes), "repeats": repeats,
                     "target_s": preset["target_s"], "clock": "wall, synchronized",
                     "hydra": {"k": 4, "rank": 1, "pool_size": 3072, "fixed_ratio": 0.5}, "lora_rank": 4},
        "environment": _env.environment(include_torch=True),
        "train_step": steps,
        "products": products,
    }


def _markdown(result):
    s = result["settings"]
    ratio = _env.fmt_ratio
    lines = _env.markdown_header(f"GPU check: HyDRA step vs LoRA and Toeplitz-like vs cuFFT ({s['device_name']})",
                                 result) + [
        f"- Device: {s['device']} ({s['device_name']}){'; DRY RUN (tiny sizes, not a measurement)' if s['dry_run'] else ''}",
        f"- Train step: {s['layer']}×{s['layer']} layer, {s['tokens']} tokens, fwd + bwd + AdamW, x requires "
        f"grad; HyDRA k = 4, rank 1, pool 3072 (half fixed), case names end in the path; LoRA rank 4. {s['repeats']} repeats, "
        "wall time with CUDA synchronisation; ratios per repeat, median (min–max).",
        "",
        "| dtype | case | gradient route | step (ms) | × LoRA | peak (MiB) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in result["train_step"]:
        peak = "–" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
        lines.append(f"| {row['dtype']} | {row['case']} | {row['gradient_route'] or '–'} | "
                     f"{1e3 * row['step_s']['median']:.2f} | {ratio(row['ratio_vs_lora'])} | {peak} |")
    lines += [
        "",
        "## Toeplitz-like product (float32): `ldr.nn.LDRLinear` vs bare FFTs, plain implementation, dense",
        "",
        "| n | r | b | layer (ms) | bare FFT (ms) | layer / bare FFT | layer / dense | fwd+bwd / plain | fwd+bwd / 2 bare |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["products"]:
        t, q = row["times_s"], row["ratios"]
        lines.append(f"| {row['n']} | {row['r']} | {row['batch']} | {_env.fmt_ms(t['layer'])} | "
                     f"{_env.fmt_ms(t['bare_fft'])} | {ratio(q['layer/bare_fft'])} | {ratio(q['layer/dense'])} | "
                     f"{ratio(q['layer_fb/plain_fb'])} | {ratio(q['layer_fb/2bare_fft'])} |")
    lines.append("")
    return "\n".join(lines)


main = _env.command_line(
    _parser, run, script="bench_gpu.py", stem=STEM, markdown=_markdown, plot=None,
    banner=lambda args: f"{args.device}{' (dry run)' if args.dry_run else ''}",
)

if __name__ == "__main__":
    sys.exit(main())

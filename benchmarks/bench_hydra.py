r"""Train-step cost of HyDRA adapters on one 768×768 layer, against the frozen layer and LoRA.

One training step = forward + backward + ``AdamW.step()`` of one ``nn.Linear(768, 768)`` on
``batch × 197`` tokens (ViT-B: 32 × 197 = 6304 by default), float32, CPU. The input requires a
gradient (the layer sits in the middle of a network whose earlier layers are adapted too), so
every case pays the ``dL/dx`` GEMM. Cases, timed in turn in each repeat (order rotated):

``frozen``
    the bare frozen layer (forward + backward to x; no optimizer step);
``lora``
    + LoRA rank 4 (:class:`hydra.LoRALinear`);
``hydra/<structure>/<path>``
    + :class:`hydra.HydraLinear`, k = 4, rank 1, pool 3072 (half fixed), for every structure and
    both paths: ``dense`` (ΔW built from the generators, one GEMM with W0 + s ΔW) and ``fft``
    (batched block products).

Every figure is a ratio of times measured in the same repeat (``case / lora``,
``case / frozen``), reported as median (min–max) over the repeats. Peak memory: each case runs
two steps in a fresh subprocess, and the increase of the peak resident set size over the
resident size before the first step is reported (the high-water mark is reset after set-up;
it includes pages the allocator keeps).

Every run also times the Toeplitz pool gradient's two routes on their own (section "gradient
routes"): the partitioned FFT correlation (:func:`hydra.autograd.toeplitz_block_correlation`)
against the dense ``dYᵀX`` GEMM, for n = 128 ... 1536 (k = 4) at 256 and 2048 tokens: the data
behind :data:`hydra.autograd.CORRELATION_MIN_SIZE`.

``--crossover`` also times the two paths on larger layers (n = 768, 1536, 3072 with k = 4 and
n = 4096 with k = 2, i.e. blocks 192, 384, 768, 2048; 1024 tokens) for the FFT-based
structures: the data behind :data:`hydra.layers.AUTO_FFT_BLOCK_SIZE`.

By default one thread and process CPU time (robust on a shared machine); ``--threads N``
switches to N threads and wall time. Run::

    python benchmarks/bench_hydra.py                 # full (several minutes on 2 cores)
    python benchmarks/bench_hydra.py --crossover     # + the path crossover
    python benchmarks/bench_hydra.py --quick         # about a minute

Writes ``benchmarks/results/hydra_train_step.{json,md,png}`` (``--out`` changes the folder;
``--no-plot`` skips the PNG). The PNG shows each case's step time relative to LoRA (bars, with
the path ``auto`` picks hatched) and, with ``--crossover``, the two paths' step times and their
ratio against the block size (log-log).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _env  # noqa: E402

__all__ = ["main", "run"]

STEM = "hydra_train_step"
STRUCTURES = ("toeplitz", "toeplitz_like", "hankel_like", "vandermonde_like", "cauchy_like", "low_rank")
FFT_STRUCTURES = ("toeplitz", "toeplitz_like", "hankel_like")
FULL = {"batch": 32, "repeats": 7, "target_s": 0.3, "memory": True, "pairs": 12,
        "crossover_layers": ((768, 4), (1536, 4), (3072, 4), (4096, 2)), "crossover_tokens": 1024,
        "crossover_repeats": 3}
QUICK = {"batch": 4, "repeats": 3, "target_s": 0.05, "memory": False, "pairs": 4,
         "crossover_layers": ((768, 4), (1536, 4)), "crossover_tokens": 256, "crossover_repeats": 2}
TOKENS_PER_IMAGE = 197


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="batch 4, 3 repeats, no memory probe (about a minute)")
    p.add_argument("--batch", type=int, help="images of 197 tokens (default 32)")
    p.add_argument("--repeats", type=int, help="override the number of repeats")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--clock", choices=tuple(_env.CLOCKS),
                   help="cpu: process CPU time (default with one thread); wall: elapsed (default otherwise)")
    p.add_argument("--crossover", action="store_true", help="also time dense vs fft on larger layers")
    p.add_argument("--no-memory", dest="memory", action="store_false", default=None,
                   help="skip the peak-memory subprocesses (the full preset runs them)")
    p.add_argument("--out", type=Path, default=_env.RESULTS_DIR, help="results folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--memory-probe", help=argparse.SUPPRESS)  # internal: run one case, print its peak
    return p


# -- cases ------------------------------------------------------------------------------------------
def _case_names():
    names = ["frozen", "lora"]
    names += [f"hydra/{s}/{p}" for s in STRUCTURES for p in ("dense", "fft")]
    return names


def _make_case(name, n=768, tokens=6304, seed=0, k=4, device="cpu", dtype=None):
    """Build (step function, trainable count, gradient route) for one case on a fresh n×n layer.

    ``name``: ``"frozen"``, ``"lora"`` or ``"hydra/<structure>/<path>"``, optionally with
    ``"@<route>"`` appended to force the dense path's gradient route. The base layer and the
    input are put on ``device`` in ``dtype`` (default float32); the loss is summed in float32.
    """
    import warnings

    import torch

    import hydra

    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.Linear(n, n)
    with torch.no_grad():
        base.weight.copy_(torch.randn(n, n, generator=gen) / math.sqrt(n))
        base.bias.zero_()
    dtype = dtype or torch.float32
    base = base.to(device=device, dtype=dtype)
    x0 = torch.randn(tokens, n, generator=gen).to(device=device, dtype=dtype)
    upstream = torch.randn(tokens, n, generator=gen).to(device=device, dtype=dtype)
    if name == "frozen":
        layer = base.requires_grad_(False)
    elif name == "lora":
        layer = hydra.LoRALinear(base, hydra.LoRAConfig(rank=4, alpha=4, target_modules=["x"]), "x")
    else:
        _, structure, path = name.split("/")
        path, _, forced_route = path.partition("@")
        cfg = hydra.HydraConfig(structure=structure, k=k, rank=1, pool_size=3072, fixed_ratio=0.5,
                                target_modules=["x"], path=path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = hydra.HydraLinear(base, cfg, "x")
        layer.gradient_route = forced_route or None
    params = [p for p in layer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3) if params else None
    route = None
    if hasattr(layer, "resolved_gradient_route"):
        route = layer.resolved_gradient_route() if layer.resolved_path() == "dense" else "fft path"
    x = x0.requires_grad_(True)

    def step():
        x.grad = None
        y = layer(x)
        (y.float() * upstream.float()).sum().backward()  # .float() is a no-op in float32
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in params), route


ROUTE_LAYERS = (128, 256, 384, 768, 1536)
ROUTE_TOKENS = (256, 2048)


def _gradient_routes(repeats, clock, progress, layers=ROUTE_LAYERS, tokens_list=ROUTE_TOKENS):
    """Toeplitz pool gradient: correlation / dense-GEMM time per (n, tokens), k = 4, float32."""
    import torch

    from hydra.autograd import toeplitz_block_correlation

    rows = []
    gen = torch.Generator().manual_seed(0)
    for tokens in tokens_list:
        for n in layers:
            x, dy = torch.randn(tokens, n, generator=gen), torch.randn(tokens, n, generator=gen)
            steps = {"dense": lambda: dy.t() @ x,
                     "correlation": lambda: toeplitz_block_correlation(dy.view(tokens, 4, n // 4), x.view(tokens, 4, n // 4))}
            times, _ = _env.measure(steps, repeats, 0.05, clock, warmup=1)
            ratio = _env.ratios(times, [("correlation", "dense")])["correlation/dense"]
            rows.append({"n": n, "k": 4, "tokens": tokens, "dense_s": _env.summary(times["dense"]),
                         "correlation_s": _env.summary(times["correlation"]), "correlation/dense": ratio})
            progress(f"  gradient route n={n:5d} tokens={tokens:5d}: correlation / dYᵀX GEMM {_env.fmt_ratio(ratio)}")
    return rows


def _memory(name, tokens, threads):
    """Peak RSS increase (MiB) of two steps of ``name`` in a fresh process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", name,
               "--batch", str(tokens // TOKENS_PER_IMAGE), "--threads", str(threads)]
    env = dict(os.environ, **_env.MALLOC_SETTINGS)  # the same allocator behaviour as the timings
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _memory_probe(name, tokens, threads):
    """Print the peak resident-set increase of two steps of ``name`` (run in a fresh process).

    The high-water mark is reset first (``/proc/self/clear_refs``, Linux >= 4.0), so that the
    import of torch and the set-up, whose transient peaks can exceed a step's, are not counted.
    """
    import resource

    import torch

    torch.set_num_threads(threads)
    step = _make_case(name, tokens=tokens)[0]
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before, method = _status_kib("VmRSS"), "VmHWM after clear_refs"
    except OSError:  # not Linux, or no permission: the process-lifetime peak instead
        before, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    step()
    step()
    after = _status_kib("VmHWM") if method.startswith("VmHWM") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_increase_mib": (after - before) / 1024.0, "method": method}))


def _crossover(layers, tokens, repeats, clock, progress):
    """fft / dense step-time ratio per FFT-based structure, for (n, k) layers of blocks n / k."""
    rows = []
    for n, k in layers:
        for structure in FFT_STRUCTURES:
            steps = {p: _make_case(f"hydra/{structure}/{p}", n=n, tokens=tokens, k=k)[0] for p in ("dense", "fft")}
            # One step per timed block (target 0) and one warm-up: a step on these layers is long.
            times, _ = _env.measure(steps, repeats, 0.0, clock, warmup=1)
            ratio = _env.ratios(times, [("fft", "dense")])["fft/dense"]
            rows.append({"n": n, "k": k, "block": n // k, "structure": structure, "tokens": tokens,
                         "dense_s": _env.summary(times["dense"]), "fft_s": _env.summary(times["fft"]),
                         "fft/dense": ratio})
            progress(f"  crossover n={n:5d} k={k} (blocks {n // k}) {structure:14s} fft/dense "
                     f"{_env.fmt_ratio(ratio)}")
    return rows


def _paired_steps(tokens, pairs, clock, progress):
    """Alternate single steps of each case on the ``auto`` path with LoRA's, in one process.

    Noise on a shared machine only ever adds time, so the ratio of the two fastest steps
    (``min_ratio``) is the steadiest figure; the median of the adjacent pairs' ratios is kept too.
    The step order flips every pair, so neither side always runs on a warm cache.
    """
    import hydra

    lora = _make_case("lora", tokens=tokens)[0]
    rows = []
    for name in ["frozen"] + [f"hydra/{s}/{hydra.auto_path(s, (192, 192))}" for s in STRUCTURES]:
        step = _make_case(name, tokens=tokens)[0]
        step(), lora()
        mine, theirs = [], []
        for i in range(pairs):
            order = ((lora, theirs), (step, mine)) if i % 2 == 0 else ((step, mine), (lora, theirs))
            for function, sink in order:
                start = clock()
                function()
                sink.append(clock() - start)
        ratios = sorted(a / b for a, b in zip(mine, theirs))
        rows.append({"case": name, "pairs": pairs, "min_step_s": min(mine), "min_lora_s": min(theirs),
                     "min_ratio": min(mine) / min(theirs), "median_pair_ratio": ratios[len(ratios) // 2]})
        progress(f"  paired {name:28s} min step / min LoRA step {rows[-1]['min_ratio']:.3f}")
    return rows


# -- entry points -----------------------------------------------------------------------------------
def run(quick=False, batch=None, repeats=None, threads=1, clock=None, crossover=False, memory=None,
        progress=print):
    """Run the benchmark and return the result dictionary (no files written).

    Parameters
    ----------
    quick : bool
        Quick preset (batch 4, 3 repeats, no memory probe).
    batch : int, optional
        Images of 197 tokens (default 32).
    repeats : int, optional
    threads : int
        ``torch.set_num_threads``.
    clock : {"cpu", "wall"}, optional
        Default: process CPU time with one thread, elapsed time otherwise.
    crossover : bool
        Also time dense vs fft on larger layers.
    memory : bool, optional
        Run the peak-memory subprocesses (default: the preset's choice).
    progress : callable

    Returns
    -------
    dict
    """
    import torch

    preset = dict(QUICK if quick else FULL)
    batch = batch or preset["batch"]
    repeats = repeats or preset["repeats"]
    memory = preset["memory"] if memory is None else memory
    clock = clock or ("cpu" if threads == 1 else "wall")
    tick = _env.CLOCKS[clock]
    torch.set_num_threads(threads)
    tokens = batch * TOKENS_PER_IMAGE
    names = _case_names()
    steps, trainable, routes = {}, {}, {}
    for name in names:
        steps[name], trainable[name], routes[name] = _make_case(name, tokens=tokens)
    progress(f"  {len(names)} cases, {tokens} tokens, {repeats} repeats, {threads} thread(s), {clock} clock")
    times, calls = _env.measure(steps, repeats, preset["target_s"], tick, warmup=1)
    del steps
    cases = []
    for name in names:
        row = {
            "case": name,
            "trainable": trainable[name],
            "gradient_route": routes[name] if name.endswith("/dense") else None,
            "calls_per_block": calls[name],
            "step_s": _env.summary(times[name]),
            "ratio_vs_lora": _env.summary([a / b for a, b in zip(times[name], times["lora"])]),
            "ratio_vs_frozen": _env.summary([a / b for a, b in zip(times[name], times["frozen"])]),
        }
        if memory:
            row["memory"] = _memory(name, tokens, threads)
        cases.append(row)
        progress(f"  {name:28s} {1e3 * row['step_s']['median']:8.1f} ms   x LoRA {_env.fmt_ratio(row['ratio_vs_lora'])}"
                 + (f"   peak +{row['memory'].get('peak_rss_increase_mib', float('nan')):.0f} MiB" if memory else ""))
    result = {
        "benchmark": STEM,
        "settings": {"quick": quick, "layer": "768x768", "batch": batch, "tokens": tokens, "repeats": repeats,
                     "target_s": preset["target_s"], "threads": threads, "clock": clock, "dtype": "float32",
                     "hydra": {"k": 4, "rank": 1, "pool_size": 3072, "fixed_ratio": 0.5}, "lora_rank": 4,
                     "input_requires_grad": True},
        "environment": _env.environment(include_torch=True),
        "cases": cases,
    }
    result["gradient_routes"] = _gradient_routes(max(3, repeats // 2), tick, progress)
    result["paired"] = _paired_steps(tokens, preset["pairs"], tick, progress)
    result["targets"] = _targets(result)
    if crossover:
        result["crossover"] = _crossover(preset["crossover_layers"], preset["crossover_tokens"],
                                         preset["crossover_repeats"], tick, progress)
    import hydra

    result["auto_path"] = {s: hydra.auto_path(s, (192, 192)) for s in STRUCTURES}
    if crossover:
        result["fft_wins_from_block"] = _fft_threshold(result["crossover"])
    return result


def _targets(result):
    """Issue 18's targets on the path ``auto`` picks: toeplitz ≤ 1.0 × LoRA, the others ≤ 1.1 ×,
    peak memory ≤ LoRA's + 10 % (paired fastest-step ratios, else medians; memory when measured)."""
    import hydra

    cases = {row["case"]: row for row in result["cases"]}
    paired = {row["case"]: row for row in result.get("paired", [])}
    lora_peak = cases["lora"].get("memory", {}).get("peak_rss_increase_mib")
    rows = []
    for structure in STRUCTURES:
        row = cases[f"hydra/{structure}/{hydra.auto_path(structure, (192, 192))}"]
        limit = 1.0 if structure == "toeplitz" else 1.1
        # The paired fastest-step ratio when measured (steadier than the rotated blocks' median).
        value = paired[row["case"]]["min_ratio"] if row["case"] in paired else row["ratio_vs_lora"]["median"]
        rows.append({"target": f"step <= {limit} x LoRA", "case": row["case"], "median_ratio": value,
                     "met": value <= limit})
        peak = row.get("memory", {}).get("peak_rss_increase_mib")
        if peak is not None and lora_peak is not None:
            rows.append({"target": "peak memory <= 1.1 x LoRA's", "case": row["case"],
                         "median_ratio": peak / lora_peak, "met": peak <= 1.1 * lora_peak})
    return rows


def _fft_threshold(rows):
    """Per structure: the smallest measured block size from which fft/dense < 1 (median) at every
    larger measured block, or None when the FFT path never wins in the measured range."""
    out = {}
    for structure in FFT_STRUCTURES:
        mine = sorted((r["block"], r["fft/dense"]["median"]) for r in rows if r["structure"] == structure)
        threshold = None
        for block, ratio in reversed(mine):
            if ratio >= 1.0:
                break
            threshold = block
        out[structure] = threshold
    return out


def _markdown(result):
    s, env = result["settings"], result["environment"]
    used = env["settings"]["environment_used"]
    ratio = _env.fmt_ratio
    lines = _env.markdown_header("HyDRA train step: one 768×768 layer, float32, CPU", result) + [
        f"- Versions: torch {env['versions'].get('torch')}, numpy {env['versions']['numpy']}, "
        f"python {env['versions']['python']}",
        f"- Threads: torch {s['threads']} (torch.get_num_threads() = {env['settings'].get('torch_num_threads')}); "
        f"OMP_NUM_THREADS={used.get('OMP_NUM_THREADS')}",
        f"- Clock: {'process CPU time' if s['clock'] == 'cpu' else 'wall time'}; {s['repeats']} repeats, "
        f"cases' order rotated; each time is a block of steps lasting ≥ {s['target_s']} s. Ratios are per "
        "repeat, median (min–max).",
        f"- Step: forward + backward + AdamW on {s['tokens']} tokens ({s['batch']} × 197); x requires grad. "
        f"HyDRA: k = 4, rank 1, pool 3072 (half fixed); LoRA rank 4.",
        "",
        "Dense path: one GEMM with W0 + s ΔW forward; backward dX from the merged weight and the pool "
        "gradient by the route in the table (`hydra.autograd`); nothing m×n is saved.",
        "",
        "| case | trainable | gradient route | step (ms) | × frozen | × LoRA | peak RSS + (MiB) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["cases"]:
        mem = row.get("memory", {})
        peak = f"{mem['peak_rss_increase_mib']:.0f}" if "peak_rss_increase_mib" in mem else "–"
        lines.append(f"| {row['case']} | {row['trainable']:,} | {row.get('gradient_route') or '–'} | "
                     f"{1e3 * row['step_s']['median']:.1f} | "
                     f"{ratio(row['ratio_vs_frozen'])} | {ratio(row['ratio_vs_lora'])} | {peak} |")
    if result.get("paired"):
        paired = {row["case"]: row for row in result["paired"]}
        frozen = paired.get("frozen")
        lines += [
            "",
            "## Paired steps (alternating with LoRA's, one process)",
            "",
            "Each case and LoRA take turns, one step at a time, the order flipping every pair. Interference "
            "from other work on the machine only adds time, so the ratio of the fastest steps is the "
            "steadiest figure, and the targets below use it.",
            "",
            "| case | pairs | fastest step (ms) | fastest LoRA step (ms) | fastest / fastest | median of pair ratios |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in result["paired"]:
            lines.append(f"| {row['case']} | {row['pairs']} | {1e3 * row['min_step_s']:.1f} | "
                         f"{1e3 * row['min_lora_s']:.1f} | {row['min_ratio']:.3f} | {row['median_pair_ratio']:.3f} |")
        cauchy = paired.get("hydra/cauchy_like/dense")
        if frozen and cauchy:
            lines += ["", f"The frozen layer's step (forward and dX: two GEMMs) is {frozen['min_ratio']:.2f} × "
                      "LoRA's. The dense route adds a third GEMM (dYᵀX); Cauchy-like blocks, whose build is one "
                      f"elementwise product, show that floor: {cauchy['min_ratio']:.2f} × LoRA. The other "
                      "dense-route structures pay their O(R·mn) block builds on top of it."]
    lines += _env.targets_markdown(result["targets"], "Targets (issue 18), on the path `auto` picks")
    lines += [
        "",
        "## Gradient routes (Toeplitz pool gradient: partitioned FFT correlation vs the dense dYᵀX GEMM)",
        "",
        "| n | k | tokens | dYᵀX GEMM (ms) | correlation (ms) | correlation / GEMM |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["gradient_routes"]:
        lines.append(f"| {row['n']} | {row['k']} | {row['tokens']} | {1e3 * row['dense_s']['median']:.2f} | "
                     f"{1e3 * row['correlation_s']['median']:.2f} | {ratio(row['correlation/dense'])} |")
    lines += ["", "`hydra.autograd.CORRELATION_MIN_SIZE` is set from this table."]
    if "crossover" in result:
        lines += [
            "",
            "## Path crossover (n×n layer, k×k blocks; fft / dense step time; < 1: the FFT block products win)",
            "",
            "| n | k | block | structure | tokens | dense (ms) | fft (ms) | fft / dense |",
            "|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for row in result["crossover"]:
            lines.append(f"| {row['n']} | {row['k']} | {row['block']} | {row['structure']} | {row['tokens']} | "
                         f"{1e3 * row['dense_s']['median']:.0f} | {1e3 * row['fft_s']['median']:.0f} | "
                         f"{ratio(row['fft/dense'])} |")
        lines += [
            "",
            "Smallest measured block size from which the FFT path wins (None: not in the measured range): "
            f"{result['fft_wins_from_block']}. `hydra.AUTO_FFT_BLOCK_SIZE` is set from this table.",
        ]
    lines.append("")
    return "\n".join(lines)


def _auto_cases(result):
    """The HyDRA cases on the path that ``hydra.auto_path`` picks for this layer's blocks."""
    return [r for r in result["cases"] if r["case"].startswith("hydra/")
            and r["case"].endswith("/" + result["auto_path"][r["case"].split("/")[1]])]


_PATH_COLORS = {"dense": "C0", "fft": "C2"}


def _plot_step_bars(ax, result):
    """Bars: each case's step time ÷ LoRA's (median, min-max whiskers); the path ``auto`` picks hatched."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    cases = {row["case"]: row for row in result["cases"]}
    auto = {row["case"] for row in _auto_cases(result)}
    structures = [s for s in STRUCTURES if f"hydra/{s}/dense" in cases]
    bars = [(0.0, "frozen", "0.6", None), (1.0, "lora", "C1", None)]
    for i, structure in enumerate(structures):
        for offset, path in ((-0.2, "dense"), (0.2, "fft")):
            bars.append((2.2 + i + offset, f"hydra/{structure}/{path}", _PATH_COLORS[path], path))
    for x, name, color, path in bars:
        q = cases[name]["ratio_vs_lora"]
        ax.bar(x, q["median"], width=0.4 if path else 0.6, color=color, edgecolor="k", linewidth=0.5,
               hatch="///" if name in auto else None,
               yerr=[[q["median"] - q["min"]], [q["max"] - q["median"]]], capsize=2, error_kw={"lw": 0.8})
        ax.annotate(f"{q['median']:.2f}", (x, q["max"]), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.axhline(1.0, color="C1", lw=1)
    ax.axhline(1.1, color="k", lw=1, ls="--")
    ax.set_xticks([0.0, 1.0] + [2.2 + i for i in range(len(structures))])
    ax.set_xticklabels(["frozen", "LoRA r=4"] + [s.replace("_", "-") for s in structures], fontsize=8)
    ax.set_ylim(0, 1.12 * max(row["ratio_vs_lora"]["max"] for row in result["cases"]))
    ax.set_ylabel("train step time ÷ LoRA's")
    ax.grid(True, axis="y", alpha=0.3)
    lora_ms = 1e3 * cases["lora"]["step_s"]["median"]
    s = result["settings"]
    ax.set_title(f"{s['layer']} layer, {s['tokens']} tokens: step (fwd + bwd + AdamW) relative to LoRA "
                 f"(LoRA: {lora_ms:.1f} ms); median, whiskers: range over {s['repeats']} repeats", fontsize=9)
    ax.legend(handles=[
        Patch(facecolor="C0", edgecolor="k", label="HyDRA, dense path (ΔW from generators, one GEMM)"),
        Patch(facecolor="C2", edgecolor="k", label="HyDRA, fft path (block FFT products)"),
        Patch(facecolor="white", edgecolor="k", hatch="///", label="the path `auto` picks here"),
        Line2D([], [], color="k", ls="--", lw=1, label="target: 1.1 × LoRA (toeplitz: 1.0 ×)"),
    ], fontsize=7, loc="upper left")


def _plot_crossover(ax_time, ax_ratio, result, clock):
    """Log-log step time of both paths, and their ratio, against the block size."""
    import matplotlib.ticker

    for i, structure in enumerate(FFT_STRUCTURES):
        rows = sorted((r for r in result["crossover"] if r["structure"] == structure), key=lambda r: r["block"])
        if not rows:
            continue
        color = f"C{i + 3}"
        cases = [{"block": r["block"], "times_s": {"dense": r["dense_s"], "fft": r["fft_s"]}} for r in rows]
        _env.plot_time_vs_n(ax_time, cases, {"dense": (f"{structure}: dense path", color, "o-"),
                                             "fft": (f"{structure}: fft path", color, "s--")}, size="block")
        blocks = [r["block"] for r in rows]
        q = [r["fft/dense"] for r in rows]
        # Unlabelled for the figure legend (the colours are the time panel's); named at its start.
        ax_ratio.errorbar(blocks, [v["median"] for v in q],
                          yerr=[[v["median"] - v["min"] for v in q], [v["max"] - v["median"] for v in q]],
                          fmt="o-", color=color, capsize=2, ms=4)
        ax_ratio.annotate(structure, (blocks[0], q[0]["median"]), xytext=(8, 5), textcoords="offset points",
                          ha="left", fontsize=7, color=color)
    rows = sorted({(r["block"], r["n"], r["k"]) for r in result["crossover"]})
    for ax in (ax_time, ax_ratio):
        ax.set_xscale("log", base=2)
        ax.set_xticks([b for b, _, _ in rows])
        ax.set_xticklabels([f"{b}\n(n={n}, k={k})" for b, n, k in rows], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("block size b (an n×n layer of k×k blocks)")
    ax_ratio.axhline(1.0, color="k", lw=1, ls="--")
    ax_ratio.annotate("fft = dense; below: the FFT path wins", (0.01, 1.0), xycoords=("axes fraction", "data"),
                      xytext=(0, -10), textcoords="offset points", fontsize=7)
    ax_ratio.set_yscale("log")
    ax_ratio.margins(y=0.12)  # room for the structure names above the first points
    ax_ratio.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 1.5, 2, 3, 5, 7)))
    ax_ratio.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_ratio.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_ratio.grid(True, which="both", alpha=0.3)
    ax_ratio.set_ylabel("fft path ÷ dense path (step time)")
    tokens = result["crossover"][0]["tokens"]
    ax_time.set_ylabel(f"{clock} time per train step (ms)")
    ax_time.set_title(f"Path crossover: step time vs block size ({tokens} tokens)", fontsize=9)
    ax_ratio.set_title("Path crossover: fft ÷ dense (median, range)", fontsize=9)


def _plot(result, path):
    """Bar chart of step time ÷ LoRA; with the crossover data, two log-log panels under it."""
    plt = _env.pyplot()
    s, env = result["settings"], result["environment"]
    crossover = bool(result.get("crossover"))
    fig = plt.figure(figsize=(11, 8.6 if crossover else 4.6))
    grid = fig.add_gridspec(2 if crossover else 1, 2)
    _plot_step_bars(fig.add_subplot(grid[0, :]), result)
    clock = "CPU" if s["clock"] == "cpu" else "wall"
    if crossover:
        _plot_crossover(fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]), result, clock)
    _env.finish_figure(
        fig,
        f"HyDRA train step, float32 CPU: {env['machine']['cpu_model']}, torch {env['versions'].get('torch')}, "
        f"{s['threads']} thread(s), {clock} time",
        path, legend_columns=3,
    )


def _probe_only(args):
    """With ``--memory-probe NAME`` (internal): measure that case's peak memory instead of the benchmark."""
    if not args.memory_probe:
        return None
    _memory_probe(args.memory_probe, (args.batch or FULL["batch"]) * TOKENS_PER_IMAGE, args.threads)
    return 0


main = _env.command_line(
    _parser, run, script="bench_hydra.py", stem=STEM, markdown=_markdown, plot=_plot,
    caption="HyDRA train step time relative to LoRA", intercept=_probe_only,
    banner=lambda args: f"train step ({'quick' if args.quick else 'full'})",
)

if __name__ == "__main__":
    _env.ensure_process_settings(__file__, sys.argv[1:], _parser().parse_args(sys.argv[1:]).threads)
    sys.exit(main())

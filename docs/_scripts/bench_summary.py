"""The summary at the top of the Benchmarks page, computed from the benchmark results.

``docs/conf.py`` calls :func:`summary_markdown` while reading ``benchmarks.md`` and puts the
result where the page has the line ``<!-- benchmark-summary -->``. Every number comes from
``benchmarks/results/*.json``, the files the benchmark scripts wrote, so the summary cannot
drift from the full tables below it on the page. A result file without a field this summary
reads fails the documentation build with the file and the field named (update this script
when a benchmark's output changes).
"""

import json
import os

RESULTS = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "results"))


class SummaryError(RuntimeError):
    """A result file lacks a field the summary reads."""


def _load(name):
    path = os.path.join(RESULTS, name)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _get(record, *keys, source):
    value = record
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise SummaryError(
                f"benchmarks/results/{source} has no field {'/'.join(map(str, keys))}: "
                "update docs/_scripts/bench_summary.py to the benchmark's new output"
            ) from exc
    return value


def _ratio(x):
    return f"{x:.2f}"


def _core_rows(core):
    src = "core_toeplitz_like.json"
    cases = _get(core, "cases", source=src)
    rows = []
    for n in _get(core, "settings", "sizes", source=src):
        like = {c["r"]: c for c in cases if c.get("kind") == "toeplitz_like" and c.get("dtype") == "float64" and c.get("n") == n}
        plain = [c for c in cases if c.get("kind") == "toeplitz" and c.get("dtype") == "float64" and c.get("n") == n]
        cells = [str(n)]
        for r in _get(core, "settings", "ranks", source=src):
            if r not in like:
                raise SummaryError(f"benchmarks/results/{src} has no float64 Toeplitz-like case n={n} r={r}")
            cells.append(_ratio(_get(like[r], "ratios", "fast/dense", "median", source=src)))
        if not plain:
            raise SummaryError(f"benchmarks/results/{src} has no float64 plain Toeplitz case n={n}")
        cells.append(_ratio(_get(plain[0], "ratios", "fast/matmul_toeplitz", "median", source=src)))
        rows.append(cells)
    ranks = _get(core, "settings", "ranks", source=src)
    head = ["n"] + [f"Toeplitz-like r = {r}: ÷ dense" for r in ranks] + ["`ldr.toeplitz` ÷ `matmul_toeplitz`"]
    return head, rows


def _torch_rows(torch_result):
    src = "torch_toeplitz_like.json"
    cases = _get(torch_result, "cases", source=src)
    batch = min(_get(torch_result, "settings", "batches", source=src))
    ranks = _get(torch_result, "settings", "ranks", source=src)
    rows = []
    for n in _get(torch_result, "settings", "sizes", source=src):
        forward, training = [], []
        for r in ranks:
            match = [c for c in cases if c.get("n") == n and c.get("r") == r and c.get("batch") == batch]
            if not match:
                raise SummaryError(f"benchmarks/results/{src} has no case n={n} r={r} batch={batch}")
            forward.append(_ratio(_get(match[0], "ratios", "layer/dense", "median", source=src)))
            training.append(_ratio(_get(match[0], "ratios", "layer_fb/dense_fb", "median", source=src)))
        rows.append([str(n), " / ".join(forward), " / ".join(training)])
    label = " / ".join(str(r) for r in ranks)
    head = ["n", f"forward ÷ `F.linear`, r = {label}", f"forward + backward ÷ dense, r = {label}"]
    return head, rows, batch


def _hydra_rows(hydra_result):
    src = "hydra_train_step.json"
    cases = {c.get("case"): c for c in _get(hydra_result, "cases", source=src)}
    chosen = _get(hydra_result, "auto_path", source=src)
    rows = []
    lora = _get(cases, "lora", source=src)
    rows.append(["LoRA (baseline)", f"{_get(lora, 'trainable', source=src):,}", "—", "1.00"])
    for structure, path in chosen.items():
        name = f"hydra/{structure}/{path}"
        case = _get(cases, name, source=src)
        rows.append([f"HyDRA {structure}", f"{_get(case, 'trainable', source=src):,}", path,
                     _ratio(_get(case, "ratio_vs_lora", "median", source=src))])
    head = ["adapter", "trainable", "path (auto)", "step time ÷ LoRA"]
    return head, rows


def _table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown():
    """The page's summary section (MyST markdown)."""
    core, torch_result, hydra_result = (
        _load("core_toeplitz_like.json"), _load("torch_toeplitz_like.json"), _load("hydra_train_step.json")
    )
    machine = _get(core, "environment", "machine", source="core_toeplitz_like.json")
    core_head, core_rows = _core_rows(core)
    torch_head, torch_rows, batch = _torch_rows(torch_result)
    hydra_head, hydra_rows = _hydra_rows(hydra_result)
    hs = _get(hydra_result, "settings", source="hydra_train_step.json")
    parts = [
        "All timings: **CPU, one thread** "
        f"({machine.get('cpu_model', 'CPU')}), process CPU time, median of repeated runs. "
        "Each number is a *ratio* of two times measured in the same run, which is what stays "
        "comparable on a shared machine; below 1 means the structured method is faster.",
        "",
        f"**Structured product against a dense GEMM** (NumPy/SciPy, float64, batch "
        f"{_get(core, 'settings', 'batch', source='core_toeplitz_like.json')}):",
        "",
        _table(core_head, core_rows),
        "",
        f"**Torch layer** `ldr.nn.LDRLinear` (Toeplitz-like, float32, batch {batch}) against "
        "`torch.nn.functional.linear` with a dense weight:",
        "",
        _table(torch_head, torch_rows),
        "",
        f"**One HyDRA training step** ({hs.get('layer')} layer, k = {hs.get('hydra', {}).get('k')}, "
        f"pool {hs.get('hydra', {}).get('pool_size')}, float32) against LoRA rank {hs.get('lora_rank')}, "
        "with the product path that `path=\"auto\"` picks at this size:",
        "",
        _table(hydra_head, hydra_rows),
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(summary_markdown())

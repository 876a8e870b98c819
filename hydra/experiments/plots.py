"""The demo's two figures (matplotlib, Agg backend): accuracy vs trainable parameters, and vs fixed ratio.

Both take the summarised rows of :func:`hydra.experiments.run.write_outputs` (one per run name,
mean test accuracy over seeds with its 95 % Student-t interval, drawn as the error bars).
"""

from __future__ import annotations

__all__ = ["accuracy_vs_params", "accuracy_vs_fixed_ratio"]

_STYLE = {
    "lora": ("LoRA", "tab:blue", "o", "-"),
    "ldr": ("plain LDR (circulant, Toeplitz-like r=1)", "tab:gray", "s", ":"),
    "hydra_toeplitz": ("HyDRA Toeplitz", "tab:orange", "^", "-"),
    "hydra_hankel_like": ("HyDRA Hankel-like", "tab:green", "v", "-"),
    "hydra_vandermonde_like": ("HyDRA Vandermonde-like", "tab:red", "D", "-"),
    "hydra_cauchy_like": ("HyDRA Cauchy-like", "tab:purple", "P", "-"),
    "peft_lora": ("peft LoRA", "tab:cyan", "o", "--"),
    "peft_vera": ("peft VeRA", "tab:olive", "X", "--"),
    "peft_vblora": ("peft VB-LoRA", "tab:brown", "*", "--"),
    "peft_c3a": ("peft C3A (block-circulant)", "tab:pink", "s", "--"),
}


_JITTER = 0.04  # relative horizontal shift between the lines of accuracy_vs_params


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _se_note(ax, rows):
    """State the binomial standard error of one accuracy, so that small gaps are read as noise."""
    acc, n = rows[0]["test"], rows[0]["test_n"]
    se = 100 * (acc * (1 - acc) / n) ** 0.5 if n else 0.0
    ax.text(0.99, 0.01, f"standard error of one point ≈ {se:.1f} pts (binomial, n = {n})",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="dimgray")


def _err(rows):
    """95 % interval half-widths over seeds (None with a single seed)."""
    ci = [100 * r["test_ci"] if r.get("test_ci") is not None else 0.0 for r in rows]
    return ci if any(ci) else None


def accuracy_vs_params(rows, path, title=""):
    """Test accuracy against adapter trainable parameters (log x), one line per method family.

    Head only (no adapter parameters) is drawn as a horizontal dashed line, with its 95 % interval
    shaded. Error bars show the 95 % Student-t interval over seeds when there is more than one. Lines are shifted horizontally by a few
    percent of x (on the log axis) so that methods with equal counts do not hide each other.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=120)
    for i, (line, (label, color, marker, ls)) in enumerate(_STYLE.items()):
        pts = sorted((r for r in rows if r["method"] == line), key=lambda r: r["params_adapter"])
        if not pts:
            continue
        # Several methods share a parameter count (e.g. 9,216 for LoRA r=1, LDR Toeplitz-like and
        # HyDRA P=768): shift each line by a few percent so that points and error bars stay apart.
        jitter = 1.0 + _JITTER * (i - (len(_STYLE) - 1) / 2)
        if line == "lora":  # name the ranks actually run
            label = "LoRA (r = " + ", ".join(str((r.get("config") or {}).get("rank")) for r in pts) + ")"
        x = [r["params_adapter"] * jitter for r in pts]
        y = [100 * r["test"] for r in pts]
        ax.errorbar(x, y, yerr=_err(pts), color=color, marker=marker, ls=ls, lw=1.6, ms=6, capsize=3, label=label)
        for r, xi, yi in zip(pts, x, y):
            tag = _tag(r)
            if tag:
                ax.annotate(tag, (xi, yi), textcoords="offset points", xytext=(4, 5), fontsize=7, color=color)
    head = [r for r in rows if r["method"] == "head"]
    if head:
        ax.axhline(100 * head[0]["test"], color="black", ls="--", lw=1, label=f"head only ({100 * head[0]['test']:.1f} %)")
        if head[0].get("test_ci"):
            ci = 100 * head[0]["test_ci"]
            ax.axhspan(100 * head[0]["test"] - ci, 100 * head[0]["test"] + ci, color="black", alpha=0.08, lw=0)
    _se_note(ax, rows)
    ax.set_xscale("log")
    ax.set_xlabel("trainable adapter parameters (all adapted q/v matrices; the head adds the same count to every "
                  "method; lines shifted a few % apart)")
    ax.set_ylabel(f"test accuracy (%, n = {rows[0]['test_n']})")
    ax.set_title(f"Accuracy vs trainable parameters — {title}" if title else "Accuracy vs trainable parameters", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.xaxis.label.set_size(8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _tag(r):
    cfg = r.get("config") or {}
    if r["method"] == "lora":
        return f"r={cfg.get('rank')}"
    if r["method"] == "ldr":
        return "circ" if cfg.get("structure") == "circulant" else "T-like"
    if cfg.get("type") == "HydraConfig":
        return f"P={cfg.get('pool_size')}"
    if cfg.get("type") == "peft":
        if cfg.get("method") == "c3a":
            return f"b={cfg.get('block_size')}"
        if cfg.get("method") == "vblora":
            return f"r={cfg.get('r')}, {cfg.get('num_vectors')}×{cfg.get('vector_length')}"
        return f"r={cfg.get('r')}"
    return ""


def accuracy_vs_fixed_ratio(rows, path, settings):
    """Test accuracy against the fixed-random fraction of the pool (one structure, one pool size).

    Trainable pool entries are printed next to each point; head only and LoRA r = 1 are
    reference lines.
    """
    plt = _pyplot()
    s, p = settings["ratio_structure"], settings["ratio_pool"]
    pts = [
        r for r in rows
        if (r.get("config") or {}).get("type") == "HydraConfig"
        and r["config"]["structure"] == s and r["config"]["pool_size"] == p
    ]
    pts.sort(key=lambda r: r["config"]["fixed_ratio"])
    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=120)
    x = [r["config"]["fixed_ratio"] for r in pts]
    y = [100 * r["test"] for r in pts]
    ax.errorbar(x, y, yerr=_err(pts), color="tab:orange", marker="^", lw=1.6, capsize=3,
                label=f"HyDRA {s}, k = {settings['k']}, pool P = {p} per matrix")
    for r, xi, yi in zip(pts, x, y):
        ax.annotate(f"{r['params_adapter']:,} trained", (xi, yi), textcoords="offset points", xytext=(4, 6), fontsize=7)
    refs = {"head": ("head only", "black", "--"), "lora_r1": ("LoRA r = 1", "tab:blue", ":")}
    for r in rows:
        if r["run"] in refs:
            label, color, ls = refs[r["run"]]
            ax.axhline(100 * r["test"], color=color, ls=ls, lw=1,
                       label=f"{label} ({100 * r['test']:.1f} %, {r['params_adapter']:,} adapter params)")
    ax.set_xlabel("fixed (random, untrained) fraction of the pool")
    ax.set_ylabel(f"test accuracy (%, n = {rows[0]['test_n']})")
    ax.set_title("Accuracy vs fixed-random pool fraction", fontsize=11)
    ax.set_xlim(-0.05, 1.0)
    _se_note(ax, rows)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

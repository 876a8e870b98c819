"""Draw the HyDRA figure: a k x k grid of Toeplitz blocks whose entries come from one pool.

Writes ``docs/_static/pool_grid.png``. Run from anywhere:

    python docs/_scripts/pool_grid.py

Only numpy and matplotlib are needed. The sampler here is the balanced seeded shuffle
described in ``docs/theory/hydra.rst`` (each pool entry is used floor(N/P) or ceil(N/P)
times); it is a stand-alone illustration, not the library's code.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

K = 4            # blocks per axis
B = 5            # block size (square blocks, b x b)
P = 40           # pool size
FIXED = 10       # pool entries that are random and frozen (fixed_ratio = 0.25)
SEED = 0

SLOTS_PER_BLOCK = 2 * B - 1      # a b x b Toeplitz block: first column and first row
N = K * K * SLOTS_PER_BLOCK      # slots to fill from the pool


def balanced_index_map(n_slots, pool_size, rng):
    """Slot -> pool index; every pool index is used floor(n/P) or ceil(n/P) times."""
    slot_order = rng.permutation(n_slots)
    pool_order = rng.permutation(pool_size)
    return pool_order[slot_order % pool_size]


def toeplitz_indices(slots):
    """b x b matrix of pool indices for a Toeplitz block with entries t_{i-j}.

    ``slots`` holds t_{-(b-1)}, ..., t_0, ..., t_{b-1} in that order.
    """
    i, j = np.indices((B, B))
    return slots[(i - j) + (B - 1)]


def main():
    rng = np.random.default_rng(SEED)
    pool_values = rng.standard_normal(P)
    fixed = np.zeros(P, dtype=bool)
    fixed[P - FIXED:] = True                  # the last entries are the frozen part

    index = balanced_index_map(N, P, rng).reshape(K * K, SLOTS_PER_BLOCK)
    counts = np.bincount(index.ravel(), minlength=P)
    assert counts.min() == N // P and counts.max() == -(-N // P)

    grid = np.empty((K * B, K * B), dtype=int)
    for blk in range(K * K):
        p, q = divmod(blk, K)
        grid[p * B:(p + 1) * B, q * B:(q + 1) * B] = toeplitz_indices(index[blk])

    cmap = plt.get_cmap("coolwarm")
    vmax = np.abs(pool_values).max()
    norm = matplotlib.colors.Normalize(-vmax, vmax)

    fig = plt.figure(figsize=(8.0, 6.4), dpi=110)
    ax_pool = fig.add_axes([0.06, 0.86, 0.88, 0.06])
    ax_grid = fig.add_axes([0.20, 0.05, 0.60, 0.70])

    # The pool: one cell per entry, frozen entries hatched.
    for p in range(P):
        ax_pool.add_patch(Rectangle((p, 0), 1, 1, facecolor=cmap(norm(pool_values[p])),
                                    edgecolor="black", linewidth=0.4,
                                    hatch="////" if fixed[p] else None))
        ax_pool.text(p + 0.5, -0.35, str(counts[p]), ha="center", va="top", fontsize=6)
    ax_pool.set_xlim(0, P)
    ax_pool.set_ylim(-1.1, 1)
    ax_pool.axis("off")
    ax_pool.set_title(f"parameter pool: P = {P} entries ({P - FIXED} trainable, {FIXED} fixed "
                      f"random, hatched); numbers = times each entry is used",
                      fontsize=9)

    # The grid: each cell coloured by the pool value it reads.
    ax_grid.imshow(pool_values[grid], cmap=cmap, norm=norm, interpolation="nearest")
    fi, fj = np.nonzero(fixed[grid])
    ax_grid.scatter(fj, fi, s=10, c="black", marker="o", linewidths=0)
    for t in range(1, K):
        ax_grid.axhline(t * B - 0.5, color="black", linewidth=1.6)
        ax_grid.axvline(t * B - 0.5, color="black", linewidth=1.6)
    ax_grid.set_xticks([])
    ax_grid.set_yticks([])
    ax_grid.set_title(f"$\\Delta W$: {K}x{K} grid of {B}x{B} Toeplitz blocks, "
                      f"{K * K} x {SLOTS_PER_BLOCK} = {N} slots drawn from the pool\n"
                      "(dots: cells that read a fixed pool entry)", fontsize=9)

    out = Path(__file__).resolve().parent.parent / "_static" / "pool_grid.png"
    fig.savefig(out)
    print(f"wrote {out}  (uses per entry: {counts.min()}..{counts.max()})")


if __name__ == "__main__":
    main()

r"""Node choices for Vandermonde-like blocks: conditioning, numerical rank and trainability.

For each block size b (b×b blocks, the sizes HyDRA uses: 48 ... 768, and the odd sizes
around 192) and each node choice, this script measures

``kappa(V)``
    the 2-norm condition number of the b×b (real) Vandermonde factor;
``rank64`` / ``rank32``
    the numerical rank of one random block with displacement rank 1 (generators with
    independent standard normal entries), built in float64 and counted with the relative
    threshold 1e-8 (``sigma_i > 1e-8 sigma_max``), and built in float32 and counted with
    1e-5 (about 100 float32 epsilons); singular values computed in float64;
``sigma_min/sigma_max``
    of that float64 block;
``loss``
    the relative training loss :math:`\|W(\theta) - T\|_F^2 / \|T\|_F^2` after 300 Adam steps
    (float32, displacement rank 2; generators scaled so that every choice starts at
    :math:`\|W(\theta_0)\| = 0.1 \|T\|`, learning rates 1e-2, 3e-2, 1e-1 times that scale, the
    best reported) for two targets: a random rank-1 :math:`T = a b^T`, which every choice can
    represent exactly (a rank-1 matrix has displacement rank at most 2 for every operator pair),
    and a dense Gaussian T, which none can (b <= 192 only: it is the slow part).

Node choices (the Krylov form :math:`W = \sum_l \operatorname{diag}(g_l) V(v) C_f(J h_l)` in every
case):

``chebyshev_f0``
    the former HyDRA blocks: real Chebyshev points :math:`\cos(\pi(2i+1)/(2b))`, f = 0;
``chebyshev_f-1``
    the former ``ldr.nn`` layer: Chebyshev points of the even count :math:`2\lceil b/2\rceil`, f = −1;
``circle_f0``
    the m-th roots of −1 in conjugate pairs with the real parametrisation, but f = 0;
``circle``
    the choice now used by ``ldr.nn`` and ``hydra``: the same nodes with f = ±1
    (:func:`ldr.nn.vandermonde_shift`; f = 1 for square blocks).

Run::

    python benchmarks/vandermonde_nodes.py            # a few minutes on one idle core

Writes ``benchmarks/results/vandermonde_nodes/vandermonde_nodes.{md,json}`` (``--out`` changes
the folder).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ldr.nn import vandermonde_nodes, vandermonde_shift

SIZES = (48, 96, 191, 192, 193, 384, 768)
TRAIN_SIZES = (48, 96, 192)
CHOICES = ("chebyshev_f0", "chebyshev_f-1", "circle_f0", "circle")
LEARNING_RATES = (1e-2, 3e-2, 1e-1)  # times the generators' initial scale
STEPS = 300
TARGETS = ("rank1", "dense")


def factors(choice, b):
    """(complex nodes of the Krylov rows, f, whether rows are paired): every choice as complex rows."""
    if choice == "chebyshev_f0":
        return np.cos(np.pi * (2 * np.arange(b) + 1) / (2 * b)).astype(complex), 0.0, False
    if choice == "chebyshev_f-1":
        M = b + b % 2
        return np.cos(np.pi * (2 * np.arange(b) + 1) / (2 * M)).astype(complex), -1.0, False
    return vandermonde_nodes(b), (0.0 if choice == "circle_f0" else vandermonde_shift(b, b)), True


def real_rows(Y, b, paired):
    """Complex Krylov rows -> the real b-row matrix (pairs: Re rows, then Im rows, then the real node)."""
    if not paired:
        return Y.real
    p = b // 2
    return torch.cat([Y.real[..., :p, :], Y.imag[..., :p, :], Y.real[..., p:, :]], -2)


def complex_rows(G, b, paired):
    if not paired:
        return torch.complex(G, torch.zeros_like(G))
    p = b // 2
    return torch.complex(torch.cat([G[:p], G[2 * p :]]), torch.cat([G[p : 2 * p], torch.zeros_like(G[2 * p :])]))


class Block:
    """W(G, H) = real rows of sum_l diag(g~_l) V C_f(J h_l), built by dense products (an oracle)."""

    def __init__(self, choice, b, dtype):
        w, f, self.paired = factors(choice, b)
        self.b, self.dtype = b, dtype
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.V = torch.as_tensor(w[:, None] ** np.arange(b)[None, :], dtype=cdtype)
        # C_f(u)[k, j] = u[(k - j) mod b], times f above the diagonal (u = J h).
        k, j = np.arange(b)[:, None], np.arange(b)[None, :]
        self.index = torch.as_tensor((k - j) % b)
        self.weight = torch.as_tensor(np.where(k >= j, 1.0, f), dtype=dtype)

    def vandermonde(self):
        """The real b×b Vandermonde factor (real rows of V)."""
        return real_rows(self.V, self.b, self.paired)

    def __call__(self, G, H):
        b = self.b
        C = H.flip(-1)[:, self.index] * self.weight  # (R, b, b): C_f(J h_l)
        VC = self.V @ C.to(self.V.dtype)  # (R, h, b)
        g = complex_rows(G, b, self.paired)  # (h, R)
        return real_rows((g.T.unsqueeze(-1) * VC).sum(0), b, self.paired)


def numerical_rank(W, threshold):
    s = torch.linalg.svdvals(W.double())
    return int((s > threshold * s[0]).sum()), float(s[-1] / s[0])


def random_block(choice, b, dtype, seed):
    rng = np.random.default_rng(seed)
    G = torch.as_tensor(rng.standard_normal((b, 1)), dtype=dtype)
    H = torch.as_tensor(rng.standard_normal((1, b)), dtype=dtype)
    return Block(choice, b, dtype)(G, H)


def train(choice, b, lr, target, seed=0):
    """Relative loss ||W - T||^2 / ||T||^2 after STEPS Adam steps (float32, rank 2)."""
    gen = torch.Generator().manual_seed(seed)
    block = Block(choice, b, torch.float32)
    if target == "rank1":
        T = torch.randn(b, 1, generator=gen) @ torch.randn(1, b, generator=gen) / b
    else:
        T = torch.randn(b, b, generator=gen) / b
    G, H = torch.randn(b, 2, generator=gen), torch.randn(2, b, generator=gen)
    # Start every choice at the same relative size, ||W(theta0)|| = 0.1 ||T||, and give Adam
    # steps relative to the generators' scale c: otherwise the comparison measures the init
    # scale (unit-circle blocks are ~sqrt(b) larger than Chebyshev ones for equal generators).
    with torch.no_grad():
        c = math.sqrt(0.1 * float(T.norm()) / float(block(G, H).norm()))
    G, H = (c * G).requires_grad_(), (c * H).requires_grad_()
    opt = torch.optim.Adam([G, H], lr=lr * c)
    norm = float(T.square().sum())
    loss = None
    for _ in range(STEPS):
        loss = (block(G, H) - T).square().sum() / norm
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = float((block(G, H) - T).square().sum() / norm)
    return final if math.isfinite(final) else float("inf")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "vandermonde_nodes"))
    parser.add_argument("--quick", action="store_true", help="sizes 48 and 96 only (seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = (48, 96) if args.quick else SIZES
    train_sizes = tuple(b for b in TRAIN_SIZES if b in sizes)
    t0 = time.perf_counter()
    rows = []
    for b in sizes:
        for choice in CHOICES:
            V = Block(choice, b, torch.float64).vandermonde()
            kappa = float(np.linalg.cond(V.numpy()))
            r64, ratio = numerical_rank(random_block(choice, b, torch.float64, b), 1e-8)
            r32, _ = numerical_rank(random_block(choice, b, torch.float32, b), 1e-5)
            row = {"b": b, "choice": choice, "f": factors(choice, b)[1], "kappa_V": kappa, "rank64": r64,
                   "rank32": r32, "sigma_ratio": ratio}
            for target in TARGETS:
                losses = {lr: train(choice, b, lr, target) for lr in LEARNING_RATES} if b in train_sizes else {}
                best = min(losses.items(), key=lambda kv: kv[1]) if losses else (None, None)
                row.update({f"loss_{target}": best[1], f"lr_{target}": best[0],
                            f"losses_{target}": {str(k): v for k, v in losses.items()}})
            rows.append(row)
            print(f"b={b:4d} {choice:14s} kappa(V)={kappa:9.2e} rank64={r64:4d} rank32={r32:4d} "
                  f"smin/smax={ratio:8.1e} loss={row['loss_rank1']} {row['loss_dense']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/vandermonde_nodes.py" + (" --quick" if args.quick else "")
    meta = {"command": command, "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
            "threads": 1, "wall_s": round(time.perf_counter() - t0, 1)}
    (out / "vandermonde_nodes.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [
        "# Vandermonde-like blocks: node choice against conditioning, numerical rank and training",
        "",
        f"Command: `{command}` (torch {meta['torch']}, numpy {meta['numpy']}, one thread, {meta['wall_s'] / 60:.1f} min). "
        "b×b blocks; the Krylov form W = Σ_l diag(g_l) V(v) C_f(J h_l) for every choice.",
        "",
        "- **chebyshev_f0**: the former HyDRA blocks (real Chebyshev points, f = 0); **chebyshev_f-1**: the former "
        "`ldr.nn` layer (Chebyshev points of an even count, f = −1); **circle_f0**: the m-th roots of −1 in conjugate "
        "pairs, real parametrisation, f = 0; **circle**: the same nodes with f = ±1 (`ldr.nn.vandermonde_shift`), "
        "now used by `ldr.nn` and `hydra`.",
        "- κ(V): 2-norm condition number of the real b×b Vandermonde factor (float64; values near or above 1e16 "
        "only say that V is numerically singular). rank64: numerical rank of one random displacement-rank-1 block "
        "(standard normal generators), float64, σ_i > 1e-8 σ_max; rank32: the block built in float32, σ_i > 1e-5 "
        "σ_max. σ_min/σ_max of the float64 block.",
        f"- loss: ‖W − T‖²/‖T‖² after {STEPS} Adam steps (float32, displacement rank 2; generators drawn standard "
        "normal and scaled by c so that ‖W(θ0)‖ = 0.1 ‖T‖; best of the learning rates "
        f"{', '.join(map(str, LEARNING_RATES))} times c, the factor in brackets), b ≤ 192. **rank-1 T** = a bᵀ (random): every "
        "choice can represent it exactly (a rank-1 matrix has displacement rank ≤ 2 for every operator pair), and "
        "it suits a numerically low-rank parametrisation. **dense T** (i.i.d. Gaussian): no choice can fit it; "
        "1 − loss is the share of a generic target the block captures, a measure of how many directions it can "
        "move in.",
        "",
        "| b | choice | f | κ(V) | rank64 | rank32 | σ_min/σ_max | loss, rank-1 T (lr) | loss, dense T (lr) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        loss = [f"{r[f'loss_{t}']:.2e} ({r[f'lr_{t}']:g})" if r[f"loss_{t}"] is not None else "" for t in TARGETS]
        lines.append(f"| {r['b']} | {r['choice']} | {r['f']:g} | {r['kappa_V']:.1e} | {r['rank64']} | {r['rank32']} | "
                     f"{r['sigma_ratio']:.1e} | {loss[0]} | {loss[1]} |")
    (out / "vandermonde_nodes.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/vandermonde_nodes.md, vandermonde_nodes.json in {meta['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()

r"""Gaussian elimination with partial pivoting on the generators of a Cauchy-like matrix (GKO).

For :math:`\operatorname{diag}(v) C - C \operatorname{diag}(u) = G H` every entry is
:math:`C_{ij} = g_i^T h_j / (v_i - u_j)`, so any block of C costs O(r) per entry from the
generators, and the Schur complement after eliminating a leading b×b block is Cauchy-like
again for the remaining nodes (Gohberg, Kailath and Olshevsky, 1995). Row interchanges only
permute :math:`v` and the rows of G, so partial pivoting costs nothing extra.

The elimination is blocked: b pivots at a time, it materialises the current column panel
from the generators, factors it with LAPACK's pivoted ``getrf`` (the same pivots dense LU
would choose), materialises the pivot rows, and updates both generators with triangular
solves and matrix products. The whole LU factorisation costs :math:`O(r n^2 + b n^2)` flops in
:math:`\lceil n/b \rceil` Python-level steps. Derivation: :doc:`/theory/solvers`.

The kernel is written once with Python's array operators (``@``, slicing, in-place ``-=``),
which NumPy arrays and torch tensors share, plus the backend's ``lu_factor``,
``solve_triangular`` and ``take``; it trusts its input and runs without autograd (see
``ldr.solvers``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "TINY_PIVOT", "CauchyLU", "factor_cauchy_like"]

#: Pivots eliminated per step. Measured on one thread (``benchmarks/bench_solve.py``):
#: smaller blocks pay Python overhead per step, larger ones pay the panel factorisation's
#: :math:`O(b n^2)` flops.
BLOCK = 32

#: A pivot below this fraction of the largest one so far switches the rest of the elimination
#: to one pivot per step (see ``factor_cauchy_like``): the block update of the generators goes
#: through :math:`U_{11}^{-1}`, which tiny pivots make inaccurate.
TINY_PIVOT = 2.0**-20  # ~1e-6: 2**-26 (~sqrt(eps)) left 3e-14 on the prolate matrix at n = 2048


class _Block:
    """One elimination step: rows/columns ``start .. start + b`` of the factors.

    ``perm``: the step's row interchanges (row i of the pivoted rest is row ``perm[i]`` before);
    ``lu`` (n - start, b): :math:`U_{11}` in its upper triangle, :math:`L_{11}` (unit) below it and
    :math:`L_{21}` in the rows below b; ``W12`` (b, n - start - b): the rest of the pivot rows of
    C, so that the rest of the pivot rows of U is :math:`U_{12} = L_{11}^{-1} W_{12}` (kept
    implicit: forming it would cost a triangular solve of :math:`b^2 (n - k)` per step).
    """

    __slots__ = ("start", "perm", "lu", "W12")

    def __init__(self, start, perm, lu, W12):
        self.start, self.perm, self.lu, self.W12 = start, perm, lu, W12


class CauchyLU:
    r"""The factorisation :math:`P C = L U` of one Cauchy-like matrix, kept by blocks.

    L and U are stored as the steps' panels (:math:`n^2` entries in all, like a packed dense
    LU); the row interchanges of each step apply to the rows below it, as in LAPACK's
    ``getrs``. Keeping the panels as ``getrf`` returned them measured faster than gathering
    them into two n×n triangles (which costs two n×n allocations and a scatter and a gather
    of every entry), and the solves are memory-bound either way.

    Attributes
    ----------
    n : int
    perm : numpy.ndarray of int, shape (n,)
        Row ``i`` of :math:`P C` is row ``perm[i]`` of C.
    """

    def __init__(self, blocks, n, bk):
        self._blocks, self.n, self._bk = blocks, n, bk
        perm = np.arange(n)
        for block in blocks:
            perm[block.start :] = perm[block.start :][block.perm]
        self.perm = perm

    @property
    def pivots(self):
        """The diagonal of U (the elimination's pivots), shape (n,); 0 where it stopped early."""
        bk = self._bk
        parts = [block.lu[: block.lu.shape[1]].diagonal() for block in self._blocks]
        done = sum(int(block.lu.shape[1]) for block in self._blocks)
        if done < self.n:  # stopped at a zero or non-finite pivot
            parts.append(bk.zeros((self.n - done,), parts[0].dtype, like=parts[0]))
        return bk.concatenate(parts, axis=0)

    def parity(self):
        """The sign of the permutation P, +1 or -1."""
        seen, sign = np.zeros(len(self.perm), dtype=bool), 1
        for start in range(len(self.perm)):  # a cycle of length L contributes (-1)^(L-1)
            length, i = 0, start
            while not seen[i]:
                seen[i], i, length = True, self.perm[i], length + 1
            if length:
                sign *= (-1) ** (length - 1)
        return sign

    def solve(self, Y, transpose=False):
        """``C^{-1} Y`` (``C^{-T} Y`` with ``transpose``) for ``Y`` of shape (n, k)."""
        bk = self._bk
        Y = bk.concatenate([Y], axis=0)  # a fresh copy, updated in place block by block
        solve_triangular = bk.solve_triangular
        if not transpose:
            # Forward: per step, interchange the remaining rows, then L11^{-1}, then the L21 update.
            for block in self._blocks:
                k, lu = block.start, block.lu
                b = lu.shape[1]
                Y[k:] = bk.take(Y[k:], block.perm, axis=0)
                Y[k : k + b] = solve_triangular(lu[:b], Y[k : k + b], lower=True, unit_diagonal=True)
                if block.W12 is not None:
                    Y[k + b :] -= lu[b:] @ Y[k : k + b]
            for block in reversed(self._blocks):  # back substitution with the rows of U
                k, lu = block.start, block.lu
                b = lu.shape[1]
                if block.W12 is not None:  # U12 x_rest = L11^{-1} (W12 x_rest)
                    Y[k : k + b] -= solve_triangular(lu[:b], block.W12 @ Y[k + b :], lower=True, unit_diagonal=True)
                Y[k : k + b] = solve_triangular(lu[:b], Y[k : k + b], lower=False)
            return Y
        # C^{-T} is the transpose of the product above, applied in reverse order.
        for block in self._blocks:
            k, lu = block.start, block.lu
            b = lu.shape[1]
            Y[k : k + b] = solve_triangular(lu[:b], Y[k : k + b], lower=False, transpose=True)
            if block.W12 is not None:  # U12^T z = W12^T (L11^{-T} z)
                z = solve_triangular(lu[:b], Y[k : k + b], lower=True, unit_diagonal=True, transpose=True)
                Y[k + b :] -= bk.swapaxes(block.W12, -1, -2) @ z
        for block in reversed(self._blocks):
            k, lu = block.start, block.lu
            b = lu.shape[1]
            if block.W12 is not None:
                Y[k : k + b] -= bk.swapaxes(lu[b:], -1, -2) @ Y[k + b :]
            Y[k : k + b] = solve_triangular(lu[:b], Y[k : k + b], lower=True, unit_diagonal=True, transpose=True)
            Y[k:] = bk.take(Y[k:], np.argsort(block.perm), axis=0)
        return Y


def factor_cauchy_like(v, u, G, H, bk, block=None):
    r"""LU factorisation with partial pivoting of the Cauchy-like matrix with generators (G, H).

    Parameters
    ----------
    v, u : array, shape (n,)
        Row and column nodes, :math:`v_i \ne u_j` (one complex dtype for all four arrays).
    G : array, shape (n, r)
    H : array, shape (r, n)
    bk : Backend
    block : int, optional
        Pivots per step (default :data:`BLOCK`); ``block=1`` is the classical one-pivot-per-step
        GKO elimination. From the first panel with a pivot below :data:`TINY_PIVOT` times the
        largest pivot so far, the rest runs with one pivot per step (accuracy near singularity).

    Returns
    -------
    CauchyLU
        An exactly zero (or non-finite) pivot stops the elimination after its step; the pivots
        not reached are reported as 0 (the caller decides what a singular factorisation means).

    Notes
    -----
    Step k works on the Schur complement :math:`C_k` (rows and columns k..n-1) with generators
    :math:`G_k` (rows k..) and :math:`H_k` (columns k..). With b pivots per step:

    1. column panel :math:`P = (G_k H_{k,:,:b}) \oslash (v_{k:} - u_{k:k+b}^T)`, (n-k)×b;
       ``getrf`` gives :math:`P[\pi] = [L_{11}; L_{21}]\, U_{11}`; permute the rows of
       :math:`G_k` and :math:`v_{k:}` by :math:`\pi`;
    2. pivot rows :math:`W_{12} = (G_1 H_2) \oslash (v_1 - u_2^T)` (G_1 the first b rows,
       H_2 the columns after b); U's rows are :math:`[U_{11},\ L_{11}^{-1} W_{12}]`;
    3. :math:`G_{k+b} = G_2 - L_{21} (L_{11}^{-1} G_1)`,
       :math:`H_{k+b} = H_2 - (H_1 U_{11}^{-1} L_{11}^{-1})\, W_{12}`.

    Per step: :math:`O((n-k) b r)` for the panels and updates, :math:`O((n-k) b^2)` for
    ``getrf``; in all :math:`O(r n^2 + b n^2 / 2)` flops in :math:`\lceil n/b \rceil` steps.
    """
    n, r = G.shape
    step = BLOCK if block is None else int(block)
    # Fresh copies: rows of G and entries of v are interchanged and updated in place.
    G = bk.concatenate([G], axis=0)
    H = bk.concatenate([H], axis=0)
    v = bk.concatenate([v], axis=0)
    solve_triangular = bk.solve_triangular
    blocks = []
    largest = 0.0  # the largest pivot so far
    k = 0
    while k < n:
        b = min(step, n - k)
        panel = (G[k:] @ H[:, k : k + b]) / (v[k:, None] - u[None, k : k + b])
        lu, perm = bk.lu_factor(panel)
        U11 = lu[:b]
        pivots = bk.to_numpy(U11.diagonal())
        magnitude = np.abs(pivots)
        largest = max(largest, float(magnitude.max(initial=0.0)))
        if b > 1 and np.all(np.isfinite(magnitude)) and magnitude.min() < TINY_PIVOT * largest:
            # Near-singular from here on: one pivot per step is markedly more accurate than a
            # block update through a triangle with tiny pivots (measured on the prolate matrix:
            # backward error 2e-15 against 2e-12 at n = 2048), so finish with step 1; discard
            # this panel.
            step = 1
            continue
        G[k:] = bk.take(G[k:], perm, axis=0)
        v[k:] = bk.take(v[k:], perm, axis=0)
        if k + b == n or not np.all(np.isfinite(pivots)) or bool(np.any(pivots == 0)):
            blocks.append(_Block(k, perm, lu, None))
            break  # done, or a zero/non-finite pivot: the caller reads it from ``pivots``
        G1 = G[k : k + b]
        W12 = (G1 @ H[:, k + b :]) / (v[k : k + b, None] - u[None, k + b :])
        blocks.append(_Block(k, perm, lu, W12))
        # Schur complement generators (docs: "Blocked elimination"): W21 W11^{-1} = L21 L11^{-1}
        # and H1 W11^{-1} = H1 U11^{-1} L11^{-1}, both from b x b triangles.
        G[k + b :] -= lu[b:] @ solve_triangular(U11, G1, lower=True, unit_diagonal=True)
        Ht = solve_triangular(U11, bk.swapaxes(H[:, k : k + b], -1, -2), lower=False, transpose=True)
        Ht = solve_triangular(U11, Ht, lower=True, unit_diagonal=True, transpose=True)  # (H1 W11^{-1})^T
        H[:, k + b :] -= bk.swapaxes(Ht, -1, -2) @ W12
        k += b
    return CauchyLU(blocks, n, bk)

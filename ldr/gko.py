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
:math:`\lceil n/b \rceil` Python-level steps. For the nodes of the DFT routes the kernel
:math:`1/(v_i - u_j)` is gathered from n precomputed values instead of divided per entry; the
b×b triangles are inverted once so that solves are matrix products; after a tiny pivot a small
remaining Schur complement is factored densely. Derivation: :doc:`/theory/solvers`.

The kernel is written once with Python's array operators (``@``, slicing, in-place ``-=``),
which NumPy arrays and torch tensors share, plus the backend's ``lu_factor``,
``solve_triangular`` and ``take``; it trusts its input and runs without autograd (see
``ldr.solvers``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "TINY_PIVOT", "DENSE_TAIL", "CauchyLU", "factor_cauchy_like"]

#: Pivots eliminated per step. Measured on one thread (``benchmarks/bench_solve.py``):
#: smaller blocks pay Python overhead per step, larger ones pay the panel factorisation's
#: :math:`O(b n^2)` flops.
BLOCK = 32

#: A pivot below this fraction of the largest one so far switches the rest of the elimination
#: to one pivot per step (see ``factor_cauchy_like``): the block update of the generators goes
#: through :math:`U_{11}^{-1}`, which tiny pivots make inaccurate.
TINY_PIVOT = 2.0**-20  # ~1e-6: 2**-26 (~sqrt(eps)) left 3e-14 on the prolate matrix at n = 2048

#: After a tiny pivot, a remaining Schur complement of at most this order is materialised from
#: the generators and factored densely (``getrf``, GEPP on it) instead of one pivot per step:
#: on the prolate matrix (numerically singular in its last ~10 % of pivots) the backward error
#: went from 1e-15 (one pivot per step) to that of dense LU, and the Python-level steps went.
DENSE_TAIL = 1024


class _Block:
    """One elimination step: rows/columns ``start .. start + b`` of the factors.

    ``perm``: the step's row interchanges (row i of the pivoted rest is row ``perm[i]`` before);
    ``lu`` (n - start, b): :math:`U_{11}` in its upper triangle, :math:`L_{11}` (unit) below it and
    :math:`L_{21}` in the rows below b; ``W12`` (b, n - start - b): the rest of the pivot rows of
    C, so that the rest of the pivot rows of U is :math:`U_{12} = L_{11}^{-1} W_{12}` (kept
    implicit: forming it would cost a triangular solve of :math:`b^2 (n - k)` per step).
    """

    __slots__ = ("start", "perm", "unperm", "lu", "W12", "L11_inv", "U11_inv")

    def __init__(self, start, perm, lu, W12, L11_inv, U11_inv):
        self.start, self.perm, self.lu, self.W12 = start, perm, lu, W12
        self.unperm = np.argsort(perm)
        self.L11_inv, self.U11_inv = L11_inv, U11_inv  # None for a dense tail: substitution

    def lower(self, Y, bk, transpose=False):
        """:math:`L_{11}^{-1} Y` (:math:`L_{11}^{-T} Y`)."""
        if self.L11_inv is not None:
            return (bk.swapaxes(self.L11_inv, -1, -2) if transpose else self.L11_inv) @ Y
        b = self.lu.shape[1]
        return bk.solve_triangular(self.lu[:b], Y, lower=True, unit_diagonal=True, transpose=transpose)

    def upper(self, Y, bk, transpose=False):
        """:math:`U_{11}^{-1} Y` (:math:`U_{11}^{-T} Y`)."""
        if self.U11_inv is not None:
            return (bk.swapaxes(self.U11_inv, -1, -2) if transpose else self.U11_inv) @ Y
        b = self.lu.shape[1]
        return bk.solve_triangular(self.lu[:b], Y, lower=False, transpose=transpose)


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
        T = lambda a: bk.swapaxes(a, -1, -2)  # noqa: E731
        if not transpose:
            # Forward: per step, interchange the remaining rows, then L11^{-1}, then the L21 update.
            for block in self._blocks:
                k, lu = block.start, block.lu
                b = lu.shape[1]
                Y[k:] = bk.take(Y[k:], block.perm, axis=0)
                Y[k : k + b] = block.lower(Y[k : k + b], bk)
                if block.W12 is not None:
                    Y[k + b :] -= lu[b:] @ Y[k : k + b]
            for block in reversed(self._blocks):  # back substitution with the rows of U
                k, lu = block.start, block.lu
                b = lu.shape[1]
                if block.W12 is not None:  # U12 x_rest = L11^{-1} (W12 x_rest)
                    Y[k : k + b] -= block.lower(block.W12 @ Y[k + b :], bk)
                Y[k : k + b] = block.upper(Y[k : k + b], bk)
            return Y
        # C^{-T} is the transpose of the product above, applied in reverse order.
        for block in self._blocks:
            k, lu = block.start, block.lu
            b = lu.shape[1]
            Y[k : k + b] = block.upper(Y[k : k + b], bk, transpose=True)
            if block.W12 is not None:  # U12^T z = W12^T (L11^{-T} z)
                Y[k + b :] -= T(block.W12) @ block.lower(Y[k : k + b], bk, transpose=True)
        for block in reversed(self._blocks):
            k, lu = block.start, block.lu
            b = lu.shape[1]
            if block.W12 is not None:
                Y[k : k + b] -= T(lu[b:]) @ Y[k + b :]
            Y[k : k + b] = block.lower(Y[k : k + b], bk, transpose=True)
            Y[k:] = bk.take(Y[k:], block.unperm, axis=0)
        return Y


class _Kernel:
    r"""The blocks :math:`(G_I H_J) \oslash (v_I - u_J^T)` of a Cauchy-like matrix, with its row nodes permuted.

    For the nodes of the DFT routes, :math:`v_i = \omega^i` and :math:`u_j = c\,\omega^j`
    (``circulant=c``), :math:`1/(v_i - u_j) = \omega^{-j} \kappa_{(i - j) \bmod n}` with
    :math:`\kappa_d = 1/(\omega^d - c)`: a gather from n precomputed values replaces the
    complex division per entry (measured: the divisions were a third of the factorisation at
    n = 1024). ``origin`` follows the row interchanges.
    """

    def __init__(self, v, u, bk, circulant=None):
        self.v, self.u, self.bk = v, u, bk
        self.circulant = circulant
        n = v.shape[0]
        if circulant is not None:
            powers = np.exp(-2j * np.pi * np.arange(n) / n)
            kappa = 1.0 / (powers - circulant)
            # rho[m] = kappa[(n - 1 - m) mod n], m < 2n: row i of the block for columns
            # c0..c0+w is rho[s_i : s_i + w] with s_i = n - 1 - origin_i + c0 (no mod n).
            rho = np.concatenate([kappa, kappa])[::-1].copy()
            self.rho = bk.asarray(rho, dtype=v.dtype, like=v)
            self.scale = bk.asarray(powers.conj(), dtype=v.dtype, like=v)  # omega^{-j}
            self.origin = np.arange(n)

    def permute(self, start, perm):
        """Rows ``start..`` interchanged by ``perm``."""
        v = self.v
        v[start:] = self.bk.take(v[start:], perm, axis=0)
        if self.circulant is not None:
            self.origin[start:] = self.origin[start:][perm]

    def block(self, G_rows, H, rows, columns):
        r""":math:`(G_I H_J) \oslash (v_I - u_J^T)` for ``G_rows`` = G[rows], slices ``rows``, ``columns``."""
        if self.circulant is None:
            return (G_rows @ H[:, columns]) / (self.v[rows, None] - self.u[None, columns])
        bk, n = self.bk, self.v.shape[0]
        c0, c1, _ = columns.indices(n)
        starts = n - 1 - self.origin[rows] + c0
        # (A strided window view gathered by rows measured no faster than this index.)
        kernel = bk.take(self.rho, starts[:, None] + np.arange(c1 - c0)[None, :])
        block = G_rows @ (H[:, columns] * self.scale[columns])
        block *= kernel
        return block


def factor_cauchy_like(v, u, G, H, bk, block=None, circulant=None):
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
    circulant : complex, optional
        When :math:`v_i = \omega^i` and :math:`u_j = c\,\omega^j` with
        :math:`\omega = e^{-2\pi i/n}` (the Toeplitz, Hankel and low-rank routes of
        ``ldr.solvers``), ``c``: the kernel entries are then gathered, not divided.

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
    kernel = _Kernel(v, u, bk, circulant)
    eyes = {}
    solve_triangular = bk.solve_triangular
    blocks = []
    largest = 0.0  # the largest pivot so far
    k = 0
    while k < n:
        b = min(step, n - k)
        panel = kernel.block(G[k:], H, slice(k, n), slice(k, k + b))
        lu, perm = bk.lu_factor(panel)
        U11 = lu[:b]
        pivots = bk.to_numpy(U11.diagonal())
        magnitude = np.abs(pivots)
        largest = max(largest, float(magnitude.max(initial=0.0)))
        tail = b == n - k and step >= n - k  # the dense tail (or the last block): no switch
        if b > 1 and not tail and np.all(np.isfinite(magnitude)) and magnitude.min() < TINY_PIVOT * largest:
            # Near-singular from here on: a block update through a triangle with tiny pivots
            # loses accuracy (prolate matrix, n = 2048: backward error 2e-12 against 2e-15 for
            # one pivot per step). Discard this panel and finish with GEPP on the dense Schur
            # complement when it is small enough, else with one pivot per step.
            step = n - k if n - k <= DENSE_TAIL else 1
            continue
        G[k:] = bk.take(G[k:], perm, axis=0)
        kernel.permute(k, perm)
        # The b x b triangles' inverses (b^3 flops): the solves apply them with one matrix
        # product instead of a triangular solve (measured: the per-call overhead of the b x b
        # solves was most of a solve's time at n ~ 1000).
        if k + b < n or b <= BLOCK:  # (also a caller's block above BLOCK: its updates need them)
            if b not in eyes:
                eyes[b] = bk.asarray(np.eye(b), dtype=lu.dtype, like=lu)
            L11_inv = solve_triangular(U11, eyes[b], lower=True, unit_diagonal=True)
            U11_inv = solve_triangular(U11, eyes[b], lower=False)
        else:  # a dense tail: substitution (an explicit inverse of a near-singular U11 is not)
            L11_inv = U11_inv = None
        if k + b == n or not np.all(np.isfinite(pivots)) or bool(np.any(pivots == 0)):
            blocks.append(_Block(k, perm, lu, None, L11_inv, U11_inv))
            break  # done, or a zero/non-finite pivot: the caller reads it from ``pivots``
        G1 = G[k : k + b]
        W12 = kernel.block(G1, H, slice(k, k + b), slice(k + b, n))
        blocks.append(_Block(k, perm, lu, W12, L11_inv, U11_inv))
        # Schur complement generators (docs: "Blocked elimination"): W21 W11^{-1} = L21 L11^{-1}
        # and H1 W11^{-1} = H1 U11^{-1} L11^{-1}, with the triangles' inverses (measured against
        # triangular solves: the same backward errors, prolate included; 7 % less time at n = 1024).
        G[k + b :] -= lu[b:] @ (L11_inv @ G1)
        H[:, k + b :] -= ((H[:, k : k + b] @ U11_inv) @ L11_inv) @ W12
        k += b
    return CauchyLU(blocks, n, bk)

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
remaining Schur complement is factored densely. :func:`factor_cauchy_like_batch` runs the same
steps for a batch of matrices at once. Derivation: :doc:`/theory/solvers`.

The kernel is written once with Python's array operators (``@``, slicing, in-place ``-=``),
which NumPy arrays and torch tensors share, plus the backend's ``lu_factor``,
``solve_triangular`` and ``take``; it trusts its input and runs without autograd (see
``ldr.solvers``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLOCK",
    "TINY_PIVOT",
    "DENSE_TAIL",
    "BATCH_MAX_N",
    "CauchyLU",
    "BatchCauchyLU",
    "factor_cauchy_like",
    "factor_cauchy_like_batch",
]

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

#: A batch of matrices up to this order is factored by :func:`factor_cauchy_like_batch` (every
#: entry in each step), a larger one entry by entry (``ldr.solvers``). Measured on one thread,
#: NumPy, Toeplitz-like r = 2, batched over unbatched factorisation time (median of 7 paired runs):
#: 0.53 for 64 matrices of order 64, 0.73 for 16 of order 256, 0.93 for 8 of order 512, 1.08
#: for 4 of order 1024 (the per-entry Python overhead is then a small part of the work).
BATCH_MAX_N = 512


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
        # The inverse permutation (of each batch entry's), by a scatter: O(n), argsort is O(n log n).
        self.unperm = np.empty_like(perm)
        if perm.ndim == 1:
            self.unperm[perm] = np.arange(len(perm))
        else:
            np.put_along_axis(self.unperm, perm, np.broadcast_to(np.arange(perm.shape[-1]), perm.shape), axis=-1)
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

    def block(self, G_rows, H, rows, columns, column_major=False):
        r""":math:`(G_I H_J) \oslash (v_I - u_J^T)` for ``G_rows`` = G[rows], slices ``rows``, ``columns``.

        ``column_major``: computed as its transpose and returned as a transposed view (a
        column-major array), the layout LAPACK's ``getrf`` factors in place; a row-major panel
        is first copied by the wrapper (measured: 30 % of the panel factorisations' time at
        n = 1024, b = 32).
        """
        # Written on the last axes, so that a batch (:class:`_BatchKernel`: row nodes and origins
        # (B, n), generators with a leading batch axis) takes the same code.
        T = self.bk.swapaxes
        if self.circulant is None:
            u = self.u[..., columns]
            if column_major:
                kernel = self.v[..., None, rows] - u[..., :, None]
                return T((T(H[..., columns], -1, -2) @ T(G_rows, -1, -2)) / kernel, -1, -2)
            return (G_rows @ H[..., columns]) / (self.v[..., rows, None] - u[..., None, :])
        bk, n = self.bk, self.v.shape[-1]
        c0, c1, _ = columns.indices(n)
        starts = n - 1 - self.origin[..., rows] + c0  # (rows,) or (B, rows)
        # (A strided window view gathered by rows measured no faster than this index.)
        offsets = np.arange(c1 - c0)
        scaled = H[..., columns] * self.scale[columns]
        if column_major:
            block = T(scaled, -1, -2) @ T(G_rows, -1, -2)
            block *= bk.take(self.rho, offsets[:, None] + starts[..., None, :])
            return T(block, -1, -2)
        block = G_rows @ scaled
        block *= bk.take(self.rho, starts[..., :, None] + offsets)
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
        panel = kernel.block(G[k:], H, slice(k, n), slice(k, k + b), column_major=True)
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


# -- a batch of matrices at once --------------------------------------------------------------------
def _gather_rows(bk, X, perm):
    """Per batch entry i, the rows ``perm[i]`` of ``X[i]``: X (B, m, ...), perm (B, m) NumPy ints."""
    B, m = perm.shape
    flat = (np.arange(B)[:, None] * m + perm).reshape(-1)
    rest = tuple(X.shape[2:])
    return bk.take(X.reshape((B * m,) + rest), flat, axis=0).reshape((B, m) + rest)


class _BatchKernel(_Kernel):
    """:class:`_Kernel` for a batch: row nodes (B, n), generators with a leading batch axis."""

    def __init__(self, v, u, bk, circulant=None):
        super().__init__(v[0], u, bk, circulant)
        self.v = v
        if circulant is not None:
            self.origin = np.broadcast_to(self.origin, tuple(v.shape)).copy()

    def permute(self, start, perm):
        self.v[:, start:] = _gather_rows(self.bk, self.v[:, start:], perm)
        if self.circulant is not None:
            self.origin[:, start:] = np.take_along_axis(self.origin[:, start:], perm, axis=1)


def factor_cauchy_like_batch(v, u, G, H, bk, circulant=None):
    r""":func:`factor_cauchy_like` for B matrices at once, one Python-level step per block of pivots.

    Parameters
    ----------
    v : array, shape (B, n)
    u : array, shape (n,) or (B, n)
    G : array, shape (B, n, r)
    H : array, shape (B, r, n)
    bk : Backend
    circulant : complex, optional
        As in :func:`factor_cauchy_like` (the same c for every entry).

    Returns
    -------
    BatchCauchyLU

    Notes
    -----
    Every step is :func:`factor_cauchy_like`'s with a leading batch axis: the panels, pivot
    rows and generator updates are batched products and gathers, the panel factorisations one
    batched ``getrf`` (torch) or one LAPACK call per panel (NumPy, which has no batched LU).
    Each entry pivots on its own rows. An entry whose panel meets a pivot below
    :data:`TINY_PIVOT` times its largest so far, an exactly zero or a non-finite pivot, leaves the
    batch and is factored again alone by :func:`factor_cauchy_like` (its dense tail or one pivot
    per step): the batch never changes what an entry's factorisation is.
    """
    B, n, _ = G.shape
    # Fresh copies: rows of G and entries of v are interchanged and updated in place.
    G = bk.concatenate([G], axis=0)
    H = bk.concatenate([H], axis=0)
    v = bk.concatenate([v], axis=0)
    kernel = _BatchKernel(v, u, bk, circulant)
    blocks, eyes = [], {}
    largest = np.zeros(B)
    alone = np.zeros(B, dtype=bool)  # entries to factor again one at a time
    k = 0
    # An entry set aside may overflow or divide by zero in the steps that follow; the others
    # are independent of it (every operation is per entry).
    with np.errstate(all="ignore"):
        while k < n and not alone.all():
            b = min(BLOCK, n - k)
            panel = kernel.block(G[:, k:], H, slice(k, n), slice(k, k + b), column_major=True)
            lu, perm = bk.lu_factor(panel)
            U11 = lu[:, :b]
            magnitude = np.abs(bk.to_numpy(U11.diagonal(0, -2, -1)))
            finite = np.isfinite(magnitude).all(axis=-1)
            largest = np.where(finite, np.maximum(largest, magnitude.max(axis=-1, initial=0.0)), largest)
            alone |= ~finite | (magnitude == 0).any(axis=-1)
            if k + b < n:  # the last block never switches (as in factor_cauchy_like)
                alone |= finite & (magnitude.min(axis=-1) < TINY_PIVOT * largest)
            G[:, k:] = _gather_rows(bk, G[:, k:], perm)
            kernel.permute(k, perm)
            if b not in eyes:
                eyes[b] = bk.asarray(np.eye(b), dtype=lu.dtype, like=lu)
            L11_inv = bk.solve_triangular(U11, eyes[b], lower=True, unit_diagonal=True)
            U11_inv = bk.solve_triangular(U11, eyes[b], lower=False)
            if k + b == n:
                blocks.append(_Block(k, perm, lu, None, L11_inv, U11_inv))
                break
            G1 = G[:, k : k + b]
            W12 = kernel.block(G1, H, slice(k, k + b), slice(k + b, n))
            blocks.append(_Block(k, perm, lu, W12, L11_inv, U11_inv))
            G[:, k + b :] -= lu[:, b:] @ (L11_inv @ G1)
            H[..., k + b :] -= ((H[..., k : k + b] @ U11_inv) @ L11_inv) @ W12
            k += b
    return BatchCauchyLU(blocks, n, B, bk, alone)


class BatchCauchyLU:
    r"""The factorisations :math:`P_i C_i = L_i U_i` of a batch, kept by blocks with a leading batch axis.

    ``alone`` marks the entries that the batched steps set aside; the caller factors them with
    :func:`factor_cauchy_like` and hands them over with :meth:`replace` (their rows of every
    result are then computed by those factorisations).
    """

    def __init__(self, blocks, n, batch, bk, alone):
        self._blocks, self.n, self.batch, self._bk = blocks, n, batch, bk
        self.alone = alone
        self._replaced = {}
        perm = np.broadcast_to(np.arange(n), (batch, n)).copy()
        for block in blocks:
            perm[:, block.start :] = np.take_along_axis(perm[:, block.start :], block.perm, axis=1)
        self.perm = perm

    @classmethod
    def of_entries(cls, factorizations, n, bk):
        """A batch made of separate :class:`CauchyLU` factorisations (solves run entry by entry)."""
        self = cls([], n, len(factorizations), bk, np.ones(len(factorizations), dtype=bool))
        for index, lu in enumerate(factorizations):
            self.replace(index, lu)
        return self

    def replace(self, index, lu):
        """Entry ``index`` is factored by ``lu`` (a :class:`CauchyLU`) instead."""
        self._replaced[int(index)] = lu

    def pivots(self):
        """The pivots as a NumPy array (B, n): 0 where an entry's elimination stopped early."""
        bk = self._bk
        parts = [bk.to_numpy(block.lu[:, : block.lu.shape[-1]].diagonal(0, -2, -1)) for block in self._blocks]
        out = np.concatenate(parts, axis=-1) if parts else np.zeros((self.batch, 0), dtype=complex)
        out = np.concatenate([out, np.zeros((self.batch, self.n - out.shape[-1]), out.dtype)], axis=-1)
        for index, lu in self._replaced.items():
            out[index] = bk.to_numpy(lu.pivots)
        return out

    def parity(self):
        """The signs of the row permutations, a NumPy array (B,) of +1 and -1.

        sign = (-1)^(n - number of cycles); the cycles are counted by labelling each index with
        the smallest index of its cycle, by pointer doubling (log2 n vectorised rounds).
        """
        perm, label = self.perm.copy(), np.broadcast_to(np.arange(self.n), self.perm.shape).copy()
        for _ in range(max(1, int(np.ceil(np.log2(max(self.n, 2)))) + 1)):
            label = np.minimum(label, np.take_along_axis(label, perm, axis=1))
            perm = np.take_along_axis(perm, perm, axis=1)
        cycles = (label == np.arange(self.n)).sum(axis=1)
        sign = np.where((self.n - cycles) % 2 == 0, 1, -1)
        for index, lu in self._replaced.items():
            sign[index] = lu.parity()
        return sign

    def solve(self, Y, transpose=False):
        """``C_i^{-1} Y_i`` (``C_i^{-T} Y_i``) for ``Y`` of shape (B, n, k)."""
        bk = self._bk
        original = Y
        Y = bk.concatenate([Y], axis=0)  # a fresh copy, updated in place block by block
        T = lambda a: bk.swapaxes(a, -1, -2)  # noqa: E731
        if not transpose:
            for block in self._blocks:
                k, lu = block.start, block.lu
                b = lu.shape[-1]
                Y[:, k:] = _gather_rows(bk, Y[:, k:], block.perm)
                Y[:, k : k + b] = block.L11_inv @ Y[:, k : k + b]
                if block.W12 is not None:
                    Y[:, k + b :] -= lu[:, b:] @ Y[:, k : k + b]
            for block in reversed(self._blocks):
                k, b = block.start, block.lu.shape[-1]
                if block.W12 is not None:
                    Y[:, k : k + b] -= block.L11_inv @ (block.W12 @ Y[:, k + b :])
                Y[:, k : k + b] = block.U11_inv @ Y[:, k : k + b]
        else:
            for block in self._blocks:
                k, b = block.start, block.lu.shape[-1]
                Y[:, k : k + b] = T(block.U11_inv) @ Y[:, k : k + b]
                if block.W12 is not None:
                    Y[:, k + b :] -= T(block.W12) @ (T(block.L11_inv) @ Y[:, k : k + b])
            for block in reversed(self._blocks):
                k, lu = block.start, block.lu
                b = lu.shape[-1]
                if block.W12 is not None:
                    Y[:, k : k + b] -= T(lu[:, b:]) @ Y[:, k + b :]
                Y[:, k : k + b] = T(block.L11_inv) @ Y[:, k : k + b]
                Y[:, k:] = _gather_rows(bk, Y[:, k:], block.unperm)
        for index, lu in self._replaced.items():
            Y[index] = lu.solve(original[index], transpose)
        return Y

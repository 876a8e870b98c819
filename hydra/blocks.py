r"""Block structures of HyDRA: slot layout, dense builders and fast block products.

One small class per structure. Each knows how many pool numbers (slots) a
:math:`b_m \times b_n` block reads, how those numbers become generators, and the two exact ways
to use them on a k×k grid of blocks (batch shape ``(k, k)``):

* :meth:`BlockStructure.dense` — the blocks as dense matrices, shape (k, k, bm, bn);
* :meth:`BlockStructure.matvec` — ``y_p = Σ_q W_pq x_q`` for ``x`` of shape (..., k, bn), by the
  fast products of :mod:`ldr` (FFT based for the Toeplitz family), summed over q.

Generators of rank R arrive as ``G`` (k, k, bm, R) and ``H`` (k, k, R, bn) (``t`` of shape
(k, k, bm + bn - 1) for plain Toeplitz blocks). The layer passes R = 2r: the offset
:math:`\Delta W(\theta) - \Delta W(\theta^{(0)})` of a bilinear structure is itself a block-LDR
matrix of rank 2r (see :class:`hydra.layers.HydraLinear`).

Operator pairs (every one nonsingular for every block shape) and block formulas:

* ``toeplitz``: no generators, ``T[i, j] = t[i - j + bn - 1]``;
* ``toeplitz_like``: :math:`(Z_1, Z_{-1})` square, :math:`(Z_1, Z_0)` rectangular;
  square :math:`W = \tfrac12\sum_l C_1(g_l) C_{-1}(J h_l)`;
* ``hankel_like``: :math:`(Z_1, Z_0^T)`; square :math:`W = \sum_l C_1(g_l) C_0(h_l) J`;
* ``vandermonde_like``: real rows of the Krylov form :math:`\sum_l \mathrm{diag}(\tilde g_l) V(w) C_f(J h_l)`,
  w the bm-th roots of −1, f = ±1 (operators: 2×2 rotations on each conjugate pair's rows, :math:`Z_f`);
* ``cauchy_like``: :math:`(\mathrm{diag}\,v, \mathrm{diag}\,u)`, :math:`W = (G H) \circ C(v, u)`;
* ``low_rank``: :math:`(I, 0)`, :math:`W = G H`.

Dense builds cost :math:`O(R\, b_m b_n)` per block for every structure (column recurrences and
cumulative sums, :func:`shift_toeplitz_like_dense`), so building ΔW costs about as much as
reading it, and the GEMM that applies it dominates. The Toeplitz-like, Hankel-like and
Vandermonde-like builders are custom autograd functions with their adjoints written out (a few
contiguous passes over the blocks each way; autograd through the strided views and complex
intermediates cost 2–3× more); their backward passes are plain torch operations, so a double
backward works.

:math:`(Z_1, Z_{-1})` is singular for rectangular blocks whose row count has more factors of 2
than the column count (:doc:`/theory/displacement`), hence :math:`(Z_1, Z_0)` there, the core's
default. Fixed nodes (not trained, not counted, regenerated, identical for every block, the
same as :mod:`ldr.nn`'s): Vandermonde blocks use the bm-th roots of −1 on the unit circle in
conjugate pairs, with a real parametrisation (a pair's two rows are the real and imaginary
parts of one complex row), so :math:`|w_i^j| = 1` and :math:`\kappa(V) \le \sqrt 2`;
Cauchy blocks use the interlaced nodes :math:`v_i = i`, :math:`u_j = j + 1/2`, so
:math:`|C_{ij}| = 1/|i - j - 1/2| \le 2` and :math:`\kappa(C)` grows only like a logarithm.
"""

from __future__ import annotations

import functools

import torch

from scipy.fft import next_fast_len

import ldr
from ldr.nn import cauchy_nodes, paired_vandermonde_dense, paired_vandermonde_matvec, vandermonde_shift, vandermonde_tables
from ldr.toeplitz_like import default_shift_pair

__all__ = [
    "BlockStructure",
    "ToeplitzBlocks",
    "ToeplitzLikeBlocks",
    "HankelLikeBlocks",
    "VandermondeLikeBlocks",
    "CauchyLikeBlocks",
    "LowRankBlocks",
    "block_structure",
    "toeplitz_matrix",
    "shift_toeplitz_like_dense",
]


def toeplitz_matrix(t, bm, bn):
    """Toeplitz matrices ``T[..., i, j] = t[..., i - j + bn - 1]`` of shape (..., bm, bn).

    ``t`` (..., bm + bn - 1) holds the diagonals from the top-right corner (``t_{-(bn-1)}``) to
    the bottom-left (``t_{bm-1}``). Built with one strided view and a flip (no index tensors), so
    the backward pass is a strided sum rather than a scatter.

    Examples
    --------
    >>> from hydra.blocks import toeplitz_matrix
    >>> import torch, scipy.linalg, numpy as np
    >>> t = torch.arange(6.0)                      # bm = 4, bn = 3
    >>> T = toeplitz_matrix(t, 4, 3)
    >>> bool(np.allclose(T.numpy(), scipy.linalg.toeplitz(t[2:].numpy(), t[:3].flip(0).numpy())))
    True
    """
    # windows[a, j] = u[a + j] with u = flip(t), so T[i, j] = windows[bm - 1 - i, j].
    return t.flip(-1).unfold(-1, bn, 1).flip(-2)


def shift_toeplitz_like_dense(G, H, f):
    r"""Dense blocks W with :math:`Z_1 W - W Z_f = G H` in :math:`O(R\, b_m b_n)` (no matmul, no FFT).

    Parameters
    ----------
    G : tensor, shape (..., bm, R)
    H : tensor, shape (..., R, bn)
    f : float
        ``f != 1`` for square blocks; ``f = 0`` for rectangular ones (the pair :math:`(Z_1, Z_0)`).

    Returns
    -------
    tensor, shape (..., bm, bn)

    Notes
    -----
    Column j of the displacement equation reads :math:`W e_{j+1} = Z_1 W e_j - G H e_j`, so
    :math:`W e_j = Z_1^j w_0 - \sum_{s<j} Z_1^{j-1-s} G H e_s` with the first column
    :math:`w_0 = (1-f)^{-1} \sum_l C_1(g_l) J h_l`. With :math:`M[d, s] = \sum_l g_l[(d+1+s) \bmod b_m]\, h_l[s]`
    both parts are sums over s of M along a cyclic diagonal :math:`d = (i - j) \bmod b_m`:

    .. math:: W_{ij} = \frac{1}{1-f} \sum_{s} M[d, s] - \sum_{s<j} M[d, s].

    For f = 0 this is the suffix sum :math:`\sum_{s \ge j} M[d, s]`, which also holds for
    rectangular blocks (:math:`Z_0` is nilpotent, so no first column is needed). Cost: one
    product and one cumulative sum over (R, bm, bn), against :math:`2 R b^3` for multiplying
    the Krylov matrices.

    Examples
    --------
    >>> from hydra.blocks import shift_toeplitz_like_dense
    >>> import torch, scipy.linalg, numpy as np
    >>> G, H = torch.randn(5, 2, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    >>> Z = lambda n, f: np.diag(np.ones(n - 1), -1) + f * np.eye(n, k=n - 1)
    >>> W = shift_toeplitz_like_dense(G, H, -1.0)
    >>> bool(np.allclose(W.numpy(), scipy.linalg.solve_sylvester(Z(5, 1), -Z(5, -1), (G @ H).numpy())))
    True
    """
    return _ShiftToeplitzLikeDense.apply(G, H, f, False)


@functools.lru_cache(maxsize=64)
def _roll_index(bm, bn, offset, sign, flip, device):
    """Flat indices of ``out[d, j] = src[(d + offset + sign * j) mod bm, col(j)]`` on a (bm, bn) grid.

    ``col(j) = bn - 1 - j`` when ``flip`` else ``j``. Cached: the same few permutations serve
    every step of a layer.
    """
    d = torch.arange(bm, device=device).unsqueeze(-1)
    j = torch.arange(bn, device=device)
    col = bn - 1 - j if flip else j
    return (((d + offset + sign * j) % bm) * bn + col).reshape(-1)


def _roll(X, offset, sign, flip=False):
    """Apply :func:`_roll_index` to the last two axes of ``X`` (one 2-D ``index_select``).

    A 2-D ``index_select`` on the flattened (bm·bn) axis: on 3-D or 4-D tensors, or as a
    ``gather`` along the row axis, torch takes 3–7x longer on the CPU.
    """
    *batch, bm, bn = X.shape
    index = _roll_index(bm, bn, offset, sign, flip, X.device)
    return X.reshape(-1, bm * bn).index_select(-1, index).reshape(*batch, bm, bn)


class _ShiftToeplitzLikeDense(torch.autograd.Function):
    r"""The running-sum build of :func:`shift_toeplitz_like_dense`, with its adjoint written out.

    Forward, with :math:`c = 1/(1-f)`: :math:`P = GH`, :math:`M[d, s] = P[(d+1+s) \bmod b_m, s]`,
    :math:`Q[d, j] = c\sum_s M[d, s] - \sum_{s<j} M[d, s]`, :math:`W[i, j] = Q[(i-j) \bmod b_m, j]`
    (``flip``: :math:`W[i, j] = Q[\ldots, b_n-1-j]`, the column reversal of Hankel-like blocks).
    Backward: the two rolls are permutations (their adjoints are the inverse permutations), and
    the adjoint of :math:`M \mapsto Q` is :math:`dM = \operatorname{cumsum}(dQ) + (c-1)\sum_j dQ[:, j]`.
    Five passes over the (bm, bn) blocks each way, and autograd keeps only G and H.
    """

    @staticmethod
    def forward(ctx, G, H, f, flip):
        bn = H.shape[-1]
        c = 1.0 / (1.0 - f)
        M = _roll(G @ H, 1, 1)
        prefix = M.cumsum(-1)
        total = prefix[..., -1:] * c
        Q = M.sub_(prefix).add_(total)  # c·total - (sum over s < j), in place on M
        ctx.save_for_backward(G, H)
        ctx.c, ctx.flip = c, flip
        return _roll(Q, 1 - bn, 1, True) if flip else _roll(Q, 0, -1)

    @staticmethod
    def backward(ctx, dW):
        # Plain torch operations: a double backward differentiates through them.
        G, H = ctx.saved_tensors
        dQ = _roll(dW, 0, 1, ctx.flip)
        dM = dQ.cumsum(-1)
        dM += (ctx.c - 1.0) * dM[..., -1:].clone()
        dP = _roll(dM, -1, -1)
        dG = dH = None
        if ctx.needs_input_grad[0]:
            dG = (dP @ H.transpose(-1, -2).conj()).sum_to_size(G.shape)
        if ctx.needs_input_grad[1]:
            dH = (G.transpose(-1, -2).conj() @ dP).sum_to_size(H.shape)
        return dG, dH, None, None


class BlockStructure:
    """Base class: slot layout and the two block products of one structure.

    Parameters
    ----------
    bm, bn : int
        Block shape.
    rank : int
        Displacement rank r of a block (the layer passes generators of rank 2r, see the module
        notes).
    """

    name = "abstract"
    #: Whether ΔW depends bilinearly on the pool (G and H both drawn from it).
    bilinear = True

    def __init__(self, bm, bn, rank):
        self.bm, self.bn, self.rank = bm, bn, rank

    @property
    def slots_per_block(self):
        """Pool numbers one block reads: ``(bm + bn) r`` (generators G and H)."""
        return (self.bm + self.bn) * self.rank

    def slot_split(self):
        """Slot counts of the two generators, ``(bm r, r bn)``; G is read row-major (bm, r)."""
        return (self.bm * self.rank, self.rank * self.bn)

    def buffers(self):
        """Fixed tensors (nodes) the structure needs, as CPU float64 tensors; registered by the layer."""
        return {}

    def generators(self, g_values, h_values):
        """Reshape gathered slots (k, k, bm R) and (k, k, R bn) into G (k, k, bm, R), H (k, k, R, bn)."""
        k1, k2 = g_values.shape[:2]
        R = g_values.shape[-1] // self.bm
        return g_values.reshape(k1, k2, self.bm, R), h_values.reshape(k1, k2, R, self.bn)

    def dense(self, G, H, buffers):
        """The k×k blocks as dense matrices, shape (k, k, bm, bn), differentiable in G and H."""
        raise NotImplementedError

    def matvec(self, G, H, buffers, x):
        """``y[..., p, :] = Σ_q W_pq x[..., q, :]`` for ``x`` (..., k, bn); returns (..., k, bm)."""
        raise NotImplementedError

    def ldr_blocks(self, G, H, buffers):
        """The blocks as an :mod:`ldr` matrix of batch shape (k, k) (the operators are not validated again)."""
        raise NotImplementedError(f"{self.name} blocks have no ldr class")

    @staticmethod
    def _sum_blocks(y):
        """(..., k, k, bm) products of every block with its input chunk -> (..., k, bm)."""
        return y.sum(-2)


class ToeplitzBlocks(BlockStructure):
    r"""Plain Toeplitz blocks (the paper's "circulant" HyDRA): ``bm + bn - 1`` numbers each.

    The update is linear in the pool, so the offset :math:`\Delta W(\theta) - \Delta W(\theta^{(0)})`
    is :math:`\Delta W(\theta - \theta^{(0)})`. ``matvec`` embeds each block in a circulant of
    length ``L = next_fast_len(bm + bn - 1)``: k real FFTs of the input chunks, k² spectral
    products summed over q in the frequency domain, k inverse FFTs per vector.
    """

    name = "toeplitz"
    bilinear = False

    @property
    def slots_per_block(self):
        return self.bm + self.bn - 1

    def slot_split(self):
        return (self.bm + self.bn - 1, 0)

    def dense(self, t, _unused, buffers):
        return toeplitz_matrix(t, self.bm, self.bn)

    def matvec(self, t, _unused, buffers, x):
        L = next_fast_len(self.bm + self.bn - 1, real=True)
        T = torch.fft.rfft(t, n=L)  # (k, k, F)
        X = torch.fft.rfft(x, n=L)  # (..., k, F)
        # A broadcast multiply-and-sum over q: k is small, and a complex einsum/bmm with inner
        # size k runs ~20x slower on the CPU.
        Y = (T * X.unsqueeze(-3)).sum(-2)
        # y_i = sum_j t[i - j + bn - 1] x_j = (t * x)[i + bn - 1]; L >= bm + bn - 1 keeps it alias-free.
        return torch.fft.irfft(Y, n=L)[..., self.bn - 1 : self.bn - 1 + self.bm]


class ToeplitzLikeBlocks(BlockStructure):
    r"""Toeplitz-like blocks: :math:`(Z_1, Z_{-1})` when square, :math:`(Z_1, Z_0)` when bm ≠ bn.

    Dense build: :func:`shift_toeplitz_like_dense`, :math:`O(R\, b_m b_n)` per block.
    ``matvec`` uses :meth:`ldr.LDRMatrix.matvec` (2R + 2 FFTs per block and vector).
    """

    name = "toeplitz_like"

    @property
    def pair(self):
        return default_shift_pair(self.bm, self.bn)

    def ldr_blocks(self, G, H, buffers):
        e, f = self.pair
        return ldr.ToeplitzLike._trusted(ldr.Shift(self.bm, e), ldr.Shift(self.bn, f), G, H)

    def dense(self, G, H, buffers):
        return shift_toeplitz_like_dense(G, H, self.pair[1])

    def matvec(self, G, H, buffers, x):
        return self._sum_blocks(self.ldr_blocks(G, H, buffers).matvec(x.unsqueeze(-3)))


class HankelLikeBlocks(ToeplitzLikeBlocks):
    r"""Hankel-like blocks, :math:`(Z_1, Z_0^T)` (nonsingular for every block shape).

    Dense build: :math:`W J` is Toeplitz-like for :math:`(Z_1, Z_0)` with generators
    :math:`(G, HJ)` (:func:`shift_toeplitz_like_dense`), :math:`O(R\, b_m b_n)` per block.
    """

    name = "hankel_like"

    def ldr_blocks(self, G, H, buffers):
        return ldr.HankelLike._trusted(ldr.Shift(self.bm, 1.0), ldr.Shift(self.bn, 0.0, transpose=True), G, H)

    def dense(self, G, H, buffers):
        # W J is Toeplitz-like for (Z_1, Z_0) with generators (G, H J).
        return _ShiftToeplitzLikeDense.apply(G, H.flip(-1), 0.0, True)


class VandermondeLikeBlocks(BlockStructure):
    r"""Real Vandermonde-like blocks on the unit circle, in real-parametrised Krylov form.

    Nodes: the bm-th roots of −1, :math:`w_i = e^{i\pi(2i+1)/b_m}`, taken in conjugate pairs
    (plus :math:`w = -1` when bm is odd); the column operator is :math:`Z_f` with
    :math:`f \in \{1, -1\}` the one farthest from every :math:`w_i^{b_n}` (f = 1 for square
    blocks). A pair's two rows hold the real and imaginary parts of one complex row of
    :math:`\operatorname{diag}(\tilde g)\, V(w)\, C_f(J h)`, with :math:`\tilde g = a + ib` read
    from the two rows of G, so the block is real and satisfies
    :math:`A W - W Z_f = G' H` for the real operator :math:`A` = (rotation by :math:`\arg w_i` on
    each pair's two rows) ⊕ (−1), :math:`G'` the real rows of :math:`\tilde g \odot (w^{b_n} - f)`
    (:doc:`/theory/stability`). :math:`V` is a section of a scaled DFT, so
    :math:`\kappa(V) \le \sqrt 2` instead of the Chebyshev points' exponential growth.

    Dense build: :func:`ldr.nn.paired_vandermonde_dense`, :math:`O(R\, b_m b_n)` per block.
    ``matvec``: :func:`ldr.nn.paired_vandermonde_matvec` (R FFT products with
    :math:`C_f(J h_l)`, then two real GEMMs with :math:`\operatorname{Re} V`,
    :math:`\operatorname{Im} V`), :math:`O(R\, b_m b_n)` per block and vector.
    """

    name = "vandermonde_like"

    @property
    def f(self):
        """The column shift's corner value, :func:`ldr.nn.vandermonde_shift` (bm, bn)."""
        return vandermonde_shift(self.bm, self.bn)

    def buffers(self):
        return vandermonde_tables(self.bm, self.bn, self.f)

    def dense(self, G, H, buffers):
        return paired_vandermonde_dense(G, H, buffers)

    def matvec(self, G, H, buffers, x):
        # x (..., k, bn) -> (..., 1, k, bn): broadcast over the row-block axis p, summed over q.
        return self._sum_blocks(paired_vandermonde_matvec(G, H, buffers, x.unsqueeze(-3), self.f))


class CauchyLikeBlocks(BlockStructure):
    r"""Cauchy-like blocks :math:`(GH) \circ C(v, u)` with the fixed interlaced nodes of
    :func:`ldr.nn.cauchy_nodes`, ``v = i``, ``u = j + 1/2`` (:math:`\kappa(C) \approx 3.6` at 192×192).

    ``matvec`` uses :meth:`ldr.LDRMatrix.matvec`, :math:`O(R\, b_m b_n)` per block and vector.
    """

    name = "cauchy_like"

    def buffers(self):
        v, u = cauchy_nodes(self.bm, self.bn)
        return {"row_nodes": torch.from_numpy(v), "column_nodes": torch.from_numpy(u),
                "cauchy": torch.from_numpy(1.0 / (v[:, None] - u[None, :]))}

    def ldr_blocks(self, G, H, buffers):
        return ldr.CauchyLike._trusted(
            ldr.Diagonal(buffers["row_nodes"]), ldr.Diagonal(buffers["column_nodes"]), G, H
        )

    def dense(self, G, H, buffers):
        return (G @ H) * buffers["cauchy"]

    def matvec(self, G, H, buffers, x):
        return self._sum_blocks(self.ldr_blocks(G, H, buffers).matvec(x.unsqueeze(-3)))


class LowRankBlocks(BlockStructure):
    r"""Low-rank blocks ``G H`` (k = 1: the paper's HyDRA(LoRA)); ``matvec`` is ``G (H x)``,
    :math:`O(k R (m + n))` per vector."""

    name = "low_rank"

    def ldr_blocks(self, G, H, buffers):
        return ldr.LowRank._trusted(ldr.Identity(self.bm), ldr.Zero(self.bn), G, H)

    def dense(self, G, H, buffers):
        return G @ H

    def matvec(self, G, H, buffers, x):
        z = torch.einsum("pqrn,...qn->...pqr", H, x)
        return torch.einsum("pqmr,...pqr->...pm", G, z)


_STRUCTURES = {
    cls.name: cls
    for cls in (ToeplitzBlocks, ToeplitzLikeBlocks, HankelLikeBlocks, VandermondeLikeBlocks, CauchyLikeBlocks, LowRankBlocks)
}


def block_structure(name, bm, bn, rank):
    """The :class:`~hydra.blocks.BlockStructure` for a :class:`~hydra.HydraConfig` structure name.

    Examples
    --------
    >>> from hydra import block_structure
    >>> block_structure("toeplitz", 192, 192, 1).slots_per_block
    383
    >>> block_structure("toeplitz_like", 192, 192, 1).slots_per_block
    384
    """
    if name not in _STRUCTURES:
        raise ValueError(f"`structure` must be one of {', '.join(map(repr, _STRUCTURES))}; got {name!r}")
    return _STRUCTURES[name](bm, bn, rank)


r"""Block partition of an m×n update into a k×k grid, for any m, n and 1 <= k <= min(m, n).

Pad and crop (:doc:`/theory/hydra`): blocks are uniform, :math:`b_m = \lceil m/k \rceil` by
:math:`b_n = \lceil n/k \rceil`; the grid :math:`M` is :math:`k b_m \times k b_n` and the update
is its top-left corner, :math:`\Delta W = M_{:m, :n}`. A product zero-pads ``x`` to
:math:`k b_n`, runs one batched pass over the uniform blocks and keeps the first m outputs:
exact, with all blocks the same shape (what batched FFTs want). The padding costs
:math:`k^2 b_m b_n / (mn) - 1` of the work (0.5 % for 768 split five ways); when k divides
both sizes nothing is padded and this is the paper's partition (its eqs. 3-4).
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch.nn.functional as F

__all__ = ["BlockPartitioner"]


class BlockPartitioner:
    r"""Pad-and-crop partition of an m×n matrix into k×k uniform blocks of :math:`b_m \times b_n`.

    Parameters
    ----------
    m, n : int
        Output and input sizes (``out_features``, ``in_features``).
    k : int
        Blocks per axis, :math:`1 \le k \le \min(m, n)`.

    Attributes
    ----------
    block_shape : tuple of int
        ``(bm, bn) = (ceil(m/k), ceil(n/k))``.
    padded_shape : tuple of int
        ``(k * bm, k * bn)``.

    Raises
    ------
    ValueError
        When k < 1 or k exceeds m or n (the message names k and the dimension).

    Warns
    -----
    UserWarning
        When a whole block row or column falls in the padding (e.g. m = 5, k = 4: bm = 2 and
        block row 3 covers rows 6-7); its numbers never reach ΔW.

    Notes
    -----
    Rectangular blocks (bm ≠ bn) arise when m ≠ n or when the ceilings differ; the layer then
    uses LDR operator pairs that are nonsingular for every block shape (see
    :class:`hydra.layers.HydraLinear`).

    Examples
    --------
    >>> from hydra import BlockPartitioner
    >>> import torch
    >>> part = BlockPartitioner(13, 13, 4)
    >>> part.block_shape, part.padded_shape
    ((4, 4), (16, 16))
    >>> W = torch.arange(13.0 * 13).reshape(13, 13)
    >>> bool(torch.equal(part.assemble(part.blocks(W)), W))
    True
    >>> x = torch.randn(3, 13)
    >>> y = part.merge_output(torch.einsum("pqij,tqj->tpi", part.blocks(W), part.split_input(x)))
    >>> bool(torch.allclose(y, x @ W.T))
    True
    """

    def __init__(self, m, n, k):
        for value, label in ((m, "m (out_features)"), (n, "n (in_features)"), (k, "k")):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"`{label}` must be an integer >= 1; got {value!r}")
        m, n, k = int(m), int(n), int(k)
        for size, label in ((m, "out_features m"), (n, "in_features n")):
            if k > size:
                raise ValueError(
                    f"`k` = {k} blocks per axis is larger than the layer's {label} = {size}; "
                    f"use k <= min(m, n) = {min(m, n)}"
                )
        self.m, self.n, self.k = m, n, k
        self.bm, self.bn = math.ceil(m / k), math.ceil(n / k)
        for size, b, label in ((m, self.bm, "row"), (n, self.bn, "column")):
            if (k - 1) * b >= size:
                warnings.warn(
                    f"k = {k} on size {size}: block {label} {k - 1} lies entirely in the padding "
                    f"(block size {b}); its numbers never reach ΔW. A k that divides {size}, or a "
                    "smaller k, avoids the waste.",
                    UserWarning,
                    stacklevel=2,
                )

    @property
    def block_shape(self):
        """``(bm, bn)``."""
        return (self.bm, self.bn)

    @property
    def padded_shape(self):
        """``(k * bm, k * bn)``."""
        return (self.k * self.bm, self.k * self.bn)

    def split_input(self, x):
        """``x`` (..., n) -> (..., k, bn): zero-padded to ``k * bn`` and cut into k chunks."""
        pad = self.k * self.bn - self.n
        if pad:
            x = F.pad(x, (0, pad))
        return x.reshape(*x.shape[:-1], self.k, self.bn)

    def merge_output(self, y):
        """``y`` (..., k, bm) -> (..., m): the chunks concatenated and cropped to m."""
        y = y.reshape(*y.shape[:-2], self.k * self.bm)
        return y[..., : self.m] if self.k * self.bm != self.m else y

    def assemble(self, blocks):
        """Blocks (..., k, k, bm, bn) -> the cropped matrix (..., m, n)."""
        *batch, k, _, bm, bn = blocks.shape
        full = blocks.transpose(-3, -2).reshape(*batch, k * bm, k * bn)
        return full[..., : self.m, : self.n]

    def blocks(self, W):
        """The inverse of :meth:`assemble`: W (..., m, n) zero-padded and cut into (..., k, k, bm, bn)."""
        pm, pn = self.padded_shape
        W = F.pad(W, (0, pn - self.n, 0, pm - self.m))
        *batch, _, _ = W.shape
        return W.reshape(*batch, self.k, self.bm, self.k, self.bn).transpose(-3, -2)

    def __repr__(self):
        return f"BlockPartitioner(m={self.m}, n={self.n}, k={self.k}, block_shape={self.block_shape})"

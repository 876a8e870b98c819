r"""The HyDRA training step at LoRA's cost: one GEMM forward, structure-aware pool gradients.

:class:`hydra.HydraLinear` on its ``"dense"`` path computes

.. math:: y = x (W_0 + s\,\Delta W)^T + b

with one GEMM (:math:`\Delta W` is rebuilt from the pool in :math:`O(R\,m n)`), through the
custom :class:`torch.autograd.Function` of this module. Its backward pass

* computes :math:`dX = dY (W_0 + s\,\Delta W)` with one GEMM, rebuilding the merged weight
  rather than keeping it: the function saves ``x`` and references to the parameters, never an
  m×n tensor, so the step's memory stays at LoRA's level;
* computes the pool gradient by the cheapest of four *routes* (:func:`gradient_route`,
  derivations and measurements in :doc:`/theory/hydra_gradients`):

  ``"dense"``
      :math:`d\Delta W = s\, dY^T X` (one GEMM of :math:`T m n`), then the vector-Jacobian
      product of the :math:`O(R\,mn)` block builder. Exact for every structure.
  ``"correlation"``
      Toeplitz blocks: the gradient of block (p, q)'s diagonals is the cross-correlation of
      the rows of :math:`dY_p` and :math:`X_q`, summed over tokens
      (:func:`toeplitz_block_correlation`): :math:`\approx 4/c` of the GEMM's flops for
      chunks of c = 16 plus :math:`O(c)` per entry for the transforms.
  ``"factored"``
      Low-rank blocks: :math:`dG_{pq} = dY_p^T (X_q H_{pq}^T)`,
      :math:`dH_{pq} = (dY_p G_{pq})^T X_q`, :math:`O(T k R (m + n))`.
  ``"circulant"``
      Toeplitz-like and Hankel-like blocks: the gradient through their circulant factors, i.e.
      autograd through the FFT block products, :math:`O(T k^2 R\, b \log b)`; it wins only
      for large blocks (the crossover of :data:`hydra.AUTO_FFT_BLOCK_SIZE`).

Double backward is refused (``once_differentiable``): the step is for first-order training.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["GRADIENT_ROUTES", "CORRELATION_MIN_SIZE", "gradient_route", "toeplitz_block_correlation",
           "merged_linear"]

#: The pool-gradient routes of :func:`gradient_route`.
GRADIENT_ROUTES = ("dense", "correlation", "factored", "circulant")

#: Smallest ``min(m, n)`` from which Toeplitz blocks take the ``"correlation"`` route. Both it
#: and the dense ``dYᵀX`` GEMM grow like T (tokens), so the choice depends on the layer's size
#: only: the correlation's share of the GEMM's flops is about 4/c + 4c/n. Measured (float32,
#: CPU, 1 thread, k = 4, T = 256 and 2048): correlation / GEMM time 6.3 and 3.8 at n = 128,
#: 2.7 and 1.6 at 256, 1.3 at 384, 0.68 and 0.96 at 768, 0.6 at 1536
#: (``benchmarks/bench_hydra.py --crossover``, section "gradient routes").
CORRELATION_MIN_SIZE = 768

#: Chunk length c of the partitioned correlation and token rows per tile (tiles keep the chunk
#: spectra in cache; measured best at 768×768 on the CPU among c in {16, 32, 64}, tiles in
#: {64, 256, 1024}). Other devices take tiles of 1024 rows: fewer kernel launches, and the
#: spectra of a tile stay below the size of the inputs.
_CHUNK, _TILE, _DEVICE_TILE = 16, 64, 1024


def gradient_route(structure, layer_shape, block_shape):
    """The pool-gradient route the dense path uses for a structure and layer.

    Parameters
    ----------
    structure : str
        A :class:`~hydra.HydraConfig` structure.
    layer_shape : tuple of int
        ``(m, n)``.
    block_shape : tuple of int
        ``(bm, bn)``.

    Returns
    -------
    {"dense", "correlation", "factored", "circulant"}

    Notes
    -----
    ``low_rank``: always ``"factored"`` (:math:`O(TkR(m+n))` against the GEMM's
    :math:`O(Tmn)`). ``toeplitz``: ``"correlation"`` from ``min(m, n) >=``
    :data:`CORRELATION_MIN_SIZE`. ``toeplitz_like``, ``hankel_like``: ``"circulant"`` from the
    block sizes of :data:`hydra.AUTO_FFT_BLOCK_SIZE` on (the same measured crossover:
    the gradient through the circulant factors costs what the FFT block products cost).
    ``vandermonde_like``, ``cauchy_like``: ``"dense"`` (their structured gradients need R
    block products per token, R times the GEMM; see :doc:`/theory/hydra_gradients`).

    Examples
    --------
    >>> from hydra.autograd import gradient_route
    >>> gradient_route("toeplitz", (768, 768), (192, 192)), gradient_route("cauchy_like", (768, 768), (192, 192))
    ('correlation', 'dense')
    """
    if structure == "low_rank":
        return "factored"
    if structure == "toeplitz":
        return "correlation" if min(layer_shape) >= CORRELATION_MIN_SIZE else "dense"
    if structure in ("toeplitz_like", "hankel_like"):
        from .layers import auto_path  # the layer module imports this one

        return "circulant" if auto_path(structure, block_shape) == "fft" else "dense"
    return "dense"


@functools.lru_cache(maxsize=16)
def _dft_rows(c, dtype, device):
    """(2(c+1), c): rows ``cos`` then ``-sin`` of the length-2c real DFT (bins 0..c)."""
    n = torch.arange(c, dtype=torch.float64)
    f = torch.arange(c + 1, dtype=torch.float64)
    angle = (math.pi / c) * f[:, None] * n[None, :]
    return torch.cat([torch.cos(angle), -torch.sin(angle)]).to(dtype=dtype, device=device)


def toeplitz_block_correlation(dy, x, chunk=_CHUNK, tile=None):
    r"""Gradient of Toeplitz blocks' diagonals: :math:`\sum_t \sum_{i-j+b_n-1=d} dy_{t,p,i}\, x_{t,q,j}`.

    Parameters
    ----------
    dy : tensor, shape (T, k, bm)
        Output gradient cut into the k block rows.
    x : tensor, shape (T, k, bn)
        Input cut into the k block columns.
    chunk : int, default 16
        Chunk length c of the partitioned correlation.
    tile : int, optional
        Tokens per tile; default 64 on the CPU, 1024 on other devices.

    Returns
    -------
    tensor, shape (k, k, bm + bn - 1)
        ``out[p, q, d]``, diagonals ordered as :func:`hydra.blocks.toeplitz_matrix` reads them
        (top-right first), i.e. the diagonal sums of the blocks of :math:`dY^T X`.

    Notes
    -----
    Each block row and column is cut into chunks of c (zero-padded); a pair of chunks
    (a, b) contributes a correlation of 2c - 1 lags, computed from length-2c real DFTs (taken
    as small matrix products, tile by tile, so that the spectra stay in cache):
    :math:`S_f = \sum_t \widehat{dy}_{t,a,f}\, \overline{\hat x_{t,b,f}}` for every chunk pair
    and bin is a batched product with inner size T. The pairs on one chunk diagonal
    e = a - b are summed in the frequency domain, one inverse DFT per (p, q, e) gives their
    lags, and lag blocks overlap-add into the block's diagonals. Cost per token: two DFTs,
    :math:`4c(m + n)` flops, and :math:`8(c + 1) m n / c^2` for the products, against
    :math:`2 m n` for :math:`dY^T X`. Derivation: :doc:`/theory/hydra_gradients`.

    Examples
    --------
    >>> import torch
    >>> from hydra.autograd import toeplitz_block_correlation
    >>> dy, x = torch.randn(9, 2, 5, dtype=torch.float64), torch.randn(9, 2, 3, dtype=torch.float64)
    >>> M = torch.einsum("tpi,tqj->pqij", dy, x)                  # the blocks of dYᵀX
    >>> dense = torch.stack([M.diagonal(offset=3 - 1 - d, dim1=-2, dim2=-1).sum(-1) for d in range(7)], -1)
    >>> bool(torch.allclose(toeplitz_block_correlation(dy, x, chunk=2), dense))
    True
    """
    T, k, bm = dy.shape
    bn = x.shape[-1]
    tile = tile or (_TILE if x.device.type == "cpu" else _DEVICE_TILE)
    c = max(1, min(chunk, max(bm, bn)))
    ca, cb = -(-bm // c), -(-bn // c)
    if ca * c != bm:
        dy = F.pad(dy, (0, ca * c - bm))
    if cb * c != bn:
        x = F.pad(x, (0, cb * c - bn))
    bins, NA, NB = c + 1, k * ca, k * cb
    rows = _dft_rows(c, x.dtype, x.device)
    dy, x = dy.reshape(T, NA * c), x.reshape(T, NB * c)
    Sre = x.new_zeros(bins, NA, NB)
    Sim = x.new_zeros(bins, NA, NB)
    for start in range(0, T, tile):
        xt, dt = x[start : start + tile], dy[start : start + tile]
        n = xt.shape[0]
        # (2·bins, n·NB): each bin's spectra as an (n, NB) matrix, the layout bmm reads directly.
        U = (rows @ xt.reshape(n * NB, c).t()).view(2, bins, n, NB)
        V = (rows @ dt.reshape(n * NA, c).t()).view(2, bins, n, NA)
        Vr, Vi = V[0].transpose(1, 2), V[1].transpose(1, 2)
        # dŷ conj(x̂) = (Vr Ur + Vi Ui) + i (Vi Ur - Vr Ui), summed over the tile's tokens.
        Sre.baddbmm_(Vr, U[0]).baddbmm_(Vi, U[1])
        Sim.baddbmm_(Vi, U[0]).baddbmm_(Vr, U[1], alpha=-1)
    S = torch.complex(Sre, Sim).view(bins, k, ca, k, cb).permute(1, 3, 2, 4, 0)  # (k, k, ca, cb, bins)
    # Sum the chunk pairs on each chunk diagonal e = a - b (slot e + cb - 1) in the frequency domain.
    a, b = torch.arange(ca, device=x.device), torch.arange(cb, device=x.device)
    slot = (a[:, None] - b[None, :] + cb - 1).reshape(-1)
    R = S.new_zeros(k, k, ca + cb - 1, bins).index_add_(2, slot, S.reshape(k, k, ca * cb, bins))
    z = torch.fft.irfft(R, n=2 * c)  # z[..., tau]: lag tau (mod 2c) within the chunk pair
    # Lag i - j = e c + delta sits at u = (e + cb) c + delta of a (ca + cb) c axis: delta >= 0 in
    # slot e + cb, delta < 0 at the end of slot e + cb - 1 (overlap-add).
    out = z.new_zeros(k, k, ca + cb, c)
    out[:, :, 1:] += z[..., :c]
    out[:, :, :-1, 1:] += z[..., c + 1 :]
    start = cb * c - bn + 1
    return out.reshape(k, k, (ca + cb) * c)[..., start : start + bm + bn - 1]


def _pool_gradient(layer, route, dy, x, dtype, delta=None):
    """Gradient of ``sum(dy * (s ΔW x))`` with respect to ``layer.pool.trainable`` (dy, x: (T, ·)).

    ``delta``: the unscaled ΔW already built with autograd (the dense route's backward builds
    it once, for dX and for this vector-Jacobian product).
    """
    trainable = layer.pool.trainable
    part, blocks, s = layer.partition, layer.blocks, layer.scale
    with torch.enable_grad():
        if route == "dense":
            grad_delta = s * (dy.t() @ x)
            outputs, grads = (layer._delta_dense(dtype) if delta is None else delta,), (grad_delta,)
        else:
            G, H = layer._effective_generators(dtype)
            pm = part.k * part.bm
            dys = F.pad(dy, (0, pm - part.m)).view(-1, part.k, part.bm) if pm != part.m else dy.view(-1, part.k, part.bm)
            xs = part.split_input(x)
            if route == "correlation":
                outputs, grads = (G,), (s * toeplitz_block_correlation(dys, xs),)
            elif route == "factored":
                Gd, Hd = G.detach(), H.detach()
                Z = torch.einsum("tqn,pqrn->tpqr", xs, Hd)
                Y = torch.einsum("tpm,pqmr->tpqr", dys, Gd)
                grads = (s * torch.einsum("tpm,tpqr->pqmr", dys, Z), s * torch.einsum("tpqr,tqn->pqrn", Y, xs))
                outputs = (G, H)
            elif route == "circulant":
                fixed = layer._fixed(x.device, dtype)
                outputs, grads = (blocks.matvec(G, H, fixed, xs),), (s * dys,)
            else:
                raise ValueError(f"`route` must be one of {', '.join(map(repr, GRADIENT_ROUTES))}; got {route!r}")
        (grad,) = torch.autograd.grad(outputs, (trainable,), grads, allow_unused=True)
    return torch.zeros_like(trainable) if grad is None else grad


class _MergedLinear(torch.autograd.Function):
    """``y = x (W0 + s ΔW)ᵀ + b`` (``merged``) or ``base(x) + (x_c (s ΔW)ᵀ)`` in the compute dtype."""

    @staticmethod
    def forward(ctx, x, trainable, weight, bias, layer, route, dtype, merged):
        with torch.no_grad():
            delta = layer._delta_dense(dtype)
            if merged:
                y = F.linear(x, torch.add(weight, delta, alpha=layer.scale), bias)
            else:
                y = F.linear(x, weight, bias)
                with torch.autocast(x.device.type, enabled=False):
                    y = y + F.linear(x.to(dtype), layer.scale * delta).to(y.dtype)
        del delta  # nothing m×n outlives the forward
        ctx.layer, ctx.route, ctx.dtype, ctx.merged = layer, route, dtype, merged
        # The parameters are saved only so that autograd's version check refuses a backward
        # after an in-place update (the backward rebuilds ΔW from them).
        ctx.save_for_backward(x, trainable, weight)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, trainable, weight = ctx.saved_tensors
        layer, dtype = ctx.layer, ctx.dtype
        n, m = x.shape[-1], dy.shape[-1]
        dy2 = dy.reshape(-1, m)
        need_x, need_pool, need_w, need_b = ctx.needs_input_grad[:4]
        grad_x = grad_pool = grad_w = grad_b = None
        # The dense route's vector-Jacobian product needs ΔW's graph: build ΔW once, with it.
        graph = need_pool and ctx.route == "dense"
        with torch.enable_grad() if graph else torch.no_grad():
            unscaled = layer._delta_dense(dtype) if (need_x or graph) else None
        if need_x:
            with torch.no_grad():
                if ctx.merged:
                    grad_x = (dy2 @ torch.add(weight, unscaled.detach(), alpha=layer.scale)).reshape(x.shape)
                else:
                    grad_x = dy2.to(weight.dtype) @ weight
                    update = dy2.to(dtype) @ (layer.scale * unscaled.detach())
                    grad_x = (grad_x + update.to(grad_x.dtype)).reshape(x.shape).to(x.dtype)
        x2 = x.reshape(-1, n)
        if need_pool:
            grad_pool = _pool_gradient(layer, ctx.route, dy2.to(dtype), x2.to(dtype), dtype,
                                       unscaled if graph else None).to(trainable.dtype)
        del unscaled
        if need_w:  # an unfrozen base weight (not HyDRA's use, but supported)
            grad_w = (dy2.t().to(weight.dtype) @ x2.to(weight.dtype))
        if need_b:
            grad_b = dy2.sum(0).to(dy.dtype)
        return grad_x, grad_pool, grad_w, grad_b, None, None, None, None


def merged_linear(layer, x, route, dtype, merged):
    r"""HyDRA's dense-path forward :math:`x (W_0 + s\Delta W)^T + b` with the step's custom backward.

    Parameters
    ----------
    layer : hydra.HydraLinear
    x : tensor, shape (..., n)
    route : str
        One of :data:`GRADIENT_ROUTES` (:func:`gradient_route` picks it).
    dtype : torch.dtype
        The update's compute dtype (float32 or float64).
    merged : bool
        One GEMM with the merged weight (base weight, input and compute dtype agree, no
        autocast); otherwise the base layer plus the update computed in ``dtype``.

    Returns
    -------
    tensor, shape (..., m)

    Notes
    -----
    Saves ``x`` and references to the parameters (no m×n tensor); the backward rebuilds
    :math:`\Delta W` in :math:`O(R\,mn)`. Double backward raises ``RuntimeError``.
    """
    base = layer.base_layer
    return _MergedLinear.apply(x, layer.pool.trainable, base.weight, base.bias, layer, route, dtype, merged)

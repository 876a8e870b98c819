r"""Adapter layers that wrap a frozen ``nn.Linear``: :class:`HydraLinear`, :class:`LoRALinear`, :class:`LDRLinear`.

All three compute :math:`y = W_0 x + b + s\,\Delta W x` with the base layer frozen, share
``merge()`` / ``unmerge()`` / ``delta_weight()`` and the dtype rule: the update is computed in
float32 (float64 when the base weight or the adapter is float64) and the result is cast to the
base layer's output dtype, so bfloat16/float16 base weights keep a float32 update.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import ldr
from ldr.krylov import fcirculant_matvec
from ldr.toeplitz_like import default_shift_pair

from .autograd import GRADIENT_ROUTES, gradient_route, merged_linear
from .blocks import block_structure, shift_toeplitz_like_dense, toeplitz_matrix
from .config import HydraConfig, LDRConfig, LoRAConfig
from .integrity import attach_digest
from .partition import BlockPartitioner
from .pool import ParameterPool
from .sampler import balanced_index_map, stable_seed

__all__ = ["AdapterLinear", "HydraLinear", "LoRALinear", "LDRLinear", "auto_path", "AUTO_FFT_BLOCK_SIZE"]

#: Smallest block size (max(bm, bn)) at which ``path="auto"`` uses the FFT block products, per
#: FFT-based structure; below it ΔW is built densely and applied with one GEMM. ``None``: the FFT
#: path never won in the measured range. Measured with ``benchmarks/bench_hydra.py --crossover``
#: (train step, float32, CPU, 1 thread, 1024 tokens; ``benchmarks/results/hydra_train_step.md``),
#: against the one-GEMM dense step of :mod:`hydra.autograd`: fft / dense step time for blocks
#: 192, 384, 768, 2048 was 1.77, 1.33, 1.04, 1.06 (toeplitz), 5.6, 3.3, 1.70, 0.96
#: (toeplitz_like) and 5.6, 3.0, 1.54, 0.86 (hankel_like). The FFT path's step also holds its
#: spectra for the backward pass: 5–27× the dense step's peak memory at 768×768.
AUTO_FFT_BLOCK_SIZE = {"toeplitz": None, "toeplitz_like": 2048, "hankel_like": 2048}


def auto_path(structure, block_shape):
    """The path ``path="auto"`` picks for a structure and block shape.

    Parameters
    ----------
    structure : str
        A :class:`~hydra.HydraConfig` structure, or ``"lora"``, ``"circulant"``,
        ``"ldr_toeplitz_like"`` for the baselines.
    block_shape : tuple of int
        ``(bm, bn)``.

    Returns
    -------
    {"dense", "fft"}

    Notes
    -----
    LoRA always uses the factored product ``B (A x)``. HyDRA's ``low_rank`` blocks take the
    dense path: its step is one GEMM with the merged weight forward, one backward for dX, and
    the ``"factored"`` pool gradient (:mod:`hydra.autograd`), which costs less than the
    factored product's extra passes over the activations (768×768, k = 4, 6304 tokens, two
    runs of ``benchmarks/bench_hydra.py``: 0.95× and 1.11× LoRA r = 4's step against 1.12× and
    1.26× for the factored product). Vandermonde- and
    Cauchy-like blocks always build ΔW: their block products are themselves O(r bm bn) per
    vector, so they never beat one GEMM (11× and 5.7× LoRA at 768×768). The Toeplitz family
    uses the FFT block products from the block sizes in :data:`AUTO_FFT_BLOCK_SIZE` on
    (``None``: never). At HyDRA's sizes the dense path wins because building ΔW costs
    O(r m n), far less than the GEMMs, while each FFT block product runs k² r transforms per
    token.

    Examples
    --------
    >>> from hydra import auto_path
    >>> auto_path("toeplitz", (192, 192)), auto_path("hankel_like", (2048, 2048)), auto_path("low_rank", (192, 192))
    ('dense', 'fft', 'dense')
    """
    if structure == "lora":
        return "fft"
    threshold = AUTO_FFT_BLOCK_SIZE.get(structure)
    if threshold is not None and max(block_shape) >= threshold:
        return "fft"
    return "dense"


def _compute_dtype(*dtypes):
    """float64 if any of ``dtypes`` is float64, else float32 (half precision computes in float32)."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


class AdapterLinear(nn.Module):
    r"""Base class: a frozen ``nn.Linear`` plus a trainable update, :math:`y = \text{base}(x) + s\,\Delta W x`.

    The adapters :class:`HydraLinear`, :class:`LoRALinear` and :class:`LDRLinear` differ only
    in how they build the unscaled update ΔW (m×n) and apply it to an input along the last
    axis; each sets the scale :math:`s`.

    Notes
    -----
    Paths. ``"dense"`` builds ΔW and, when the base weight is float32/float64 and no autocast is
    active, runs a single GEMM with :math:`W_0 + s\Delta W` (bit-identical to the base layer
    when ΔW = 0); otherwise it adds :math:`s\,\Delta W x` computed in float32. ``"fft"`` adds the
    fast product :math:`s\,\Delta W x` to ``base(x)``.
    """

    def __init__(self, base_layer, config, name):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"`base_layer` must be a torch.nn.Linear; got {type(base_layer).__name__}")
        self.base_layer = base_layer
        self.config = config
        self.layer_name = name
        self.merged = False
        for p in base_layer.parameters():
            p.requires_grad_(False)

    @property
    def in_features(self):
        return self.base_layer.in_features

    @property
    def out_features(self):
        return self.base_layer.out_features

    @property
    def weight(self):
        """The base layer's (frozen) weight, for code that reads ``module.weight``."""
        return self.base_layer.weight

    @property
    def bias(self):
        return self.base_layer.bias

    def _adapter_dtype(self):
        params = [p.dtype for p in self.parameters(recurse=True) if p is not self.base_layer.weight]
        return _compute_dtype(self.base_layer.weight.dtype, *params)

    def resolved_path(self):
        """The path ``forward`` uses: the configured one, or :func:`auto_path`'s choice."""
        return self.config.path if self.config.path != "auto" else self._auto_path()

    def _auto_path(self):
        return "dense"

    def delta_weight(self, scaled=True):
        r"""The dense update :math:`s\,\Delta W` (or :math:`\Delta W` with ``scaled=False``), shape (m, n).

        Computed in the adapter's compute dtype (float32, or float64), with autograd.
        """
        delta = self._delta_dense(self._adapter_dtype())
        return self.scale * delta if scaled else delta

    def forward(self, x):
        if self.merged:
            return self.base_layer(x)
        weight, bias = self.base_layer.weight, self.base_layer.bias
        dtype = self._adapter_dtype()
        autocast = torch.is_autocast_enabled(x.device.type)
        if self.resolved_path() == "dense":
            merged = weight.dtype == dtype and x.dtype == dtype and not autocast
            stepped = self._dense_step(x, dtype, merged)
            if stepped is not None:
                return stepped
            if merged:
                # One GEMM with W0 + s ΔW: the backward pass needs the ΔW-gradient GEMM anyway.
                return F.linear(x, weight + self.scale * self._delta_dense(dtype), bias)
            y = self.base_layer(x)
            with torch.autocast(x.device.type, enabled=False):
                update = F.linear(x.to(dtype), self._delta_dense(dtype))
            return y + (self.scale * update).to(y.dtype)
        y = self.base_layer(x)
        with torch.autocast(x.device.type, enabled=False):
            update = self._delta_apply(x.to(dtype))
        return y + (self.scale * update).to(y.dtype)

    def _dense_step(self, x, dtype, merged):
        """The dense path through a custom autograd function, or None for the generic one."""
        return None

    @torch.no_grad()
    def merge(self):
        r"""Fold :math:`s\,\Delta W` into the base weight; ``forward`` then runs the base layer alone.

        The adapter's trainable tensors and scale are copied as they are now (a few numbers: the
        pool, LoRA's factors, the generators), so that :meth:`unmerge` subtracts exactly this
        update even if the adapter changes while merged.

        Raises
        ------
        ValueError
            If already merged.
        """
        if self.merged:
            raise ValueError(f"layer {self.layer_name!r} is already merged; call unmerge() first")
        weight = self.base_layer.weight
        snapshot = self._update_snapshot()
        weight.add_(self.delta_weight().to(weight.dtype))
        self._merged_snapshot = snapshot
        self.merged = True

    @torch.no_grad()
    def unmerge(self):
        r"""Subtract the merged :math:`s\,\Delta W` from the base weight again (exact up to float rounding).

        The update subtracted is the one :meth:`merge` added, rebuilt from the copy taken then.
        If the adapter's tensors or scale changed while merged (an optimizer step, a
        ``load_state_dict``, an in-place edit), the base weight is still restored, the adapter
        keeps its new values, and a ``UserWarning`` names what changed: the merged forward passes
        did not use the change.

        Raises
        ------
        ValueError
            If not merged, or if a trainable tensor changed shape while merged (nothing is
            changed then).
        """
        if not self.merged:
            raise ValueError(f"layer {self.layer_name!r} is not merged")
        weight = self.base_layer.weight
        delta = self._delta_weight_at(getattr(self, "_merged_snapshot", None))
        weight.sub_(delta.to(weight.dtype))
        self._merged_snapshot = None
        self.merged = False

    def _update_snapshot(self):
        r"""A copy of what :math:`s\,\Delta W` is computed from: the trainable tensors and the scale.

        See :meth:`_delta_weight_at`.
        """
        return {"scale": self.scale, "tensors": {k: t.detach().clone() for k, t in self.trainable_tensors().items()}}

    @torch.no_grad()
    def _delta_weight_at(self, snapshot):
        r""":math:`s\,\Delta W` as it was when ``snapshot`` (:meth:`_update_snapshot`) was taken.

        When the adapter's tensors still equal the snapshot this is :meth:`delta_weight`;
        otherwise the snapshot's values are put in place for the computation and the current
        ones restored after it, and a ``UserWarning`` names the tensors that differ. ``None``
        (no snapshot) means the current update.

        Raises
        ------
        ValueError
            If a tensor's shape differs from the snapshot's (the update cannot be rebuilt).
        """
        if snapshot is None:
            return self.delta_weight()
        live, saved = self.trainable_tensors(), snapshot["tensors"]
        reshaped = sorted(k for k in saved if k not in live or live[k].shape != saved[k].shape)
        if reshaped:
            raise ValueError(
                f"layer {self.layer_name!r}: the adapter tensors {reshaped} changed shape (or vanished) while "
                "merged, so the merged update cannot be rebuilt and subtracted; the base weight is left as it is"
            )
        changed = sorted(k for k, t in live.items() if not torch.equal(t, saved[k].to(device=t.device, dtype=t.dtype)))
        current = {k: live[k].detach().clone() for k in changed}
        try:
            for k in changed:
                live[k].copy_(saved[k])
            delta = snapshot["scale"] * self.delta_weight(scaled=False)
        finally:
            for k in changed:
                live[k].copy_(current[k])
        if snapshot["scale"] != self.scale:
            changed.append("scale")
        if changed:
            warnings.warn(
                f"layer {self.layer_name!r}: {changed} changed while the update was merged; the merged forward "
                "passes did not use the change. The update that was merged is the one subtracted, so the base "
                "weight is restored; the adapter keeps its new values.",
                UserWarning,
                stacklevel=3,
            )
        return delta

    def trainable_tensors(self):
        """``{name: parameter}`` of the adapter's own trainable tensors (what a checkpoint stores)."""
        raise NotImplementedError

    def n_trainable(self):
        return sum(p.numel() for p in self.trainable_tensors().values())


class HydraLinear(AdapterLinear):
    r"""A frozen ``nn.Linear`` plus a HyDRA update: a k×k grid of LDR blocks read from a pool.

    .. math::

        y = W_0 x + b + s\,\Delta W_{\text{eff}}\, x, \qquad
        \Delta W_{\text{eff}} = \Delta W(\theta) - \Delta W(\theta^{(0)}),

    where :math:`\theta` is the pool (trainable part and fixed random part), :math:`\theta^{(0)}`
    its initial value (regenerated from the seed, never saved) and :math:`\Delta W(\theta)` the
    block matrix whose generators are gathered from :math:`\theta` by the layer's index map.

    Parameters
    ----------
    base_layer : nn.Linear
        Frozen by the constructor (``requires_grad = False``).
    config : HydraConfig
    name : str, default ""
        The layer's name in the model: seeds its pool and index map.
    pool : ParameterPool, optional
        A shared pool (``config.shared_pool``); then ``index_map`` must be given. By default the
        layer creates its own pool named ``name``.
    index_map : array of int, shape (k² · slots_per_block,), optional
        The layer's slice of the shared pool's index map.

    Notes
    -----
    **Initialisation (the offset parameterisation).** At construction :math:`\theta =
    \theta^{(0)}`, so :math:`\Delta W_{\text{eff}} = 0` *exactly* and the output equals the base
    layer's. The gradient is not zero: for the bilinear block classes,
    :math:`\Delta W(\theta)` is a sum of terms :math:`B(g_l, h_l)` bilinear in the generators, and

    .. math::

        B(g, h) - B(g_0, h_0) = B(g - g_0,\, h) + B(g_0,\, h - h_0),

    so :math:`\Delta W_{\text{eff}}` is the same block-LDR class with rank 2r and generators
    :math:`G' = [G - G_0,\ G_0]`, :math:`H' = [H;\ H - H_0]` (all gathered from
    :math:`\theta - \theta^{(0)}`, :math:`\theta^{(0)}` and :math:`\theta`). At the start one
    factor of each term is exactly zero and the other is random (:math:`N(0,\sigma^2)`, the fixed
    part included), as in LoRA, so gradients reach every used pool entry. The fixed random part
    keeps its role: it multiplies the trainable deviations. For plain Toeplitz blocks (linear in
    the pool) the offset is :math:`\Delta W(\theta - \theta^{(0)})`, i.e. a zero-initialised pool.
    Memory: beyond the pool, only the initial values (P numbers) and the index maps are kept; no
    m×n buffer. Cost: the bilinear classes run their block products at rank 2r.

    **Paths.** ``"dense"`` builds :math:`\Delta W_{\text{eff}}` from the generators (batched Krylov
    matrices and one matmul per block for the Toeplitz family, the Vandermonde matrix, the
    Cauchy matrix) and applies it with one GEMM; ``"fft"`` applies the blocks with the fast
    products of :mod:`ldr` on the padded input chunks (see :mod:`hydra.blocks`); ``"auto"``
    picks by :func:`auto_path`. Both are exact (they agree to float rounding).

    **Block shapes.** :class:`~hydra.BlockPartitioner` pads and crops: blocks are
    :math:`\lceil m/k\rceil \times \lceil n/k\rceil`. Rectangular blocks use nonsingular pairs
    (Toeplitz-like :math:`(Z_1, Z_0)`, Hankel-like :math:`(Z_1, Z_0^T)`).

    Examples
    --------
    >>> import torch, hydra
    >>> base = torch.nn.Linear(12, 10)
    >>> cfg = hydra.HydraConfig(structure="toeplitz_like", k=3, pool_size=40, target_modules=["x"])
    >>> layer = hydra.HydraLinear(base, cfg, name="x")
    >>> x = torch.randn(5, 12)
    >>> bool(torch.equal(layer(x), base(x)))                     # unchanged at initialisation
    True
    >>> with torch.no_grad():
    ...     _ = layer.pool.trainable.add_(0.1 * torch.randn(40))
    >>> dense = base.weight + layer.delta_weight()
    >>> bool(torch.allclose(layer(x), x @ dense.T + base.bias, atol=1e-5))
    True
    """

    #: Pool-gradient route of the dense path (one of :data:`hydra.autograd.GRADIENT_ROUTES`);
    #: None lets :func:`hydra.autograd.gradient_route` pick. Every route gives the same gradient.
    gradient_route = None

    def __init__(self, base_layer, config, name="", pool=None, index_map=None):
        super().__init__(base_layer, config, name)
        if not isinstance(config, HydraConfig):
            raise TypeError(f"`config` must be a HydraConfig; got {type(config).__name__}")
        m, n = base_layer.out_features, base_layer.in_features
        self.partition = BlockPartitioner(m, n, config.k)
        bm, bn = self.partition.block_shape
        self.blocks = block_structure(config.structure, bm, bn, config.rank)
        self.scale = config.scale
        k, per_block = config.k, self.blocks.slots_per_block
        self.n_slots = k * k * per_block
        if pool is None:
            if index_map is not None:
                raise ValueError("`index_map` is only used together with a shared `pool`")
            pool = ParameterPool(config.pool_size, config.n_fixed, config.seed, name, config.init_std)
            index_map = balanced_index_map(self.n_slots, config.pool_size, config.seed, name)
        elif index_map is None:
            raise ValueError("a shared `pool` needs this layer's `index_map`")
        index_map = np.asarray(index_map, dtype=np.int64)
        if index_map.shape != (self.n_slots,) or index_map.min() < 0 or index_map.max() >= pool.size:
            raise ValueError(
                f"`index_map` must hold {self.n_slots} indices in [0, {pool.size}); got shape "
                f"{index_map.shape}, range [{index_map.min()}, {index_map.max()}]"
            )
        self.pool = pool
        index = torch.from_numpy(index_map.reshape(k, k, per_block))
        g_slots, _ = self.blocks.slot_split()
        self.register_buffer("index_g", index[..., :g_slots].contiguous(), persistent=False)
        self.register_buffer("index_h", index[..., g_slots:].contiguous(), persistent=False)
        # Fixed nodes: rebuilt on demand per (device, dtype) from float64 values, so a model cast
        # to bfloat16 never rounds them.
        self._fixed_values = self.blocks.buffers()
        self._fixed_cache = {}
        self.to(base_layer.weight.device)
        # A persistent digest of everything regenerated above, checked by load_state_dict (H2, issue 12).
        attach_digest(self)

    def _auto_path(self):
        return auto_path(self.config.structure, self.partition.block_shape)

    def resolved_gradient_route(self):
        """The pool-gradient route of the dense path: :attr:`gradient_route`, or :func:`hydra.autograd.gradient_route`'s choice."""
        if self.gradient_route is not None:
            if self.gradient_route not in GRADIENT_ROUTES:
                raise ValueError(
                    f"`gradient_route` must be None or one of {', '.join(map(repr, GRADIENT_ROUTES))}; "
                    f"got {self.gradient_route!r}"
                )
            return self.gradient_route
        return gradient_route(self.config.structure, (self.out_features, self.in_features), self.partition.block_shape)

    def _dense_step(self, x, dtype, merged):
        # One GEMM forward; dX from the merged weight and the pool gradient by the route's
        # structured reduction in the backward; nothing m×n is saved (hydra.autograd).
        return merged_linear(self, x, self.resolved_gradient_route(), dtype, merged)

    def _fixed(self, device, dtype):
        key = (str(device), dtype)
        if key not in self._fixed_cache:
            self._fixed_cache[key] = {k: v.to(device=device, dtype=dtype) for k, v in self._fixed_values.items()}
        return self._fixed_cache[key]

    def block_generators(self, initial=False):
        """The blocks' generators read from the pool :math:`\\theta` (or :math:`\\theta^{(0)}`).

        Parameters
        ----------
        initial : bool, default False
            Read the initial pool instead of the current one.

        Returns
        -------
        dict
            ``{"t": (k, k, bm + bn - 1)}`` for plain Toeplitz blocks (diagonals, top-right
            first: ``T[i, j] = t[i - j + bn - 1]``), else ``{"G": (k, k, bm, r), "H": (k, k, r, bn)}``;
            plus the fixed node arrays (``"nodes"``/``"vandermonde"`` or ``"row_nodes"``,
            ``"column_nodes"``/``"cauchy"``) where the structure has them.
        """
        theta = self.pool.initial_values() if initial else self.pool()
        fixed = self._fixed(theta.device, theta.dtype)
        if not self.blocks.bilinear:
            return {"t": theta[self.index_g], **fixed}
        G, H = self.blocks.generators(theta[self.index_g], theta[self.index_h])
        return {"G": G, "H": H, **fixed}

    def _effective_generators(self, dtype):
        """Generators of ΔW_eff = ΔW(θ) - ΔW(θ0): rank 2r for the bilinear classes (class notes)."""
        pool = self.pool
        deviation = pool.deviation().to(dtype)
        if not self.blocks.bilinear:
            return deviation[self.index_g], None
        theta, theta0 = pool().to(dtype), pool.initial_values().to(dtype)
        G_moved, H_now = self.blocks.generators(deviation[self.index_g], theta[self.index_h])
        G_init, H_moved = self.blocks.generators(theta0[self.index_g], deviation[self.index_h])
        return torch.cat([G_moved, G_init], dim=-1), torch.cat([H_now, H_moved], dim=-2)

    def _delta_dense(self, dtype):
        G, H = self._effective_generators(dtype)
        fixed = self._fixed(self.index_g.device, dtype)
        return self.partition.assemble(self.blocks.dense(G, H, fixed))

    def _delta_apply(self, x):
        G, H = self._effective_generators(x.dtype)
        fixed = self._fixed(x.device, x.dtype)
        y = self.blocks.matvec(G, H, fixed, self.partition.split_input(x))
        return self.partition.merge_output(y)

    def trainable_tensors(self):
        return {"pool.trainable": self.pool.trainable}

    def n_trainable(self):
        return self.pool.n_trainable

    def reset_parameters(self):
        """Reset the pool to its initial values (ΔW_eff = 0). With a shared pool this resets it for every layer."""
        self.pool.reset_parameters()

    def extra_repr(self):
        bm, bn = self.partition.block_shape
        shared = ", shared_pool=True" if self.config.shared_pool else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"structure={self.config.structure!r}, k={self.config.k}, rank={self.config.rank}, "
            f"block_shape=({bm}, {bn}), pool_size={self.pool.size}, trainable={self.pool.n_trainable}"
            f"{shared}, scale={self.scale}, path={self.resolved_path()!r}"
        )


class LoRALinear(AdapterLinear):
    r"""The LoRA baseline: :math:`\Delta W = B A`, scale ``alpha / rank``.

    ``A`` (r×n) is Kaiming-uniform with ``a = sqrt(5)`` (peft's default), drawn on the CPU from
    ``(seed, layer name)``; ``B`` (m×r) starts at zero, so the output is unchanged at
    initialisation and ``B`` receives the first gradients. Trainable: :math:`r (m + n)`.

    Examples
    --------
    >>> import torch, hydra
    >>> layer = hydra.LoRALinear(torch.nn.Linear(8, 6), hydra.LoRAConfig(rank=2, target_modules=["x"]))
    >>> layer.n_trainable()
    28
    """

    def __init__(self, base_layer, config, name=""):
        super().__init__(base_layer, config, name)
        if not isinstance(config, LoRAConfig):
            raise TypeError(f"`config` must be a LoRAConfig; got {type(config).__name__}")
        m, n, r = base_layer.out_features, base_layer.in_features, config.rank
        self.scale = config.scale
        self.lora_A = nn.Parameter(torch.empty(r, n))
        self.lora_B = nn.Parameter(torch.empty(m, r))
        self.reset_parameters()
        self.to(base_layer.weight.device)

    def _auto_path(self):
        return "fft"  # the factored product B (A x): no FFT involved, but never a full-size matrix

    def reset_parameters(self):
        generator = torch.Generator(device="cpu").manual_seed(stable_seed(self.config.seed, "lora", self.layer_name))
        A = torch.empty(self.lora_A.shape)
        nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
        with torch.no_grad():
            self.lora_A.copy_(A)
            self.lora_B.zero_()

    def _delta_dense(self, dtype):
        return self.lora_B.to(dtype) @ self.lora_A.to(dtype)

    def _delta_apply(self, x):
        return F.linear(F.linear(x, self.lora_A.to(x.dtype)), self.lora_B.to(x.dtype))

    def trainable_tensors(self):
        return {"lora_A": self.lora_A, "lora_B": self.lora_B}

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, rank={self.config.rank}, "
            f"scale={self.scale}"
        )


class LDRLinear(AdapterLinear):
    r"""The plain-LDR baseline: one m×n LDR matrix per layer (circulant or rank-r Toeplitz-like).

    ``"circulant"``: :math:`\Delta W = C_1(c)_{:m,:n}` with :math:`C_1(c)` the p×p circulant of
    first column ``c``, p = max(m, n) (pad ``x`` with zeros, crop the output); ``c = 0`` at start
    (ΔW is linear in ``c``, so its gradient is not zero). ``"toeplitz_like"``: the core's
    :func:`ldr.toeplitz_like` with generators ``G`` (m×r, zeros at start) and ``H`` (r×n,
    :math:`N(0, \sigma^2)` from the seed), operator pair :math:`(Z_1, Z_{-1})` square and
    :math:`(Z_1, Z_0)` rectangular. Both start with ΔW = 0 exactly and non-zero gradients.

    Examples
    --------
    >>> import torch, hydra
    >>> cfg = hydra.LDRConfig(structure="circulant", target_modules=["x"])
    >>> layer = hydra.LDRLinear(torch.nn.Linear(8, 6), cfg)
    >>> layer.n_trainable()
    8
    """

    def __init__(self, base_layer, config, name=""):
        super().__init__(base_layer, config, name)
        if not isinstance(config, LDRConfig):
            raise TypeError(f"`config` must be an LDRConfig; got {type(config).__name__}")
        m, n = base_layer.out_features, base_layer.in_features
        self.scale = config.scale
        if config.structure == "circulant":
            self.size = max(m, n)
            self.c = nn.Parameter(torch.zeros(self.size))
        else:
            self.G = nn.Parameter(torch.zeros(m, config.rank))
            self.H = nn.Parameter(torch.zeros(config.rank, n))
        self.reset_parameters()
        self.to(base_layer.weight.device)

    def _auto_path(self):
        return "dense"

    def reset_parameters(self):
        with torch.no_grad():
            if self.config.structure == "circulant":
                self.c.zero_()
                return
            generator = torch.Generator(device="cpu").manual_seed(stable_seed(self.config.seed, "ldr", self.layer_name))
            self.G.zero_()
            self.H.copy_(torch.randn(self.H.shape, generator=generator) * self.config.init_std)

    def _toeplitz_like(self, dtype):
        G, H = self.G.to(dtype), self.H.to(dtype)
        m, n = self.out_features, self.in_features
        e, f = default_shift_pair(m, n)
        return ldr.ToeplitzLike._trusted(ldr.Shift(m, e), ldr.Shift(n, f), G, H)

    def _delta_dense(self, dtype):
        m, n = self.out_features, self.in_features
        if self.config.structure == "circulant":
            c = self.c.to(dtype)
            # Entry (i, j) is c[(i - j) mod p]: diagonals i - j = -(n-1) .. m-1.
            index = torch.arange(-(n - 1), m, device=c.device) % self.size
            return toeplitz_matrix(c[index], m, n)
        # The column-recurrence builder of the block structures, O(r m n) (the core's dense()
        # applies the FFT product to the identity instead).
        return shift_toeplitz_like_dense(self.G.to(dtype), self.H.to(dtype), default_shift_pair(m, n)[1])

    def _delta_apply(self, x):
        m, n = self.out_features, self.in_features
        if self.config.structure == "circulant":
            x = F.pad(x, (0, self.size - n)) if self.size > n else x
            return fcirculant_matvec(self.c.to(x.dtype), x, 1.0)[..., :m]
        return self._toeplitz_like(x.dtype).matvec(x)

    def trainable_tensors(self):
        if self.config.structure == "circulant":
            return {"c": self.c}
        return {"G": self.G, "H": self.H}

    def extra_repr(self):
        rank = f", rank={self.config.rank}" if self.config.structure != "circulant" else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"structure={self.config.structure!r}{rank}, scale={self.scale}, path={self.resolved_path()!r}"
        )


def make_adapter(base_layer, config, name="", **kwargs):
    """The adapter layer for ``config`` (HydraConfig -> HydraLinear, LoRAConfig -> LoRALinear, LDRConfig -> LDRLinear)."""
    for cls, layer in ((HydraConfig, HydraLinear), (LoRAConfig, LoRALinear), (LDRConfig, LDRLinear)):
        if isinstance(config, cls):
            return layer(base_layer, config, name, **kwargs)
    raise TypeError(f"`config` must be a HydraConfig, LoRAConfig or LDRConfig; got {type(config).__name__}")

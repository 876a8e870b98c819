r"""The parameter pool: a trainable part and a fixed random part regenerated from a seed.

A pool of P entries is the vector :math:`\theta = [\theta_{\text{train}}, \theta_{\text{fixed}}]`.
Both parts start from one stream of :math:`N(0, \sigma^2)` numbers drawn on the CPU by a
``torch.Generator`` seeded from ``(seed, pool name)`` (:func:`hydra.sampler.stable_seed`), then
moved to the pool's device, so every device, process and reload sees the same numbers. The
fixed part and the initial values :math:`\theta^{(0)}` are non-persistent buffers: they are
regenerated, never saved. A checkpoint holds :math:`\theta_{\text{train}}` only.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .sampler import stable_seed

__all__ = ["ParameterPool", "pool_initial_values"]


def pool_initial_values(size, seed, name, init_std):
    """The pool's initial values, ``N(0, init_std**2)`` drawn on the CPU from ``(seed, name)``.

    Parameters
    ----------
    size : int
        P.
    seed : int
    name : str
        The pool's name (layer name or ``"shared"``).
    init_std : float

    Returns
    -------
    torch.Tensor, shape (P,), float32, on the CPU
        Entries ``[:P - n_fixed]`` initialise the trainable part, the rest is the fixed part.

    Examples
    --------
    >>> import torch
    >>> from hydra.pool import pool_initial_values
    >>> a = pool_initial_values(5, 0, "q", 0.02)
    >>> bool(torch.equal(a, pool_initial_values(5, 0, "q", 0.02)))
    True
    """
    generator = torch.Generator(device="cpu")
    generator.manual_seed(stable_seed(seed, "pool", name))
    return torch.randn(size, generator=generator, dtype=torch.float32) * init_std


class ParameterPool(nn.Module):
    r"""P numbers shared by the blocks of one (or, when shared, every) adapted matrix.

    Parameters
    ----------
    size : int
        P >= 1.
    n_fixed : int, default 0
        Entries that are random and frozen, ``0 <= n_fixed < size`` (the last ones; the index
        map shuffles, so their position does not matter).
    seed : int, default 0
    name : str, default "pool"
        Seeds the values together with ``seed``.
    init_std : float, default 0.02
        Standard deviation of the initial and fixed values.

    Attributes
    ----------
    trainable : nn.Parameter, shape (size - n_fixed,)
    fixed : buffer, shape (n_fixed,)
        Non-persistent (absent from ``state_dict`` and checkpoints), regenerated from the seed.
    initial : buffer, shape (size - n_fixed,)
        The trainable part's initial values, non-persistent, regenerated from the seed.

    Notes
    -----
    :meth:`forward` returns :math:`\theta` (P,); :meth:`deviation` returns
    :math:`\theta - \theta^{(0)}`, exactly zero on the fixed part and, right after
    :meth:`reset_parameters`, everywhere. HyDRA layers build
    :math:`\Delta W_{\text{eff}} = \Delta W(\theta) - \Delta W(\theta^{(0)})` from these two vectors.

    Examples
    --------
    >>> from hydra import ParameterPool
    >>> pool = ParameterPool(10, n_fixed=3, seed=0, name="q")
    >>> pool().shape, pool.trainable.numel(), pool.fixed.numel()
    (torch.Size([10]), 7, 3)
    >>> bool((pool.deviation() == 0).all())
    True
    >>> sorted(pool.state_dict())                   # the fixed part is never saved
    ['trainable']
    """

    def __init__(self, size, n_fixed=0, seed=0, name="pool", init_std=0.02):
        super().__init__()
        # NumPy integer scalars are accepted wherever Python ints are (numbers.Integral).
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"`size` (pool_size) must be an integer >= 1; got {size!r}")
        if isinstance(n_fixed, bool) or not isinstance(n_fixed, numbers.Integral) or not 0 <= n_fixed < size:
            raise ValueError(
                f"`n_fixed` (the fixed entries, fixed_ratio * pool_size) must be an integer in "
                f"[0, pool_size) = [0, {size}); got {n_fixed!r}"
            )
        size, n_fixed = int(size), int(n_fixed)
        if not (isinstance(init_std, (int, float)) and math.isfinite(init_std) and init_std > 0):
            raise ValueError(f"`init_std` must be a finite number > 0; got {init_std!r}")
        self.size = size
        self.n_fixed = n_fixed
        self.seed = seed
        self.name = name
        self.init_std = float(init_std)
        values = pool_initial_values(size, seed, name, self.init_std)
        n_train = size - n_fixed
        self.trainable = nn.Parameter(values[:n_train].clone())
        self.register_buffer("initial", values[:n_train].clone(), persistent=False)
        self.register_buffer("fixed", values[n_train:].clone(), persistent=False)

    @property
    def n_trainable(self):
        """Trainable entries, ``size - n_fixed``."""
        return self.size - self.n_fixed

    def reset_parameters(self):
        """Set the trainable part back to its initial values (so that ΔW_eff = 0 again)."""
        with torch.no_grad():
            self.trainable.copy_(self.initial)

    def regenerate(self, values=None):
        """Recompute the fixed part and the initial values from the seed (on the current device and dtype).

        Parameters
        ----------
        values : torch.Tensor, shape (P,), optional
            The P initial values to install instead of drawing them from ``(seed, name)``
            (:func:`hydra.load` passes the ones it verified against the checkpoint's digests).
        """
        if values is None:
            values = pool_initial_values(self.size, self.seed, self.name, self.init_std)
        elif tuple(values.shape) != (self.size,):
            raise ValueError(f"`values` must have shape ({self.size},); got {tuple(values.shape)}")
        with torch.no_grad():
            self.initial.copy_(values[: self.n_trainable])
            self.fixed.copy_(values[self.n_trainable :])

    def forward(self):
        """The pool :math:`\\theta` of shape (P,): trainable entries first, then the fixed ones."""
        return torch.cat([self.trainable, self.fixed.to(self.trainable.dtype)])

    def initial_values(self):
        r"""The initial pool :math:`\theta^{(0)}` of shape (P,) (no gradient)."""
        return torch.cat([self.initial, self.fixed]).to(self.trainable.dtype)

    def deviation(self):
        r""":math:`\theta - \theta^{(0)}` of shape (P,): exact zeros on the fixed part."""
        moved = self.trainable - self.initial.to(self.trainable.dtype)
        return torch.cat([moved, moved.new_zeros(self.n_fixed)])

    def extra_repr(self):
        return (
            f"name={self.name!r}, size={self.size}, trainable={self.n_trainable}, fixed={self.n_fixed}, "
            f"seed={self.seed}, init_std={self.init_std}"
        )

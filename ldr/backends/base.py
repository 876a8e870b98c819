"""The backend interface: the primitives that the :mod:`ldr` algorithms are written against.

A backend supplies array creation, the FFT family along the last axis, a few shape
operations and the dtype rule. Everything else (Krylov products, reconstruction, the fast
products of each class) lives once in :mod:`ldr.krylov` and in the structure classes of :mod:`ldr`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.fft import next_fast_len

__all__ = ["Backend", "fft_length", "swaps_to_permutation"]


def swaps_to_permutation(swaps, m: int):
    """LAPACK's row interchanges (row i swapped with ``swaps[..., i]``, 0-based, in order) as a permutation.

    ``swaps`` (..., b) gives ``perm`` (..., m): one permutation per leading index.
    """
    swaps = np.asarray(swaps)
    if swaps.ndim > 1 and swaps[..., 0].size <= 64:  # a small batch: the loop below per entry
        flat = swaps.reshape(-1, swaps.shape[-1])
        return np.stack([swaps_to_permutation(entry, m) for entry in flat]).reshape(swaps.shape[:-1] + (m,))
    if swaps.ndim > 1:  # a large batch: one vectorised swap per column (b steps of ~6 NumPy calls)
        perm = np.broadcast_to(np.arange(m), swaps.shape[:-1] + (m,)).copy()
        for i in range(swaps.shape[-1]):
            j = swaps[..., i : i + 1]
            at_i, at_j = perm[..., i : i + 1].copy(), np.take_along_axis(perm, j, -1)
            np.put_along_axis(perm, j, at_i, -1)
            perm[..., i : i + 1] = at_j
        return perm
    perm = np.arange(m)
    for i, j in enumerate(swaps):  # at most b interchanges: a short loop
        if i != j:
            perm[i], perm[j] = perm[j], perm[i]
    return perm


def fft_length(n: int) -> int:
    """Length of the real FFT used for an exact linear convolution of two length-``n`` signals.

    Returns the smallest 5-smooth length ``>= 2 n - 1`` (``scipy.fft.next_fast_len``). The bare
    ``2 n - 1`` can be a large prime (8191 for ``n = 4096``), which makes FFTs several times slower.

    Examples
    --------
    >>> from ldr.krylov import fft_length
    >>> fft_length(4096)
    8192
    >>> fft_length(1)
    1
    """
    return next_fast_len(max(2 * n - 1, 1), real=True)


class Backend:
    """Primitives one array library supplies to the :mod:`ldr` algorithms.

    Subclasses implement every method below for their array type. Arrays are always operated
    on along the *last* axis; leading axes broadcast. No method moves data between devices or
    libraries.
    """

    name = "abstract"

    # -- array creation and conversion ---------------------------------------------------------
    def is_array(self, x) -> bool:
        raise NotImplementedError

    def asarray(self, x, dtype=None, like=None):
        """Convert ``x`` (array, list or scalar) to this library's array type, on ``like``'s device."""
        raise NotImplementedError

    def to_numpy(self, x):
        """A NumPy copy of ``x`` (used only for validation, never inside a product)."""
        raise NotImplementedError

    def zeros(self, shape, dtype, like=None):
        raise NotImplementedError

    def arange(self, n, dtype, like=None):
        raise NotImplementedError

    # -- dtypes -----------------------------------------------------------------------------------
    def dtype_kind(self, dtype) -> str:
        """One of ``'b'``, ``'i'``, ``'u'``, ``'f'``, ``'c'`` or ``'O'`` (anything else)."""
        raise NotImplementedError

    def dtype_name(self, dtype) -> str:
        raise NotImplementedError

    def promote(self, *dtypes):
        """The library's own type promotion of ``dtypes`` (no adjustment)."""
        raise NotImplementedError

    def compute_dtype(self, *dtypes):
        """The dtype rule: integers -> float64, half precision -> float32, complex if any is complex."""
        raise NotImplementedError

    def check_dtypes(self, named_dtypes):
        """Enforce the library's mixing rule for generator/node dtypes (``{name: dtype}``).

        NumPy promotes (as ``numpy.matmul`` does); torch refuses mixed floating dtypes.
        """

    def operand_dtypes(self, generator_dtype, x_dtype, out_dtype):
        """Check an operand ``x`` against the generators and return the product's output dtype."""
        return out_dtype

    def real_dtype(self, dtype):
        raise NotImplementedError

    def complex_dtype(self, dtype):
        raise NotImplementedError

    def eps(self, dtype) -> float:
        raise NotImplementedError

    def cast(self, x, dtype):
        raise NotImplementedError

    # -- FFT family, always along the last axis ------------------------------------------------
    def rfft(self, x, n: int):
        raise NotImplementedError

    def irfft(self, x, n: int):
        raise NotImplementedError

    def fft(self, x, n: int):
        raise NotImplementedError

    def ifft(self, x, n: int):
        raise NotImplementedError

    # -- shape and arithmetic ---------------------------------------------------------------------
    def flip(self, x):
        """Reverse the last axis (the exchange matrix ``J``)."""
        raise NotImplementedError

    def concatenate(self, arrays, axis: int = -1):
        raise NotImplementedError

    def pad_last(self, x, before: int, after: int):
        """Zero-pad the last axis."""
        raise NotImplementedError

    def swapaxes(self, x, a: int, b: int):
        raise NotImplementedError

    def expand_dims(self, x, axis: int):
        raise NotImplementedError

    def broadcast_to(self, x, shape):
        raise NotImplementedError

    def einsum(self, spec: str, *operands):
        raise NotImplementedError

    def matmul(self, a, b):
        raise NotImplementedError

    def take(self, x, index, axis: int = -1):
        """Gather along ``axis`` with an integer index array (a NumPy array of indices)."""
        raise NotImplementedError

    def vander(self, v, n: int):
        """``V[..., i, j] = v[..., i] ** j`` for ``j < n`` (increasing powers)."""
        raise NotImplementedError

    def sum(self, x, axis):
        raise NotImplementedError

    def cumsum(self, x, axis: int = -1):
        """Running sums along ``axis`` (same shape as ``x``)."""
        raise NotImplementedError

    def segment_sum(self, x, starts):
        """Sums of consecutive row segments along axis 0: row k sums ``x[starts[k]:starts[k + 1]]``.

        ``starts`` is a NumPy int array, strictly increasing, ``starts[0] == 0`` (no empty
        segment). Used by the block-sparse translations of ``ldr.fast_cauchy``.
        """
        raise NotImplementedError

    def sliding_windows(self, x, size: int, step: int):
        """Overlapping windows along axis 0 as a view (no copy): (count, size, ...) with window k
        ``x[k * step : k * step + size]``, count = (len(x) - size) // step + 1."""
        raise NotImplementedError

    def conj(self, x):
        raise NotImplementedError

    # Elementwise maths and checkpointing, used by the node kernels (ldr/node_kernels.py).
    def exp(self, x):
        raise NotImplementedError

    def log(self, x):
        """Natural logarithm (principal branch for complex ``x``)."""
        raise NotImplementedError

    def where(self, condition, a, b):
        raise NotImplementedError

    def requires_grad(self, x) -> bool:
        """Whether autograd records operations on ``x`` now."""
        return False

    def recompute(self, function, *arrays):
        """``function(*arrays)``; under autograd, intermediates are recomputed in the backward pass.

        The streamed kernels call each tile through this, so a recorded graph keeps O(tile)
        memory instead of every tile of an m×n kernel.
        """
        return function(*arrays)

    def real(self, x):
        raise NotImplementedError

    def svd(self, x):
        """Thin SVD ``(U, s, Vh)`` of a matrix."""
        raise NotImplementedError

    def solve_triangular(self, a, b, lower, unit_diagonal=False, transpose=False):
        """Solve ``T y = b`` (``T^T y = b`` with ``transpose``), T the lower or upper triangle of ``a``.

        Only that triangle of ``a`` (..., n, n) is read (the other may hold anything, e.g. the
        other factor of a packed LU); ``b`` has shape (..., n, k). No check for a zero on the
        diagonal (the caller has checked the pivots). Used by :func:`ldr.solve`.
        """
        raise NotImplementedError

    def lu_factor(self, a):
        """LU with partial pivoting of (m, b) panels, m >= b: ``(lu, perm)`` with ``a[perm] = L U``.

        ``lu`` (..., m, b) holds U in its upper triangle and the unit lower-trapezoidal L below it
        (LAPACK ``getrf``); ``perm`` (..., m) is a NumPy int array, one permutation per leading
        index. An exactly zero pivot is left in place, never raised (the caller decides). Used
        by :func:`ldr.solve`.
        """
        raise NotImplementedError

    # -- checks and bookkeeping --------------------------------------------------------------------
    def all_finite(self, x) -> bool:
        raise NotImplementedError

    def has_data(self, x) -> bool:
        """False for arrays that have a shape but no values (torch's 'meta' device)."""
        return True

    def device(self, x):
        """The device an array lives on (``None`` for NumPy)."""
        return None

    def cache_allowed(self, *arrays) -> bool:
        """Whether values derived from ``arrays`` (generator spectra, Cauchy kernels) may be reused across calls.

        Only when every array provably cannot change: see :class:`~ldr.LDRMatrix` ("Mutation").
        """
        return False

    def freeze(self, x):
        """A private copy of ``x`` that can never be written (NumPy); other libraries return ``x``."""
        return x

    @staticmethod
    def prod(shape) -> int:
        return math.prod(shape)

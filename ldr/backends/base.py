"""The backend interface: the primitives that the :mod:`ldr` algorithms are written against.

A backend supplies array creation, the FFT family along the last axis, a few shape
operations and the dtype rule. Everything else (Krylov products, reconstruction, the fast
products of each class) lives once in :mod:`ldr.krylov` and in the structure classes of :mod:`ldr`.
"""

from __future__ import annotations

import math

from scipy.fft import next_fast_len

__all__ = ["Backend", "fft_length"]


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

    def conj(self, x):
        raise NotImplementedError

    def real(self, x):
        raise NotImplementedError

    def svd(self, x):
        """Thin SVD ``(U, s, Vh)`` of a matrix."""
        raise NotImplementedError

    # -- checks and bookkeeping --------------------------------------------------------------------
    def all_finite(self, x) -> bool:
        raise NotImplementedError

    def device(self, x):
        """The device an array lives on (``None`` for NumPy)."""
        return None

    def version(self, x):
        """A counter that changes when ``x`` is modified in place (used to invalidate caches)."""
        return 0

    def cache_allowed(self, *arrays) -> bool:
        """Whether values derived from ``arrays`` may be cached across calls.

        Caching is refused while autograd records a graph through them: a cached spectrum would
        tie later calls to an already-freed graph.
        """
        return True

    @staticmethod
    def prod(shape) -> int:
        return math.prod(shape)

"""The NumPy/SciPy reference backend (``scipy.fft``, float64 by default)."""

from __future__ import annotations

import numpy as np
import scipy.fft

from .base import Backend, swaps_to_permutation

__all__ = ["NumpyBackend"]


def _is_frozen(x):
    """True when no one can write ``x``: read-only down to an immutable ``bytes`` buffer.

    A read-only array that owns its data can be made writable again (``flags.writeable = True``);
    one whose memory is a ``bytes`` object cannot (NumPy refuses), and neither can its views.
    """
    base = x
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return isinstance(base, bytes)


class NumpyBackend(Backend):
    """:class:`~ldr.backends.base.Backend` for ``numpy.ndarray`` with ``scipy.fft`` transforms."""

    name = "numpy"

    def is_array(self, x):
        return isinstance(x, np.ndarray)

    def asarray(self, x, dtype=None, like=None):
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return np.asarray(x)

    def zeros(self, shape, dtype, like=None):
        return np.zeros(shape, dtype=dtype)

    def arange(self, n, dtype, like=None):
        return np.arange(n, dtype=dtype)

    def dtype_kind(self, dtype):
        kind = np.dtype(dtype).kind
        return kind if kind in "biufc" else "O"

    def dtype_name(self, dtype):
        return str(np.dtype(dtype))

    def promote(self, *dtypes):
        return np.result_type(*[np.dtype(d) for d in dtypes])

    def compute_dtype(self, *dtypes):
        kinds = [np.dtype(d) for d in dtypes]
        result = np.result_type(*kinds) if kinds else np.dtype(np.float64)
        if result.kind in "biu":
            return np.dtype(np.float64)
        if result == np.float16:
            return np.dtype(np.float32)
        if result.kind == "c" and result.itemsize < 8:  # complex32 does not exist in numpy
            return np.dtype(np.complex64)
        return result

    def real_dtype(self, dtype):
        return np.finfo(np.dtype(dtype)).dtype

    def complex_dtype(self, dtype):
        return np.result_type(np.dtype(dtype), np.complex64)

    def eps(self, dtype):
        return float(np.finfo(np.dtype(dtype)).eps)

    def cast(self, x, dtype):
        return np.asarray(x, dtype=dtype)

    def freeze(self, x):
        x = np.asarray(x)
        if _is_frozen(x):
            return x
        # tobytes() copies (C order); the bytes object then backs a read-only array whose
        # writeable flag can never be set again, so cached spectra cannot go stale.
        frozen = np.frombuffer(x.tobytes(), dtype=x.dtype).reshape(x.shape)
        if frozen.flags.aligned:
            return frozen
        frozen = x.copy()  # read-only but not provably frozen: cache_allowed() refuses it
        frozen.flags.writeable = False
        return frozen

    def cache_allowed(self, *arrays):
        return all(_is_frozen(a) for a in arrays)

    def rfft(self, x, n):
        return scipy.fft.rfft(x, n=n, axis=-1)

    def irfft(self, x, n):
        return scipy.fft.irfft(x, n=n, axis=-1)

    def fft(self, x, n):
        return scipy.fft.fft(x, n=n, axis=-1)

    def ifft(self, x, n):
        return scipy.fft.ifft(x, n=n, axis=-1)

    def flip(self, x):
        return x[..., ::-1]

    def concatenate(self, arrays, axis=-1):
        return np.concatenate(arrays, axis=axis)

    def pad_last(self, x, before, after):
        width = [(0, 0)] * (x.ndim - 1) + [(before, after)]
        return np.pad(x, width)

    def swapaxes(self, x, a, b):
        return np.swapaxes(x, a, b)

    def expand_dims(self, x, axis):
        return np.expand_dims(x, axis)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def einsum(self, spec, *operands):
        return np.einsum(spec, *operands, optimize=True)

    def matmul(self, a, b):
        return np.matmul(a, b)

    def take(self, x, index, axis=-1):
        return np.take(x, index, axis=axis)

    def vander(self, v, n):
        # Repeated multiplication (not v ** j) so that v = 0 gives the exact 0 ** 0 = 1 column.
        powers = np.ones(v.shape + (n,), dtype=v.dtype)
        if n > 1:
            powers[..., 1:] = v[..., None]
            np.cumprod(powers[..., 1:], axis=-1, out=powers[..., 1:])
        return powers

    def sum(self, x, axis):
        return np.sum(x, axis=axis)

    def cumsum(self, x, axis=-1):
        return np.cumsum(x, axis=axis)

    def segment_sum(self, x, starts):
        return np.add.reduceat(x, np.asarray(starts), axis=0)

    def sliding_windows(self, x, size, step):
        return np.moveaxis(np.lib.stride_tricks.sliding_window_view(x, size, axis=0)[::step], -1, 1)

    def conj(self, x):
        return np.conj(x)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def where(self, condition, a, b):
        return np.where(condition, a, b)

    def real(self, x):
        return np.real(x)

    def svd(self, x):
        return np.linalg.svd(x, full_matrices=False)

    def solve_triangular(self, a, b, lower, unit_diagonal=False, transpose=False):
        import scipy.linalg

        if a.ndim == 2 and b.ndim == 2:
            # BLAS trsm directly: scipy.linalg.solve_triangular's validation costs ~100 us a call,
            # more than the blocked solves of ldr.gko spend on a b x b triangle.
            (trsm,) = scipy.linalg.get_blas_funcs(("trsm",), (a, b))
            if a.flags.c_contiguous and not a.flags.f_contiguous:
                # BLAS wants column-major: hand it the transpose (a free view) rather than a copy.
                a, lower, transpose = a.T, not lower, not transpose
            return trsm(1.0, a, b, lower=int(lower), trans_a=int(transpose), diag=int(unit_diagonal))
        if a.ndim > 2 and b.ndim >= 2:  # a batch (ldr.gko's batched elimination): trsm per entry
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
            parts = [self.solve_triangular(a[i], b[i], lower, unit_diagonal, transpose) for i in np.ndindex(batch)]
            return np.stack(parts).reshape(batch + b.shape[-2:])
        return scipy.linalg.solve_triangular(
            a, b, trans="T" if transpose else "N", lower=lower, unit_diagonal=unit_diagonal, check_finite=False
        )

    def lu_factor(self, a):
        import scipy.linalg

        # LAPACK getrf directly: scipy.linalg.lu_factor would warn on an exactly zero pivot.
        (getrf,) = scipy.linalg.get_lapack_funcs(("getrf",), (a,))
        if a.ndim > 2:  # LAPACK has no batched getrf: one call per panel
            parts = [getrf(panel, overwrite_a=True)[:2] for panel in a.reshape((-1,) + a.shape[-2:])]
            lu = np.stack([part[0] for part in parts]).reshape(a.shape)
            swaps = np.stack([part[1] for part in parts]).reshape(a.shape[:-2] + (-1,))
            return lu, swaps_to_permutation(swaps, a.shape[-2])
        lu, swaps, _ = getrf(a, overwrite_a=True)
        return lu, swaps_to_permutation(swaps, a.shape[0])

    def all_finite(self, x):
        return bool(np.all(np.isfinite(x)))

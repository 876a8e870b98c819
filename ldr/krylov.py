r"""The :math:`f`-circulant primitive :math:`C_f(v) u`, written once for every backend.

:math:`C_f(v) = \mathcal{K}(Z_f, v) = [v, Z_f v, \dots, Z_f^{n-1} v]` is the :math:`f`-circulant
with first column :math:`v`: ``C_f(v)[i, j] = v[i - j]`` for ``i >= j`` and
``f * v[i - j + n]`` otherwise. Its product with ``u`` is the linear convolution ``v * u``
(length ``2n - 1``) folded with weight ``f``: ``y_i = c_i + f c_{i+n}``. One real FFT of a
5-smooth length ``N >= 2n - 1`` computes the convolution exactly for every ``f`` (including
``f = 0``, where :math:`C_0(v)` is lower-triangular Toeplitz). See :doc:`/theory/krylov`.

The functions here take a :class:`~ldr.backends.base.Backend` ``bk`` and trust their input:
shapes and dtypes are validated once by the public classes.
"""

from __future__ import annotations

import numpy as np

from .backends import get_backend
from .backends.base import fft_length

__all__ = ["fcirculant", "fcirculant_matvec", "fold", "fold_padded", "Spectral", "fft_length"]


class Spectral:
    """Forward/inverse transform pair of one FFT length and one field (real or complex).

    Real data use ``rfft``/``irfft``; complex data (or a complex ``e``, ``f``) use
    ``fft``/``ifft``. Keeping the pair in one object means the kernels never test the dtype.
    """

    def __init__(self, bk, length, complex_data):
        self.bk = bk
        self.length = length
        self.complex_data = complex_data

    def forward(self, x):
        bk = self.bk
        return bk.fft(x, self.length) if self.complex_data else bk.rfft(x, self.length)

    def inverse(self, X):
        bk = self.bk
        return bk.ifft(X, self.length) if self.complex_data else bk.irfft(X, self.length)


def fold(c, n, f, bk):
    """Wrap a linear convolution ``c`` (last axis >= 2n-1) into the f-circulant result of length n.

    ``c`` is a scratch buffer (every caller passes a fresh inverse-FFT output): the wrap is
    added into it in place and a view of its first n entries is returned. Padding and adding
    out of place cost 2-5x more than this pass at batch 64 (three full-size temporaries), about
    a tenth of a Toeplitz-like product. Safe under torch autograd: the inverse FFT's backward
    does not use its output, and the two slices do not overlap.
    """
    head = c[..., :n]
    if f == 0 or n == 1:
        return head
    body, wrap = c[..., : n - 1], c[..., n : 2 * n - 1]
    if f == 1:  # the (Z_1, Z_-1) default: no scaled temporary
        body += wrap
    elif f == -1:
        body -= wrap
    else:
        body += f * wrap
    return head


def fold_padded(c, n, f, bk):
    """:func:`fold` for a result that is transformed again at ``c``'s own length.

    Folds in place and zeroes ``c[..., n:]``, returning all of ``c``: the next forward FFT then
    needs no zero-padding, which scipy.fft does by copying into a new array (that copy made the
    middle forward transforms of a Toeplitz-like product 20-40 % slower than the inverse ones).
    """
    fold(c, n, f, bk)
    c[..., n:] = 0
    return c


def fcirculant_matvec(v, u, f):
    r"""Product :math:`C_f(v)\,u` along the last axis, by one FFT convolution.

    Parameters
    ----------
    v : array, shape (..., n)
        First column of the :math:`f`-circulant.
    u : array, shape (..., n)
        The vector(s) to multiply; broadcasts with ``v``.
    f : float or complex
        The circulant's corner weight.

    Returns
    -------
    array, shape (..., n)
        :math:`C_f(v) u`, with the promoted dtype of ``v`` and ``u``.

    Notes
    -----
    Cost: 3 FFTs of length ``N = next_fast_len(2n - 1)``, i.e. :math:`O(n \log n)`.

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.krylov import fcirculant, fcirculant_matvec
    >>> v, u = np.arange(1.0, 5.0), np.array([1.0, 0.0, 2.0, -1.0])
    >>> bool(np.allclose(fcirculant_matvec(v, u, -1.0), fcirculant(v, -1.0) @ u))
    True
    """
    bk = get_backend(v, u, names=["v", "u"])
    n = v.shape[-1]
    complex_data = bk.dtype_kind(v.dtype) == "c" or bk.dtype_kind(u.dtype) == "c" or isinstance(f, complex)
    spectral = Spectral(bk, fft_length(n), complex_data)
    return fold(spectral.inverse(spectral.forward(v) * spectral.forward(u)), n, f, bk)


def fcirculant(v, f):
    r"""The dense :math:`f`-circulant :math:`C_f(v) = [v, Z_f v, \dots, Z_f^{n-1} v]`.

    Parameters
    ----------
    v : array, shape (..., n)
        First column.
    f : float or complex
        Corner weight: ``C[i, j] = v[i - j]`` if ``i >= j`` else ``f * v[i - j + n]``.

    Returns
    -------
    array, shape (..., n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.krylov import fcirculant
    >>> fcirculant(np.array([1.0, 2.0, 3.0]), -1.0)
    array([[ 1., -3., -2.],
           [ 2.,  1., -3.],
           [ 3.,  2.,  1.]])
    """
    bk = get_backend(v)
    n = v.shape[-1]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    weight = np.where(i >= j, 1.0, f)
    gathered = bk.take(v, (i - j) % n, axis=-1)
    return gathered * bk.asarray(weight, like=v, dtype=None if isinstance(f, complex) else v.dtype)

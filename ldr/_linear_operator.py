"""scipy.sparse.linalg.LinearOperator interop for :class:`~ldr.LDRMatrix`."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .validation import format_shape

__all__ = ["LDRLinearOperator"]


def _checked_product(name, axis, operand):
    """scipy's public product ``name`` preceded by a shape check against ``shape[axis]``."""
    product = getattr(LinearOperator, name)

    def checked(self, x):
        self._check(x, name, self.shape[axis], operand)
        return product(self, x)

    checked.__name__, checked.__doc__ = name, product.__doc__
    return checked


class LDRLinearOperator(LinearOperator):
    """A LinearOperator view of one (unbatched, NumPy) LDR matrix; products use the fast path.

    The public products check the operand's shape first, so a wrong length names the expected
    shape instead of scipy's bare "dimension mismatch".
    """

    def __init__(self, matrix, conjugate=False):
        # conjugate=True represents conj(W): op.H and op.T are LDRLinearOperators of W.T too.
        self.matrix = matrix
        self.conjugate = bool(conjugate)
        super().__init__(dtype=np.dtype(matrix.dtype), shape=matrix.shape)

    def _check(self, x, method, length, what):
        shape = np.shape(x)
        ok = shape in ((length,), (length, 1)) if what == "vector" else (len(shape) == 2 and shape[0] == length)
        if not ok:
            layout = f"({length},) or ({length}, 1)" if what == "vector" else f"({length}, k)"
            raise ValueError(
                f"{method}: `x` must have shape {layout} for an operator of shape {self.shape}; "
                f"got {format_shape(shape)}"
            )

    matvec = _checked_product("matvec", 1, "vector")
    rmatvec = _checked_product("rmatvec", 0, "vector")
    matmat = _checked_product("matmat", 1, "matrix")
    rmatmat = _checked_product("rmatmat", 0, "matrix")

    def _conj(self, x):
        return np.conj(x) if self.conjugate else x

    def _matvec(self, x):
        return self._conj(self.matrix @ self._conj(np.ravel(x)))

    def _matmat(self, X):
        return self._conj(self.matrix @ self._conj(X))

    # W.rmatvec is the adjoint, as scipy's; conj(W)^H x = conj(W^H conj(x)).
    def _rmatvec(self, x):
        return self._conj(self.matrix.rmatvec(self._conj(np.ravel(x))))

    def _rmatmat(self, X):
        return self._conj(np.conj(self.matrix.T @ np.conj(self._conj(X))))

    def _adjoint(self):
        return LDRLinearOperator(self.matrix.T, not self.conjugate)

    def _transpose(self):
        return LDRLinearOperator(self.matrix.T, self.conjugate)

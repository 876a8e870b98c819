"""scipy.sparse.linalg.LinearOperator interop for :class:`~ldr.LDRMatrix`."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__ = ["LDRLinearOperator"]


class LDRLinearOperator(LinearOperator):
    """A LinearOperator view of one (unbatched, NumPy) LDR matrix; products use the fast path."""

    def __init__(self, matrix):
        self.matrix = matrix
        super().__init__(dtype=np.dtype(matrix.dtype), shape=matrix.shape)

    def _matvec(self, x):
        return self.matrix @ np.ravel(x)

    def _matmat(self, X):
        return self.matrix @ X

    # scipy's rmatvec is the adjoint: conj(W^T conj(x)).
    def _rmatvec(self, x):
        return np.conj(self.matrix.rmatvec(np.conj(np.ravel(x))))

    def _rmatmat(self, X):
        return np.conj(self.matrix.T @ np.conj(X))

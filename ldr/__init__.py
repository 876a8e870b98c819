"""ldr: structured matrices of low displacement rank.

A matrix ``W`` (m×n) has low displacement rank r for the operators ``(A, B)`` when
``A W - W B = G H`` with ``G`` m×r and ``H`` r×n. This package stores ``W`` by ``(G, H)``,
reconstructs it exactly and multiplies by it fast (FFT-based, O(r n log n) for the
Toeplitz/Hankel families), on NumPy arrays or torch tensors.

The distribution is called ``ldr-hydra``; it installs the import packages ``ldr`` and ``hydra``.
"""

from . import backends, krylov
from .cauchy_like import CauchyLike, cauchy_like
from .classic import cauchy, circulant, hankel, toeplitz, vandermonde
from .displacement import compress, displacement, displacement_rank
from .ldrmatrix import LDRMatrix
from .low_rank import LowRank, low_rank
from .operators import (
    Diagonal,
    DisplacementOperator,
    Identity,
    Shift,
    SingularDisplacementError,
    Zero,
    check_nonsingular,
)
from .toeplitz_like import HankelLike, ToeplitzLike, default_shift_pair, hankel_like, toeplitz_like
from .vandermonde_like import VandermondeLike, vandermonde_like
from .row_reversed import RowReversed
from .arithmetic import add, matmul
from .compression import compress_generators
from .solvers import SingularMatrixError, det, inv, slogdet, solve

__version__ = "0.1.0"

__all__ = [
    "LDRMatrix",
    "LowRank",
    "ToeplitzLike",
    "HankelLike",
    "VandermondeLike",
    "CauchyLike",
    "RowReversed",
    "low_rank",
    "toeplitz_like",
    "default_shift_pair",
    "hankel_like",
    "vandermonde_like",
    "cauchy_like",
    "toeplitz",
    "hankel",
    "circulant",
    "vandermonde",
    "cauchy",
    "displacement",
    "displacement_rank",
    "compress",
    "compress_generators",
    "add",
    "matmul",
    "solve",
    "inv",
    "slogdet",
    "det",
    "SingularMatrixError",
    "DisplacementOperator",
    "Shift",
    "Diagonal",
    "Identity",
    "Zero",
    "SingularDisplacementError",
    "check_nonsingular",
    "backends",
    "krylov",
]


def __getattr__(name):
    # ``ldr.nn`` needs torch; import it lazily so that NumPy-only users never load torch.
    if name == "nn":
        import importlib

        return importlib.import_module("ldr.nn")
    raise AttributeError(f"module 'ldr' has no attribute {name!r}")

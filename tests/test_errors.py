"""Bad input raises ValueError/TypeError whose message names the argument, the expectation and the value.

One table of (call, exception type, message pattern); every row is a separate test. Calls are
lambdas so that the table reads as the user would write the mistake.
"""

from __future__ import annotations

import numpy as np
import pytest

import ldr
from conftest import HAVE_TORCH, NO_CUDA, NO_TORCH, cuda_available

Singular = ldr.SingularDisplacementError

G4, H4 = np.ones((4, 2)), np.ones((2, 4))
W4 = ldr.toeplitz_like(np.arange(8.0).reshape(4, 2), np.arange(8.0).reshape(2, 4))
NODES = np.array([0.5, 0.6, 0.7, 0.8])


def _with(array, index, value):
    out = np.array(array, dtype=float)
    out[index] = value
    return out


ERRORS = [
    # -- singular operator pairs ------------------------------------------------------------------
    ("Z1-Z1", lambda: ldr.toeplitz_like(G4, H4, e=1.0, f=1.0), Singular,
     r"Shift\(4, f=1\.0\) and B = Shift\(4, f=1\.0\) share an eigenvalue"),
    ("Z0-Z0", lambda: ldr.toeplitz_like(G4, H4, e=0.0, f=0.0), Singular,
     r"Shift\(4, f=0\.0\) and B = Shift\(4, f=0\.0\) share an eigenvalue"),
    ("Z1-I", lambda: ldr.check_nonsingular(ldr.Shift(4, 1.0), ldr.Identity(4)), Singular,
     r"share the eigenvalue 1 \(A: a root of lambda\*\*4 = 1\.0; B: 1 \(identity\)\)"),
    ("circulant-f=1", lambda: ldr.circulant(np.ones(4), f=1.0), Singular, r"share an eigenvalue"),
    ("hankel-Z1-Z1T", lambda: ldr.hankel_like(G4, H4, e=1.0, f=1.0), Singular,
     r"B = Shift\(4, f=1\.0, transpose=True\) share an eigenvalue"),
    ("vandermonde-zero-node", lambda: ldr.vandermonde_like(G4, H4, _with(NODES, 2, 0.0), f=0.0), Singular,
     r"share the eigenvalue 0 \(A: v\[2\]; B: a root of lambda\*\*4 = 0\.0\)"),
    ("vandermonde-classic-zero-node", lambda: ldr.vandermonde(np.array([0.0, 1.0]), 3), Singular,
     r"A: v\[0\]"),
    # v**n underflows to 0 although v itself is far from 0 on the scale of the check.
    ("vandermonde-underflow", lambda: ldr.vandermonde_like(np.ones((2, 1)), np.ones((1, 40)),
                                                          np.array([1e-10, 0.5]), f=0.0),
     ValueError, r"`v`: the row scales G / \(v\*\*n - f\) .* are not finite in float64 \(n = 40, f = 0\.0\): "
                 r"v\*\*n - f underflows"),
    ("cauchy-collision", lambda: ldr.cauchy_like(G4, H4, np.arange(4.0), np.array([9.0, 8.0, 1.0, 7.0])),
     Singular, r"share the eigenvalue 1 \(A: v\[1\]; B: u\[2\]\)"),
    ("cauchy-classic-collision", lambda: ldr.cauchy(np.arange(3.0), np.array([5.0, 2.0])), Singular,
     r"A: v\[2\]; B: u\[1\]"),
    # (Z_1, Z_-1) at m x n with more factors of 2 in m (the 3072 x 768 trap, scaled down).
    ("rect-Z1-Zm1-12x3", lambda: ldr.toeplitz_like(np.ones((12, 1)), np.ones((1, 3)), e=1.0, f=-1.0), Singular,
     r"lcm\(12, 3\) = 12.*more factors of 2 than n; use e\.g\. \(Z_1, Z_0\)"),
    ("rect-Z1-Zm1-8x4", lambda: ldr.toeplitz_like(np.ones((8, 2)), np.ones((2, 4)), e=1.0, f=-1.0), Singular,
     r"lcm\(8, 4\) = 8"),
    ("rect-toeplitz-classic", lambda: ldr.toeplitz(np.ones(8), np.ones(4), e=1.0, f=-1.0), Singular,
     r"share an eigenvalue"),
    # -- generator shapes ------------------------------------------------------------------------
    ("H-wrong-rank", lambda: ldr.toeplitz_like(G4, np.ones((3, 4))), ValueError,
     r"`H` must have shape \(\.\.\., r, n\) = \(\.\.\., 2, 4\); got \(3, 4\)"),
    ("G-1d", lambda: ldr.toeplitz_like(np.ones(4), H4), ValueError,
     r"`G` must have shape \(\.\.\., m, r\); got \(4,\)"),
    ("H-1d", lambda: ldr.low_rank(G4, np.ones(4)), ValueError, r"`H` must have shape \(\.\.\., r, n\); got \(4,\)"),
    ("G-rows-vs-A", lambda: ldr.LDRMatrix(ldr.Shift(5, 1.0), ldr.Shift(4, 0.0), G4, H4), ValueError,
     r"`G` must have shape \(\.\.\., m, r\) with m = 5 rows; got \(4, 2\)"),
    ("H-cols-vs-B", lambda: ldr.LDRMatrix(ldr.Shift(4, 1.0), ldr.Shift(5, 0.0), G4, H4), ValueError,
     r"`H` must have shape \(\.\.\., r, n\) = \(\.\.\., 2, 5\); got \(2, 4\)"),
    ("batch-mismatch", lambda: ldr.toeplitz_like(np.ones((2, 4, 1)), np.ones((3, 1, 4))), ValueError,
     r"batch shapes do not broadcast: `G` \(2,\), `H` \(3,\)"),
    ("rank-0", lambda: ldr.toeplitz_like(np.ones((4, 0)), np.ones((0, 4))), ValueError,
     r"displacement rank r must be at least 1; `G` has shape \(4, 0\)"),
    ("nodes-wrong-length", lambda: ldr.cauchy_like(G4, H4, np.arange(3.0), np.arange(4.0) + 9), ValueError,
     r"`G` must have shape \(\.\.\., m, r\) with m = 3 rows"),
    # -- non-finite values -------------------------------------------------------------------------
    ("G-nan", lambda: ldr.toeplitz_like(_with(G4, (0, 0), np.nan), H4), ValueError, r"`G` must be finite"),
    ("H-inf", lambda: ldr.hankel_like(G4, _with(H4, (1, 3), np.inf), e=1.0, f=0.0), ValueError, r"`H` must be finite"),
    ("v-nan", lambda: ldr.vandermonde_like(G4, H4, _with(NODES, 1, np.nan)), ValueError, r"`v` must be finite"),
    ("u-inf", lambda: ldr.cauchy_like(G4, H4, NODES, _with(NODES + 5, 3, -np.inf)), ValueError, r"`u` must be finite"),
    ("c-nan", lambda: ldr.toeplitz(_with(np.ones(3), 0, np.nan)), ValueError, r"`c` must be finite"),
    ("f-nan", lambda: ldr.Shift(3, np.nan), ValueError, r"`f` must be finite; got nan"),
    # -- x of the wrong shape ----------------------------------------------------------------------
    ("x-wrong-length", lambda: W4 @ np.ones(5), ValueError,
     r"`x` must have shape \(n,\) with 4 entries on axis -1 for a matrix of shape \(4, 4\); got \(5,\)"),
    ("X-wrong-rows", lambda: W4 @ np.ones((5, 2)), ValueError,
     r"`x` must have shape \(\.\.\., n, k\) with 4 entries on axis -2 .*; got \(5, 2\)"),
    ("matvec-wrong-last-axis", lambda: W4.matvec(np.ones((2, 5))), ValueError,
     r"`x` must have shape \(\.\.\., n\) with 4 entries on axis -1 .*; got \(2, 5\)"),
    ("rmatvec-wrong-length", lambda: ldr.low_rank(np.ones((3, 1)), np.ones((1, 4))).rmatvec(np.ones(4)), ValueError,
     r"`x` must have shape \(\.\.\., m\) with 3 entries on axis -1 for a matrix of shape \(3, 4\); got \(4,\)"),
    ("rmatmul-wrong-length", lambda: np.ones(5) @ W4, ValueError, r"`x` must have shape \(\.\.\., m\) with 4 entries"),
    ("x-scalar", lambda: W4 @ np.float64(1.0), ValueError, r"`x` must have at least one axis; got a scalar"),
    # -- dtypes: integers are fine (test_contract), bool / object / strings are not ----------------------
    ("x-bool", lambda: W4 @ np.ones(4, dtype=bool), TypeError,
     r"`x` must have an integer, real or complex dtype; got bool"),
    ("x-object", lambda: W4 @ np.array([None] * 4), TypeError, r"`x` must have .* dtype; got object"),
    ("x-string", lambda: W4 @ np.array(list("abcd")), TypeError, r"`x` must have .* dtype; got <U1"),
    ("G-bool", lambda: ldr.toeplitz_like(G4.astype(bool), H4), TypeError, r"`G` must have .* dtype; got bool"),
    ("H-object", lambda: ldr.low_rank(G4, H4.astype(object)), TypeError, r"`H` must have .* dtype; got object"),
    ("v-bool", lambda: ldr.Diagonal(np.ones(3, dtype=bool)), TypeError,
     r"`v` must have an integer, real or complex dtype; got bool"),
    ("f-string", lambda: ldr.Shift(3, "1"), TypeError, r"`f` must be a real or complex number; got str"),
    # -- operators of the wrong type, unsupported pairs -----------------------------------------------
    ("A-not-operator", lambda: ldr.ToeplitzLike(np.eye(4), ldr.Shift(4, -1.0), G4, H4), TypeError,
     r"`A` must be a displacement operator \(ldr\.Shift, .*\); got ndarray"),
    ("B-not-operator", lambda: ldr.CauchyLike(ldr.Diagonal(NODES), "diag", G4, H4), TypeError,
     r"`B` must be a displacement operator .*; got str"),
    ("unsupported-pair", lambda: ldr.LDRMatrix(ldr.Shift(4, 1.0, transpose=True), ldr.Diagonal(NODES), G4, H4),
     TypeError, r"no LDR structure for the operator pair A = Shift\(4, f=1\.0, transpose=True\), "
     r"B = Diagonal\(v of shape \(4,\)\)"),
    ("unsupported-pair-non-operator", lambda: ldr.LDRMatrix(np.eye(4), np.eye(4), G4, H4), TypeError,
     r"no LDR structure for the operator pair"),
    ("displacement-not-operator", lambda: ldr.displacement(np.eye(4), ldr.Shift(4), np.eye(4)), TypeError,
     r"`A` must be a displacement operator; got ndarray"),
    # -- operator and helper arguments -------------------------------------------------------------------
    ("shift-size-0", lambda: ldr.Shift(0), ValueError, r"`n` must be a positive integer; got 0"),
    ("shift-size-float", lambda: ldr.Shift(2.5), TypeError, r"`n` must be a positive integer; got float 2\.5"),
    ("identity-size-bool", lambda: ldr.Identity(True), TypeError, r"`n` must be a positive integer; got bool"),
    ("diagonal-scalar", lambda: ldr.Diagonal(np.float64(1.0)), ValueError, r"`v` must have at least one axis"),
    ("diagonal-empty", lambda: ldr.Diagonal(np.array([])), ValueError,
     r"`v` must have at least one node; got shape \(0,\)"),
    ("compress-rank-0", lambda: ldr.compress(np.eye(4), ldr.Shift(4), ldr.Shift(4, -1.0), rank=0), ValueError,
     r"`rank` must be a positive integer; got 0"),
    ("displacement-shape", lambda: ldr.displacement(ldr.Shift(4), ldr.Shift(3), np.eye(4)), ValueError,
     r"`W` must have shape \(\.\.\., m, n\) = \(\.\.\., 4, 3\) to match A and B; got \(4, 4\)"),
    ("toeplitz-2d", lambda: ldr.toeplitz(np.ones((2, 2))), ValueError,
     r"`c` must be a non-empty 1-D array; got shape \(2, 2\)"),
    ("linear-operator-batched", lambda: ldr.low_rank(np.ones((2, 3, 1)), np.ones((1, 3))).aslinearoperator(),
     ValueError, r"aslinearoperator\(\) needs a single matrix; this one has batch shape \(2,\)"),
]


@pytest.mark.parametrize("call, exception, pattern", [pytest.param(*row[1:], id=row[0]) for row in ERRORS])
def test_error(call, exception, pattern):
    with pytest.raises(exception, match=pattern):
        call()


def test_errors_are_value_or_type_errors():
    """The documented contract: never RuntimeError, SingularDisplacementError is a ValueError."""
    assert issubclass(Singular, ValueError)
    assert all(issubclass(row[2], (ValueError, TypeError)) for row in ERRORS)


def test_integer_generators_and_nodes_are_accepted():
    """Integers are numeric input, not an error: they compute in float64."""
    G, H = np.ones((3, 1), dtype=np.int64), np.ones((1, 2), dtype=np.int32)
    W = ldr.cauchy_like(G, H, np.arange(3), np.arange(2) + 7)
    assert W.dtype == np.float64
    np.testing.assert_allclose(W.dense(), 1.0 / (np.arange(3.0)[:, None] - (np.arange(2.0) + 7)[None, :]), rtol=1e-15)


# -- torch ---------------------------------------------------------------------------------------------

torch_only = pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)


@torch_only
@pytest.mark.parametrize(
    "make, pattern",
    [
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2), H4), r"cannot mix array libraries: G is a torch\.Tensor "
                     r"but H is a numpy\.ndarray", id="G-torch-H-numpy"),
        pytest.param(lambda t: ldr.vandermonde_like(t.ones(4, 2), t.ones(2, 4), NODES),
                     r"cannot mix array libraries: G, H are torch\.Tensors but A's nodes is a numpy\.ndarray",
                     id="nodes-numpy"),
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2), t.ones(2, 4)) @ np.ones(4),
                     r"`x` is a numpy\.ndarray but the generators are torch arrays", id="torch-W-numpy-x"),
        pytest.param(lambda t: W4 @ t.ones(4), r"`x` is a torch\.Tensor but the generators are numpy arrays",
                     id="numpy-W-torch-x"),
        pytest.param(lambda t: ldr.toeplitz(t.ones(3), np.ones(3)), r"cannot mix array libraries", id="classic-mix"),
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2), t.ones(2, 4)).aslinearoperator(),
                     r"aslinearoperator\(\) needs NumPy generators", id="linear-operator-torch"),
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2, dtype=t.bool), t.ones(2, 4)),
                     r"`G` must have an integer, real or complex dtype; got torch\.bool", id="G-bool-tensor"),
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2), t.ones(2, 4)) @ t.ones(4, dtype=t.bool),
                     r"`x` must have .* dtype; got torch\.bool", id="x-bool-tensor"),
    ],
)
def test_torch_type_errors(make, pattern):
    import torch

    with pytest.raises(TypeError, match=pattern):
        make(torch)


@torch_only
def test_torch_nonfinite_and_shape_errors():
    import torch

    G = torch.ones(4, 2)
    G[1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"`G` must be finite"):
        ldr.toeplitz_like(G, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"`x` must have shape \(n,\) with 4 entries"):
        ldr.toeplitz_like(torch.ones(4, 2), torch.ones(2, 4)) @ torch.ones(3)


@torch_only
def test_torch_mixed_dtypes_raise():
    """torch refuses silent float32/float64 mixes among G, H, nodes and x (as torch.matmul does)."""
    import torch

    G32, H64 = torch.ones(5, 2), torch.ones(2, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"`G` is torch.float32, `H` is torch.float64"):
        ldr.toeplitz_like(G32, H64)
    with pytest.raises(TypeError, match=r"nodes"):
        ldr.vandermonde_like(G32, torch.ones(2, 5), torch.full((5,), 0.5, dtype=torch.float64))
    W = ldr.toeplitz_like(G32, torch.ones(2, 5))
    with pytest.raises(TypeError, match=r"`x` has dtype torch.float64 but the generators are torch.float32"):
        W @ torch.ones(5, dtype=torch.float64)
    # Half-precision inputs are the documented exception: float32 compute, cast back.
    assert W.matvec(torch.ones(3, 5, dtype=torch.bfloat16)).dtype == torch.bfloat16


@torch_only
@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason=NO_CUDA)
@pytest.mark.parametrize(
    "make, pattern",
    [
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2, device="cuda"), t.ones(2, 4)),
                     r"all arrays must be on one device; got `G` on cuda:0, `H` on cpu", id="G-H"),
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2, device="cuda"), t.ones(2, 4, device="cuda")) @ t.ones(4),
                     r"all arrays must be on one device", id="x"),
        pytest.param(lambda t: ldr.cauchy_like(t.ones(4, 2, device="cuda"), t.ones(2, 4, device="cuda"),
                                               t.arange(4.0, device="cuda"), t.arange(4.0) + 9),
                     r"all arrays must be on one device", id="nodes"),
    ],
)
def test_torch_mixed_devices(make, pattern):
    import torch

    with pytest.raises(ValueError, match=pattern):
        make(torch)


# -- issue 12 §5: errors that name the user's mistake -------------------------------------------------
#
# One row per case of the issue (or per entry point of a case); the ids say which. Cases that must
# *succeed* (valid input that used to be refused) are the tests after the table.

_OP4 = W4.aslinearoperator()
_MASKED4 = np.ma.masked_array(np.ones(4), mask=[0, 1, 0, 0])

ISSUE12_ERRORS = [
    # node batch shapes that cannot broadcast: refused at construction, naming every batch shape
    ("nodes-batch-no-broadcast", lambda: ldr.cauchy_like(G4, H4, np.ones((2, 4)) * NODES, np.ones((3, 4)) * (NODES + 5)),
     ValueError, r"batch shapes do not broadcast: `G` \(\), `H` \(\), `v` \(2,\), `u` \(3,\)"),
    ("nodes-batch-vs-generators", lambda: ldr.vandermonde_like(np.ones((2, 4, 1)), np.ones((1, 4)), np.ones((3, 4)) * NODES),
     ValueError, r"batch shapes do not broadcast: `G` \(2,\), `H` \(\), `v` \(3,\)"),
    # aslinearoperator products of the wrong length: the expected shape, not "dimension mismatch"
    ("linop-matvec-length", lambda: _OP4.matvec(np.ones(5)), ValueError,
     r"matvec: `x` must have shape \(4,\) or \(4, 1\) for an operator of shape \(4, 4\); got \(5,\)"),
    ("linop-matmul-length", lambda: _OP4 @ np.ones(3), ValueError, r"matvec: `x` must have shape \(4,\) or \(4, 1\)"),
    ("linop-rmatvec-length", lambda: _OP4.rmatvec(np.ones(5)), ValueError, r"rmatvec: `x` must have shape \(4,\)"),
    ("linop-matmat-rows", lambda: _OP4.matmat(np.ones((5, 2))), ValueError,
     r"matmat: `x` must have shape \(4, k\) for an operator of shape \(4, 4\); got \(5, 2\)"),
    ("linop-adjoint-length", lambda: ldr.low_rank(np.ones((3, 1)), np.ones((1, 4))).aslinearoperator().H @ np.ones(4),
     ValueError, r"matvec: `x` must have shape \(3,\) or \(3, 1\) for an operator of shape \(4, 3\); got \(4,\)"),
    # masked arrays are refused (as scipy.linalg does): the mask would be silently ignored
    ("masked-G", lambda: ldr.toeplitz_like(np.ma.masked_array(G4, mask=G4 > 0), H4), ValueError,
     r"`G` is a masked array; masked arrays are not supported \(as in scipy\.linalg\)"),
    ("masked-H-low-rank", lambda: ldr.low_rank(G4, np.ma.masked_array(H4)), ValueError, r"`H` is a masked array"),
    ("masked-x", lambda: W4 @ _MASKED4, ValueError, r"`x` is a masked array"),
    ("masked-nodes", lambda: ldr.cauchy_like(G4, H4, NODES, np.ma.masked_array(NODES + 5)), ValueError,
     r"`u` is a masked array"),
    ("masked-classic", lambda: ldr.toeplitz(_MASKED4), ValueError, r"`c` is a masked array"),
    ("masked-compress", lambda: ldr.compress(np.ma.masked_array(np.eye(4)), ldr.Shift(4), ldr.Shift(4, -1.0)),
     ValueError, r"`W` is a masked array"),
    # compress / displacement_rank tolerances: NaN, negative, non-numbers
    ("compress-tol-nan", lambda: ldr.compress(np.eye(4), ldr.Shift(4), ldr.Shift(4, -1.0), tol=np.nan), ValueError,
     r"`tol` must be a finite non-negative number or None; got nan"),
    ("compress-tol-negative", lambda: ldr.compress(np.eye(4), ldr.Shift(4), ldr.Shift(4, -1.0), tol=-1e-3), ValueError,
     r"`tol` must be a finite non-negative number or None; got -0\.001"),
    ("displacement-rank-tol-inf", lambda: ldr.displacement_rank(ldr.Shift(4), ldr.Shift(4, -1.0), np.eye(4), tol=np.inf),
     ValueError, r"`tol` must be a finite non-negative number"),
    ("compress-tol-string", lambda: ldr.compress(np.eye(4), ldr.Shift(4), ldr.Shift(4, -1.0), tol="1e-8"), TypeError,
     r"`tol` must be a non-negative real number or None; got str '1e-8'"),
    # NumPy integer scalars count as integers, NumPy floats do not
    ("compress-rank-float", lambda: ldr.compress(np.eye(4), ldr.Shift(4), ldr.Shift(4, -1.0), rank=np.float64(2.0)),
     TypeError, r"`rank` must be a positive integer; got float64 2\.0"),
    ("compress-rank-np-zero", lambda: ldr.compress(np.eye(4), ldr.Shift(4), ldr.Shift(4, -1.0), rank=np.int64(0)),
     ValueError, r"`rank` must be a positive integer; got 0"),
    ("shift-size-np-float", lambda: ldr.Shift(np.float32(3.0)), TypeError, r"`n` must be a positive integer; got float32"),
    # true collisions are still refused next to a huge node (the tolerance is per pair)
    ("cauchy-collision-next-to-1e13", lambda: ldr.cauchy(np.array([1e13, 0.1]), np.array([0.1, 7.0])), Singular,
     r"share the eigenvalue 0\.1 \(A: v\[1\]; B: u\[0\]\)"),
    # generators computed from the user's data overflow: name the data, not `G`
    ("circulant-generator-overflow", lambda: ldr.circulant(np.array([1e308, 1.0]), f=-1.0), ValueError,
     r"`c` is too large for the generators of this matrix: computing G = \(1 - f\) c with f = -1\.0 overflows"),
    ("toeplitz-generator-overflow", lambda: ldr.toeplitz(np.array([1e308, -1e308, 1.0])), ValueError,
     r"`c` and `r` are too large for the generators of this matrix"),
]


@pytest.mark.parametrize("call, exception, pattern", [pytest.param(*row[1:], id=row[0]) for row in ISSUE12_ERRORS])
def test_issue12_error(call, exception, pattern):
    with pytest.raises(exception, match=pattern):
        call()


@torch_only
@pytest.mark.parametrize(
    "make, pattern",
    [
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2, device="meta"), t.ones(2, 4, device="meta")),
                     r"`G` is a tensor on the 'meta' device \(a shape without data\); materialise it first", id="G"),
        pytest.param(lambda t: ldr.low_rank(t.ones(4, 2), t.ones(2, 4, device="meta")), r"`H` is a tensor on the 'meta'",
                     id="H"),
        pytest.param(lambda t: ldr.toeplitz_like(t.ones(4, 2), t.ones(2, 4)) @ t.ones(4, device="meta"),
                     r"`x` is a tensor on the 'meta' device", id="x"),
        pytest.param(lambda t: ldr.Diagonal(t.ones(4, device="meta")), r"`v` is a tensor on the 'meta' device", id="nodes"),
        pytest.param(lambda t: ldr.toeplitz(t.ones(4, device="meta")), r"`c` is a tensor on the 'meta' device",
                     id="classic"),
    ],
)
def test_meta_tensors_are_refused_clearly(make, pattern):
    import torch

    with pytest.raises(ValueError, match=pattern):
        make(torch)


def test_cauchy_collision_tolerance_is_per_pair():
    """Nodes 0.1 apart next to a 1e13 node are distinct (used to raise "share the eigenvalue 0")."""
    v, u = np.array([0.0, 1e13]), np.array([0.1, 5.0])
    W = ldr.cauchy(v, u)
    np.testing.assert_allclose(W.dense(), 1.0 / (v[:, None] - u[None, :]), rtol=1e-14)
    W = ldr.cauchy_like(np.ones((2, 1)), np.ones((1, 2)), v, u)
    np.testing.assert_allclose(W @ np.ones(2), (1.0 / (v[:, None] - u[None, :])).sum(1), rtol=1e-14)


def test_numpy_integer_scalars_work_like_ints():
    """Sizes, ranks and corners given as NumPy integer scalars (e.g. from ``array.shape`` arithmetic)."""
    assert ldr.Shift(np.int64(4), np.int32(-1)) == ldr.Shift(4, -1.0)
    assert ldr.Identity(np.uint8(3)).size == 3 and ldr.Zero(np.int16(2)).size == 2
    T = np.array([[1.0, 2.0, 3.0], [4.0, 1.0, 2.0], [5.0, 4.0, 1.0]])
    W = ldr.compress(T, ldr.Shift(np.int64(3)), ldr.Shift(3, np.int64(-1)), rank=np.int64(2))
    assert W.rank == 2
    np.testing.assert_allclose(W.dense(), T, atol=1e-12)
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(ldr.vandermonde(v, np.int64(4)).dense(), np.vander(v, 4, increasing=True), atol=1e-12)
    W = ldr.toeplitz_like(np.ones((3, 1)), np.ones((1, 3)), e=np.int64(1), f=np.float32(-1))
    assert (W.e, W.f) == (1.0, -1.0) and type(W.f) is float


@torch_only
def test_torch_integer_generators_compute_in_float64_like_numpy():
    """The documented rule "integers compute in float64": a float x is not refused, on either backend."""
    import torch

    G, H = np.arange(8).reshape(4, 2), np.arange(8).reshape(2, 4) % 3
    expected = ldr.toeplitz_like(G.astype(float), H.astype(float)).dense() @ np.arange(4.0)
    W_np, W_torch = ldr.toeplitz_like(G, H), ldr.toeplitz_like(torch.tensor(G), torch.tensor(H))
    for dtype_np, dtype_torch in ((np.float32, torch.float32), (np.float64, torch.float64)):
        y_np = W_np @ np.arange(4.0).astype(dtype_np)
        y_torch = W_torch @ torch.arange(4.0, dtype=dtype_torch)
        assert y_np.dtype == np.float64 and y_torch.dtype == torch.float64
        np.testing.assert_allclose(y_np, expected, rtol=1e-12)
        np.testing.assert_allclose(y_torch.numpy(), expected, rtol=1e-12)
    assert W_torch.dtype == torch.float64


def test_infinite_x_is_documented_and_gives_nan():
    """+inf in x: the FFTs spread it and inf - inf gives NaN (documented in the LDRMatrix notes)."""
    assert "infinite entry of ``x``" in ldr.LDRMatrix.__doc__
    y = W4 @ np.array([np.inf, 0.0, 0.0, 0.0])
    assert np.isnan(y).any()

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
     ValueError, r"`v` has nodes with v\*\*n - f == 0 in floating point \(n = 40, f = 0\.0\)"),
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
     r"batch shapes of `G` \(2,\) and `H` \(3,\) do not broadcast"),
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
     r"`v` must have a real or complex dtype; got bool"),
    ("f-string", lambda: ldr.Shift(3, "1"), TypeError, r"`f` must be a real or complex number; got str"),
    # -- operators of the wrong type, unsupported pairs -----------------------------------------------
    ("A-not-operator", lambda: ldr.ToeplitzLike(np.eye(4), ldr.Shift(4, -1.0), G4, H4), TypeError,
     r"`A` must be a displacement operator \(ldr\.Shift, .*\); got ndarray"),
    ("B-not-operator", lambda: ldr.CauchyLike(ldr.Diagonal(NODES), "diag", G4, H4), TypeError,
     r"`B` must be a displacement operator .*; got str"),
    ("unsupported-pair", lambda: ldr.LDRMatrix(ldr.Shift(4, 1.0), ldr.Diagonal(NODES), G4, H4), TypeError,
     r"no LDR structure for the operator pair A = Shift\(4, f=1\.0\), B = Diagonal\(v of shape \(4,\)\)"),
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

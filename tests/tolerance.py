"""The one tolerance table of the test suite, and the helper that applies it.

Every comparison is relative to norms: a fast product passes when
``‖fast − dense‖ ≤ tol · ‖W‖ · ‖x‖`` (Frobenius norms over the whole stack), a reconstruction
when ``‖W.dense() − oracle‖ ≤ tol · ‖oracle‖``. ``tol`` comes from :data:`TOL` by the dtype of
the computation; a test that needs more slack passes ``factor=`` with a comment saying why.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TOL", "tolerance", "as_numpy", "assert_close", "relative_error"]

# A few hundred ulps of each precision: FFT round-off grows like log N, the r-term sums and the
# folding with |e|, |f| <= 2.5 add a small factor on top.
TOL = {
    "float64": 1e-12,
    "complex128": 1e-12,
    "float32": 1e-5,
    "complex64": 1e-5,
    # Half precision inputs are rounded to 11 (float16) or 8 (bfloat16) mantissa bits on the way
    # in and out; the computation itself runs in float32.
    "float16": 5e-3,
    "bfloat16": 4e-2,
}


def dtype_name(dtype) -> str:
    """``'float32'``, ``'complex128'``, ... for a NumPy or torch dtype (or a name)."""
    return str(dtype).replace("torch.", "")


def tolerance(dtype, factor=1.0) -> float:
    """The relative tolerance for computations in ``dtype`` (times ``factor``)."""
    return TOL[dtype_name(dtype)] * factor


def as_numpy(x):
    """A float64/complex128 NumPy copy of a NumPy array or torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().resolve_conj()
        if not x.is_complex():
            x = x.double()
        x = x.numpy()
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def relative_error(actual, expected, scale):
    """``‖actual − expected‖_F / scale`` and the absolute error, both as floats."""
    err = float(np.linalg.norm(np.ravel(as_numpy(actual) - as_numpy(expected))))
    return (err / scale if scale > 0 else err), err


def assert_close(actual, expected, *, scale, dtype, factor=1.0, what="result"):
    """Assert ``‖actual − expected‖_F ≤ tol(dtype)·factor·scale``; report the error seen.

    Parameters
    ----------
    actual : array or tensor
        The fast result (any backend); compared in float64.
    expected : numpy.ndarray
        The oracle, already in float64/complex128.
    scale : float
        The norm product the error is relative to, e.g. ``‖W‖_F ‖x‖_F``.
    dtype
        The dtype of the computation (selects the row of :data:`TOL`).
    factor : float
        Extra slack; callers that pass one say why in a comment.
    what : str
        Names the quantity in the failure message.
    """
    actual_np, expected_np = as_numpy(actual), as_numpy(expected)
    assert actual_np.shape == expected_np.shape, (
        f"{what}: shape {actual_np.shape}, expected {expected_np.shape}"
    )
    tol = tolerance(dtype, factor)
    rel, err = relative_error(actual_np, expected_np, scale)
    # A zero scale (a zero x, say) demands an exactly zero error.
    assert err <= tol * scale, (
        f"{what}: ‖fast − oracle‖ = {err:.3e}, relative {rel:.3e} > tol {tol:.1e} "
        f"(dtype {dtype_name(dtype)}, scale {scale:.3e})"
    )

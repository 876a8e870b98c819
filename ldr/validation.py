"""Argument validation shared by every public entry point (validate once, then trust).

One validator per family of arguments:

- arrays (generators ``G``/``H``, inputs ``x``, classic columns/rows): :func:`as_numeric_array`,
  :func:`check_generators`, :func:`check_batch_shapes`;
- nodes of diagonal operators: :func:`as_nodes`;
- integers (sizes, ranks): :func:`as_positive_int`;
- scalars (operator corners e, f): :func:`as_scalar`;
- tolerances: :func:`as_tolerance`.

Messages name the argument, what was expected and what arrived.
"""

from __future__ import annotations

import cmath
import math
import numbers

import numpy as np

__all__ = [
    "as_numeric_array",
    "as_nodes",
    "as_positive_int",
    "as_scalar",
    "as_tolerance",
    "check_generators",
    "check_batch_shapes",
    "generator_sizes",
    "check_same_device",
    "check_derived_finite",
    "format_shape",
]


def format_shape(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _refuse_masked(x, name):
    # scipy.linalg refuses masked arrays too: the mask would be silently ignored.
    if isinstance(x, np.ma.MaskedArray):
        raise ValueError(
            f"`{name}` is a masked array; masked arrays are not supported (as in scipy.linalg): "
            f"pass {name}.filled(value) or {name}.compressed() instead"
        )


def as_numeric_array(x, name, bk, like=None, min_ndim=0, finite=True):
    """Convert ``x`` to ``bk``'s array type and check its dtype (and, optionally, finiteness).

    Raises
    ------
    TypeError
        For boolean, object, string or other non-numeric dtypes.
    ValueError
        For masked arrays, meta tensors (no data), too few axes or non-finite entries.
    """
    _refuse_masked(x, name)
    if not bk.is_array(x):
        try:
            x = bk.asarray(np.asarray(x), like=like)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be a numeric array; got {type(x).__name__}") from exc
    if not bk.has_data(x):
        raise ValueError(
            f"`{name}` is a tensor on the 'meta' device (a shape without data); materialise it first "
            "(e.g. module.to_empty(device='cpu') followed by initialisation, or load its values)"
        )
    kind = bk.dtype_kind(x.dtype)
    if kind not in "iufc":
        raise TypeError(
            f"`{name}` must have an integer, real or complex dtype; got {bk.dtype_name(x.dtype)}"
        )
    if x.ndim < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} axes; got shape {format_shape(x.shape)}")
    if finite and not bk.all_finite(x):
        raise ValueError(f"`{name}` must be finite; got NaN or infinite entries")
    return x


def as_nodes(v, name, bk):
    """Nodes of a diagonal operator: shape (..., n) with n >= 1, numeric, finite.

    NumPy nodes come back as a private frozen copy (see "Mutation" in :class:`~ldr.LDRMatrix`);
    torch nodes are used by reference.
    """
    v = as_numeric_array(v, name, bk, finite=False)
    if v.ndim < 1:
        raise ValueError(f"`{name}` must have at least one axis, shape (..., n); got a scalar")
    if v.shape[-1] < 1:
        raise ValueError(f"`{name}` must have at least one node; got shape {format_shape(v.shape)}")
    if not bk.all_finite(v):
        raise ValueError(f"`{name}` must be finite; got NaN or infinite entries")
    return bk.freeze(v)


def _shown(value):
    """``repr`` without NumPy 2's ``np.float64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def as_positive_int(value, name):
    """A positive integer: Python ``int`` or NumPy integer scalar (never ``bool`` or ``float``)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive integer; got {type(value).__name__} {_shown(value)}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {int(value)}")
    return int(value)


def as_scalar(value, name):
    """A finite real or complex number (Python, NumPy or 0-d array/tensor); integers become float."""
    from .backends import is_torch_tensor

    if is_torch_tensor(value) or isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError(f"`{name}` must be a scalar; got an array of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise TypeError(f"`{name}` must be a real or complex number; got {type(value).__name__}")
    if not cmath.isfinite(complex(value)):
        raise ValueError(f"`{name}` must be finite; got {value}")
    if isinstance(value, numbers.Integral):
        return float(value)
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        value = complex(value)
        return value.real if value.imag == 0 else value
    return float(value)


def as_tolerance(value, name="tol"):
    """``None`` or a finite real number >= 0."""
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a non-negative real number or None; got {type(value).__name__} {_shown(value)}"
        )
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be a finite non-negative number or None; got {value!r}")
    return float(value)


def check_generators(G, H, m, n, bk):
    """Check ``G`` of shape (..., m, r) and ``H`` of shape (..., r, n) with r >= 1."""
    G = as_numeric_array(G, "G", bk, min_ndim=2)
    H = as_numeric_array(H, "H", bk, like=G, min_ndim=2)
    r = G.shape[-1]
    if G.shape[-2] != m:
        raise ValueError(f"`G` must have shape (..., m, r) with m = {m} rows; got {format_shape(G.shape)}")
    if r < 1:
        raise ValueError(f"the displacement rank r must be at least 1; `G` has shape {format_shape(G.shape)}")
    if tuple(H.shape[-2:]) != (r, n):
        raise ValueError(
            f"`H` must have shape (..., r, n) = (..., {r}, {n}); got {format_shape(H.shape)}"
        )
    check_batch_shapes(G=G.shape[:-2], H=H.shape[:-2])
    check_same_device(bk, G=G, H=H)
    return G, H


def check_batch_shapes(**batch_shapes):
    """Raise ValueError naming the arrays when their batch shapes ``{name: shape}`` do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in batch_shapes.values()]))
    except ValueError:
        listing = ", ".join(f"`{k}` {format_shape(s)}" for k, s in batch_shapes.items())
        raise ValueError(f"batch shapes do not broadcast: {listing}") from None


def check_derived_finite(bk, arguments, formula, **arrays):
    """Raise ValueError naming the user's ``arguments`` when generators computed from them overflow.

    For constructors that compute ``G``/``H`` from other data (classic matrices, nodes): the
    generic "`G` must be finite" would name an array the user never passed.

    Parameters
    ----------
    bk : Backend
    arguments : str
        The user's argument names, e.g. ``"`c`"`` or ``"`c` and `r`"``.
    formula : str
        How the generators were formed from them, e.g. ``"G = (1 - f) c"``.
    **arrays
        The computed generators.
    """
    bad = [name for name, a in arrays.items() if not bk.all_finite(a)]
    if bad:
        raise ValueError(
            f"{arguments} too large for the generators of this matrix: computing {formula} overflows "
            f"({', '.join(f'`{b}`' for b in bad)} not finite in {bk.dtype_name(arrays[bad[0]].dtype)}); "
            "W is linear in its data, so scale it down (and the result back up)"
        )


def check_same_device(bk, **arrays):
    """Raise ValueError when the named arrays live on different devices."""
    devices = {name: bk.device(a) for name, a in arrays.items() if a is not None and bk.is_array(a)}
    if len(set(map(str, devices.values()))) > 1:
        listing = ", ".join(f"`{k}` on {v}" for k, v in devices.items())
        raise ValueError(f"all arrays must be on one device; got {listing}")


def generator_sizes(G, H):
    """``(m, n)`` read from ``G`` (..., m, r) and ``H`` (..., r, n), before any conversion."""
    _refuse_masked(G, "G")
    _refuse_masked(H, "H")
    g_shape, h_shape = np.shape(G), np.shape(H)
    if len(g_shape) < 2:
        raise ValueError(f"`G` must have shape (..., m, r); got {format_shape(g_shape)}")
    if len(h_shape) < 2:
        raise ValueError(f"`H` must have shape (..., r, n); got {format_shape(h_shape)}")
    return int(g_shape[-2]), int(h_shape[-1])

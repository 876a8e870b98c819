"""Argument validation shared by every public entry point (validate once, then trust)."""

from __future__ import annotations

import numpy as np

__all__ = ["as_numeric_array", "check_generators", "generator_sizes", "check_same_device", "format_shape"]


def format_shape(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_numeric_array(x, name, bk, like=None, min_ndim=0, finite=True):
    """Convert ``x`` to ``bk``'s array type and check its dtype (and, optionally, finiteness).

    Raises
    ------
    TypeError
        For boolean, object, string or other non-numeric dtypes.
    ValueError
        For too few axes or non-finite entries.
    """
    if not bk.is_array(x):
        try:
            x = bk.asarray(np.asarray(x), like=like)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be a numeric array; got {type(x).__name__}") from exc
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
    try:
        np.broadcast_shapes(tuple(G.shape[:-2]), tuple(H.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"batch shapes of `G` {format_shape(G.shape[:-2])} and `H` {format_shape(H.shape[:-2])} "
            "do not broadcast"
        ) from None
    check_same_device(bk, G=G, H=H)
    return G, H


def check_same_device(bk, **arrays):
    """Raise ValueError when the named arrays live on different devices."""
    devices = {name: bk.device(a) for name, a in arrays.items() if a is not None and bk.is_array(a)}
    if len(set(map(str, devices.values()))) > 1:
        listing = ", ".join(f"`{k}` on {v}" for k, v in devices.items())
        raise ValueError(f"all arrays must be on one device; got {listing}")


def generator_sizes(G, H):
    """``(m, n)`` read from ``G`` (..., m, r) and ``H`` (..., r, n), before any conversion."""
    g_shape, h_shape = np.shape(G), np.shape(H)
    if len(g_shape) < 2:
        raise ValueError(f"`G` must have shape (..., m, r); got {format_shape(g_shape)}")
    if len(h_shape) < 2:
        raise ValueError(f"`H` must have shape (..., r, n); got {format_shape(h_shape)}")
    return int(g_shape[-2]), int(h_shape[-1])

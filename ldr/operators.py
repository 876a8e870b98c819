r"""Displacement operators: :math:`Z_f` (and its transpose), diagonal, identity and zero.

An operator knows its size, its dense form, its spectrum (used to decide whether a
displacement equation :math:`A W - W B = G H` has a unique solution) and how to multiply a
matrix from either side in :math:`O(n)` per column. See :doc:`/theory/displacement`.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from .backends import get_backend
from .validation import as_nodes, as_positive_int, as_scalar

__all__ = [
    "DisplacementOperator",
    "Shift",
    "Diagonal",
    "Identity",
    "Zero",
    "SingularDisplacementError",
    "check_nonsingular",
]


class SingularDisplacementError(ValueError):
    """The operator pair (A, B) shares an eigenvalue, so ``A W - W B = G H`` has no unique solution."""


class DisplacementOperator:
    """Base class of the displacement operators (square matrices of size ``size``).

    Subclasses implement :meth:`dense`, :meth:`eigenvalues`, :meth:`left` (``A @ X``) and
    :meth:`right` (``X @ A``).
    """

    size: int

    @property
    def shape(self):
        """``(size, size)``."""
        return (self.size, self.size)

    @property
    def T(self):
        """The transposed operator."""
        return self

    def dense(self, dtype=None, like=None):
        """The operator as a dense ``(size, size)`` array (NumPy unless ``like`` is a tensor)."""
        raise NotImplementedError

    def eigenvalues(self):
        """The spectrum as a complex NumPy array of length ``size`` (batch axes first)."""
        raise NotImplementedError

    def describe_eigenvalue(self, index):
        """Human-readable origin of eigenvalue ``index`` (for error messages)."""
        return f"eigenvalue #{index}"

    def _insert_batch_axis(self):
        """The same operator with one more (size-1) batch axis before the last; trusted."""
        return self

    def left(self, X):
        """``self @ X`` for ``X`` of shape ``(..., size, k)``, in O(size k)."""
        raise NotImplementedError

    def right(self, X):
        """``X @ self`` for ``X`` of shape ``(..., k, size)``, in O(size k)."""
        raise NotImplementedError


class Shift(DisplacementOperator):
    r"""The unit :math:`f`-circulant shift :math:`Z_f` (or its transpose).

    :math:`Z_f` has ones on the sub-diagonal and :math:`f` in the top-right corner, so
    :math:`Z_f e_j = e_{j+1}` and :math:`Z_f e_{n-1} = f e_0`; :math:`Z_f^n = f I` and its
    eigenvalues are the :math:`n` roots of :math:`\lambda^n = f`.

    Parameters
    ----------
    n : int
        Size of the square operator.
    f : float or complex, default 1.0
        The corner value. ``f = 1`` is the cyclic shift, ``f = -1`` the skew shift, ``f = 0``
        the nilpotent down-shift.
    transpose : bool, default False
        Represent :math:`Z_f^T` instead (used by Hankel-like matrices).

    Examples
    --------
    >>> import numpy as np, ldr
    >>> Z = ldr.Shift(3, -1.0)
    >>> Z.dense()
    array([[ 0.,  0., -1.],
           [ 1.,  0.,  0.],
           [ 0.,  1.,  0.]])
    >>> bool(np.allclose(np.linalg.matrix_power(Z.dense(), 3), -np.eye(3)))
    True
    """

    def __init__(self, n, f=1.0, transpose=False):
        self.size = as_positive_int(n, "n")
        self.f = as_scalar(f, "f")
        self.transpose = bool(transpose)

    def __repr__(self):
        return f"Shift({self.size}, f={self.f!r}{', transpose=True' if self.transpose else ''})"

    def __eq__(self, other):
        return (
            isinstance(other, Shift)
            and (self.size, self.f, self.transpose) == (other.size, other.f, other.transpose)
        )

    __hash__ = None

    @property
    def T(self):
        return Shift(self.size, self.f, not self.transpose)

    def dense(self, dtype=None, like=None):
        n = self.size
        Z = np.zeros((n, n), dtype=np.result_type(type(self.f), np.float64))
        Z[np.arange(1, n), np.arange(n - 1)] = 1.0
        Z[0, n - 1] += self.f  # "+=" keeps n = 1 right: Z_f = [f]
        if self.transpose:
            Z = Z.T.copy()
        bk = get_backend(like)
        return bk.asarray(Z, dtype=dtype, like=like)

    def eigenvalues(self):
        n = self.size
        if self.f == 0:
            return np.zeros(n, dtype=complex)
        radius = abs(self.f) ** (1.0 / n)
        angle = (cmath.phase(self.f) + 2 * np.pi * np.arange(n)) / n
        return radius * np.exp(1j * angle)

    def describe_eigenvalue(self, index):
        return f"a root of lambda**{self.size} = {self.f}"

    def left(self, X):
        # Z_f X: rows move down by one, the last row wraps to the top times f.
        bk = get_backend(X)
        Xr = bk.swapaxes(X, -1, -2)  # rows of X become the last axis entries
        out = bk.swapaxes(self._shift_last(Xr, not self.transpose, bk), -1, -2)
        return out

    def right(self, X):
        # X Z_f: column j of the result is column j+1 of X (the last is f * column 0).
        bk = get_backend(X)
        return self._shift_last(X, self.transpose, bk)

    def _shift_last(self, X, down, bk):
        # down=True: y_0 = f x_{n-1}, y_i = x_{i-1};  down=False: y_i = x_{i+1}, y_{n-1} = f x_0.
        if down:
            return bk.concatenate([self.f * X[..., -1:], X[..., :-1]], axis=-1)
        return bk.concatenate([X[..., 1:], self.f * X[..., :1]], axis=-1)


class Diagonal(DisplacementOperator):
    r"""The diagonal operator :math:`\operatorname{diag}(v)` (nodes of Vandermonde/Cauchy-like matrices).

    Parameters
    ----------
    v : array_like, shape (..., n)
        The diagonal (NumPy array or torch tensor; leading axes are batch axes).
    name : str, default "v"
        The argument name that error messages use for these nodes (``"u"`` for the column
        nodes of a Cauchy-like matrix).

    Examples
    --------
    >>> import numpy as np, ldr
    >>> ldr.Diagonal(np.array([1.0, 2.0])).dense()
    array([[1., 0.],
           [0., 2.]])
    """

    name = "v"  # class default: trusted constructions (object.__new__) keep a name too

    def __init__(self, v, name="v"):
        bk = get_backend(v, names=[name])
        # NumPy nodes: a private frozen copy (cached Cauchy kernels and powers cannot go stale);
        # torch nodes: by reference, so in-place edits show up in the next product.
        v = as_nodes(v, str(name), bk)
        self.v = v
        self.size = int(v.shape[-1])
        self.name = str(name)

    def __repr__(self):
        return f"Diagonal({self.name} of shape {tuple(self.v.shape)})"

    def __setstate__(self, state):
        # numpy's deepcopy and unpickling give writable arrays: freeze the nodes again.
        state = dict(state)
        state["v"] = get_backend(state["v"]).freeze(state["v"])
        self.__dict__.update(state)

    def dense(self, dtype=None, like=None):
        bk = get_backend(self.v)
        v = self.v if dtype is None else bk.cast(self.v, dtype)
        eye = bk.asarray(np.eye(self.size), dtype=v.dtype, like=v)
        return bk.expand_dims(v, -1) * eye

    def eigenvalues(self):
        bk = get_backend(self.v)
        return bk.to_numpy(self.v).astype(complex)

    def describe_eigenvalue(self, index):
        return f"{self.name}[{index}]"

    def _insert_batch_axis(self):
        out = object.__new__(Diagonal)
        out.v = get_backend(self.v).expand_dims(self.v, -2)
        out.size = self.size
        out.name = self.name
        return out

    def left(self, X):
        bk = get_backend(X, self.v)
        return bk.expand_dims(self.v, -1) * X

    def right(self, X):
        # v (..., n) scales the columns of X (..., k, n): its batch axes sit before the k axis.
        bk = get_backend(X, self.v)
        return X * bk.expand_dims(self.v, -2)


class Identity(DisplacementOperator):
    """The identity operator :math:`I_n` (with :class:`Zero`, the low-rank class).

    Examples
    --------
    >>> import ldr
    >>> ldr.Identity(2).dense()
    array([[1., 0.],
           [0., 1.]])
    """

    def __init__(self, n):
        self.size = as_positive_int(n, "n")

    def __repr__(self):
        return f"Identity({self.size})"

    def dense(self, dtype=None, like=None):
        return get_backend(like).asarray(np.eye(self.size), dtype=dtype, like=like)

    def eigenvalues(self):
        return np.ones(self.size, dtype=complex)

    def describe_eigenvalue(self, index):
        return "1 (identity)"

    def left(self, X):
        return X

    def right(self, X):
        return X


class Zero(DisplacementOperator):
    """The zero operator :math:`0_n`.

    Examples
    --------
    >>> import ldr
    >>> ldr.Zero(2).dense()
    array([[0., 0.],
           [0., 0.]])
    """

    def __init__(self, n):
        self.size = as_positive_int(n, "n")

    def __repr__(self):
        return f"Zero({self.size})"

    def dense(self, dtype=None, like=None):
        return get_backend(like).asarray(np.zeros((self.size, self.size)), dtype=dtype, like=like)

    def eigenvalues(self):
        return np.zeros(self.size, dtype=complex)

    def describe_eigenvalue(self, index):
        return "0 (zero operator)"

    def left(self, X):
        return 0 * X

    def right(self, X):
        return 0 * X


def _shift_pair_collision(A: Shift, B: Shift):
    """Exact test for two shifts: eigenvalues meet iff e^(N/m) == f^(N/n), N = lcm(m, n)."""
    m, n, e, f = A.size, B.size, A.f, B.f
    if e == 0 or f == 0:
        return e == f  # both nilpotent: 0 is shared; exactly one zero: never
    if not math.isclose(abs(e) ** (1.0 / m), abs(f) ** (1.0 / n), rel_tol=1e-12):
        return False
    N = math.lcm(m, n)
    turns = (cmath.phase(e) * (N // m) - cmath.phase(f) * (N // n)) / (2 * math.pi)
    return abs(turns - round(turns)) < 1e-9


# Exact collisions come out at rounding level *of the pair*: nodes 0.1 apart are distinct
# however large the other nodes are; genuine near-collisions are only ill-conditioned.
_COLLISION_TOL = 64 * np.finfo(float).eps
# Up to this many pairs all distances are formed at once; beyond it a k-d tree finds the few
# pairs that can collide (all pairs at m = n = 16384 took 8 GiB and 15 s).
_DENSE_COLLISION_PAIRS = 1 << 20


def _margins(lam, mu):
    """``|lam - mu| - tol * max(|lam|, |mu|)``: a pair collides when it is <= 0."""
    return np.abs(lam - mu) - _COLLISION_TOL * np.maximum(np.abs(lam), np.abs(mu))


def _collision(lam, mu):
    """Index (batch..., i, j) of the pair of eigenvalues with the smallest margin if it is <= 0, else None.

    ``lam`` (..., m) and ``mu`` (..., n) broadcast over their batch axes.
    """
    lam_b, mu_b = np.broadcast_arrays(lam[..., :, None], mu[..., None, :])
    if lam_b.size == 0:
        return None
    if lam_b.size <= _DENSE_COLLISION_PAIRS:
        margin = _margins(lam_b, mu_b)
        where = np.unravel_index(int(np.argmin(margin)), margin.shape)
        return where if margin[where] <= 0 else None
    best = None
    for index in np.ndindex(lam_b.shape[:-2]):
        found = _tree_collision(lam_b[index][:, 0], mu_b[index][0, :])
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], index + found[1:])
    return None if best is None else best[1]


def _tree_collision(lam, mu):
    r"""(margin, i, j) of the most colliding pair of two node sets, or None; O((m + n) log n).

    A colliding pair has :math:`|\lambda - \mu| \le \tau \max(|\lambda|, |\mu|)` with
    :math:`|\mu| \le |\lambda| + |\lambda - \mu|`, so :math:`|\lambda - \mu| \le \tau |\lambda| / (1 - \tau)`:
    a ball of that radius around each :math:`\lambda` (slightly enlarged) holds every candidate,
    and the candidates are then checked exactly.
    """
    from scipy.spatial import cKDTree

    plane = lambda z: np.column_stack([np.real(z), np.imag(z)]).astype(float)  # noqa: E731
    radius = _COLLISION_TOL / (1 - _COLLISION_TOL) * np.abs(lam) * (1 + 1e-6)
    candidates = cKDTree(plane(mu)).query_ball_point(plane(lam), radius)
    best = None
    for i, js in enumerate(candidates):
        if js:
            margins = _margins(lam[i], mu[js])
            k = int(np.argmin(margins))
            if margins[k] <= 0 and (best is None or margins[k] < best[0]):
                best = (float(margins[k]), i, int(js[k]))
    return best


def check_nonsingular(A: DisplacementOperator, B: DisplacementOperator):
    r"""Raise :class:`SingularDisplacementError` unless :math:`\sigma(A) \cap \sigma(B) = \emptyset`.

    By Sylvester's theorem, :math:`A W - W B = C` has a unique solution for every :math:`C`
    exactly when the spectra of :math:`A` and :math:`B` are disjoint.

    Parameters
    ----------
    A, B : DisplacementOperator
        The left and right operators.

    Raises
    ------
    SingularDisplacementError
        Naming the shared eigenvalue and where it comes from.

    Examples
    --------
    >>> import ldr
    >>> ldr.check_nonsingular(ldr.Shift(4, 1.0), ldr.Shift(4, -1.0))
    >>> ldr.check_nonsingular(ldr.Shift(4, 1.0), ldr.Identity(4))
    Traceback (most recent call last):
    ...
    ldr.operators.SingularDisplacementError: operators A = Shift(4, f=1.0) and B = Identity(4) share the eigenvalue 1 (A: a root of lambda**4 = 1.0; B: 1 (identity)), so A W - W B = G H has no unique solution
    """
    if isinstance(A, Shift) and isinstance(B, Shift):
        if _shift_pair_collision(A, B):
            N = math.lcm(A.size, B.size)
            hint = (
                " (for m != n the pair (Z_1, Z_-1) is singular when m has more factors of 2 than n; "
                "use e.g. (Z_1, Z_0), or pad to a square)"
                if A.size != B.size
                else ""
            )
            raise SingularDisplacementError(
                f"operators A = {A!r} and B = {B!r} share an eigenvalue: e**(N/m) == f**(N/n) "
                f"with N = lcm({A.size}, {B.size}) = {N}, so A W - W B = G H has no unique solution{hint}"
            )
        return
    lam = A.eigenvalues()
    mu = B.eigenvalues()
    where = _collision(lam, mu)
    if where is not None:
        i, j = int(where[-2]), int(where[-1])
        value = np.broadcast_arrays(lam[..., :, None], mu[..., None, :])[0][where]  # views: no m×n array
        value = value.real if abs(value.imag) < 1e-12 else value
        batch = f" in batch entry {tuple(int(w) for w in where[:-2])}" if len(where) > 2 else ""
        raise SingularDisplacementError(
            f"operators A = {A!r} and B = {B!r} share the eigenvalue {value:.6g}{batch} "
            f"(A: {A.describe_eigenvalue(i)}; B: {B.describe_eigenvalue(j)}), "
            "so A W - W B = G H has no unique solution"
        )

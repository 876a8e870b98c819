r"""The :class:`LDRMatrix` contract shared by every structure.

An LDR matrix is the unique solution :math:`W` of :math:`A W - W B = G H` for a nonsingular
operator pair. The base class owns validation, dtype promotion, the ``@`` semantics of
:func:`numpy.matmul`, the transpose view, the dense reconstruction and the
:class:`scipy.sparse.linalg.LinearOperator` adapter. Subclasses supply two product hooks,
``_matvec`` (``W x``) and ``_rmatvec`` (``W^T x``), acting on the last axis.
"""

from __future__ import annotations

import numpy as np

from .backends import backend_named, get_backend
from .operators import DisplacementOperator, check_nonsingular
from .validation import as_numeric_array, check_batch_shapes, check_generators, check_same_device, format_shape

__all__ = ["LDRMatrix"]


class LDRMatrix:
    r"""A matrix :math:`W` (m×n) given by the generators of its displacement :math:`A W - W B = G H`.

    ``LDRMatrix(A, B, G, H)`` returns the structure class that matches the operator pair:
    :class:`~ldr.LowRank` for ``(Identity, Zero)``, :class:`~ldr.ToeplitzLike` for
    ``(Shift, Shift)``, :class:`~ldr.HankelLike` for ``(Shift, Shift.T)``,
    :class:`~ldr.VandermondeLike` for ``(Diagonal, Shift)``, :class:`~ldr.CauchyLike` for
    ``(Diagonal, Diagonal)`` and :class:`~ldr.RowReversed` for ``(Shift.T, Shift)`` and
    ``(Shift, Diagonal)`` (the swapped pairs of the Hankel-like and Vandermonde-like classes,
    which :func:`~ldr.inv` returns).

    Parameters
    ----------
    A : DisplacementOperator, size m
        Left operator.
    B : DisplacementOperator, size n
        Right operator; the spectra of ``A`` and ``B`` must be disjoint.
    G : array, shape (..., m, r)
        Left generator (NumPy array or torch tensor; leading axes are batch axes).
    H : array, shape (..., r, n)
        Right generator. Note: the HyDRA paper stores this factor as n×r; here it is r×n.

    Attributes
    ----------
    shape : tuple of int
        ``(m, n)``; batch axes are in :attr:`batch_shape`.
    rank : int
        The displacement rank bound r (columns of ``G``).
    dtype
        The dtype of products with a float input of the same precision.

    Notes
    -----
    Products follow :func:`numpy.matmul`: ``W @ x`` with ``x`` of shape ``(n,)`` gives
    ``(*batch, m)``, with ``x`` of shape ``(..., n, k)`` gives ``(..., m, k)``;
    ``x @ W`` multiplies rows. :meth:`matvec` applies ``W`` along the last axis of
    ``x (..., n)``, the convention of ``torch.nn.functional.linear``. Dtypes: integers compute
    in float64, float32 stays float32, half precision computes in float32 and is cast back,
    complex if any input is complex. NaN in ``x`` propagates as in ``numpy.matmul``, but an
    infinite entry of ``x`` does not stay local: the FFTs of the fast products spread it, and
    ``inf - inf`` turns whole outputs into NaN (a dense product would give ``±inf`` in some
    entries). Generators and nodes are checked for finiteness once, at construction.

    **Mutation.** A product always reflects the generators and nodes as they are when it runs;
    there is no state that can go stale:

    - *torch* tensors are used by reference and nothing derived from them (spectra, Cauchy
      kernels, flipped copies) is kept between calls, so in-place edits — an optimizer step,
      ``G.data.mul_(2)``, ``G.numpy()[:] = ...``, a hand-written SGD step under
      ``torch.no_grad()`` — show up in the next product. (Under autograd the spectra are
      rebuilt on every call anyway, so training is unaffected; a repeated product with the
      same matrix recomputes the generator spectra, r small FFTs independent of the batch.)
      Checks made at construction (finiteness, disjoint spectra) are not repeated.
    - *NumPy* inputs are copied into private arrays that can never be written (their memory is
      an immutable ``bytes`` buffer, so even ``W.G.flags.writeable = True`` is refused); the
      matrix is immutable, its spectra are cached, and ``copy.deepcopy`` / :mod:`pickle` give
      equally immutable copies. Build a new matrix to change it. An array that cannot be
      proven immutable is never cached from.

    The classic constructors (:func:`~ldr.toeplitz`, :func:`~ldr.circulant`, ...) compute
    ``G`` and ``H`` from their arguments once: the matrix then follows ``W.G`` and ``W.H``, not
    ``c`` and ``r``. Krylov-form Vandermonde matrices (:func:`~ldr.vandermonde`, the layers of
    :mod:`ldr.nn`) compute with their nodes, row scales and ``H``; their ``G`` is derived.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> rng = np.random.default_rng(0)
    >>> G, H = rng.standard_normal((6, 2)), rng.standard_normal((2, 6))
    >>> A, B = ldr.Shift(6, 1.0), ldr.Shift(6, -1.0)
    >>> W = ldr.LDRMatrix(A, B, G, H)
    >>> type(W).__name__
    'ToeplitzLike'
    >>> D = scipy.linalg.solve_sylvester(A.dense(), -B.dense(), G @ H)
    >>> bool(np.allclose(W.dense(), D))
    True
    """

    # Let numpy defer ``ndarray @ W`` to ``W.__rmatmul__`` instead of treating W as a scalar.
    __array_ufunc__ = None

    _pairs = []  # (predicate(A, B), subclass), filled by the structure modules

    def __new__(cls, A=None, B=None, G=None, H=None, *args, **kwargs):
        if cls is LDRMatrix:
            cls = _structure_for(A, B)
        return super().__new__(cls)

    def __init__(self, A, B, G, H):
        for name, op in (("A", A), ("B", B)):
            if not isinstance(op, DisplacementOperator):
                raise TypeError(
                    f"`{name}` must be a displacement operator (ldr.Shift, ldr.Diagonal, "
                    f"ldr.Identity, ldr.Zero); got {type(op).__name__}"
                )
        nodes = self._node_arrays_of(A, B)
        bk = get_backend(G, H, *nodes, names=["G", "H", "A's nodes", "B's nodes"][: 2 + len(nodes)])
        G, H = check_generators(G, H, A.size, B.size, bk)
        if nodes:
            node_names = [op.name for op in (A, B) if hasattr(op, "v")]
            if len(set(node_names)) < len(node_names):
                node_names = ["A's nodes", "B's nodes"]
            check_batch_shapes(
                G=G.shape[:-2], H=H.shape[:-2], **{k: v.shape[:-1] for k, v in zip(node_names, nodes)}
            )
            check_same_device(bk, G=G, **{f"nodes {i}": v for i, v in enumerate(nodes)})
        bk.check_dtypes({"G": G.dtype, "H": H.dtype, **{f"nodes {i}": v.dtype for i, v in enumerate(nodes)}})
        check_nonsingular(A, B)
        self._init_trusted(A, B, G, H, bk)

    @classmethod
    def _trusted(cls, A, B, G, H):
        """Build without validation (for callers that validated already, e.g. ``ldr.nn``)."""
        self = object.__new__(cls)
        self._init_trusted(A, B, G, H, get_backend(G, H))
        return self

    def _init_trusted(self, A, B, G, H, bk):
        # freeze(): NumPy generators become private immutable copies (no copy when they are
        # already, e.g. views of a frozen matrix's generators); torch tensors are kept as given.
        self.A, self.B, self.G, self.H = A, B, bk.freeze(G), bk.freeze(H)
        self._bk = bk
        self._cache = {}
        self._setup()

    # -- hooks for subclasses -----------------------------------------------------------------
    def _setup(self):
        """Cheap per-instance set-up after validation (no array work)."""

    @staticmethod
    def _node_arrays_of(A, B):
        return [op.v for op in (A, B) if hasattr(op, "v")]

    def _scalars(self):
        """Scalar parameters that take part in dtype promotion (e.g. e, f)."""
        return ()

    def _matvec(self, x):
        """``W x`` along the last axis; x is cast to the compute dtype already."""
        raise NotImplementedError

    def _rmatvec(self, x):
        """``W^T x`` along the last axis."""
        raise NotImplementedError

    # Entries of the per-rank intermediates allowed at once when applying W to the identity.
    _DENSE_CHUNK_ENTRIES = 1 << 23

    def _dense(self, dtype):
        """Dense reconstruction; the default applies ``W`` to the identity, in column chunks.

        Each product holds r spectra of length ~2n per column, so the columns of the identity
        are taken in chunks that keep those intermediates near 8 M entries (all at once would
        need ~10 GB for n = 4096, r = 16).
        """
        bk = self._bk
        n = self.shape[1]
        batch = max(1, bk.prod(self.batch_shape))
        chunk = max(1, self._DENSE_CHUNK_ENTRIES // (2 * n * self.rank * batch))
        W = self._insert_batch_axis()
        eye = np.eye(n)
        rows = [
            W._matvec(bk.asarray(eye[start : start + chunk], dtype=dtype, like=self._arrays()[0]))
            for start in range(0, n, chunk)
        ]
        return bk.swapaxes(rows[0] if len(rows) == 1 else bk.concatenate(rows, axis=-2), -1, -2)

    # -- properties -----------------------------------------------------------------------------
    @property
    def shape(self):
        """``(m, n)``."""
        return (self.A.size, self.B.size)

    @property
    def rank(self):
        """The displacement rank bound r (columns of ``G``)."""
        return int(self.G.shape[-1])

    @property
    def batch_shape(self):
        """Broadcast batch shape of the generators and nodes."""
        shapes = [tuple(self.G.shape[:-2]), tuple(self.H.shape[:-2])]
        shapes += [tuple(v.shape[:-1]) for v in self._node_arrays_of(self.A, self.B)]
        return tuple(np.broadcast_shapes(*shapes))

    @property
    def backend(self):
        """The :class:`~ldr.backends.base.Backend` of the generators."""
        return self._bk

    @property
    def dtype(self):
        """The compute dtype of the generators (see the dtype rule in the class notes)."""
        return self._compute_dtype()[1]

    @property
    def device(self):
        """Device of the generators (``None`` for NumPy)."""
        return self._bk.device(self.G)

    @property
    def T(self):
        """The transpose, a view sharing the generators: ``(B^T, A^T, -H^T, G^T)``."""
        return _Transposed(self)

    def __repr__(self):
        batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
        extra = "".join(f", {k}={v!r}" for k, v in self._repr_items())
        return (
            f"{type(self).__name__}(shape={self.shape}, rank={self.rank}{extra}{batch}, "
            f"dtype={self._bk.dtype_name(self.dtype)}, backend={self._bk.name})"
        )

    def _repr_items(self):
        return ()

    # -- dtype rule -------------------------------------------------------------------------------
    def _arrays(self):
        return [self.G, self.H] + self._node_arrays_of(self.A, self.B)

    def _compute_dtype(self, *extra):
        """Return (output dtype, compute dtype) for products with inputs of dtypes ``extra``."""
        bk = self._bk
        # "Integers compute in float64": integer generators and nodes enter the promotion as
        # float64, so an integer matrix times a float32 x is float64 on every backend.
        dtypes = [a.dtype for a in self._arrays()]
        dtypes = [bk.compute_dtype(d) if bk.dtype_kind(d) in "biu" else d for d in dtypes]
        out = bk.promote(*dtypes, *extra)
        if any(isinstance(s, complex) for s in self._scalars()) and bk.dtype_kind(out) != "c":
            out = bk.complex_dtype(bk.compute_dtype(out))
        compute = bk.compute_dtype(out)
        if bk.dtype_kind(out) in "biu":
            out = compute
        return out, compute

    def _cached(self, key, dtype, build):
        """Memoise ``build()`` per dtype, only when every source array provably cannot change.

        That holds for the frozen NumPy copies made at construction and never for torch
        tensors (in-place edits through ``.data`` or ``.numpy()`` leave no trace); see
        "Mutation" in the class notes. Anything cached is dropped as soon as a source is found
        writable.
        """
        if not self._bk.cache_allowed(*self._cache_sources()):
            self._cache = {}
            return build()
        stamp = (key, str(dtype))
        if stamp not in self._cache:
            self._cache[stamp] = build()
        return self._cache[stamp]

    # -- copies and pickles ------------------------------------------------------------------------
    def __getstate__(self):
        # Caches are rebuilt on demand; the backend is stored by name (it holds no state).
        state = dict(self.__dict__)
        state["_cache"] = {}
        state["_bk"] = self._bk.name
        return state

    def __setstate__(self, state):
        state = dict(state)
        bk = state["_bk"] = backend_named(state["_bk"])
        # numpy's deepcopy and unpickling give writable arrays: freeze them again.
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                state[key] = bk.freeze(value)
        self.__dict__.update(state)

    def _cache_sources(self):
        return self._arrays()

    def _cast(self, array, dtype):
        return self._bk.cast(array, dtype)

    # -- products -------------------------------------------------------------------------------
    def _as_input(self, x, name="x"):
        bk = self._bk
        if not bk.is_array(x):
            other = get_backend(x)
            if other is not bk and (other.is_array(x)):
                raise TypeError(
                    f"`{name}` is a {type(x).__module__}.{type(x).__name__} but the generators are "
                    f"{bk.name} arrays; convert it explicitly"
                )
        generator = self._arrays()[0]
        x = as_numeric_array(x, name, bk, like=generator, finite=False)
        check_same_device(bk, generators=generator, **{name: x})
        return x

    def _apply(self, x, transpose):
        bk = self._bk
        out, compute = self._compute_dtype(x.dtype)
        out = bk.operand_dtypes(self._arrays()[0].dtype, x.dtype, out)
        y = (self._rmatvec if transpose else self._matvec)(bk.cast(x, compute))
        return bk.cast(y, out) if out != compute else y

    def matvec(self, x):
        r"""``W x`` along the last axis: ``x`` of shape (..., n) gives (..., m).

        Batch axes of ``x`` broadcast with :attr:`batch_shape`.

        Parameters
        ----------
        x : array, shape (..., n)

        Returns
        -------
        array, shape (..., m)

        Examples
        --------
        >>> import numpy as np, ldr
        >>> W = ldr.toeplitz(np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0]))
        >>> W.matvec(np.array([[1.0, 0.0], [0.0, 1.0]]))
        array([[1., 2., 3.],
               [4., 1., 2.]])
        """
        x = self._as_input(x)
        self._check_length(x, self.shape[1], "x", "(..., n)")
        return self._apply(x, transpose=False)

    def rmatvec(self, x):
        r"""The adjoint product ``W^H x`` along the last axis: (..., m) -> (..., n).

        The conjugate transpose, as ``rmatvec`` means in :class:`scipy.sparse.linalg.LinearOperator`
        (so ``scipy.sparse.linalg.aslinearoperator(W)`` is right for complex W too). For a real W
        it is ``W^T x``; the plain transpose of a complex W is ``x @ W`` or ``W.T @ x``.

        Parameters
        ----------
        x : array, shape (..., m)

        Returns
        -------
        array, shape (..., n)

        Examples
        --------
        >>> import numpy as np, ldr
        >>> W = ldr.toeplitz(np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0]))
        >>> W.rmatvec(np.array([1.0, 0.0, 0.0]))
        array([1., 4.])
        >>> Wc = ldr.toeplitz(np.array([1.0, 2j, 3.0]))
        >>> bool(np.allclose(Wc.rmatvec(np.ones(3)), Wc.dense().conj().T @ np.ones(3)))
        True
        """
        x = self._as_input(x)
        self._check_length(x, self.shape[0], "x", "(..., m)")
        bk = self._bk
        if bk.dtype_kind(self.dtype) != "c":
            return self._apply(x, transpose=True)        # W^H = W^T
        return bk.conj(self._apply(bk.conj(x), transpose=True))

    def _check_length(self, x, expected, name, layout, axis=-1):
        if x.ndim == 0 or x.shape[axis] != expected:
            raise ValueError(
                f"`{name}` must have shape {layout} with {expected} entries on axis {axis} "
                f"for a matrix of shape {self.shape}; got {format_shape(x.shape)}"
            )

    def __matmul__(self, x):
        if isinstance(x, LDRMatrix):  # structured product (ldr.arithmetic), never densified
            from .arithmetic import matmul

            return matmul(self, x)
        x = self._as_input(x)
        if x.ndim == 0:
            raise ValueError("matmul: `x` must have at least one axis; got a scalar (use `*`)")
        if x.ndim == 1:
            self._check_length(x, self.shape[1], "x", "(n,)")
            return self._apply(x, transpose=False)
        self._check_length(x, self.shape[1], "x", "(..., n, k)", axis=-2)
        bk = self._bk
        W = self._insert_batch_axis() if self.batch_shape else self
        return bk.swapaxes(W._apply(bk.swapaxes(x, -1, -2), transpose=False), -1, -2)

    def __rmatmul__(self, x):
        x = self._as_input(x)
        if x.ndim == 0:
            raise ValueError("matmul: `x` must have at least one axis; got a scalar (use `*`)")
        self._check_length(x, self.shape[0], "x", "(..., m)" if x.ndim == 1 else "(..., k, m)")
        W = self._insert_batch_axis() if (self.batch_shape and x.ndim > 1) else self
        return W._apply(x, transpose=True)

    def _insert_batch_axis(self):
        """A copy with a size-1 batch axis inserted before the matrix axes (for ``W @ X``)."""
        bk = self._bk
        return type(self)._trusted(
            self.A._insert_batch_axis(),
            self.B._insert_batch_axis(),
            bk.expand_dims(self.G, -3),
            bk.expand_dims(self.H, -3),
        )

    def dense(self):
        r"""The dense matrix :math:`W` of shape (..., m, n), the unique solution of :math:`AW - WB = GH`.

        Returns
        -------
        array, shape (..., m, n)
            The leading axes are :attr:`batch_shape`.

        Examples
        --------
        >>> import numpy as np, scipy.linalg, ldr
        >>> c = np.array([1.0, 2.0, 3.0])
        >>> bool(np.allclose(ldr.circulant(c).dense(), scipy.linalg.circulant(c)))
        True
        """
        out, compute = self._compute_dtype()
        W = self._dense(compute)
        return self._bk.cast(W, out) if out != compute else W

    def aslinearoperator(self):
        """A :class:`scipy.sparse.linalg.LinearOperator` whose products use the fast algorithms.

        ``rmatvec`` of the operator is the adjoint (conjugate transpose), as scipy defines it.

        Returns
        -------
        scipy.sparse.linalg.LinearOperator

        Examples
        --------
        >>> import numpy as np, scipy.sparse.linalg, ldr
        >>> op = ldr.circulant(np.array([4.0, 1.0, 0.0, 1.0])).aslinearoperator()
        >>> x, info = scipy.sparse.linalg.cg(op, np.ones(4))
        >>> bool(np.allclose(op @ x, np.ones(4), atol=1e-4))
        True
        """
        if self._bk.name != "numpy":
            raise TypeError(
                "aslinearoperator() needs NumPy generators (scipy works on NumPy arrays); "
                f"these are {self._bk.name} arrays"
            )
        if self.batch_shape:
            raise ValueError(
                f"aslinearoperator() needs a single matrix; this one has batch shape {self.batch_shape}"
            )
        from ._linear_operator import LDRLinearOperator

        return LDRLinearOperator(self)

    # -- arithmetic on the generators (ldr.arithmetic; derivations in docs/theory/solvers) -------
    def __add__(self, other):
        if not isinstance(other, LDRMatrix):
            return NotImplemented
        from .arithmetic import add

        return add(self, other)

    def __sub__(self, other):
        if not isinstance(other, LDRMatrix):
            return NotImplemented
        from .arithmetic import add

        return add(self, -other)

    def __neg__(self):
        from .arithmetic import scale

        return scale(self, -1)

    def __mul__(self, c):
        from .arithmetic import scale

        return scale(self, c)

    __rmul__ = __mul__

    def __truediv__(self, c):
        from .arithmetic import divide

        return divide(self, c)

    def conj(self):
        r"""The entrywise complex conjugate, an LDR matrix for the conjugated operators.

        ``W.conj().T`` is the conjugate transpose. A real matrix returns itself.

        Examples
        --------
        >>> import numpy as np, ldr
        >>> W = ldr.toeplitz(np.array([1.0, 2j, 3.0]))
        >>> bool(np.allclose(W.conj().T.dense(), W.dense().conj().T))
        True
        """
        from .arithmetic import conj

        return conj(self)


class _Transposed(LDRMatrix):
    """``W.T``: a view that swaps the two product hooks of its parent."""

    def __init__(self, parent):
        self._parent = parent
        self._bk = parent._bk
        self._cache = {}

    @classmethod
    def _trusted(cls, *args):  # pragma: no cover - never rebuilt from generators
        raise TypeError("a transposed view is created with W.T")

    @property
    def A(self):
        return self._parent.B.T

    @property
    def B(self):
        return self._parent.A.T

    @property
    def G(self):
        return -self._bk.swapaxes(self._parent.H, -1, -2)

    @property
    def H(self):
        return self._bk.swapaxes(self._parent.G, -1, -2)

    @property
    def T(self):
        return self._parent

    @property
    def shape(self):
        return self._parent.shape[::-1]

    @property
    def batch_shape(self):
        return self._parent.batch_shape

    @property
    def rank(self):
        return self._parent.rank

    def _arrays(self):
        return self._parent._arrays()

    def _scalars(self):
        return self._parent._scalars()

    def __repr__(self):
        return f"{self._parent!r}.T"

    def _matvec(self, x):
        return self._parent._rmatvec(x)

    def _rmatvec(self, x):
        return self._parent._matvec(x)

    def _dense(self, dtype):
        return self._bk.swapaxes(self._parent._dense(dtype), -1, -2)

    def _insert_batch_axis(self):
        return _Transposed(self._parent._insert_batch_axis())


def _structure_for(A, B):
    for accepts, cls in LDRMatrix._pairs:
        if accepts(A, B):
            return cls
    supported = (
        "(Identity, Zero), (Shift, Shift), (Shift, Shift.T), (Shift.T, Shift), (Diagonal, Shift), (Shift, Diagonal), "
        "(Diagonal, Diagonal)"
    )
    raise TypeError(
        f"no LDR structure for the operator pair A = {A!r}, B = {B!r}; supported pairs are {supported} "
        "(transposes of these are available as W.T)"
    )

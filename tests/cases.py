"""Case factories: an LDR matrix on the backend under test plus an independent dense oracle.

The oracles never call the library: they are built in float64 (complex128) NumPy from the same
inputs by ``scipy.linalg.solve_sylvester``, explicit Krylov sums of dense shift powers,
``scipy.linalg.toeplitz/hankel/circulant``, ``np.vander`` or the entrywise Cauchy formula.
Inputs are rounded to the test dtype *before* the oracle is built, so the oracle is the exact
answer for the data the library actually received.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

import ldr
from strategies import CaseParams
from tolerance import as_numpy

__all__ = [
    "ArrayBackend",
    "Case",
    "build_case",
    "shift_dense",
    "krylov",
    "sylvester_oracle",
    "vandermonde_like_oracle",
    "toeplitz_like_krylov_oracle",
    "random_array",
    "round_to",
]


class ArrayBackend:
    """Converts test data (NumPy, float64/complex128) to the array type under test.

    Parameters
    ----------
    name : {"numpy", "torch"}
    device : str
        ``"cpu"`` or ``"cuda"`` (torch only).
    """

    def __init__(self, name, device="cpu"):
        self.name = name
        self.device = device
        if name == "torch":
            import torch

            self.torch = torch

    def __repr__(self):
        return f"ArrayBackend({self.name!r}, {self.device!r})"

    @property
    def is_torch(self):
        return self.name == "torch"

    def dtype(self, name):
        """The library dtype called ``name`` (``"float32"``, ``"complex128"``, ``"bfloat16"``...)."""
        if self.is_torch:
            return getattr(self.torch, name)
        return np.dtype(name)

    def asarray(self, a, dtype=None, requires_grad=False):
        """``a`` (array_like) as this backend's array, cast to ``dtype`` (a name) if given."""
        a = np.asarray(a)
        if self.is_torch:
            t = self.torch.as_tensor(a, device=self.device)
            if dtype is not None:
                t = t.to(self.dtype(dtype))
            return t.requires_grad_(requires_grad) if requires_grad else t
        return a if dtype is None else a.astype(dtype)

    def to_numpy(self, x):
        """A NumPy copy (the same dtype, half precision widened to float32)."""
        if self.is_torch:
            x = x.detach().cpu().resolve_conj()
            if x.dtype in (self.torch.float16, self.torch.bfloat16):
                x = x.float()
            return x.numpy()
        return np.asarray(x)

    def dtype_name(self, x):
        return str(x.dtype).replace("torch.", "")



def shift_dense(n, f, transpose=False):
    """Z_f built entry by entry: ones on the sub-diagonal, f at (0, n-1)."""
    Z = np.zeros((n, n), dtype=complex if isinstance(f, complex) else float)
    for i in range(1, n):
        Z[i, i - 1] = 1.0
    Z[0, n - 1] += f
    return Z.T.copy() if transpose else Z


def krylov(Z, v):
    """The Krylov matrix [v, Z v, ..., Z^{n-1} v] by repeated dense products."""
    columns = [v]
    for _ in range(Z.shape[0] - 1):
        columns.append(Z @ columns[-1])
    return np.stack(columns, axis=-1)


def round_to(a, dtype):
    """``a`` rounded to ``dtype`` (a name; bfloat16 via torch), returned in float64/complex128."""
    a = np.asarray(a)
    wide = np.complex128 if np.iscomplexobj(a) else np.float64
    if dtype == "bfloat16":
        import torch

        return torch.as_tensor(a).to(torch.bfloat16).double().numpy()
    return a.astype(dtype).astype(wide)


def random_array(rng, shape, dtype):
    """Standard normal entries (complex when ``dtype`` is), rounded to ``dtype``, as float64/complex128."""
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return round_to(a, dtype)


def _batched(fn, *arrays):
    """Apply ``fn`` to every batch entry of broadcast arrays (matrix or vector last axes given)."""
    arrays, cores = zip(*arrays)
    batch = np.broadcast_shapes(*[a.shape[: a.ndim - c] for a, c in zip(arrays, cores)])
    expanded = [np.broadcast_to(a, batch + a.shape[a.ndim - c :]) for a, c in zip(arrays, cores)]
    out = [fn(*[a[idx] for a in expanded]) for idx in np.ndindex(*batch)]
    return np.stack(out).reshape(batch + out[0].shape) if batch else out[0]


def sylvester_oracle(A, B, C):
    """The solution of ``A W - W B = C`` by ``scipy.linalg.solve_sylvester(A, -B, C)``, per batch entry."""
    if np.iscomplexobj(C):
        # scipy 1.17's solve_sylvester can return a wrong X for real A, B and a complex C
        # (residual O(1) for A = Z_1, B = Z_-1, n = 3); with complex A, B it is right.
        A, B = A.astype(complex), B.astype(complex)
    return _batched(lambda a, b, c: scipy.linalg.solve_sylvester(a, -b, c), (A, 2), (B, 2), (C, 2))


def vandermonde_like_oracle(v, f, C):
    r"""Rows of the solution of ``diag(v) W - W Z_f = C`` by the explicit Krylov sum.

    Since :math:`Z_f^n = f I`, :math:`(v I - Z_f)^{-1} = (v^n - f)^{-1} \sum_k v^{n-1-k} Z_f^k`,
    so row i is :math:`c_i^T \sum_k v_i^{n-1-k} Z_f^k / (v_i^n - f)`: a sum of dense powers,
    with no linear solve whose error would grow like :math:`|v|^{-n}`.
    """
    n = C.shape[-1]
    Z = shift_dense(n, f)
    v = v[..., :, None]
    W = np.zeros(np.broadcast_shapes(v.shape[:-1] + (n,), C.shape), dtype=np.result_type(v, C, float))
    power = np.eye(n)
    for k in range(n):
        W = W + (v ** (n - 1 - k) * C) @ power
        power = power @ Z
    return W / (v**n - f)


def toeplitz_like_krylov_oracle(G, H, e, f, hankel=False):
    r"""Square Toeplitz-like :math:`(e-f)^{-1}\sum_l K(Z_e, g_l) K(Z_f, J h_l)` from explicit Krylov matrices.

    With ``hankel=True`` it is the Hankel-like :math:`(e-f)^{-1}\sum_l K(Z_e, g_l) K(Z_f, h_l) J`.
    """
    n = G.shape[-2]
    Ze, Zf = shift_dense(n, e), shift_dense(n, f)
    W = 0
    for l in range(G.shape[-1]):
        h = H[l] if hankel else H[l, ::-1]
        term = krylov(Ze, G[:, l]) @ krylov(Zf, h)
        W = W + (term[:, ::-1] if hankel else term)
    return W / (e - f)


def _vandermonde_nodes(rng, shape, n, f, complex_nodes):
    """Nodes with 0.5 <= |v| <= 1 and |v^n - f| >= 1e-2 |v^n| (keeps v^{-n} <= 2^32, W bounded)."""

    def draw():
        radius = rng.uniform(0.5, 1.0, shape)
        if complex_nodes:
            return radius * np.exp(2j * np.pi * rng.uniform(0, 1, shape))
        return radius * rng.choice([-1.0, 1.0], shape)

    v = draw()
    for _ in range(100):
        bad = np.abs(v**n - f) < 1e-2 * np.abs(v**n)
        if not bad.any():
            return v
        v = np.where(bad, draw(), v)
    raise AssertionError("could not draw Vandermonde nodes away from v**n == f")  # pragma: no cover


def _cauchy_nodes(rng, m_shape, n_shape, complex_nodes):
    """Row nodes in the unit disk/interval, column nodes at distance >= 0.1 outside it."""
    if complex_nodes:
        v = rng.uniform(0, 1, m_shape) * np.exp(2j * np.pi * rng.uniform(0, 1, m_shape))
        u = rng.uniform(1.1, 2.0, n_shape) * np.exp(2j * np.pi * rng.uniform(0, 1, n_shape))
    else:
        v = rng.uniform(-1, 1, m_shape)
        u = rng.uniform(1.1, 2.0, n_shape) * rng.choice([-1.0, 1.0], n_shape)
    return v, u


@dataclasses.dataclass
class Case:
    """An LDR matrix ``W`` on a backend and its float64 dense oracle.

    Attributes
    ----------
    W : LDRMatrix
    oracle : numpy.ndarray, shape (*batch, m, n)
        Independent dense form, float64 or complex128.
    A, B : numpy.ndarray
        Dense displacement operators (batched for batched nodes).
    GH : numpy.ndarray, shape (*batch, m, n)
        The displacement ``G H`` in float64.
    dtype : str
        The dtype the products must return for an input of the same dtype.
    """

    params: CaseParams
    backend: object
    W: object
    oracle: np.ndarray
    A: np.ndarray
    B: np.ndarray
    GH: np.ndarray
    dtype: str
    rng: np.random.Generator

    @property
    def shape(self):
        return self.oracle.shape[-2:]

    @property
    def batch(self):
        return self.oracle.shape[:-2]

    @property
    def norm(self):
        return float(np.linalg.norm(self.oracle.ravel()))

    def operand(self, shape, dtype=None):
        """A random x of ``shape`` on the backend (dtype default: the case's) and its float64 copy."""
        dtype = dtype or self.dtype
        x64 = random_array(self.rng, shape, dtype)
        return self.backend.asarray(x64, dtype), x64


def build_case(params: CaseParams, backend) -> Case:
    """The :class:`Case` described by ``params`` on ``backend`` (an ``ArrayBackend``)."""
    rng = np.random.default_rng(params.seed)
    s, m, n, r, e, f = params.structure, params.m, params.n, params.r, params.e, params.f
    dtype = params.dtype
    complex_case = dtype.startswith("complex")

    def to(a64):
        return backend.asarray(a64, dtype)

    G, H = random_array(rng, params.batch_g + (m, r), dtype), random_array(rng, params.batch_h + (r, n), dtype)
    GH = G @ H
    if s == "low_rank":
        W = ldr.low_rank(to(G), to(H))
        A, B, oracle = np.eye(m), np.zeros((n, n)), GH
    elif s in ("toeplitz_like", "toeplitz_like_rect"):
        W = ldr.toeplitz_like(to(G), to(H), e=e, f=f)
        A, B = shift_dense(m, e), shift_dense(n, f)
        oracle = sylvester_oracle(A, B, GH)
    elif s == "hankel_like":
        W = ldr.hankel_like(to(G), to(H), e=e, f=f)
        A, B = shift_dense(m, e), shift_dense(n, f, transpose=True)
        oracle = sylvester_oracle(A, B, GH)
    elif s == "vandermonde_like":
        v = round_to(_vandermonde_nodes(rng, params.batch_h + (m,), n, f, complex_case), dtype)
        W = ldr.vandermonde_like(to(G), to(H), to(v), f=f)
        A, B = v[..., :, None] * np.eye(m), shift_dense(n, f)
        oracle = vandermonde_like_oracle(v, f, GH)
    elif s == "cauchy_like":
        v, u = _cauchy_nodes(rng, params.batch_h + (m,), params.batch_g + (n,), complex_case)
        v, u = round_to(v, dtype), round_to(u, dtype)
        W = ldr.cauchy_like(to(G), to(H), to(v), to(u))
        A, B = v[..., :, None] * np.eye(m), u[..., :, None] * np.eye(n)
        oracle = GH / (v[..., :, None] - u[..., None, :])
    elif s in ("toeplitz", "hankel"):
        c, rr = random_array(rng, (m,), dtype), random_array(rng, (n,), dtype)
        if s == "toeplitz":
            W = ldr.toeplitz(to(c), to(rr), e=e, f=f)
            A, B, oracle = shift_dense(m, e), shift_dense(n, f), scipy.linalg.toeplitz(c, rr)
        else:
            W = ldr.hankel(to(c), to(rr), e=e, f=f)
            A, B = shift_dense(m, e), shift_dense(n, f, transpose=True)
            oracle = scipy.linalg.hankel(c, rr)
    elif s == "circulant":
        c = random_array(rng, (m,), dtype)
        W = ldr.circulant(to(c), f=f)
        A, B, oracle = shift_dense(m, 1.0), shift_dense(m, f), scipy.linalg.circulant(c)
    elif s == "vandermonde":
        v = round_to(_vandermonde_nodes(rng, (m,), n, f, complex_case), dtype)
        W = ldr.vandermonde(to(v), n, f=f)
        A, B, oracle = np.diag(v), shift_dense(n, f), np.vander(v, n, increasing=True)
    elif s == "cauchy":
        v, u = _cauchy_nodes(rng, (m,), (n,), complex_case)
        v, u = round_to(v, dtype), round_to(u, dtype)
        W = ldr.cauchy(to(v), to(u))
        A, B, oracle = np.diag(v), np.diag(u), 1.0 / (v[:, None] - u[None, :])
    else:  # pragma: no cover - a typo in a parametrisation
        raise ValueError(f"unknown structure {s!r}")
    if s in ("toeplitz", "hankel", "circulant", "vandermonde", "cauchy"):
        # The displacement of a classic matrix is the library's own (exact, rank <= 2) generators;
        # the displacement test checks them against the dense operators.
        GH = as_numpy(W.G) @ as_numpy(W.H)
    return Case(params, backend, W, oracle, A, B, GH, dtype, rng)

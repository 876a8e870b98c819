"""The node kernels of Cauchy-like and Vandermonde-like matrices (ldr/node_kernels.py).

Streamed exact products (several tiles, batches folded, batched nodes), no m×n cache, autograd
through recomputed tiles, accurate and overflow-free Vandermonde powers (issue 12 §4) and the
O(r m n log n) dense builder, each against an independent float64 oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

import ldr
import ldr.node_kernels as node_kernels
from cases import krylov, round_to, shift_dense
from tolerance import as_numpy, assert_close


def vandermonde_like_dense(G, H, v, f):
    r"""Oracle :math:`\sum_l \operatorname{diag}(g_l / (v^n - f)) V(v) K(Z_f, J h_l)` in float64, per batch entry.

    ``np.vander`` powers and explicit Krylov matrices (repeated dense products with Z_f).
    """
    batch = np.broadcast_shapes(G.shape[:-2], H.shape[:-2], v.shape[:-1])
    G, H, v = (np.broadcast_to(a, batch + a.shape[-k:]) for a, k in ((G, 2), (H, 2), (v, 1)))
    n, Z = H.shape[-1], shift_dense(H.shape[-1], f)
    out = []
    for idx in np.ndindex(*batch):
        g, h, w = G[idx], H[idx], v[idx]
        V = np.vander(w, n, increasing=True)
        out.append(sum((g[:, l] / (w**n - f))[:, None] * (V @ krylov(Z, h[l, ::-1])) for l in range(g.shape[1])))
    return np.stack(out).reshape(batch + out[0].shape) if batch else out[0]


def cauchy_like_dense(G, H, v, u):
    """Oracle ``(G H) / (v_i - u_j)`` entry by entry."""
    return (G @ H) / (v[..., :, None] - u[..., None, :])


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """The SVDs and GEMMs here are small: a multi-threaded BLAS on a loaded 2-core machine
    spin-waits (a 150x130 SVD took 7 s instead of 3 ms, measured)."""
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpoolctl.threadpool_limits(1):
        yield


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 4 rows (the minimum): every product below runs through many row tiles."""
    monkeypatch.setattr(node_kernels, "TILE_ENTRIES", 8)


def _all_arrays(obj, seen=None):
    """Every array reachable from a cache entry (tuples, dicts, plain objects)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for item in obj for a in _all_arrays(item, seen)]
    if isinstance(obj, dict):
        return [a for item in obj.values() for a in _all_arrays(item, seen)]
    if hasattr(obj, "__dict__"):
        return [a for item in vars(obj).values() for a in _all_arrays(item, seen)]
    return []


def _vandermonde_case(rng, m, n, r, f, complex_nodes=False, batch=()):
    angle = rng.uniform(0, 2 * np.pi, batch + (m,))
    radius = rng.uniform(0.6, 1.0, batch + (m,))
    v = radius * (np.exp(1j * angle) if complex_nodes else np.cos(angle))
    G, H = rng.standard_normal(batch + (m, r)), rng.standard_normal(batch + (r, n))
    return G, H, v


@pytest.mark.parametrize("structure", ["cauchy", "vandermonde"])
def test_no_dense_cache(backend, structure):
    rng = np.random.default_rng(0)
    m, n, r = 48, 40, 2
    if structure == "cauchy":
        G, H = rng.standard_normal((m, r)), rng.standard_normal((r, n))
        W = ldr.cauchy_like(backend.asarray(G), backend.asarray(H), backend.asarray(np.arange(m) + 0.5),
                            backend.asarray(np.arange(n) * 1.0))
    else:
        G, H, v = _vandermonde_case(rng, m, n, r, 1.0)
        W = ldr.vandermonde_like(backend.asarray(G), backend.asarray(H), backend.asarray(v), f=1.0)
    x = backend.asarray(rng.standard_normal((3, n)))
    W.matvec(x), W.T.matvec(backend.asarray(rng.standard_normal(m))), W.dense()
    sizes = [int(np.prod(a.shape)) for a in _all_arrays(W._cache)]
    assert max(sizes, default=0) < m * n / 4, f"cached arrays of sizes {sizes} for a {m}x{n} matrix"


@pytest.mark.parametrize("batched_nodes", [False, True])
@pytest.mark.parametrize("f", [0.0, -1.0, 0.5 + 0.5j])
def test_vandermonde_streamed_products(backend, small_tiles, f, batched_nodes):
    rng = np.random.default_rng(1)
    m, n, r = 13, 11, 3
    G, H, v = _vandermonde_case(rng, m, n, r, f, complex_nodes=True, batch=(2,) if batched_nodes else ())
    W = ldr.vandermonde_like(backend.asarray(G), backend.asarray(H), backend.asarray(v), f=f)
    D = vandermonde_like_dense(G, H, v, f)
    x, y = rng.standard_normal((4, 1, n)), rng.standard_normal((4, 1, m))
    scale = np.linalg.norm(D) * np.linalg.norm(x)
    assert_close(W.matvec(backend.asarray(x)), np.einsum("...ij,...j->...i", D, x), scale=scale, dtype="complex128")
    assert_close(W.T.matvec(backend.asarray(y)), np.einsum("...ij,...i->...j", D, y),
                 scale=np.linalg.norm(D) * np.linalg.norm(y), dtype="complex128")
    assert_close(W.dense(), D, scale=np.linalg.norm(D), dtype="complex128")


@pytest.mark.parametrize("batched_nodes", [False, True])
def test_cauchy_streamed_products(backend, small_tiles, batched_nodes):
    rng = np.random.default_rng(2)
    m, n, r = 17, 9, 2
    batch = (3,) if batched_nodes else ()
    v = rng.standard_normal(batch + (m,)) + 1j * rng.standard_normal(batch + (m,))
    u = rng.standard_normal(batch + (n,)) + 0.1
    G, H = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    W = ldr.cauchy_like(backend.asarray(G), backend.asarray(H), backend.asarray(v), backend.asarray(u))
    D = cauchy_like_dense(G, H, v, u)
    x, y = rng.standard_normal((5, n)), rng.standard_normal((5, m))
    assert_close(W @ backend.asarray(x.T), np.einsum("...ij,kj->...ik", D, x),
                 scale=np.linalg.norm(D) * np.linalg.norm(x), dtype="complex128")
    assert_close(W.T.matvec(backend.asarray(y[:, None, :]) if batched_nodes else backend.asarray(y)),
                 np.einsum("...ij,k...i->k...j", D, y[:, None, :] if batched_nodes else y[:, None, :]).reshape(
                     (5,) + batch + (n,)) if batched_nodes else y @ D,
                 scale=np.linalg.norm(D) * np.linalg.norm(y), dtype="complex128")


def test_gradients_through_recomputed_tiles(small_tiles):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    m, n, r = 9, 5, 1  # tiles of 4 rows: three tiles, each recomputed in the backward pass
    G, H, v = _vandermonde_case(rng, m, n, r, -1.0)
    x = torch.tensor(rng.standard_normal(n), requires_grad=True)
    y = torch.tensor(rng.standard_normal(m), requires_grad=True)
    G, H, v = (torch.tensor(a, requires_grad=True) for a in (G, H, v))
    check = lambda fn, *args: torch.autograd.gradcheck(fn, args, fast_mode=True)  # noqa: E731
    assert check(lambda G, H, v, x: ldr.vandermonde_like(G, H, v, f=-1.0).matvec(x), G, H, v, x)
    assert check(lambda G, H, v, y: ldr.vandermonde_like(G, H, v, f=-1.0).T.matvec(y), G, H, v, y)
    u = torch.tensor(np.arange(n) + 0.5, requires_grad=True)
    w = torch.tensor(rng.standard_normal(m) * 3, requires_grad=True)
    assert check(lambda G, H, w, u, x: ldr.cauchy_like(G, H, w, u).matvec(x), G, H, w, u, x)
    assert check(lambda G, H, w, u, y: ldr.cauchy_like(G, H, w, u).T.matvec(y), G, H, w, u, y)


# -- issue 12 §4: Vandermonde powers in float arithmetic ---------------------------------------------
def test_float32_nodes_inside_unit_circle(backend):
    v = np.array([0.5, 0.9, -0.7, 0.95])
    W = ldr.vandermonde(backend.asarray(v.astype(np.float32)), 200)
    D = as_numpy(W.dense())
    assert np.isfinite(D).all()
    oracle = np.vander(v.astype(np.float32).astype(float), 200, increasing=True)
    assert_close(D, oracle, scale=np.linalg.norm(oracle), dtype="float32")


def test_tiny_node_accepted_in_float64(backend):
    v = np.array([0.01, 0.5, 1.0])
    W = ldr.vandermonde(backend.asarray(v), 200)
    oracle = np.vander(v, 200, increasing=True)
    x = np.random.default_rng(4).standard_normal(200)
    assert_close(W.dense(), oracle, scale=np.linalg.norm(oracle), dtype="float64")
    assert_close(W @ backend.asarray(x), oracle @ x, scale=np.linalg.norm(oracle) * np.linalg.norm(x), dtype="float64")


@pytest.mark.parametrize("nodes", ["chebyshev", "unit-circle"])
def test_float32_powers_accurate_at_n_4096(backend, nodes):
    # A running product loses n*eps (2e-4 at n = 4096 in float32); exp/log powers stay at a few ulps.
    m, n = 32, 4096
    if nodes == "chebyshev":
        v = np.cos(np.pi * (np.arange(m) + 0.5) / m)
    else:
        v = np.exp(1j * np.pi * (2 * np.arange(m) + 1) / m)
    low = v.astype(np.complex64 if np.iscomplexobj(v) else np.float32)
    W = ldr.vandermonde(backend.asarray(low), n)
    oracle = np.vander(low.astype(v.dtype), n, increasing=True)
    x = np.random.default_rng(5).standard_normal(n)
    scale = np.linalg.norm(oracle) * np.linalg.norm(x)
    y = W @ backend.asarray(x.astype(np.float32))
    assert_close(y, oracle @ x.astype(np.float32).astype(float), scale=scale, dtype="float32")
    z = W.T @ backend.asarray(np.ones(m, dtype=np.float32))
    assert_close(z, oracle.T @ np.ones(m), scale=np.linalg.norm(oracle) * np.sqrt(m), dtype="float32")


def test_nodes_outside_unit_circle_do_not_overflow(backend):
    # |v| = 1.5, n = 300, f = 1: v**n = 1e52 overflows float32, but W's entries ~ g v^(j-n) are O(1).
    rng = np.random.default_rng(6)
    m, n, r = 5, 300, 2
    v = np.array([1.5, -1.2, 1.05, 0.7, -1.9])
    G, H = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    G32, H32, v32 = (round_to(a, "float32") for a in (G, H, v))
    D = vandermonde_like_dense(G32, H32, v32, 1.0)
    W = ldr.vandermonde_like(backend.asarray(G32.astype(np.float32)), backend.asarray(H32.astype(np.float32)),
                             backend.asarray(v32.astype(np.float32)), f=1.0)
    x = rng.standard_normal(n)
    assert_close(W @ backend.asarray(x.astype(np.float32)), D @ round_to(x, "float32"),
                 scale=np.linalg.norm(D) * np.linalg.norm(x), dtype="float32")
    assert_close(W.dense(), D, scale=np.linalg.norm(D), dtype="float32")


def test_unrepresentable_row_scales_refused():
    with pytest.raises(ValueError, match=r"`v`: the row scales G / \(v\*\*n - f\)"):
        ldr.vandermonde_like(np.ones((2, 1)), np.ones((1, 200)), np.array([0.01, 0.5]), f=0.0)


# -- the fast (treecode) Cauchy path --------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import importlib  # noqa: E402

cauchy_module = importlib.import_module("ldr.cauchy_like")  # the module (ldr.cauchy_like is also a function)
from ldr.fast_cauchy import default_tol  # noqa: E402


def _node_family(rng, family, m, n):
    """Row and column nodes of one family (never colliding)."""
    if family == "separated":
        return rng.uniform(0, 1, m), rng.uniform(1.5, 4, n)
    if family == "interlaced":
        v = np.sort(rng.uniform(-1, 1, m))
        return v, np.sort(rng.uniform(-1, 1, n)) + 1e-9
    if family == "clustered":
        v = np.concatenate([rng.normal(0, 1e-4, m // 2), rng.normal(3, 1, m - m // 2)])
        u = np.concatenate([rng.normal(2e-5, 1e-4, n // 2), rng.normal(3.01, 1, n - n // 2)])
        return v, u
    if family == "complex-rows":
        return rng.standard_normal(m) + 1j * rng.standard_normal(m), rng.standard_normal(n)
    if family == "unit-circle":
        return (np.exp(2j * np.pi * (np.arange(m) + 0.5) / m),
                np.exp(1j * (2 * np.pi * np.arange(n) / n + rng.uniform(0, 0.1))))
    raise ValueError(family)


def _spectral_norm(C):
    return float(np.linalg.norm(C, 2))


FAMILIES = ["separated", "interlaced", "clustered", "complex-rows", "unit-circle"]


@settings(max_examples=10)
@given(family=st.sampled_from(FAMILIES), m=st.integers(70, 260), n=st.integers(70, 260),
       dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 2**16), tol=st.sampled_from([None, 1e-8]))
def test_fast_cauchy_within_tol_of_dense(family, m, n, dtype, seed, tol):
    rng = np.random.default_rng(seed)
    v, u = _node_family(rng, family, m, n)
    complex_name = {"float64": "complex128", "float32": "complex64"}[dtype]
    v = round_to(v, complex_name if np.iscomplexobj(v) else dtype)
    u = round_to(u, complex_name if np.iscomplexobj(u) else dtype)
    if dtype == "float32" and tol is not None:
        tol = 1e-5  # float32 round-off alone is ~1e-7 relative; 1e-8 is not a float32 target
    low = np.complex64 if np.iscomplexobj(v) or np.iscomplexobj(u) else np.float32
    cast = (lambda a: a.astype(low)) if dtype == "float32" else (lambda a: a)
    C = 1.0 / (v[:, None] - u[None, :])
    ones_m, ones_n = np.ones((m, 1)), np.ones((1, n))
    W = ldr.cauchy_like(cast(ones_m), cast(ones_n), cast(v), cast(u), method="fast", tol=tol)
    x, y = rng.standard_normal((3, n)), rng.standard_normal((3, m))
    effective = tol if tol is not None else default_tol(dtype)
    norm = _spectral_norm(C)
    fast_x = as_numpy(W.matvec(cast(x)))
    err = np.linalg.norm(fast_x - x @ C.T) / (norm * np.linalg.norm(x))
    # float32: the products themselves round at ~1e-7 * sqrt(n) relative to ‖C‖‖x‖, below tol = 1e-5.
    assert err <= effective, f"{family} {m}x{n} {dtype}: matvec error {err:.2e} > tol {effective:.1e}"
    if family in ("separated", "interlaced", "clustered", "unit-circle"):  # row nodes on a curve too
        fast_y = as_numpy(W.T.matvec(cast(y)))
        err_t = np.linalg.norm(fast_y - y @ C) / (norm * np.linalg.norm(y))
        assert err_t <= effective, f"{family} {m}x{n} {dtype}: transpose error {err_t:.2e} > tol {effective:.1e}"


@pytest.mark.parametrize("family", ["clustered", "unit-circle"])
def test_fast_cauchy_like_products(backend, family):
    rng = np.random.default_rng(11)
    m, n, r = 150, 130, 3
    v, u = _node_family(rng, family, m, n)
    G, H = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    W = ldr.cauchy_like(backend.asarray(G), backend.asarray(H), backend.asarray(v), backend.asarray(u), method="fast")
    C = 1.0 / (v[:, None] - u[None, :])
    D = (G @ H) * C
    x = rng.standard_normal((2, n))
    # Per rank term the error is <= tol ‖C‖ ‖h_l o x‖, scaled by max |g_l|.
    bound = default_tol("float64") * _spectral_norm(C) * sum(
        np.abs(G[:, l]).max() * np.linalg.norm(H[l] * x) for l in range(r))
    assert np.linalg.norm(as_numpy(W.matvec(backend.asarray(x))) - x @ D.T) <= bound
    y = rng.standard_normal(m)
    bound_t = default_tol("float64") * _spectral_norm(C) * sum(
        np.abs(H[l]).max() * np.linalg.norm(G[:, l] * y) for l in range(r))
    assert np.linalg.norm(as_numpy(W.T @ backend.asarray(y)) - y @ D) <= bound_t
    assert np.linalg.norm(as_numpy(W @ backend.asarray(x.T)) - D @ x.T) <= bound


def test_fast_cauchy_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    m, n = 70, 66
    v, u = _node_family(rng, "interlaced", m, n)
    G, H, x = (torch.tensor(a, requires_grad=True) for a in
               (rng.standard_normal((m, 1)), rng.standard_normal((1, n)), rng.standard_normal(n)))
    v, u = torch.tensor(v), torch.tensor(u)
    W = ldr.cauchy_like(G, H, v, u, method="fast")
    assert torch.autograd.gradcheck(lambda G, H, x: ldr.cauchy_like(G, H, v, u, method="fast").matvec(x),
                                    (G, H, x), fast_mode=True)
    assert W.matvec(x).requires_grad


def test_auto_takes_the_fast_path_from_the_crossover(monkeypatch):
    rng = np.random.default_rng(13)
    v, u = _node_family(rng, "separated", 80, 70)
    W = ldr.cauchy_like(np.ones((80, 1)), np.ones((1, 70)), v, u)
    W.matvec(np.ones(70))
    assert not W._plans, "below the crossover auto must take the exact path"
    monkeypatch.setitem(cauchy_module.CROSSOVER, "float64", 16)
    y = W.matvec(np.ones(70))
    assert W._plans, "at the crossover auto must take the fast path"
    np.testing.assert_allclose(y, (1.0 / (v[:, None] - u[None, :])).sum(1), rtol=1e-9)
    exact = ldr.cauchy_like(np.ones((80, 1)), np.ones((1, 70)), v, u, method="exact")
    exact.matvec(np.ones(70))
    assert not exact._plans


def test_fast_method_refusals():
    rng = np.random.default_rng(14)
    v, u = _node_family(rng, "separated", 20, 10)
    with pytest.raises(ValueError, match="batch axes"):
        ldr.cauchy_like(np.ones((2, 20, 1)), np.ones((2, 1, 10)), np.stack([v, v + 0.01]), u,
                        method="fast").matvec(np.ones(10))
    off_curve = u + 0.3j
    with pytest.raises(ValueError, match="neither on the real line nor on the unit circle"):
        ldr.cauchy_like(np.ones((20, 1)), np.ones((1, 10)), v, off_curve, method="fast").matvec(np.ones(10))
    with pytest.raises(ValueError, match="`method` must be one of"):
        ldr.cauchy_like(np.ones((20, 1)), np.ones((1, 10)), v, u, method="superfast")
    with pytest.raises(ValueError, match="`tol` must be a float in"):
        ldr.cauchy_like(np.ones((20, 1)), np.ones((1, 10)), v, u, tol=0.0)
    torch = pytest.importorskip("torch")
    vt = torch.tensor(v, requires_grad=True)
    with pytest.raises(ValueError, match="autograd records the nodes"):
        ldr.cauchy_like(torch.ones(20, 1, dtype=torch.float64), torch.ones(1, 10, dtype=torch.float64), vt,
                        torch.tensor(u), method="fast").matvec(torch.ones(10, dtype=torch.float64))


# -- the fast Vandermonde path (Vandermonde -> Cauchy identity, then the treecode) ---------------------
def _vandermonde_nodes(rng, family, m):
    if family == "roots-of-minus-one":
        return np.exp(1j * np.pi * (2 * np.arange(m) + 1) / m)
    if family == "disc":
        return 0.9 * np.sqrt(rng.uniform(0, 1, m)) * np.exp(2j * np.pi * rng.uniform(0, 1, m))
    return rng.uniform(-0.95, 0.95, m)  # real


@pytest.mark.parametrize("precision", ["double", "single"])
@pytest.mark.parametrize("family, f", [("roots-of-minus-one", 0.0), ("disc", 1.0), ("real", -1.0)])
def test_fast_vandermonde_within_tol(backend, family, f, precision):
    rng = np.random.default_rng(21)
    m, n, r = 150, 140, 2  # three tree levels in double precision
    v = _vandermonde_nodes(rng, family, m)
    real = not np.iscomplexobj(v)
    name = ("float64" if real else "complex128") if precision == "double" else ("float32" if real else "complex64")
    real_name = "float64" if precision == "double" else "float32"
    G, H = round_to(rng.standard_normal((m, r)), real_name), round_to(rng.standard_normal((r, n)), real_name)
    v = round_to(v, name)
    D = vandermonde_like_dense(G, H, v, f)
    W = ldr.vandermonde_like(backend.asarray(G.astype(name)), backend.asarray(H.astype(name)),
                             backend.asarray(v.astype(name)), f=f, method="fast")
    x = round_to(rng.standard_normal((3, n)), real_name)
    y = W.matvec(backend.asarray(x.astype(real_name)))
    assert_close(y, x @ D.T, scale=_spectral_norm(D) * np.linalg.norm(x), dtype=name)


def test_fast_vandermonde_refuses_nodes_at_every_root_set():
    # Nodes whose n-th powers hit 1, -1, i and -i: each choice of f' puts a root next to a node.
    n = 64
    v = np.exp(1j * (np.pi / 2 * np.arange(4) / n + 1e-9))
    G, H = np.ones((4, 1)), np.ones((1, n))
    with pytest.raises(ValueError, match="n-th roots of every f'"):
        ldr.vandermonde_like(G, H, v, f=0.5, method="fast").matvec(np.ones(n))
    with pytest.raises(ValueError, match="outside the unit circle"):
        ldr.vandermonde_like(G, H, np.array([1.5, 0.2, 0.3, 0.4]), f=1.0, method="fast").matvec(np.ones(n))
    auto = ldr.vandermonde_like(G, H, v, f=0.5)  # auto falls back to the exact path
    np.testing.assert_allclose(auto.matvec(np.ones(n)), vandermonde_like_dense(G, H, v, 0.5) @ np.ones(n), rtol=1e-10)

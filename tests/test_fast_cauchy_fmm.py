"""The one-dimensional FMM of ldr/fast_cauchy.py against dense float64 oracles.

Small sizes with small leaves (``leaf=3..8`` points) so that every test runs through several
tree levels, multipole-to-local translations on every level, the three block-sparse layouts
(sliding windows, padded, flat) and the periodic windows of the unit circle. The error bound
is the documented one: ``‖fast − dense‖ ≤ tol · ‖C‖₂ · ‖q‖``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ldr
import ldr.fast_cauchy as fast_cauchy
from cases import round_to
from conftest import HAVE_TORCH
from ldr.backends import get_backend
from ldr.fast_cauchy import CauchyPlan, default_tol
from tolerance import as_numpy


def _nodes(rng, family, m, n):
    """Row and column nodes of one family, both on one curve (the FMM's case), never colliding."""
    if family == "interlaced":  # near-collisions: 1e-9 apart
        v = np.sort(rng.uniform(-1, 1, m))
        return v, np.sort(rng.uniform(-1, 1, n)) + 1e-9
    if family == "grid":  # equispaced, interlaced
        return -1 + 2 * np.arange(m) / m, -1 + (2 * np.arange(n) + 1) / n
    if family == "separated":
        return rng.uniform(0, 1, m), rng.uniform(1.5, 4, n)
    if family == "clustered":  # clusters of width 1e-4 beside spread points: irregular trees
        v = np.concatenate([rng.normal(0, 1e-4, m // 2), rng.normal(3, 1, m - m // 2)])
        return v, np.concatenate([rng.normal(2e-5, 1e-4, n // 2), rng.normal(3.01, 1, n - n // 2)])
    if family == "repeated":  # row nodes repeat (boxes of width 0)
        return np.repeat(rng.uniform(-1, 1, (m + 3) // 4), 4)[:m], rng.uniform(-1, 1, n) + 0.5 / n
    if family == "far-from-zero":  # tight repeated clusters at 1e8: floored boxes must keep distinct nodes
        return 1e8 + np.repeat(np.arange((m + 3) // 4) * 1e-6, 4)[:m], 1e8 + 0.5 + np.arange(n) * 1e-3
    if family == "unit-circle":
        return (np.exp(2j * np.pi * (np.arange(m) + 0.5) / m),
                np.exp(1j * (2 * np.pi * np.arange(n) / n + rng.uniform(0, 0.1))))
    if family == "random-arc":  # unit-circle nodes at random angles, rounded to complex64 below
        return np.exp(1j * rng.uniform(0, 2 * np.pi, m)), np.exp(1j * rng.uniform(0, 2 * np.pi, n))
    raise ValueError(family)


FAMILIES = ["grid", "interlaced", "separated", "clustered", "repeated", "far-from-zero", "unit-circle", "random-arc"]


def _backends():
    out = [np.asarray]
    if HAVE_TORCH:
        import torch

        out.append(torch.as_tensor)
    return out


def _check(plan, C, q, tol, backend, what):
    y = as_numpy(plan.apply(get_backend(backend(q)), backend(q)))
    err = np.linalg.norm(y - C @ q) / (np.linalg.norm(C, 2) * np.linalg.norm(q))
    assert err <= tol, f"{what}: error {err:.2e} > tol {tol:.1e}"


@settings(max_examples=10)
@given(family=st.sampled_from(FAMILIES), m=st.integers(30, 110), n=st.integers(30, 110),
       leaf=st.sampled_from([3, 5, 8]), single=st.booleans(), seed=st.integers(0, 2**16),
       tol=st.sampled_from([None, 1e-8]), backend=st.sampled_from(_backends()))
def test_fmm_within_tol_of_dense(family, m, n, leaf, single, seed, tol, backend):
    rng = np.random.default_rng(seed)
    v, u = _nodes(rng, family, m, n)
    name = ("complex64" if np.iscomplexobj(v) else "float32") if single else ("complex128" if np.iscomplexobj(v) else "float64")
    v, u = round_to(v, name), round_to(u, name)
    if np.min(np.abs(v[:, None] - u[None, :])) == 0:
        return  # rounding made a collision: the constructor refuses those (tested elsewhere)
    tol = default_tol("float32") if single else (tol or default_tol("float64"))
    mode = "circle" if np.iscomplexobj(v) else "real"
    C = 1.0 / (v[:, None] - u[None, :])
    q = rng.standard_normal((n, 3))
    q = q.astype(np.float32) if single else q
    q = q.astype(np.complex64 if single else np.complex128) if mode == "circle" else q
    plan = CauchyPlan(v, u, tol, mode, leaf=leaf)
    assert plan.kind == "fmm" and plan.levels >= 2
    # float32 charges: the products round at ~1e-7 relative to ‖C‖‖q‖, below tol = 1e-5.
    _check(plan, C, q, tol, backend, f"{family} {m}x{n} leaf {leaf}")
    # The transpose (targets and sources swapped) on the same family.
    _check(CauchyPlan(u, v, tol, mode, leaf=leaf), -C.T, rng.standard_normal((m, 2)), tol, backend,
           f"{family} {n}x{m} transposed")


@pytest.mark.parametrize("waste, expected", [(2.0, {"window"}), (1e-9, {"flat"})])
@pytest.mark.parametrize("family", ["grid", "unit-circle"])
def test_block_layouts_agree(monkeypatch, family, waste, expected):
    """Every layout of the block-sparse translations gives the same product (the flat one is
    forced by refusing any padding)."""
    rng = np.random.default_rng(3)
    v, u = _nodes(rng, family, 120, 120)
    mode = "circle" if np.iscomplexobj(v) else "real"
    monkeypatch.setattr(fast_cauchy, "PAD_WASTE", waste)
    plan = CauchyPlan(v, u, 1e-12, mode, leaf=4)
    assert {plan._impl.near.mode} == expected
    modes = {ops.mode for ops in plan._impl.m2l.values()}
    # A padded layout with one block per target is the flat one without the segment sums.
    assert all(ops.mode == "flat" or ops.count == 1 for ops in plan._impl.m2l.values()) or waste > 1
    assert modes <= {"padded", "flat"}
    q = rng.standard_normal((120, 2))
    C = 1.0 / (v[:, None] - u[None, :])
    _check(plan, C, q, 1e-12, np.asarray, f"{family} with PAD_WASTE={waste}")


def test_periodic_windows_wrap_around():
    """On the circle the first and last leaves are neighbours: the near field must wrap."""
    rng = np.random.default_rng(4)
    v, u = _nodes(rng, "unit-circle", 64, 64)
    plan = CauchyPlan(v, u, 1e-12, "circle", leaf=4)
    assert plan._impl.near.mode == "window" and plan._impl.near.guards[0] > 0
    C = 1.0 / (v[:, None] - u[None, :])
    q = np.zeros((64, 1))
    q[np.argmax(np.angle(u) % (2 * np.pi))] = 1.0  # a single charge in the last leaf
    _check(plan, C, q, 1e-12, np.asarray, "charge in the last leaf")


def test_off_curve_targets_use_the_treecode():
    rng = np.random.default_rng(5)
    v = rng.standard_normal(90) + 1j * rng.standard_normal(90)
    u = rng.standard_normal(80)
    plan = CauchyPlan(v, u, 1e-10, "real", leaf=6)
    assert plan.kind == "treecode"
    _check(plan, 1.0 / (v[:, None] - u[None, :]), rng.standard_normal((80, 2)), 1e-10, np.asarray, "treecode")


def test_tight_clusters_far_from_zero():
    rng = np.random.default_rng(11)
    v, u = _nodes(rng, "far-from-zero", 100, 90)
    plan = CauchyPlan(v, u, 1e-12, "real", leaf=4)
    _check(plan, 1.0 / (v[:, None] - u[None, :]), rng.standard_normal((90, 2)), 1e-12, np.asarray, "1e8 clusters")


@pytest.mark.parametrize("m, n", [(7, 300), (300, 7), (1, 50)])
def test_very_unequal_sides(m, n):
    """Most boxes of the smaller side are padding (dropped from every list)."""
    rng = np.random.default_rng(6)
    v, u = rng.uniform(-1, 1, m), rng.uniform(-1, 1, n) + 1e-3
    plan = CauchyPlan(v, u, 1e-12, "real", leaf=4)
    _check(plan, 1.0 / (v[:, None] - u[None, :]), rng.standard_normal((n, 3)), 1e-12, np.asarray, f"{m}x{n}")


@pytest.mark.parametrize("x_shape", [(), (5,), (2, 3), (0, 3)])
@pytest.mark.parametrize("batched_generators", [False, True])
def test_cauchy_like_fast_batches(monkeypatch, x_shape, batched_generators):
    monkeypatch.setattr(fast_cauchy, "LEAF_FACTOR", 1)  # several levels at n = 100
    rng = np.random.default_rng(7)
    m, n, r = 90, 100, 3
    v, u = _nodes(rng, "interlaced", m, n)
    lead = (2,) if batched_generators else ()
    G, H = rng.standard_normal(lead + (m, r)), rng.standard_normal(lead + (r, n))
    W = ldr.cauchy_like(G, H, v, u, method="fast")
    if batched_generators and x_shape:
        x_shape = x_shape[:-1] + (2,)  # broadcasts with the generators' batch (2,)
    x = rng.standard_normal(x_shape + (n,))
    D = (G @ H) / (v[:, None] - u[None, :])
    C = 1.0 / (v[:, None] - u[None, :])
    scale = np.linalg.norm(C, 2) * np.abs(G).max() * np.abs(H).max() * np.linalg.norm(x) * r
    expected = np.einsum("...ij,...j->...i", D, x)
    assert np.linalg.norm(W.matvec(x) - expected) <= 1e-12 * scale
    y = rng.standard_normal(x_shape + (m,))
    assert np.linalg.norm(W.T.matvec(y) - np.einsum("...ij,...i->...j", D, y)) <= 1e-12 * scale


def test_fast_gradients_through_the_tree(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(fast_cauchy, "LEAF_FACTOR", 1)
    rng = np.random.default_rng(8)
    m, n = 60, 56
    v, u = (torch.tensor(a) for a in _nodes(rng, "interlaced", m, n))
    W = ldr.cauchy_like(torch.ones(m, 1, dtype=torch.float64), torch.ones(1, n, dtype=torch.float64), v, u,
                        method="fast")
    assert W._fast_plan(torch.float64, False).levels >= 2
    args = tuple(torch.tensor(a, requires_grad=True) for a in
                 (rng.standard_normal((m, 2)), rng.standard_normal((2, n)), rng.standard_normal((2, n))))
    assert torch.autograd.gradcheck(lambda G, H, x: ldr.cauchy_like(G, H, v, u, method="fast").matvec(x), args,
                                    fast_mode=True)


@pytest.mark.parametrize("f, krylov", [(1.0, False), (1j, False), (0.0, False), (1.0, True)])
def test_vandermonde_routes(monkeypatch, f, krylov):
    """f on the unit circle away from the nodes takes the diagonal route (one DFT of x); f = 0
    the general one; ldr.vandermonde stores the Krylov form."""
    monkeypatch.setattr(fast_cauchy, "LEAF_FACTOR", 1)
    rng = np.random.default_rng(9)
    n = 96
    v = np.exp(1j * np.pi * (2 * np.arange(n) + 1) / n)  # roots of -1: far from the roots of 1 and i
    if krylov:
        W = ldr.vandermonde(v, n, f=f)
        W = type(W)._from_krylov(W.v, W._krylov_G, W.H, W.B)
        W.method = "fast"
        D = np.vander(v, n, increasing=True)
    else:
        G, H = rng.standard_normal((n, 2)), rng.standard_normal((2, n))
        W = ldr.vandermonde_like(G, H, v, f=f, method="fast")
        D = ldr.vandermonde_like(G, H, v, f=f, method="exact").dense()
    x = rng.standard_normal((3, n))
    y = W.matvec(x)
    vplan = next(iter(W._vplans.values()))
    assert vplan.diagonal == (f != 0.0) and vplan.plan.kind == "fmm" and vplan.plan.levels >= 2
    err = np.linalg.norm(y - x @ D.T) / (np.linalg.norm(D, 2) * np.linalg.norm(x))
    assert err <= 1e-12, err


@pytest.mark.parametrize("f, krylov, dtype", [(1.0, False, "complex128"), (1j, False, "complex128"), (0.0, False, "complex128"),
                                             (1.0, True, "complex128"), (-1.0, False, "complex64")])
def test_vandermonde_fast_transpose(monkeypatch, f, krylov, dtype):
    """W^T y through the transposed identity (targets: the roots, sources: the unit-circle nodes)
    equals y W within the tolerance, batched, for both routes and the Krylov form."""
    monkeypatch.setattr(fast_cauchy, "LEAF_FACTOR", 1)
    rng = np.random.default_rng(11)
    m = 96
    n = 96 if f == 1j else 80                             # v**80 hits the roots of 1j
    v = np.exp(1j * np.pi * (2 * np.arange(m) + 1) / m)
    if krylov:
        n = m
        W = ldr.vandermonde(v, n, f=f)
        W = type(W)._from_krylov(W.v, W._krylov_G, W.H, W.B)
        W.method = "fast"
        D = np.vander(v, n, increasing=True)
    else:
        G, H = rng.standard_normal((m, 2)) + 1j * rng.standard_normal((m, 2)), rng.standard_normal((2, n)) + 0j
        G, H, v = (a.astype(dtype) for a in (G, H, v))
        W = ldr.vandermonde_like(G, H, v, f=f, method="fast")
        # The oracle from the same rounded numbers, in complex128.
        D = ldr.vandermonde_like(*(a.astype(np.complex128) for a in (G, H, v)), f=f, method="exact").dense()
    y = (rng.standard_normal((2, 3, m)) + 1j * rng.standard_normal((2, 3, m))).astype(dtype)
    out = W.T.matvec(y)
    vplan = next(iter(W._vplans.values()))
    tplan = vplan.__dict__.get("_transposed")             # built by the product, on first use
    assert tplan is not None and tplan.kind == "fmm" and tplan.levels >= 2
    err = np.linalg.norm(out - y @ D) / (np.linalg.norm(D, 2) * np.linalg.norm(y))
    assert err <= (1e-12 if dtype == "complex128" else 1e-5), err
    adjoint = W.rmatvec(y)                                # the adjoint through the same path
    err = np.linalg.norm(adjoint - y @ D.conj()) / (np.linalg.norm(D, 2) * np.linalg.norm(y))
    assert err <= (1e-12 if dtype == "complex128" else 1e-5), err


def test_vandermonde_transpose_off_the_circle_stays_exact():
    """Nodes inside the disc: the forward product has its (treecode) plan, the transpose has none
    and takes the exact path, also under method="fast" (it does not raise)."""
    rng = np.random.default_rng(12)
    m, n = 70, 60
    v = 0.9 * np.exp(2j * np.pi * rng.random(m))
    G, H = rng.standard_normal((m, 2)), rng.standard_normal((2, n))
    W = ldr.vandermonde_like(G, H, v, f=1.0, method="fast")
    D = ldr.vandermonde_like(G, H, v, f=1.0, method="exact").dense()
    y = rng.standard_normal((4, m))
    assert np.linalg.norm(W.T.matvec(y) - y @ D) <= 1e-13 * np.linalg.norm(D, 2) * np.linalg.norm(y)
    assert next(iter(W._vplans.values())).transposed() is None


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_vandermonde_fast_transpose_sees_in_place_node_edits(monkeypatch):
    """Torch nodes: the transposed plan is rebuilt per product, so an in-place edit of the nodes
    between two products is seen (no stale plan)."""
    import torch

    from ldr.vandermonde_like import VandermondeLike

    calls = []
    original = VandermondeLike._fast_transpose
    monkeypatch.setattr(VandermondeLike, "_fast_transpose", lambda self, *a: calls.append(1) or original(self, *a))

    rng = np.random.default_rng(13)
    m = n = 64
    v = torch.tensor(np.exp(1j * np.pi * (2 * np.arange(m) + 1) / m))
    G = torch.tensor(rng.standard_normal((m, 2)) + 0j)
    H = torch.tensor(rng.standard_normal((2, n)) + 0j)
    W = ldr.vandermonde_like(G, H, v, f=1.0, method="fast")
    y = torch.tensor(rng.standard_normal((3, m)) + 0j)
    W.T.matvec(y)
    with torch.no_grad():
        v.mul_(np.exp(0.5j * np.pi / m))                  # rotate every node by half a spacing
    D = ldr.vandermonde_like(G, H, v, f=1.0, method="exact").dense().numpy()
    err = np.linalg.norm(W.T.matvec(y).numpy() - y.numpy() @ D) / (np.linalg.norm(D, 2) * np.linalg.norm(y.numpy()))
    assert err <= 1e-12, err
    assert len(calls) == 2                                # both products took the fast path


@pytest.mark.parametrize("case", ["real-batched", "unit-circle-float32", "krylov", "outside-disc"])
def test_vandermonde_dense_paths(monkeypatch, case):
    """dense() by the column recursion (nodes in the closed disc, a round-off above 1 allowed)
    or by FFT rows (a node outside), against the np.vander oracle."""
    from test_cauchy_vandermonde_kernels import vandermonde_like_dense

    from ldr.vandermonde_like import VandermondeLike

    calls = []
    for name in ("_dense_by_columns", "_dense_by_rows"):
        original = getattr(VandermondeLike, name)
        monkeypatch.setattr(VandermondeLike, name, lambda self, *a, _f=original, _n=name: calls.append(_n) or _f(self, *a))
    rng = np.random.default_rng(10)
    m, n, f = 40, 33, 0.5
    if case == "real-batched":
        v = rng.uniform(-1, 1, (2, m))
        G, H = rng.standard_normal((2, m, 3)), rng.standard_normal((3, n))
    elif case == "unit-circle-float32":
        v = round_to(np.exp(2j * np.pi * rng.random(m)), "complex64")
        G, H = round_to(rng.standard_normal((m, 2)), "float32"), round_to(rng.standard_normal((2, n)), "float32")
        f = 1.0
    elif case == "krylov":
        v = rng.uniform(-1, 1, m)
        W = ldr.vandermonde(v, n, f=f)
        assert np.linalg.norm(W.dense() - np.vander(v, n, increasing=True)) <= 1e-13 * np.sqrt(m * n)
        assert calls == ["_dense_by_columns"]
        return
    else:
        v = rng.uniform(-1.3, 1.3, m)
        G, H = rng.standard_normal((m, 2)), rng.standard_normal((2, n))
    expected = "_dense_by_rows" if case == "outside-disc" else "_dense_by_columns"
    D = vandermonde_like_dense(G, H, v, f)
    if case == "unit-circle-float32":
        W = ldr.vandermonde_like(G.astype(np.complex64), H.astype(np.complex64), v.astype(np.complex64), f=f)
        tol = 1e-6
    else:
        W = ldr.vandermonde_like(G, H, v, f=f)
        tol = 1e-13
    assert np.linalg.norm(W.dense() - D) <= tol * np.linalg.norm(D)
    assert calls == [expected]

"""Products always reflect the generators (issue 12 §1).

The semantics under test (see "Mutation" in the :class:`ldr.LDRMatrix` notes):

- torch: the matrix reads ``G``, ``H`` and the nodes by reference and keeps nothing derived from
  them between calls, so every way of editing them in place — plain in-place ops, ``.data``,
  ``.numpy()`` views, ``torch.no_grad`` updates, an optimizer step, a hand-written SGD step between
  two ``no_grad`` evaluations — shows up in the next product;
- NumPy: the matrix holds private copies that can never be written (not even after flipping
  ``flags.writeable``), also after ``copy.deepcopy`` and ``pickle``; edits of the caller's arrays
  do not reach it.

Every check compares the products with a dense oracle built from the generators the matrix holds
*now* (``scipy.linalg.solve_sylvester(A, -B, G @ H)`` in complex128), after a first product that
would have filled any cache.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import ldr
from conftest import HAVE_TORCH, NO_TORCH
from tolerance import as_numpy

# Structures whose products are computed from G, H and the nodes. (The Krylov-form
# Vandermonde matrices of ldr.vandermonde and ldr.nn derive G from their row scales: G is an
# output there, not an input, so editing it is not a change of the matrix.)
KINDS = (
    "low_rank",
    "toeplitz_like",
    "toeplitz_like_rect",
    "toeplitz_like_rect_e2",
    "hankel_like",
    "vandermonde_like",
    "cauchy_like",
    "toeplitz",
    "circulant",
    "cauchy",
)
NODE_KINDS = {"vandermonde_like", "cauchy_like", "cauchy"}
CLASSIC = {"toeplitz", "circulant", "cauchy"}  # G, H computed from the arguments
TOL = 1e-9  # float64 products against a solve_sylvester oracle of sizes <= 9


def _inputs(kind, rng):
    """NumPy float64 inputs of one case: (constructor, args) with the arrays in ``args``."""
    n = int(rng.integers(1, 8))
    m = n + int(rng.integers(1, 3)) if kind.startswith("toeplitz_like_rect") else int(rng.integers(1, 8))
    r = int(rng.integers(1, 3))
    G, H = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    if kind == "low_rank":
        return ldr.low_rank, (G, H), {}
    if kind == "toeplitz_like":
        G = rng.standard_normal((n, r))
        return ldr.toeplitz_like, (G, H), {}
    if kind == "toeplitz_like_rect":
        return ldr.toeplitz_like, (G, H), {}
    if kind == "toeplitz_like_rect_e2":
        return ldr.toeplitz_like, (G, H), {"e": 2.0, "f": 0.5}
    if kind == "hankel_like":
        return ldr.hankel_like, (G, H), {}
    if kind == "vandermonde_like":
        return ldr.vandermonde_like, (G, H, rng.uniform(0.3, 0.9, m)), {"f": -1.0}
    if kind == "cauchy_like":
        return ldr.cauchy_like, (G, H, np.arange(m) + rng.uniform(0, 0.3), np.arange(n) + 0.5), {}
    if kind == "toeplitz":
        return ldr.toeplitz, (rng.standard_normal(m), rng.standard_normal(n)), {}
    if kind == "circulant":
        return ldr.circulant, (rng.standard_normal(n),), {}
    if kind == "cauchy":
        return ldr.cauchy, (np.arange(m) + rng.uniform(0, 0.3), np.arange(n) + 0.5), {}
    raise AssertionError(kind)


def _torch_tensors(args, requires_grad):
    import torch

    return tuple(torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad) for a in args)


def _oracle(W):
    """Dense W from the operators and generators the matrix holds now (never from the library's products)."""
    A = as_numpy(W.A.dense()).astype(complex)
    B = as_numpy(W.B.dense()).astype(complex)
    C = (as_numpy(W.G) @ as_numpy(W.H)).astype(complex)
    return scipy.linalg.solve_sylvester(A, -B, C).real


def _assert_reflects(W, rng):
    """``W @ x``, ``W.T @ y``, ``W.matvec`` and ``W.dense()`` all equal the oracle of the current generators."""
    D = _oracle(W)
    m, n = D.shape
    x, y = rng.standard_normal(n), rng.standard_normal(m)
    if W.backend.name == "torch":
        import torch

        xt, yt = torch.tensor(x), torch.tensor(y)
        with torch.no_grad():
            got = [W @ xt, W.T @ yt, W.matvec(xt[None])[0], W.dense()]
    else:
        got = [W @ x, W.T @ y, W.matvec(x[None])[0], W.dense()]
    scale = max(np.linalg.norm(D), 1.0)
    for name, value, expected, norm in zip(
        ("W @ x", "W.T @ y", "W.matvec", "W.dense()"), got, (D @ x, D.T @ y, D @ x, D), (np.linalg.norm(x), np.linalg.norm(y), np.linalg.norm(x), 1.0)
    ):
        error = np.linalg.norm(as_numpy(value) - expected) / (scale * norm)
        assert error <= TOL, f"{name} does not match the current generators: relative error {error:.2e}"


def _first_products(W, rng):
    """Evaluate every product once (fills whatever a matrix might cache)."""
    _assert_reflects(W, rng)


def _edit_targets(W, kind):
    """The tensors a user could edit in place: generators, and the nodes for node-based classes."""
    # ldr.cauchy's G and H are broadcast views of ones (nothing to edit there): its nodes are.
    targets = [] if kind == "cauchy" else [W.G, W.H]
    if kind in NODE_KINDS:
        targets.append(W.A.v)
    return targets


# -- torch: every in-place edit shows up -----------------------------------------------------------

TORCH_EDITS = ("inplace", "data", "numpy_view", "no_grad", "optimizer", "sgd_between_no_grad")


def _torch_edit(edit, W, kind, rng):
    import torch

    targets = _edit_targets(W, kind)
    # Small multiplicative/additive changes keep node-based matrices away from collisions.
    if edit == "inplace":
        for t in targets:
            t.mul_(1.25)
    elif edit == "data":
        for t in targets:
            t.data.add_(0.125)
    elif edit == "numpy_view":
        for t in targets:
            t.detach().numpy()[...] *= 0.75
    elif edit == "no_grad":
        with torch.no_grad():
            for t in targets:
                t.add_(torch.full_like(t, 0.0625))
    elif edit == "optimizer":
        params = [t for t in targets if t.requires_grad]
        optimizer = torch.optim.SGD(params, lr=0.05)
        x = torch.tensor(rng.standard_normal(W.shape[1]))
        (W @ x).square().sum().backward()
        optimizer.step()
    elif edit == "sgd_between_no_grad":
        # The commonest hand-written loop: evaluate under no_grad, take a gradient step on .data,
        # evaluate again under no_grad.
        x = torch.tensor(rng.standard_normal(W.shape[1]))
        with torch.no_grad():
            W @ x
        params = [t for t in targets if t.requires_grad]
        grads = torch.autograd.grad((W @ x).square().sum(), params, allow_unused=True)
        for p, g in zip(params, grads):
            if g is not None:
                p.data.add_(-0.05 * g)
        with torch.no_grad():
            W @ x
    else:
        raise AssertionError(edit)


def _changed(before, W, kind):
    return any(not np.array_equal(b, as_numpy(t)) for b, t in zip(before, _edit_targets(W, kind)))


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("edit", TORCH_EDITS)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16))
def test_torch_products_follow_in_place_edits(edit, kind, seed):
    rng = np.random.default_rng(seed)
    make, args, kwargs = _inputs(kind, rng)
    # Leaf tensors; .numpy() views and plain in-place ops need tensors without grad.
    requires_grad = edit in ("data", "no_grad", "optimizer", "sgd_between_no_grad")
    # Classic constructors compute G, H from their arguments: built from plain tensors, those are
    # leaves, and become the parameters.
    W = make(*_torch_tensors(args, requires_grad and kind not in CLASSIC), **kwargs)
    for t in _edit_targets(W, kind):
        if requires_grad and not t.requires_grad:
            t.requires_grad_(True)
    _first_products(W, rng)
    before = [as_numpy(t) for t in _edit_targets(W, kind)]
    _torch_edit(edit, W, kind, rng)
    if edit in ("inplace", "data", "numpy_view", "no_grad"):
        assert _changed(before, W, kind), "the edit did not change anything; the test would prove nothing"
    _assert_reflects(W, rng)


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
def test_torch_issue_example_hand_written_sgd():
    """The report of issue 12: ``G.data.mul_(2)`` and an SGD step through ``.data`` were ignored."""
    import torch

    G, H, x = torch.ones(4, 1, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    W = ldr.toeplitz_like(G, H)
    torch.testing.assert_close(W @ x, torch.full((4,), 2.0, dtype=torch.float64))
    G.data.mul_(2.0)
    torch.testing.assert_close(W @ x, torch.full((4,), 4.0, dtype=torch.float64))
    torch.testing.assert_close(W @ x, W.dense() @ x)
    G.numpy()[:] *= 2
    torch.testing.assert_close(W @ x, torch.full((4,), 8.0, dtype=torch.float64))


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
def test_torch_layer_sgd_between_no_grad_evaluations():
    """ldr.nn: a layer's matrix built once, parameters updated through .data, evaluated under no_grad."""
    import torch

    from ldr.nn import LDRLinear

    torch.manual_seed(0)
    layer = LDRLinear(6, 6, structure="toeplitz_like", rank=2, bias=False).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    with torch.no_grad():
        W = layer.ldr_matrix()
        W.matvec(x)
    loss = layer(x).square().sum()
    loss.backward()
    for p in layer.parameters():
        p.data.add_(-0.1 * p.grad)
    with torch.no_grad():
        torch.testing.assert_close(W.matvec(x), x @ layer.dense_weight().T)
        torch.testing.assert_close(layer(x), x @ layer.dense_weight().T)


# -- NumPy: immutable, through every copy ----------------------------------------------------------

NUMPY_COPIES = ("original", "deepcopy", "pickle", "transpose_parent")


def _numpy_copy(W, how):
    if how == "original":
        return W
    if how == "deepcopy":
        return copy.deepcopy(W)
    if how == "pickle":
        return pickle.loads(pickle.dumps(W))
    if how == "transpose_parent":
        return copy.deepcopy(W.T).T
    raise AssertionError(how)


def _numpy_arrays(W, kind):
    arrays = [W.G, W.H]
    return arrays + [op.v for op in (W.A, W.B) if hasattr(op, "v")]


@pytest.mark.parametrize("how", NUMPY_COPIES)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16))
def test_numpy_matrices_cannot_be_edited(how, kind, seed):
    """Every array a NumPy matrix reads refuses writes and refuses to become writable again."""
    rng = np.random.default_rng(seed)
    make, args, kwargs = _inputs(kind, rng)
    W = make(*args, **kwargs)
    _first_products(W, rng)
    W = _numpy_copy(W, how)
    for a in _numpy_arrays(W, kind):
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 1.0
        with pytest.raises(ValueError, match="WRITEABLE"):
            a.flags.writeable = True
        base = a
        while isinstance(base, np.ndarray):
            with pytest.raises(ValueError, match="WRITEABLE"):
                base.flags.writeable = True
            base = base.base
    _assert_reflects(W, rng)


@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16))
def test_numpy_matrices_copy_their_inputs(kind, seed):
    """Editing the caller's arrays after construction does not change the matrix."""
    rng = np.random.default_rng(seed)
    make, args, kwargs = _inputs(kind, rng)
    args = tuple(np.array(a) for a in args)
    W = make(*args, **kwargs)
    D = _oracle(W)
    _first_products(W, rng)
    for a in args:
        a *= 1.5
    np.testing.assert_allclose(_oracle(W), D, rtol=1e-12, atol=1e-12)
    _assert_reflects(W, rng)


def test_numpy_writable_source_drops_the_cache():
    """A cache is only ever used while its sources are provably immutable; a writable one drops it."""
    rng = np.random.default_rng(5)
    W = ldr.toeplitz_like(rng.standard_normal((5, 2)), rng.standard_normal((2, 5)))
    x = rng.standard_normal(5)
    W @ x
    assert W._cache, "a frozen NumPy matrix should cache its generator spectra"
    # Simulate a bypass of the constructor: G swapped for a writable array, then edited.
    writable = np.array(W.G)
    W.G = writable
    writable *= 3.0
    np.testing.assert_allclose(W @ x, _oracle(W) @ x, rtol=1e-12)
    assert not W._cache


def test_numpy_deepcopy_and_pickle_do_not_share_or_thaw():
    rng = np.random.default_rng(6)
    W = ldr.toeplitz_like(rng.standard_normal((6, 2)), rng.standard_normal((2, 6)))
    x = rng.standard_normal(6)
    y = W @ x
    for twin in (copy.deepcopy(W), pickle.loads(pickle.dumps(W))):
        assert not twin.G.flags.writeable and not twin.H.flags.writeable
        assert twin.backend is W.backend  # the one NumPy backend, not a stray copy
        np.testing.assert_allclose(twin @ x, y, rtol=1e-13)
        with pytest.raises(ValueError):
            twin.G.flags.writeable = True


def test_numpy_krylov_form_vandermonde_is_frozen_and_cached():
    # ldr.vandermonde stores Krylov row scales instead of G: they must be as immutable as a
    # validated G (also after deepcopy/pickle), so that the cached factors cannot go stale.
    v = np.array([0.5, 0.9, -0.7])
    W = ldr.vandermonde(v, 6)
    expected = np.vander(v, 6, increasing=True) @ np.arange(6.0)
    for clone in (W, copy.deepcopy(W), pickle.loads(pickle.dumps(W))):
        for array in (clone._krylov_G, clone.H):
            with pytest.raises(ValueError, match="read-only"):
                array[...] = 3.0
        np.testing.assert_allclose(clone @ np.arange(6.0), expected, rtol=1e-13)
        np.testing.assert_allclose(clone @ np.arange(6.0), expected, rtol=1e-13)  # from the cache
        assert clone._cache, "the frozen Krylov form should let the product factors be cached"

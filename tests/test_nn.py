"""Tests of :class:`ldr.nn.LDRLinear`: weights against independent dense oracles, the
initialisation gains, gradients, dtypes, state_dict, errors, torch.compile and a training run."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

torch = pytest.importorskip("torch")

import ldr  # noqa: E402
from ldr.nn import (  # noqa: E402
    STRUCTURES,
    LDRLinear,
    cauchy_gain,
    cauchy_nodes,
    shift_pair_gain,
    vandermonde_nodes,
    vandermonde_row_gains,
)
from tolerance import as_numpy, assert_close  # noqa: E402

# (structure, out_features, in_features, structure_kwargs): square, wide, tall and non-default corners.
CASES = [
    ("low_rank", 5, 7, {}),
    ("toeplitz_like", 6, 6, {}),
    ("toeplitz_like", 5, 7, {}),
    ("toeplitz_like", 7, 4, {"e": -1.0, "f": 0.5}),
    ("hankel_like", 6, 6, {}),
    ("hankel_like", 5, 8, {"e": 1.0, "f": -1.0}),
    ("vandermonde_like", 6, 6, {}),
    ("vandermonde_like", 5, 8, {"f": 0.0}),
    ("vandermonde_like", 7, 3, {"f": 0.5}),
    ("cauchy_like", 6, 4, {}),
    ("circulant", 7, 7, {}),
    ("circulant", 6, 6, {"f": 0.0}),
]
CASE_IDS = [f"{s}-{m}x{n}-{''.join(f'{k}{v}' for k, v in kw.items())}" for s, m, n, kw in CASES]


def make_layer(structure, m, n, kwargs, *, seed=0, rank=2, **options):
    """A layer initialised from an explicit seed (without touching the global RNG state)."""
    rank = None if structure == "circulant" else rank
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LDRLinear(n, m, structure=structure, rank=rank, **kwargs, **options)


# -- independent dense oracles (NumPy, float64) ----------------------------------------------------
def shift(n, f):
    Z = np.diag(np.ones(n - 1), -1)
    Z[0, n - 1] += f
    return Z


def f_circulant(u, f):
    """C_f(u)[k, j] = u[k - j] for k >= j, f u[k - j + n] otherwise, entry by entry."""
    n = len(u)
    return np.array([[u[k - j] if k >= j else f * u[k - j + n] for j in range(n)] for k in range(n)])


def sylvester(A, B, C):
    return scipy.linalg.solve_sylvester(A, -B, C)


def oracle_weight(layer):
    """The dense weight built from the layer's parameters without the library."""
    m, n, kw = layer.out_features, layer.in_features, layer.structure_kwargs
    s = layer.structure
    if s == "circulant":
        return scipy.linalg.circulant(as_numpy(layer.c))
    G, H = as_numpy(layer.G), as_numpy(layer.H)
    if s == "low_rank":
        return G @ H
    if s == "toeplitz_like":
        return sylvester(shift(m, kw["e"]), shift(n, kw["f"]), G @ H)
    if s == "hankel_like":
        return sylvester(shift(m, kw["e"]), shift(n, kw["f"]).T, G @ H)
    if s == "vandermonde_like":
        # Complex rows over the m-th roots of -1 in the upper half plane (and -1 for odd m); a
        # conjugate pair's two real rows are the real and imaginary parts of one complex row.
        p = m // 2
        w = np.exp(1j * np.pi * (2 * np.arange(m - p) + 1) / m)
        V = np.vander(w, n, increasing=True)
        g = np.concatenate([G[:p] + 1j * G[p : 2 * p], G[2 * p :]])
        Y = sum(np.diag(g[:, l]) @ V @ f_circulant(H[l, ::-1], kw["f"]) for l in range(G.shape[1]))
        return np.concatenate([Y.real[:p], Y.imag[:p], Y.real[p:]])
    v, u = np.arange(m), np.arange(n) + 0.5
    return (G @ H) / (v[:, None] - u[None, :])


def exact_gain(A, B, m, n):
    """(1/mn) sum_ab ||W(e_a e_b^T)||_F^2 by m n dense Sylvester solves."""
    total = 0.0
    for a in range(m):
        for b in range(n):
            C = np.zeros((m, n))
            C[a, b] = 1.0
            total += np.sum(sylvester(A, B, C) ** 2)
    return total / (m * n)


# -- the weight and the forward pass ------------------------------------------------------------------
@pytest.mark.parametrize("structure, m, n, kwargs", CASES, ids=CASE_IDS)
def test_weight_and_forward_match_dense_oracle(structure, m, n, kwargs):
    layer = make_layer(structure, m, n, kwargs, dtype=torch.float64)
    oracle = oracle_weight(layer)
    scale = np.linalg.norm(oracle)
    assert_close(layer.dense_weight(), oracle, scale=scale, dtype="float64", what="dense_weight()")
    rng = np.random.default_rng(1)
    b = as_numpy(layer.bias)
    for shape in [(n,), (3, n), (2, 3, n)]:
        x = rng.standard_normal(shape)
        y = layer(torch.as_tensor(x))
        assert y.shape == shape[:-1] + (m,)
        assert_close(y, x @ oracle.T + b, scale=scale * np.linalg.norm(x), dtype="float64", what=f"forward {shape}")
        # The brief's identity, through the library's own dense reconstruction.
        expected = torch.as_tensor(x) @ layer.dense_weight().T + layer.bias
        assert_close(y, as_numpy(expected), scale=scale * np.linalg.norm(x), dtype="float64", what="vs dense_weight()")


@pytest.mark.parametrize("structure, m, n, kwargs", CASES, ids=CASE_IDS)
def test_ldr_matrix_satisfies_its_displacement_equation(structure, m, n, kwargs):
    layer = make_layer(structure, m, n, kwargs, dtype=torch.float64)
    W = layer.ldr_matrix()
    assert W.shape == (m, n) and isinstance(W, ldr.LDRMatrix)
    dense = as_numpy(W.dense())
    residual = as_numpy(W.A.dense()) @ dense - dense @ as_numpy(W.B.dense()) - as_numpy(W.G) @ as_numpy(W.H)
    scale = np.linalg.norm(dense) + np.linalg.norm(as_numpy(W.G) @ as_numpy(W.H))
    assert np.linalg.norm(residual) <= 1e-12 * scale


def test_float32_forward_against_float64_oracle():
    layer = make_layer("toeplitz_like", 48, 48, {}, rank=4)
    x = np.random.default_rng(2).standard_normal((5, 48))
    oracle = oracle_weight(layer)
    y = layer(torch.as_tensor(x, dtype=torch.float32))
    assert y.dtype == torch.float32
    assert_close(y, x @ oracle.T + as_numpy(layer.bias), scale=np.linalg.norm(oracle) * np.linalg.norm(x), dtype="float32")


def test_forward_rejects_wrong_input_size():
    layer = make_layer("toeplitz_like", 6, 6, {})
    with pytest.raises(ValueError, match=r"`x` must have shape \(\.\.\., n\) with 6 entries on axis -1"):
        layer(torch.ones(3, 5))


# -- initialisation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "m, n, e, f",
    [(6, 6, 1.0, -1.0), (5, 5, 1.0, 0.0), (6, 4, 1.0, 0.0), (3, 5, 1.0, 0.0), (4, 6, -1.0, 1.0), (4, 4, 0.5, -2.0), (1, 1, 1.0, -1.0)],
)
def test_shift_pair_gain_matches_dense_sylvester_solves(m, n, e, f):
    expected = exact_gain(shift(m, e), shift(n, f), m, n)
    assert math.isclose(shift_pair_gain(m, n, e, f), expected, rel_tol=1e-10)
    # Hankel-like: the reversal permutes columns and leaves the gain unchanged.
    assert math.isclose(exact_gain(shift(m, e), shift(n, f).T, m, n), expected, rel_tol=1e-10)


@pytest.mark.parametrize("m, n, f", [(5, 5, 0.0), (4, 7, -1.0), (6, 3, 0.5)])
def test_vandermonde_row_gains_match_dense_sums(m, n, f):
    v = np.cos(np.pi * (2 * np.arange(m) + 1) / (2 * m))  # any real nodes: the formula is general
    V = np.vander(v, n, increasing=True)
    expected = np.zeros(m)
    for b in range(n):  # g = e_a, h = e_b: row a of V C_f(J e_b)
        expected += np.sum((V @ f_circulant(np.eye(n)[b][::-1], f)) ** 2, axis=1) / n
    np.testing.assert_allclose(vandermonde_row_gains(v, n, f), expected, rtol=1e-12)


def test_fixed_nodes():
    for m in (1, 2, 5, 64, 191):
        w = vandermonde_nodes(m)
        assert w.shape == ((m + 1) // 2,) and np.all(w.imag >= 0) and len(np.unique(w)) == w.size
        np.testing.assert_allclose(np.abs(w), 1.0, rtol=0, atol=1e-15)
        np.testing.assert_allclose(w**m, -1.0, rtol=0, atol=1e-12)
        if m % 2:
            assert w[-1] == -1.0  # exactly real: its row has no imaginary partner
    v, u = cauchy_nodes(4, 6)
    assert np.min(np.abs(v[:, None] - u[None, :])) == 0.5
    assert math.isclose(cauchy_gain(v, u), np.mean((v[:, None] - u[None, :]) ** -2.0))


@pytest.mark.parametrize(
    "structure, m, n",
    [(s, m, n) for s in STRUCTURES for m, n in [(48, 48), (40, 72), (72, 40)] if s != "circulant" or m == n],
)
def test_init_entry_variance_matches_nn_linear(structure, m, n):
    seeds = range(16)
    ours = np.mean([np.mean(as_numpy(make_layer(structure, m, n, {}, seed=s, rank=3).dense_weight()) ** 2) for s in seeds])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        linear = np.mean([np.mean(as_numpy(torch.nn.Linear(n, m).weight) ** 2) for _ in seeds])
    target = 1.0 / (3 * n)  # Var U(-1/sqrt(n), 1/sqrt(n))
    assert math.isclose(linear, target, rel_tol=0.05)
    # 16 draws of a structured matrix: its entries are correlated, so the estimate varies by
    # ~5 % (Vandermonde-like, with its heavy-tailed rows, more); a wrong gain is off by >= 2x.
    assert 0.8 < ours / linear < 1.25, f"{structure}: mean W^2 = {ours:.3e}, nn.Linear {linear:.3e}"


def test_init_bias_and_circulant_bounds():
    layer = make_layer("circulant", 50, 50, {})
    bound = 1 / math.sqrt(50)
    assert float(layer.bias.detach().abs().max()) <= bound and float(layer.c.detach().abs().max()) <= bound
    assert make_layer("toeplitz_like", 6, 6, {}, bias=False).bias is None


def test_reset_parameters_redraws():
    layer = make_layer("toeplitz_like", 8, 8, {})
    before = layer.G.detach().clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.G)


# -- gradients ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("structure, m, n, kwargs", CASES, ids=CASE_IDS)
def test_gradcheck(structure, m, n, kwargs):
    layer = make_layer(structure, m, n, kwargs, dtype=torch.float64)
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    x = torch.randn(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)

    def forward(x, *values):
        return torch.func.functional_call(layer, dict(zip(names, values)), (x,))

    assert torch.autograd.gradcheck(forward, (x, *params))


def test_gradients_match_dense_weight_path():
    layer = make_layer("toeplitz_like", 12, 9, {}, dtype=torch.float64)
    x = torch.randn(4, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    fast = torch.autograd.grad(layer(x).square().sum(), list(layer.parameters()))
    slow = torch.autograd.grad((x @ layer.dense_weight().T + layer.bias).square().sum(), list(layer.parameters()))
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# -- dtypes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("structure", ["toeplitz_like", "vandermonde_like", "circulant"])
def test_half_precision_input_computes_in_float32(structure, half):
    layer = make_layer(structure, 32, 32, {})
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(5)).to(getattr(torch, half))
    y = layer(x)
    assert y.dtype == x.dtype
    reference = layer(x.float())  # the same rounded input, in float32
    scale = np.linalg.norm(as_numpy(layer.dense_weight())) * np.linalg.norm(as_numpy(x))
    assert_close(y, as_numpy(reference), scale=scale, dtype=half, what=f"{half} forward")


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_module_keeps_nodes_in_float32(half):
    # 300 + 300 interlaced Cauchy nodes collide in bfloat16 (8 mantissa bits); they must not be cast.
    layer = make_layer("cauchy_like", 300, 300, {})
    reference = make_layer("cauchy_like", 300, 300, {})
    layer.to(getattr(torch, half))
    assert layer.G.dtype == getattr(torch, half)
    assert layer.row_nodes.dtype == torch.float32 and torch.equal(layer.row_nodes, reference.row_nodes)
    with torch.no_grad():  # the float32 layer with the same rounded parameters
        for p, q in zip(reference.parameters(), layer.parameters()):
            p.copy_(q.float())
    x = torch.randn(3, 300, generator=torch.Generator().manual_seed(6)).to(getattr(torch, half))
    y = layer(x)
    assert y.dtype == x.dtype and bool(torch.isfinite(y).all())
    scale = np.linalg.norm(as_numpy(reference.dense_weight())) * np.linalg.norm(as_numpy(x))
    assert_close(y, as_numpy(reference(x.float())), scale=scale, dtype=half)


def test_float64_module():
    layer = make_layer("vandermonde_like", 6, 5, {}).double()
    assert layer.vandermonde_real.dtype == torch.float64
    assert layer(torch.ones(5, dtype=torch.float64)).dtype == torch.float64


# -- state_dict and repr --------------------------------------------------------------------------------
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_state_dict_round_trip(structure):
    m = n = 10
    source = make_layer(structure, m, n, {}, seed=1)
    target = make_layer(structure, m, n, {}, seed=2)
    x = torch.randn(2, n, generator=torch.Generator().manual_seed(7))
    assert not torch.allclose(source(x), target(x))
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    target.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)
    expected = {"c", "bias"} if structure == "circulant" else {"G", "H", "bias"}
    # The Vandermonde tables follow from the sizes and f: rebuilt, not saved.
    expected |= {"cauchy_like": {"row_nodes", "column_nodes"}}.get(structure, set())
    assert set(source.state_dict()) == expected


def test_extra_repr_and_lazy_attribute():
    layer = ldr.nn.LDRLinear(8, 4, structure="hankel_like", rank=3, bias=False)
    assert repr(layer) == (
        "LDRLinear(in_features=8, out_features=4, structure='hankel_like', rank=3, bias=False, e=1.0, f=0.0)"
    )
    assert "structure='toeplitz_like', rank=4" in repr(ldr.nn.LDRLinear(5, 5))


def test_import_ldr_does_not_load_torch():
    code = "import sys, ldr; assert 'torch' not in sys.modules and 'ldr.nn' not in sys.modules; ldr.nn; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- argument errors ---------------------------------------------------------------------------------------
BAD_ARGUMENTS = [
    (dict(structure="toeplitz"), ValueError,
     r"`structure` must be one of 'low_rank', 'toeplitz_like', 'hankel_like', 'vandermonde_like', 'cauchy_like', 'circulant'; got 'toeplitz'"),
    (dict(rank=0), ValueError, r"`rank` \(the displacement rank r\) must be at least 1; got 0"),
    (dict(rank=2.5), TypeError, r"`rank` must be a positive integer; got float 2.5"),
    (dict(in_features=0), ValueError, r"`in_features` must be a positive integer; got 0"),
    (dict(out_features=-3), ValueError, r"`out_features` must be a positive integer; got -3"),
    (dict(in_features=4.0), TypeError, r"`in_features` must be a positive integer; got float 4.0"),
    (dict(structure="circulant", out_features=6), ValueError,
     r"a circulant weight is square: .* got in_features=4, out_features=6"),
    (dict(structure="circulant", rank=2), ValueError, r"a circulant has displacement rank 1: `rank` must be 1 or None; got 2"),
    (dict(structure="vandermonde_like", e=1.0), TypeError,
     r"unknown argument\(s\) 'e' for structure 'vandermonde_like'; it accepts: f"),
    (dict(structure="low_rank", f=0.0), TypeError, r"unknown argument\(s\) 'f' for structure 'low_rank'; it accepts: none"),
    (dict(e=1.0, f=1.0), ldr.SingularDisplacementError, r"share an eigenvalue"),
    (dict(f=0.5j), TypeError, r"`f` must be a real number \(the layer has real weights\); got 0.5j"),
    (dict(f=float("nan")), ValueError, r"`f` must be finite; got nan"),
    (dict(dtype=torch.int32), TypeError, r"`dtype` must be a real floating torch dtype .* got torch.int32"),
    (dict(dtype=torch.complex64), TypeError, r"`dtype` must be a real floating torch dtype"),
    # vandermonde_nodes(2) = (i,) and its conjugate: with n = 2, w^n = -1, so f = -1 is singular.
    (dict(structure="vandermonde_like", in_features=2, out_features=2, f=-1.0), ValueError,
     r"`f` = -1.0 equals w_0\*\*2 for the fixed node w_0 = 1j, so \(A, Z_f\) is singular; choose another f "
     r"\(the default, 1.0, is always safe\)"),
]


@pytest.mark.parametrize("overrides, error, message", BAD_ARGUMENTS, ids=[m[:40] for _, _, m in BAD_ARGUMENTS])
def test_bad_arguments(overrides, error, message):
    arguments = dict(in_features=4, out_features=4)
    arguments.update(overrides)
    with pytest.raises(error, match=message):
        LDRLinear(**arguments)


# -- devices --------------------------------------------------------------------------------------------------
def test_forward_on_device_matches_cpu(device):
    cpu = make_layer("toeplitz_like", 24, 16, {}, rank=3)
    moved = make_layer("toeplitz_like", 24, 16, {}, rank=3).to(device)
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(8))
    y = moved(x.to(device))
    assert y.device.type == device
    scale = np.linalg.norm(as_numpy(cpu.dense_weight())) * np.linalg.norm(as_numpy(x))
    assert_close(y, as_numpy(cpu(x)), scale=scale, dtype="float32")
    y.sum().backward()
    assert moved.G.grad.device.type == device


@pytest.mark.parametrize("structure", ["vandermonde_like", "cauchy_like"])
def test_nodes_follow_the_module_device(device, structure):
    layer = make_layer(structure, 8, 6, {}, device=device)
    assert all(b.device.type == device for b in layer.buffers())
    assert layer(torch.ones(6, device=device)).device.type == device


# -- torch.compile --------------------------------------------------------------------------------------------
# Dynamo warns that it traces through functools.lru_cache and that inductor has no complex
# kernels; importing it touches the deprecated torch.jit.script_method.
def compile_warnings(test):
    test = pytest.mark.filterwarnings("ignore::UserWarning")(test)
    return pytest.mark.filterwarnings("ignore::DeprecationWarning")(test)


@compile_warnings
@pytest.mark.parametrize(
    "structure, m, n", [("toeplitz_like", 12, 8), ("vandermonde_like", 8, 8), ("circulant", 8, 8), ("cauchy_like", 6, 8)]
)
def test_torch_compile_matches_eager(structure, m, n):
    # aot_eager runs dynamo's tracing and AOT autograd (where a mis-trace would show) without the
    # minutes of C++ code generation inductor needs on a small CPU; see test_torch_compile_inductor.
    # The rectangular Toeplitz-like case traces the core's NumPy code (T_ef): dynamo (torch 2.13)
    # mis-traces a [:0:-1] slice there, giving wrong products silently (avoided in toeplitz_like).
    torch._dynamo.reset()
    layer = make_layer(structure, m, n, {})
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(9))
    compiled = torch.compile(layer, backend="aot_eager")
    y = compiled(x)
    torch.testing.assert_close(y, layer(x))
    grads = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
    eager = torch.autograd.grad(layer(x).square().sum(), list(layer.parameters()))
    for a, b in zip(grads, eager):
        torch.testing.assert_close(a, b)


@compile_warnings
@pytest.mark.slow
def test_torch_compile_inductor():
    torch._dynamo.reset()
    layer = make_layer("toeplitz_like", 16, 16, {})
    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(10))
    torch.testing.assert_close(torch.compile(layer)(x), layer(x))


# -- training -----------------------------------------------------------------------------------------------------
@pytest.fixture
def one_thread():
    # The CI machines are small and shared: two intra-op threads on a busy 2-core box are ~10x
    # slower than one for these tiny products.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_training_recovers_a_toeplitz_like_target(one_thread):
    n, r, samples = 64, 2, 48
    g = torch.Generator().manual_seed(11)
    target = ldr.toeplitz_like(torch.randn(n, r, generator=g), torch.randn(r, n, generator=g)).dense()
    x, x_test = torch.randn(samples, n, generator=g), torch.randn(1024, n, generator=g)
    y = x @ target.T
    y = y + 0.01 * y.std() * torch.randn(y.shape, generator=g)
    y_test = x_test @ target.T
    variance = float(y_test.var())

    layer = make_layer("toeplitz_like", n, n, {}, rank=r, bias=False, seed=12)

    def test_loss():
        with torch.no_grad():
            return float((layer(x_test) - y_test).square().mean()) / variance

    initial = test_loss()
    # Threshold: held-out MSE below 1 % of the target's variance. The untrained layer scores
    # ~100 % (its output is uncorrelated with the target), and with 48 samples of a 64-dim
    # input no structure-blind linear fit can get there: the minimum-norm dense least-squares
    # solution sees only a 48-dim subspace of inputs and misses ~25 % of the variance (checked
    # below). Reaching 1 % means the layer found the Toeplitz-like W* (2rn = 256 numbers) itself.
    threshold = 0.01
    # L-BFGS: the loss is a bilinear least-squares problem in (G, H); quasi-Newton steps with a
    # line search converge in ~150 iterations, deterministically (Adam needs thousands).
    optimiser = torch.optim.LBFGS(
        layer.parameters(), lr=1.0, max_iter=25, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=0.0, tolerance_change=0.0,
    )

    def closure():
        optimiser.zero_grad()
        loss = (layer(x) - y).square().mean() / variance
        loss.backward()
        return loss

    history = [initial]
    for _ in range(12):
        optimiser.step(closure)
        history.append(test_loss())
        if history[-1] < threshold:
            break
    assert 0.5 < initial < 2.0, initial
    assert history[-1] < threshold, f"held-out MSE / Var(y) after training: {history}"

    dense = (torch.linalg.pinv(x.double()) @ y.double()).T
    dense_loss = float((x_test.double() @ dense.T - y_test.double()).square().mean()) / variance
    assert dense_loss > 10 * threshold, dense_loss


# -- real Vandermonde-like weights on the unit circle ------------------------------------------------------
@pytest.mark.parametrize("m", [1, 4, 7])
def test_pair_rotation_operator(m):
    """left/right/T of the real operator A agree with its dense matrix; its spectrum is the m-th roots of -1."""
    from ldr.nn import _PairRotation

    A = _PairRotation(m)
    D = A.dense()
    rng = np.random.default_rng(m)
    X, Y = rng.standard_normal((2, m, 3)), rng.standard_normal((2, 3, m))
    np.testing.assert_allclose(A.left(X), D @ X, atol=1e-14)
    np.testing.assert_allclose(A.right(Y), Y @ D, atol=1e-14)
    np.testing.assert_allclose(A.T.dense(), D.T, atol=0)
    np.testing.assert_allclose(np.sort_complex(A.eigenvalues()), np.sort_complex(np.linalg.eigvals(D)), atol=1e-12)
    np.testing.assert_allclose(A.eigenvalues() ** m, -1.0, atol=1e-12)
    assert torch.is_tensor(A.left(torch.as_tensor(X)))


@pytest.mark.parametrize("m, n", [(6, 6), (5, 8), (9, 4)])
def test_hydra_blocks_and_the_layer_share_one_parametrisation(m, n):
    """A HyDRA Vandermonde-like block (k = 1) and LDRLinear build the same W from the same G, H."""
    from hydra.blocks import block_structure

    layer = make_layer("vandermonde_like", m, n, {}, dtype=torch.float64)
    blocks = block_structure("vandermonde_like", m, n, 2)
    W = blocks.dense(layer.G[None, None], layer.H[None, None], blocks.buffers())[0, 0]
    torch.testing.assert_close(W, layer.dense_weight(), rtol=0, atol=1e-13)
    assert blocks.f == layer.structure_kwargs["f"] == ldr.nn.vandermonde_shift(m, n)

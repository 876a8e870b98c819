"""ldr.nn: the square Toeplitz-like product's custom backward (spectra reused from the forward).

Checked against autograd through the core's ``W.matvec`` and a dense oracle, with gradcheck in
float64, for 5-smooth and other sizes (the e = 1 side transforms at length n only when n is
5-smooth), every kind of (e, f), batch axes and half-precision inputs.
"""

import pytest
import torch

import ldr
from ldr.nn import LDRLinear, square_toeplitz_like_matvec

# (n, r, e, f): circular e side (n 5-smooth), padded e side (n = 7, 11), f = 0, e = -1, |e| != 1.
CASES = [(8, 2, 1.0, -1.0), (7, 1, 1.0, -1.0), (12, 3, 1.0, 0.0), (10, 2, -1.0, 1.0), (11, 2, 0.5, -2.0),
         (1, 1, 1.0, -1.0)]


def _close(a, b, tol=1e-12):
    a, b = a.detach(), b.detach()
    err = float((a - b).norm() / max(float(b.norm()), 1e-300))
    assert err <= tol, f"relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("n, r, e, f", CASES)
def test_gradcheck_float64(n, r, e, f):
    gen = torch.Generator().manual_seed(n * 10 + r)
    G = torch.randn(n, r, generator=gen, dtype=torch.float64, requires_grad=True)
    H = torch.randn(r, n, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, n, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, G, H: square_toeplitz_like_matvec(G, H, x, e, f), (x, G, H))


@pytest.mark.parametrize("n, r, e, f", CASES)
def test_matches_autograd_through_core_matvec_and_dense(n, r, e, f):
    gen = torch.Generator().manual_seed(n + r)
    G = torch.randn(n, r, generator=gen, dtype=torch.float64, requires_grad=True)
    H = torch.randn(r, n, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, n, generator=gen, dtype=torch.float64, requires_grad=True)
    up = torch.randn(5, n, generator=gen, dtype=torch.float64)
    W = ldr.ToeplitzLike._trusted(ldr.Shift(n, e), ldr.Shift(n, f), G, H)
    fast = square_toeplitz_like_matvec(G, H, x, e, f)
    _close(fast, x @ W.dense().T)
    got = torch.autograd.grad((fast * up).sum(), (x, G, H))
    expected = torch.autograd.grad((W.matvec(x) * up).sum(), (x, G, H))
    for a, b in zip(got, expected):
        _close(a, b)


def _graph_nodes(fn, depth=4):
    names = set()
    if fn is None or depth == 0:
        return names
    names.add(type(fn).__name__)
    for child, _ in fn.next_functions:
        names |= _graph_nodes(child, depth - 1)
    return names


def test_layer_uses_it_and_keeps_the_layer_contract():
    torch.manual_seed(0)
    layer = LDRLinear(16, 16, structure="toeplitz_like", rank=2).double()
    x = torch.randn(4, 16, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert "_SquareToeplitzLikeBackward" in _graph_nodes(y.grad_fn)
    _close(y, x @ layer.dense_weight().T + layer.bias)
    up = torch.randn(4, 16, dtype=torch.float64)
    got = torch.autograd.grad((y * up).sum(), (x, layer.G, layer.H, layer.bias))
    ref = torch.autograd.grad(((layer.ldr_matrix().matvec(x) + layer.bias) * up).sum(),
                              (x, layer.G, layer.H, layer.bias))
    for a, b in zip(got, ref):
        _close(a, b)


def test_half_input_computes_in_float32_and_casts_back():
    torch.manual_seed(1)
    layer = LDRLinear(12, 12, structure="toeplitz_like", rank=1)
    x = torch.randn(3, 12).to(torch.bfloat16).requires_grad_(True)
    y = layer(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and layer.G.grad.dtype == torch.float32
    ref = x.float() @ layer.dense_weight().T + layer.bias
    _close(y.float(), ref.detach(), tol=1e-2)


def test_double_backward_refused():
    G = torch.randn(6, 1, dtype=torch.float64, requires_grad=True)
    H = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(square_toeplitz_like_matvec(G, H, x, 1.0, -1.0).square().sum(), (x,),
                                create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        gx.sum().backward()


def test_layer_gradients_on_device(device):
    torch.manual_seed(2)
    layer = LDRLinear(64, 64, structure="toeplitz_like", rank=2).to(device)
    x = torch.randn(5, 64, device=device, requires_grad=True)
    up = torch.randn(5, 64, device=device)
    got = torch.autograd.grad((layer(x) * up).sum(), (x, layer.G, layer.H))
    ref = torch.autograd.grad((layer.ldr_matrix().matvec(x) * up).sum(), (x, layer.G, layer.H))
    for a, b in zip(got, ref):
        _close(a, b, tol=1e-5)

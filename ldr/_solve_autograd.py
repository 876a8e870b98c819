r"""Gradients of :func:`ldr.solve` on torch, by implicit differentiation.

The elimination itself (``ldr.gko``) updates arrays in place and is not recorded. For
:math:`x = W^{-1} b` with a real loss :math:`\ell`, torch's convention gives
:math:`\bar b = W^{-H} \bar x` and :math:`\bar W = -\bar b\, x^H`. W depends linearly on its
generators (and smoothly on its nodes), so the generators' gradients are the vector-Jacobian
product of :math:`(G, H, v, u) \mapsto W x` (x held fixed) with the output gradient
:math:`-\bar b`: one transposed solve with the stored factors and one fast product, recorded
by autograd. Nothing of size :math:`n^2` enters the graph beyond the factors kept for backward.
"""

from __future__ import annotations

import torch

from .ldrmatrix import _Transposed
from .operators import Diagonal

__all__ = ["solve_with_gradient", "logabsdet_with_gradient", "records_graph"]


def records_graph(*arrays):
    """Whether autograd is recording and any of ``arrays`` requires grad."""
    return torch.is_grad_enabled() and any(getattr(a, "requires_grad", False) for a in arrays)


def _with_arrays(W, arrays):
    """The matrix W with its generator and node arrays replaced by ``arrays`` (same order as ``W._arrays()``)."""
    if isinstance(W, _Transposed):
        return _with_arrays(W.T, arrays).T
    G, H, *nodes = arrays
    operators = []
    for op in (W.A, W.B):
        if isinstance(op, Diagonal):
            replaced = object.__new__(Diagonal)
            replaced.v, replaced.size, replaced.name = nodes.pop(0), op.size, op.name
            op = replaced
        operators.append(op)
    return type(W)._trusted(operators[0], operators[1], G, H)


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, W, refine, check, compute, plain, *arrays):
        from .solvers import _factorize, _solve_rows

        factorization = _factorize(W, compute, plain)
        x = _solve_rows(W, factorization, rows, refine, check, compute)
        ctx.factorization, ctx.W, ctx.rows_complex = factorization, W, rows.is_complex()
        ctx.save_for_backward(x, *arrays)
        return x

    @staticmethod
    def backward(ctx, grad_x):
        x, *arrays = ctx.saved_tensors
        factorization = ctx.factorization
        # b̄ = W^{-H} x̄ = conj(W^{-T} conj(x̄)), rows layout.
        grad_b = torch.conj(factorization.solve_rows(torch.conj(grad_x), transpose=True)).resolve_conj()
        if not ctx.rows_complex and grad_b.is_complex():  # real rows (the Levinson route): real gradient
            grad_b = grad_b.real
        wanted = [i for i, a in enumerate(arrays) if ctx.needs_input_grad[6 + i]]
        grads = [None] * len(arrays)
        if wanted:
            with torch.enable_grad():
                leaves = [a.detach().requires_grad_(i in wanted) for i, a in enumerate(arrays)]
                W = _with_arrays(ctx.W, leaves)
                product = torch.swapaxes(W @ torch.swapaxes(x.detach(), -1, -2), -1, -2)
                found = torch.autograd.grad(
                    product, [leaves[i] for i in wanted], grad_outputs=-grad_b.to(product.dtype), allow_unused=True
                )
            for i, g in zip(wanted, found):
                grads[i] = _sum_to(g, arrays[i]) if g is not None else None
        grad_rows = grad_b if ctx.needs_input_grad[0] else None
        return (grad_rows, None, None, None, None, None, *grads)


def _sum_to(grad, like):
    """Reduce a broadcast gradient back to ``like``'s shape and dtype."""
    while grad.ndim > like.ndim:
        grad = grad.sum(0)
    for axis, size in enumerate(like.shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis, keepdim=True)
    if not like.is_complex() and grad.is_complex():
        grad = grad.real
    return grad.to(like.dtype)


def solve_with_gradient(W, rows, refine, check, compute, plain=None):
    """:func:`ldr.solve`'s rows-layout solve, differentiable in ``rows`` and in W's arrays.

    ``plain``: the entries of a plain Toeplitz or Hankel W (``ldr.solvers._plain_toeplitz``),
    which selects the Levinson route.
    """
    return _Solve.apply(rows, W, refine, check, compute, plain, *W._arrays())


class _LogAbsDet(torch.autograd.Function):
    r""":math:`\log|\det W|` with :math:`\partial/\partial W = \operatorname{Re}(W^{-T})` (conjugated for complex W)."""

    @staticmethod
    def forward(ctx, value, W, factorization, *arrays):
        ctx.W, ctx.factorization = W, factorization
        ctx.save_for_backward(*arrays)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, grad_value):
        arrays = ctx.saved_tensors
        W, factorization = ctx.W, ctx.factorization
        wanted = [i for i, a in enumerate(arrays) if ctx.needs_input_grad[3 + i]]
        grads = [None] * len(arrays)
        if wanted:
            n = W.shape[0]
            eye = torch.eye(n, dtype=factorization.complex_dtype, device=arrays[0].device)
            eye = eye.expand(factorization.batch_shape + (n, n))
            # Rows e_i solved: row i is W^{-1} e_i, so the rows layout holds W^{-T} as a matrix.
            inverse_T = factorization.solve_rows(eye)
            # For the real loss, torch's gradient with respect to W.dense() is conj(W^{-T}).
            cotangent = torch.conj(inverse_T) * grad_value[..., None, None]
            with torch.enable_grad():
                leaves = [a.detach().requires_grad_(i in wanted) for i, a in enumerate(arrays)]
                D = _with_arrays(W, leaves).dense()
                cotangent = cotangent if D.is_complex() else cotangent.real
                found = torch.autograd.grad(
                    D, [leaves[i] for i in wanted], grad_outputs=cotangent.to(D.dtype), allow_unused=True
                )
            for i, g in zip(wanted, found):
                grads[i] = _sum_to(g, arrays[i]) if g is not None else None
        return (None, None, None, *grads)


def logabsdet_with_gradient(W, factorization, value):
    """:func:`ldr.slogdet`'s ``logabsdet`` (``value``, computed) with a gradient to W's arrays."""
    return _LogAbsDet.apply(value, W, factorization, *W._arrays())

"""The torch backend (CPU and CUDA, differentiable through ``torch.fft``).

Every primitive is an ordinary differentiable torch operation, so autograd reaches the
generators, the nodes and the input without a hand-written backward. Half-precision inputs
are computed in float32 (cuFFT/pocketfft have no bfloat16 transforms for arbitrary lengths).
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Backend, swaps_to_permutation

__all__ = ["TorchBackend"]

_KIND = {
    torch.bool: "b",
    torch.uint8: "u",
    torch.int8: "i",
    torch.int16: "i",
    torch.int32: "i",
    torch.int64: "i",
    torch.float16: "f",
    torch.bfloat16: "f",
    torch.float32: "f",
    torch.float64: "f",
    torch.complex64: "c",
    torch.complex128: "c",
}


class TorchBackend(Backend):
    """:class:`~ldr.backends.base.Backend` for ``torch.Tensor`` with ``torch.fft`` transforms."""

    name = "torch"

    def is_array(self, x):
        return isinstance(x, torch.Tensor)

    def asarray(self, x, dtype=None, like=None):
        device = like.device if isinstance(like, torch.Tensor) else None
        if isinstance(x, torch.Tensor):
            return x if dtype is None else x.to(dtype)
        if isinstance(x, np.ndarray) and dtype is None:
            return torch.as_tensor(x, device=device)
        return torch.as_tensor(x, dtype=dtype, device=device)

    def to_numpy(self, x):
        x = x.detach().cpu().resolve_conj()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()  # NumPy has no bfloat16

    def zeros(self, shape, dtype, like=None):
        return torch.zeros(shape, dtype=dtype, device=None if like is None else like.device)

    def arange(self, n, dtype, like=None):
        return torch.arange(n, dtype=dtype, device=None if like is None else like.device)

    def dtype_kind(self, dtype):
        return _KIND.get(dtype, "O")

    def dtype_name(self, dtype):
        return str(dtype)

    def promote(self, *dtypes):
        result = dtypes[0]
        for d in dtypes[1:]:
            result = torch.promote_types(result, d)
        return result

    def compute_dtype(self, *dtypes):
        result = dtypes[0] if dtypes else torch.float64
        for d in dtypes[1:]:
            result = torch.promote_types(result, d)
        if _KIND.get(result) in ("b", "i", "u"):
            return torch.float64
        if result in (torch.float16, torch.bfloat16):
            return torch.float32
        if result == torch.complex32:
            return torch.complex64
        return result

    def check_dtypes(self, named_dtypes):
        # Like torch.matmul, refuse float32 with float64 (or real with complex) silently mixed.
        floating = {k: d for k, d in named_dtypes.items() if _KIND.get(d) in ("f", "c")}
        if len({self.real_dtype(d) for d in floating.values()}) > 1:
            listing = ", ".join(f"`{k}` is {d}" for k, d in floating.items())
            raise TypeError(f"generators and nodes must share one dtype; got {listing} (convert with .to(dtype))")

    def operand_dtypes(self, generator_dtype, x_dtype, out_dtype):
        if x_dtype in (torch.float16, torch.bfloat16):
            return x_dtype  # half in, half out: computed in float32 FFTs, cast back
        # Real data with complex generators of the same precision is fine (complex result);
        # integer generators compute in float64 whatever x is (the dtype rule, as in NumPy).
        floating = _KIND.get(x_dtype) in ("f", "c") and _KIND.get(generator_dtype) in ("f", "c")
        if floating and self.real_dtype(x_dtype) != self.real_dtype(generator_dtype):
            raise TypeError(
                f"`x` has dtype {x_dtype} but the generators are {generator_dtype}; "
                f"convert one of them (e.g. x.to({generator_dtype}))"
            )
        return out_dtype

    def real_dtype(self, dtype):
        return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)

    def complex_dtype(self, dtype):
        return {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(dtype, dtype)

    def eps(self, dtype):
        return float(torch.finfo(dtype).eps)

    def cast(self, x, dtype):
        return x if x.dtype == dtype else x.to(dtype)

    @staticmethod
    def _empty_transform(x, length, dtype):
        # MKL and cuFFT refuse an empty batch (RuntimeError); NumPy returns an empty result.
        return torch.zeros(x.shape[:-1] + (length,), dtype=dtype, device=x.device)

    def rfft(self, x, n):
        if x.numel() == 0:
            return self._empty_transform(x, n // 2 + 1, self.complex_dtype(x.dtype))
        return torch.fft.rfft(x, n=n, dim=-1)

    def irfft(self, x, n):
        if x.numel() == 0:
            return self._empty_transform(x, n, self.real_dtype(x.dtype))
        return torch.fft.irfft(x, n=n, dim=-1)

    def fft(self, x, n):
        if x.numel() == 0:
            return self._empty_transform(x, n, self.complex_dtype(x.dtype))
        return torch.fft.fft(x, n=n, dim=-1)

    def ifft(self, x, n):
        if x.numel() == 0:
            return self._empty_transform(x, n, self.complex_dtype(x.dtype))
        return torch.fft.ifft(x, n=n, dim=-1)

    def flip(self, x):
        return torch.flip(x, dims=(-1,))

    def concatenate(self, arrays, axis=-1):
        return torch.cat(list(arrays), dim=axis)

    def pad_last(self, x, before, after):
        return torch.nn.functional.pad(x, (before, after))

    def swapaxes(self, x, a, b):
        return torch.transpose(x, a, b)

    def expand_dims(self, x, axis):
        return torch.unsqueeze(x, axis)

    def broadcast_to(self, x, shape):
        return torch.broadcast_to(x, tuple(shape))

    def einsum(self, spec, *operands):
        return torch.einsum(spec, *operands)

    def matmul(self, a, b):
        return torch.matmul(a, b)

    def take(self, x, index, axis=-1):
        # Negative indices count from the end, as in np.take (index_select refuses them).
        index = np.asarray(index)
        index = np.where(index < 0, index + x.shape[axis], index)
        index = torch.as_tensor(index, dtype=torch.long, device=x.device)
        return torch.index_select(x, axis, index.reshape(-1)).reshape(
            x.shape[:axis % x.ndim] + tuple(np.shape(index)) + x.shape[axis % x.ndim + 1:]
        )

    def vander(self, v, n):
        # cumprod rather than v ** j: exact 0 ** 0 = 1 and a finite gradient at v = 0.
        ones = torch.ones(v.shape + (1,), dtype=v.dtype, device=v.device)
        if n == 1:
            return ones
        repeated = v.unsqueeze(-1).expand(v.shape + (n - 1,))
        return torch.cat([ones, torch.cumprod(repeated, dim=-1)], dim=-1)

    def sum(self, x, axis):
        return torch.sum(x, dim=axis)

    def cumsum(self, x, axis=-1):
        return torch.cumsum(x, dim=axis)

    def segment_sum(self, x, starts):
        starts = np.asarray(starts)
        lengths = np.diff(np.append(starts, x.shape[0]))
        ids = torch.as_tensor(np.repeat(np.arange(starts.shape[0]), lengths), dtype=torch.long, device=x.device)
        out = torch.zeros((starts.shape[0],) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
        return out.index_add(0, ids, x)

    def sliding_windows(self, x, size, step):
        return torch.movedim(x.unfold(0, size, step), -1, 1)

    def conj(self, x):
        return torch.conj(x) if x.is_complex() else x

    def exp(self, x):
        return torch.exp(x)

    def log(self, x):
        return torch.log(x)

    def where(self, condition, a, b):
        return torch.where(condition, a, b)

    def requires_grad(self, x):
        return torch.is_grad_enabled() and x.requires_grad

    def recompute(self, function, *arrays):
        if torch.is_grad_enabled() and any(a.requires_grad for a in arrays):
            from torch.utils.checkpoint import checkpoint

            return checkpoint(function, *arrays, use_reentrant=False)
        return function(*arrays)

    def real(self, x):
        return torch.real(x) if x.is_complex() else x

    def svd(self, x):
        return torch.linalg.svd(x, full_matrices=False)

    def solve_triangular(self, a, b, lower, unit_diagonal=False, transpose=False):
        if transpose:  # the transpose of the lower triangle is upper, and vice versa
            a, lower = a.mT, not lower
        return torch.linalg.solve_triangular(a, b, upper=not lower, unitriangular=unit_diagonal)

    def lu_factor(self, a):
        lu, swaps, _ = torch.linalg.lu_factor_ex(a)  # never raises on a zero pivot
        return lu, swaps_to_permutation(swaps.cpu().numpy() - 1, a.shape[-2])  # 1-based swaps

    def all_finite(self, x):
        return bool(torch.isfinite(x).all())

    def has_data(self, x):
        return not x.is_meta

    def device(self, x):
        return x.device

    # No cache_allowed override: torch tensors can change without a trace (``.data``, ``.numpy()``
    # views, ``torch.no_grad`` updates bypass the version counter), so nothing derived from them
    # is kept across calls (the base class answers False).

"""Array-library backends.

The algorithms of :mod:`ldr` are written once against the small interface of
:class:`~ldr.backends.base.Backend`; each module here implements it for one array library.
:func:`get_backend` picks the backend from the arrays a call receives and refuses to mix
libraries (data are never moved between NumPy and torch behind the user's back).
"""

from __future__ import annotations

import importlib
import sys

from .base import Backend
from .numpy import NumpyBackend

__all__ = ["Backend", "get_backend", "backend_named", "is_torch_tensor"]

_NUMPY = NumpyBackend()
_TORCH = None


def _torch_backend() -> Backend:
    global _TORCH
    if _TORCH is None:
        try:
            module = importlib.import_module("ldr.backends.torch")
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the torch backend needs PyTorch: pip install 'ldr-hydra[torch]' "
                "(or pip install torch)"
            ) from exc
        _TORCH = module.TorchBackend()
    return _TORCH


def backend_named(name: str) -> Backend:
    """The backend called ``name`` (``"numpy"`` or ``"torch"``), e.g. when unpickling a matrix."""
    if name == "numpy":
        return _NUMPY
    if name == "torch":
        return _torch_backend()
    raise ValueError(f"unknown array backend {name!r}; expected 'numpy' or 'torch'")


def is_torch_tensor(x) -> bool:
    """True when ``x`` is a ``torch.Tensor``; never imports torch itself."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def get_backend(*arrays, names=None) -> Backend:
    """Return the backend for ``arrays``.

    Parameters
    ----------
    *arrays : array_like or None
        The arrays of one call. ``None`` entries and Python scalars are ignored.
    names : sequence of str, optional
        Argument names, used in the error message when libraries are mixed.

    Returns
    -------
    Backend
        The torch backend when any array is a ``torch.Tensor``, the NumPy backend otherwise.

    Raises
    ------
    TypeError
        When torch tensors and NumPy arrays are mixed in one call.

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.backends import get_backend
    >>> get_backend(np.ones(3)).name
    'numpy'
    """
    names = list(names) if names is not None else [f"argument {i}" for i in range(len(arrays))]
    torch_args = [n for a, n in zip(arrays, names) if is_torch_tensor(a)]
    if not torch_args:
        return _NUMPY
    import numpy as np

    numpy_args = [n for a, n in zip(arrays, names) if isinstance(a, np.ndarray)]
    if numpy_args:
        raise TypeError(
            f"cannot mix array libraries: {', '.join(torch_args)} "
            f"{'is a torch.Tensor' if len(torch_args) == 1 else 'are torch.Tensors'} but "
            f"{', '.join(numpy_args)} {'is a numpy.ndarray' if len(numpy_args) == 1 else 'are numpy.ndarrays'}; "
            "convert them explicitly (torch.as_tensor / tensor.numpy())"
        )
    return _torch_backend()

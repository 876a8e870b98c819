"""Shared fixtures: the deterministic hypothesis profile and the array backends under test.

Every backend-parametrised test receives a :class:`cases.ArrayBackend` that converts the NumPy
arrays a test builds (from an explicit seed) into the array type under test, so one test body
runs on NumPy, torch on CPU and torch on CUDA (skipped with a reason when no GPU is present).
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings

from cases import ArrayBackend

# Deterministic: the same examples on every run and machine, no example database, no deadline
# (the first call of a size pays for FFT plans). 12 examples per property keeps the ldr suite
# within a few minutes on 2 cores; raise it locally with HYPOTHESIS_PROFILE=ldr-thorough.
settings.register_profile(
    "ldr",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=12,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ldr-thorough", parent=settings.get_profile("ldr"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ldr"))

HAVE_TORCH = importlib.util.find_spec("torch") is not None

if HAVE_TORCH:
    import torch

    # The test tensors are tiny: with torch's intra-op thread pool on a loaded 2-core machine,
    # thread hand-offs dominate (20x slower per product, measured). Results do not depend on it.
    torch.set_num_threads(1)


def cuda_available() -> bool:
    return HAVE_TORCH and torch.cuda.is_available()


NO_TORCH = "torch is not installed (pip install 'ldr-hydra[torch]')"
NO_CUDA = "needs a CUDA device; torch.cuda.is_available() is False on this machine"


BACKEND_PARAMS = [
    pytest.param(("numpy", "cpu"), id="numpy"),
    pytest.param(("torch", "cpu"), id="torch", marks=pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)),
    pytest.param(
        ("torch", "cuda"),
        id="torch-cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not cuda_available(), reason=NO_CUDA)],
    ),
]

DEVICE_PARAMS = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not cuda_available(), reason=NO_CUDA)]),
]


# Session scope: hypothesis refuses function-scoped fixtures inside @given, and the backends
# carry no state.
@pytest.fixture(scope="session", params=BACKEND_PARAMS)
def backend(request):
    """The array backend under test: NumPy, torch (CPU) and torch on CUDA."""
    name, device = request.param
    return ArrayBackend(name, device)


@pytest.fixture(scope="session", params=DEVICE_PARAMS)
def device(request):
    """A torch device: ``"cpu"``, and ``"cuda"`` when one is present."""
    if not HAVE_TORCH:
        pytest.skip(NO_TORCH)
    return request.param


@pytest.fixture(scope="session")
def torch_backend(device):
    """The torch :class:`ArrayBackend` on each available device."""
    return ArrayBackend("torch", device)


@pytest.fixture(scope="session")
def numpy_backend():
    return ArrayBackend("numpy")

r"""Several named adapters on one model: :func:`add_adapter`, :func:`set_adapter`, :func:`disable_adapter`, :func:`delete_adapter`.

peft's multi-adapter calls for hydra's own API. Each named adapter is a full :func:`hydra.inject`
of its configuration on the same frozen base layers; exactly one adapter (or none) is attached
to the model at a time, the others are kept aside with their trained values. Switching swaps
module objects (no copy, no re-initialisation), so an optimizer built on an adapter's
parameters stays valid when it is attached again. Everything that works on an injected model
(:func:`hydra.save_pretrained`, :func:`hydra.merge`, training, ...) acts on the active adapter.

Examples
--------
>>> import torch, hydra
>>> from hydra import adapters
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 8))
>>> x = torch.randn(2, 8)
>>> base = model(x)
>>> adapters.add_adapter(model, "a", hydra.LoRAConfig(rank=1, target_modules=["0"]))
>>> adapters.add_adapter(model, "b", hydra.HydraConfig(k=2, pool_size=28, target_modules=["0"]))
>>> adapters.active_adapter(model), adapters.list_adapters(model)
('a', ['a', 'b'])
>>> with torch.no_grad():
...     _ = model[0].lora_B.add_(1.0)                     # "train" adapter a
>>> adapters.set_adapter(model, "b")
>>> type(model[0]).__name__, bool(torch.equal(model(x), base))     # b is still at its start
('HydraLinear', True)
>>> adapters.set_adapter(model, "a")
>>> with adapters.disable_adapter(model):
...     bool(torch.equal(model(x), base))
True
>>> bool(torch.allclose(model(x), base + x @ model[0].delta_weight().T, atol=1e-6))
True
"""

from __future__ import annotations

import contextlib

from . import pretrained as _pretrained
from . import targets as _targets
from .layers import AdapterLinear
from .model import inject

__all__ = ["add_adapter", "set_adapter", "disable_adapter", "delete_adapter", "active_adapter", "list_adapters"]

_KEY = "_hydra_named_adapters"


def _state(model):
    """``{"active": name or None, "adapters": {name: {path: adapter}}}`` kept on the model (not a submodule)."""
    return model.__dict__.setdefault(_KEY, {"active": None, "adapters": {}})


def _attached(model):
    """``{path: adapter}`` of the adapter layers now in ``model``, every path of a shared layer included."""
    return {n: m for n, m in model.named_modules(remove_duplicate=False) if isinstance(m, AdapterLinear)}


def _put(model, path, module):
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def _detach(model, action):
    layers = _attached(model)
    merged = sorted({n for n, a in layers.items() if a.merged})
    if merged:
        raise ValueError(f"cannot {action} while layers {merged} are merged; call hydra.unmerge(model) first")
    for path, adapter in layers.items():
        _put(model, path, _targets.original_module(adapter.base_layer))
    _pretrained.release_transformers_save(model)
    return layers


def _attach(model, layers):
    for path, adapter in layers.items():
        _put(model, path, adapter)
    if layers:
        _pretrained.guard_transformers_save(model)


def add_adapter(model, name, config):
    """Inject ``config`` as the adapter ``name``; the first one added becomes active, later ones wait.

    Parameters
    ----------
    model : nn.Module
        A model without adapters, or one managed by this module.
    name : str
    config : HydraConfig, LoRAConfig or LDRConfig

    Raises
    ------
    ValueError
        A name already in use, a model holding adapters injected outside this module, or any
        error of :func:`hydra.inject` (the model is left as it was).
    """
    state = _state(model)
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty string; got {name!r}")
    if name in state["adapters"]:
        raise ValueError(f"an adapter named {name!r} exists already; adapters: {list(state['adapters'])}")
    if state["active"] is None and _attached(model):
        raise ValueError(
            "the model has adapters injected with hydra.inject; call hydra.unload(model) first, or add every adapter "
            "with hydra.adapters.add_adapter"
        )
    active = _detach(model, "add an adapter")
    try:
        inject(model, config)
    except BaseException:
        _attach(model, active)
        raise
    state["adapters"][name] = _attached(model)
    if state["active"] is None:
        state["active"] = name
    else:
        _detach(model, "add an adapter")
        _attach(model, active)


def set_adapter(model, name):
    """Attach the adapter ``name`` (detaching the active one). Raises ValueError for an unknown name or a merged model."""
    state = _state(model)
    if name not in state["adapters"]:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(state['adapters'])}")
    _detach(model, "switch adapters")
    _attach(model, state["adapters"][name])
    state["active"] = name


@contextlib.contextmanager
def disable_adapter(model):
    """Context manager: the base model alone inside the ``with`` block, the active adapter again after it."""
    layers = _detach(model, "disable the adapter")
    try:
        yield model
    finally:
        _attach(model, layers)


def delete_adapter(model, name):
    """Forget the adapter ``name``; deleting the active one leaves the model without adapters."""
    state = _state(model)
    if name not in state["adapters"]:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(state['adapters'])}")
    if state["active"] == name:
        _detach(model, "delete the active adapter")
        state["active"] = None
    del state["adapters"][name]


def active_adapter(model):
    """The name of the attached adapter, or ``None``."""
    return _state(model)["active"]


def list_adapters(model):
    """The names of the model's adapters, in the order they were added."""
    return list(_state(model)["adapters"])

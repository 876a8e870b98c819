r"""HyDRA as a peft method: ``get_peft_model(model, HydraPeftConfig(...))``, tested against peft 0.21.2.

Importing this module registers the method ``"hydra"`` with peft; afterwards peft's own API
works unchanged: ``get_peft_model``, ``PeftModel.save_pretrained`` / ``PeftModel.from_pretrained``
(import this module first in the loading process too), ``add_adapter`` / ``set_adapter`` /
``disable_adapter()`` / ``delete_adapter``, ``merge_and_unload``, ``modules_to_save``, and the
Trainer's peft checkpoints. Needs ``pip install 'ldr-hydra[peft]'`` (peft pinned to the tested
release).

What it touches in peft
-----------------------
peft 0.21.2 offers ``peft.utils.register_peft_method`` to add a method, but that function only
accepts a name already listed in the ``peft.utils.PeftType`` enum. This module therefore adds one
member, ``PeftType.HYDRA = "HYDRA"``, to that enum (the only non-public step: it writes the
enum's member tables ``_member_map_``, ``_value2member_map_``, ``_member_names_``), then calls
the public ``register_peft_method(name="hydra", ...)``. Nothing else in peft is modified; no
peft function is replaced. Both steps are idempotent.

Keys. Each adapted layer holds one :class:`~hydra.HydraLinear` per adapter name in the
``ModuleDict`` ``hydra_adapters`` (the base layer is shared, not registered twice), so the saved
keys are ``<layer>.hydra_adapters.pool.trainable`` (peft removes the adapter name) and load under
any adapter name. Seeds come from the layer's name in the base model, as in
:func:`hydra.inject`: the fixed pool part, index maps and nodes are regenerated identically, and
a peft adapter equals a :func:`hydra.inject` adapter of the same configuration.

Examples
--------
>>> import torch, peft
>>> import hydra.peft_integration as hp
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
>>> x = torch.randn(3, 8)
>>> before = model(x)
>>> peft_model = peft.get_peft_model(model, hp.HydraPeftConfig(k=2, pool_size=28, target_modules=["0"]))
>>> bool(torch.equal(peft_model(x), before))          # ΔW_eff = 0 at initialisation
True
>>> peft_model.get_nb_trainable_parameters()          # (pool, all): 28 of 90 + 28
(28, 118)
>>> with torch.no_grad():
...     _ = peft_model.base_model.model[0].hydra_adapters["default"].pool.trainable.add_(0.1)
>>> adapted = peft_model(x)
>>> merged = peft_model.merge_and_unload()            # a plain nn.Sequential again
>>> type(merged[0]).__name__, bool(torch.allclose(merged(x), adapted, atol=1e-6))
('Linear', True)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import peft
import torch
import torch.nn.functional as F
from peft.config import PeftConfig
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer, check_adapters_to_merge
from peft.utils import PeftType, register_peft_method
from torch import nn

from .config import HydraConfig
from .layers import HydraLinear
from .targets import Conv1DLinear, _conv1d_type

__all__ = ["HydraPeftConfig", "HydraPeftModel", "HydraPeftLinear", "PEFT_VERSION", "register"]

#: The peft release this integration is tested against (the ``peft`` extra pins it).
PEFT_VERSION = "0.21.2"
_NAME = "hydra"


@dataclass
class HydraPeftConfig(PeftConfig):
    r"""peft configuration of HyDRA adapters: the fields of :class:`hydra.HydraConfig` plus peft's.

    Parameters
    ----------
    structure, k, rank, pool_size, fixed_ratio, seed, scale, init_std, path
        As in :class:`hydra.HydraConfig`.
    target_modules : list of str or str
        As in peft: name suffixes, a regular expression, or ``"all-linear"``.
    exclude_modules : list of str or str, optional
        As in peft.
    modules_to_save : list of str, optional
        As in peft: modules trained in full and saved with the adapter.

    Notes
    -----
    ``shared_pool=True`` is not offered here (one pool across layers does not fit peft's
    per-layer adapters); use :func:`hydra.inject` for it.
    """

    structure: str = field(default="toeplitz", metadata={"help": "block structure (see hydra.HydraConfig)"})
    k: int = field(default=4, metadata={"help": "blocks per axis"})
    rank: int = field(default=1, metadata={"help": "displacement rank of each block"})
    pool_size: int = field(default=768, metadata={"help": "pool entries per adapted matrix"})
    fixed_ratio: float = field(default=0.0, metadata={"help": "fixed random fraction of the pool"})
    seed: int = field(default=0, metadata={"help": "seed of pools, index maps and nodes"})
    scale: float = field(default=1.0, metadata={"help": "s in W0 x + s dW x"})
    init_std: float = field(default=0.02, metadata={"help": "std of the pool's initial values"})
    path: str = field(default="auto", metadata={"help": "how dW x is computed (runtime only)"})
    target_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "modules to adapt"})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "modules to skip"})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "modules trained in full"})

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = _peft_type()
        if self.target_modules is None:
            raise ValueError("`target_modules` must be given, e.g. ['query', 'value'] or 'all-linear'")
        if isinstance(self.target_modules, (list, tuple)):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, (list, tuple)):
            self.exclude_modules = set(self.exclude_modules)
        self.hydra_config("_")                               # validate the HyDRA fields now

    def hydra_config(self, name):
        """The :class:`hydra.HydraConfig` of one adapted layer (``target_modules=[name]``)."""
        return HydraConfig(structure=self.structure, k=self.k, rank=self.rank, pool_size=self.pool_size,
                           fixed_ratio=self.fixed_ratio, seed=self.seed, target_modules=[name], scale=self.scale,
                           init_std=self.init_std, path=self.path)


class HydraPeftLayer(BaseTunerLayer):
    """peft layer mixin: one :class:`~hydra.HydraLinear` per adapter name, all on the same base layer."""

    adapter_layer_names = ("hydra_adapters",)
    other_param_names = ()

    def __init__(self, base_layer, **kwargs):
        self.base_layer = base_layer
        self.hydra_adapters = nn.ModuleDict({})
        self._disable_adapters = False
        self.merged_adapters = []
        self.kwargs = kwargs
        base = self.get_base_layer()
        conv1d = _conv1d_type()
        if conv1d is not None and isinstance(base, conv1d):
            view = Conv1DLinear(base)
        elif isinstance(base, nn.Linear):
            view = base
        else:
            raise TypeError(f"hydra adapts nn.Linear and GPT-2 Conv1D layers; got {type(base).__name__}")
        object.__setattr__(self, "_linear", view)            # not registered: the base appears once
        self.in_features, self.out_features = view.in_features, view.out_features

    def update_layer(self, adapter_name, config, key, inference_mode=False):
        adapter = HydraLinear(self._linear, config.hydra_config(key), name=key)
        # The adapter shares the base layer; keep it out of the adapter's registered modules so the
        # state dict (and peft's adapter checkpoint) holds the base weights once, outside hydra_adapters.
        del adapter._modules["base_layer"]
        object.__setattr__(adapter, "base_layer", self._linear)
        self.hydra_adapters[adapter_name] = adapter
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters, inference_mode=inference_mode)

    def get_delta_weight(self, adapter_name):
        r""":math:`s\,\Delta W` of one adapter, shape (out, in), in the adapter's compute dtype."""
        return self.hydra_adapters[adapter_name].delta_weight()


class HydraPeftLinear(nn.Module, HydraPeftLayer):
    """The peft layer replacing an ``nn.Linear`` or GPT-2 ``Conv1D``: ``base(x) + Σ_active s ΔW x``."""

    def __init__(self, base_layer, adapter_name, config, key, **kwargs):
        super().__init__()
        HydraPeftLayer.__init__(self, base_layer, **kwargs)
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, config, key, inference_mode=config.inference_mode)

    @torch.no_grad()
    def merge(self, safe_merge=False, adapter_names=None):
        for name in check_adapters_to_merge(self, adapter_names):
            if name not in self.hydra_adapters:
                continue
            weight = self._linear.weight                     # (out, in); a view of Conv1D's (in, out)
            adapter = self.hydra_adapters[name]
            snapshot = adapter._update_snapshot()              # unmerge subtracts exactly this update
            delta = adapter.delta_weight().to(weight.dtype)
            if safe_merge and not torch.isfinite(weight + delta).all():
                raise ValueError(f"NaNs detected in the merged weights; the adapter {name!r} seems to be broken")
            weight.add_(delta)
            self._merged_snapshots()[name] = snapshot
            self.merged_adapters.append(name)

    @torch.no_grad()
    def unmerge(self):
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.")
            return
        while self.merged_adapters:
            name = self.merged_adapters[-1]
            if name in self.hydra_adapters:
                weight = self._linear.weight
                snapshot = self._merged_snapshots().get(name)
                # Computed before anything is popped: a refusal leaves the layer merged as it was.
                weight.sub_(self.hydra_adapters[name]._delta_weight_at(snapshot).to(weight.dtype))
                self._merged_snapshots().pop(name, None)
            self.merged_adapters.pop()

    def _merged_snapshots(self):
        """``{adapter name: HydraLinear._update_snapshot()}`` of the merged adapters."""
        if "_hydra_merged_snapshots" not in self.__dict__:
            object.__setattr__(self, "_hydra_merged_snapshots", {})
        return self.__dict__["_hydra_merged_snapshots"]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        if self.merged:
            return result
        for name in self.active_adapters:
            if name in self.hydra_adapters:
                delta = self.get_delta_weight(name)
                result = result + F.linear(x.to(delta.dtype), delta).to(result.dtype)
        return result

    def __repr__(self):
        return "hydra." + super().__repr__()


class HydraPeftModel(BaseTuner):
    """peft tuner of HyDRA adapters (created by ``peft.get_peft_model`` from a :class:`HydraPeftConfig`)."""

    prefix: str = "hydra_"
    tuner_layer_cls = HydraPeftLayer
    target_module_mapping = {}

    @classmethod
    def _remove_adapter_name_from_key(cls, key, adapter_name):
        # peft's default drops the adapter name when it is the last or second-to-last part of a key; hydra's
        # adapter tensors sit deeper (hydra_adapters.<adapter>.pool.trainable), so drop it after hydra_adapters.
        # peft builds the loading map from this same function, so saving and loading stay symmetric.
        head, marker, tail = key.rpartition(f"hydra_adapters.{adapter_name}.")
        return f"{head}hydra_adapters.{tail}" if marker else key

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key, **kwargs):
        if current_key is None:
            raise ValueError("peft passed no module name (current_key); hydra seeds each layer by its name")
        if isinstance(target, HydraPeftLayer):
            target.update_layer(adapter_name, config, current_key, inference_mode=config.inference_mode)
            return
        new_module = HydraPeftLinear(target, adapter_name, config, current_key)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)                  # an added adapter is not trainable until set
        self._replace_module(parent, target_name, new_module, target)


def _peft_type():
    """``PeftType.HYDRA``, adding the member to peft's enum on first use (see the module notes)."""
    member = PeftType.__members__.get("HYDRA")
    if member is not None:
        return member
    member = str.__new__(PeftType, "HYDRA")
    member._name_, member._value_ = "HYDRA", "HYDRA"
    type.__setattr__(PeftType, "HYDRA", member)          # EnumType.__setattr__ refuses new members
    PeftType._member_map_["HYDRA"] = member
    PeftType._value2member_map_["HYDRA"] = member
    PeftType._member_names_.append("HYDRA")
    return member


def register():
    """Register ``"hydra"`` with peft (done on import; idempotent). Warns when peft is not the tested release."""
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

    peft_type = _peft_type()
    if peft_type in PEFT_TYPE_TO_TUNER_MAPPING:
        return
    if peft.__version__ != PEFT_VERSION:
        warnings.warn(f"hydra.peft_integration is tested with peft {PEFT_VERSION}; peft {peft.__version__} is installed",
                      UserWarning, stacklevel=2)
    register_peft_method(name=_NAME, config_cls=HydraPeftConfig, model_cls=HydraPeftModel)


register()

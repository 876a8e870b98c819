r"""Model-level API: inject adapters by name, report, merge/unmerge, save/load, unload.

Used the way peft's LoRA is used::

    model = hydra.inject(model, hydra.HydraConfig(..., target_modules=["query", "value"]))
    optimizer = torch.optim.AdamW(hydra.trainable_parameters(model), lr=2e-3)
    ...
    hydra.save(model, "adapter.safetensors")
    hydra.load(hydra.inject(fresh_model, cfg), "adapter.safetensors")

Checkpoints are safetensors files with the adapters' trainable tensors only (the fixed pool
part, the initial values, the index maps and the nodes are regenerated from the seed) and
metadata: the configuration (JSON), the library version, and the adapted layers' names and
shapes. :func:`load` validates all of it against the model before it changes anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from .blocks import block_structure
from .config import HydraConfig, LDRConfig, LoRAConfig, config_from_dict
from .layers import AdapterLinear, HydraLinear, make_adapter
from .partition import BlockPartitioner
from .pool import ParameterPool
from .sampler import balanced_index_map

__all__ = [
    "inject",
    "adapter_layers",
    "trainable_parameters",
    "report",
    "AdapterReport",
    "LayerReport",
    "merge",
    "unmerge",
    "unload",
    "save",
    "load",
    "CheckpointError",
    "FORMAT",
]

#: The ``format`` entry of checkpoint metadata.
FORMAT = "hydra-adapter/1"
_SHARED_KEY = "shared_pool.trainable"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into this model (unreadable, or config/shape mismatch)."""


def _matches(name, targets):
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def adapter_layers(model):
    """``{name: adapter}`` for every adapter layer of ``model``, in module order.

    Examples
    --------
    >>> import torch, hydra
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    >>> list(hydra.adapter_layers(hydra.inject(model, hydra.LoRAConfig(rank=1, target_modules=["0"]))))
    ['0']
    """
    return {name: module for name, module in model.named_modules() if isinstance(module, AdapterLinear)}


def _slot_count(base, config):
    part = BlockPartitioner(base.out_features, base.in_features, config.k)
    return config.k**2 * block_structure(config.structure, *part.block_shape, config.rank).slots_per_block


def _build_adapters(targets, config):
    """Construct every adapter (raising before the model is modified)."""
    if not isinstance(config, HydraConfig):
        return {name: make_adapter(module, config, name) for name, module in targets}
    slots = {name: _slot_count(module, config) for name, module in targets}
    if config.shared_pool:
        total = sum(slots.values())
        pool = ParameterPool(config.pool_size, config.n_fixed, config.seed, "shared", config.init_std)
        index = balanced_index_map(total, config.pool_size, config.seed, "shared")
        adapters, start = {}, 0
        for name, module in targets:
            part = index[start : start + slots[name]]
            adapters[name] = HydraLinear(module, config, name, pool=pool, index_map=part)
            start += slots[name]
        return adapters
    # One warning for all pools, not one per layer.
    short = [name for name in slots if slots[name] < config.pool_size]
    if short:
        warnings.warn(
            f"pool_size = {config.pool_size} exceeds the slot count of {len(short)} adapted layer(s) "
            f"(e.g. {short[0]!r}: {slots[short[0]]} slots); the extra pool entries are never used "
            "(dead parameters)",
            UserWarning,
            stacklevel=3,
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pool .* exceeds the .* slots")
        return {name: make_adapter(module, config, name) for name, module in targets}


def inject(model, config):
    r"""Freeze ``model`` and replace the ``nn.Linear`` layers named by ``config.target_modules`` by adapters.

    Parameters
    ----------
    model : nn.Module
        A plain torch model or a transformers model whose projections are ``nn.Linear``.
    config : HydraConfig, LoRAConfig or LDRConfig
        Which adapter, and which layers: ``target_modules`` is a list of name suffixes
        (``"query"`` matches ``"encoder.layer.0.attention.query"``) or a regex matched against the
        full module name.

    Returns
    -------
    nn.Module
        The same ``model``, modified in place: every parameter frozen, the matching layers
        wrapped (:class:`~hydra.HydraLinear`, :class:`~hydra.LoRALinear` or
        :class:`~hydra.LDRLinear`). The adapters are on the device of the layer they wrap.

    Raises
    ------
    ValueError
        When no ``nn.Linear`` matches (the message lists the model's Linear layers), when the
        model already has adapters, or when a layer is too small for ``k``. The model is left
        exactly as it was.

    Notes
    -----
    With ``shared_pool=True`` one :class:`~hydra.ParameterPool` serves every adapted layer;
    its index map is balanced over all their slots together and split in module order, so it
    depends on the set and order of adapted layers (fixed by the model and the config).

    Examples
    --------
    >>> import torch, hydra
    >>> model = torch.nn.ModuleDict({"query": torch.nn.Linear(8, 8), "out": torch.nn.Linear(8, 2)})
    >>> model = hydra.inject(model, hydra.HydraConfig(k=2, pool_size=16, target_modules=["query"]))
    >>> type(model["query"]).__name__, model["out"].weight.requires_grad
    ('HydraLinear', False)
    >>> hydra.inject(torch.nn.Sequential(torch.nn.Linear(2, 2)), hydra.LoRAConfig(target_modules=["key"]))
    Traceback (most recent call last):
    ...
    ValueError: target_modules ['key'] matched no nn.Linear layer; the model's nn.Linear layers are: '0'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(config, (HydraConfig, LoRAConfig, LDRConfig)):
        raise TypeError(f"`config` must be a HydraConfig, LoRAConfig or LDRConfig; got {type(config).__name__}")
    existing = adapter_layers(model)
    if existing:
        raise ValueError(
            f"the model already has {len(existing)} adapter layer(s) (e.g. {next(iter(existing))!r}); "
            "call hydra.unload(model) before injecting again"
        )
    linears = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear) and name]
    targets = [(name, module) for name, module in linears if _matches(name, config.target_modules)]
    if not targets:
        listing = ", ".join(repr(name) for name, _ in linears) or "(none)"
        raise ValueError(
            f"target_modules {config.target_modules!r} matched no nn.Linear layer; the model's nn.Linear "
            f"layers are: {listing}"
        )
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        adapters = _build_adapters(targets, config)
    except BaseException:
        for p, flag in flags.items():  # adapter constructors freeze their base layers
            p.requires_grad_(flag)
        raise
    for p in model.parameters():
        p.requires_grad_(False)
    for name, adapter in adapters.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, adapter)
    return model


def trainable_parameters(model):
    """The distinct parameters of ``model`` that require gradients (a shared pool appears once).

    Examples
    --------
    >>> import torch, hydra
    >>> model = hydra.inject(torch.nn.Sequential(torch.nn.Linear(4, 4)), hydra.LoRAConfig(rank=1, target_modules=["0"]))
    >>> [tuple(p.shape) for p in hydra.trainable_parameters(model)]
    [(1, 4), (4, 1)]
    """
    seen, out = set(), []
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


@dataclass
class LayerReport:
    """One adapted layer in an :class:`AdapterReport`."""

    name: str
    adapter: str
    shape: tuple
    detail: str
    trainable: int
    fixed: int
    pool: str
    path: str


@dataclass
class AdapterReport:
    """Summary returned by :func:`report`; ``str(report)`` is a readable table.

    Attributes
    ----------
    trainable : int
        Distinct parameters that require gradients (a shared pool counted once).
    total : int
        All distinct parameters of the model (frozen base included).
    adapter_trainable : int
        Trainable numbers held by the adapters.
    fixed : int
        Fixed random pool entries (buffers, regenerated from the seed; not parameters).
    layers : list of LayerReport
    """

    trainable: int
    total: int
    adapter_trainable: int
    fixed: int
    layers: list = field(default_factory=list)

    @property
    def fraction(self):
        """``trainable / total``."""
        return self.trainable / self.total if self.total else 0.0

    def __str__(self):
        header = ("layer", "adapter", "shape", "blocks", "trainable", "fixed", "pool", "path")
        rows = [header] + [
            (r.name, r.adapter, f"{r.shape[0]}x{r.shape[1]}", r.detail, f"{r.trainable:,}", f"{r.fixed:,}", r.pool, r.path)
            for r in self.layers
        ]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(
            f"trainable: {self.trainable:,} of {self.total:,} parameters ({100 * self.fraction:.4f} %); "
            f"adapters: {self.adapter_trainable:,} trainable + {self.fixed:,} fixed random (not saved)"
        )
        return "\n".join(lines)


def report(model):
    """Trainable / total parameter counts and a per-layer table (a shared pool counted once).

    Returns
    -------
    AdapterReport

    Examples
    --------
    >>> import torch, hydra
    >>> model = torch.nn.Sequential(torch.nn.Linear(768, 768))
    >>> cfg = hydra.HydraConfig(k=4, pool_size=768, fixed_ratio=0.5, target_modules=["0"])
    >>> r = hydra.report(hydra.inject(model, cfg))
    >>> r.trainable, r.fixed, r.total
    (384, 384, 590976)
    """
    adapters = adapter_layers(model)
    rows, seen_pools = [], set()
    adapter_trainable = fixed = 0
    for name, a in adapters.items():
        if isinstance(a, HydraLinear):
            cfg, pool = a.config, a.pool
            bm, bn = a.partition.block_shape
            detail = f"{cfg.structure} k={cfg.k}" + ("" if cfg.structure == "toeplitz" else f" r={cfg.rank}")
            detail += f" ({bm}x{bn})"
            first = id(pool) not in seen_pools
            seen_pools.add(id(pool))
            n_train, n_fixed = (pool.n_trainable, pool.n_fixed) if first else (0, 0)
            pool_label = ("shared" if cfg.shared_pool else "own") + f" P={pool.size}"
            if cfg.shared_pool and not first:
                pool_label += " (counted above)"
            kind = "hydra"
        else:
            n_train, n_fixed = a.n_trainable(), 0
            kind = "lora" if isinstance(a.config, LoRAConfig) else "ldr"
            detail = f"r={a.config.rank}" if kind == "lora" else a.config.structure + (
                f" r={a.config.rank}" if a.config.structure != "circulant" else ""
            )
            pool_label = "-"
        adapter_trainable += n_train
        fixed += n_fixed
        rows.append(
            LayerReport(name, kind, (a.out_features, a.in_features), detail, n_train, n_fixed, pool_label,
                        "merged" if a.merged else a.resolved_path())
        )
    params = {id(p): p for p in model.parameters()}
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    total = sum(p.numel() for p in params.values())
    return AdapterReport(trainable, total, adapter_trainable, fixed, rows)


def _require_adapters(model, action):
    adapters = adapter_layers(model)
    if not adapters:
        raise ValueError(f"cannot {action}: the model has no adapter layers (call hydra.inject first)")
    return adapters


def merge(model):
    r"""Fold :math:`s\,\Delta W` into every adapted layer's base weight (forward then equals the merged model).

    Raises ValueError if the model has no adapters or a layer is already merged (nothing is
    changed in that case). Do not train while merged: the adapters are bypassed.

    Returns
    -------
    nn.Module
        ``model``, modified in place.

    Examples
    --------
    >>> import torch, hydra
    >>> model = hydra.inject(torch.nn.Sequential(torch.nn.Linear(8, 8)),
    ...                      hydra.HydraConfig(k=2, pool_size=20, target_modules=["0"]))
    >>> with torch.no_grad():
    ...     _ = model[0].pool.trainable.add_(0.1)
    >>> x = torch.randn(3, 8)
    >>> y = model(x)
    >>> bool(torch.allclose(hydra.merge(model)(x), y, atol=1e-6))
    True
    >>> bool(torch.allclose(hydra.unmerge(model)(x), y, atol=1e-6))   # back to base + adapter
    True
    """
    adapters = _require_adapters(model, "merge")
    merged = [n for n, a in adapters.items() if a.merged]
    if merged:
        raise ValueError(f"layers already merged: {merged}; call hydra.unmerge(model) first")
    for a in adapters.values():
        a.merge()
    return model


def unmerge(model):
    r"""Subtract :math:`s\,\Delta W` from every merged layer's base weight again (exact up to float rounding).

    Returns
    -------
    nn.Module
        ``model``, modified in place.

    Examples
    --------
    >>> import torch, hydra
    >>> model = hydra.inject(torch.nn.Sequential(torch.nn.Linear(8, 8)), hydra.LoRAConfig(rank=2, target_modules=["0"]))
    >>> with torch.no_grad():
    ...     _ = model[0].lora_B.add_(0.5)
    >>> w0 = model[0].base_layer.weight.clone()
    >>> bool(torch.allclose(hydra.unmerge(hydra.merge(model))[0].base_layer.weight, w0, atol=1e-6))
    True
    """
    adapters = _require_adapters(model, "unmerge")
    not_merged = [n for n, a in adapters.items() if not a.merged]
    if not_merged:
        raise ValueError(f"layers not merged: {not_merged}")
    for a in adapters.values():
        a.unmerge()
    return model


def unload(model, merge=False):
    """Replace every adapter by its original ``nn.Linear`` (with ΔW folded in when ``merge=True``).

    Without ``merge`` the base weights are restored (a merged layer is unmerged first). Parameters
    stay frozen (``requires_grad`` is not restored), as in peft.

    Returns
    -------
    nn.Module
        The same model, modified in place.

    Examples
    --------
    >>> import torch, hydra
    >>> model = hydra.inject(torch.nn.Sequential(torch.nn.Linear(8, 8)), hydra.LoRAConfig(rank=2, target_modules=["0"]))
    >>> type(hydra.unload(model)[0]).__name__
    'Linear'
    """
    adapters = _require_adapters(model, "unload")
    for name, a in adapters.items():
        if merge and not a.merged:
            a.merge()
        elif not merge and a.merged:
            a.unmerge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, a.base_layer)
    return model


def _common_config(adapters):
    configs = {json.dumps(a.config.to_dict(), sort_keys=True) for a in adapters.values()}
    if len(configs) != 1:
        raise ValueError("the model's adapters have different configurations; save supports one configuration")
    return next(iter(adapters.values())).config


def _checkpoint_tensors(adapters):
    """``{key: parameter}`` in a fixed order; a shared pool appears once as ``shared_pool.trainable``."""
    tensors, seen = {}, set()
    for name, a in adapters.items():
        for pname, p in a.trainable_tensors().items():
            if id(p) in seen:
                continue
            seen.add(id(p))
            shared = isinstance(a, HydraLinear) and a.config.shared_pool
            tensors[_SHARED_KEY if shared else f"{name}.{pname}"] = p
    return tensors


def _layer_table(adapters):
    return [{"name": n, "in_features": a.in_features, "out_features": a.out_features} for n, a in adapters.items()]


def save(model, path):
    """Write the adapters' trainable tensors and metadata to a safetensors file.

    Parameters
    ----------
    model : nn.Module
        A model with adapters (one configuration).
    path : str or os.PathLike

    Notes
    -----
    Stored: the trainable tensors only (pool trainable part, LoRA A/B, LDR generators), as
    float tensors on the CPU; metadata ``format``, ``library_version``, ``config`` (JSON),
    ``layers`` (names and shapes, JSON). Not stored (regenerated from the seed): the fixed pool
    part, the initial pool, the index maps and the fixed nodes. The file is written to a
    temporary name and renamed, so an interrupted save never leaves a truncated checkpoint.

    Examples
    --------
    >>> import os, tempfile, torch, hydra
    >>> cfg = hydra.HydraConfig(structure="hankel_like", k=2, pool_size=30, fixed_ratio=0.5, target_modules=["0"])
    >>> torch.manual_seed(0) is not None
    True
    >>> base = torch.nn.Sequential(torch.nn.Linear(8, 8))
    >>> fresh = torch.nn.Sequential(torch.nn.Linear(8, 8))
    >>> fresh.load_state_dict(base.state_dict())
    <All keys matched successfully>
    >>> model = hydra.inject(base, cfg)
    >>> with torch.no_grad():
    ...     _ = model[0].pool.trainable.add_(0.1)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "adapter.safetensors")
    ...     hydra.save(model, path)
    ...     loaded = hydra.load(hydra.inject(fresh, cfg), path)
    >>> x = torch.randn(2, 8)
    >>> bool(torch.equal(loaded(x), model(x)))    # the fixed part is regenerated, not stored
    True
    """
    from safetensors.torch import save_file

    from . import __version__

    adapters = _require_adapters(model, "save")
    config = _common_config(adapters)
    tensors = {k: p.detach().to("cpu").contiguous() for k, p in _checkpoint_tensors(adapters).items()}
    metadata = {
        "format": FORMAT,
        "library_version": __version__,
        "config": json.dumps(config.to_dict()),
        "layers": json.dumps(_layer_table(adapters)),
    }
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".hydra-", suffix=".safetensors", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _read_checkpoint(path):
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise CheckpointError(f"cannot read adapter checkpoint {path!r}: {type(exc).__name__}: {exc}") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path!r} is not a hydra adapter checkpoint: metadata 'format' is {metadata.get('format')!r}, "
            f"expected {FORMAT!r}"
        )
    try:
        config = config_from_dict(json.loads(metadata["config"]))
        layers = json.loads(metadata["layers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r} has unreadable metadata: {exc}") from None
    return config, layers, tensors


def load(model, path):
    """Load adapter tensors saved by :func:`save` into a model injected with the same configuration.

    Everything is validated before the model is touched: the file (exists, readable), the
    configuration (every field but ``path`` must equal the model's), the adapted layers (names
    and shapes) and the tensors (names and shapes). On any mismatch the model is unchanged.

    Parameters
    ----------
    model : nn.Module
        A model prepared with ``hydra.inject(model, config)``, not merged.
    path : str or os.PathLike

    Returns
    -------
    nn.Module
        ``model``, with the loaded values.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError (a ValueError)
        Unreadable/corrupt file, or a configuration, layer or tensor mismatch (the message names
        the differing fields, layers or tensors).

    Examples
    --------
    A round trip is shown under :func:`save`. A checkpoint of another configuration is refused
    before anything is copied:

    >>> import os, tempfile, torch, hydra
    >>> make = lambda pool: hydra.inject(torch.nn.Sequential(torch.nn.Linear(8, 8)),
    ...                                  hydra.HydraConfig(k=2, pool_size=pool, target_modules=["0"]))
    >>> folder = tempfile.mkdtemp()
    >>> hydra.save(make(20), os.path.join(folder, "a.safetensors"))
    >>> other = make(24)
    >>> before = other[0].pool.trainable.clone()
    >>> hydra.load(other, os.path.join(folder, "a.safetensors"))
    Traceback (most recent call last):
    ...
    hydra.model.CheckpointError: '...a.safetensors' was saved with a different configuration: pool_size: checkpoint 20 vs model 24
    >>> bool(torch.equal(other[0].pool.trainable, before))
    True
    """
    adapters = _require_adapters(model, "load")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no adapter checkpoint at {path!r}")
    saved_config, saved_layers, tensors = _read_checkpoint(path)
    config = _common_config(adapters)
    if type(saved_config) is not type(config):
        raise CheckpointError(
            f"{path!r} holds a {type(saved_config).__name__} adapter; the model has {type(config).__name__}"
        )
    ours, theirs = config.parameter_fields(), saved_config.parameter_fields()
    differ = [f"{k}: checkpoint {theirs[k]!r} vs model {ours[k]!r}" for k in ours if ours[k] != theirs[k]]
    if differ:
        raise CheckpointError(f"{path!r} was saved with a different configuration: " + "; ".join(differ))
    if saved_layers != _layer_table(adapters):
        ours_l = {d["name"]: (d["out_features"], d["in_features"]) for d in _layer_table(adapters)}
        theirs_l = {d["name"]: (d["out_features"], d["in_features"]) for d in saved_layers}
        missing = sorted(set(ours_l) - set(theirs_l))
        extra = sorted(set(theirs_l) - set(ours_l))
        shapes = [f"{n}: checkpoint {theirs_l[n]} vs model {ours_l[n]}" for n in ours_l if n in theirs_l and theirs_l[n] != ours_l[n]]
        raise CheckpointError(
            f"{path!r} does not match the model's adapted layers: not in checkpoint {missing}, "
            f"not in model {extra}, shape (out, in) differences {shapes}"
        )
    expected = _checkpoint_tensors(adapters)
    if set(tensors) != set(expected):
        raise CheckpointError(
            f"{path!r} tensors differ from the model's: missing {sorted(set(expected) - set(tensors))}, "
            f"unexpected {sorted(set(tensors) - set(expected))}"
        )
    bad = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(p.shape)}"
           for k, p in expected.items() if tuple(tensors[k].shape) != tuple(p.shape)]
    bad += [f"{k}: dtype {tensors[k].dtype}" for k in expected if not tensors[k].is_floating_point()]
    if bad:
        raise CheckpointError(f"{path!r} tensor shapes/dtypes differ from the model's: " + "; ".join(bad))
    merged = [n for n, a in adapters.items() if a.merged]
    if merged:
        raise ValueError(f"cannot load into merged layers {merged}; call hydra.unmerge(model) first")
    with torch.no_grad():
        for key, p in expected.items():
            p.copy_(tensors[key].to(device=p.device, dtype=p.dtype))
    return model


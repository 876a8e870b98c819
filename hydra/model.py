r"""Model-level API: inject adapters by name, report, merge/unmerge, save/load, unload.

Used the way peft's LoRA is used::

    model = hydra.inject(model, hydra.HydraConfig(..., target_modules=["query", "value"]))
    optimizer = torch.optim.AdamW(hydra.trainable_parameters(model), lr=2e-3)
    ...
    hydra.save(model, "adapter.safetensors")
    hydra.load(hydra.inject(fresh_model, cfg), "adapter.safetensors")

Checkpoints are safetensors files with the adapters' trainable tensors only (the fixed pool
part, the initial values, the index maps and the nodes are regenerated from the seed) and
metadata: the configuration (JSON), the library and environment versions, the adapted layers'
names, shapes and seed names, a SHA-256 digest of every regenerated tensor and of every stored
tensor (format ``hydra-adapter/2``). :func:`load` verifies all of it against the model before
it changes anything: a checkpoint loads exactly or raises :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from . import distributed as _distributed
from . import integrity as _integrity
from .blocks import block_structure
from .config import HydraConfig, LDRConfig, LoRAConfig, config_from_dict
from . import pretrained as _pretrained
from . import targets as _targets
from .layers import AdapterLinear, HydraLinear, make_adapter
from .partition import BlockPartitioner
from .pool import ParameterPool
from .integrity import CheckpointError

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

#: The ``format`` entry of checkpoint metadata; version 2 added the digests and seed names.
FORMAT = "hydra-adapter/2"
_FORMAT_PREFIX = "hydra-adapter/"
_SHARED_KEY = "shared_pool.trainable"


def _module_paths(model):
    """``{id(module): [every path to it]}``: a module reachable under several names lists them all."""
    paths = {}
    for name, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), []).append(name)
    return paths


def adapter_layers(model):
    """``{name: adapter}`` for every adapter layer of ``model``, in module order.

    Names are those of the bare model: a DDP/DataParallel ``module.`` or a compiled
    ``_orig_mod.`` prefix is dropped, so a wrapped model reports (and saves) the same names as
    the plain one. An adapter reachable under several names appears once, under the first.

    Examples
    --------
    >>> import torch, hydra
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    >>> list(hydra.adapter_layers(hydra.inject(model, hydra.LoRAConfig(rank=1, target_modules=["0"]))))
    ['0']
    """
    return {
        _targets._strip_wrappers(name): module
        for name, module in model.named_modules()
        if isinstance(module, AdapterLinear)
    }


def _slot_count(base, config):
    part = BlockPartitioner(base.out_features, base.in_features, config.k)
    return config.k**2 * block_structure(config.structure, *part.block_shape, config.rank).slots_per_block


def _build_adapters(targets, config):
    """Construct every adapter (raising before the model is modified)."""
    if not isinstance(config, HydraConfig):
        return {name: make_adapter(module, config, name) for name, module in targets}
    slots = {name: _slot_count(module, config) for name, module in targets}
    if config.shared_pool:
        pool = ParameterPool(config.pool_size, config.n_fixed, config.seed, _integrity.SHARED_POOL_NAME,
                             config.init_std)
        maps = _integrity.shared_index_maps(config, list(slots.values()), warn=True)
        return {
            name: HydraLinear(module, config, name, pool=pool, index_map=part)
            for (name, module), part in zip(targets, maps)
        }
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
        :class:`~hydra.LDRLinear`). The adapters are on the device of the layer they wrap and
        hold a validated copy of ``config`` (editing ``config`` afterwards changes nothing).

    Raises
    ------
    ValueError
        When no ``nn.Linear`` matches (the message lists the model's Linear layers), when the
        model already has adapters, when a layer is too small for ``k``, or when a target is
        the ``out_proj`` of an ``nn.MultiheadAttention`` (which passes ``out_proj.weight`` to
        its attention kernel and never calls the module, so an adapter could not act; with
        ``"all-linear"`` such layers are skipped instead). The model is left exactly as it was.

    Notes
    -----
    Pools and index maps are seeded from ``config.seed`` and the layer's name relative to
    ``model`` with wrapper prefixes removed (DDP/DataParallel ``module.``, compiled
    ``_orig_mod.``), so injecting before or after wrapping gives the same adapters; the name is
    kept as the layer's ``layer_name`` and stored in checkpoints (see :func:`load`).

    A layer reachable under several names (one module object used twice) is replaced at every
    name by the same adapter. A layer whose weight is shared with another module (an
    ``lm_head`` tied to the input embeddings) is adapted; only merging it is refused
    (:func:`merge`). Adapters inside an ``nn.TransformerEncoderLayer`` carry a no-op forward
    pre-hook, which makes torch skip that layer's fused inference path (it reads
    ``linear1.weight`` directly and would bypass the adapter).

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
    # A validated private copy: every field is checked again, and later edits of the caller's
    # object cannot make the adapters disagree with what save() records.
    config = dataclasses.replace(config)
    existing = adapter_layers(model)
    if existing:
        raise ValueError(
            f"the model already has {len(existing)} adapter layer(s) (e.g. {next(iter(existing))!r}); "
            "call hydra.unload(model) before injecting again"
        )
    # nn.Linear and GPT-2 Conv1D layers, "all-linear", modules_to_save: hydra/targets.py (H8).
    linears, targets = _targets.find_targets(model, config)
    if not targets:
        listing = ", ".join(repr(name) for name, _ in linears) or "(none)"
        raise ValueError(
            f"target_modules {config.target_modules!r} matched no nn.Linear layer; the model's nn.Linear "
            f"layers are: {listing}"
        )
    paths = _module_paths(model)
    targets = _effective_targets(model, config, targets, paths)
    # Seeds come from the name relative to `model` with wrapper prefixes dropped: the same
    # under DDP/DataParallel/compile as for the bare model.
    named = [(_targets._strip_wrappers(name), module) for name, module in targets]
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        adapters = _build_adapters(named, config)
    except BaseException:
        for p, flag in flags.items():  # adapter constructors freeze their base layers
            p.requires_grad_(flag)
        raise
    for p in model.parameters():
        p.requires_grad_(False)
    for (name, module), adapter in zip(targets, adapters.values()):
        # Every path to the layer (a module reachable under two names) gets the same adapter.
        for path in paths.get(id(_targets.original_module(module)), [name]):
            parent_name, _, child = path.rpartition(".")
            parent = model.get_submodule(parent_name)
            setattr(parent, child, adapter)
            if isinstance(parent, nn.TransformerEncoderLayer):
                # Its eval-mode fast path reads linear1/linear2.weight directly and would skip
                # the adapter; torch takes the slow path when a submodule has a forward hook.
                adapter.register_forward_pre_hook(_keep_module_forward)
    _targets.unfreeze_modules_to_save(model, config)
    _pretrained.guard_transformers_save(model)
    _integrity.guard_model_load(model)
    return model


def _keep_module_forward(module, args):
    """A no-op forward pre-hook: its presence disables nn.TransformerEncoderLayer's fused path."""
    return None


def _effective_targets(model, config, targets, paths):
    """Drop (for ``"all-linear"``) or refuse layers whose owner never calls them.

    ``nn.MultiheadAttention`` passes ``out_proj.weight`` to ``F.multi_head_attention_forward``
    instead of calling ``out_proj``, so an adapter there would change nothing and get no gradient.
    """
    ineffective = []
    for name, module in targets:
        for path in paths.get(id(_targets.original_module(module)), [name]):
            parent_name, _, child = path.rpartition(".")
            if isinstance(model.get_submodule(parent_name), nn.MultiheadAttention):
                ineffective.append(name)
    if not ineffective:
        return targets
    wanted = config.target_modules
    if isinstance(wanted, str) and wanted.lower() == _targets.ALL_LINEAR:
        return [(name, module) for name, module in targets if name not in ineffective]
    raise ValueError(
        f"cannot adapt {[_targets._strip_wrappers(n) for n in ineffective]}: the output projection of an "
        "nn.MultiheadAttention is never called (its forward passes out_proj.weight and out_proj.bias to "
        "F.multi_head_attention_forward), so an adapter there would not change the output nor receive a "
        "gradient. Leave it out of target_modules (e.g. with a regular expression that excludes 'out_proj')"
    )


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
    """One adapted layer in an :class:`AdapterReport` (one row of its table).

    Attributes
    ----------
    name : str
        The layer's qualified name in the model (as in ``model.named_modules()``).
    adapter : str
        ``"hydra"``, ``"lora"`` or ``"ldr"`` (the single-matrix LDR baseline).
    shape : tuple of int
        ``(out_features, in_features)`` of the adapted ``nn.Linear``.
    detail : str
        The structure and its sizes, e.g. ``"toeplitz k=4 (192x192)"`` or ``"r=4"``.
    trainable : int
        Trainable numbers this layer adds; 0 for a layer whose shared pool was counted on an
        earlier row.
    fixed : int
        Fixed random pool entries (regenerated from the seed, never saved); 0 for LoRA and LDR.
    pool : str
        ``"own P=..."`` or ``"shared P=..."`` for HyDRA (the pool size P), ``"-"`` otherwise.
    path : str
        How the update is applied: ``"dense"`` or ``"fft"`` (see :func:`auto_path`), or
        ``"merged"`` after :func:`merge`.
    """

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

    Raises ValueError if the model has no adapters, a layer is already merged, or a layer's
    weight is tied to another module's tensor (e.g. an ``lm_head`` tied to the input
    embeddings: the in-place update would change the embeddings too; the message names the
    other tensors and how to untie). Nothing is changed in those cases. Do not train while
    merged: the adapters are bypassed.

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
    _distributed.refuse_sharded(model, "merge")
    adapters = _require_adapters(model, "merge")
    merged = [n for n, a in adapters.items() if a.merged]
    if merged:
        raise ValueError(f"layers already merged: {merged}; call hydra.unmerge(model) first")
    _refuse_tied_merge(model, adapters)
    for a in adapters.values():
        a.merge()
    return model


def _shares_memory(a, b):
    if a.device != b.device or a.is_meta or b.is_meta:
        return False
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _tied_names(model, adapter):
    """Names of the model's tensors outside ``adapter.base_layer`` that share its weight's memory."""
    weight = adapter.base_layer.weight
    names = set()
    for module_name, module in model.named_modules(remove_duplicate=False):
        if module is adapter.base_layer:
            continue
        for key, tensor in [*module._parameters.items(), *module._buffers.items()]:
            if tensor is not None and _shares_memory(tensor, weight):
                names.add(_targets._strip_wrappers(f"{module_name}.{key}" if module_name else key))
    return sorted(names)


def _refuse_tied_merge(model, adapters):
    """Merging adds ΔW to the base weight in place: a tied weight (an lm_head tied to the input
    embeddings) would change everywhere it is used. Refuse, naming the other users."""
    tied = {n: _tied_names(model, a) for n, a in adapters.items() if not a.merged}
    tied = {n: names for n, names in tied.items() if names}
    if tied:
        listing = "; ".join(f"{n} shares its weight with {names}" for n, names in tied.items())
        raise ValueError(
            f"cannot merge: {listing} (tied weights). Merging writes ΔW into the shared weight and would "
            "change those modules too (e.g. the input embeddings of a tied lm_head). Keep the adapter "
            "unmerged, or untie the weight first, e.g. "
            "`layer.base_layer.weight = torch.nn.Parameter(layer.base_layer.weight.detach().clone())`"
        )


def unmerge(model):
    r"""Subtract :math:`s\,\Delta W` from every merged layer's base weight again (exact up to float rounding).

    The update subtracted is the one :func:`merge` added (each layer keeps a copy of its
    trainable tensors and scale from then). If an adapter changed while merged (an optimizer
    step, a ``load_state_dict``), the base weights are still restored, the adapter keeps its new
    values, and a ``UserWarning`` says that the merged forward passes did not use them.

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

    Without ``merge`` the base weights are restored (a merged layer is unmerged first); with
    ``merge`` a tied weight is refused as in :func:`merge`. A layer reachable under several
    names is restored at each. Parameters stay frozen (``requires_grad`` is not restored), as in
    peft.

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
    if merge:
        _refuse_tied_merge(model, adapters)
    paths = _module_paths(model)
    for a in adapters.values():
        if merge and not a.merged:
            a.merge()
        elif not merge and a.merged:
            a.unmerge()
        for path in paths[id(a)]:
            parent_name, _, child = path.rpartition(".")
            setattr(model.get_submodule(parent_name), child, _targets.original_module(a.base_layer))
    _pretrained.release_transformers_save(model)
    return model


def _common_config(adapters):
    configs = {json.dumps(a.config.to_dict(), sort_keys=True) for a in adapters.values()}
    if len(configs) != 1:
        raise ValueError("the model's adapters have different configurations; save supports one configuration")
    return next(iter(adapters.values())).config


def _pool_key(name, adapter):
    return _SHARED_KEY if adapter.config.shared_pool else f"{name}.pool.trainable"


def _checkpoint_tensors(adapters, model):
    """``{key: parameter}`` in a fixed order; a shared pool appears once as ``shared_pool.trainable``.

    The parameters of ``config.modules_to_save`` follow, keyed ``modules_to_save.<module>.<parameter>``
    (:func:`hydra.targets.saved_module_tensors`).
    """
    tensors, seen = {}, set()
    for name, a in adapters.items():
        for pname, p in a.trainable_tensors().items():
            if id(p) in seen:
                continue
            seen.add(id(p))
            tensors[_pool_key(name, a) if isinstance(a, HydraLinear) else f"{name}.{pname}"] = p
    tensors.update(_targets.saved_module_tensors(model, next(iter(adapters.values())).config))
    return tensors


def _layer_table(adapters):
    return [{"name": n, "in_features": a.in_features, "out_features": a.out_features} for n, a in adapters.items()]


def _expected_regenerated(adapters, config, seed_names=None):
    """:func:`hydra.integrity.expected_regenerated` for the model's HyDRA layers: ``{name: {tensor: value}}``."""
    hydra_layers = {n: a for n, a in adapters.items() if isinstance(a, HydraLinear)}
    if not hydra_layers:
        return {}
    seed_names = seed_names or {n: a.layer_name for n, a in hydra_layers.items()}
    layers = [(seed_names[n], a.out_features, a.in_features) for n, a in hydra_layers.items()]
    return dict(zip(hydra_layers, _integrity.expected_regenerated(config, layers)))


#: What each regenerated tensor is, for messages.
_REGENERATED_LABELS = {"pool.initial": "initial pool values θ⁰", "pool.fixed": "fixed pool part", "index_map": "index map"}


def _label(tensor_name):
    if tensor_name.startswith("blocks."):
        return f"block buffer {tensor_name[len('blocks.'):]!r}"
    return _REGENERATED_LABELS.get(tensor_name, tensor_name)


def _check_regenerated_state(adapters, expected):
    """Refuse to save a model whose regenerated tensors differ from what its configuration regenerates."""
    wrong = []
    for name, tables in expected.items():
        actual = _integrity.layer_regenerated(adapters[name])
        for key, value in tables.items():
            held = actual.get(key)
            same = held is not None and held.shape == value.shape and torch.equal(
                held.detach().to("cpu"), value.to(held.dtype)
            )
            if not same:
                wrong.append(f"{name}: {_label(key)}")
    if wrong:
        raise ValueError(
            "cannot save: regenerated tensors of the model differ from those its configuration and layer names "
            f"regenerate ({'; '.join(wrong)}); was the configuration, a pool buffer or an index map changed after "
            "hydra.inject? A checkpoint of this model would load into a different model"
        )


def _environment():
    import numpy

    from . import __version__

    return {"hydra": __version__, "torch": torch.__version__, "numpy": numpy.__version__}


def save(model, path):
    r"""Write the adapters' trainable tensors and what makes them verifiable to a safetensors file.

    Parameters
    ----------
    model : nn.Module
        A model with adapters (one configuration); a DDP/DataParallel wrapper is fine (names
        are stored without the wrapper's ``module.`` prefix).
    path : str or os.PathLike

    Raises
    ------
    ValueError
        When a stored tensor holds NaN or infinity, or when the model's regenerated tensors no
        longer match its configuration (a field or buffer changed after :func:`inject`). Nothing
        is written then.

    Notes
    -----
    Stored tensors: the trainable tensors only (pool trainable part, LoRA A/B, LDR generators,
    and the parameters of ``modules_to_save``), on the CPU in their training dtype. Not stored
    (regenerated from the seed): the initial pool :math:`\theta^{(0)}`, the fixed pool part, the
    index maps and the block nodes. Metadata (format ``hydra-adapter/2``):

    * ``format``, ``library_version``, ``environment`` (hydra, torch and NumPy versions);
    * ``config``: the configuration (JSON);
    * ``layers``: per adapted layer its name, shape, ``seed_name`` (the name its pool and index
      map were drawn from, which :func:`load` uses again) and, for HyDRA layers,
      ``regenerated``: the SHA-256 of every regenerated tensor (``pool.initial``,
      ``pool.fixed``, ``index_map``, ``blocks.<buffer>``);
    * ``tensors``: per stored tensor the SHA-256 of its dtype, shape and bytes and, for a pool,
      ``initial_dtype``, the dtype its :math:`\theta^{(0)}` had in the saved model (it differs
      from float32 after ``model.to(torch.bfloat16)``).

    The file is written to a temporary name and renamed, so an interrupted save never leaves a
    truncated checkpoint. See :mod:`hydra.integrity`.

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

    _distributed.refuse_sharded(model, "save")
    adapters = _require_adapters(model, "save")
    config = _common_config(adapters)
    expected = _expected_regenerated(adapters, config)
    _check_regenerated_state(adapters, expected)
    params = _checkpoint_tensors(adapters, model)
    tensors = {k: p.detach().to("cpu").contiguous() for k, p in params.items()}
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"cannot save: tensors {bad} hold NaN or infinity (did training diverge?)")
    table = {k: {"sha256": _integrity.tensor_digest(t)} for k, t in tensors.items()}
    for name, a in adapters.items():
        if isinstance(a, HydraLinear):
            table[_pool_key(name, a)]["initial_dtype"] = str(a.pool.initial.dtype).removeprefix("torch.")
    layers = _layer_table(adapters)
    for row, (name, a) in zip(layers, adapters.items()):
        row["seed_name"] = a.layer_name
        if name in expected:
            row["regenerated"] = {k: _integrity.tensor_digest(v) for k, v in expected[name].items()}
    metadata = {
        "format": FORMAT,
        "library_version": _environment()["hydra"],
        "environment": json.dumps(_environment()),
        "config": json.dumps(config.to_dict()),
        "layers": json.dumps(layers),
        "tensors": json.dumps(table),
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


_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_HEX = frozenset("0123456789abcdef")


class _Malformed(Exception):
    """Internal: one malformed metadata entry (turned into a CheckpointError naming the file)."""


def _require(condition, where, expected, value):
    if not condition:
        raise _Malformed(f"{where} must be {expected}; got {value!r}"[:300])


def _json_entry(metadata, key, kind):
    _require(key in metadata, f"entry {key!r}", "present", None)
    try:
        value = json.loads(metadata[key])
    except (TypeError, ValueError, RecursionError) as exc:
        raise _Malformed(f"entry {key!r} is not valid JSON ({exc})") from None
    _require(isinstance(value, kind), f"entry {key!r}", f"a JSON {kind.__name__}", value)
    return value


def _is_digest(value):
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _parse_layers(rows):
    for i, row in enumerate(rows):
        where = f"layers[{i}]"
        _require(isinstance(row, dict), where, "an object", row)
        _require(isinstance(row.get("name"), str), f"{where}['name']", "a string", row.get("name"))
        _require(isinstance(row.get("seed_name"), str), f"{where}['seed_name']", "a string", row.get("seed_name"))
        for key in ("in_features", "out_features"):
            _require(_is_size(row.get(key)), f"{where}[{key!r}]", "an integer >= 1", row.get(key))
        regenerated = row.get("regenerated", {})
        _require(isinstance(regenerated, dict) and all(isinstance(k, str) and _is_digest(v)
                                                       for k, v in regenerated.items()),
                 f"{where}['regenerated']", "an object of SHA-256 hex digests", regenerated)
    return rows


def _parse_tensor_table(table):
    for key, entry in table.items():
        where = f"tensors[{key!r}]"
        _require(isinstance(entry, dict), where, "an object", entry)
        _require(_is_digest(entry.get("sha256")), f"{where}['sha256']", "a SHA-256 hex digest", entry.get("sha256"))
        if "initial_dtype" in entry:
            _require(entry["initial_dtype"] in _FLOAT_DTYPES, f"{where}['initial_dtype']",
                     f"one of {_FLOAT_DTYPES}", entry["initial_dtype"])
    return table


def _read_checkpoint(path):
    """Read and verify a checkpoint file: ``(config, layers, tensor table, environment, tensors)``.

    Everything that can be checked without the model is checked here: the format version, the
    metadata's structure, every tensor's digest (flipped bytes) and finiteness.
    """
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise CheckpointError(f"cannot read adapter checkpoint {path!r}: {type(exc).__name__}: {exc}") from None
    found = metadata.get("format")
    if found != FORMAT:
        if isinstance(found, str) and found.startswith(_FORMAT_PREFIX):
            raise CheckpointError(
                f"{path!r} is a hydra adapter checkpoint of format {found!r} (library version "
                f"{metadata.get('library_version', 'unknown')}); this version reads {FORMAT!r} only. Older formats "
                "store no digests of the regenerated tensors (initial pool, fixed part, index maps, block nodes), "
                "so a load could not be verified: re-create the checkpoint with this version (load it with the "
                "version that wrote it, then hydra.save), or use the matching library version"
            )
        raise CheckpointError(
            f"{path!r} is not a hydra adapter checkpoint: metadata 'format' is {found!r}, expected {FORMAT!r}"
        )
    try:
        config_data = _json_entry(metadata, "config", dict)
        try:
            config = config_from_dict(config_data)
        except Exception as exc:  # any invalid field value: a damaged or hand-edited file
            raise _Malformed(f"entry 'config' is not a valid adapter configuration ({type(exc).__name__}: {exc})")
        layers = _parse_layers(_json_entry(metadata, "layers", list))
        table = _parse_tensor_table(_json_entry(metadata, "tensors", dict))
        environment = _json_entry(metadata, "environment", dict)
    except _Malformed as exc:
        raise CheckpointError(f"{path!r} has malformed metadata: {exc}") from None
    if set(table) != set(tensors):
        raise CheckpointError(
            f"{path!r} is damaged: its digest table lists {sorted(table)} but the file holds {sorted(tensors)}"
        )
    damaged = [k for k, t in tensors.items() if _integrity.tensor_digest(t) != table[k]["sha256"]]
    if damaged:
        raise CheckpointError(
            f"{path!r} is damaged: the bytes of tensors {damaged} do not match the SHA-256 digests stored when it "
            "was saved"
        )
    bad = [k for k, t in tensors.items() if not t.is_floating_point() or not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"{path!r} holds tensors {bad} that are not finite floating-point values")
    return config, layers, table, environment, tensors


def _layer_mismatch(path, saved_layers, ours_table):
    ours_l = {d["name"]: (d["out_features"], d["in_features"]) for d in ours_table}
    theirs_l = {d["name"]: (d["out_features"], d["in_features"]) for d in saved_layers}
    missing = sorted(set(ours_l) - set(theirs_l))
    extra = sorted(set(theirs_l) - set(ours_l))
    shapes = [f"{n}: checkpoint {theirs_l[n]} vs model {ours_l[n]}"
              for n in ours_l if n in theirs_l and theirs_l[n] != ours_l[n]]
    message = (
        f"{path!r} does not match the model's adapted layers: not in checkpoint {missing}, "
        f"not in model {extra}, shape (out, in) differences {shapes}"
    )
    if not missing and not extra and not shapes:
        message += " (the layers are the same but in another order)"
    ours, theirs = [d["name"] for d in ours_table], [d["name"] for d in saved_layers]
    if ours and len(ours) == len(theirs):
        # A checkpoint saved from a submodule (model.bert) and loaded into the whole model, or back.
        for longer, shorter, hint in ((ours, theirs, "the checkpoint was saved from the model's submodule {!r}; "
                                                     "load it into that submodule"),
                                      (theirs, ours, "the checkpoint was saved from a larger model that holds "
                                                     "this one as {!r}; load it into that model")):
            prefix = longer[0][: len(longer[0]) - len(shorter[0])]
            if prefix.endswith(".") and all(a == prefix + b for a, b in zip(longer, shorter)):
                message += "; " + hint.format(prefix[:-1])
    return CheckpointError(message)


def _check_regenerated_digests(path, saved_layers, expected, environment):
    """Compare the checkpoint's digests of the regenerated tensors with what this environment regenerates."""
    differ = []
    for row in saved_layers:
        ours = expected.get(row["name"], {})
        theirs = row.get("regenerated", {})
        if ours and not theirs:
            raise CheckpointError(f"{path!r} has malformed metadata: layer {row['name']!r} lacks 'regenerated'")
        names = sorted(set(ours) | set(theirs))
        wrong = [_label(k) for k in names if k not in ours or k not in theirs
                 or _integrity.tensor_digest(ours[k]) != theirs[k]]
        if wrong:
            differ.append(f"{row['name']}: {', '.join(wrong)}")
    if differ:
        here = _environment()
        there = ", ".join(f"{k} {environment.get(k, '?')}" for k in here)
        raise CheckpointError(
            f"{path!r}: the tensors this environment regenerates differ from those the checkpoint was trained "
            f"with ({'; '.join(differ)}). The stored values would give a different update. Saved with {there}; "
            f"this is {', '.join(f'{k} {v}' for k, v in here.items())}: a torch/NumPy whose random streams differ, "
            "or a library version with other block nodes, cannot load it"
        )


def _restore_regenerated(adapters, expected, seed_names):
    """Install the verified regenerated tensors (in each buffer's dtype and device) and seed names."""
    done = set()
    for name, values in expected.items():
        layer = adapters[name]
        pool = layer.pool
        if id(pool) not in done:
            done.add(id(pool))
            if not layer.config.shared_pool:
                pool.name = seed_names[name]
            pool.regenerate(torch.cat([values["pool.initial"], values["pool.fixed"]]))
        layer.layer_name = seed_names[name]
        index = values["index_map"].reshape(*layer.index_g.shape[:-1], -1)
        split = layer.index_g.shape[-1]
        layer.index_g.copy_(index[..., :split])
        layer.index_h.copy_(index[..., split:])
        _integrity.set_digest(layer, {k: _integrity.tensor_digest(v) for k, v in values.items()})


def load(model, path):
    r"""Load adapter tensors saved by :func:`save` into a model injected with the same configuration.

    Everything is verified before the model is touched: the file (readable, format
    ``hydra-adapter/2``, well-formed metadata, every tensor's SHA-256 and finiteness), the
    configuration (every field but ``path`` must equal the model's), the adapted layers (names
    and shapes), the tensors (names and shapes) and the regenerated tensors (initial pool, fixed
    part, index maps, block nodes: regenerated here from the checkpoint's seed names and
    compared with the checkpoint's digests). On any mismatch the model is unchanged.

    Parameters
    ----------
    model : nn.Module
        A model prepared with ``hydra.inject(model, config)``, not merged; a DDP/DataParallel
        wrapper is fine.
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
        Unreadable, damaged (digest mismatch) or older-format file, malformed metadata, NaN or
        infinite values, a configuration, layer or tensor mismatch, or regenerated tensors that
        differ from the checkpoint's (another torch/NumPy random stream, other block nodes); the
        message names the differing fields, layers or tensors.

    Notes
    -----
    The pools and index maps are regenerated from the *checkpoint's* seed names, so a
    checkpoint of a model injected as ``model.bert`` loads exactly into a model injected as a
    whole (and back). When the checkpoint's :math:`\theta^{(0)}` was held in another dtype
    than this model's (saved after ``model.to(torch.bfloat16)``, loaded in float32), the saved
    deviation :math:`\theta - \theta^{(0)}` is transferred rather than the rounded values,
    so an untrained adapter keeps :math:`\Delta W = 0` exactly.

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
    _distributed.refuse_sharded(model, "load")
    adapters = _require_adapters(model, "load")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no adapter checkpoint at {path!r}")
    saved_config, saved_layers, table, environment, tensors = _read_checkpoint(path)
    config = _common_config(adapters)
    if type(saved_config) is not type(config):
        raise CheckpointError(
            f"{path!r} holds a {type(saved_config).__name__} adapter; the model has {type(config).__name__}"
        )
    ours, theirs = config.parameter_fields(), saved_config.parameter_fields()
    differ = [f"{k}: checkpoint {theirs.get(k)!r} vs model {ours[k]!r}" for k in ours if ours[k] != theirs.get(k)]
    if differ:
        raise CheckpointError(f"{path!r} was saved with a different configuration: " + "; ".join(differ))
    strip = [{k: d[k] for k in ("name", "in_features", "out_features")} for d in saved_layers]
    if strip != _layer_table(adapters):
        raise _layer_mismatch(path, saved_layers, _layer_table(adapters))
    expected_params = _checkpoint_tensors(adapters, model)
    if set(tensors) != set(expected_params):
        raise CheckpointError(
            f"{path!r} tensors differ from the model's: missing {sorted(set(expected_params) - set(tensors))}, "
            f"unexpected {sorted(set(tensors) - set(expected_params))}"
        )
    bad = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(p.shape)}"
           for k, p in expected_params.items() if tuple(tensors[k].shape) != tuple(p.shape)]
    if bad:
        raise CheckpointError(f"{path!r} tensor shapes differ from the model's: " + "; ".join(bad))
    seed_names = {row["name"]: row["seed_name"] for row in saved_layers}
    expected = _expected_regenerated(adapters, config, seed_names)
    _check_regenerated_digests(path, saved_layers, expected, environment)
    pools = {_pool_key(n, a): (n, a.pool) for n, a in adapters.items() if isinstance(a, HydraLinear)}
    missing_dtype = [k for k in pools if "initial_dtype" not in table[k]]
    if missing_dtype:
        raise CheckpointError(f"{path!r} has malformed metadata: tensors {missing_dtype} lack 'initial_dtype'")
    merged = [n for n, a in adapters.items() if a.merged]
    if merged:
        raise ValueError(f"cannot load into merged layers {merged}; call hydra.unmerge(model) first")
    with torch.no_grad():
        _restore_regenerated(adapters, expected, seed_names)
        for key, p in expected_params.items():
            value = tensors[key]
            if key in pools:
                name, pool = pools[key]
                value = _integrity.transfer_trainable(
                    value, expected[name]["pool.initial"], getattr(torch, table[key]["initial_dtype"]), pool
                )
            p.copy_(value.to(device=p.device, dtype=p.dtype))
    return model

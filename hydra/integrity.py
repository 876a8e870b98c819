r"""What makes a HyDRA checkpoint verifiable: digests of the regenerated and of the stored tensors.

A HyDRA layer does not store everything it computes with. The initial pool :math:`\theta^{(0)}`,
the fixed random part and the index map are drawn again from ``(seed, layer name)`` when a model
is built, and the block buffers (the Vandermonde/Cauchy nodes and matrices) are recomputed from
the block shape. Trainable values saved by one model therefore reproduce its output in another
only if both regenerate *bit-identical* tensors, which fails silently when the layer name used as
seed differs (a model injected as ``model.bert`` and loaded into ``model``), when the loading
environment's torch or NumPy draws other random streams, or when the node choice changes
between library versions.

This module names every regenerated tensor of a layer (``pool.initial``, ``pool.fixed``,
``index_map``, ``blocks.<buffer>``), computes the tensors a configuration *should* regenerate
(:func:`expected_regenerated`) and SHA-256 digests of them (:func:`tensor_digest`), which
:func:`hydra.save` stores and :func:`hydra.load` checks before it changes anything. Each
:class:`~hydra.HydraLinear` also carries the combined digest as a persistent ``uint8`` buffer,
``regenerated_digest``, so that ``model.load_state_dict(other.state_dict())`` refuses a state
dict whose trainable values belong to other regenerated tensors (:func:`attach_digest`).
"""

from __future__ import annotations

import hashlib
import warnings

import torch

from .blocks import block_structure
from .partition import BlockPartitioner
from .pool import pool_initial_values
from .sampler import balanced_index_map

__all__ = [
    "CheckpointError",
    "DIGEST_BUFFER",
    "SHARED_POOL_NAME",
    "tensor_digest",
    "combined_digest",
    "layer_regenerated",
    "expected_regenerated",
    "shared_index_maps",
    "attach_digest",
    "guard_model_load",
    "set_digest",
    "transfer_trainable",
]

#: Name of the persistent buffer of :class:`~hydra.HydraLinear` that holds the combined digest.
DIGEST_BUFFER = "regenerated_digest"
#: Seed name of the one pool of ``shared_pool=True``.
SHARED_POOL_NAME = "shared"


class CheckpointError(ValueError):
    """A checkpoint or state dict that cannot be loaded into this model without changing its output.

    Raised for an unreadable or damaged file, an older format, malformed metadata, a
    configuration, layer or tensor mismatch, non-finite stored values, or regenerated tensors
    (initial pool, fixed part, index maps, block nodes) that differ from the ones the checkpoint
    was trained with. The message names what differs.
    """

    # Public under hydra.model (and hydra); the repr keeps that name.
    __module__ = "hydra.model"


def tensor_digest(tensor):
    """SHA-256 (hex) of a tensor's dtype, shape and bytes, computed on a CPU copy.

    Parameters
    ----------
    tensor : torch.Tensor

    Returns
    -------
    str
        64 hexadecimal digits; equal digests mean equal dtype, shape and bit pattern.

    Examples
    --------
    >>> import torch
    >>> from hydra.integrity import tensor_digest
    >>> a = torch.tensor([1.0, -0.0])
    >>> tensor_digest(a) == tensor_digest(a.clone()), tensor_digest(a) == tensor_digest(torch.tensor([1.0, 0.0]))
    (True, False)
    """
    t = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest = hashlib.sha256(f"{t.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def combined_digest(digests, layout=""):
    """One SHA-256 (32 bytes) of a ``{name: hex digest}`` table (order-independent) and a layout string."""
    text = ";".join(f"{name}={digests[name]}" for name in sorted(digests))
    return hashlib.sha256(f"{layout}|{text}".encode()).digest()


def _layout(layer):
    # How the pool's numbers become ΔW: equal regenerated tensors under another structure, k or
    # rank (e.g. Toeplitz-like vs Hankel-like, which need no buffers) would still differ.
    config = layer.config
    return f"{config.structure} k={config.k} rank={config.rank} blocks={layer.partition.block_shape}"


def _named(pool_values, n_trainable, index_map, block_buffers):
    named = {
        "pool.initial": pool_values[:n_trainable],
        "pool.fixed": pool_values[n_trainable:],
        "index_map": index_map,
    }
    named.update({f"blocks.{key}": value for key, value in block_buffers.items()})
    return named


def layer_regenerated(layer):
    r"""The regenerated tensors a :class:`~hydra.HydraLinear` holds now, by name.

    Returns
    -------
    dict
        ``pool.initial`` (the trainable part's :math:`\theta^{(0)}`), ``pool.fixed``,
        ``index_map`` (flat, slot order) and ``blocks.<name>`` for every block buffer.
    """
    pool = layer.pool
    values = torch.cat([pool.initial.detach(), pool.fixed.detach().to(pool.initial.dtype)])
    index = torch.cat([layer.index_g, layer.index_h], dim=-1).reshape(-1)
    return _named(values, pool.n_trainable, index, layer._fixed_values)


def shared_index_maps(config, slot_counts, warn=False):
    """Split the shared pool's balanced index map over layers with ``slot_counts`` slots, in order.

    ``warn``: warn when the pool has more entries than all the layers' slots together.
    """
    index = balanced_index_map(sum(slot_counts), config.pool_size, config.seed, SHARED_POOL_NAME, warn=warn)
    maps, start = [], 0
    for count in slot_counts:
        maps.append(index[start : start + count])
        start += count
    return maps


def expected_regenerated(config, layers):
    r"""The tensors HyDRA layers built from ``config`` regenerate, computed from scratch.

    Parameters
    ----------
    config : HydraConfig
    layers : list of (str, int, int)
        ``(seed name, out_features, in_features)`` of every adapted layer, in model order (the
        order fixes the split of a shared pool's index map).

    Returns
    -------
    list of dict
        Per layer, the named CPU tensors of :func:`layer_regenerated`, as a freshly injected
        model in this environment holds them (pool values float32, index maps int64, block
        buffers float64).

    Examples
    --------
    >>> import torch, hydra
    >>> from hydra.integrity import expected_regenerated, layer_regenerated
    >>> cfg = hydra.HydraConfig(structure="cauchy_like", k=2, pool_size=16, target_modules=["q"])
    >>> layer = hydra.HydraLinear(torch.nn.Linear(8, 8), cfg, name="q")
    >>> ours = layer_regenerated(layer)
    >>> theirs = expected_regenerated(cfg, [("q", 8, 8)])[0]
    >>> sorted(ours) == sorted(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    True
    """
    shapes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # padding warnings were given when the model was built
        for _, m, n in layers:
            part = BlockPartitioner(m, n, config.k)
            shapes.append(block_structure(config.structure, *part.block_shape, config.rank))
    counts = [config.k**2 * blocks.slots_per_block for blocks in shapes]
    if config.shared_pool:
        values = pool_initial_values(config.pool_size, config.seed, SHARED_POOL_NAME, config.init_std)
        maps = shared_index_maps(config, counts)
        pools = [values] * len(layers)
    else:
        pools = [pool_initial_values(config.pool_size, config.seed, name, config.init_std) for name, _, _ in layers]
        maps = [balanced_index_map(count, config.pool_size, config.seed, name, warn=False)
                for (name, _, _), count in zip(layers, counts)]
    return [
        _named(values, config.n_trainable, torch.from_numpy(index), blocks.buffers())
        for values, index, blocks in zip(pools, maps, shapes)
    ]


def transfer_trainable(stored, theta0, stored_initial_dtype, pool):
    r"""Values for ``pool.trainable`` that keep a saved model's offset :math:`\theta - \theta^{(0)}`.

    Parameters
    ----------
    stored : torch.Tensor
        The saved trainable values, in the saved model's dtype.
    theta0 : torch.Tensor
        The trainable part's :math:`\theta^{(0)}` as regenerated (float32).
    stored_initial_dtype : torch.dtype
        The dtype the saved model held :math:`\theta^{(0)}` in (bfloat16 after ``model.to(torch.bfloat16)``).
    pool : ParameterPool
        The receiving pool (its ``initial`` and ``trainable`` dtypes count).

    Returns
    -------
    torch.Tensor
        In ``pool.trainable``'s dtype. Where both models hold the same :math:`\theta^{(0)}` this
        is ``stored`` itself (bit-identical); elsewhere it is this model's :math:`\theta^{(0)}`
        plus the saved deviation. Copying ``stored`` there instead would turn the rounding of
        :math:`\theta^{(0)}` into a spurious update; this way an untrained adapter saved in
        bfloat16 loads into float32 (and back) with :math:`\Delta W = 0` exactly.
    """
    theirs = theta0.to(stored_initial_dtype).to(stored.dtype).double()
    ours = theta0.to(pool.initial.dtype).to(pool.trainable.dtype).double()
    values = stored.detach().to("cpu").double()
    return torch.where(theirs == ours, values, ours + (values - theirs)).to(pool.trainable.dtype)


def set_digest(layer, digests):
    """Store the combined digest of ``{name: hex digest}`` (and the layer's layout) in its ``regenerated_digest`` buffer."""
    value = torch.tensor(list(combined_digest(digests, _layout(layer))), dtype=torch.uint8)
    getattr(layer, DIGEST_BUFFER).copy_(value)


def attach_digest(layer):
    r"""Give a :class:`~hydra.HydraLinear` its ``regenerated_digest`` buffer and state-dict check.

    The buffer (32 ``uint8``, persistent, so it is part of ``state_dict()``) holds the combined
    digest of :func:`layer_regenerated` and of the block layout (structure, k, rank, block shape). A ``load_state_dict`` pre-hook compares the incoming
    entry with it and raises :class:`~hydra.CheckpointError` when they differ, before this layer's
    tensors are copied: the incoming trainable values were trained against other regenerated
    tensors (another seed, another layer name, another environment) and would give another ΔW.
    A state dict without the entry (e.g. the base model's weights, loaded with ``strict=False``)
    passes unchecked. When the incoming pool values have another floating dtype than this
    layer's (a bfloat16 model's state dict loaded into a float32 one), they are converted by
    :func:`transfer_trainable`, assuming the saving model held :math:`\theta^{(0)}` in that
    dtype too (as ``model.to(dtype)`` does), so ΔW is carried over, not the rounding of
    :math:`\theta^{(0)}`.
    """
    digests = {name: tensor_digest(value) for name, value in layer_regenerated(layer).items()}
    device = layer.index_g.device
    layer.register_buffer(DIGEST_BUFFER, torch.zeros(32, dtype=torch.uint8, device=device))
    set_digest(layer, digests)
    layer.register_load_state_dict_pre_hook(_check_incoming_digest)


def guard_model_load(model):
    """Check every HyDRA layer's incoming state before ``model.load_state_dict`` copies anything.

    torch loads a state dict module by module, running each module's pre-hooks just before
    copying that module's tensors, so the per-layer check of :func:`attach_digest` alone would
    refuse layer 3 after layers 1 and 2 had already been overwritten. This pre-hook on the
    model runs first, with the whole state dict, and applies the same check to every
    :class:`~hydra.HydraLinear` below it: a refused load leaves the whole model as it was. The
    adapter layers are looked up at load time (adapters added or removed later count).
    Registered once per model by :func:`hydra.inject`.

    Parameters
    ----------
    model : torch.nn.Module
        The module :func:`hydra.inject` adapted (the hook also runs when a wrapper around it,
        such as DataParallel, loads a state dict with a prefix).

    Examples
    --------
    >>> import torch, hydra
    >>> model = hydra.inject(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)),
    ...                      hydra.HydraConfig(target_modules=["0", "1"], k=2, pool_size=28))
    >>> state = {key: value.clone() for key, value in model.state_dict().items()}
    >>> state["0.pool.trainable"] += 1.0                  # a change to layer 0 ...
    >>> state["1.regenerated_digest"][0] ^= 1             # ... and a damaged layer 1
    >>> before = model[0].pool.trainable.clone()
    >>> try:
    ...     model.load_state_dict(state)
    ... except hydra.CheckpointError:
    ...     print("refused")
    refused
    >>> torch.equal(model[0].pool.trainable, before)      # layer 0 was not touched either
    True
    """
    if not getattr(model, "_hydra_load_guard", False):
        model.register_load_state_dict_pre_hook(_check_all_incoming)
        model._hydra_load_guard = True


def _check_all_incoming(model, state_dict, prefix, *_):
    for name, module in model.named_modules():
        if hasattr(module, DIGEST_BUFFER) and hasattr(module, "layer_name"):
            _check_incoming_digest(module, state_dict, f"{prefix}{name}." if name else prefix)


def _check_incoming_digest(layer, state_dict, prefix, *_):
    key = prefix + DIGEST_BUFFER
    if key not in state_dict:
        return
    incoming, ours = state_dict[key], getattr(layer, DIGEST_BUFFER)
    same = (
        isinstance(incoming, torch.Tensor)
        and incoming.shape == ours.shape
        and incoming.dtype == ours.dtype
        and torch.equal(incoming.to("cpu"), ours.to("cpu"))
    )
    if not same:
        raise CheckpointError(
            f"state dict entry {key!r} differs from the adapter's: its values were trained with other "
            f"regenerated tensors (initial pool, fixed part, index map or block nodes) than layer "
            f"{layer.layer_name!r} of this model, because the seed, the layer's name when it was injected, "
            "the library version or the random-number streams of torch/NumPy differ; they would give a "
            "different update. Inject the same configuration into the same module, or use hydra.save and "
            "hydra.load, which regenerate from the checkpoint's seeds and verify every tensor"
        )
    _convert_incoming_pool(layer, state_dict, prefix + "pool.trainable")


def _convert_incoming_pool(layer, state_dict, key):
    incoming, pool = state_dict.get(key), layer.pool
    if not (isinstance(incoming, torch.Tensor) and incoming.is_floating_point()
            and incoming.dtype != pool.trainable.dtype and incoming.shape == pool.trainable.shape):
        return
    # load_state_dict hands the hooks its own shallow copy of the dict: the caller's is untouched.
    theta0 = pool_initial_values(pool.size, pool.seed, pool.name, pool.init_std)[: pool.n_trainable]
    state_dict[key] = transfer_trainable(incoming, theta0, incoming.dtype, pool)

r"""Multi-process training: what works (DDP) and what is refused (FSDP), with the reason.

**DDP** (``torch.nn.parallel.DistributedDataParallel``, any backend) needs nothing special:
inject, then wrap, then train ``hydra.trainable_parameters(ddp_model)``. Every rank builds the
same adapters (pools, fixed parts, index maps and nodes are regenerated from the seed and the
layer names, which ``hydra.model`` takes without the wrapper's ``module.`` prefix), DDP
averages the gradients, and :func:`hydra.save` / :func:`hydra.load` / :func:`hydra.save_pretrained`
accept the wrapped model: checkpoint names carry no ``module.`` prefix, so a checkpoint written
under DDP loads into a plain model and back (tested with two gloo processes on the CPU).

**FSDP** (``FullyShardedDataParallel`` and ``fully_shard``) is refused by the checkpoint
functions: outside FSDP's own gather, each rank holds a shard (or a ``DTensor``) of every
parameter, so saving or merging would read a fraction of the pool, or a tensor subclass, instead
of the adapter. HyDRA's trainable tensors are a fraction of a percent of the model, so sharding
them saves nothing; shard the frozen base with FSDP only if it does not fit one device, and
then gather a full state dict with FSDP's ``state_dict`` APIs yourself. DDP is the supported
way to train on several processes or machines.
"""

from __future__ import annotations

import torch

__all__ = ["sharded_modules", "refuse_sharded"]


def _fsdp_types():
    if not torch.distributed.is_available():
        return (), None
    types = []
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel

        types.append(FullyShardedDataParallel)
    except ImportError:  # pragma: no cover - every torch with distributed has it
        pass
    try:
        from torch.distributed.fsdp import FSDPModule

        types.append(FSDPModule)
    except ImportError:  # torch < 2.6 has no fully_shard module class
        pass
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        DTensor = None
    return tuple(types), DTensor


def sharded_modules(model):
    """Names of the FSDP-wrapped modules of ``model`` (``""`` for the model itself) and of ``DTensor`` parameters.

    Examples
    --------
    >>> import torch
    >>> from hydra.distributed import sharded_modules
    >>> sharded_modules(torch.nn.Linear(2, 2))
    []
    """
    types, dtensor = _fsdp_types()
    names = [name for name, module in model.named_modules() if types and isinstance(module, types)]
    if dtensor is not None:
        names += [name for name, p in model.named_parameters() if isinstance(p, dtensor)]
    return names


def refuse_sharded(model, action):
    """Raise :class:`ValueError` when ``model`` is sharded by FSDP (see the module notes for why).

    Parameters
    ----------
    model : nn.Module
    action : str
        What was attempted (``"save"``, ``"load"``, ``"merge"``), for the message.
    """
    names = sharded_modules(model)
    if names:
        shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
        raise ValueError(
            f"cannot {action} hydra adapters of an FSDP-sharded model ({shown}): each rank holds only a shard "
            "of the pool, so the result would be wrong. Train hydra adapters with DistributedDataParallel "
            "(the adapters are far too small to need sharding), or gather a full state dict with FSDP first"
        )

"""hydra: HyDRA adapters (block-LDR weight updates drawn from a parameter pool) for torch models.

HyDRA (hyper-network low-displacement-rank adaptation) fine-tunes a frozen ``nn.Linear``
:math:`y = W_0 x` by adding :math:`s\\,\\Delta W x`, where :math:`\\Delta W` is a k×k grid of LDR
blocks (Toeplitz, Toeplitz-like, Hankel-like, Vandermonde-like, Cauchy-like or low-rank)
whose numbers are gathered from one small pool through a seeded, balanced index map. Use it
like peft's LoRA::

    import hydra
    cfg = hydra.HydraConfig(structure="vandermonde_like", k=4, rank=1, pool_size=3072,
                            fixed_ratio=0.5, seed=0, target_modules=["query", "value"])
    model = hydra.inject(model, cfg)
    print(hydra.report(model))
    ...                                        # train hydra.trainable_parameters(model)
    hydra.save(model, "adapter.safetensors")

LoRA (:class:`LoRAConfig`) and single-matrix LDR adapters (:class:`LDRConfig`) share the API,
as baselines. See :doc:`/theory/hydra`.
"""

from . import _names
from .blocks import block_structure
from .config import HYDRA_STRUCTURES, LDR_STRUCTURES, HydraConfig, LDRConfig, LoRAConfig, config_from_dict
from .layers import AUTO_FFT_BLOCK_SIZE, AdapterLinear, HydraLinear, LDRLinear, LoRALinear, auto_path
from .model import (
    AdapterReport,
    CheckpointError,
    LayerReport,
    adapter_layers,
    inject,
    load,
    merge,
    report,
    save,
    trainable_parameters,
    unload,
    unmerge,
)
from .partition import BlockPartitioner
from .pool import ParameterPool
from .pretrained import TransformersSaveError, from_pretrained, load_pretrained, save_pretrained
from .sampler import balanced_index_map, stable_seed

__version__ = "0.1.0"

# hydra-core also installs a top-level `hydra`: say so when both are installed (see ldr_hydra).
_names.warn_if_hydra_core(__name__)

__all__ = [
    "HydraConfig",
    "LoRAConfig",
    "LDRConfig",
    "config_from_dict",
    "HYDRA_STRUCTURES",
    "LDR_STRUCTURES",
    "ParameterPool",
    "balanced_index_map",
    "stable_seed",
    "BlockPartitioner",
    "block_structure",
    "AdapterLinear",
    "HydraLinear",
    "LoRALinear",
    "LDRLinear",
    "auto_path",
    "AUTO_FFT_BLOCK_SIZE",
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
    "save_pretrained",
    "from_pretrained",
    "load_pretrained",
    "TransformersSaveError",
]

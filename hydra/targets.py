r"""Which modules :func:`hydra.inject` adapts and which it trains in full.

Three things a peft user expects from ``target_modules`` and ``modules_to_save`` live here:

* ``target_modules="all-linear"``: every ``nn.Linear`` (and GPT-2 ``Conv1D``) except the output
  head, resolved against the model at :func:`hydra.inject` time (peft's rule, see
  :func:`find_targets`).
* GPT-2's :class:`transformers.pytorch_utils.Conv1D` (``c_attn``, ``c_proj``, ``c_fc``), which
  stores its weight as (in, out) (peft's ``fan_in_fan_out``): it is adapted through
  :class:`Conv1DLinear`, an ``nn.Linear`` *view* of the same parameters, so merging writes into
  the Conv1D's own weight and :func:`hydra.unload` puts the original Conv1D object back.
* ``modules_to_save=["classifier"]``: modules left trainable by :func:`hydra.inject` and stored
  in checkpoints (keys ``modules_to_save.<module name>.<parameter name>``, see
  :func:`saved_module_tensors`).
"""

from __future__ import annotations

import re
import sys

import torch.nn.functional as F
from torch import nn

__all__ = [
    "ALL_LINEAR",
    "Conv1DLinear",
    "find_targets",
    "original_module",
    "modules_to_save",
    "saved_module_tensors",
    "unfreeze_modules_to_save",
    "MODULES_TO_SAVE_PREFIX",
]

#: The ``target_modules`` shorthand for "every linear layer but the output head" (as in peft).
ALL_LINEAR = "all-linear"
#: Top-level classification heads that ``"all-linear"`` leaves alone (peft's ``SEQ_CLS_HEAD_NAMES``):
#: a freshly initialised head is trained in full (``modules_to_save``), not adapted.
HEAD_NAMES = ("classifier", "score")
#: Checkpoint key prefix of the tensors of ``modules_to_save``.
MODULES_TO_SAVE_PREFIX = "modules_to_save."


def _conv1d_type():
    """transformers' GPT-2 ``Conv1D`` class if transformers is already imported, else ``None``.

    A model holding a Conv1D has imported transformers already, so this never pays for the import.
    """
    module = sys.modules.get("transformers.pytorch_utils")
    return getattr(module, "Conv1D", None)


class Conv1DLinear(nn.Linear):
    r"""An ``nn.Linear`` view of GPT-2's ``Conv1D`` (weight stored as (in, out)): the same parameters, no copy.

    ``weight`` is ``conv.weight.T`` (a view of shape (out, in)); in-place updates such as
    :func:`hydra.merge` write into the Conv1D's parameter. The state dict holds the Conv1D's own
    tensors under the Conv1D's own names (``weight`` of shape (in, out), ``bias``), so a
    checkpoint of the base model is unchanged by the view.

    Parameters
    ----------
    conv : transformers.pytorch_utils.Conv1D
        ``y = x @ conv.weight + conv.bias``.

    Examples
    --------
    >>> import torch
    >>> from transformers.pytorch_utils import Conv1D
    >>> from hydra.targets import Conv1DLinear
    >>> conv = Conv1D(6, 4)                       # nf = 6 outputs, nx = 4 inputs
    >>> view = Conv1DLinear(conv)
    >>> view.in_features, view.out_features, tuple(view.weight.shape)
    (4, 6, (6, 4))
    >>> x = torch.randn(3, 4)
    >>> bool(torch.allclose(view(x), conv(x)))
    True
    """

    def __init__(self, conv):
        nn.Module.__init__(self)
        nx, nf = conv.weight.shape
        self.in_features, self.out_features = nx, nf
        # Registered directly: the class-level ``weight`` property below would make
        # register_parameter refuse the name.
        self._parameters["weight"] = conv.weight
        self._parameters["bias"] = conv.bias
        # Not a submodule (its parameters would appear twice in the state dict).
        object.__setattr__(self, "conv", conv)

    @property
    def weight(self):
        return self._parameters["weight"].T

    def forward(self, x):
        return F.linear(x, self.weight, self._parameters["bias"])

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, fan_in_fan_out=True"


def original_module(layer):
    """The module an adapter's ``base_layer`` stands for: the Conv1D behind a :class:`Conv1DLinear`, else ``layer``."""
    return layer.conv if isinstance(layer, Conv1DLinear) else layer


def _matches(name, targets):
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def _inside(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules_to_save(model, config):
    """``{name: module}`` of the modules ``config.modules_to_save`` names (name suffixes, as ``target_modules``).

    Raises
    ------
    ValueError
        When a name matches no module (the message lists the model's top-level children).
    """
    names = getattr(config, "modules_to_save", None) or []
    found = {}
    for wanted in names:
        hits = {n: m for n, m in model.named_modules() if n and (n == wanted or n.endswith("." + wanted))}
        if not hits:
            children = ", ".join(repr(n) for n, _ in model.named_children()) or "(none)"
            raise ValueError(
                f"modules_to_save entry {wanted!r} matched no module of the model; its top-level modules are: "
                f"{children}"
            )
        found.update(hits)
    # A module inside another saved module is saved with it.
    return {n: m for n, m in found.items() if not _inside(n, [o for o in found if o != n])}


def _output_head_names(model):
    """Names of the modules ``"all-linear"`` must not adapt: the output embedding and classification heads."""
    heads = []
    get_output = getattr(model, "get_output_embeddings", None)
    output = get_output() if callable(get_output) else None
    for name, module in model.named_modules():
        if output is not None and module is output:
            heads.append(name)
    heads += [name for name in HEAD_NAMES if isinstance(getattr(model, name, None), nn.Module)]
    return heads


def find_targets(model, config):
    r"""The layers :func:`hydra.inject` adapts: ``(candidates, targets)``.

    Parameters
    ----------
    model : nn.Module
    config : HydraConfig, LoRAConfig or LDRConfig
        ``target_modules``: a list of name suffixes, a regular expression (:func:`re.fullmatch` on
        the full name) or ``"all-linear"``; ``modules_to_save``: names of modules trained in full.

    Returns
    -------
    candidates : list of (str, nn.Module)
        Every adaptable layer (``nn.Linear``, and GPT-2 ``Conv1D``) with its name, for messages.
    targets : list of (str, nn.Linear)
        The matching layers, a ``Conv1D`` replaced by its :class:`Conv1DLinear` view.

    Raises
    ------
    ValueError
        When a ``modules_to_save`` name matches nothing, or when a target lies inside a module of
        ``modules_to_save`` (it would be trained twice). Nothing is modified.

    Notes
    -----
    ``"all-linear"`` follows peft: every ``nn.Linear``/``Conv1D`` except the output layer
    (``model.get_output_embeddings()``, e.g. a language model's ``lm_head``), the top-level
    classification heads ``classifier`` and ``score`` (peft skips them for sequence
    classification), and the modules of ``modules_to_save``. Cost: one walk over the modules.

    Examples
    --------
    >>> import torch, hydra
    >>> from hydra.targets import find_targets
    >>> model = torch.nn.ModuleDict({"body": torch.nn.Linear(4, 4), "classifier": torch.nn.Linear(4, 2)})
    >>> [n for n, _ in find_targets(model, hydra.LoRAConfig(target_modules="all-linear"))[1]]
    ['body']
    """
    conv1d = _conv1d_type()
    kinds = (nn.Linear,) if conv1d is None else (nn.Linear, conv1d)
    candidates = [(n, m) for n, m in model.named_modules() if n and isinstance(m, kinds)]
    saved = list(modules_to_save(model, config))
    wanted = config.target_modules
    if isinstance(wanted, str) and wanted.lower() == ALL_LINEAR:
        skip = saved + _output_head_names(model)
        chosen = [(n, m) for n, m in candidates if not _inside(n, skip)]
    else:
        chosen = [(n, m) for n, m in candidates if _matches(n, wanted)]
        overlap = [n for n, _ in chosen if _inside(n, saved)]
        if overlap:
            raise ValueError(
                f"target_modules {wanted!r} match {overlap}, which lie inside modules_to_save {saved}; a module "
                "is either adapted or trained in full, not both"
            )
    targets = [(n, Conv1DLinear(m) if conv1d is not None and isinstance(m, conv1d) else m) for n, m in chosen]
    return candidates, targets


def unfreeze_modules_to_save(model, config):
    """Set ``requires_grad=True`` on every parameter of ``config.modules_to_save`` (after the freeze of inject)."""
    for module in modules_to_save(model, config).values():
        for p in module.parameters():
            p.requires_grad_(True)


def _strip_wrappers(name):
    # DDP and torch.compile prefix every name; checkpoints store the bare model's names.
    for prefix in ("module.", "_orig_mod."):
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name


def saved_module_tensors(model, config):
    """``{key: parameter}`` of ``modules_to_save``, keys ``modules_to_save.<module>.<parameter>`` in module order.

    Names are those of the bare model (a DDP ``module.`` or compiled ``_orig_mod.`` prefix is
    dropped), so a checkpoint written under DDP loads into a plain model and back.

    Examples
    --------
    >>> import torch, hydra
    >>> from hydra.targets import saved_module_tensors
    >>> model = torch.nn.ModuleDict({"body": torch.nn.Linear(4, 4), "classifier": torch.nn.Linear(4, 2)})
    >>> cfg = hydra.LoRAConfig(rank=1, target_modules=["body"], modules_to_save=["classifier"])
    >>> sorted(saved_module_tensors(hydra.inject(model, cfg), cfg))
    ['modules_to_save.classifier.bias', 'modules_to_save.classifier.weight']
    """
    tensors = {}
    for name, module in modules_to_save(model, config).items():
        for pname, p in module.named_parameters():
            tensors[f"{MODULES_TO_SAVE_PREFIX}{_strip_wrappers(name)}.{pname}"] = p
    return tensors

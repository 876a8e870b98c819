r"""Adapter folders in the Hugging Face layout: :func:`~hydra.save_pretrained`, :func:`~hydra.from_pretrained`, :func:`~hydra.load_pretrained`.

A folder written by :func:`~hydra.save_pretrained` holds what peft's ``save_pretrained`` writes:

* ``adapter_config.json``: the configuration (:meth:`~hydra.HydraConfig.to_dict`) plus
  ``"library": "ldr-hydra"`` and the library version, so :func:`~hydra.from_pretrained` needs the
  base model and the folder only;
* ``adapter_model.safetensors``: the checkpoint of :func:`hydra.save` (trainable adapter
  tensors, ``modules_to_save``, metadata validated on load).

transformers' own ``model.save_pretrained`` cannot save an injected model correctly: it writes
the adapted layers under the adapter's names (``query.base_layer.weight``, ``query.pool...``),
which ``from_pretrained`` does not recognise, so they would reload *randomly initialised* with a
warning only. :func:`hydra.inject` therefore replaces ``save_pretrained`` on the injected
transformers model by a function that raises :class:`TransformersSaveError` with the two correct
ways; :func:`hydra.unload` restores it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "save_pretrained",
    "from_pretrained",
    "load_pretrained",
    "read_config",
    "TransformersSaveError",
]

#: File names inside an adapter folder (the names peft uses).
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
_LIBRARY = "ldr-hydra"


class TransformersSaveError(TypeError):
    """``model.save_pretrained`` was called on a model with HyDRA adapters (see :mod:`hydra.pretrained`)."""


def _refuse_save_pretrained(*args, **kwargs):
    raise TransformersSaveError(
        "this transformers model has hydra adapters: model.save_pretrained would store the adapted layers under "
        "names that from_pretrained does not know, and they would reload randomly initialised. Save the adapter "
        "with hydra.save_pretrained(model, folder) (reload: hydra.from_pretrained(base_model, folder)), or a full "
        "model with the update folded in with hydra.unload(model, merge=True).save_pretrained(folder). With "
        "transformers.Trainer use hydra.trainer.HydraTrainer, which writes adapter-only checkpoints and resumes "
        "from them."
    )


def guard_transformers_save(model):
    """Make ``model.save_pretrained`` raise :class:`TransformersSaveError` (called by :func:`hydra.inject`)."""
    if callable(getattr(type(model), "save_pretrained", None)):
        # An instance attribute: a plain function (no reference to the model) keeps deepcopy and pickle working.
        model.__dict__["save_pretrained"] = _refuse_save_pretrained


def release_transformers_save(model):
    """Undo :func:`guard_transformers_save` (called by :func:`hydra.unload`)."""
    if model.__dict__.get("save_pretrained") is _refuse_save_pretrained:
        del model.__dict__["save_pretrained"]


def _atomic_write_text(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".hydra-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def save_pretrained(model, save_directory):
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` into ``save_directory``.

    Parameters
    ----------
    model : nn.Module
        A model with adapters (:func:`hydra.inject`); a DDP-wrapped model works too.
    save_directory : str or os.PathLike
        Created if missing; existing adapter files in it are replaced (each file atomically).

    Returns
    -------
    str
        The folder's path.

    Notes
    -----
    The weights file is :func:`hydra.save`'s checkpoint (adapter tensors only, plus
    ``modules_to_save``); the config file is the configuration as JSON, which
    :func:`from_pretrained` reads back. Cost: the size of the trainable tensors.

    Examples
    --------
    >>> import os, tempfile, torch, hydra
    >>> torch.manual_seed(0) is not None
    True
    >>> make = lambda: torch.nn.ModuleDict({"query": torch.nn.Linear(8, 8), "classifier": torch.nn.Linear(8, 2)})
    >>> base = make()
    >>> fresh = make()
    >>> _ = fresh.load_state_dict(base.state_dict())
    >>> cfg = hydra.HydraConfig(k=2, pool_size=20, target_modules=["query"], modules_to_save=["classifier"])
    >>> model = hydra.inject(base, cfg)
    >>> with torch.no_grad():
    ...     _ = model["query"].pool.trainable.add_(0.1)
    ...     _ = model["classifier"].weight.add_(1.0)
    >>> folder = tempfile.mkdtemp()
    >>> sorted(os.listdir(hydra.save_pretrained(model, folder)))
    ['adapter_config.json', 'adapter_model.safetensors']
    >>> loaded = hydra.from_pretrained(fresh, folder)
    >>> x = torch.randn(3, 8)
    >>> all(torch.equal(loaded[k](x), model[k](x)) for k in ("query", "classifier"))
    True
    """
    from . import __version__
    from .model import _common_config, _require_adapters, save

    from .distributed import refuse_sharded

    save_directory = os.fspath(save_directory)
    refuse_sharded(model, "save")
    config = _common_config(_require_adapters(model, "save_pretrained"))
    os.makedirs(save_directory, exist_ok=True)
    save(model, os.path.join(save_directory, WEIGHTS_NAME))
    data = {**config.to_dict(), "library": _LIBRARY, "library_version": __version__}
    _atomic_write_text(os.path.join(save_directory, CONFIG_NAME), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return save_directory


def read_config(directory):
    """The configuration stored in ``directory/adapter_config.json`` (validated).

    Raises
    ------
    FileNotFoundError
        No ``adapter_config.json`` in ``directory``.
    hydra.CheckpointError
        (a ValueError) The file is not JSON, or not a hydra adapter configuration (e.g. a peft LoRA folder).
    """
    from .config import config_from_dict
    from .model import CheckpointError

    path = os.path.join(os.fspath(directory), CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {CONFIG_NAME} in {os.fspath(directory)!r}: not an adapter folder")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("library") != _LIBRARY:
        kind = data.get("peft_type") if isinstance(data, dict) else None
        hint = f" (a peft {kind} adapter: load it with peft)" if kind else ""
        raise CheckpointError(f"{path!r} is not a hydra adapter configuration{hint}")
    fields = {k: v for k, v in data.items() if k not in ("library", "library_version")}
    try:
        return config_from_dict(fields)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r} holds an invalid configuration: {exc}") from None


def load_pretrained(model, directory):
    """Load an adapter folder into a model already injected with the folder's configuration.

    The model's configuration must equal the folder's (all fields but the runtime ``path``);
    everything is validated before the model changes (see :func:`hydra.load`).

    Returns
    -------
    nn.Module
        ``model``, with the loaded values.
    """
    from .model import CheckpointError, _common_config, _require_adapters, load

    from .distributed import refuse_sharded

    refuse_sharded(model, "load")
    saved = read_config(directory)
    config = _common_config(_require_adapters(model, "load_pretrained"))
    if type(saved) is not type(config) or saved.parameter_fields() != config.parameter_fields():
        raise CheckpointError(
            f"{os.fspath(directory)!r} holds the configuration {saved!r}; the model was injected with {config!r}"
        )
    return load(model, os.path.join(os.fspath(directory), WEIGHTS_NAME))


def from_pretrained(model, directory, *, is_trainable=False, path=None):
    """Inject the adapter stored in ``directory`` into a base ``model`` and load its values.

    Parameters
    ----------
    model : nn.Module
        The base model the adapter was trained on (same architecture and base weights), without
        adapters.
    directory : str or os.PathLike
        A folder written by :func:`save_pretrained`.
    is_trainable : bool, default False
        As in peft's ``PeftModel.from_pretrained``: ``False`` freezes the adapter and
        ``modules_to_save`` (inference); ``True`` keeps them trainable to continue training.
    path : {"auto", "dense", "fft"}, optional
        Override the runtime path stored in the configuration.

    Returns
    -------
    nn.Module
        ``model``, injected and loaded (in place).

    Raises
    ------
    FileNotFoundError, hydra.CheckpointError
        A missing or foreign folder, or a checkpoint that does not match the model. On an
        error after the injection the model is unloaded again, so it is left as it was.

    Examples
    --------
    See :func:`save_pretrained`.
    """
    import dataclasses

    from .model import inject, unload

    config = read_config(directory)
    if path is not None:
        config = dataclasses.replace(config, path=path)
    flags = {p: p.requires_grad for p in model.parameters()}
    inject(model, config)
    try:
        load_pretrained(model, directory)
    except BaseException:
        unload(model)
        for p, flag in flags.items():
            p.requires_grad_(flag)
        raise
    if not is_trainable:
        for p in model.parameters():
            p.requires_grad_(False)
    return model

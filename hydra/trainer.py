r"""Adapter-only ``transformers.Trainer`` checkpoints: :class:`HydraTrainer`.

``transformers.Trainer`` saves every checkpoint with ``model.save_pretrained``, i.e. the full
model (and for an injected model that save would not even reload correctly, see
:mod:`hydra.pretrained`), and resumes only from full-model or peft folders. :class:`HydraTrainer`
is a ``Trainer`` whose checkpoints hold the adapter folder of :func:`hydra.save_pretrained`
(``adapter_config.json``, ``adapter_model.safetensors``: trainable adapter tensors and
``modules_to_save``) next to the usual optimizer, scheduler, RNG and trainer state, and which
resumes from them (``trainer.train(resume_from_checkpoint=...)``) and reloads the best one
(``load_best_model_at_end``). Everything else is ``Trainer``'s own behaviour; a model without
adapters is saved and loaded exactly as ``Trainer`` does.

It overrides three ``Trainer`` methods, ``_save``, ``_load_from_checkpoint`` and
``_load_best_model`` (the hooks transformers itself uses for peft models); tested with the
transformers version in the project's constraints. Needs ``pip install 'ldr-hydra[hf]'``.
"""

from __future__ import annotations

import os

import torch
import transformers

from .model import adapter_layers
from .pretrained import CONFIG_NAME, load_pretrained, save_pretrained

__all__ = ["HydraTrainer", "is_adapter_checkpoint"]

# transformers' file name for the pickled TrainingArguments (transformers.trainer.TRAINING_ARGS_NAME).
TRAINING_ARGS_NAME = "training_args.bin"


def is_adapter_checkpoint(folder):
    """Whether ``folder`` holds a hydra adapter folder (``adapter_config.json`` written by :func:`hydra.save_pretrained`)."""
    return folder is not None and os.path.isfile(os.path.join(os.fspath(folder), CONFIG_NAME))


class HydraTrainer(transformers.Trainer):
    r"""A ``transformers.Trainer`` that writes and resumes from adapter-only checkpoints.

    Use it exactly like ``Trainer`` on a model prepared with :func:`hydra.inject` (set
    ``modules_to_save`` in the configuration for a freshly initialised head). Each
    ``checkpoint-N`` folder then holds the adapter folder instead of the full model.

    Notes
    -----
    Size: the adapter (pool trainable parts, ``modules_to_save``) plus the optimizer state of
    those tensors, instead of the full model and its optimizer state. Under DDP only the main
    process writes (``args.should_save``), as ``Trainer`` does; names carry no ``module.``
    prefix. DeepSpeed and FSDP checkpoints are not handled (``Trainer``'s own code path runs).

    Examples
    --------
    >>> import contextlib, io, os, tempfile, torch, transformers, hydra
    >>> from hydra.trainer import HydraTrainer
    >>> transformers.logging.set_verbosity_error()
    >>> cfg = transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    ...                               intermediate_size=32, vocab_size=50, max_position_embeddings=16)
    >>> def base():
    ...     torch.manual_seed(0)
    ...     return transformers.BertForSequenceClassification(cfg).eval()
    >>> adapter = hydra.HydraConfig(k=2, pool_size=60, target_modules=["query", "value"],
    ...                             modules_to_save=["classifier"])
    >>> model = hydra.inject(base(), adapter)
    >>> data = [{"input_ids": torch.randint(0, 50, (8,)), "labels": torch.tensor(i % 2)} for i in range(8)]
    >>> out = tempfile.mkdtemp()
    >>> args = transformers.TrainingArguments(out, max_steps=2, save_steps=2, per_device_train_batch_size=4,
    ...                                       report_to=[], use_cpu=True, disable_tqdm=True)
    >>> with contextlib.redirect_stdout(io.StringIO()):      # Trainer prints its final metrics
    ...     _ = HydraTrainer(model=model, args=args, train_dataset=data).train()
    >>> checkpoint = os.path.join(out, "checkpoint-2")
    >>> sorted(f for f in os.listdir(checkpoint) if f.startswith(("adapter", "model")))
    ['adapter_config.json', 'adapter_model.safetensors']
    >>> reloaded = hydra.from_pretrained(base(), checkpoint)
    >>> ids = torch.randint(0, 50, (2, 8))
    >>> bool(torch.equal(reloaded(ids).logits, model.eval()(ids).logits))
    True
    """

    def _adapter_model(self, model=None):
        model = self.accelerator.unwrap_model(self.model if model is None else model)
        return model if adapter_layers(model) else None

    def _save(self, output_dir=None, state_dict=None):
        model = self._adapter_model()
        if model is None:
            return super()._save(output_dir, state_dict=state_dict)
        output_dir = self.args.output_dir if output_dir is None else output_dir
        if not self.args.should_save:
            return None
        save_pretrained(model, output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))
        return None

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        adapted = self._adapter_model(model)
        if adapted is None or not is_adapter_checkpoint(resume_from_checkpoint):
            return super()._load_from_checkpoint(resume_from_checkpoint, model=model)
        load_pretrained(adapted, resume_from_checkpoint)
        return None

    def _load_best_model(self):
        adapted = self._adapter_model()
        best = self.state.best_model_checkpoint
        if adapted is None or not is_adapter_checkpoint(best):
            return super()._load_best_model()
        load_pretrained(adapted, best)
        return None

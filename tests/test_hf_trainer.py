"""Adapter-only ``transformers.Trainer`` checkpoints and resume (:class:`hydra.trainer.HydraTrainer`)."""

from __future__ import annotations

import os

import pytest
import torch

import hydra
from hf_models import bert_classifier

pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate (pip install 'ldr-hydra[hf]')")
import transformers  # noqa: E402

from hydra.trainer import HydraTrainer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*pool_size = .* exceeds")

CFG = hydra.HydraConfig(structure="toeplitz_like", k=2, pool_size=96, fixed_ratio=0.5, target_modules="all-linear",
                        modules_to_save=["classifier"])


def _data(n=16):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (n, 8), generator=g)
    return [{"input_ids": ids[i], "labels": torch.tensor(int(ids[i, 0] % 2))} for i in range(n)]


def _trainer(out, model, **kw):
    args = transformers.TrainingArguments(
        out, max_steps=4, save_steps=2, per_device_train_batch_size=4, learning_rate=5e-2, report_to=[],
        use_cpu=True, disable_tqdm=True, seed=0, logging_steps=100, **kw)
    return HydraTrainer(model=model, args=args, train_dataset=_data())


def _adapter(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if ".pool." in k or "classifier" in k}


def test_checkpoints_hold_the_adapter_only_and_resume_to_the_same_adapter(tmp_path):
    model = hydra.inject(bert_classifier(), CFG)
    start = _adapter(model)
    _trainer(tmp_path / "run", model).train()
    final = _adapter(model)
    assert any(not torch.equal(final[k], start[k]) for k in final)          # it trained

    checkpoint = tmp_path / "run" / "checkpoint-2"
    files = set(os.listdir(checkpoint))
    assert {"adapter_config.json", "adapter_model.safetensors", "optimizer.pt", "trainer_state.json"} <= files
    assert not files & {"model.safetensors", "pytorch_model.bin", "config.json"}
    # Adapter-only: the file's tensors are exactly the trainable ones (pools and the head).
    from safetensors.torch import load_file
    stored = load_file(checkpoint / "adapter_model.safetensors")
    trainable = hydra.trainable_parameters(model)
    assert sum(t.numel() for t in stored.values()) == sum(p.numel() for p in trainable)
    assert sum(p.numel() for p in trainable) < sum(p.numel() for p in model.parameters()) / 10

    # Resume from step 2 in a fresh model: the same adapter after step 4.
    fresh = hydra.inject(bert_classifier(), CFG)
    _trainer(tmp_path / "run", fresh).train(resume_from_checkpoint=str(checkpoint))
    resumed = _adapter(fresh)
    for key in final:
        assert torch.allclose(resumed[key], final[key], atol=1e-6, rtol=0), key


def test_resume_refuses_an_adapter_of_another_configuration(tmp_path):
    _trainer(tmp_path / "run", hydra.inject(bert_classifier(), CFG), ).train()
    other = hydra.inject(bert_classifier(), hydra.HydraConfig(k=2, pool_size=64, target_modules="all-linear",
                                                              modules_to_save=["classifier"]))
    with pytest.raises(hydra.CheckpointError, match="configuration"):
        _trainer(tmp_path / "run", other).train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))


def test_plain_trainer_on_an_injected_model_fails_loudly_at_the_first_save(tmp_path):
    model = hydra.inject(bert_classifier(), CFG)
    args = transformers.TrainingArguments(tmp_path, max_steps=2, save_steps=1, per_device_train_batch_size=4,
                                          report_to=[], use_cpu=True, disable_tqdm=True)
    with pytest.raises(hydra.TransformersSaveError, match="HydraTrainer"):
        transformers.Trainer(model=model, args=args, train_dataset=_data()).train()

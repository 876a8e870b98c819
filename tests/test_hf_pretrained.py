"""Adapter folders (``hydra.save_pretrained`` / ``hydra.from_pretrained``) and transformers' ``save_pretrained``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import hydra
from hf_models import bert_classifier, gpt2, perturb, token_ids, vit_classifier

pytestmark = pytest.mark.filterwarnings("ignore:.*pool_size = .* exceeds")

CFG = dict(structure="toeplitz_like", k=2, pool_size=48, fixed_ratio=0.5, seed=3)


def test_folder_layout_and_config_file(tmp_path):
    cfg = hydra.HydraConfig(target_modules=["query", "value"], modules_to_save=["classifier"], **CFG)
    hydra.save_pretrained(hydra.inject(bert_classifier(), cfg), tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["adapter_config.json", "adapter_model.safetensors"]
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    assert data["library"] == "ldr-hydra" and data["type"] == "HydraConfig"
    assert hydra.pretrained.read_config(tmp_path) == cfg


@pytest.mark.slow  # subprocesses: each imports torch (and transformers) afresh
def test_from_pretrained_in_a_fresh_process_reproduces_the_outputs(tmp_path):
    """The folder alone (plus the base model) rebuilds the adapted model in another interpreter."""
    cfg = hydra.HydraConfig(target_modules="all-linear", modules_to_save=["classifier"], **CFG)
    model = perturb(hydra.inject(bert_classifier(seed=5), cfg))
    ids = token_ids()
    torch.save({"ids": ids, "logits": model(ids).logits.detach()}, tmp_path / "expected.pt")
    hydra.save_pretrained(model, tmp_path / "adapter")
    script = textwrap.dedent(f"""
        import sys, torch, hydra
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from hf_models import bert_classifier
        expected = torch.load({str(tmp_path / "expected.pt")!r})
        model = hydra.from_pretrained(bert_classifier(seed=5), {str(tmp_path / "adapter")!r})
        assert not any(p.requires_grad for p in model.parameters())     # is_trainable=False, as in peft
        assert torch.equal(model(expected["ids"]).logits, expected["logits"]), "outputs differ"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_from_pretrained_is_trainable_and_refuses_a_different_base(tmp_path):
    cfg = hydra.HydraConfig(target_modules=["query"], modules_to_save=["classifier"], **CFG)
    hydra.save_pretrained(perturb(hydra.inject(bert_classifier(), cfg)), tmp_path)
    model = hydra.from_pretrained(bert_classifier(), tmp_path, is_trainable=True)
    assert {id(p) for p in hydra.trainable_parameters(model)} == {
        id(model.bert.encoder.layer[0].attention.self.query.pool.trainable),
        *(id(p) for p in model.classifier.parameters())}
    # A base with another head size: refused, and the model is left without adapters.
    other = bert_classifier(num_labels=3)
    with pytest.raises(hydra.CheckpointError, match="classifier"):
        hydra.from_pretrained(other, tmp_path)
    assert not hydra.adapter_layers(other)


def test_foreign_or_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        hydra.from_pretrained(bert_classifier(), tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    with pytest.raises(hydra.CheckpointError, match="not a hydra adapter configuration .a peft LORA adapter"):
        hydra.from_pretrained(bert_classifier(), tmp_path)


def test_transformers_save_pretrained_on_an_injected_model_is_refused(tmp_path):
    """Before: it wrote a full model whose adapted layers reloaded randomly initialised, silently."""
    model = hydra.inject(gpt2(), hydra.HydraConfig(target_modules=["c_attn"], **CFG))
    with pytest.raises(hydra.TransformersSaveError, match=r"hydra.save_pretrained\(model, folder\)"):
        model.save_pretrained(tmp_path / "full")
    assert not (tmp_path / "full").exists()
    # The documented way to a full model: fold the update in, unload, save; it reloads exactly.
    perturb(model)
    ids = token_ids(vocab=64)
    expected = model(ids).logits.detach()
    hydra.unload(model, merge=True)
    model.save_pretrained(tmp_path / "full")
    import transformers
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "full").eval()
    assert torch.allclose(reloaded(ids).logits, expected, atol=1e-5)


def test_the_save_guard_survives_deepcopy_and_is_per_instance():
    import copy

    model = hydra.inject(gpt2(), hydra.LoRAConfig(rank=1, target_modules=["c_attn"]))
    clone = copy.deepcopy(model)
    with pytest.raises(hydra.TransformersSaveError):
        clone.save_pretrained("unused")
    assert gpt2().save_pretrained.__func__ is type(model).save_pretrained   # other instances are untouched


def test_a_tampered_config_file_is_caught_by_the_checkpoint(tmp_path):
    """adapter_config.json edited after saving (another seed): the weights' own metadata disagree; refused."""
    cfg = hydra.HydraConfig(target_modules="all-linear", **CFG)
    hydra.save_pretrained(perturb(hydra.inject(vit_classifier(), cfg)), tmp_path)
    data = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**data, "seed": data["seed"] + 1}))
    model = vit_classifier()
    with pytest.raises(hydra.CheckpointError, match="seed"):
        hydra.from_pretrained(model, tmp_path)
    assert not hydra.adapter_layers(model)
    assert not any(p.requires_grad is False for p in model.parameters())   # flags restored (all trainable)


def test_vit_folder_round_trip(tmp_path):
    cfg = hydra.HydraConfig(target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"], **CFG)
    model = perturb(hydra.inject(vit_classifier(), cfg))
    pixels = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    hydra.save_pretrained(model, tmp_path)
    assert torch.equal(hydra.from_pretrained(vit_classifier(), tmp_path)(pixels).logits, model(pixels).logits)

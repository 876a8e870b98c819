"""HyDRA registered as a peft method (hydra.peft_integration), against the pinned peft release."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import hydra
from hf_models import bert_classifier, gpt2, perturb, token_ids

peft = pytest.importorskip("peft", reason="pip install 'ldr-hydra[peft]'")
hp = pytest.importorskip("hydra.peft_integration")

pytestmark = pytest.mark.filterwarnings("ignore:.*pool_size = .* exceeds")

FIELDS = dict(structure="toeplitz_like", k=2, pool_size=48, fixed_ratio=0.5, seed=2)


def test_pinned_release():
    assert peft.__version__ == hp.PEFT_VERSION


def test_get_peft_model_equals_hydra_inject():
    ids = token_ids()
    base = bert_classifier()
    before = base(ids).logits.detach()
    model = peft.get_peft_model(base, hp.HydraPeftConfig(target_modules=["query", "value"],
                                                         modules_to_save=["classifier"], **FIELDS))
    assert torch.equal(model(ids).logits, before)                 # ΔW_eff = 0 at initialisation
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".hydra_adapters.default.pool.trainable" in n or "classifier.modules_to_save" in n for n in trainable)
    reference = hydra.inject(bert_classifier(), hydra.HydraConfig(target_modules=["query", "value"], **FIELDS))
    layers = [model.base_model.model.bert.encoder.layer[0].attention.self, reference.bert.encoder.layer[0].attention.self]
    for name in ("query", "value"):
        ours, theirs = getattr(layers[0], name).hydra_adapters["default"], getattr(layers[1], name)
        assert torch.equal(ours.pool.trainable, theirs.pool.trainable)    # same seeds: same pools and maps
        with torch.no_grad():
            theirs.pool.trainable.add_(0.05)
            ours.pool.trainable.add_(0.05)
    assert torch.allclose(model.base_model.model.bert(ids).last_hidden_state,
                          reference.bert(ids).last_hidden_state, atol=1e-6)


@pytest.mark.slow  # subprocesses: each imports torch (and transformers) afresh
def test_save_and_load_in_a_fresh_process_under_another_adapter_name(tmp_path):
    ids = token_ids()
    model = perturb(peft.get_peft_model(bert_classifier(), hp.HydraPeftConfig(
        target_modules="all-linear", modules_to_save=["classifier"], **FIELDS)))
    torch.save({"ids": ids, "logits": model(ids).logits.detach()}, tmp_path / "expected.pt")
    model.save_pretrained(tmp_path / "adapter")
    from safetensors.torch import load_file
    keys = list(load_file(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert keys and not any(".default." in k or k.endswith(".default") for k in keys)   # no adapter name stored
    script = textwrap.dedent(f"""
        import sys, torch, peft
        import hydra.peft_integration                     # registers "hydra" with peft
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from hf_models import bert_classifier
        expected = torch.load({str(tmp_path / "expected.pt")!r})
        model = peft.PeftModel.from_pretrained(bert_classifier(), {str(tmp_path / "adapter")!r}, adapter_name="other")
        assert list(model.peft_config) == ["other"]
        assert torch.equal(model(expected["ids"]).logits, expected["logits"]), "outputs differ"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_several_adapters_disable_delete_and_merge_and_unload_on_gpt2():
    ids = token_ids(vocab=64)
    base_logits = gpt2()(ids).logits.detach()
    model = peft.get_peft_model(gpt2(), hp.HydraPeftConfig(target_modules=["c_attn", "c_proj"], **FIELDS))
    model.add_adapter("second", hp.HydraPeftConfig(target_modules=["c_attn"], **{**FIELDS, "seed": 7}))
    perturb(model)                                   # moves the active ("default") adapter only
    model.set_adapter("second")
    perturb(model, seed=3)
    second = model(ids).logits.detach()
    model.set_adapter("default")
    first = model(ids).logits.detach()
    assert not torch.allclose(first, second) and not torch.allclose(first, base_logits)
    with model.disable_adapter():
        assert torch.allclose(model(ids).logits, base_logits, atol=1e-6)
    assert torch.equal(model(ids).logits, first)
    model.delete_adapter("second")
    assert list(model.peft_config) == ["default"]
    merged = model.merge_and_unload()
    conv = merged.transformer.h[0].attn.c_attn
    assert type(conv).__name__ == "Conv1D" and tuple(conv.weight.shape) == (16, 48)
    assert torch.allclose(merged(ids).logits, first, atol=1e-5)


def test_unmerge_restores_the_base_weight_after_training_while_merged():
    ids = token_ids(vocab=64)
    model = peft.get_peft_model(gpt2(), hp.HydraPeftConfig(target_modules=["c_attn"], **FIELDS))
    perturb(model)
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "hydra_" not in n}
    model.merge_adapter()
    perturb(model, seed=5)                           # e.g. an optimizer step taken while merged
    with pytest.warns(UserWarning, match="changed while the update was merged"):
        model.unmerge_adapter()
    for n, p in model.named_parameters():
        if n in base:
            torch.testing.assert_close(p, base[n], rtol=1e-6, atol=1e-6, msg=n)
    merged = model.merge_and_unload()                # now folds the new values in
    assert merged(ids).logits.isfinite().all()


def test_config_errors():
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        hp.HydraPeftConfig(k=0, target_modules=["q"])
    with pytest.raises(ValueError, match="`target_modules` must be given"):
        hp.HydraPeftConfig()

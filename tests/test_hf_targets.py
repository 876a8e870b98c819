"""``target_modules="all-linear"``, GPT-2 ``Conv1D`` targets and ``modules_to_save`` on tiny transformers models."""

from __future__ import annotations

import pytest
import torch

import hydra
from hf_models import bert_classifier, gpt2, llama, perturb, token_ids, vit_classifier
from hydra.targets import Conv1DLinear

pytestmark = pytest.mark.filterwarnings("ignore:.*pool_size = .* exceeds")


def _cfg(**kw):
    kw.setdefault("k", 2)
    kw.setdefault("pool_size", 48)
    return hydra.HydraConfig(**kw)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- "all-linear"

def test_all_linear_gpt2_adapts_every_conv1d_but_not_the_lm_head():
    model = gpt2()
    hydra.inject(model, _cfg(target_modules="all-linear"))
    expected = [f"transformer.h.{i}.{p}" for i in range(2) for p in ("attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                                     "mlp.c_proj")]
    assert list(hydra.adapter_layers(model)) == expected
    assert isinstance(model.lm_head, torch.nn.Linear) and not model.lm_head.weight.requires_grad


def test_all_linear_llama_skips_lm_head():
    model = llama()
    hydra.inject(model, hydra.LoRAConfig(rank=2, target_modules="ALL-LINEAR"))
    names = {n.rsplit(".", 1)[-1] for n in hydra.adapter_layers(model)}
    assert names == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert "lm_head" not in hydra.adapter_layers(model)


@pytest.mark.parametrize("build", [bert_classifier, vit_classifier], ids=["bert", "vit"])
def test_all_linear_skips_the_classification_head(build):
    model = build()
    hydra.inject(model, _cfg(target_modules="all-linear"))
    adapted = hydra.adapter_layers(model)
    assert "classifier" not in adapted
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".base_layer" not in n]
    # Every linear layer is either adapted or the head.
    assert sorted(set(linears) - set(adapted)) == ["classifier"]


def test_all_linear_on_a_plain_torch_model():
    # Before: "all-linear" was read as a regex and matched nothing (ValueError).
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
    assert list(hydra.adapter_layers(hydra.inject(model, hydra.LoRAConfig(rank=1, target_modules="all-linear")))) == [
        "0", "2"]


# ---------------------------------------------------------------- GPT-2 Conv1D

def test_conv1d_targets_adapt_merge_exactly_and_unload_to_the_original_conv1d():
    model = gpt2()
    ids = token_ids(vocab=64)
    conv = model.transformer.h[0].attn.c_attn
    w0 = conv.weight.detach().clone()
    before = model(ids).logits.detach()
    hydra.inject(model, _cfg(target_modules=["c_attn", "c_proj"]))
    assert list(hydra.adapter_layers(model)) == [f"transformer.h.{i}.{p}" for i in range(2)
                                                 for p in ("attn.c_attn", "attn.c_proj", "mlp.c_proj")]
    adapter = model.transformer.h[0].attn.c_attn
    assert isinstance(adapter.base_layer, Conv1DLinear) and adapter.base_layer.conv is conv
    assert (adapter.in_features, adapter.out_features) == (16, 48)
    assert torch.equal(model(ids).logits, before)          # ΔW_eff = 0 at initialisation
    model(ids).logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hydra.trainable_parameters(model))
    assert conv.weight.grad is None

    perturb(model)
    with torch.no_grad():
        adapted = model(ids).logits
        delta = adapter.delta_weight()                     # (out, in) = (48, 16)
        hydra.merge(model)
        assert torch.allclose(model(ids).logits, adapted, atol=1e-5)
        # Merging writes into the Conv1D's own (in, out) weight.
        assert torch.allclose(conv.weight, w0 + delta.T, atol=1e-6)
        hydra.unmerge(model)
        assert torch.allclose(conv.weight, w0, atol=1e-6)
        hydra.unload(model, merge=True)
    assert model.transformer.h[0].attn.c_attn is conv      # the original object, merged
    assert torch.allclose(model(ids).logits, adapted, atol=1e-5)


def test_conv1d_unload_without_merge_restores_the_base_exactly():
    model = gpt2()
    state = _state(model)
    perturb(hydra.inject(model, hydra.LoRAConfig(rank=2, target_modules=["c_fc"])))
    hydra.merge(model)
    hydra.unload(model)
    after = model.state_dict()
    assert set(after) == set(state)
    assert all(torch.allclose(after[k], state[k], atol=1e-6) for k in state)


def test_conv1d_view_keeps_the_conv1d_state_dict_names_and_shapes():
    model = gpt2()
    hydra.inject(model, _cfg(target_modules=["c_attn"]))
    sd = model.state_dict()
    assert tuple(sd["transformer.h.0.attn.c_attn.base_layer.weight"].shape) == (16, 48)   # (in, out), as Conv1D


# ---------------------------------------------------------------- modules_to_save

def test_modules_to_save_stay_trainable_and_round_trip(tmp_path):
    cfg = _cfg(target_modules=["query", "value"], modules_to_save=["classifier"])
    model = hydra.inject(bert_classifier(), cfg)
    assert all(p.requires_grad for p in model.classifier.parameters())
    trainable = {id(p) for p in hydra.trainable_parameters(model)}
    assert {id(p) for p in model.classifier.parameters()} <= trainable
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    perturb(model)
    ids = token_ids()
    expected = model(ids).logits.detach()
    hydra.save(model, tmp_path / "a.safetensors")

    fresh = hydra.inject(bert_classifier(seed=0), cfg)         # same base, same (untrained) head
    assert not torch.allclose(fresh(ids).logits, expected)
    hydra.load(fresh, tmp_path / "a.safetensors")
    assert torch.equal(fresh(ids).logits, expected)
    from safetensors import safe_open
    with safe_open(str(tmp_path / "a.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"modules_to_save.classifier.weight", "modules_to_save.classifier.bias"} <= keys


def test_checkpoint_without_modules_to_save_is_refused(tmp_path):
    plain = hydra.inject(bert_classifier(), _cfg(target_modules=["query"]))
    hydra.save(plain, tmp_path / "a.safetensors")
    model = hydra.inject(bert_classifier(), _cfg(target_modules=["query"], modules_to_save=["classifier"]))
    head = model.classifier.weight.detach().clone()
    with pytest.raises(hydra.CheckpointError, match="modules_to_save"):
        hydra.load(model, tmp_path / "a.safetensors")
    assert torch.equal(model.classifier.weight, head)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(target_modules=["query"], modules_to_save=["head"]), ValueError, "modules_to_save entry 'head' matched no"),
    (dict(target_modules="all-linear", modules_to_save=["nope"]), ValueError, "matched no module"),
    (dict(target_modules=["dense"], modules_to_save=["pooler"]), ValueError, "lie inside modules_to_save"),
])
def test_modules_to_save_errors_leave_the_model_unchanged(kwargs, error, message):
    model = bert_classifier()
    state = _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(error, match=message):
        hydra.inject(model, _cfg(**kwargs))
    assert not hydra.adapter_layers(model)
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("value", ["classifier", [""], [3]])
def test_modules_to_save_config_validation(value):
    with pytest.raises(TypeError, match="`modules_to_save` must be None or a list of module names"):
        hydra.HydraConfig(target_modules=["q"], modules_to_save=value)


def test_all_linear_leaves_modules_to_save_alone():
    cfg = _cfg(target_modules="all-linear", modules_to_save=["pooler"])
    model = hydra.inject(bert_classifier(), cfg)
    adapted = hydra.adapter_layers(model)
    assert "bert.pooler.dense" not in adapted and "encoder.layer.0.attention.self.query" in {
        n.split("bert.", 1)[-1] for n in adapted}
    assert all(p.requires_grad for p in model.bert.pooler.parameters())

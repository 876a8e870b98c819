"""Several named adapters in hydra's own API (hydra.adapters) on a tiny Llama."""

from __future__ import annotations

import pytest
import torch

import hydra
from hf_models import llama, perturb, token_ids
from hydra import adapters

pytestmark = pytest.mark.filterwarnings("ignore:.*pool_size = .* exceeds")

HYDRA = hydra.HydraConfig(structure="toeplitz_like", k=2, pool_size=48, target_modules=["q_proj", "v_proj"])
LORA = hydra.LoRAConfig(rank=2, target_modules="all-linear")


def _two(model):
    adapters.add_adapter(model, "h", HYDRA)
    adapters.add_adapter(model, "l", LORA)
    return model


def test_switch_disable_delete_and_save_the_active_adapter(tmp_path):
    ids = token_ids(vocab=64)
    base = llama()(ids).logits.detach()
    model = _two(llama())
    assert adapters.active_adapter(model) == "h" and adapters.list_adapters(model) == ["h", "l"]
    h_params = hydra.trainable_parameters(model)
    perturb(model)
    h_out = model(ids).logits.detach()
    adapters.set_adapter(model, "l")
    assert torch.equal(model(ids).logits, base)               # l untouched: its update is still zero
    perturb(model, seed=4)
    l_out = model(ids).logits.detach()
    assert not torch.allclose(l_out, h_out)
    with adapters.disable_adapter(model):
        assert torch.equal(model(ids).logits, base)
        assert not hydra.adapter_layers(model)
    assert torch.equal(model(ids).logits, l_out)
    adapters.set_adapter(model, "h")
    assert torch.equal(model(ids).logits, h_out)
    # The same parameter objects come back: an optimizer built on them stays valid.
    assert [id(p) for p in hydra.trainable_parameters(model)] == [id(p) for p in h_params]

    hydra.save_pretrained(model, tmp_path)                     # the active adapter
    assert torch.equal(hydra.from_pretrained(llama(), tmp_path)(ids).logits, h_out)

    adapters.delete_adapter(model, "h")
    assert adapters.active_adapter(model) is None and not hydra.adapter_layers(model)
    assert torch.equal(model(ids).logits, base)
    adapters.set_adapter(model, "l")
    assert torch.equal(model(ids).logits, l_out)


def test_transformers_save_guard_follows_the_attached_adapter(tmp_path):
    model = _two(llama())
    with pytest.raises(hydra.TransformersSaveError):
        model.save_pretrained(tmp_path)
    with adapters.disable_adapter(model):
        model.save_pretrained(tmp_path)                        # the plain base model: allowed
    with pytest.raises(hydra.TransformersSaveError):
        model.save_pretrained(tmp_path)


def test_errors_leave_the_model_as_it_was():
    ids = token_ids(vocab=64)
    model = _two(llama())
    perturb(model)
    before = model(ids).logits.detach()
    with pytest.raises(ValueError, match="an adapter named 'h' exists already"):
        adapters.add_adapter(model, "h", LORA)
    with pytest.raises(ValueError, match="matched no"):
        adapters.add_adapter(model, "bad", hydra.LoRAConfig(target_modules=["nope"]))
    with pytest.raises(ValueError, match="no adapter named 'x'"):
        adapters.set_adapter(model, "x")
    hydra.merge(model)
    with pytest.raises(ValueError, match="merged"):
        adapters.set_adapter(model, "l")
    hydra.unmerge(model)
    assert adapters.list_adapters(model) == ["h", "l"] and adapters.active_adapter(model) == "h"
    assert torch.allclose(model(ids).logits, before, atol=1e-6)

    injected = hydra.inject(llama(), HYDRA)
    with pytest.raises(ValueError, match="injected with hydra.inject"):
        adapters.add_adapter(injected, "a", LORA)

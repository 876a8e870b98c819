"""Tiny transformers models built from configs (no downloads), shared by the tests/test_hf_*.py files.

Each builder seeds torch's global generator itself (transformers initialises from it), so two
calls with the same seed give the same base weights: the "fresh base model" of a round trip.
"""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")
import torch  # noqa: E402

transformers.logging.set_verbosity_error()

HIDDEN = 16


def bert_classifier(seed=0, num_labels=2):
    """BertForSequenceClassification: 1 layer, hidden 16, head ``classifier`` (16 -> 2)."""
    cfg = transformers.BertConfig(hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, vocab_size=50, max_position_embeddings=16,
                                  num_labels=num_labels)
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(cfg).eval()


def gpt2(seed=0):
    """GPT2LMHeadModel: 2 layers of Conv1D projections (weights stored (in, out)), lm_head tied."""
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=32, n_embd=HIDDEN, n_layer=2, n_head=2,
                                  bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(cfg).eval()


def llama(seed=0):
    """LlamaForCausalLM: 1 layer, q/k/v/o and gate/up/down projections, separate lm_head."""
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=HIDDEN, intermediate_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                                   tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(cfg).eval()


def vit_classifier(seed=0):
    """ViTForImageClassification on 8x8 images, 4x4 patches, head ``classifier``."""
    cfg = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=HIDDEN, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32, num_labels=3)
    torch.manual_seed(seed)
    return transformers.ViTForImageClassification(cfg).eval()


def token_ids(batch=2, length=8, vocab=50, seed=0):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def perturb(model, scale=0.1, seed=1):
    """Move every trainable tensor by a seeded random step (a stand-in for training)."""
    import hydra

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in hydra.trainable_parameters(model):
            p.add_(scale * torch.randn(p.shape, generator=generator).to(p.dtype))
    return model

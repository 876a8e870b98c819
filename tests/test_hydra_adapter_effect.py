"""Issue 12 §3: an adapter either changes the output (and gets a gradient) or is refused.

Before: ``nn.MultiheadAttention.out_proj`` was wrapped but never called; a Linear reachable
under two names was adapted under one; an eval-mode ``nn.TransformerEncoderLayer`` skipped its
adapted ``linear1``; merging into an ``lm_head`` tied to the input embeddings changed the
embeddings; ``cfg.scale = nan`` was accepted; a fixed part that swallows the whole pool was
accepted; a set of ``target_modules`` made checkpoints depend on ``PYTHONHASHSEED``.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import hydra

X = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))


def _cfg(**kw):
    args = dict(structure="toeplitz_like", k=2, pool_size=16, target_modules=["0"])
    args.update(kw)
    return hydra.HydraConfig(**args)


def _perturb(model):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in hydra.trainable_parameters(model):
            p.add_(0.5 * torch.randn(p.shape, generator=gen))


def _assert_close(actual, expected, rtol, atol):
    # Not torch.testing.assert_close: its first call costs seconds of imports.
    error = (actual - expected).abs().max().item()
    assert error <= atol + rtol * expected.abs().max().item(), f"max |difference| = {error:.3g}"


def _assert_effect(model, x, base_output):
    """The adapted model's output differs from the base model's and every pool gets a gradient."""
    assert not torch.allclose(model(x), base_output)
    model(x).square().sum().backward()
    grads = [p.grad for p in hydra.trainable_parameters(model)]
    assert grads and all(g is not None and bool(g.any()) for g in grads)


# -- modules that never call the wrapped layer ------------------------------------------------


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        return self.proj(self.attn(x, x, x)[0])


@pytest.mark.parametrize("targets", [["out_proj"], r".*proj", ["attn.out_proj", "proj"]])
def test_multihead_attention_out_proj_is_refused_with_the_reason(targets):
    model = Attention()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"cannot adapt \['attn.out_proj'\]: the output projection of an "
                                         r"nn.MultiheadAttention is never called"):
        hydra.inject(model, hydra.LoRAConfig(rank=2, target_modules=targets))
    assert not hydra.adapter_layers(model) and type(model.attn.out_proj) is not hydra.LoRALinear
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())


def test_transformer_encoder_layer_linear_adapters_act_in_eval_mode_too():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
    with torch.no_grad():
        base = layer(X)
    hydra.inject(layer, hydra.LoRAConfig(rank=2, target_modules=["linear1", "linear2"]))
    _perturb(layer)
    with torch.no_grad():  # the fused eval path read linear1.weight and skipped the adapter
        fused_candidate = layer(X)
    layer.train()
    reference = layer(X)
    _assert_close(fused_candidate, reference, rtol=1e-5, atol=1e-5)
    layer.eval()
    _assert_effect(layer, X, base)


# -- one Linear under two names ---------------------------------------------------------------


def test_a_linear_reachable_under_two_names_is_adapted_under_both():
    torch.manual_seed(0)
    shared = nn.Linear(8, 8)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    base = model(X).detach()
    hydra.inject(model, _cfg(structure="toeplitz"))
    assert model[0] is model[2] and isinstance(model[2], hydra.HydraLinear)
    assert list(hydra.adapter_layers(model)) == ["0"]
    _perturb(model)
    W = shared.weight + model[0].delta_weight()
    expected = torch.tanh(X @ W.T + shared.bias) @ W.T + shared.bias
    _assert_close(model(X), expected, rtol=1e-5, atol=1e-5)
    _assert_effect(model, X, base)
    hydra.unload(model)
    assert model[0] is shared and model[2] is shared


# -- tied weights -----------------------------------------------------------------------------


class TiedLM(nn.Module):
    """An output layer tied to the input embeddings, as GPT-2's ``lm_head`` and ``wte``.

    (transformers' GPT2LMHeadModel ties the same way, ``lm_head.weight = wte.weight``; importing
    it costs more than this whole file.)
    """

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.wte = nn.Embedding(20, 8)
        self.body = nn.Linear(8, 8)
        self.lm_head = nn.Linear(8, 20, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        return self.lm_head(torch.tanh(self.body(self.wte(ids))))


def test_tied_lm_head_is_adapted_but_merge_is_refused_and_embeddings_kept():
    model = TiedLM()
    ids = torch.arange(6).reshape(1, 6)
    base = model(ids).detach()
    embeddings = model.wte.weight.detach().clone()
    hydra.inject(model, hydra.HydraConfig(structure="low_rank", k=1, rank=2, pool_size=40, target_modules=["lm_head"]))
    _perturb(model)
    logits = model(ids)
    assert not torch.allclose(logits, base)
    logits.sum().backward()
    assert model.lm_head.pool.trainable.grad.any()
    for action in (hydra.merge, lambda m: hydra.unload(m, merge=True)):
        with pytest.raises(ValueError, match=r"cannot merge: lm_head shares its weight with "
                                             r"\['wte.weight'\] \(tied weights\)"):
            action(model)
        assert torch.equal(model.wte.weight, embeddings)
        assert not model.lm_head.merged and isinstance(model.lm_head, hydra.HydraLinear)
    # Untied explicitly (as the message says), the merge goes through and the embeddings stay.
    layer = model.lm_head
    layer.base_layer.weight = nn.Parameter(layer.base_layer.weight.detach().clone(), requires_grad=False)
    before = model(ids).detach()
    hydra.merge(model)
    _assert_close(model(ids), before, rtol=1e-5, atol=1e-5)
    assert torch.equal(model.wte.weight, embeddings)


# -- configurations ---------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, error, message", [
    ("scale", float("nan"), ValueError, "`scale` must be finite; got nan"),
    ("scale", "2", TypeError, "`scale` must be a real number"),
    ("k", 0, ValueError, "`k` must be an integer >= 1; got 0"),
    ("fixed_ratio", 1.5, ValueError, r"`fixed_ratio` must be in \[0, 1\); got 1.5"),
    ("target_modules", [], ValueError, "non-empty list"),
    ("structure", "circulant", ValueError, "`structure` must be one of"),
    ("init_std", float("inf"), ValueError, "`init_std` must be finite"),
])
def test_config_fields_are_validated_on_assignment(field, value, error, message):
    cfg = _cfg()
    before = cfg.to_dict()
    with pytest.raises(error, match=message):
        setattr(cfg, field, value)
    assert cfg.to_dict() == before  # unchanged


@pytest.mark.parametrize("make", [lambda: hydra.LoRAConfig(target_modules=["q"]),
                                  lambda: hydra.LDRConfig(target_modules=["q"])])
def test_baseline_configs_are_validated_on_assignment(make):
    cfg = make()
    field = "alpha" if isinstance(cfg, hydra.LoRAConfig) else "scale"
    with pytest.raises(ValueError, match=f"`{field}` must be finite"):
        setattr(cfg, field, float("nan"))
    assert getattr(cfg, field) == make().__dict__[field]
    cfg.rank = 3  # a valid assignment is normalised and kept
    assert cfg.rank == 3


def test_editing_the_callers_config_after_inject_changes_nothing():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8))
    cfg = _cfg()
    hydra.inject(model, cfg)
    _perturb(model)
    before = model(X).detach()
    cfg.scale = 5.0
    cfg.seed = 3
    assert torch.equal(model(X), before) and model[0].config.seed == 0


@pytest.mark.parametrize("pool_size, ratio", [(10, 0.99999999999), (2, 0.9999999999), (3, 0.9999999999)])
def test_fixed_part_that_swallows_the_pool_is_refused(pool_size, ratio):
    with pytest.raises(ValueError, match=r"`fixed_ratio` = .* fixes all .* pool entries .* leaving none to train"):
        hydra.HydraConfig(pool_size=pool_size, fixed_ratio=ratio, target_modules=["q"])
    cfg = hydra.HydraConfig(pool_size=pool_size, target_modules=["q"])
    with pytest.raises(ValueError, match="leaving none to train"):
        cfg.fixed_ratio = ratio
    assert cfg.n_trainable == pool_size


# config.py imports only the standard library: run alone, a subprocess starts in ~0.1 s.
_HASH_SEED_SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("hydra_config", sys.argv[1])
    config = importlib.util.module_from_spec(spec)
    sys.modules["hydra_config"] = config
    spec.loader.exec_module(config)
    names = {"query", "value", "key", "dense", "gate", "up"}
    print(json.dumps(list(names)))
    print(json.dumps(config.HydraConfig(k=2, pool_size=16, target_modules=names).to_dict()))
""")


def test_set_valued_target_modules_do_not_tie_a_checkpoint_to_the_hash_seed(tmp_path):
    runs = []
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", _HASH_SEED_SCRIPT, hydra.config.__file__],
                             env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append([json.loads(line) for line in out.stdout.splitlines()])
    (order_1, config_1), (order_2, config_2) = runs
    assert order_1 != order_2, "the two hash seeds iterate the set in the same order; pick others"
    assert config_1 == config_2  # what hydra.save records as the checkpoint's configuration
    # A checkpoint saved under one order loads under the other.
    torch.manual_seed(0)
    names = sorted(order_1)
    saved = nn.ModuleDict({n: nn.Linear(8, 8) for n in names})
    hydra.inject(saved, hydra.config_from_dict(config_1))
    _perturb(saved)
    hydra.save(saved, tmp_path / "a.safetensors")
    fresh = nn.ModuleDict({n: nn.Linear(8, 8) for n in names})
    hydra.inject(fresh, hydra.HydraConfig(k=2, pool_size=16, target_modules=order_2))
    hydra.load(fresh, tmp_path / "a.safetensors")
    assert all(torch.equal(fresh[n].pool.trainable, saved[n].pool.trainable) for n in names)

"""hydra model API: inject, report and parameter counts, merge/unmerge/unload, save/load (round trip
and every failure leaving the model unchanged), and fine-tuning a small transformer-like model."""

import copy
import math
import warnings

import pytest
import torch
from torch import nn

import hydra


class Attention(nn.Module):
    """Single-head self-attention with q/k/v/out projections named as in BERT/ViT."""

    def __init__(self, dim):
        super().__init__()
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(x.shape[-1]), dim=-1)
        return x + self.out(weights @ v)


class TinyEncoder(nn.Module):
    def __init__(self, dim=16, depth=2, seed=0):
        super().__init__()
        torch.manual_seed(seed)  # a deterministic base model; tests never use the global RNG otherwise
        self.layers = nn.ModuleList(Attention(dim) for _ in range(depth))
        self.head = nn.Linear(dim, 1)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x).squeeze(-1)


def _hydra_cfg(**kw):
    args = dict(structure="toeplitz_like", k=2, rank=1, pool_size=48, fixed_ratio=0.25, target_modules=["query", "value"])
    args.update(kw)
    return hydra.HydraConfig(**args)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(model, state):
    now = model.state_dict()
    assert set(now) == set(state)
    for key, value in state.items():
        assert torch.equal(now[key], value), key


def _train(model, steps=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(hydra.trainable_parameters(model), lr=1e-2)
    for _ in range(steps):
        x = torch.randn(4, 6, 16, generator=gen)
        loss = model(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()


# -- inject / report ----------------------------------------------------------------------------


def test_inject_wraps_targets_and_freezes_the_rest():
    model = hydra.inject(TinyEncoder(), _hydra_cfg())
    names = list(hydra.adapter_layers(model))
    assert names == ["layers.0.query", "layers.0.value", "layers.1.query", "layers.1.value"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.pool.trainable" for n in names}
    regex = hydra.inject(TinyEncoder(), _hydra_cfg(target_modules=r"layers\.1\.(query|key)"))
    assert list(hydra.adapter_layers(regex)) == ["layers.1.query", "layers.1.key"]
    with pytest.raises(ValueError, match="already has 4 adapter layer"):
        hydra.inject(model, _hydra_cfg())


def test_inject_errors_leave_the_model_unchanged():
    model = TinyEncoder()
    state = _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError, match=r"matched no nn.Linear layer; the model's nn.Linear layers are: "
                                          r"'layers.0.query', 'layers.0.key'"):
        hydra.inject(model, _hydra_cfg(target_modules=["attention.q_proj"]))
    with pytest.raises(ValueError, match=r"`k` = 17 blocks per axis is larger than the layer's out_features m = 16"):
        hydra.inject(model, _hydra_cfg(k=17))
    _assert_same_state(model, state)
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not hydra.adapter_layers(model) and type(model.layers[0].query) is nn.Linear


@pytest.mark.parametrize("pool_size", [384, 400, 768, 1536, 3072, 6144])
@pytest.mark.parametrize("fixed_ratio", [0.0, 0.5, 0.9])
def test_paper_parameter_counts(pool_size, fixed_ratio):
    """768 x 768 query/value, k = 4: trainable = (1 - fixed_ratio) * pool_size per ΔW."""
    model = nn.ModuleDict({"query": nn.Linear(768, 768), "value": nn.Linear(768, 768)})
    base_total = sum(p.numel() for p in model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 6144 > 6128 Toeplitz slots: 16 unused entries
        hydra.inject(model, hydra.HydraConfig(structure="toeplitz", k=4, pool_size=pool_size,
                                              fixed_ratio=fixed_ratio, target_modules=["query", "value"]))
    fixed = math.floor(round(fixed_ratio * pool_size, 9))
    r = hydra.report(model)
    assert r.trainable == r.adapter_trainable == 2 * (pool_size - fixed)
    assert r.fixed == 2 * fixed and r.total == base_total + r.trainable
    assert sum(p.numel() for p in hydra.trainable_parameters(model)) == r.trainable


def test_paper_counts_hand_computed():
    # Hand-computed: 24 ViT-B q/v matrices at P = 384 is the paper's "9.2k"; LoRA r(m + n).
    model = nn.ModuleDict({f"l{i}": nn.ModuleDict({"query": nn.Linear(768, 768), "value": nn.Linear(768, 768)})
                           for i in range(12)})
    lora = copy.deepcopy(model)
    hydra.inject(model, hydra.HydraConfig(k=4, pool_size=384, target_modules=["query", "value"]))
    assert hydra.report(model).trainable == 9216
    hydra.inject(lora, hydra.LoRAConfig(rank=4, target_modules=["query", "value"]))
    assert hydra.report(lora).trainable == 24 * 4 * (768 + 768) == 147456


def test_shared_pool_is_one_pool_counted_once_and_balanced():
    model = hydra.inject(TinyEncoder(), _hydra_cfg(shared_pool=True, pool_size=100, fixed_ratio=0.5))
    adapters = list(hydra.adapter_layers(model).values())
    assert all(a.pool is adapters[0].pool for a in adapters)
    r = hydra.report(model)
    assert r.trainable == 50 and r.fixed == 50 and len(hydra.trainable_parameters(model)) == 1
    text = str(r)
    assert "counted above" in text and "trainable: 50 of" in text
    counts = torch.zeros(100, dtype=torch.long)
    for a in adapters:
        counts += torch.bincount(torch.cat([a.index_g.flatten(), a.index_h.flatten()]), minlength=100)
    total = 4 * 4 * 16  # 4 layers, k^2 = 4 blocks of (8 + 8) * 1 slots
    assert counts.min() == total // 100 and counts.max() == -(-total // 100)


def test_report_text_lists_layers():
    text = str(hydra.report(hydra.inject(TinyEncoder(), _hydra_cfg())))
    assert "layers.0.query" in text and "toeplitz_like k=2 r=1 (8x8)" in text and "own P=48" in text


# -- merge / unmerge / unload -------------------------------------------------------------------


@pytest.mark.parametrize("config", [_hydra_cfg(), hydra.LoRAConfig(rank=2, target_modules=["query", "value"]),
                                    hydra.LDRConfig(structure="circulant", target_modules=["query", "value"])])
def test_merge_unmerge_unload(config):
    model = hydra.inject(TinyEncoder(), config)
    _train(model, steps=2)
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(9))
    before, state = model(x).detach(), _state(model)
    hydra.merge(model)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="already merged"):
        hydra.merge(model)
    hydra.unmerge(model)
    for key, value in state.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-6, atol=1e-6)
    merged = hydra.unload(copy.deepcopy(model), merge=True)
    assert not hydra.adapter_layers(merged)
    torch.testing.assert_close(merged(x), before, rtol=1e-5, atol=1e-5)
    plain = hydra.unload(model)
    torch.testing.assert_close(plain(x), TinyEncoder()(x), rtol=1e-6, atol=1e-6)


# -- save / load --------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [
    _hydra_cfg(),
    _hydra_cfg(structure="vandermonde_like", shared_pool=True, pool_size=80, fixed_ratio=0.5),
    hydra.LoRAConfig(rank=2, target_modules=["query", "value"]),
    hydra.LDRConfig(structure="toeplitz_like", rank=2, target_modules=["query", "value"]),
])
def test_save_load_round_trip_is_bit_identical(tmp_path, config):
    from safetensors import safe_open

    model = hydra.inject(TinyEncoder(), config)
    _train(model, steps=3)
    path = tmp_path / "adapter.safetensors"
    hydra.save(model, path)
    with safe_open(str(path), "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert sum(1 for k in keys) == len(keys) and all("fixed" not in k and "initial" not in k for k in keys)
    assert {"format", "library_version", "config", "layers"} <= set(meta)
    fresh = hydra.inject(TinyEncoder(), copy.deepcopy(config))
    hydra.load(fresh, path)
    x = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(5))
    assert torch.equal(fresh(x), model(x))


def _saved(tmp_path, config=None, name="adapter.safetensors"):
    model = hydra.inject(TinyEncoder(), config or _hydra_cfg())
    _train(model)
    path = tmp_path / name
    hydra.save(model, path)
    return path


def _corrupt_random(path):
    path.write_bytes(bytes(range(256)) * 8)


def _corrupt_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _corrupt_header(path):
    data = bytearray(path.read_bytes())
    data[10:20] = b"\x00" * 10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, error, message", [
    (_corrupt_random, hydra.CheckpointError, "cannot read adapter checkpoint"),
    (_corrupt_truncate, hydra.CheckpointError, "cannot read adapter checkpoint"),
    (_corrupt_header, hydra.CheckpointError, "cannot read adapter checkpoint"),
    (lambda p: p.unlink(), FileNotFoundError, "no adapter checkpoint at"),
])
def test_load_corrupt_or_missing_file_leaves_model_unchanged(tmp_path, damage, error, message):
    path = _saved(tmp_path)
    damage(path)
    model = hydra.inject(TinyEncoder(seed=1), _hydra_cfg())
    _train(model)
    state = _state(model)
    with pytest.raises(error, match=message):
        hydra.load(model, path)
    _assert_same_state(model, state)


@pytest.mark.parametrize("saved_cfg, model_cfg, message", [
    (_hydra_cfg(seed=0), _hydra_cfg(seed=1), "different configuration: seed: checkpoint 0 vs model 1"),
    (_hydra_cfg(pool_size=48), _hydra_cfg(pool_size=40), "pool_size: checkpoint 48 vs model 40"),
    (_hydra_cfg(structure="toeplitz"), _hydra_cfg(), "structure: checkpoint 'toeplitz' vs model 'toeplitz_like'"),
    (_hydra_cfg(target_modules=["query"]), _hydra_cfg(target_modules=["query"]), "shape"),
    (hydra.LoRAConfig(rank=2, target_modules=["query"]), _hydra_cfg(), "holds a LoRAConfig adapter"),
])
def test_load_mismatch_leaves_model_unchanged(tmp_path, saved_cfg, model_cfg, message):
    path = _saved(tmp_path, saved_cfg)
    # The fourth case: same config, but the model's layers are wider (32 instead of 16).
    model = TinyEncoder(dim=32 if message == "shape" else 16, seed=1)
    hydra.inject(model, model_cfg)
    state = _state(model)
    with pytest.raises(hydra.CheckpointError, match=message):
        hydra.load(model, path)
    _assert_same_state(model, state)


def test_load_ignores_the_runtime_path_choice_and_refuses_merged_models(tmp_path):
    path = _saved(tmp_path, _hydra_cfg(path="dense"))
    model = hydra.inject(TinyEncoder(), _hydra_cfg(path="fft"))
    hydra.load(model, path)
    hydra.merge(model)
    state = _state(model)
    with pytest.raises(ValueError, match="cannot load into merged layers"):
        hydra.load(model, path)
    _assert_same_state(model, state)


# -- fine-tuning ------------------------------------------------------------------------------


def _finetune(config, lr, steps=40, seed=0):
    """Regress a teacher (the base model with perturbed q/v weights); return (first, last) loss."""
    teacher = TinyEncoder(seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for layer in teacher.layers:
            for proj in (layer.query, layer.value):
                proj.weight.add_(0.3 * torch.randn(proj.weight.shape, generator=gen))
    student = hydra.inject(TinyEncoder(seed=seed), config)
    opt = torch.optim.AdamW(hydra.trainable_parameters(student), lr=lr)
    losses = []
    for _ in range(steps):
        x = torch.randn(16, 8, 16, generator=gen)
        with torch.no_grad():
            target = teacher(x)
        loss = (student(x) - target).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return sum(losses[:3]) / 3, sum(losses[-3:]) / 3


# Vandermonde-like blocks get 5x the learning rate, as in the paper (Appendix B: 0.01 vs 0.002):
# with real nodes in [-1, 1] the map pool -> ΔW is ill-conditioned (median singular value of its
# Jacobian ~10x below the largest, against ~2x for Toeplitz-like), so Adam moves it more slowly.
@pytest.mark.parametrize("config, lr", [
    (_hydra_cfg(structure="toeplitz", pool_size=60), 2e-2),
    (_hydra_cfg(structure="toeplitz_like", pool_size=64, fixed_ratio=0.5), 2e-2),
    (_hydra_cfg(structure="hankel_like", pool_size=64), 2e-2),
    (_hydra_cfg(structure="vandermonde_like", pool_size=64, shared_pool=True), 1e-1),
    (_hydra_cfg(structure="cauchy_like", pool_size=64), 2e-2),
    (_hydra_cfg(structure="low_rank", pool_size=64, k=1, rank=2), 2e-2),
    (hydra.LoRAConfig(rank=2, target_modules=["query", "value"]), 2e-2),
    (hydra.LDRConfig(structure="circulant", target_modules=["query", "value"]), 2e-2),
    (hydra.LDRConfig(structure="toeplitz_like", rank=1, target_modules=["query", "value"]), 2e-2),
], ids=lambda c: f"{type(c).__name__}-{getattr(c, 'structure', '')}" if not isinstance(c, float) else "")
def test_finetuning_reduces_the_loss(config, lr):
    first, last = _finetune(config, lr)
    print(f"{config}: loss {first:.4f} -> {last:.4f}")
    assert last < 0.7 * first


def test_transformers_bert_model():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  vocab_size=50, max_position_embeddings=16)
    torch.manual_seed(0)
    model = transformers.BertModel(cfg).eval()
    ids = torch.arange(10).reshape(1, 10)
    before = model(ids).last_hidden_state.detach()
    hydra.inject(model, _hydra_cfg(structure="toeplitz", k=4, pool_size=30))
    assert list(hydra.adapter_layers(model)) == ["encoder.layer.0.attention.self.query",
                                                 "encoder.layer.0.attention.self.value"]
    assert torch.equal(model(ids).last_hidden_state, before)
    model(ids).last_hidden_state.sum().backward()
    assert all(p.grad is not None and p.grad.any() for p in hydra.trainable_parameters(model))

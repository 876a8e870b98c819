"""Issue 12 §2: a checkpoint loads identically or refuses.

Every case here returned a silently different model before the checkpoint format recorded seed
names and digests (format ``hydra-adapter/2``): a model injected as ``model.bert`` or under a
DDP/DataParallel wrapper, a state dict moved between differently seeded models, flipped bytes
and NaN in the tensor data, a bfloat16 checkpoint loaded in float32, a torch/NumPy with other
random streams, changed block nodes, malformed metadata and an older format.
"""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import hydra
from hydra.blocks import block_structure


def _cfg(**kw):
    args = dict(structure="toeplitz_like", k=2, rank=1, pool_size=24, fixed_ratio=0.25, target_modules=["query", "value"])
    args.update(kw)
    return hydra.HydraConfig(**args)


class Encoder(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.query, self.value, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.query(x)) * self.value(x))


class Classifier(nn.Module):
    """``model.bert`` plus a head, as transformers' *ForSequenceClassification models are built."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)  # the same base weights in every instance
        self.bert = Encoder()
        self.head = nn.Linear(2, 1)

    def forward(self, x):
        return self.head(self.bert(x))


X = torch.randn(3, 8, generator=torch.Generator().manual_seed(7))


def _perturb(model, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        pools = {id(a.pool): a.pool.trainable for a in hydra.adapter_layers(model).values()}
        for p in pools.values():  # not the head: injecting into model.bert leaves it trainable
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p.dtype))


def _trained(root, config):
    """Inject into ``root(model)`` (the model itself or a submodule), then change the pools."""
    model = Classifier()
    hydra.inject(root(model), config)
    _perturb(model)
    return model


def _save(model, tmp_path, name="a.safetensors"):
    path = tmp_path / name
    hydra.save(model, path)
    return path


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, snapshot):
    now = model.state_dict()
    assert set(now) == set(snapshot) and all(torch.equal(now[k], v) for k, v in snapshot.items())


# -- the layer path used as seed --------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("saved_root, loaded_root", [
    (lambda m: m.bert, lambda m: m),
    (lambda m: m, lambda m: m.bert),
    (lambda m: nn.DataParallel(m), lambda m: m),
    (lambda m: m, lambda m: nn.DataParallel(m)),
], ids=["bert-to-whole", "whole-to-bert", "dataparallel-to-plain", "plain-to-dataparallel"])
def test_load_is_exact_whatever_module_or_wrapper_was_injected(tmp_path, saved_root, loaded_root, shared):
    saved = _trained(saved_root, _cfg(shared_pool=shared))
    path = _save(saved, tmp_path)
    fresh = Classifier()
    hydra.inject(loaded_root(fresh), _cfg(shared_pool=shared))
    hydra.load(fresh, path)
    assert torch.equal(fresh(X), saved(X))
    # The loaded model now carries the checkpoint's seeds: its state dict is interchangeable.
    other = Classifier()
    hydra.inject(saved_root(other), _cfg(shared_pool=shared))
    other.load_state_dict(fresh.state_dict())
    assert torch.equal(other(X), saved(X))


def test_save_of_a_wrapped_model_stores_the_bare_names(tmp_path):
    model = Classifier()
    wrapped = nn.DataParallel(model)
    hydra.inject(wrapped, _cfg())
    assert list(hydra.adapter_layers(wrapped)) == ["bert.query", "bert.value"]
    with safe_open(str(_save(wrapped, tmp_path)), "pt") as f:
        layers = json.loads(f.metadata()["layers"])
    assert [row["name"] for row in layers] == [row["seed_name"] for row in layers] == ["bert.query", "bert.value"]


def test_checkpoint_of_a_submodule_loaded_into_the_whole_model_is_refused_with_a_hint(tmp_path):
    model = Classifier()
    hydra.inject(model.bert, _cfg())
    path = _save(model.bert, tmp_path)
    fresh = hydra.inject(Classifier(), _cfg())
    with pytest.raises(hydra.CheckpointError, match="saved from the model's submodule 'bert'; load it into that"):
        hydra.load(fresh, path)
    hydra.load(fresh.bert, path)


# -- state dicts ------------------------------------------------------------------------------


@pytest.mark.parametrize("make_other", [
    lambda: hydra.inject(Classifier(), _cfg(seed=1)),
    lambda: hydra.inject(Classifier().bert, _cfg()),  # other seed names: "query" instead of "bert.query"
    lambda: hydra.inject(Classifier(), _cfg(structure="hankel_like")),  # same pool and index maps
], ids=["other-seed", "other-root", "other-structure"])
def test_load_state_dict_refuses_adapters_with_other_regenerated_tensors(make_other):
    source = _trained(lambda m: m, _cfg())
    other = make_other()
    other_model = other if isinstance(other, Classifier) else None
    target = other_model if other_model is not None else other
    state = source.state_dict() if other_model is not None else source.bert.state_dict()
    first = next(iter(hydra.adapter_layers(target).values()))
    before = first.pool.trainable.detach().clone()
    with pytest.raises(hydra.CheckpointError, match="regenerated_digest' differs from the adapter's"):
        target.load_state_dict(state)
    assert torch.equal(first.pool.trainable, before)  # refused before the adapter's values are copied


def test_load_state_dict_between_equal_injections_still_works_and_base_only_state_passes():
    source = _trained(lambda m: m, _cfg())
    target = hydra.inject(Classifier(), _cfg())
    target.load_state_dict(source.state_dict())
    assert torch.equal(target(X), source(X))
    base = {k: v for k, v in Classifier().state_dict().items()}  # no adapter entries: nothing to check
    result = target.load_state_dict(base, strict=False)
    assert "bert.query.regenerated_digest" in result.missing_keys


@pytest.mark.parametrize("wrap", [lambda m: m, nn.DataParallel, lambda m: nn.Sequential(m)],
                         ids=["bare", "DataParallel", "inside-a-parent"])
def test_a_refused_load_state_dict_leaves_every_layer_as_it_was(wrap):
    """The first adapter's entries are fine, the second's digest is damaged: nothing is copied.

    torch copies module by module, so a check in each layer's own pre-hook alone would have
    overwritten ``bert.query`` (and the head) before refusing ``bert.value``.
    """
    source = _trained(lambda m: m, _cfg())
    target = wrap(hydra.inject(Classifier(), _cfg()))
    state = {key: value.clone() for key, value in wrap(source).state_dict().items()}
    damaged = next(key for key in state if key.endswith("value.regenerated_digest"))
    state[damaged][0] ^= 1
    before = {key: value.clone() for key, value in target.state_dict().items()}
    assert any(not torch.equal(state[key], before[key]) for key in state if "query.pool" in key)
    with pytest.raises(hydra.CheckpointError, match="value.regenerated_digest"):
        target.load_state_dict(state)
    after = target.state_dict()
    assert all(torch.equal(after[key], before[key]) for key in before)


# -- damaged tensor data ----------------------------------------------------------------------


def _header_length(path):
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def test_flipped_bytes_in_tensor_data_are_refused(tmp_path):
    path = _save(_trained(lambda m: m, _cfg()), tmp_path)
    data = bytearray(path.read_bytes())
    data[_header_length(path) + 5] ^= 0x01  # one bit of one stored number
    path.write_bytes(bytes(data))
    fresh = hydra.inject(Classifier(), _cfg())
    before = _snapshot(fresh)
    with pytest.raises(hydra.CheckpointError, match=r"is damaged: the bytes of tensors \['bert.query.pool.trainable'\]"):
        hydra.load(fresh, path)
    _assert_unchanged(fresh, before)


def _rewrite(path, edit_tensors=None, edit_metadata=None, refresh_digests=False):
    """Rewrite a checkpoint with edited tensors/metadata (what a damaged or hand-made file holds)."""
    with safe_open(str(path), "pt") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if refresh_digests:
        table = json.loads(metadata["tensors"])
        for key, t in tensors.items():
            table[key]["sha256"] = hydra.integrity.tensor_digest(t)
        metadata["tensors"] = json.dumps(table)
    if edit_metadata:
        edit_metadata(metadata)
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_in_a_checkpoint_is_refused_and_never_saved(tmp_path, value):
    model = _trained(lambda m: m, _cfg())
    path = _save(model, tmp_path)

    def poison(tensors):
        tensors["bert.value.pool.trainable"][3] = value

    _rewrite(path, poison, refresh_digests=True)  # consistent digests: only the value is wrong
    fresh = hydra.inject(Classifier(), _cfg())
    before = _snapshot(fresh)
    with pytest.raises(hydra.CheckpointError, match=r"\['bert.value.pool.trainable'\] that are not finite"):
        hydra.load(fresh, path)
    _assert_unchanged(fresh, before)
    with torch.no_grad():
        model.bert.value.pool.trainable[0] = value
    with pytest.raises(ValueError, match=r"cannot save: tensors \['bert.value.pool.trainable'\] hold NaN or infinity"):
        hydra.save(model, tmp_path / "b.safetensors")
    assert not (tmp_path / "b.safetensors").exists()


# -- dtypes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("saved_dtype, loaded_dtype", [(torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16),
                                                        (torch.float16, torch.float32)])
@pytest.mark.parametrize("structure", ["toeplitz", "toeplitz_like", "cauchy_like"])
def test_untrained_adapter_loads_with_zero_update_across_dtypes(tmp_path, structure, saved_dtype, loaded_dtype):
    saved = hydra.inject(Classifier(), _cfg(structure=structure)).to(saved_dtype)
    assert not saved.bert.query.delta_weight().any()
    path = _save(saved, tmp_path)
    fresh = hydra.inject(Classifier(), _cfg(structure=structure)).to(loaded_dtype)
    hydra.load(fresh, path)
    by_state_dict = hydra.inject(Classifier(), _cfg(structure=structure)).to(loaded_dtype)
    by_state_dict.load_state_dict(saved.state_dict())
    for model in (fresh, by_state_dict):
        for layer in hydra.adapter_layers(model).values():
            delta = layer.delta_weight()
            assert not delta.any(), f"spurious update, max |ΔW| = {delta.abs().max().item():.3g}"


def test_trained_bfloat16_adapter_loads_close_in_float32_and_same_dtype_is_bit_identical(tmp_path):
    saved = _trained(lambda m: m, _cfg()).to(torch.bfloat16)
    path = _save(saved, tmp_path)
    same = hydra.inject(Classifier(), _cfg()).to(torch.bfloat16)
    hydra.load(same, path)
    assert torch.equal(same.bert.query.pool.trainable, saved.bert.query.pool.trainable)
    wider = hydra.inject(Classifier(), _cfg())
    hydra.load(wider, path)
    for name, layer in hydra.adapter_layers(wider).items():
        expected = hydra.adapter_layers(saved)[name].delta_weight()
        # bfloat16 keeps 8 bits: the saved deviations (~0.3) carry ~1e-3 of rounding.
        error = (layer.delta_weight() - expected).abs().max().item()
        assert error <= 2e-3, f"max |ΔW difference| = {error:.3g}"


# -- the regenerating environment -------------------------------------------------------------


def _other_numpy_stream(monkeypatch):
    real = np.random.default_rng
    monkeypatch.setattr(np.random, "default_rng", lambda seed: real(seed + 1))


def _other_torch_stream(monkeypatch):
    real = torch.randn
    monkeypatch.setattr(torch, "randn", lambda *a, **kw: -real(*a, **kw))


def _other_nodes(monkeypatch):
    cls = type(block_structure("cauchy_like", 4, 4, 1))
    real = cls.buffers
    monkeypatch.setattr(cls, "buffers", lambda self: {k: v * (1 + 1e-12) for k, v in real(self).items()})


@pytest.mark.parametrize("change, message", [
    (_other_numpy_stream, r"bert.query: index map; bert.value: index map"),
    (_other_torch_stream, r"bert.query: fixed pool part, initial pool values θ⁰"),
    (_other_nodes, r"bert.query: block buffer"),
], ids=["numpy-stream", "torch-stream", "block-nodes"])
def test_an_environment_that_regenerates_other_tensors_is_detected(tmp_path, monkeypatch, change, message):
    path = _save(_trained(lambda m: m, _cfg(structure="cauchy_like")), tmp_path)
    fresh = hydra.inject(Classifier(), _cfg(structure="cauchy_like"))
    before = _snapshot(fresh)
    change(monkeypatch)
    with pytest.raises(hydra.CheckpointError, match=message) as info:
        hydra.load(fresh, path)
    assert "Saved with hydra" in str(info.value) and "numpy" in str(info.value)
    _assert_unchanged(fresh, before)


def test_save_refuses_a_model_whose_config_no_longer_matches_its_regenerated_tensors(tmp_path):
    model = _trained(lambda m: m, _cfg())
    model.bert.query.config.seed = 5  # the adapters' own copy, edited behind their back
    with pytest.raises(ValueError, match="cannot save: regenerated tensors of the model differ"):
        hydra.save(model, tmp_path / "a.safetensors")


# -- metadata ---------------------------------------------------------------------------------


def _set(key, value):
    def edit(metadata):
        metadata[key] = value
    return edit


def _edit_json(key, change):
    def edit(metadata):
        data = json.loads(metadata[key])
        change(data)
        metadata[key] = json.dumps(data)
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set("layers", "not json"), "entry 'layers' is not valid JSON"),
    (_set("layers", "{}"), "entry 'layers' must be a JSON list"),
    (_set("layers", "[1, 2]"), r"layers\[0\] must be an object"),
    (_edit_json("layers", lambda d: d[0].pop("seed_name")), r"layers\[0\]\['seed_name'\] must be a string"),
    (_edit_json("layers", lambda d: d[1].update(in_features="8")), r"layers\[1\]\['in_features'\] must be an integer"),
    (_edit_json("layers", lambda d: d[0].update(regenerated={"index_map": "xyz"})), "SHA-256 hex digests"),
    (_edit_json("layers", lambda d: d[0].pop("regenerated")), "layer 'bert.query' lacks 'regenerated'"),
    (_edit_json("config", lambda d: d.update(k="2")), "entry 'config' is not a valid adapter configuration"),
    (_set("config", "[]"), "entry 'config' must be a JSON dict"),
    (_edit_json("tensors", lambda d: d.clear()), "its digest table lists"),
    (_edit_json("tensors", lambda d: next(iter(d.values())).update(initial_dtype="int8")), "initial_dtype"),
    (lambda m: m.pop("environment"), "entry 'environment' must be present"),
    (lambda m: m.pop("config"), "entry 'config' must be present"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_metadata_is_a_checkpoint_error(tmp_path, edit, message):
    path = _save(_trained(lambda m: m, _cfg()), tmp_path)
    _rewrite(path, edit_metadata=edit)
    fresh = hydra.inject(Classifier(), _cfg())
    with pytest.raises(hydra.CheckpointError, match=message):
        hydra.load(fresh, path)


def test_older_format_is_refused_with_a_clear_message(tmp_path):
    path = _save(_trained(lambda m: m, _cfg()), tmp_path)
    _rewrite(path, edit_metadata=_set("format", "hydra-adapter/1"))
    with pytest.raises(hydra.CheckpointError, match=r"format 'hydra-adapter/1' .* reads 'hydra-adapter/2' only"):
        hydra.load(hydra.inject(Classifier(), _cfg()), path)

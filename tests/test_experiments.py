"""The demo harness (``python -m hydra.experiments``) end to end on a tiny configuration.

A 2-layer BERT (hidden 32, random init, built here: nothing is downloaded) and a synthetic
two-class data set; a few steps per run. Checks that every method of the grid runs and that
results.jsonl / results.md / the two PNGs are well formed. The real quick preset is not run here.
"""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

import hydra  # noqa: E402
from hydra.experiments import run  # noqa: E402
from hydra.experiments.__main__ import main  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + run._SYNTH_WORDS
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(path), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    return BertModel(config).eval(), tokenizer


def tiny_settings():
    s = copy.deepcopy(run.PRESETS["tiny"])
    # One candidate per family except the head and plain LDR, whose choice the test checks.
    # peft's baselines have their own test (test_peft_methods_run_in_the_harness), so that this
    # module runs without peft.
    s.update(name="tiny", steps=2, sweep_steps=1, head_lrs=[1e-2, 3e-2], peft_methods=[],
             family_lrs={"lora": [1e-2], "ldr": [1e-2, 3e-2], "hydra": [1e-2], "hydra_vandermonde": [1e-2]})
    return s


@pytest.fixture(scope="module")
def tiny_run(tiny_backbone, tmp_path_factory):
    settings = tiny_settings()
    out = tmp_path_factory.mktemp("demo")
    lines = []
    data = run.synthetic_dataset(settings["n_train"], settings["n_val"], settings["n_test"], seed=0)
    records = run.run_experiments(settings, out, backbone=tiny_backbone, dataset=data, progress=False, log=lines.append)
    return settings, out, records, lines


def test_every_method_runs_and_is_recorded(tiny_run):
    settings, out, records, _ = tiny_run
    expected = [m.name for m in run.method_grid(settings)]
    assert [r["run"] for r in records] == expected
    # every method family and every HyDRA structure at every pool size is present
    assert {"head", "lora", "ldr", "hydra_toeplitz", "hydra_hankel_like", "hydra_vandermonde_like"} <= {r["method"] for r in records}
    for s in settings["hydra_structures"]:
        for p in settings["pool_sizes"]:
            assert f"hydra_{s}_P{p}" in expected
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == json.loads(json.dumps(records))
    keys = {"run", "method", "config", "params_trainable", "params_adapter", "val_acc", "test_acc", "test_n",
            "wall_s", "torch", "lr", "head_lr"}
    for r in records:
        assert keys <= set(r), r["run"]
        assert 0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0
        assert r["test_n"] == settings["n_test"] and r["val_n"] == settings["n_val"]
        assert r["torch"] == torch.__version__ and r["wall_s"] > 0


def test_parameter_counts(tiny_run):
    _, _, records, _ = tiny_run
    by = {r["run"]: r for r in records}
    head = 32 * 2 + 2  # linear head on 32 features, 2 classes
    n_matrices = 2 * 2  # query and value of 2 layers, each 32x32
    assert by["head"]["params_adapter"] == 0 and by["head"]["params_trainable"] == head
    for r in (1, 2, 4):
        assert by[f"lora_r{r}"]["params_adapter"] == n_matrices * r * (32 + 32)
    assert by["ldr_circulant"]["params_adapter"] == n_matrices * 32
    assert by["ldr_toeplitz_like"]["params_adapter"] == n_matrices * (32 + 32)
    assert by["hydra_toeplitz_P64"]["params_adapter"] == n_matrices * 64
    # fixed ratio 0.9 of P = 64: floor(57.6) = 57 fixed, 7 trainable per matrix
    fr = by["hydra_toeplitz_P64_fr0.9"]
    assert (fr["params_adapter"], fr["params_fixed"]) == (n_matrices * 7, n_matrices * 57)
    for r in records:
        assert r["params_trainable"] == r["params_adapter"] + head


def test_learning_rates_come_from_the_validation_sweep(tiny_run):
    settings, out, records, lines = tiny_run
    sweep = [json.loads(line) for line in (out / "lr_sweep.jsonl").read_text().splitlines()]
    assert {s["family"] for s in sweep} == {"head", "lora", "ldr", "hydra", "hydra_vandermonde"}
    assert all("test_acc" not in s for s in sweep)  # the test split is never used to choose
    for family in ("head", "ldr"):
        scores = {s["lr"]: s["val_acc"] for s in sweep if s["family"] == family}
        best = max(scores, key=lambda lr: (scores[lr], -lr))
        if family == "head":
            used = {r["head_lr"] for r in records}  # the head's rate serves every method
        else:
            used = {r["lr"] for r in records if r["family"] == family}
        assert used == {best}, family
    assert any(line.startswith("chosen learning rates") for line in lines)


def test_markdown_table_and_plots(tiny_run):
    settings, out, records, lines = tiny_run
    md = (out / "results.md").read_text()
    main_table, paired = md.split("Paired differences")
    rows = [line for line in main_table.splitlines() if line.startswith("| ") and not line.startswith("| run")]
    paired_rows = [line for line in paired.splitlines() if line.startswith("| ") and not line.startswith("| a |")]
    assert any(row.startswith("| hydra_vandermonde_like_P64 | lora_r") for row in paired_rows)
    assert [row.split("|")[1].strip() for row in rows] == [r["run"] for r in records]
    assert "test n" in md and "torch " + torch.__version__ in md
    for name in ("accuracy_vs_params.png", "accuracy_vs_fixed_ratio.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    assert any(line.startswith("| run") for line in lines)  # summary table printed at the end


def test_runs_leave_the_backbone_untouched(tiny_backbone, tiny_run):
    model, _ = tiny_backbone
    assert not hydra.adapter_layers(model)


def test_method_grid_quick_preset():
    grid = run.method_grid(run.PRESETS["quick"])
    names = [m.name for m in grid]
    assert names == ["head", "lora_r1", "hydra_toeplitz_P768", "hydra_vandermonde_like_P768", "peft_lora_r1",
                     "peft_vera_r384", "peft_vblora_r4_12x64", "peft_c3a_b192"]
    assert all(m.config.k == 4 for m in grid if isinstance(m.config, hydra.HydraConfig))
    assert len(run.PRESETS["quick"]["seeds"]) >= 3
    # every family of the grid has learning-rate candidates for the validation sweep
    assert {m.family for m in grid} - {"head"} <= set(run.PRESETS["quick"]["family_lrs"])


def test_method_grid_full_preset():
    grid = run.method_grid(run.PRESETS["full"])
    names = [m.name for m in grid]
    assert names[:5] == ["head", "lora_r1", "lora_r2", "lora_r4", "lora_r8"]
    assert "hydra_toeplitz_P768_fr0.9" in names and "hydra_vandermonde_like_P3072" in names
    assert len(run.PRESETS["full"]["seeds"]) >= 3
    # the full preset extends the quick one: same task, steps and learning-rate candidates, and
    # every run of the quick grid that the full grid shares is the same configuration
    full, quick = run.PRESETS["full"], run.PRESETS["quick"]
    for key in ("dataset", "n_train", "n_val", "n_test", "max_length", "batch_size", "frozen_layers", "steps",
                "sweep_steps", "target_modules", "k", "head_lrs"):
        assert full[key] == quick[key], key
    for family, lrs in full["family_lrs"].items():
        assert lrs == quick["family_lrs"][family], family
    shared = {m.name: m.config for m in run.method_grid(quick)}
    for m in grid:
        if m.name in shared and m.config is not None:
            assert m.config.to_dict() == shared[m.name].to_dict(), m.name
    # C3A's block sizes give the counts of HyDRA's pools (4 matrices of 384 x 384)
    c3a = {m.config.options["block_size"] for m in grid if m.family == "peft_c3a"}
    assert {4 * 384 * 384 // b for b in c3a} <= {4 * p for p in full["pool_sizes"]}


def test_matched_budgets_in_the_quick_preset():
    """LoRA r = 1, HyDRA P = 768 and peft's adapters train the same number of adapter numbers on
    MiniLM's 384x384 q/v (peft's only where peft is installed)."""
    from transformers import BertConfig, BertModel

    from hydra.experiments import peft_baselines

    has_peft = importlib.util.find_spec("peft") is not None
    settings = run.PRESETS["quick"]
    config = BertConfig(vocab_size=16, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=32)
    counts = {}
    for m in run.method_grid(settings)[1:]:
        torch.manual_seed(0)
        model = BertModel(config)
        if isinstance(m.config, peft_baselines.PeftSpec):
            assert m.config.expected_trainable([(384, 384)] * 4) == 4 * 768, m.name
            if has_peft:
                model.requires_grad_(False)
                counts[m.name] = peft_baselines.inject(model, m.config)["trainable"]
            continue
        hydra.inject(model, m.config)
        counts[m.name] = hydra.report(model).adapter_trainable
    assert set(counts.values()) == {4 * 768}, counts  # q and v of the top two layers


def test_prefix_cache_reproduces_the_full_model(tiny_backbone):
    model, tokenizer = tiny_backbone
    settings = dict(max_length=12, batch_size=4, frozen_layers=1)
    texts = ["good film", "the plot was very dull and weak", "a", "lovely actor and story"]
    prefix = run.PrefixCache(model, tokenizer, 1, 12)
    from hydra.experiments import data

    inputs = data.tokenize(tokenizer, texts, 12)
    with torch.no_grad():
        full = run._features(model, inputs)
        cached = run._features(model, prefix.batch(texts), 1)
        again = run._features(model, prefix.batch(texts[::-1]), 1).flip(0)  # other padding, same states
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(again, full, rtol=1e-5, atol=1e-6)
    run._check_prefix(model, tokenizer, prefix, {"train": (texts, [0, 1, 0, 1])}, settings)
    with pytest.raises(ValueError, match="frozen_layers"):
        run.PrefixCache(model, tokenizer, 2, 12)


def test_paired_comparisons_use_the_same_seeds():
    rec = lambda run_name, fam, seed, acc, hits: {"run": run_name, "method": fam, "family": fam, "seed": seed, "config": None,
                                                 "params_adapter": 0 if fam == "head" else 768, "params_trainable": 1,
                                                 "params_fixed": 0, "lr": 0.0, "val_acc": acc, "test_acc": acc,
                                                 "test_n": 4, "wall_s": 1.0, "test_hits": hits}
    records = [rec("head", "head", s, 0.5, "1100") for s in (0, 1, 2)]
    records += [rec("lora_r1", "lora", s, a, h) for s, a, h in ((0, 0.75, "1110"), (1, 0.5, "1100"), (2, 0.75, "1101"))]
    records += [rec("hydra_toeplitz_P768", "hydra", s, a, h) for s, a, h in ((0, 1.0, "1111"), (1, 0.75, "1110"), (2, 0.75, "1110"))]
    pairs = {(c["a"], c["b"]): c for c in run.paired_comparisons(records)}
    c = pairs[("hydra_toeplitz_P768", "lora_r1")]
    assert c["seeds"] == 3 and c["wins"] == 2 and abs(c["diff"] - 0.5 / 3) < 1e-12
    # per-seed differences 0.25, 0.25, 0: mean 1/6, sd 0.1443, t(0.975, 2) = 4.303
    assert abs(c["diff_ci"] - 4.302652729911275 * 0.14433756729740643 / 3 ** 0.5) < 1e-9
    assert c["boot_lo"] <= c["diff"] <= c["boot_hi"]
    assert pairs[("lora_r1", "head")]["diff"] > 0


def test_paper_preset_names_what_is_missing(tmp_path, capsys):
    rc = main(["--preset", "paper", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cifar-100-python" in err and "google/vit-base-patch16-224" in err and "pip install transformers" in err


def _fake_cifar100(folder, n_train, n_test, seed=0):
    """The 'python version' layout of CIFAR-100 (pickles 'train' and 'test'), random pixels."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir()
    for name, n in (("train", n_train), ("test", n_test)):
        # Labels depend on the mean brightness, so there is something to learn.
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = (data.mean(1) > 127.5).astype(int).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "fine_labels": labels}, fh)
    return folder


def test_paper_preset_runs_on_a_tiny_vit_and_fake_cifar(tmp_path):
    """The --preset paper code path (ViT from a local directory, CIFAR-100 pickles, image batches)
    end to end, shrunk: a 1-layer ViT with 32×32 inputs and a few images."""
    model_dir = tmp_path / "vit"
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64)
    transformers.ViTModel(config, add_pooling_layer=False).save_pretrained(model_dir)
    settings = copy.deepcopy(run.PRESETS["paper"])
    settings.update(
        name="paper", model=str(model_dir), data_path=str(_fake_cifar100(tmp_path / "cifar-100-python", 40, 12)),
        n_train=24, n_val=8, n_test=12, image_size=32, batch_size=8, eval_batch_size=8, steps=2, sweep_steps=1,
        seeds=[0], pool_sizes=[16, 64], ratio_pool=64, fixed_ratios=[0.0, 0.5], device="cpu",
        peft_methods=[],  # sized for ViT-B's 768-wide matrices; peft's adapters have their own tests
    )
    records = run.run_experiments(settings, tmp_path / "out", progress=False, log=lambda line: None)
    assert {r["run"] for r in records} >= {"head", "lora_r1", "ldr_circulant", "hydra_toeplitz_P16",
                                           "hydra_vandermonde_like_P64", "hydra_toeplitz_P64_fr0.5"}
    assert all(r["test_n"] == 12 and r["dataset"] == "cifar100" for r in records)
    adapted = [r for r in records if r["config"] is not None]
    assert all(r["params_adapter"] > 0 for r in adapted)
    assert (tmp_path / "out" / "accuracy_vs_params.png").read_bytes()[:8] == PNG_MAGIC


def test_further_seeds_reuse_the_sweep_and_combine(tiny_backbone, tiny_run, tmp_path):
    """A second process runs seed 1 with the first run's learning rates; --combine merges both."""
    settings, out, records, _ = tiny_run
    more = dict(settings, seeds=[1], lr_sweep_from=str(out / "lr_sweep.jsonl"), lora_ranks=[1], ldr_structures=[],
                hydra_structures=["vandermonde_like"], pool_sizes=[64], fixed_ratios=[])
    data = run.synthetic_dataset(settings["n_train"], settings["n_val"], settings["n_test"], seed=0)
    second = run.run_experiments(more, tmp_path / "seed1", backbone=tiny_backbone, dataset=data, progress=False,
                                 log=lambda line: None)
    first_lrs = {r["family"]: r["lr"] for r in records}
    assert all(r["lr"] == first_lrs[r["family"]] and r["head_lr"] == records[0]["head_lr"] for r in second)
    assert (tmp_path / "seed1" / "lr_sweep.jsonl").read_text() == (out / "lr_sweep.jsonl").read_text()
    merged = run.combine_runs(dict(settings, dataset="synthetic"), tmp_path / "merged", [out, tmp_path / "seed1"],
                              log=lambda line: None)
    assert len(merged) == len(records) + len(second)
    assert {(r["run"], r["seed"]) for r in merged} == {(r["run"], r["seed"]) for r in records + second}
    md = (tmp_path / "merged" / "results.md").read_text()
    assert "| hydra_vandermonde_like_P64 | lora_r1 |" in md  # paired on seed 1, the seed both runs have
    bad = dict(second[0], lr=second[0]["lr"] * 2 if second[0]["lr"] else 1.0, run="lora_r1", family="lora", seed=5)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="disagree on the lora learning rate"):
        run.combine_runs(dict(settings, dataset="synthetic"), tmp_path / "m2", [out, tmp_path / "bad"], log=lambda line: None)
    # a run the preset's grid lacks (e.g. a quick-preset directory merged into another preset) is named
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "results.jsonl").write_text(json.dumps(dict(second[0], run="peft_vera_r384")) + "\n")
    with pytest.raises(ValueError, match="grid lacks: peft_vera_r384"):
        run.combine_runs(dict(settings, dataset="synthetic"), tmp_path / "m3", [out, tmp_path / "foreign"], log=lambda line: None)


def test_a_fixed_split_does_not_follow_the_first_seed_of_the_process(tiny_backbone, tiny_run, tmp_path):
    """A process started with --seeds 1 must train and test on the same split as one started with
    --seeds 0 1 (it used the split of its first seed, so merged runs paired different test sets),
    and --combine refuses records made on different splits."""
    settings, out, records, _ = tiny_run
    calls = []

    def data(split):
        calls.append(split)
        return run.synthetic_dataset(settings["n_train"], settings["n_val"], settings["n_test"], seed=split)

    more = dict(settings, seeds=[1], fixed_split=True, lr_sweep_from=str(out / "lr_sweep.jsonl"), lora_ranks=[1],
                ldr_structures=[], hydra_structures=[], fixed_ratios=[])
    second = run.run_experiments(more, tmp_path / "seed1", backbone=tiny_backbone, dataset=data, progress=False,
                                 log=lambda line: None)
    assert set(calls) == {0} and {r["split_seed"] for r in second} == {0}
    other = [dict(r, split_seed=1, seed=2) for r in second]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    with pytest.raises(ValueError, match="different data splits"):
        run.combine_runs(dict(more, dataset="synthetic"), tmp_path / "m", [tmp_path / "seed1", tmp_path / "other"],
                         log=lambda line: None)


# --------------------------------------------------------------------------- peft's adapters


PEFT_PREFIX = {"lora": "lora_", "vera": "vera_lambda_", "vblora": "vblora_", "c3a": "c3a_"}


@pytest.mark.parametrize("spec", run.PRESETS["tiny"]["peft_methods"], ids=lambda s: s["method"])
def test_peft_adapter_trains_only_its_own_parameters(tiny_backbone, spec):
    """One optimiser step through peft's adapter: only the adapter's own parameters move, and
    the count is the one the preset was matched with."""
    pytest.importorskip("peft")
    from hydra.experiments import peft_baselines

    model = copy.deepcopy(tiny_backbone[0]).requires_grad_(False)
    ps = peft_baselines.PeftSpec(spec["method"], run.PRESETS["tiny"]["target_modules"], seed=0,
                                 **{k: v for k, v in spec.items() if k != "method"})
    info = peft_baselines.inject(model, ps)
    assert info["shapes"] == [(32, 32)] * 4  # q and v of the tiny BERT's 2 layers
    assert info["trainable"] == ps.expected_trainable(info["shapes"]) == 4 * 2 * 32  # LoRA r = 1's count
    assert info["fixed"] == (2 * 32 * 32 if spec["method"] == "vera" else 0)  # VeRA's shared A, B
    before = {n: p.detach().clone() for n, p in info["wrapper"].named_parameters()}
    trainable = [n for n, p in info["wrapper"].named_parameters() if p.requires_grad]
    assert trainable and all(PEFT_PREFIX[spec["method"]] in n for n in trainable)
    opt = torch.optim.Adam([p for p in info["wrapper"].parameters() if p.requires_grad], lr=1e-2)
    x = torch.randint(5, 25, (3, 7))
    model(input_ids=x).last_hidden_state.square().mean().backward()
    opt.step()
    moved = {n for n, p in info["wrapper"].named_parameters() if not torch.equal(p, before[n])}
    assert moved and moved <= set(trainable), moved - set(trainable)


def test_peft_methods_run_in_the_harness(tiny_backbone, tmp_path):
    """peft's four adapters through run_experiments: swept learning rates, counts, paired rows."""
    pytest.importorskip("peft")
    settings = tiny_settings()
    settings.update(lora_ranks=[1], ldr_structures=[], hydra_structures=["toeplitz"], pool_sizes=[64], fixed_ratios=[],
                    peft_methods=run.PRESETS["tiny"]["peft_methods"], head_lrs=[1e-2],
                    family_lrs=dict(settings["family_lrs"], peft_lora=[1e-2], peft_vera=[1e-2], peft_vblora=[1e-2],
                                    peft_c3a=[3e-2, 1e-1]))
    data = run.synthetic_dataset(settings["n_train"], settings["n_val"], settings["n_test"], seed=0)
    records = run.run_experiments(settings, tmp_path, backbone=tiny_backbone, dataset=data, progress=False,
                                  log=lambda line: None)
    by = {r["run"]: r for r in records}
    assert [r["run"] for r in records] == ["head", "lora_r1", "hydra_toeplitz_P64", "peft_lora_r1", "peft_vera_r32",
                                           "peft_vblora_r1_8x16", "peft_c3a_b16"]
    assert {by[n]["params_adapter"] for n in by if n != "head"} == {256}
    assert by["peft_vera_r32"]["params_fixed"] == 2048 and by["peft_c3a_b16"]["config"]["block_size"] == 16
    sweep = [json.loads(line) for line in (tmp_path / "lr_sweep.jsonl").read_text().splitlines()]
    c3a = {s["lr"]: s["val_acc"] for s in sweep if s["family"] == "peft_c3a"}
    assert set(c3a) == {3e-2, 1e-1} and by["peft_c3a_b16"]["lr"] == max(c3a, key=lambda lr: (c3a[lr], -lr))
    assert not hydra.adapter_layers(tiny_backbone[0]) and not any(
        "lora_" in n or "c3a_" in n for n, _ in tiny_backbone[0].named_parameters())  # the backbone stays bare
    md = (tmp_path / "results.md").read_text()
    assert "| peft_lora_r1 | lora_r1 |" in md and "| hydra_toeplitz_P64 | peft_c3a_b16 |" in md
    assert "peft's own adapters (peft " in md


def test_peft_refuses_what_it_cannot_do(tiny_backbone, monkeypatch):
    from hydra.experiments import peft_baselines

    with pytest.raises(ValueError, match="`method` must be one of"):
        peft_baselines.PeftSpec("ia3", "query", r=1)
    with pytest.raises(ValueError, match="needs the option"):
        peft_baselines.PeftSpec("c3a", "query")
    if importlib.util.find_spec("peft") is not None:
        # a trainable parameter that is not the adapter's own (here: peft's modules_to_save) is refused
        model = copy.deepcopy(tiny_backbone[0]).requires_grad_(False)
        spec = peft_baselines.PeftSpec("lora", ["query", "value"], r=1, modules_to_save=["pooler.dense"])
        with pytest.raises(ValueError, match="is trainable but is not the adapter's own"):
            peft_baselines.inject(model, spec)
    monkeypatch.setitem(__import__("sys").modules, "peft", None)  # as if peft were not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'ldr-hydra\[demo\]'"):
        peft_baselines.PeftSpec("lora", "query", r=1).build()


def test_reused_sweep_sweeps_only_the_candidates_it_lacks(tiny_backbone, tiny_run, tmp_path):
    """An earlier lr_sweep.jsonl without peft's C3A and with one LoRA rate: the recorded scores are
    reused; the new LoRA rate and C3A's rates are swept now; the choice covers both."""
    pytest.importorskip("peft")
    settings, out, records, _ = tiny_run
    lrs = dict(settings["family_lrs"], lora=settings["family_lrs"]["lora"] + [3e-2], peft_c3a=[3e-2, 1e-1])
    more = dict(settings, lr_sweep_from=str(out / "lr_sweep.jsonl"), only=["lora_r1", "peft_c3a_b16"],
                peft_methods=[{"method": "c3a", "block_size": 16}], family_lrs=lrs)
    data = run.synthetic_dataset(settings["n_train"], settings["n_val"], settings["n_test"], seed=0)
    second = run.run_experiments(more, tmp_path, backbone=tiny_backbone, dataset=data, progress=False, log=lambda line: None)
    old = [json.loads(line) for line in (out / "lr_sweep.jsonl").read_text().splitlines()]
    new = [json.loads(line) for line in (tmp_path / "lr_sweep.jsonl").read_text().splitlines()]
    assert new[: len(old)] == old
    assert [(s["family"], s["lr"]) for s in new[len(old):]] == [("lora", 3e-2), ("peft_c3a", 3e-2), ("peft_c3a", 1e-1)]
    by = {r["run"]: r for r in second}
    assert set(by) == {"lora_r1", "peft_c3a_b16"} and all(r["cpu_s"] > 0 for r in second)
    for run_name, family in (("lora_r1", "lora"), ("peft_c3a_b16", "peft_c3a")):
        scores = {s["lr"]: s["val_acc"] for s in new if s["family"] == family}
        assert by[run_name]["lr"] == max(scores, key=lambda lr: (scores[lr], -lr)), family

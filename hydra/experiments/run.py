r"""The HyDRA demo harness: the paper's Figures 3 and 4 in miniature, offline.

One call of :func:`run_experiments` fine-tunes a frozen pretrained encoder with every adapter
method on the same data, steps, optimiser (AdamW), schedule (OneCycle) and seed, then writes
``results.jsonl``, ``results.md``, ``accuracy_vs_params.png`` and ``accuracy_vs_fixed_ratio.png``
to the output directory. Methods:

* ``head``: the classification head only (a linear probe on mean-pooled features);
* ``lora``: LoRA with ranks ``lora_ranks`` (scale ``alpha / r`` with ``alpha = 2 r``);
* ``ldr``: one plain LDR matrix per layer, circulant and Toeplitz-like (r = 1);
* ``hydra``: HyDRA ``toeplitz``, ``hankel_like`` and ``vandermonde_like`` (k = ``k``, r = 1) at the
  pool sizes ``pool_sizes``; then the fixed-ratio sweep ``fixed_ratios`` for
  ``ratio_structure`` at ``ratio_pool``.

Every adapter method adapts the attention query and value projections of all layers
(``target_modules``) and trains a fresh head on mean-pooled features as well.

Learning rates are chosen on a validation split carved from the training pool (never the
test split): first the head's learning rate among ``head_lrs`` (head-only runs), then, for each
adapter family (``lora``, ``ldr``, ``hydra``, ``hydra_vandermonde``, as the paper groups them in
its Appendix B), the adapter learning rate among ``family_lrs[family]`` on one representative
configuration and a short run of ``sweep_steps`` steps. The chosen rates then serve every
configuration of the family; the sweep is recorded in ``lr_sweep.jsonl``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import random
import re
import time
import warnings
from pathlib import Path

__all__ = ["PRESETS", "Method", "method_grid", "run_experiments", "train_and_evaluate", "write_outputs"]

# Learning-rate candidates per family: the paper's Appendix B rate and 4x it (our runs are
# ~50x shorter than the paper's 5,000 iterations, so the larger rate is a real contender).
_FAMILY_LRS = {
    "lora": [4e-3, 1.6e-2],
    "ldr": [2e-3, 8e-3],
    "hydra": [2e-3, 8e-3],
    "hydra_vandermonde": [1e-2, 4e-2],
}

# The methods every preset compares (the paper's Figure 3 lines), on the attention q/v projections:
# named query/value in BERT-style models (MiniLM), q_proj/v_proj in transformers >= 5's ViT.
_METHODS = {
    "k": 4,
    "target_modules": ["query", "value", "q_proj", "v_proj"],
    "lora_ranks": [1, 2, 4],
    "ldr_structures": ["circulant", "toeplitz_like"],
    "hydra_structures": ["toeplitz", "hankel_like", "vandermonde_like"],
}

#: Named settings. ``quick``: the ``make demo`` run (about 15 minutes on 2 idle CPU cores);
#: ``tiny``: a random 2-layer BERT and a synthetic data set (seconds, for tests); ``paper``: the
#: paper's setting (ViT-B/16 on CIFAR-100, 5,000 iterations), for a GPU.
PRESETS = {
    "quick": {
        "model": "minilm",
        "dataset": "rotten_tomatoes",
        "n_train": 2000,
        "n_val": 300,
        "n_test": 1000,
        "max_length": 32,
        "batch_size": 16,
        "eval_batch_size": 100,
        # One step (16 snippets, <= 32 tokens, forward + backward through all 6 layers) takes
        # ~0.25 s on 2 idle cores: 17 runs of 120 steps, 10 sweep runs of 48 steps and the
        # evaluations make ~15 minutes. (On cores shared with other jobs it is several times slower.)
        "steps": 120,
        "sweep_steps": 48,
        "seeds": [0],
        **_METHODS,
        # per 384x384 matrix: 192 = n/2, 768 = 2n, 1536 = 4n (the paper spans 0.5n to 8n)
        "pool_sizes": [192, 768, 1536],
        "ratio_structure": "toeplitz",
        "ratio_pool": 768,
        "fixed_ratios": [0.0, 0.5, 0.9],
        "head_lrs": [1e-2, 3e-2],
        "family_lrs": _FAMILY_LRS,
        "weight_decay": 0.0,
        "threads": 2,
    },
    "tiny": {
        "model": "tiny-random-bert",
        "dataset": "synthetic",
        "n_train": 48,
        "n_val": 16,
        "n_test": 16,
        "max_length": 12,
        "batch_size": 8,
        "eval_batch_size": 16,
        "steps": 3,
        "sweep_steps": 2,
        "seeds": [0],
        **_METHODS,
        "pool_sizes": [16, 64, 128],
        "ratio_structure": "toeplitz",
        "ratio_pool": 64,
        "fixed_ratios": [0.0, 0.5, 0.9],
        "head_lrs": [1e-2, 3e-2],
        "family_lrs": {"lora": [1e-2], "ldr": [1e-2, 3e-2], "hydra": [1e-2], "hydra_vandermonde": [1e-2]},
        "weight_decay": 0.0,
        "threads": 2,
    },
    "paper": {
        # Appendix B of the paper: ViT-B/16 (ImageNet-1k) -> CIFAR-100, q/v projections,
        # AdamW + OneCycle, 5,000 iterations, k = 4, LRs 0.004 LoRA / 0.002 circulant,
        # Toeplitz, Hankel / 0.01 Vandermonde (kept as the first candidate of each family).
        "model": "google/vit-base-patch16-224",
        "dataset": "cifar100",
        "data_path": None,  # --data: the extracted cifar-100-python directory
        "n_train": 45000,
        "n_val": 5000,
        "n_test": 10000,
        "image_size": 224,
        "batch_size": 64,
        "eval_batch_size": 256,
        "steps": 5000,
        "sweep_steps": 1000,
        "seeds": [0, 1],
        **_METHODS,
        "pool_sizes": [384, 600, 768, 1000, 1536, 2100, 2304, 2600, 3072],
        "ratio_structure": "toeplitz",
        "ratio_pool": 768,
        "fixed_ratios": [round(0.1 * i, 1) for i in range(10)],
        "head_lrs": [1e-3, 4e-3],
        "family_lrs": {
            "lora": [4e-3, 1e-3],
            "ldr": [2e-3, 5e-4],
            "hydra": [2e-3, 5e-4],
            "hydra_vandermonde": [1e-2, 2.5e-3],
        },
        "weight_decay": 0.01,
        "threads": None,
        "device": "auto",  # CUDA when available
    },
}

_LABELS = {
    "head": "head only",
    "lora": "LoRA",
    "ldr": "LDR",
    "hydra_toeplitz": "HyDRA Toeplitz",
    "hydra_hankel_like": "HyDRA Hankel-like",
    "hydra_vandermonde_like": "HyDRA Vandermonde-like",
}


class Method:
    """One run of the grid: a name, a family (for the learning rate), a plot line and a config.

    Parameters
    ----------
    name : str
        Unique run name, e.g. ``"hydra_toeplitz_P768_fr0.5"``.
    family : str
        ``"head"``, ``"lora"``, ``"ldr"``, ``"hydra"`` or ``"hydra_vandermonde"``: runs of a family
        share their learning rate.
    line : str
        Plot line (method family in the figure), e.g. ``"hydra_toeplitz"``.
    config : HydraConfig, LoRAConfig, LDRConfig or None
        ``None`` for head only.
    """

    def __init__(self, name, family, line, config):
        self.name, self.family, self.line, self.config = name, family, line, config

    def __repr__(self):
        return f"Method({self.name!r})"


def _family(structure):
    return "hydra_vandermonde" if structure == "vandermonde_like" else "hydra"


def method_grid(settings, seed=0):
    """Every run of the main grid and of the fixed-ratio sweep, for one seed.

    Parameters
    ----------
    settings : dict
        A preset (see :data:`PRESETS`).
    seed : int
        Seeds the adapters' initialisation (and the data order, in :func:`train_and_evaluate`).

    Returns
    -------
    list of Method
        Head only, LoRA, plain LDR, HyDRA per structure and pool size, then the fixed-ratio
        runs with a non-zero ratio (ratio 0 is the main-grid run of the same configuration).

    Examples
    --------
    >>> [m.name for m in method_grid(PRESETS["quick"])][:6]
    ['head', 'lora_r1', 'lora_r2', 'lora_r4', 'ldr_circulant', 'ldr_toeplitz_like']
    >>> len(method_grid(PRESETS["quick"]))
    17
    """
    import hydra

    targets = list(settings["target_modules"])
    out = [Method("head", "head", "head", None)]
    for r in settings["lora_ranks"]:
        out.append(Method(f"lora_r{r}", "lora", "lora", hydra.LoRAConfig(rank=r, alpha=2.0 * r, target_modules=targets, seed=seed)))
    for s in settings["ldr_structures"]:
        out.append(Method(f"ldr_{s}", "ldr", "ldr", hydra.LDRConfig(structure=s, rank=1, target_modules=targets, seed=seed)))
    for s in settings["hydra_structures"]:
        for p in settings["pool_sizes"]:
            cfg = hydra.HydraConfig(structure=s, k=settings["k"], rank=1, pool_size=p, seed=seed, target_modules=targets)
            out.append(Method(f"hydra_{s}_P{p}", _family(s), f"hydra_{s}", cfg))
    s, p = settings["ratio_structure"], settings["ratio_pool"]
    for ratio in settings["fixed_ratios"]:
        cfg = hydra.HydraConfig(
            structure=s, k=settings["k"], rank=1, pool_size=p, fixed_ratio=ratio, seed=seed, target_modules=targets
        )
        name = f"hydra_{s}_P{p}" + (f"_fr{ratio:g}" if ratio else "")
        if all(m.name != name for m in out):
            out.append(Method(name, _family(s), f"hydra_{s}_ratio", cfg))
    return out


# --------------------------------------------------------------------------- backbones and data


def build_tiny_backbone(hidden=32, layers=2, seed=0):
    """A randomly initialised 2-layer BERT and a word-level tokenizer for the synthetic data.

    Nothing is downloaded: the vocabulary is written to a temporary directory and
    ``transformers.BertTokenizerFast`` reads it from there.

    Returns
    -------
    model, tokenizer
    """
    import tempfile

    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + _SYNTH_WORDS
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vocab.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(vocab) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=path, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=64,
    )
    return BertModel(config).eval(), tokenizer


_SYNTH_POS = ["good", "great", "fine", "superb", "lovely"]
_SYNTH_NEG = ["bad", "awful", "poor", "dull", "weak"]
_SYNTH_FILL = ["the", "film", "was", "a", "plot", "and", "very", "actor", "story", "it"]
_SYNTH_WORDS = _SYNTH_POS + _SYNTH_NEG + _SYNTH_FILL


def synthetic_dataset(n_train=48, n_val=16, n_test=16, seed=0):
    """A tiny two-class text data set: the label says whether a positive word occurs.

    Returns
    -------
    dict
        In the format of :func:`hydra.experiments.data.load_dataset`.
    """
    rng = random.Random(seed)

    def one():
        y = rng.randrange(2)
        words = [rng.choice(_SYNTH_FILL) for _ in range(rng.randint(3, 8))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(_SYNTH_POS if y else _SYNTH_NEG))
        return " ".join(words), y

    def split(n):
        rows = [one() for _ in range(n)]
        return [t for t, _ in rows], [y for _, y in rows]

    return {
        "train": split(n_train), "val": split(n_val), "test": split(n_test),
        "num_classes": 2, "label_names": ["negative", "positive"], "name": "synthetic", "source": "synthetic",
    }


def _load_backbone(settings):
    from . import data

    if settings["model"] == "tiny-random-bert":
        return build_tiny_backbone()
    if settings["dataset"] == "cifar100":
        return _load_vit(settings["model"])
    return data.load_backbone(settings["model"])


def _load_data(settings, seed):
    from . import data

    if settings["dataset"] == "synthetic":
        return synthetic_dataset(settings["n_train"], settings["n_val"], settings["n_test"], seed)
    if settings["dataset"] == "cifar100":
        return load_cifar100(settings.get("data_path"), settings["n_train"], settings["n_val"], settings["n_test"], seed)
    return data.load_dataset(
        settings["dataset"], n_train=settings["n_train"], n_val=settings["n_val"], n_test=settings["n_test"], seed=seed
    )


_PAPER_HELP = (
    "--preset paper runs ViT-B/16 on CIFAR-100. It needs (1) `pip install transformers` and the "
    "model google/vit-base-patch16-224, either through network access to the Hugging Face hub or "
    "as a local directory passed with --model PATH; and (2) the CIFAR-100 'python version' "
    "(https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, extracted) passed with "
    "--data PATH/cifar-100-python (the directory holding the files 'train' and 'test'). "
    "A GPU is strongly recommended (5,000 iterations per run)."
)


def _load_vit(model):
    try:
        from transformers import ViTModel
    except ImportError as err:
        raise ModuleNotFoundError(_PAPER_HELP) from err
    try:
        net = ViTModel.from_pretrained(model, add_pooling_layer=False)
    except OSError as err:
        raise FileNotFoundError(f"could not load the model {model!r}. {_PAPER_HELP}") from err
    return net.float().eval(), None


def load_cifar100(path, n_train, n_val, n_test, seed):
    """CIFAR-100 (python version) from a local directory, split into train / val / test.

    ``val`` is drawn from the official training set (seeded), ``test`` is the official test
    set. Images stay uint8 (N, 3, 32, 32) and are resized and normalised per batch.
    """
    import pickle

    import numpy as np

    if path is None or not (Path(path) / "train").is_file() or not (Path(path) / "test").is_file():
        where = "no --data given" if path is None else f"not found at {str(path)!r}"
        raise FileNotFoundError(f"CIFAR-100: {where}. {_PAPER_HELP}")

    def read(name):
        with open(Path(path) / name, "rb") as fh:
            d = pickle.load(fh, encoding="latin1")
        return np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), list(d["fine_labels"])

    x, y = read("train")
    xt, yt = read("test")
    order = np.random.default_rng(seed).permutation(len(y))
    tr, va = order[:n_train], order[n_train : n_train + n_val]
    return {
        "train": (x[tr], [y[i] for i in tr]), "val": (x[va], [y[i] for i in va]),
        "test": (xt[:n_test], yt[:n_test]), "num_classes": 100,
        "label_names": [str(i) for i in range(100)], "name": "cifar100", "source": str(path),
    }


def _batches(split, tokenizer, settings, batch_size, shuffle=False, seed=0):
    """``(inputs, labels)`` batches for text (tokenized on the fly) or images (resized)."""
    import torch

    from . import data

    xs, ys = split
    if tokenizer is not None:
        if not shuffle:
            # Evaluation: length-sorted batches waste less compute on padding.
            order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
            xs, ys = [xs[i] for i in order], [ys[i] for i in order]
        yield from data.iterate_batches(
            xs, ys, tokenizer, batch_size, settings["max_length"], shuffle=shuffle, seed=seed
        )
        return
    order = list(range(len(ys)))
    if shuffle:
        random.Random(seed).shuffle(order)
    size = settings.get("image_size", 224)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        img = torch.as_tensor(xs[idx]).float().div_(255.0)
        img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
        yield {"pixel_values": (img - 0.5) / 0.5}, torch.tensor([ys[i] for i in idx])


def _device(settings):
    import torch

    dev = settings.get("device") or "cpu"
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(dev)


def _to(inputs, y, device):
    return {k: v.to(device) for k, v in inputs.items()}, y.to(device)


def _features(model, inputs):
    from .data import mean_pool

    hidden = model(**inputs).last_hidden_state
    if "attention_mask" in inputs:
        return mean_pool(hidden, inputs["attention_mask"])
    return hidden.mean(1)


# --------------------------------------------------------------------------- training


def _accuracy(model, head, split, tokenizer, settings):
    import torch

    correct = total = 0
    model.eval()
    with torch.inference_mode():
        for inputs, y in _batches(split, tokenizer, settings, settings["eval_batch_size"]):
            inputs, y = _to(inputs, y, _device(settings))
            pred = head(_features(model, inputs)).argmax(-1)
            correct += int((pred == y).sum())
            total += len(y)
    return correct / total, total


def train_and_evaluate(base_model, tokenizer, dataset, method, settings, *, steps, lr, head_lr, seed, test=True, progress=True):
    """Fine-tune one method on ``dataset['train']``; return its accuracies and parameter counts.

    Parameters
    ----------
    base_model : nn.Module
        The frozen backbone; it is deep-copied, never modified.
    tokenizer : tokenizer or None
        ``None`` for image inputs.
    dataset : dict
        From :func:`hydra.experiments.data.load_dataset` (or the synthetic / CIFAR loaders).
    method : Method
    settings : dict
        A preset.
    steps : int
        Optimiser steps (batches of ``settings['batch_size']``, cycling through the epochs).
    lr, head_lr : float
        OneCycle maximum learning rates of the adapter and of the head.
    seed : int
        Seeds the head's initialisation and the batch order.
    test : bool
        Also score the test split (False during the learning-rate sweep).

    Returns
    -------
    dict
        ``val_acc``, ``val_n``, ``test_acc``, ``test_n`` (None when ``test`` is False),
        ``params_trainable`` (adapter + head), ``params_adapter``, ``params_fixed``, ``wall_s``.
    """
    import torch
    from tqdm.auto import tqdm

    import hydra

    t0 = time.perf_counter()
    device = _device(settings)
    model = copy.deepcopy(base_model).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    if method.config is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pool sizes above the slot count are the point of the sweep
            hydra.inject(model, method.config)
        rep = hydra.report(model)
        adapter, fixed = rep.adapter_trainable, rep.fixed
    else:
        adapter = fixed = 0
    torch.manual_seed(seed)
    dim = model.config.hidden_size
    head = torch.nn.Linear(dim, dataset["num_classes"]).to(device)
    adapter_params = hydra.trainable_parameters(model)
    groups = [{"params": list(head.parameters()), "lr": head_lr}]
    max_lr = [head_lr]
    if adapter_params:
        groups.append({"params": adapter_params, "lr": lr})
        max_lr.append(lr)
    opt = torch.optim.AdamW(groups, weight_decay=settings["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps)

    def stream():
        epoch = 0
        while True:
            yield from _batches(dataset["train"], tokenizer, settings, settings["batch_size"], shuffle=True, seed=1000 * seed + epoch)
            epoch += 1

    # The backbone stays in eval mode (no dropout): the runs are short, and every method then
    # sees the same deterministic features.
    batches = stream()
    bar = tqdm(range(steps), desc=method.name, leave=False, disable=not progress, dynamic_ncols=True)
    for _ in bar:
        inputs, y = _to(*next(batches), device)
        loss = torch.nn.functional.cross_entropy(head(_features(model, inputs)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if not math.isfinite(loss.item()):
            break  # diverged: the accuracies below record it
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    val_acc, val_n = _accuracy(model, head, dataset["val"], tokenizer, settings)
    test_acc, test_n = _accuracy(model, head, dataset["test"], tokenizer, settings) if test else (None, None)
    head_n = sum(p.numel() for p in head.parameters())
    return {
        "val_acc": val_acc, "val_n": val_n, "test_acc": test_acc, "test_n": test_n,
        "params_trainable": adapter + head_n, "params_adapter": adapter, "params_fixed": fixed,
        "wall_s": time.perf_counter() - t0,
    }


def _representatives(settings, grid):
    """One configuration per family for the learning-rate sweep.

    LoRA: the middle rank; plain LDR: circulant (the first); HyDRA: the first structure of the
    family at its middle pool size.
    """
    reps = {}
    for family in ("lora", "ldr", "hydra", "hydra_vandermonde"):
        members = [m for m in grid if m.family == family and "_fr" not in m.name]
        if not members:
            continue
        if family.startswith("hydra"):
            members = [m for m in members if m.line == members[0].line]
        reps[family] = members[0] if family == "ldr" else members[len(members) // 2]
    return reps


def _versions():
    import torch

    try:
        import transformers

        tv = transformers.__version__
    except ImportError:  # pragma: no cover
        tv = None
    return {"torch": torch.__version__, "transformers": tv, "python": platform.python_version()}


def run_experiments(settings, out_dir, *, backbone=None, dataset=None, progress=True, log=print):
    """Run the learning-rate sweep, the method grid and the fixed-ratio sweep; write the outputs.

    Parameters
    ----------
    settings : dict
        A preset from :data:`PRESETS` (possibly with overrides).
    out_dir : str or Path
        Where ``results.jsonl``, ``lr_sweep.jsonl``, ``results.md`` and the two PNGs go.
    backbone : (model, tokenizer), optional
        A ready backbone (tests pass a tiny BERT); default: loaded from ``settings['model']``.
    dataset : dict or callable, optional
        A ready data set, or ``seed -> data set``; default: loaded from ``settings['dataset']``.
    progress : bool
        Show tqdm progress bars.
    log : callable
        Receives progress lines and the final summary table.

    Returns
    -------
    list of dict
        The records written to ``results.jsonl``.
    """
    import torch
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if settings.get("threads"):
        torch.set_num_threads(settings["threads"])
    t_start = time.perf_counter()

    def data_for(seed):
        if dataset is None:
            return _load_data(settings, seed)
        return dataset(seed) if callable(dataset) else dataset

    seeds = list(settings["seeds"])
    data0 = data_for(seeds[0])  # first: a missing data set fails before a large model loads
    model, tokenizer = backbone if backbone is not None else _load_backbone(settings)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    versions = _versions()
    common = {
        "preset": settings.get("name"), "backbone": settings["model"], "dataset": settings["dataset"],
        "steps": settings["steps"], "batch_size": settings["batch_size"], **versions,
    }
    # ---- learning rates: chosen on the validation split of the first seed
    grid0 = method_grid(settings, seeds[0])
    sweep_records = []
    sweep_jobs = [(grid0[0], lr, None) for lr in settings["head_lrs"]]
    n_adapter_jobs = sum(len(settings["family_lrs"][f]) for f in _representatives(settings, grid0))
    bar = tqdm(total=len(sweep_jobs) + n_adapter_jobs, desc="lr sweep", disable=not progress, dynamic_ncols=True)

    def sweep(method, lr, head_lr):
        res = train_and_evaluate(
            model, tokenizer, data0, method, settings, steps=settings["sweep_steps"],
            lr=lr if method.config is not None else 0.0, head_lr=head_lr if head_lr is not None else lr,
            seed=seeds[0], test=False, progress=progress,
        )
        rec = {"family": method.family, "method": method.name, "lr": lr, "head_lr": head_lr if head_lr is not None else lr,
               "val_acc": res["val_acc"], "val_n": res["val_n"], "steps": settings["sweep_steps"], "wall_s": res["wall_s"]}
        sweep_records.append(rec)
        bar.update(1)
        log(f"  lr sweep {method.name:<28} lr={lr:<8g} val_acc={res['val_acc']:.4f}")
        return res["val_acc"]

    def best(scores):
        # Highest validation accuracy; ties go to the smaller learning rate (listed order).
        return max(scores, key=lambda lr: (scores[lr], -lr))

    head_lr = best({lr: sweep(grid0[0], lr, None) for lr in settings["head_lrs"]})
    chosen = {"head": head_lr}
    for family, rep in _representatives(settings, grid0).items():
        chosen[family] = best({lr: sweep(rep, lr, head_lr) for lr in settings["family_lrs"][family]})
    bar.close()
    log("chosen learning rates (max of OneCycle; on the validation split): " + ", ".join(f"{k}={v:g}" for k, v in chosen.items()))
    with open(out / "lr_sweep.jsonl", "w", encoding="utf-8") as fh:
        for rec in sweep_records:
            fh.write(json.dumps(rec) + "\n")

    # ---- the grid
    records = []
    last_write = time.perf_counter()
    jobs = [(seed, m) for seed in seeds for m in method_grid(settings, seed)]
    bar = tqdm(total=len(jobs), desc="runs", disable=not progress, dynamic_ncols=True)
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
        for seed in seeds:
            data_s = data0 if seed == seeds[0] else data_for(seed)
            for m in method_grid(settings, seed):
                lr = chosen.get(m.family, 0.0) if m.config is not None else 0.0
                res = train_and_evaluate(
                    model, tokenizer, data_s, m, settings, steps=settings["steps"], lr=lr, head_lr=head_lr,
                    seed=seed, progress=progress,
                )
                rec = {
                    "run": m.name, "method": m.line, "family": m.family, "seed": seed,
                    "config": m.config.to_dict() if m.config is not None else None,
                    "lr": lr, "head_lr": head_lr, "lr_selection": "validation sweep (lr_sweep.jsonl)",
                    **res, **common,
                }
                records.append(rec)
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                bar.update(1)
                # Rewrite the table and plots as runs finish (at most once a minute: plotting
                # costs a second or two), so that an interrupted run still leaves them.
                if time.perf_counter() - last_write > 60:
                    write_outputs(records, out, settings, chosen, time.perf_counter() - t_start, data_desc=_data_desc(data0))
                    last_write = time.perf_counter()
                log(f"  {m.name:<28} params={res['params_adapter']:>7,} val={res['val_acc']:.4f} "
                    f"test={res['test_acc']:.4f} (n={res['test_n']}) {res['wall_s']:.0f}s")
    bar.close()
    total = time.perf_counter() - t_start
    table = write_outputs(records, out, settings, chosen, total, data_desc=_data_desc(data0))
    log(table)
    log(f"wrote {out}/results.jsonl, results.md, accuracy_vs_params.png, accuracy_vs_fixed_ratio.png, "
        f"lr_sweep.jsonl in {total / 60:.1f} min")
    return records


def _data_desc(d):
    # A file inside an installed package is named by its package path, not this machine's.
    source = re.sub(r"^.*[/\\](?:site|dist)-packages[/\\]", "package data: ", str(d["source"]))
    return (f"{d['name']} ({source}): {len(d['train'][1])} train, {len(d['val'][1])} val (from the training "
            f"pool), {len(d['test'][1])} test examples, {d['num_classes']} classes")


def _summarise(records):
    """Mean and spread over seeds, per run name, in first-seen order."""
    by = {}
    for r in records:
        by.setdefault(r["run"], []).append(r)
    rows = []
    for name, rs in by.items():
        test = [r["test_acc"] for r in rs]
        val = [r["val_acc"] for r in rs]
        rows.append({
            "run": name, "method": rs[0]["method"], "family": rs[0]["family"], "config": rs[0]["config"],
            "params_adapter": rs[0]["params_adapter"], "params_trainable": rs[0]["params_trainable"],
            "params_fixed": rs[0]["params_fixed"], "lr": rs[0]["lr"], "seeds": len(rs),
            "val": sum(val) / len(val), "test": sum(test) / len(test),
            "test_min": min(test), "test_max": max(test), "test_n": rs[0]["test_n"],
            "wall_s": sum(r["wall_s"] for r in rs) / len(rs),
        })
    return rows


def write_outputs(records, out_dir, settings, chosen_lrs, total_s, data_desc=""):
    """Write ``results.md`` and the two plots from the records; return the markdown table."""
    from . import plots

    out = Path(out_dir)
    rows = _summarise(records)
    seeds = max(r["seeds"] for r in rows)
    lines = [
        "| run | adapter params | trainable (with head) | fixed random | max LR | val acc | test acc | test n | time/run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        acc = f"{100 * r['test']:.1f}"
        if r["seeds"] > 1:
            acc += f" ({100 * r['test_min']:.1f}–{100 * r['test_max']:.1f})"
        lines.append(
            f"| {r['run']} | {r['params_adapter']:,} | {r['params_trainable']:,} | {r['params_fixed']:,} | {r['lr']:g} | "
            f"{100 * r['val']:.1f} | {acc} | {r['test_n']} | {r['wall_s']:.0f} |"
        )
    table = "\n".join(lines)
    rec0 = records[0]
    header = [
        f"# HyDRA demo results ({settings.get('name') or 'custom'} preset)",
        "",
        f"- backbone: {settings['model']}; adapted: {', '.join(settings['target_modules'])} projections of every layer, "
        f"plus a trainable linear head on mean-pooled features for every method",
        f"- data: {data_desc}",
        f"- training: AdamW + OneCycle, {settings['steps']} steps of batch {settings['batch_size']}"
        + (f", max {settings['max_length']} tokens" if "max_length" in settings else "")
        + f", weight decay {settings['weight_decay']}, seeds {settings['seeds']} (accuracy: mean over {seeds} seed(s)"
        + (", range in brackets)" if seeds > 1 else ")"),
        f"- learning rates (OneCycle max) chosen on the validation split by short runs of {settings['sweep_steps']} steps, "
        f"one representative config per family (see lr_sweep.jsonl): "
        + ", ".join(f"{k} = {v:g}" for k, v in chosen_lrs.items()),
        f"- HyDRA: k = {settings['k']}, rank 1, one pool per adapted matrix; 'adapter params' counts all adapted "
        "matrices together; fixed random pool entries are regenerated from the seed and not trained",
        f"- torch {rec0['torch']}, transformers {rec0['transformers']}, python {rec0['python']}; "
        f"total wall time {total_s / 60:.1f} min",
        "",
    ]
    # The blank line ends the list: a table right after a list item would continue the item.
    (out / "results.md").write_text("\n".join(header) + "\n" + table + "\n", encoding="utf-8")
    plots.accuracy_vs_params(rows, out / "accuracy_vs_params.png", title=f"{settings['model']} on {settings['dataset']}")
    plots.accuracy_vs_fixed_ratio(rows, out / "accuracy_vs_fixed_ratio.png", settings)
    return table

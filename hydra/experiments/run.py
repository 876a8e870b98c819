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
  ``ratio_structure`` at ``ratio_pool``;
* ``peft_*``: peft's own LoRA, VeRA, VB-LoRA and C3A (``peft_methods``), injected by peft itself
  into the same modules (:mod:`hydra.experiments.peft_baselines`; needs the ``demo`` extra).

Every adapter method adapts the attention query and value projections of all layers
(``target_modules``) and trains a fresh head on mean-pooled features as well.

Learning rates are chosen on a validation split carved from the training pool (never the
test split): first the head's learning rate among ``head_lrs`` (head-only runs), then, for each
adapter family (``lora``, ``ldr``, ``hydra``, ``hydra_vandermonde``, as the paper groups them in
its Appendix B, and one per peft method), the adapter learning rate among ``family_lrs[family]`` on one representative
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

__all__ = ["PRESETS", "Method", "PrefixCache", "combine_runs", "method_grid", "paired_comparisons", "run_experiments", "train_and_evaluate",
           "write_outputs"]

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

# peft's adapters at 3,072 trainable numbers on four 384x384 matrices (LoRA r = 1's count):
# VeRA 4 (r + 384) with r = 384; VB-LoRA 12 x 64 bank + 4 * 4 * (768 / 64) * 12 logits; C3A 4 * 384^2 / 192.
_PEFT_QUICK = [
    {"method": "lora", "r": 1},
    {"method": "vera", "r": 384},
    {"method": "vblora", "r": 4, "num_vectors": 12, "vector_length": 64},
    {"method": "c3a", "block_size": 192},
]
# Their learning-rate candidates. peft's LoRA gets ours; VeRA trains scaling vectors of fixed
# random matrices and C3A divides its product by n (= 384), so both need much larger rates (as in
# their papers; larger candidates were added while a sweep chose the top of the list);
# VB-LoRA's logits and bank sit in between.
_PEFT_LRS = {"peft_lora": [2e-3, 6e-3, 2e-2], "peft_vera": [1e-2, 3e-2, 1e-1, 3e-1], "peft_vblora": [3e-3, 1e-2, 3e-2],
             "peft_c3a": [3e-2, 1e-1, 3e-1, 1.0, 3.0]}

#: Named settings. ``quick``: the ``make demo`` run (three seeds, eight methods; 10 min 51 s
#: measured on 2 idle CPU cores with the committed learning-rate sweep reused, as ``make demo``
#: does; about 17 minutes with the sweep, estimated); ``full``: the paper-shaped sweeps on the same
#: task, steps and learning rates (pool sizes, fixed ratios, LoRA r = 1 ... 8, C3A at three block
#: sizes; three seeds, 66 runs: 32 minutes measured on 2 CPU cores with light other work); ``tiny``: a random 2-layer BERT and a
#: synthetic data set (seconds, for tests); ``paper``: the paper's setting (ViT-B/16 on CIFAR-100,
#: 5,000 iterations), for a GPU.
PRESETS = {
    "quick": {
        "model": "minilm",
        # Three classes (negative / neutral / positive tweets): a frozen-embedding probe is far
        # from the ceiling, so adapting the attention leaves a gap the methods can be told by.
        "dataset": "tweet_sentiment",
        "n_train": 3000,
        "n_val": 300,
        "n_test": 1500,
        # One split for every seed: seeds change the initialisation and the batch order only, so
        # the per-seed differences between methods are paired (same examples, same batches).
        "fixed_split": True,
        "max_length": 40,
        "batch_size": 16,
        "eval_batch_size": 100,
        # Only the top two of MiniLM's six layers are adapted; the outputs of the four frozen
        # layers below are computed once per text and reused by every run (3x cheaper steps).
        "frozen_layers": 4,
        "steps": 240,
        "sweep_steps": 80,
        "seeds": [0, 1, 2],
        "k": 4,
        "target_modules": r".*\.(4|5)\.attention\.self\.(query|value)",
        # Matched budgets: LoRA r = 1 on a 384x384 matrix trains 768 numbers, HyDRA P = 768 too.
        "lora_ranks": [1],
        "ldr_structures": [],
        "hydra_structures": ["toeplitz", "vandermonde_like"],
        "pool_sizes": [768],
        "ratio_structure": "toeplitz",
        "ratio_pool": 768,
        "fixed_ratios": [],
        "head_lrs": [1e-2, 3e-2, 1e-1],
        # peft's own adapters on the same modules, each at the same 3,072 trainable numbers
        # (see peft_baselines: VeRA r + m per matrix, VB-LoRA bank + logits, C3A m n / b).
        "peft_methods": _PEFT_QUICK,
        # Each family's list grew by a larger candidate while its sweep chose the top of the list
        # (LoRA 2e-2, HyDRA 1e-2 and 3e-2, Vandermonde-like 3e-2, VeRA 3e-1, C3A 1 and 3).
        "family_lrs": {"lora": [2e-3, 6e-3, 2e-2], "hydra": [1e-3, 3e-3, 1e-2, 3e-2],
                       "hydra_vandermonde": [1e-3, 3e-3, 1e-2, 3e-2],
                       **_PEFT_LRS},
        "weight_decay": 0.0,
        "threads": 2,
    },
    "full": {
        # The paper's Figures 3 and 4 in shape, on the quick preset's task, steps and learning
        # rates: LoRA r = 1 ... 8, HyDRA Toeplitz and Vandermonde-like over the pool sizes
        # P = 0.5n ... 8n per matrix, peft's C3A (block-circulant) at three block sizes, and the
        # fixed-ratio sweep of HyDRA Toeplitz at P = 768; three seeds. Run it with the quick
        # preset's sweep (--lr-sweep-from benchmarks/results/demo_quick/lr_sweep.jsonl): every
        # family then takes the rate the quick preset chose. Not part of `make demo`.
        "model": "minilm",
        "dataset": "tweet_sentiment",
        "n_train": 3000,
        "n_val": 300,
        "n_test": 1500,
        "fixed_split": True,
        "max_length": 40,
        "batch_size": 16,
        "eval_batch_size": 100,
        "frozen_layers": 4,
        "steps": 240,
        "sweep_steps": 80,
        "seeds": [0, 1, 2],
        "k": 4,
        "target_modules": r".*\.(4|5)\.attention\.self\.(query|value)",
        "lora_ranks": [1, 2, 4, 8],
        "ldr_structures": [],
        "hydra_structures": ["toeplitz", "vandermonde_like"],
        "pool_sizes": [192, 384, 768, 1536, 3072],
        "ratio_structure": "toeplitz",
        "ratio_pool": 768,
        "fixed_ratios": [0.0, 0.25, 0.5, 0.75, 0.9],
        "head_lrs": [1e-2, 3e-2, 1e-1],
        # C3A at b = 384 / 192 / 96: 1,536 / 3,072 / 6,144 numbers, the counts of HyDRA P = 384 / 768 / 1536.
        "peft_methods": [{"method": "c3a", "block_size": 384}, {"method": "c3a", "block_size": 192},
                         {"method": "c3a", "block_size": 96}],
        "family_lrs": {"lora": [2e-3, 6e-3, 2e-2], "hydra": [1e-3, 3e-3, 1e-2, 3e-2],
                       "hydra_vandermonde": [1e-3, 3e-3, 1e-2, 3e-2], "peft_c3a": _PEFT_LRS["peft_c3a"]},
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
        # 256 trainable numbers each on the tiny BERT's four 32x32 q/v matrices (LoRA r = 1's count).
        "peft_methods": [
            {"method": "lora", "r": 1}, {"method": "vera", "r": 32},
            {"method": "vblora", "r": 1, "num_vectors": 8, "vector_length": 16}, {"method": "c3a", "block_size": 16},
        ],
        "family_lrs": {"lora": [1e-2], "ldr": [1e-2, 3e-2], "hydra": [1e-2], "hydra_vandermonde": [1e-2],
                       "peft_lora": [1e-2], "peft_vera": [1e-2], "peft_vblora": [1e-2], "peft_c3a": [1e-1]},
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
            **_PEFT_LRS,
        },
        # At LoRA r = 1's 1,536 numbers per 768x768 matrix: VeRA r = 768, C3A b = 384 exactly;
        # VB-LoRA (256 vectors of 256, r = 4) is the peft default, not matched.
        "peft_methods": [
            {"method": "lora", "r": 1}, {"method": "vera", "r": 768},
            {"method": "vblora", "r": 4, "num_vectors": 256, "vector_length": 256}, {"method": "c3a", "block_size": 384},
        ],
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
        ``"head"``, ``"lora"``, ``"ldr"``, ``"hydra"``, ``"hydra_vandermonde"`` or ``"peft_<method>"``:
        runs of a family share their learning rate.
    line : str
        Plot line (method family in the figure), e.g. ``"hydra_toeplitz"``.
    config : HydraConfig, LoRAConfig, LDRConfig, PeftSpec or None
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
        Head only, LoRA, plain LDR, HyDRA per structure and pool size, peft's own adapters
        (``peft_methods``: :class:`~hydra.experiments.peft_baselines.PeftSpec`, run through peft),
        then the fixed-ratio runs with a non-zero ratio (ratio 0 is the main-grid run of the same
        configuration).

    Examples
    --------
    >>> from hydra.experiments.run import PRESETS, method_grid
    >>> [m.name for m in method_grid(PRESETS["quick"])]  # doctest: +NORMALIZE_WHITESPACE
    ['head', 'lora_r1', 'hydra_toeplitz_P768', 'hydra_vandermonde_like_P768', 'peft_lora_r1', 'peft_vera_r384',
     'peft_vblora_r4_12x64', 'peft_c3a_b192']
    >>> len(method_grid(PRESETS["full"]))
    22
    """
    import hydra

    from . import peft_baselines

    targets = settings["target_modules"]
    targets = targets if isinstance(targets, str) else list(targets)  # a regex string stays a string
    out = [Method("head", "head", "head", None)]
    for r in settings["lora_ranks"]:
        out.append(Method(f"lora_r{r}", "lora", "lora", hydra.LoRAConfig(rank=r, alpha=2.0 * r, target_modules=targets, seed=seed)))
    for s in settings["ldr_structures"]:
        out.append(Method(f"ldr_{s}", "ldr", "ldr", hydra.LDRConfig(structure=s, rank=1, target_modules=targets, seed=seed)))
    for s in settings["hydra_structures"]:
        for p in settings["pool_sizes"]:
            cfg = hydra.HydraConfig(structure=s, k=settings["k"], rank=1, pool_size=p, seed=seed, target_modules=targets)
            out.append(Method(f"hydra_{s}_P{p}", _family(s), f"hydra_{s}", cfg))
    for spec in settings.get("peft_methods", []):
        ps = peft_baselines.PeftSpec(spec["method"], targets, seed=seed, **{k: v for k, v in spec.items() if k != "method"})
        out.append(Method(ps.name, f"peft_{ps.method}", f"peft_{ps.method}", ps))
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


def _batches(split, tokenizer, settings, batch_size, shuffle=False, seed=0, prefix=None):
    """``(inputs, labels)`` batches for text (tokenized on the fly, or the cached outputs of the
    frozen lower layers when ``prefix`` is a :class:`PrefixCache`) or images (resized)."""
    import torch

    from . import data

    xs, ys = split
    if tokenizer is not None:
        if not shuffle:
            # Evaluation: length-sorted batches waste less compute on padding.
            order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
            xs, ys = [xs[i] for i in order], [ys[i] for i in order]
        if prefix is None:
            yield from data.iterate_batches(
                xs, ys, tokenizer, batch_size, settings["max_length"], shuffle=shuffle, seed=seed
            )
            return
        order = list(range(len(xs)))
        if shuffle:
            random.Random(seed).shuffle(order)  # the order data.iterate_batches draws
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield prefix.batch([xs[i] for i in idx]), torch.tensor([int(ys[i]) for i in idx], dtype=torch.long)
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


def _bert_mask(model, attention_mask, hidden):
    """The attention mask a BERT encoder layer takes, as the model itself would build it."""
    if hasattr(model, "_create_attention_masks"):  # transformers >= 5
        return model._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                             embedding_output=hidden, encoder_hidden_states=None, cache=None)[0]
    return model.get_extended_attention_mask(attention_mask, attention_mask.shape)  # pragma: no cover


def _bert_layers(model, layers, hidden, attention_mask):
    mask = _bert_mask(model, attention_mask, hidden)
    for layer in layers:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out  # a tuple before transformers 5
    return hidden


class PrefixCache:
    """The outputs of a BERT backbone's first ``n_layers`` (frozen, never adapted) layers, per text.

    Computed once per distinct text (in batches of 64, without padding waste kept: each text's
    states are stored unpadded) and padded per mini-batch, so every run and seed reuses them.
    The adapted top layers then run on these states exactly as inside the full model (the
    attention mask hides the padding); :func:`run_experiments` checks this on the first batch.
    """

    def __init__(self, model, tokenizer, n_layers, max_length):
        encoder = getattr(model, "encoder", None)
        if encoder is None or not hasattr(encoder, "layer") or not hasattr(model, "embeddings"):
            raise ValueError(f"`frozen_layers` needs a BERT-style backbone (embeddings + encoder.layer); got {type(model).__name__}")
        if not 0 < n_layers < len(encoder.layer):
            raise ValueError(f"`frozen_layers` must be in [1, {len(encoder.layer) - 1}]; got {n_layers}")
        self.model, self.tokenizer, self.n_layers, self.max_length = model, tokenizer, n_layers, max_length
        self._store = {}

    def _fill(self, texts):
        import torch

        from . import data

        missing = [t for t in dict.fromkeys(texts) if t not in self._store]
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            enc = data.tokenize(self.tokenizer, chunk, self.max_length)
            with torch.inference_mode():
                emb = self.model.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
                hidden = _bert_layers(self.model, self.model.encoder.layer[: self.n_layers], emb, enc["attention_mask"])
            for i, text in enumerate(chunk):
                self._store[text] = hidden[i, : int(enc["attention_mask"][i].sum())].clone()

    def batch(self, texts):
        """``{"hidden_states": (B, L, d), "attention_mask": (B, L)}`` for a list of texts."""
        import torch

        self._fill(texts)
        states = [self._store[t] for t in texts]
        length = max(h.shape[0] for h in states)
        hidden = torch.zeros(len(states), length, states[0].shape[-1], dtype=states[0].dtype)
        mask = torch.zeros(len(states), length, dtype=torch.long)
        for i, h in enumerate(states):
            hidden[i, : h.shape[0]] = h
            mask[i, : h.shape[0]] = 1
        return {"hidden_states": hidden, "attention_mask": mask}


def _features(model, inputs, frozen_layers=0):
    from .data import mean_pool

    if "hidden_states" in inputs:  # cached outputs of the frozen lower layers: run the rest
        hidden = _bert_layers(model, model.encoder.layer[frozen_layers:], inputs["hidden_states"], inputs["attention_mask"])
        return mean_pool(hidden, inputs["attention_mask"])
    hidden = model(**inputs).last_hidden_state
    if "attention_mask" in inputs:
        return mean_pool(hidden, inputs["attention_mask"])
    return hidden.mean(1)


# --------------------------------------------------------------------------- training


def _accuracy(model, head, split, tokenizer, settings, prefix=None):
    """Accuracy and count on a split, and the per-example correctness in the split's order."""
    import torch

    correct = total = 0
    hits = {}
    model.eval()
    xs = split[0]
    with torch.inference_mode():
        order = sorted(range(len(xs)), key=lambda i: len(xs[i]))  # the order _batches evaluates in
        done = 0
        for inputs, y in _batches(split, tokenizer, settings, settings["eval_batch_size"], prefix=prefix):
            inputs, y = _to(inputs, y, _device(settings))
            pred = head(_features(model, inputs, settings.get("frozen_layers", 0))).argmax(-1)
            ok = (pred == y).cpu().tolist()
            for j, v in enumerate(ok):
                hits[order[done + j] if tokenizer is not None else done + j] = int(v)
            done += len(ok)
            correct += int((pred == y).sum())
            total += len(y)
    return correct / total, total, "".join(str(hits[i]) for i in range(total))


def train_and_evaluate(base_model, tokenizer, dataset, method, settings, *, steps, lr, head_lr, seed, test=True, progress=True,
                       prefix=None):
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
    prefix : PrefixCache, optional
        Cached outputs of the frozen lower layers (``settings['frozen_layers']``).

    Returns
    -------
    dict
        ``val_acc``, ``val_n``, ``test_acc``, ``test_n`` (None when ``test`` is False),
        ``test_hits`` (per test example, 1 if correct, as a string of 0/1 in the split's order:
        for paired comparisons), ``params_trainable`` (adapter + head), ``params_adapter``,
        ``params_fixed``, ``final_loss`` (mean training loss of the last 10 % of steps), ``wall_s``,
        ``cpu_s`` (process CPU time).
    """
    import torch
    from tqdm.auto import tqdm

    import hydra

    from . import peft_baselines

    t0, c0 = time.perf_counter(), time.process_time()
    device = _device(settings)
    model = copy.deepcopy(base_model).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    wrapper = None  # peft's PeftModel: holds VeRA's and VB-LoRA's shared tensors, kept alive with the run
    if isinstance(method.config, peft_baselines.PeftSpec):
        with warnings.catch_warnings():
            # peft's notices about the bare encoder (no task type, transformers deprecations)
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            info = peft_baselines.inject(model, method.config)
        wrapper, adapter, fixed = info["wrapper"], info["trainable"], info["fixed"]
        model.eval()  # peft's new layers start in training mode; the backbone stays in eval mode (below)
    elif method.config is not None:
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
    adapter_params = hydra.trainable_parameters(model if wrapper is None else wrapper)
    if sum(p.numel() for p in adapter_params) != adapter:
        raise ValueError(f"{method.name}: the optimiser would train {sum(p.numel() for p in adapter_params)} numbers, "
                         f"the adapter reports {adapter}")
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
            yield from _batches(dataset["train"], tokenizer, settings, settings["batch_size"], shuffle=True,
                                seed=1000 * seed + epoch, prefix=prefix)
            epoch += 1

    # The backbone stays in eval mode (no dropout): the runs are short, and every method then
    # sees the same deterministic features.
    batches = stream()
    losses = []
    bar = tqdm(range(steps), desc=method.name, leave=False, disable=not progress, dynamic_ncols=True)
    for _ in bar:
        inputs, y = _to(*next(batches), device)
        loss = torch.nn.functional.cross_entropy(head(_features(model, inputs, settings.get("frozen_layers", 0))), y)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if not math.isfinite(loss.item()):
            break  # diverged: the accuracies below record it
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    val_acc, val_n, _ = _accuracy(model, head, dataset["val"], tokenizer, settings, prefix)
    test_acc, test_n, test_hits = (_accuracy(model, head, dataset["test"], tokenizer, settings, prefix) if test
                                   else (None, None, None))
    head_n = sum(p.numel() for p in head.parameters())
    tail = losses[-max(1, len(losses) // 10):]
    return {
        "val_acc": val_acc, "val_n": val_n, "test_acc": test_acc, "test_n": test_n, "test_hits": test_hits,
        "final_loss": sum(tail) / len(tail),
        "params_trainable": adapter + head_n, "params_adapter": adapter, "params_fixed": fixed,
        # CPU seconds of this process (all its threads): with one thread, the run's time on an idle core.
        "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
    }


def _representatives(settings, grid):
    """One configuration per family for the learning-rate sweep.

    LoRA: the middle rank; plain LDR: circulant (the first); HyDRA: the first structure of the
    family at its middle pool size; each peft method: its middle size.
    """
    reps = {}
    peft_families = list(dict.fromkeys(m.family for m in grid if m.family.startswith("peft_")))
    for family in ("lora", "ldr", "hydra", "hydra_vandermonde", *peft_families):
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
    try:
        import peft

        pv = peft.__version__
    except ImportError:
        pv = None
    return {"torch": torch.__version__, "transformers": tv, "peft": pv, "python": platform.python_version()}


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
        split = _split_seed(settings, seed)
        if dataset is None:
            return _load_data(settings, split)
        return dataset(split) if callable(dataset) else dataset

    seeds = list(settings["seeds"])
    data0 = data_for(seeds[0])  # first: a missing data set fails before a large model loads
    model, tokenizer = backbone if backbone is not None else _load_backbone(settings)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    prefix = None
    if settings.get("frozen_layers"):
        prefix = PrefixCache(model, tokenizer, settings["frozen_layers"], settings["max_length"])
        _check_prefix(model, tokenizer, prefix, data0, settings)

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
            seed=seeds[0], test=False, progress=progress, prefix=prefix,
        )
        rec = {"family": method.family, "method": method.name, "lr": lr, "head_lr": head_lr if head_lr is not None else lr,
               "val_acc": res["val_acc"], "val_n": res["val_n"], "steps": settings["sweep_steps"], "wall_s": res["wall_s"],
               "cpu_s": res["cpu_s"]}
        sweep_records.append(rec)
        bar.update(1)
        log(f"  lr sweep {method.name:<28} lr={lr:<8g} val_acc={res['val_acc']:.4f}")
        return res["val_acc"]

    def best(scores):
        # Highest validation accuracy; ties go to the smaller learning rate (listed order).
        return max(scores, key=lambda lr: (scores[lr], -lr))

    if settings.get("lr_sweep_from"):
        # Reuse an earlier sweep of the same preset (e.g. to run further seeds in another
        # process): the same records, the same rule.
        with open(settings["lr_sweep_from"], encoding="utf-8") as fh:
            sweep_records = [json.loads(line) for line in fh if line.strip()]
        scores = {}
        for rec in sweep_records:
            scores.setdefault(rec["family"], {})[rec["lr"]] = rec["val_acc"]
        head_lr = best(scores["head"])
        # Candidates the earlier sweep lacks (a family added since, or a rate added to a
        # family's list) are swept now for the families this run needs, with the recorded head
        # rate; the choice is then made over the recorded and the new scores, by the same rule.
        needed = {m.family for m in grid0 if not settings.get("only") or m.name in settings["only"]}
        for family, rep in _representatives(settings, grid0).items():
            if family in needed:
                for lr in settings["family_lrs"][family]:
                    if lr not in scores.get(family, {}):
                        scores.setdefault(family, {})[lr] = sweep(rep, lr, head_lr)
        chosen = {"head": head_lr, **{f: best(sc) for f, sc in scores.items() if f != "head"}}
    else:
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
    only = settings.get("only")  # a subset of the grid's run names (to split a preset over processes)

    def grid(seed):
        return [m for m in method_grid(settings, seed) if not only or m.name in only]

    jobs = [(seed, m) for seed in seeds for m in grid(seed)]
    bar = tqdm(total=len(jobs), desc="runs", disable=not progress, dynamic_ncols=True)
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
        for seed in seeds:
            data_s = data0 if seed == seeds[0] else data_for(seed)
            for m in grid(seed):
                lr = chosen.get(m.family, 0.0) if m.config is not None else 0.0
                res = train_and_evaluate(
                    model, tokenizer, data_s, m, settings, steps=settings["steps"], lr=lr, head_lr=head_lr,
                    seed=seed, progress=progress, prefix=prefix,
                )
                rec = {
                    "run": m.name, "method": m.line, "family": m.family, "seed": seed,
                    "split_seed": _split_seed(settings, seed),
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


def _split_seed(settings, seed):
    """The seed of the train/val/test split a run of seed ``seed`` uses.

    With ``fixed_split`` every seed shares one split, ``settings["split_seed"]`` (default 0),
    whatever seeds a process runs: it used to be the first seed of the process, so a process
    started with ``--seeds 1 2`` trained and tested on another split than one started with
    ``--seeds 0 1 2``, and merged results paired runs made on different test sets.
    """
    return settings.get("split_seed", 0) if settings.get("fixed_split") else seed


def combine_runs(settings, out_dir, run_dirs, log=print):
    """Merge the ``results.jsonl`` of several runs of one preset (e.g. one process per seed).

    The learning rates must agree (the later runs reused the first run's sweep with
    ``lr_sweep_from``); ``lr_sweep.jsonl`` is taken from the first directory that has one. Writes
    the merged ``results.jsonl``, ``lr_sweep.jsonl``, ``results.md`` and plots to ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records, sweep_lines, seen = [], None, set()
    for d in map(Path, run_dirs):
        for line in (d / "results.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if (rec["run"], rec["seed"]) not in seen:
                seen.add((rec["run"], rec["seed"]))
                records.append(rec)
        if sweep_lines is None and (d / "lr_sweep.jsonl").is_file():
            sweep_lines = (d / "lr_sweep.jsonl").read_text(encoding="utf-8")
    chosen = {}
    for rec in records:
        key = "head" if rec["family"] == "head" else rec["family"]
        value = rec["head_lr"] if key == "head" else rec["lr"]
        if chosen.setdefault(key, value) != value:
            raise ValueError(f"`run_dirs` disagree on the {key} learning rate ({chosen[key]} and {value})")
    # Runs are paired within a seed (on every seed with a fixed split): they must share its split.
    # Records made before the split seed was recorded have none (None).
    groups = {}
    for rec in records:
        key = None if settings.get("fixed_split") else rec["seed"]
        groups.setdefault(key, {}).setdefault(rec.get("split_seed"), []).append(f"{rec['run']} seed {rec['seed']}")
    for splits in groups.values():
        if len(splits) > 1:
            listing = "; ".join(f"split {k}: {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}" for k, v in splits.items())
            raise ValueError(f"`run_dirs` hold runs made on different data splits ({listing}); their comparisons "
                             "would pair different test sets: re-run them on one split")
    split = records[0].get("split_seed") if settings.get("fixed_split") else None
    names = [m.name for m in method_grid(settings)]  # the grid's run names do not depend on the seed
    foreign = sorted({r["run"] for r in records} - set(names))
    if foreign:
        # e.g. a quick-preset directory merged into the full preset: keep only the shared runs' lines
        raise ValueError(f"`run_dirs` hold runs that the {settings.get('name') or 'given'} preset's grid lacks: "
                         f"{', '.join(foreign)}; merge only runs of one grid")
    records.sort(key=lambda r: (r["seed"], names.index(r["run"])))
    settings = dict(settings, seeds=sorted({r["seed"] for r in records}))
    with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    if sweep_lines is not None:
        (out / "lr_sweep.jsonl").write_text(sweep_lines, encoding="utf-8")
    table = write_outputs(records, out, settings, chosen, None,
                          data_desc=_data_desc(_load_data(settings, settings["seeds"][0] if split is None else split)))
    log(table)
    return records


def _check_prefix(model, tokenizer, prefix, data, settings):
    """The cached lower layers plus the top layers give the full model's features (first batch)."""
    import torch

    from . import data as data_module

    texts = data["train"][0][: settings["batch_size"]]
    inputs = data_module.tokenize(tokenizer, texts, settings["max_length"])
    with torch.inference_mode():
        full = _features(model, inputs)
        cached = _features(model, prefix.batch(texts), settings["frozen_layers"])
    err = float((full - cached).abs().max() / full.abs().max())
    if not err < 1e-4:
        raise ValueError(f"`frozen_layers`: the cached frozen layers do not reproduce the model's features (relative error {err:.1e})")


def _data_desc(d):
    # A file inside an installed package is named by its package path, not this machine's.
    source = re.sub(r"^.*[/\\](?:site|dist)-packages[/\\]", "package data: ", str(d["source"]))
    return (f"{d['name']} ({source}): {len(d['train'][1])} train, {len(d['val'][1])} val (from the training "
            f"pool), {len(d['test'][1])} test examples, {d['num_classes']} classes")


def _t_interval(values):
    """Mean and the half-width of its 95 % Student-t interval (None for a single value)."""
    import numpy as np
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()), None
    return float(v.mean()), float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))


def _summarise(records):
    """Mean, 95 % interval over seeds and range, per run name, in first-seen order."""
    by = {}
    for r in records:
        by.setdefault(r["run"], []).append(r)
    rows = []
    for name, rs in by.items():
        test = [r["test_acc"] for r in rs]
        val = [r["val_acc"] for r in rs]
        mean, ci = _t_interval(test)
        rows.append({
            "run": name, "method": rs[0]["method"], "family": rs[0]["family"], "config": rs[0]["config"],
            "params_adapter": rs[0]["params_adapter"], "params_trainable": rs[0]["params_trainable"],
            "params_fixed": rs[0]["params_fixed"], "lr": rs[0]["lr"], "seeds": len(rs),
            "val": sum(val) / len(val), "test": mean, "test_ci": ci,
            "test_min": min(test), "test_max": max(test), "test_n": rs[0]["test_n"],
            "final_loss": sum(r.get("final_loss", float("nan")) for r in rs) / len(rs),
            "wall_s": sum(r["wall_s"] for r in rs) / len(rs),
            # older records (before cpu_s was recorded) have none
            "cpu_s": (sum(r["cpu_s"] for r in rs) / len(rs)) if all("cpu_s" in r for r in rs) else None,
        })
    return rows


def paired_comparisons(records, n_boot=2000):
    """Paired differences (same seeds, same batches, same test examples) between runs.

    Every adapter run against head only, every other adapter run (HyDRA, plain LDR, peft's) against
    the LoRA run with the nearest adapter parameter count, and every HyDRA run against peft's C3A
    (block-circulant) run with the nearest count. For each pair: the mean over seeds of the per-seed
    accuracy difference with its 95 % t-interval (seed-to-seed variation), the seeds won, and a
    95 % paired bootstrap interval over the test examples (resampled jointly for all seeds:
    test-set sampling variation).

    Returns
    -------
    list of dict
        ``a``, ``b`` (run names), ``params_a``, ``params_b``, ``seeds``, ``diff``, ``diff_ci``,
        ``wins``, ``ties`` (seeds with a above b, equal), ``boot_lo``, ``boot_hi`` (accuracy fractions).
    """
    import numpy as np

    by = {}
    for r in records:
        by.setdefault(r["run"], {})[r["seed"]] = r
    rows = _summarise(records)
    lora = [r for r in rows if r["method"] == "lora"]
    c3a = [r for r in rows if r["method"] == "peft_c3a"]  # block-circulant: HyDRA's nearest relative

    def nearest(r, refs):
        return min(refs, key=lambda q: (abs(np.log(q["params_adapter"] / max(r["params_adapter"], 1))), q["params_adapter"]))

    pairs = [(r["run"], "head") for r in rows if r["family"] != "head" and "head" in by]
    for r in rows:
        if r["family"] not in ("head", "lora") and lora:
            pairs.append((r["run"], nearest(r, lora)["run"]))
    for r in rows:
        if r["family"].startswith("hydra") and c3a:
            pairs.append((r["run"], nearest(r, c3a)["run"]))
    out = []
    rng = np.random.default_rng(0)
    for a, b in pairs:
        seeds = sorted(set(by[a]) & set(by[b]))
        if not seeds:
            continue
        diffs = [by[a][s]["test_acc"] - by[b][s]["test_acc"] for s in seeds]
        mean, ci = _t_interval(diffs)
        rec = {"a": a, "b": b, "params_a": by[a][seeds[0]]["params_adapter"], "params_b": by[b][seeds[0]]["params_adapter"],
               "seeds": len(seeds), "diff": mean, "diff_ci": ci, "wins": sum(d > 0 for d in diffs),
               "ties": sum(d == 0 for d in diffs),
               "boot_lo": None, "boot_hi": None}
        hits = [by[x][s].get("test_hits") for x in (a, b) for s in seeds]
        if all(hits):
            ha = np.array([[int(c) for c in by[a][s]["test_hits"]] for s in seeds], dtype=float)
            hb = np.array([[int(c) for c in by[b][s]["test_hits"]] for s in seeds], dtype=float)
            d = (ha - hb).mean(0)  # per test example, averaged over the seeds
            idx = rng.integers(0, d.size, size=(n_boot, d.size))
            boot = d[idx].mean(1)
            rec["boot_lo"], rec["boot_hi"] = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
        out.append(rec)
    return out


def _pm(value, ci, scale=100):
    return f"{scale * value:.1f}" + (f" ± {scale * ci:.1f}" if ci is not None else "")


def write_outputs(records, out_dir, settings, chosen_lrs, total_s, data_desc=""):
    """Write ``results.md`` and the two plots from the records; return the markdown table."""
    from . import plots

    out = Path(out_dir)
    rows = _summarise(records)
    seeds = max(r["seeds"] for r in rows)
    lines = [
        "| run | adapter params | trainable (with head) | fixed random | max LR | val acc | test acc (mean ± 95 % CI) "
        "| range over seeds | final train loss | test n | time/run (s) | CPU/run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        spread = f"{100 * r['test_min']:.1f}–{100 * r['test_max']:.1f}" if r["seeds"] > 1 else ""
        lines.append(
            f"| {r['run']} | {r['params_adapter']:,} | {r['params_trainable']:,} | {r['params_fixed']:,} | {r['lr']:g} | "
            f"{100 * r['val']:.1f} | {_pm(r['test'], r['test_ci'])} | {spread} | {r['final_loss']:.3f} | {r['test_n']} | "
            f"{r['wall_s']:.0f} | " + (f"{r['cpu_s']:.0f}" if r["cpu_s"] is not None else "") + " |"
        )
    table = "\n".join(lines)
    pairs = paired_comparisons(records)
    if pairs:
        lines = [
            "",
            "Paired differences (run a minus run b, accuracy points; same seeds, batches and test examples):",
            "",
            "| a | b | params a / b | seeds | mean difference ± 95 % CI (over seeds) | seeds a > b (ties) "
            "| 95 % bootstrap over test examples |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for c in pairs:
            boot = f"[{100 * c['boot_lo']:+.1f}, {100 * c['boot_hi']:+.1f}]" if c["boot_lo"] is not None else ""
            lines.append(f"| {c['a']} | {c['b']} | {c['params_a']:,} / {c['params_b']:,} | {c['seeds']} | "
                         f"{100 * c['diff']:+.1f}" + (f" ± {100 * c['diff_ci']:.1f}" if c["diff_ci"] is not None else "")
                         + f" | {c['wins']}/{c['seeds']}" + (f" ({c['ties']})" if c["ties"] else "") + f" | {boot} |")
        table += "\n" + "\n".join(lines)
    rec0 = records[0]
    header = [
        f"# HyDRA demo results ({settings.get('name') or 'custom'} preset)",
        "",
        f"- backbone: {settings['model']}; a trainable linear head on mean-pooled features for every method",
        f"- data: {data_desc}",
        f"- training: AdamW + OneCycle, {settings['steps']} steps of batch {settings['batch_size']}"
        + (f", max {settings['max_length']} tokens" if "max_length" in settings else "")
        + f", weight decay {settings['weight_decay']}, seeds {settings['seeds']} (accuracy: mean over {seeds} seed(s)"
        + (" ± the half-width of the 95 % Student-t interval over seeds)" if seeds > 1 else ")")
        + ("; every seed trains on the same split (seeds vary the initialisation and the batch order)"
           if settings.get("fixed_split") else ""),
        f"- learning rates (OneCycle max) chosen on the validation split by short runs of {settings['sweep_steps']} steps, "
        f"one representative config per family (see lr_sweep.jsonl): "
        + ", ".join(f"{k} = {v:g}" for k, v in chosen_lrs.items()),
        f"- HyDRA: k = {settings['k']}, rank 1, one pool per adapted matrix; 'adapter params' counts all adapted "
        "matrices together; fixed random pool entries are regenerated from the seed and not trained",
        *([f"- peft's own adapters (peft {rec0.get('peft')}, injected with get_peft_model into the same modules): "
           + "; ".join(f"{r['run']} {dict((k, v) for k, v in r['config'].items() if k not in ('type', 'target_modules', 'seed'))}"
                       for r in rows if (r.get("config") or {}).get("type") == "peft")]
          if any((r.get("config") or {}).get("type") == "peft" for r in rows) else []),
        f"- adapted modules: {settings['target_modules']}"
        + (f"; the {settings['frozen_layers']} lower (frozen) layers' outputs are computed once per text and reused"
           if settings.get("frozen_layers") else ""),
        f"- torch {rec0['torch']}, transformers {rec0['transformers']}, python {rec0['python']}; "
        + (f"total wall time {total_s / 60:.1f} min" if total_s is not None
           else "merged from several processes (--combine): the time of each run is in the table"),
        "",
    ]
    # The blank line ends the list: a table right after a list item would continue the item.
    (out / "results.md").write_text("\n".join(header) + "\n" + table + "\n", encoding="utf-8")
    plots.accuracy_vs_params(rows, out / "accuracy_vs_params.png", title=f"{settings['model']} on {settings['dataset']}")
    plots.accuracy_vs_fixed_ratio(rows, out / "accuracy_vs_fixed_ratio.png", settings)
    return table

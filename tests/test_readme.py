"""The README's code blocks run as written (the first on NumPy alone, the second on a tiny BERT).

The second block adapts a ``model`` it does not define (the reader's transformer); the test
supplies a 2-layer BERT (hidden size 128, so that every pool entry is used) built here, whose attention layers are named ``query`` and ``value``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_two_python_blocks():
    assert len(_python_blocks()) == 2


def test_numpy_example_runs():
    exec(compile(_python_blocks()[0], "README.md[block 1]", "exec"), {})


def test_hydra_example_runs(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=16)
    namespace = {"model": transformers.BertModel(config)}
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_blocks()[1], "README.md[block 2]", "exec"), namespace)
    assert (tmp_path / "adapter.safetensors").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "encoder.layer.1.attention.self.value" in printed and "trainable" in printed

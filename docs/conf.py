"""Sphinx configuration for the ldr-hydra documentation.

Build (warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest

The build needs no network: there is no intersphinx, and MathJax is only loaded by the
reader's browser.
"""

import os
import sys

import numpydoc.xref

# Import `ldr` and `hydra` from this checkout rather than from an installed copy.
sys.path.insert(0, os.path.abspath(".."))

project = "ldr-hydra"
author = "the ldr-hydra authors"
copyright = "2025, the ldr-hydra authors"

extensions = [
    "sphinx.ext.mathjax",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    # The benchmarks page is MyST markdown so that it can include the markdown tables the
    # benchmark scripts write (benchmarks/results/*.md) instead of retyping them.
    "myst_parser",
]

templates_path = []
exclude_patterns = ["_build", "_scripts", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# Every cross-reference to this project must resolve (a broken one fails the -W build). Names
# of other projects cannot be resolved: that needs intersphinx inventories, fetched over the
# network, and the build is offline. They render as plain code.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|torch|safetensors|transformers|re|hashlib)(\..*)?"),
    (r"py:(func|class|exc|obj)", r"(hash|int|float|str|bool|tuple|list|dict|callable|object|ValueError|TypeError)"),
]

# autodoc / autosummary / numpydoc
autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# A method without its own docstring is left out rather than shown with its parent's (an
# nn.Module subclass's `forward` would otherwise read "Should be overridden by all subclasses").
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Link the library's own class names in "Parameters"/"Returns" type slots; every other word
# of a type ("array", "shape (..., m, r)", "optional") stays plain text.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    name: f"ldr.{name}"
    for name in (
        "LDRMatrix", "LowRank", "ToeplitzLike", "HankelLike", "VandermondeLike", "CauchyLike",
        "DisplacementOperator", "Shift", "Diagonal", "Identity", "Zero",
    )
}
numpydoc_xref_aliases["Backend"] = "ldr.backends.Backend"
numpydoc_xref_aliases["BlockStructure"] = "hydra.blocks.BlockStructure"
numpydoc_xref_aliases.update(
    {
        name: f"hydra.{name}"
        for name in (
            "HydraConfig", "LoRAConfig", "LDRConfig", "AdapterReport", "LayerReport",
            "ParameterPool", "BlockPartitioner", "AdapterLinear", "HydraLinear", "LoRALinear",
        )
    }
)
# numpydoc's default aliases point words such as "float" or "array_like" at the Python and
# NumPy docs, which need intersphinx (no network at build time) and otherwise render as
# "python:float" or fail as missing glossary terms; keep those words as they are written.
numpydoc_xref_aliases.update({word: word for word in numpydoc.xref.DEFAULT_LINKS})

# doctest: every `.. doctest::` block on the theory, paper-notes and tutorial pages runs at build time.
doctest_global_setup = """
import numpy as np
"""
trim_doctest_flags = True
# Only the `.. doctest::` blocks of the narrative pages (theory, paper notes, tutorials) run
# here. The Examples sections of docstrings, which autodoc pulls into the API pages, are run
# by `pytest --doctest-modules ldr hydra` (see the Makefile's test target) in their module's
# namespace; running them a second time here would test nothing new.
doctest_test_doctest_blocks = ""

# MyST (the benchmarks page): $...$ is inline math, as on the reStructuredText pages' :math:.
myst_enable_extensions = ["dollarmath"]

# HTML
html_theme = "furo"
html_title = "ldr-hydra"
html_static_path = ["_static"]
html_css_files = ["tables.css"]

# Number figures and equations so that the text can refer to them.
numfig = True
math_numfig = True
math_eqref_format = "({number})"

"""Sphinx configuration for the ldr-hydra documentation.

Build (warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest

The build and the built pages need no network: MathJax is copied into ``_static/mathjax``
from the ``sphinx-mathjax-offline`` wheel (see ``copy_mathjax`` below), and the intersphinx
inventories of NumPy, SciPy, PyTorch and Python are read from ``docs/_intersphinx`` (written
by ``docs/_scripts/make_inventories.py``). ``make docs-check`` verifies both on the built HTML.
"""

import importlib.metadata
import os
import shutil
import sys

import numpydoc.xref

# Import `ldr` and `hydra` from this checkout rather than from an installed copy.
sys.path.insert(0, os.path.abspath(".."))

project = "ldr-hydra"
author = "the ldr-hydra authors"
copyright = "2025, the ldr-hydra authors"

extensions = [
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
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
# of NumPy, SciPy, PyTorch and Python resolve through the inventories kept in
# docs/_intersphinx (the build never fetches one); a name of theirs that the small inventories
# do not list renders as plain code instead of failing the build.
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
# by tests/test_docstring_examples.py, each in an empty namespace as a reader pastes it;
# running them a second time here would test nothing new.
doctest_test_doctest_blocks = ""

# MyST (the benchmarks page): $...$ is inline math, as on the reStructuredText pages' :math:.
myst_enable_extensions = ["dollarmath"]

# intersphinx: links to the other projects' documentation, from inventories kept in the
# repository (docs/_intersphinx/*.inv). They are small hand-curated inventories, not the
# projects' own objects.inv: they list only the names these pages reference, with the URLs
# of the projects' published documentation. Regenerate them with
# `python docs/_scripts/make_inventories.py` after referencing a new outside name.
_INV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_intersphinx")
intersphinx_mapping = {
    name: (url, os.path.join(_INV, f"{name}.inv"))
    for name, url in {
        "python": "https://docs.python.org/3/",
        "numpy": "https://numpy.org/doc/stable/",
        "scipy": "https://docs.scipy.org/doc/scipy/",
        "torch": "https://docs.pytorch.org/docs/stable/",
    }.items()
}

# sphinx-copybutton: a copy button on every code block, which leaves out the ">>> " and
# "... " prompts and the output lines, so that a copied doctest pastes into Python as is.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# HTML
html_theme = "furo"
html_title = "ldr-hydra"
html_static_path = ["_static"]
# tables.css applies to the wide benchmark tables only (the "benchmark-tables" container of
# benchmarks.md); every other table keeps the theme's layout.
html_css_files = ["tables.css", "layout.css"]

# MathJax is served from the built site itself, so formulas render without a network. The
# files come from the `sphinx-mathjax-offline` wheel (MathJax 3.2.2, Apache-2.0; in the docs
# extra). Only what TeX input with CommonHTML output needs is copied: the combined component
# tex-chtml.js, the TeX extensions that its autoloader may ask for, and the CommonHTML fonts
# (about 2.5 MB instead of the wheel's 24 MB). The extension itself is not loaded: it copies
# everything and points at a file of its choosing.
mathjax_path = "mathjax/tex-chtml.js"
MATHJAX_SUBSET = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2")


def _mathjax_source():
    dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    return str(dist.locate_file("sphinx-mathjax-offline/static/mathjax"))


def copy_mathjax(app, exc):
    """Copy the MathJax subset into the HTML output (build-finished hook)."""
    if exc is not None or app.builder.format != "html":
        return
    source = _mathjax_source()
    target = os.path.join(app.outdir, "_static", "mathjax")
    for part in MATHJAX_SUBSET:
        src, dst = os.path.join(source, part), os.path.join(target, part)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)

# Number figures and equations so that the text can refer to them.
numfig = True
math_numfig = True
math_eqref_format = "({number})"


BENCHMARK_SUMMARY_MARKER = "<!-- benchmark-summary -->"


def insert_benchmark_summary(app, docname, source):
    """Put the summary computed from benchmarks/results/*.json into the Benchmarks page."""
    if docname != "benchmarks" or BENCHMARK_SUMMARY_MARKER not in source[0]:
        return
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_scripts"))
    try:
        import bench_summary
    finally:
        sys.path.pop(0)
    source[0] = source[0].replace(BENCHMARK_SUMMARY_MARKER, bench_summary.summary_markdown())
    # Rebuild the page when a benchmark rewrites its results.
    for name in ("core_toeplitz_like.json", "torch_toeplitz_like.json", "hydra_train_step.json"):
        app.env.note_dependency(os.path.join(bench_summary.RESULTS, name))


def setup(app):
    # Fail at the start of a build, not at its end, when the MathJax files are missing.
    if not os.path.isfile(os.path.join(_mathjax_source(), MATHJAX_SUBSET[0])):
        raise RuntimeError("MathJax files not found: pip install sphinx-mathjax-offline (docs extra)")
    app.connect("build-finished", copy_mathjax)
    app.connect("source-read", insert_benchmark_summary)

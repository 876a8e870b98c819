"""Sphinx configuration for the ldr-hydra documentation.

Build (warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest

The build needs no network: there is no intersphinx, and MathJax is only loaded by the
reader's browser.
"""

import os
import sys

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
]

templates_path = []
exclude_patterns = ["_build", "_scripts", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# Unresolved references are not errors: the API pages are added later, and there is no
# intersphinx inventory to resolve names from other projects against.
nitpicky = False

# autodoc / autosummary / numpydoc
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# doctest: every `.. doctest::` block on the theory and paper-notes pages runs at build time.
doctest_global_setup = """
import numpy as np
"""
trim_doctest_flags = True

# HTML
html_theme = "furo"
html_title = "ldr-hydra"
html_static_path = ["_static"]

# Number figures and equations so that the text can refer to them.
numfig = True
math_numfig = True
math_eqref_format = "({number})"

"""The built documentation works offline (issue: formulas must render without a network).

These tests read ``docs/_build/html``, which ``make test`` builds first (``make docs``); they
are skipped when it has not been built. The checks themselves live in
``docs/_scripts/check_offline.py``, which ``make docs-check`` runs with a screenshot.
"""

from __future__ import annotations

import importlib.util
import re
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "docs" / "_build" / "html"

_spec = importlib.util.spec_from_file_location("check_offline", ROOT / "docs" / "_scripts" / "check_offline.py")
check_offline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_offline)

built = pytest.mark.skipif(not (HTML / "index.html").is_file(), reason="docs not built (run `make docs`)")


def test_detector_finds_remote_assets(tmp_path):
    # The check must be able to fail: a page with a CDN script, a protocol-relative stylesheet
    # and a CSS font import are all reported; a plain link and an escaped code sample are not.
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text(
        '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"></script>\n'
        '<link rel="stylesheet" href="//fonts.example.org/a.css">\n'
        '<a href="https://numpy.org/doc/stable/">NumPy</a>\n'
        '<pre>&lt;script src="https://example.org/x.js"&gt;</pre>\n'
        '<script src="_static/mathjax/tex-chtml.js"></script>\n',
        encoding="utf-8",
    )
    (tmp_path / "_static" / "f.css").write_text(
        '/* url(https://in.a.comment/) */ @import url("https://fonts.example.org/b.css");', encoding="utf-8"
    )
    found = check_offline.remote_assets(str(tmp_path))
    assert sorted(url for _, url in found) == [
        "//fonts.example.org/a.css",
        "https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js",
        "https://fonts.example.org/b.css",
    ]


def test_rendered_math_counts_containers_and_leftovers():
    dom = '<p><mjx-container class="MathJax"></mjx-container> and \\(W\\)</p><pre>\\(ok\\)</pre>'
    containers, leftovers = check_offline.rendered_math(dom)
    assert containers == 1
    assert [fragment.strip() for fragment in leftovers] == ["\\(W\\)"]


@built
def test_no_built_page_loads_a_remote_asset():
    assert check_offline.remote_assets(str(HTML)) == []


@built
def test_mathjax_is_bundled():
    page = (HTML / "theory" / "classes.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/tex-chtml.js' in page
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()


@built
@pytest.mark.slow
def test_theory_page_renders_formulas_offline(tmp_path):
    if check_offline.find_chromium() is None:
        pytest.skip("no Chromium (apt-get install -y chromium) for the render check")
    failures = check_offline.check_page(str(HTML), "theory/classes.html", screenshot=str(tmp_path / "classes.png"))
    assert failures == []


def test_inventories_match_their_generator():
    # docs/_intersphinx/*.inv are written by docs/_scripts/make_inventories.py: the committed
    # files must be what the script writes now, and no URI may keep a "$" placeholder
    # (Sphinx expands only a trailing one, which once produced links to ".../$.html").
    spec = importlib.util.spec_from_file_location("make_inventories", ROOT / "docs" / "_scripts" / "make_inventories.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for project, (version, entries) in make.INVENTORIES.items():
        data = make.inventory_bytes(project, version, entries)
        assert (ROOT / "docs" / "_intersphinx" / f"{project}.inv").read_bytes() == data, project
        body = zlib.decompress(data.split(b"zlib.\n", 1)[1]).decode()
        assert "$" not in body, project


@built
def test_no_link_to_an_unexpanded_inventory_uri():
    pages = [p.read_text(encoding="utf-8") for p in HTML.rglob("*.html")]
    assert not any(re.search(r'href="https?://[^"]*\$', page) for page in pages)

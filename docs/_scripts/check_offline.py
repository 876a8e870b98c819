"""Check that the built HTML documentation works without a network.

Two checks, run by ``make docs-check`` after ``make docs``:

1. **No remote assets.** No built page loads a script, stylesheet, font or image from
   another host (``<script src="https://...">``, ``<link href="//...">``, ``<img src=...>``),
   and no bundled CSS file imports one. Links a reader clicks (``<a href>``) are fine.
   ``tests/test_docs_offline.py`` runs this part inside ``make test``.
2. **Formulas render.** A theory page is opened in headless Chromium with every host name
   unresolvable, given a few seconds of virtual time, and its final DOM is checked: MathJax
   must have replaced the TeX of every formula by ``mjx-container`` elements, and no raw
   ``\\(`` or ``\\begin`` may be left in the text. A PNG screenshot of the page is written for a
   person to look at.

Usage::

    python docs/_scripts/check_offline.py [--html docs/_build/html] [--page theory/classes.html]
        [--screenshot docs/_build/check/classes.png] [--no-browser]

Exit status 0 when every check passes, 1 otherwise (the failures are printed).
"""

import argparse
import glob
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_HTML = os.path.join(ROOT, "docs", "_build", "html")

# A URL that leaves the site: scheme-qualified or protocol-relative.
_REMOTE = r"""(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//"""
# Tags that make the browser fetch something as the page loads. <a href> is left out on
# purpose: following a link is the reader's choice.
_FETCHING = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed)\b[^>]*?\b(src|href|srcset|data)\s*=\s*"
    r"""(["']?)\s*(""" + _REMOTE + r"""[^"'\s>]*)""",
    re.IGNORECASE,
)
_CSS_REMOTE = re.compile(r"""(@import\s+(?:url\()?|url\()\s*["']?\s*(""" + _REMOTE + r"""[^"')\s]*)""", re.I)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def remote_assets(html_dir):
    """Every remote asset the built site would fetch, as ``(file, url)`` pairs.

    Parameters
    ----------
    html_dir : str
        The HTML output directory (``docs/_build/html``).

    Returns
    -------
    list of (str, str)
        File (relative to ``html_dir``) and the offending URL; empty when the site is
        self-contained.
    """
    found = []
    for path in sorted(glob.glob(os.path.join(html_dir, "**", "*.html"), recursive=True)):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        # Code samples on the pages are escaped (&lt;script ...), so they never match.
        for match in _FETCHING.finditer(text):
            found.append((os.path.relpath(path, html_dir), match.group(4)))
    for path in sorted(glob.glob(os.path.join(html_dir, "_static", "**", "*.css"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = _CSS_COMMENT.sub("", fh.read())
        for match in _CSS_REMOTE.finditer(text):
            found.append((os.path.relpath(path, html_dir), match.group(2)))
    return found


def find_chromium():
    """Path of a Chromium/Chrome executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(browser, url, *extra, timeout=120):
    # Offline for real: every host name fails to resolve, so a remote MathJax (or anything
    # else) cannot load, and the check fails instead of silently using the network.
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-extensions", "--mute-audio",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
        "--virtual-time-budget=15000", *extra, url,
    ]
    with tempfile.TemporaryDirectory() as profile:
        cmd.insert(1, f"--user-data-dir={profile}")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return done


def rendered_math(dom):
    """Count MathJax's output elements and the raw TeX left in a rendered page's DOM.

    Parameters
    ----------
    dom : str
        The page's DOM after scripts ran (Chromium's ``--dump-dom``).

    Returns
    -------
    containers : int
        Number of ``<mjx-container>`` elements (one per typeset formula).
    leftovers : list of str
        Raw TeX fragments still in the page text (``\\(``, ``\\[``, ``\\begin{``), at most 5.
    """
    containers = len(re.findall(r"<mjx-container\b", dom))
    # Text outside tags, with code blocks removed: a docstring may show a backslash legitimately.
    text = re.sub(r"<(pre|code|script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    leftovers = re.findall(r"\\\(.{0,30}|\\\[.{0,30}|\\begin\{.{0,20}", text)
    return containers, leftovers[:5]


def check_page(html_dir, page, screenshot=None, browser=None):
    """Render ``page`` offline in headless Chromium and check that its formulas are typeset.

    Returns a list of failure messages (empty when the page passed).
    """
    browser = browser or find_chromium()
    if browser is None:
        return ["no Chromium found: install it (e.g. `apt-get install -y chromium`) to run the render check"]
    path = os.path.join(html_dir, page)
    if not os.path.isfile(path):
        return [f"{page}: not in {html_dir}"]
    url = "file://" + os.path.abspath(path)
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    expected = len(re.findall(r'class="math notranslate', source))
    failures = []
    done = _chromium(browser, url, "--dump-dom")
    if done.returncode != 0:
        return [f"{page}: chromium exited with {done.returncode}: {done.stderr[-500:]}"]
    containers, leftovers = rendered_math(done.stdout)
    if expected == 0:
        failures.append(f"{page}: has no formulas, pick a theory page")
    if containers < expected:
        failures.append(f"{page}: {containers} typeset formulas for {expected} math elements")
    if leftovers:
        failures.append(f"{page}: raw TeX left in the rendered page: {leftovers}")
    if screenshot:
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        shot = _chromium(browser, url, f"--screenshot={os.path.abspath(screenshot)}", "--window-size=1280,1800")
        if shot.returncode != 0 or not os.path.isfile(screenshot):
            failures.append(f"{page}: no screenshot written ({shot.stderr[-300:]})")
    print(f"{page}: {containers} formulas typeset (of {expected}), raw TeX left: {len(leftovers)}")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=DEFAULT_HTML, help="built HTML directory")
    parser.add_argument("--page", action="append", help="page(s) to render (default: theory/classes.html)")
    parser.add_argument("--screenshot", default=os.path.join(ROOT, "docs", "_build", "check", "classes.png"))
    parser.add_argument("--no-browser", action="store_true", help="only the remote-asset check")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.html):
        print(f"{args.html} does not exist: run `make docs` first", file=sys.stderr)
        return 1
    failures = [f"{f}: loads remote {url}" for f, url in remote_assets(args.html)]
    print(f"remote assets: {len(failures)}")
    if not args.no_browser:
        pages = args.page or ["theory/classes.html"]
        for i, page in enumerate(pages):
            shot = args.screenshot if i == 0 else None
            failures += check_page(args.html, page, screenshot=shot)
    for line in failures:
        print("FAIL", line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

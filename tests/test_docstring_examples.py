"""Every docstring example of ``ldr`` and ``hydra`` runs when pasted into a fresh session.

pytest's ``--doctest-modules`` runs an example with its module's globals, so an example that
uses a name it never imports still passes there and fails for a reader who copies it. Here each
example runs in an empty namespace, exactly as pasted. This replaces ``--doctest-modules``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = []
    for package in ("ldr", "hydra"):
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            # `python -m hydra.experiments` is a script entry point, not a library module.
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def _examples():
    cases = []
    for name in _modules():
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module, name):
            if test.examples:
                cases.append(pytest.param(name, test.name, id=test.name))
    return cases


@pytest.mark.parametrize("module_name, test_name", _examples())
def test_example_runs_in_a_fresh_namespace(module_name, test_name):
    module = importlib.import_module(module_name)
    (test,) = [t for t in doctest.DocTestFinder().find(module, module_name) if t.name == test_name]
    test.globs = {}
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


def test_every_module_has_examples_collected():
    # Guards the collection itself: a broken walk would make the parametrised test vanish.
    names = {case.values[0] for case in _examples()}
    assert {"ldr.ldrmatrix", "ldr.solvers", "hydra.model", "hydra.integrity"} <= names

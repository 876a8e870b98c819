"""The import name ``hydra`` is shared with hydra-core: ``ldr_hydra`` works beside it, and both-installed is reported.

Each case runs in a fresh interpreter with a stand-in for hydra-core (a top-level ``hydra``
package and a ``hydra_core`` dist-info) placed first on ``PYTHONPATH``, as pip would install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_hydra_core(site, with_package=True):
    info = site / "hydra_core-1.3.8.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hydra-core\nVersion: 1.3.8\n")
    if with_package:
        (site / "hydra").mkdir()
        (site / "hydra" / "__init__.py").write_text('"""hydra-core stand-in."""\n__version__ = "1.3.8"\n')
    return site


def _run(script, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), REPO])}
    env.pop("LDR_HYDRA_IGNORE_HYDRA_CORE", None)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            env=env, cwd=str(site), timeout=120)
    return result


def test_ldr_hydra_works_when_hydra_core_owns_the_name(tmp_path):
    site = _fake_hydra_core(tmp_path / "site")
    result = _run("""
        import warnings
        warnings.simplefilter("error")                    # ldr_hydra must not warn
        import hydra
        assert hydra.__version__ == "1.3.8" and not hasattr(hydra, "HydraConfig")   # hydra-core's
        import torch
        import ldr_hydra
        model = ldr_hydra.inject(torch.nn.Sequential(torch.nn.Linear(4, 4)),
                                 ldr_hydra.LoRAConfig(rank=1, target_modules=["0"]))
        assert type(model[0]).__module__ == "ldr_hydra.layers"
        import sys
        assert sys.modules["hydra"].__version__ == "1.3.8"   # hydra-core untouched
        print("ok")
    """, site)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_import_hydra_warns_when_hydra_core_is_installed_too(tmp_path):
    site = _fake_hydra_core(tmp_path / "site", with_package=False)   # ours wins the name; core's metadata present
    result = _run("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import hydra
        assert hasattr(hydra, "HydraConfig")
        messages = [str(w.message) for w in caught if "hydra-core" in str(w.message)]
        assert len(messages) == 1 and "import ldr_hydra as hydra" in messages[0], messages
        print("ok")
    """, site)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_ldr_hydra_refuses_a_hydra_directory_overwritten_by_hydra_core(tmp_path):
    """Both installed into one site-packages: hydra-core's __init__.py replaced ours; say so, do not load it."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "ldr_hydra"), site / "ldr_hydra")
    _fake_hydra_core(site)
    result = _run("""
        try:
            import ldr_hydra
        except ImportError as exc:
            print(exc)
    """, site)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is not ldr-hydra's: hydra-core" in result.stdout, result.stdout

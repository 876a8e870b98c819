"""``ldr_hydra``: this library's ``hydra`` package under a name that hydra-core does not claim.

hydra-core (Facebook's configuration framework, common in ML environments) also installs a
top-level ``hydra`` package, so in an environment that has both, ``import hydra`` gives whichever
Python finds first. ``import ldr_hydra as hydra`` always gives this library: this module loads
the ``hydra`` directory installed next to it under the name ``ldr_hydra`` (``ldr_hydra.model``,
``ldr_hydra.layers``, ...), without going through the name ``hydra`` at all.

Use one name per process: modules loaded as ``hydra.*`` and as ``ldr_hydra.*`` are separate
copies (an adapter built through one is not an instance of the other's classes).
"""

import os as _os

_HERE = _os.path.dirname(_os.path.abspath(__file__))
_SOURCE = _os.path.join(_os.path.dirname(_HERE), "hydra")
_INIT = _os.path.join(_SOURCE, "__init__.py")
# A line only this library's hydra/__init__.py holds (hydra-core's does not).
_MARKER = "HyDRA adapters"


def _read_init():
    try:
        with open(_INIT, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ImportError(f"ldr_hydra: cannot read this library's hydra package at {_SOURCE!r}: {exc}") from None
    if _MARKER not in text:
        raise ImportError(
            f"ldr_hydra: {_INIT!r} is not ldr-hydra's: hydra-core (or another package) installed its own "
            "hydra/__init__.py over it. Install ldr-hydra and hydra-core in separate environments, or reinstall "
            "ldr-hydra editable (pip install -e <checkout>) so its files stay in the checkout"
        )
    return text


# Submodules (`from .model import ...`) are looked up in the hydra directory, under this name.
__path__ = [_SOURCE]
exec(compile(_read_init(), _INIT, "exec"))

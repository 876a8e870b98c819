"""The import name ``hydra`` is shared with hydra-core: detect an environment that has both.

See :mod:`ldr_hydra` for the name that always works, and the installation notes in the docs.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["hydra_core_version", "warn_if_hydra_core"]


def hydra_core_version():
    """The installed hydra-core version, or ``None`` (read from the installed distributions' metadata)."""
    from importlib import metadata

    try:
        return metadata.version("hydra-core")
    except metadata.PackageNotFoundError:
        return None


def warn_if_hydra_core(module_name):
    """Warn once, at ``import hydra``, when hydra-core is installed too (both claim the name ``hydra``).

    Silent when this library is imported as ``ldr_hydra`` (the name meant for such environments).
    """
    if module_name != "hydra" or os.environ.get("LDR_HYDRA_IGNORE_HYDRA_CORE"):
        return
    version = hydra_core_version()
    if version is None:
        return
    warnings.warn(
        f"hydra-core {version} is installed in this environment and also provides the top-level package `hydra`; "
        "this process imported ldr-hydra's `hydra`, so code that needs hydra-core's will break (and in another "
        "environment the reverse happens: `AttributeError: module 'hydra' has no attribute 'HydraConfig'`). "
        "Import this library as `import ldr_hydra as hydra` (set LDR_HYDRA_IGNORE_HYDRA_CORE=1 to silence this)",
        UserWarning,
        stacklevel=3,
    )

"""Process settings and environment records shared by the benchmark scripts.

Why a re-exec: glibc reads its ``MALLOC_*`` tunables once, at process start, so a script that
wants them (see ``shared/BENCHMARKING.md``: without them large FFT temporaries are returned to
the OS and page-faulted again on every call, 2-2.4x slower) must restart itself with them set.
The same restart fixes the BLAS/OpenMP thread counts before numpy loads its libraries, and
drops ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (set on some machines for old OpenBLAS builds;
they slow the current one, which would flatter every comparison against a dense GEMM). The
values found and the values used are both recorded.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = [
    "MALLOC_SETTINGS",
    "REPO_ROOT",
    "RESULTS_DIR",
    "ensure_process_settings",
    "environment",
    "write_json",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

MALLOC_SETTINGS = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "67108864",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
OPENBLAS_TRAP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MARK = "LDR_BENCH_SETTINGS"  # set in the restarted process; holds what the parent found


def ensure_process_settings(script, argv, threads):
    """Restart ``script`` with the malloc tunables and thread counts set, unless already done.

    Parameters
    ----------
    script : str
        Path of the script to run again (``__file__`` of the caller's ``__main__``).
    argv : list of str
        Its arguments.
    threads : int
        Value for ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS``.

    Notes
    -----
    Only call this from a ``__main__`` block: it replaces the process (``os.execve``).
    """
    if os.environ.get(_MARK):
        return
    found = {k: os.environ.get(k) for k in (*MALLOC_SETTINGS, *THREAD_VARIABLES, *OPENBLAS_TRAP)}
    env = dict(os.environ)
    env.update(MALLOC_SETTINGS)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    for name in OPENBLAS_TRAP:  # unset both together, in this benchmark process alone
        env.pop(name, None)
    env[_MARK] = json.dumps(found)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, str(script), *argv], env)


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state():
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return {"commit": head or None, "uncommitted_changes": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_changes": None}


def _versions(include_torch):
    import numpy
    import scipy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__}
    modules = ["matplotlib", "threadpoolctl"] + (["torch"] if include_torch else [])
    for name in modules:
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            versions[name] = None
    try:
        from importlib.metadata import version

        versions["ldr-hydra"] = version("ldr-hydra")
    except Exception:  # not installed as a distribution: the source tree is used
        versions["ldr-hydra"] = None
    return versions


def _thread_pools():
    try:
        import threadpoolctl
    except ImportError:
        return None
    keep = ("user_api", "internal_api", "num_threads", "version", "architecture", "threading_layer")
    return [{k: pool.get(k) for k in keep} for pool in threadpoolctl.threadpool_info()]


def environment(include_torch=False):
    """A JSON-ready record of the machine, the libraries and the process settings.

    Parameters
    ----------
    include_torch : bool
        Import torch to record its version and thread count (slow to import).

    Returns
    -------
    dict
    """
    import scipy.fft

    found = os.environ.get(_MARK)
    record = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(),
        },
        "versions": _versions(include_torch),
        "git": _git_state(),
        "settings": {
            "restarted_with_benchmark_settings": found is not None,
            "environment_as_found": json.loads(found) if found else None,
            "environment_used": {
                k: os.environ.get(k) for k in (*MALLOC_SETTINGS, *THREAD_VARIABLES, *OPENBLAS_TRAP)
            },
            "openblas_coretype_note": (
                "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the benchmark process "
                "(both together); 'environment_as_found' shows whether they were set"
            ),
            "thread_pools": _thread_pools(),
            "scipy_fft_default_workers": scipy.fft.get_workers(),
        },
    }
    if include_torch:
        try:
            import torch

            record["settings"]["torch_num_threads"] = torch.get_num_threads()
        except ImportError:
            pass
    return record


def write_json(path, payload):
    """Write ``payload`` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")

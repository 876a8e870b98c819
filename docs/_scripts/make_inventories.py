"""Write the small intersphinx inventories kept in ``docs/_intersphinx``.

The documentation is built without a network, so Sphinx cannot download the ``objects.inv``
files of NumPy, SciPy, PyTorch and Python, and no package installable from PyPI ships them.
This script writes stand-ins instead: inventories in Sphinx's own format (version 2,
zlib-compressed) that list only the outside names these docs reference, each with the URL
of its page in that project's published documentation (the URL schemes of numpy.org/doc,
docs.scipy.org, docs.pytorch.org and docs.python.org). They are hand-curated and small, not
copies of the projects' inventories; a name missing here renders as plain code rather than a
link (see ``nitpick_ignore_regex`` in ``docs/conf.py``).

Run after referencing a new outside name in a docstring or page::

    python docs/_scripts/make_inventories.py
"""

import os
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "_intersphinx")

_NP_GEN = "reference/generated/$.html#$"
_SP_GEN = "reference/generated/$.html#$"
_TORCH_GEN = "generated/$.html#$"

# project -> (version string, [(name, role, uri)]); "$" in a uri stands for the name (expanded
# when the file is written).
INVENTORIES = {
    "numpy": ("stable", [
        ("numpy.ndarray", "py:class", _NP_GEN),
        ("numpy.matmul", "py:data", _NP_GEN),
        ("numpy.vander", "py:function", _NP_GEN),
        ("numpy.einsum", "py:function", _NP_GEN),
        ("numpy.array_split", "py:function", _NP_GEN),
        ("numpy.fft.fft", "py:function", _NP_GEN),
        ("numpy.fft.rfft", "py:function", _NP_GEN),
        ("numpy.fft.irfft", "py:function", _NP_GEN),
        ("numpy.linalg.svd", "py:function", _NP_GEN),
        ("numpy.linalg.matrix_rank", "py:function", _NP_GEN),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html#$"),
    ]),
    "scipy": ("stable", [
        ("scipy.fft", "py:module", "reference/fft.html#module-scipy.fft"),
        ("scipy.fft.rfft", "py:function", _SP_GEN),
        ("scipy.fft.irfft", "py:function", _SP_GEN),
        ("scipy.fft.next_fast_len", "py:function", _SP_GEN),
        ("scipy.linalg.toeplitz", "py:function", _SP_GEN),
        ("scipy.linalg.hankel", "py:function", _SP_GEN),
        ("scipy.linalg.circulant", "py:function", _SP_GEN),
        ("scipy.linalg.solve_toeplitz", "py:function", _SP_GEN),
        ("scipy.linalg.matmul_toeplitz", "py:function", _SP_GEN),
        ("scipy.linalg.solve_sylvester", "py:function", _SP_GEN),
        ("scipy.sparse.linalg.LinearOperator", "py:class", _SP_GEN),
        ("scipy.sparse.linalg.aslinearoperator", "py:function", _SP_GEN),
        ("scipy.sparse.linalg.cg", "py:function", _SP_GEN),
        ("scipy.sparse.linalg.gmres", "py:function", _SP_GEN),
        ("scipy.sparse.linalg.lsqr", "py:function", _SP_GEN),
    ]),
    "torch": ("stable", [
        ("torch.Tensor", "py:class", "tensors.html#$"),
        ("torch.Generator", "py:class", "generated/torch.Generator.html#$"),
        ("torch.nn.Module", "py:class", _TORCH_GEN),
        ("torch.nn.Linear", "py:class", _TORCH_GEN),
        ("torch.nn.Parameter", "py:class", _TORCH_GEN),
        ("torch.nn.functional.linear", "py:function", _TORCH_GEN),
        ("torch.fft.rfft", "py:function", _TORCH_GEN),
        ("torch.fft.irfft", "py:function", _TORCH_GEN),
        ("torch.autograd.gradcheck", "py:function", "autograd.html#numerical-gradient-checking"),
        ("torch.autograd.Function", "py:class", "autograd.html#function"),
        ("torch.compile", "py:function", _TORCH_GEN),
        ("torch.dtype", "py:class", "tensor_attributes.html#torch.dtype"),
        ("torch.device", "py:class", "tensor_attributes.html#torch.device"),
    ]),
    "python": ("3", [
        ("TypeError", "py:exception", "library/exceptions.html#$"),
        ("ValueError", "py:exception", "library/exceptions.html#$"),
        ("KeyError", "py:exception", "library/exceptions.html#$"),
        ("RuntimeError", "py:exception", "library/exceptions.html#$"),
        ("hash", "py:function", "library/functions.html#$"),
        ("int", "py:class", "library/functions.html#$"),
        ("float", "py:class", "library/functions.html#$"),
        ("complex", "py:class", "library/functions.html#$"),
        ("str", "py:class", "library/stdtypes.html#$"),
        ("bool", "py:class", "library/functions.html#$"),
        ("tuple", "py:class", "library/stdtypes.html#$"),
        ("list", "py:class", "library/stdtypes.html#$"),
        ("dict", "py:class", "library/stdtypes.html#$"),
        ("object", "py:class", "library/functions.html#$"),
        ("callable", "py:function", "library/functions.html#$"),
        ("re.fullmatch", "py:function", "library/re.html#$"),
        ("hashlib", "py:module", "library/hashlib.html#module-hashlib"),
        ("pickle", "py:module", "library/pickle.html#module-pickle"),
        ("dataclasses.dataclass", "py:function", "library/dataclasses.html#$"),
        ("typing.NamedTuple", "py:class", "library/typing.html#$"),
    ]),
}


def inventory_bytes(project, version, entries):
    """The bytes of a version-2 Sphinx inventory listing ``entries``."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    # Sphinx itself expands only a "$" at the very end of a URI, so every "$" is expanded here.
    body = "".join(f"{name} {role} 1 {uri.replace('$', name)} -\n" for name, role, uri in sorted(entries))
    return header.encode() + zlib.compress(body.encode(), 9)


def main():
    os.makedirs(OUT, exist_ok=True)
    for project, (version, entries) in INVENTORIES.items():
        with open(os.path.join(OUT, f"{project}.inv"), "wb") as fh:
            fh.write(inventory_bytes(project, version, entries))


if __name__ == "__main__":
    main()

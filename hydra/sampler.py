r"""The seeded, balanced shuffle that maps generator slots to pool entries.

Every adapted matrix needs N numbers (its *slots*: the generator entries of all its blocks); the
pool has P entries. The index map :math:`\pi: \{0..N-1\} \to \{0..P-1\}` is

.. math:: \pi(t) = \rho\big(\sigma(t) \bmod P\big),

with :math:`\sigma` a random permutation of the N slots and :math:`\rho` one of the P entries,
both drawn by a :class:`numpy.random.Generator` seeded from ``(seed, name)`` through a stable
hash (SHA-256, never Python's salted :func:`hash`). The residues ``0..N-1 mod P`` hit each
value ``floor(N/P)`` or ``ceil(N/P)`` times, and the permutations only relabel them, so every
pool entry is used ``floor(N/P)`` or ``ceil(N/P)`` times. When P > N, ``P - N`` entries are never
used (dead trainable parameters): :func:`balanced_index_map` warns once per map.
See :doc:`/theory/hydra`.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

__all__ = ["stable_seed", "balanced_index_map"]


def stable_seed(*parts):
    """A 63-bit integer seed from ``parts`` that is identical in every process and platform.

    Parameters
    ----------
    *parts : str or int
        Joined with a separator and hashed with SHA-256 (Python's :func:`hash` is salted per
        process and would break reproducibility).

    Returns
    -------
    int
        In ``[0, 2**63)``, usable by :class:`numpy.random.Generator` and ``torch.Generator``.

    Examples
    --------
    >>> from hydra import stable_seed
    >>> stable_seed(0, "pool", "encoder.query") == stable_seed(0, "pool", "encoder.query")
    True
    >>> stable_seed(0, "a") != stable_seed(1, "a")
    True
    """
    text = "\x1f".join(f"{type(p).__name__}:{p}" for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def balanced_index_map(n_slots, pool_size, seed, name, warn=True):
    r"""Map ``n_slots`` slots to ``pool_size`` pool entries, each entry used about equally often.

    Parameters
    ----------
    n_slots : int
        N, the number of slots (generator entries) to fill, N >= 1.
    pool_size : int
        P, the number of pool entries, P >= 1.
    seed : int
        The configuration's seed.
    name : str
        The pool's name (the layer name, or ``"shared"``); the map is a pure function of
        ``(seed, name, N, P)``.
    warn : bool, default True
        Warn when P > N (``P - N`` entries would never be used).

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        ``index[t]`` is the pool entry that slot ``t`` reads.

    Notes
    -----
    :math:`\pi(t) = \rho(\sigma(t) \bmod P)` with random permutations :math:`\sigma` (of the slots)
    and :math:`\rho` (of the pool); every entry is used :math:`\lfloor N/P \rfloor` or
    :math:`\lceil N/P \rceil` times. Cost O(N + P).

    Examples
    --------
    >>> from hydra import balanced_index_map
    >>> import numpy as np
    >>> index = balanced_index_map(144, 40, seed=0, name="layer")
    >>> counts = np.bincount(index, minlength=40)
    >>> int(counts.min()), int(counts.max())       # 144 / 40 = 3.6
    (3, 4)
    >>> bool(np.array_equal(index, balanced_index_map(144, 40, seed=0, name="layer")))
    True
    """
    for value, label in ((n_slots, "n_slots"), (pool_size, "pool_size")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{label}` must be an integer >= 1; got {value!r}")
    if warn and pool_size > n_slots:
        warnings.warn(
            f"pool {name!r}: pool_size = {pool_size} exceeds the {n_slots} slots it fills; "
            f"{pool_size - n_slots} pool entries are never used (dead parameters). "
            "Use a pool_size <= the slot count.",
            UserWarning,
            stacklevel=3,
        )
    rng = np.random.default_rng(stable_seed(seed, "index-map", name, n_slots, pool_size))
    slot_order = rng.permutation(n_slots)
    pool_order = rng.permutation(pool_size)
    return pool_order[slot_order % pool_size].astype(np.int64)

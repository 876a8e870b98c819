r"""Adapter configurations: :class:`HydraConfig` and the baselines :class:`LoRAConfig`, :class:`LDRConfig`.

Each configuration is a dataclass validated in ``__post_init__`` (as in peft): a bad value
raises :class:`ValueError` or :class:`TypeError` naming the field, what was expected and what
arrived. Assigning a field later is validated the same way (``cfg.scale = float("nan")``
raises and leaves ``cfg`` unchanged). A configuration is plain data: it round-trips through
:meth:`to_dict` / :func:`config_from_dict` (JSON), which is how :func:`hydra.save` records it in
a checkpoint; a list of ``target_modules`` is stored sorted and without duplicates, so the JSON
never depends on the iteration order of a set (``PYTHONHASHSEED``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

__all__ = [
    "HydraConfig",
    "LoRAConfig",
    "LDRConfig",
    "HYDRA_STRUCTURES",
    "LDR_STRUCTURES",
    "PATHS",
    "config_from_dict",
]

#: Block structures of :class:`HydraConfig`.
HYDRA_STRUCTURES = (
    "toeplitz",
    "toeplitz_like",
    "hankel_like",
    "vandermonde_like",
    "cauchy_like",
    "low_rank",
)
#: Structures of the single-matrix baseline :class:`LDRConfig`.
LDR_STRUCTURES = ("circulant", "toeplitz_like")
#: Ways to compute ``ΔW x`` (see :class:`hydra.layers.HydraLinear`).
PATHS = ("auto", "dense", "fft")

TargetModules = Union[Sequence[str], str]


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value}")
    return int(value)


def _check_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    return value


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _check_targets(value):
    """Normalise ``target_modules``: a regex string stays a string, a collection becomes a sorted list.

    Suffix matching does not depend on the order, so sorting (and dropping duplicates) loses
    nothing and makes the configuration, and the checkpoints that record it, independent of
    the iteration order of a ``set`` (which changes with ``PYTHONHASHSEED``).
    """
    if value is None:
        raise ValueError(
            "`target_modules` must be given: a list of module-name suffixes such as "
            "['query', 'value'], or a regular expression matched against full module names"
        )
    if isinstance(value, str):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"`target_modules` is not a valid regular expression: {value!r} ({exc})") from None
        return value
    try:
        names = list(value)
    except TypeError:
        raise TypeError(
            f"`target_modules` must be a list of strings or a regex string; got {type(value).__name__}"
        ) from None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"`target_modules` must be a non-empty list of non-empty strings; got {value!r}")
    return sorted(set(names))


def _check_module_names(value):
    """Normalise ``modules_to_save``: ``None`` or a sorted list of module-name suffixes (a copy; sorted as ``target_modules``)."""
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(n, str) and n for n in _as_list(value)):
        raise TypeError(
            f"`modules_to_save` must be None or a list of module names such as ['classifier']; got {value!r}"
        )
    return sorted(set(value)) or None


def _as_list(value):
    try:
        return list(value)
    except TypeError:
        return [None]


class _ConfigMixin:
    """Shared helpers: validated assignment, JSON-able dict, and the fields that define the trained parameters."""

    #: Fields that change only how ``ΔW x`` is computed, not what is trained or saved.
    _runtime_fields = ("path",)

    def __setattr__(self, name, value):
        # After construction, an assignment to a field builds a new configuration with the
        # changed value (which runs every check of __post_init__) and takes its normalised
        # fields only if that succeeds: `cfg.scale = nan` raises and leaves `cfg` unchanged.
        if self.__dict__.get("_validated") and name in self.__dataclass_fields__:
            trial = dataclasses.replace(self, **{name: value})
            for key in self.__dataclass_fields__:
                object.__setattr__(self, key, getattr(trial, key))
            return
        object.__setattr__(self, name, value)

    def _mark_validated(self):
        object.__setattr__(self, "_validated", True)

    def to_dict(self):
        """The configuration as a JSON-able dict with a ``"type"`` key (the class name)."""
        data = dataclasses.asdict(self)
        return {"type": type(self).__name__, **data}

    def parameter_fields(self):
        """The fields a checkpoint must agree on (all but the runtime-only ``path``)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self._runtime_fields}


@dataclass
class HydraConfig(_ConfigMixin):
    r"""Configuration of HyDRA adapters: a k×k grid of LDR blocks whose numbers come from a pool.

    Parameters
    ----------
    structure : str, default "toeplitz"
        Block class: ``"toeplitz"`` (plain Toeplitz blocks from :math:`b_m + b_n - 1` sampled
        numbers each: the paper's "circulant" HyDRA), ``"toeplitz_like"``, ``"hankel_like"``,
        ``"vandermonde_like"``, ``"cauchy_like"`` or ``"low_rank"`` (with ``k = 1`` the paper's
        HyDRA(LoRA)).
    k : int, default 4
        Blocks per axis; :math:`1 \le k \le \min(m, n)` for every adapted layer.
    rank : int, default 1
        Displacement rank of each block (ignored by ``"toeplitz"``, whose blocks are fixed by
        their first row and column).
    pool_size : int, default 768
        Pool entries per adapted matrix (or in the one shared pool), P >= 1.
    fixed_ratio : float, default 0.0
        Fraction of the pool that is random and frozen, in [0, 1): ``floor(fixed_ratio · P)``
        entries (computed as ``floor(round(fixed_ratio · P, 9))`` so that 0.7 · 10 counts 7).
        They are regenerated from ``seed`` and never saved. At least one entry must stay
        trainable.
    seed : int, default 0
        Seeds the pool's initial values, the fixed part and the index maps, together with each
        layer's name (wrapper prefixes such as DDP's ``module.`` removed); checkpoints store
        the names used and a digest of every regenerated tensor (see :func:`hydra.save`).
    target_modules : list of str or str
        Which ``nn.Linear`` modules to adapt: a list of name suffixes (``"query"`` matches
        ``"encoder.layer.0.attention.query"``), a regular expression that must match the full
        module name (:func:`re.fullmatch`), or ``"all-linear"``: every linear layer but the
        output head (see :func:`hydra.targets.find_targets`). GPT-2's ``Conv1D`` layers are
        adapted like ``nn.Linear`` ones. A list (or set) is stored sorted, without duplicates.
    scale : float, default 1.0
        :math:`s` in :math:`y = W_0 x + s\,\Delta W x`.
    shared_pool : bool, default False
        One pool for all adapted matrices (counted once) instead of one pool per matrix.
    init_std : float, default 0.02
        Standard deviation of the pool's initial (and fixed) values, drawn from
        :math:`N(0, \sigma^2)`; 0.02 matches the scale of LoRA's ``A`` for n = 768.
    path : {"auto", "dense", "fft"}, default "auto"
        How ``ΔW x`` is computed (see :class:`hydra.layers.HydraLinear`); a runtime choice that
        checkpoints need not agree on.
    modules_to_save : list of str, optional
        Modules (name suffixes, e.g. ``["classifier"]``) that :func:`hydra.inject` leaves
        trainable and that checkpoints store in full, as peft's ``modules_to_save``.

    Raises
    ------
    ValueError, TypeError
        For an unknown structure or path, k, rank or pool_size below 1, fixed_ratio outside
        [0, 1) or so close to 1 that no pool entry is left to train, a non-positive or
        non-finite init_std or scale, or missing/invalid target_modules; the same checks run
        when a field is assigned later (the configuration is then left unchanged).

    Examples
    --------
    >>> import hydra
    >>> cfg = hydra.HydraConfig(structure="vandermonde_like", k=4, pool_size=3072,
    ...                         fixed_ratio=0.5, target_modules=["query", "value"])
    >>> cfg.n_fixed, cfg.n_trainable
    (1536, 1536)
    >>> hydra.HydraConfig(k=0, target_modules=["query"])
    Traceback (most recent call last):
    ...
    ValueError: `k` must be an integer >= 1; got 0
    >>> cfg.scale = float("nan")
    Traceback (most recent call last):
    ...
    ValueError: `scale` must be finite; got nan
    >>> cfg.scale
    1.0
    """

    structure: str = "toeplitz"
    k: int = 4
    rank: int = 1
    pool_size: int = 768
    fixed_ratio: float = 0.0
    seed: int = 0
    target_modules: TargetModules = None
    scale: float = 1.0
    shared_pool: bool = False
    init_std: float = 0.02
    path: str = "auto"
    modules_to_save: Optional[List[str]] = None

    def __post_init__(self):
        _check_choice(self.structure, "structure", HYDRA_STRUCTURES)
        self.k = _check_int(self.k, "k", 1)
        self.rank = _check_int(self.rank, "rank", 1)
        self.pool_size = _check_int(self.pool_size, "pool_size", 1)
        self.fixed_ratio = _check_float(self.fixed_ratio, "fixed_ratio")
        if not 0.0 <= self.fixed_ratio < 1.0:
            raise ValueError(f"`fixed_ratio` must be in [0, 1); got {self.fixed_ratio}")
        self.seed = _check_int(self.seed, "seed", 0)
        self.target_modules = _check_targets(self.target_modules)
        self.scale = _check_float(self.scale, "scale")
        if not isinstance(self.shared_pool, bool):
            raise TypeError(f"`shared_pool` must be a bool; got {self.shared_pool!r}")
        self.init_std = _check_float(self.init_std, "init_std")
        if self.init_std <= 0:
            raise ValueError(f"`init_std` must be > 0; got {self.init_std}")
        _check_choice(self.path, "path", PATHS)
        self.modules_to_save = _check_module_names(self.modules_to_save)
        if self.n_fixed >= self.pool_size:
            raise ValueError(
                f"`fixed_ratio` = {self.fixed_ratio!r} fixes all {self.pool_size} pool entries "
                f"(floor(fixed_ratio * pool_size) = {self.n_fixed}), leaving none to train; use "
                f"fixed_ratio <= {(self.pool_size - 1) / self.pool_size!r} or a larger pool_size"
            )
        self._mark_validated()

    @property
    def n_fixed(self):
        """Fixed (frozen, regenerated) pool entries: ``floor(fixed_ratio · pool_size)``."""
        # round() first: 0.7 * 10 = 7.000000000000001 and 0.29 * 100 = 28.999999999999996.
        return math.floor(round(self.fixed_ratio * self.pool_size, 9))

    @property
    def n_trainable(self):
        """Trainable pool entries per pool: ``pool_size - n_fixed`` (always >= 1)."""
        return self.pool_size - self.n_fixed


@dataclass
class LoRAConfig(_ConfigMixin):
    r"""Configuration of the LoRA baseline, :math:`\Delta W = B A` with scale ``alpha / rank``.

    Parameters
    ----------
    rank : int, default 8
        r: ``A`` is r×n (Kaiming-uniform with ``a = sqrt(5)``, as in peft), ``B`` is m×r (zeros).
    alpha : float, default 8.0
        The update is scaled by ``alpha / rank``.
    target_modules : list of str or str
        As in :class:`HydraConfig`.
    seed : int, default 0
        Seeds ``A``'s initialisation (drawn on the CPU from (seed, layer name)).
    path : str, default "auto"
        Accepted for a uniform API; LoRA always computes ``B (A x)``.
    modules_to_save : list of str, optional
        Modules (name suffixes, e.g. ``["classifier"]``) that :func:`hydra.inject` leaves
        trainable and that checkpoints store in full, as peft's ``modules_to_save``.

    Examples
    --------
    >>> import hydra
    >>> hydra.LoRAConfig(rank=4, alpha=8, target_modules=["query"]).scale
    2.0
    """

    rank: int = 8
    alpha: float = 8.0
    target_modules: TargetModules = None
    seed: int = 0
    path: str = "auto"
    modules_to_save: Optional[List[str]] = None

    def __post_init__(self):
        self.rank = _check_int(self.rank, "rank", 1)
        self.alpha = _check_float(self.alpha, "alpha")
        self.target_modules = _check_targets(self.target_modules)
        self.seed = _check_int(self.seed, "seed", 0)
        _check_choice(self.path, "path", PATHS)
        self.modules_to_save = _check_module_names(self.modules_to_save)
        self._mark_validated()

    @property
    def scale(self):
        """``alpha / rank``."""
        return self.alpha / self.rank


@dataclass
class LDRConfig(_ConfigMixin):
    r"""Configuration of the plain-LDR baseline: one m×n LDR matrix per adapted layer.

    Parameters
    ----------
    structure : {"circulant", "toeplitz_like"}, default "circulant"
        ``"circulant"``: :math:`\Delta W = C(c)_{:m,:n}`, a p×p circulant with
        p = max(m, n) (first-column convention), cropped; p trainable numbers, c = 0 at start.
        ``"toeplitz_like"``: rank-r Toeplitz-like matrix with the core's default operator pair
        (:math:`(Z_1, Z_{-1})` square, :math:`(Z_1, Z_0)` rectangular); (m + n) r trainable
        numbers, G = 0 and H random at start.
    rank : int, default 1
        Displacement rank r (``"toeplitz_like"`` only).
    target_modules : list of str or str
        As in :class:`HydraConfig`.
    seed : int, default 0
        Seeds H's initial values.
    scale : float, default 1.0
        Multiplies the update.
    init_std : float, default 0.02
        Standard deviation of H's initial values.
    path : {"auto", "dense", "fft"}, default "auto"
    modules_to_save : list of str, optional
        Modules (name suffixes, e.g. ``["classifier"]``) that :func:`hydra.inject` leaves
        trainable and that checkpoints store in full, as peft's ``modules_to_save``.

    Examples
    --------
    >>> import hydra
    >>> hydra.LDRConfig(structure="toeplitz_like", rank=2, target_modules=["value"]).rank
    2
    """

    structure: str = "circulant"
    rank: int = 1
    target_modules: TargetModules = None
    seed: int = 0
    scale: float = 1.0
    init_std: float = 0.02
    path: str = "auto"
    modules_to_save: Optional[List[str]] = None

    def __post_init__(self):
        _check_choice(self.structure, "structure", LDR_STRUCTURES)
        self.rank = _check_int(self.rank, "rank", 1)
        self.target_modules = _check_targets(self.target_modules)
        self.seed = _check_int(self.seed, "seed", 0)
        self.scale = _check_float(self.scale, "scale")
        self.init_std = _check_float(self.init_std, "init_std")
        if self.init_std <= 0:
            raise ValueError(f"`init_std` must be > 0; got {self.init_std}")
        _check_choice(self.path, "path", PATHS)
        self.modules_to_save = _check_module_names(self.modules_to_save)
        self._mark_validated()


_CONFIG_TYPES = {cls.__name__: cls for cls in (HydraConfig, LoRAConfig, LDRConfig)}


def config_from_dict(data):
    """Rebuild a configuration from :meth:`~HydraConfig.to_dict` output (validated again).

    Parameters
    ----------
    data : dict
        Must hold ``"type"`` (``"HydraConfig"``, ``"LoRAConfig"`` or ``"LDRConfig"``) and the fields.

    Returns
    -------
    HydraConfig or LoRAConfig or LDRConfig

    Examples
    --------
    >>> import hydra
    >>> cfg = hydra.HydraConfig(k=2, target_modules=["q"])
    >>> hydra.config_from_dict(cfg.to_dict()) == cfg
    True
    """
    if not isinstance(data, dict) or data.get("type") not in _CONFIG_TYPES:
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"not an adapter configuration: expected a dict with 'type' in {sorted(_CONFIG_TYPES)}; got {kind!r}"
        )
    cls = _CONFIG_TYPES[data["type"]]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - {"type"})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}")
    return cls(**{k: v for k, v in data.items() if k != "type"})

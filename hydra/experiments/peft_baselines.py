r"""peft's own adapters in the demo harness: LoRA, VeRA, VB-LoRA and C3A, run through peft itself.

Each baseline is a :class:`PeftSpec` (a method name and its options). :func:`inject` hands the
matching peft config to ``peft.get_peft_model``, which replaces the target ``nn.Linear`` layers of
the backbone in place and leaves only the adapter's own parameters trainable; the harness then
trains the same backbone with the same head, data, batches, steps, optimiser and schedule as for
LoRA and HyDRA. peft is an optional extra (``pip install 'ldr-hydra[demo]'``); without it,
:func:`inject` raises ``ModuleNotFoundError`` naming the command.

Trainable numbers for a target ``nn.Linear`` with ``n`` inputs and ``m`` outputs (what
:func:`expected_trainable` returns, summed over the targets):

* ``lora`` (rank ``r``): ``r (m + n)`` per matrix; scale ``alpha / r`` with ``alpha = 2 r``, as
  our LoRA baseline (:class:`hydra.LoRAConfig` with ``alpha = 2 r``);
* ``vera`` (rank ``r``): ``r + m`` per matrix (the scaling vectors :math:`\lambda_d`,
  :math:`\lambda_b`); the shared random matrices ``A`` (r × n) and ``B`` (m × r) are fixed
  (regenerated from ``projection_prng_key``), counted as fixed random numbers;
* ``vblora`` (rank ``r``, ``num_vectors`` vectors of ``vector_length``): one shared bank of
  ``num_vectors · vector_length`` plus ``r (m + n) / vector_length · num_vectors`` logits per
  matrix;
* ``c3a`` (block size ``b``): ``m n / b`` per matrix (block-circulant :math:`\Delta W`).

VeRA's count is fixed by its rank (``r + m`` per matrix), so it matches a budget only when
``r = budget / matrices - m`` is a valid rank; C3A's by its block size, which must divide ``m``
and ``n``.
"""

from __future__ import annotations

__all__ = ["PEFT_METHODS", "PeftSpec", "expected_trainable", "inject"]

#: peft method name -> (peft config class name, the prefix of its trainable parameter names).
PEFT_METHODS = {
    "lora": ("LoraConfig", ("lora_",)),
    "vera": ("VeraConfig", ("vera_lambda_",)),
    "vblora": ("VBLoRAConfig", ("vblora_",)),
    "c3a": ("C3AConfig", ("c3a_",)),
}

_INSTALL = "peft is not installed: pip install 'ldr-hydra[demo]' (or pip install peft==0.21.2)"


class PeftSpec:
    """One peft baseline: the method, its options and the target modules (built lazily).

    Parameters
    ----------
    method : {"lora", "vera", "vblora", "c3a"}
    target_modules : str or list of str
        As peft takes them: a regular expression matched against the full module name, or a
        list of name suffixes.
    seed : int
        Seeds torch's generator before injection (LoRA's ``A``, VB-LoRA's bank and logits,
        C3A's kernels) and is VeRA's ``projection_prng_key``.
    **options
        The method's size options: ``r`` (lora, vera, vblora), ``num_vectors``,
        ``vector_length`` (vblora), ``block_size`` (c3a). Other peft options keep peft's
        defaults, except LoRA's ``lora_alpha = 2 r`` (our LoRA baseline's scale) and no dropout.

    Examples
    --------
    >>> from hydra.experiments.peft_baselines import PeftSpec
    >>> spec = PeftSpec("c3a", ["query", "value"], block_size=192)
    >>> spec.name
    'peft_c3a_b192'
    >>> spec.expected_trainable([(384, 384), (384, 384)])
    1536
    """

    def __init__(self, method, target_modules, seed=0, **options):
        if method not in PEFT_METHODS:
            raise ValueError(f"`method` must be one of {sorted(PEFT_METHODS)}; got {method!r}")
        required = {"lora": ("r",), "vera": ("r",), "vblora": ("r", "num_vectors", "vector_length"), "c3a": ("block_size",)}
        missing = [k for k in required[method] if k not in options]
        if missing:
            raise ValueError(f"peft method {method!r} needs the option(s) {missing}; got {sorted(options)}")
        self.method, self.target_modules, self.seed, self.options = method, target_modules, seed, dict(options)

    @property
    def name(self):
        """Run name: ``peft_<method>_<size>``, e.g. ``peft_vera_r384``."""
        o = self.options
        size = {"lora": f"r{o.get('r')}", "vera": f"r{o.get('r')}", "c3a": f"b{o.get('block_size')}",
                "vblora": f"r{o.get('r')}_{o.get('num_vectors')}x{o.get('vector_length')}"}[self.method]
        return f"peft_{self.method}_{size}"

    def to_dict(self):
        """JSON-ready description (the ``config`` of a result record)."""
        return {"type": "peft", "method": self.method, "target_modules": self.target_modules, "seed": self.seed,
                **self.options}

    def build(self):
        """The peft config object (imports peft)."""
        try:
            import peft
        except ImportError as err:
            raise ModuleNotFoundError(_INSTALL) from err
        cls = getattr(peft, PEFT_METHODS[self.method][0])
        kw = dict(self.options, target_modules=self.target_modules)
        if self.method == "lora":
            kw.setdefault("lora_alpha", 2 * kw["r"])
            kw.setdefault("lora_dropout", 0.0)
        elif self.method == "vera":
            kw.setdefault("projection_prng_key", self.seed)
        return cls(**kw)

    def expected_trainable(self, shapes):
        """Trainable adapter numbers for target matrices of the given (m, n) shapes."""
        return expected_trainable(self.method, self.options, shapes)

    def __repr__(self):
        return f"PeftSpec({self.name!r})"


def expected_trainable(method, options, shapes):
    r"""Trainable numbers of a peft adapter on target matrices with shapes ``[(m, n), ...]``.

    Parameters
    ----------
    method : {"lora", "vera", "vblora", "c3a"}
    options : dict
        The :class:`PeftSpec` options.
    shapes : list of (int, int)
        (out_features, in_features) of every adapted matrix.

    Returns
    -------
    int

    Notes
    -----
    LoRA :math:`\sum r (m + n)`; VeRA :math:`\sum (r + m)`; VB-LoRA
    :math:`N L + \sum r (m + n) N / L` (bank of :math:`N` vectors of length :math:`L`, shared);
    C3A :math:`\sum m n / b`.

    Examples
    --------
    >>> from hydra.experiments.peft_baselines import expected_trainable
    >>> four = [(384, 384)] * 4
    >>> [expected_trainable("lora", {"r": 1}, four), expected_trainable("vera", {"r": 384}, four),
    ...  expected_trainable("vblora", {"r": 4, "num_vectors": 12, "vector_length": 64}, four),
    ...  expected_trainable("c3a", {"block_size": 192}, four)]
    [3072, 3072, 3072, 3072]
    """
    o = options
    if method == "lora":
        return sum(o["r"] * (m + n) for m, n in shapes)
    if method == "vera":
        return sum(o["r"] + m for m, n in shapes)
    if method == "vblora":
        n_vec, length = o["num_vectors"], o["vector_length"]
        return n_vec * length + sum(o["r"] * (m + n) // length * n_vec for m, n in shapes)
    if method == "c3a":
        return sum(m * n // o["block_size"] for m, n in shapes)
    raise ValueError(f"`method` must be one of {sorted(PEFT_METHODS)}; got {method!r}")


def inject(model, spec):
    """Put the peft adapter ``spec`` into ``model`` in place; return the counts.

    ``model``'s parameters must already be frozen. peft's ``get_peft_model`` replaces each target
    ``nn.Linear`` by its adapter layer (the modules stay at their names, so the harness keeps
    calling ``model`` itself) and marks only the adapter's parameters trainable.

    Parameters
    ----------
    model : torch.nn.Module
    spec : PeftSpec

    Returns
    -------
    dict
        ``wrapper`` (the ``PeftModel``: keep it alive; VeRA and VB-LoRA hold their shared tensors
        there), ``trainable`` (distinct trainable numbers), ``fixed`` (VeRA's fixed random
        projections; 0 otherwise), ``shapes`` (out, in of every adapted matrix).

    Raises
    ------
    ModuleNotFoundError
        Without peft (the message names the install command).
    ValueError
        When a trainable parameter is not the adapter's own (its name lacks the method's prefix).
    """
    import torch

    config = spec.build()
    torch.manual_seed(spec.seed)
    import peft

    wrapper = peft.get_peft_model(model, config)
    prefixes = PEFT_METHODS[spec.method][1]
    seen, trainable, shapes = set(), 0, []
    for name, p in wrapper.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            if not any(pref in name for pref in prefixes):
                raise ValueError(f"peft {spec.method}: parameter {name!r} is trainable but is not the adapter's own")
            trainable += p.numel()
    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if isinstance(base, torch.nn.Linear):
            shapes.append(tuple(base.weight.shape))
    fixed = 0
    if spec.method == "vera":
        fixed = sum(b.numel() for d in (wrapper.base_model.vera_A, wrapper.base_model.vera_B) for b in d.values())
    return {"wrapper": wrapper, "trainable": trainable, "fixed": fixed, "shapes": shapes}

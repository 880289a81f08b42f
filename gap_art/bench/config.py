"""The study's configuration: presets, overrides, validation, and TOML/JSON files."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gap_art.attacks import ATTACKS, BACKENDS, check_backend
from gap_art.bench.pool_sources import POOL_SOURCES
from gap_art.bench.threats import check_threat_model
from gap_art.data import DATASETS, DatasetInfo, DataSpec
from gap_art.data.files import DEFAULT_EPS
from gap_art.defences.art_builtin import ART_DEFENCES
from gap_art.defences.methods import parse_method
from gap_art.errors import ParameterError
from gap_art.models import MODELS, check_arch, parse_arch_kwargs
from gap_art.runtime import check_device, check_precision
from gap_art.settings import (
    CONVERGENCE,
    FINETUNE_PARAMS,
    GAP_EPS,
    GAP_EPS_STEP,
    FinetuneSpec,
    default_eps_step,
)
from gap_art.validation import (
    check_bool,
    check_choice,
    check_choices,
    check_compression,
    check_int,
    check_numbers,
    check_range,
    params_named,
)

DEFAULT_DEFENCES = ["feature-squeezing", "spatial-smoothing", "jpeg", "distillation", "madry-pgd", "fbf"]
"""ART's defences compared against by default: 3 preprocessors, a transformer, 2 trainers."""

ROBUST_DEFENCES = ("fbf", "madry-pgd")
"""ART's adversarial trainers the ``robust`` attacker may train with."""

DEFAULT_POOL_SOURCES = ["replicas", "bootstrap", "independent", "robust"]
DEFAULT_METHODS = ["gap-grad", "gap-taylor", "random", "magnitude", "taylor", "activation"]


class ConfigError(ParameterError):
    """A bench setting is unknown or out of range; the message names it."""


@dataclass
class BenchConfig:
    """Everything that determines a study. Each field is one CLI override.

    :param dataset: Dataset name (``digits``, ``fashion-mnist``, ``mnist``, ``cifar10``).
    :param arch: Architecture: a registry or torchvision name, ``timm:NAME`` or your own
        ``package.module:Name`` (``model`` in older config files).
    :param methods: Methods by name (see :mod:`gap_art.defences.methods`): a pruning criterion
        (``gap-grad``, ``magnitude``, ...) in global scope, optionally ``+iter`` (in ``rounds``)
        and a hardening (``+tat``, ``+gal``, ...); ``gap-iter`` = ``gap-grad+iter``.
    :param compression: Compression ratios (>= 1; 1: the unpruned arm) applied with every method.
    :param attacks: Attacks crafted on the source (``fgsm``, ``pgd``, ``cw``, ...).
    :param eps: L-inf budget; ``None`` uses the dataset's suggestion.
    :param gap_eps: Budgets of GAP's own calibration attack (PGD, 10 steps of ``gap_eps / 4``);
        ``None``: the reference's 2/255 of the input range (step 0.001). GAP rows record theirs.
    :param defences: ART built-in defences to compare with (registry names, see
        :data:`gap_art.defences.art_builtin.ART_DEFENCES`).
    :param int8: Also evaluate int8 versions of the dense and every pruned model.
    :param seeds: One full study per seed (training, pruning, attack random starts).
    :param epochs: Training epochs of the source model.
    :param finetune_epochs: Fine-tuning epochs after pruning; the maximum with early stopping.
    :param finetune_patience: Fine-tune every pruned model (and ART's adversarial trainers) to
        convergence: stop after this many epochs without a better clean accuracy on the
        validation split and keep the best epoch; ``None`` trains every epoch.
    :param validation_fraction: Size of the validation split, as a share of the training
        set's: rows of the official training split that no model of the study trains on,
        drawn with ``data_seed`` before anything is trained; every selection (early
        stopping, budgets) reads them, never the test split.
    :param prune_classifier: Also prune the layer producing the logits (off, as the reference).
    :param rounds: Rounds of the ``+iter`` methods (each fine-tuned as above).
    :param defence_epochs: Epochs of ART's trained defences (distillation, adversarial training).
    :param n_train: Training examples (all when ``None``).
    :param n_test: Test examples attacked (a seeded subset of the test split).
    :param n_calibration: Calibration examples for GAP and the data-driven baselines.
    :param whitebox_attacks: Attacks also run white-box on each differentiable target (int8
        targets: white-box on their float parent, transferred, labelled ``surrogate``); one
        not among ``attacks`` also transfers from the dense model only (``whitebox_only``);
        by default PGD and Auto-PGD on the DLR margin loss (it does not stall where PGD does).
    :param autoattack_n: Also run AutoAttack (L-inf, at ``eps``, on ``attack_backend``) white-box on a
        seeded subsample of this many of each seed's test images, on every target attacked
        white-box under the primary attack (``autoattack_accuracy``; 0: not run).
    :param threat_models: Who crafts the examples (see :data:`gap_art.bench.threats.THREATS`;
        ``replicas-K`` averages K replicas; ``all`` on the command line runs every named one).
    :param independent_arch: Architecture of the ``independent-arch`` attacker's model;
        ``None`` picks one unlike ``arch`` for the input size (``mlp`` up to 28x28, a VGG
        against a ResNet at 32x32; see :func:`gap_art.models.independent_arch`).
    :param robust_defence: The ART adversarial trainer (``fbf`` or ``madry-pgd``) the ``robust``
        attacker fine-tunes their own dense model with, at ``eps`` for ``defence_epochs``.
    :param replicas: How many replicas (each with its own attacker seed) the ``replicas``
        attacker averages the logits of (``replicas-K`` in ``threat_models`` names K itself).
    :param pool_sources: What a ``+pool`` target trains against beside M (none: M alone):
        ``replicas`` (``pool_replicas`` of its method hardened with ``+tat``, other seeds),
        ``bootstrap`` (a replica of the ``+pool`` pipeline itself, trained against the others),
        ``independent`` (a dense model of ``arch``, another seed), ``independent-arch`` (of
        ``independent_arch``) and ``robust`` (M trained by ``robust_defence``).
    :param pool_replicas: How many of its own replicas ``replicas`` in ``pool_sources`` means.
    :param curve_eps: Multiples of ``eps`` for security curves (accuracy against eps).
    :param training_curves: Hardened and pretrained methods (``+tat``, ``+pool``, ``A>B``) and
        ART's adversarial trainers record their full training curve on the validation rows
        (white-box, each attacker's model, the replica at the same epoch) and keep each epoch's
        model in the cache.
    :param curve_budgets: Clean-accuracy costs (0.02: two points below the dense model) within which
        each training curve's epoch is chosen on validation, a target of its own (``<target>~2pt``).
    :param sanity_checks: Run the attack sanity checks on each seed's source.
    :param cw_kappa: CW's confidence margin (transfer and white-box). At 0 its examples sit on
        the boundary; Carlini and Wagner's 20 is often not reached in 50 steps. CW is L2: eps does
        not bound it. A margin runs on ART's CW (torchattacks' ignores it). It sets the margin of
        every attack whose recipe declares one (:attr:`~gap_art.attacks.AttackRecipe.margin`).
    :param attack_backend: ``torchattacks`` or ``art``.
    :param split: Evaluate on the ``test`` split (default) or ``train``.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    :param precision: ``float32``, or ``bfloat16``: training and crafting under bfloat16 autocast,
        opt-in where the CPU (AVX512-BF16 or AMX) or GPU has it; recorded with each task.
    :param data_dir: Where datasets are read from (see :func:`gap_art.data.load_dataset`).
    :param data: Your own data instead of ``dataset``: an ImageFolder folder (``train/`` and
        ``test/`` or ``val/``) or an ``.npz`` (see :func:`gap_art.data.load_files`).
    :param input_size: Height and width your images are resized to.
    :param mean: Per-channel normalisation mean, applied as ART preprocessing (with ``std``).
    :param std: Per-channel normalisation standard deviation.
    :param arch_kwargs: Keyword arguments of ``arch`` as a JSON object.
    :param data_seed: Seed of the train/test subsets (fixed across model seeds).
    :param source_checkpoint: Run the study on this trained model (a gap-art checkpoint, or a
        plain ``state_dict`` of ``arch``) instead of training one: every seed shares it, so
        seeds vary calibration, fine-tuning and the attacker's own models only. A gap-art
        checkpoint's architecture must be ``arch``.
    :param primary: The study's primary comparisons, named before it runs, each
        ``<target> vs <target>: <attack> from <attacker>`` or ``<target> vs <target>: worst
        attacker`` (``gap-grad@4x vs random@4x: pgd from dense``): the verdict's "A beats B"
        comes only from these, each tested across seeds and Holm-corrected over them alone.
        ``None``: the default family of the methods (see
        :func:`gap_art.bench.comparisons.default_comparisons`); empty: none.
    :param targets: Set by ``gap-art evaluate``: the names of the user's files it compared
        (then ``methods`` is unused).
    """

    dataset: str = "digits"
    arch: str = "small-cnn"
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    compression: list[float] = field(default_factory=lambda: [2.0, 4.0, 8.0])
    attacks: list[str] = field(default_factory=lambda: ["fgsm", "pgd", "cw"])
    eps: float | None = None
    gap_eps: list[float] | None = None
    defences: list[str] = field(default_factory=lambda: list(DEFAULT_DEFENCES))
    int8: bool = True
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = 30
    finetune_epochs: int = CONVERGENCE.epochs
    finetune_patience: int | None = CONVERGENCE.patience
    validation_fraction: float = 0.1
    prune_classifier: bool = False
    rounds: int = 3
    defence_epochs: int = 3
    n_train: int | None = None
    n_test: int | None = None
    n_calibration: int = 512
    whitebox_attacks: list[str] = field(default_factory=lambda: ["pgd", "apgd-dlr"])
    autoattack_n: int = 0
    threat_models: list[str] = field(default_factory=lambda: ["dense"])
    independent_arch: str | None = None
    robust_defence: str = "fbf"
    replicas: int = 3
    pool_sources: list[str] = field(default_factory=lambda: list(DEFAULT_POOL_SOURCES))
    pool_replicas: int = 2
    curve_eps: list[float] = field(default_factory=list)
    training_curves: bool = False
    curve_budgets: list[float] = field(default_factory=list)
    sanity_checks: bool = True
    cw_kappa: float = 0.0
    attack_backend: str = "torchattacks"
    split: str = "test"
    device: str = "auto"
    precision: str = "float32"
    data_dir: str | None = None
    data: str | None = None
    input_size: list[int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    arch_kwargs: str | None = None
    data_seed: int = 0
    source_checkpoint: str | None = None
    primary: list[str] | None = None
    targets: list[str] | None = field(default=None, metadata={"cli": False})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base: BenchConfig | None = None, files: bool = True
    ) -> BenchConfig:
        """Build from a dict (a config file); unknown keys are an error that lists the known ones.
        A number whose ``None`` means something (``n_train``, ...) takes ``"none"`` (TOML has no null).

        :param files: Also check the files it names (data, checkpoint, own-code architecture);
            off to read a finished study's configuration where those files may be gone.
        """
        if "model" in data:  # the architecture's name before 0.2
            warnings.warn("config key 'model' is deprecated: use 'arch'", FutureWarning, stacklevel=2)
            data = {("arch" if key == "model" else key): value for key, value in data.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        nullable = {f.name for f in fields(cls) if f.type in ("int | None", "float | None")}
        data = {key: None if key in nullable and value == "none" else value for key, value in data.items()}
        if isinstance(data.get("gap_eps"), (int, float)):  # one budget, as in a config file
            data = {**data, "gap_eps": [data["gap_eps"]]}
        config = replace(base or cls(), **data)
        config.validate(files)
        return config

    def validate(self, files: bool = True) -> BenchConfig:
        """Check every setting; the first bad one raises :class:`ConfigError` naming it."""
        try:
            self._check(files)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return self

    def _check(self, files: bool = True) -> None:
        if files:
            self.data_spec()
            check_arch(self.arch, sorted(MODELS))
        elif self.data is None:
            check_choice(self.dataset, "dataset", sorted(DATASETS))
        parse_arch_kwargs(self.arch_kwargs)
        if self.targets is not None:  # the user's files, compared by gap-art evaluate
            check_choices(self.targets, "targets", self.targets)
        elif not isinstance(self.methods, list) or not self.methods:
            raise ParameterError(f"methods must list at least one method, got {self.methods!r}")
        for method in self.methods if self.targets is None else []:
            parse_method(method, "methods")
        check_choices(self.attacks, "attacks", ATTACKS.names())
        check_choices(self.whitebox_attacks, "whitebox_attacks", ATTACKS.names(), allow_empty=True)
        check_choices(self.defences, "defences", ART_DEFENCES.names(), allow_empty=True)
        if not isinstance(self.threat_models, list) or not self.threat_models:
            raise ParameterError(f"threat_models must be a non-empty list, got {self.threat_models!r}")
        for threat in self.threat_models:
            check_threat_model(threat, "threat_models")
        if "dense" not in self.threat_models:
            raise ParameterError("threat_models must include 'dense' (the reference the others compare to)")
        if self.independent_arch is not None and files:
            check_arch(self.independent_arch, sorted(MODELS), "independent_arch")
        check_choice(self.robust_defence, "robust_defence", list(ROBUST_DEFENCES))
        check_int(self.replicas, "replicas", 2)
        check_choices(self.pool_sources, "pool_sources", POOL_SOURCES.names(), allow_empty=True)
        check_int(self.pool_replicas, "pool_replicas", 0)
        check_numbers(self.curve_eps, "curve_eps", 0.0, float("inf"))
        check_numbers(self.curve_budgets, "curve_budgets", 0.0, 1.0)
        if self.curve_budgets and self.training_curves is not True:
            raise ParameterError("curve_budgets chooses epochs from training curves: set training_curves too")
        check_choice(self.attack_backend, "attack_backend", list(BACKENDS))
        for attack in dict.fromkeys([*self.attacks, *self.whitebox_attacks]):
            check_backend(attack, self.attack_backend, "attack_backend")
        check_range(self.cw_kappa, "cw_kappa", 0.0, 1e6)
        check_choice(self.split, "split", ["test", "train"])
        check_device(self.device, "device", present=files)
        check_precision(self.precision)
        if not self.compression and self.targets is None:
            raise ParameterError("compression must list at least one ratio")
        for ratio in self.compression:
            check_compression(ratio, "compression")
        span = 1.0  # every dataset is read into [0, 1]
        budgets = [("eps", self.eps)] + [("gap_eps", e) for e in self.gap_eps or []]
        for name, value in budgets:
            if value is not None and (not isinstance(value, (int, float)) or not 0 < value <= span):
                raise ParameterError(f"{name} must be in (0, {span}], got {value!r}")
        if self.gap_eps is not None and not (isinstance(self.gap_eps, list) and self.gap_eps):
            raise ParameterError(f"gap_eps must be a non-empty list of budgets, got {self.gap_eps!r}")
        with params_named(FINETUNE_PARAMS):
            FinetuneSpec(self.finetune_epochs, self.finetune_patience, self.validation_fraction)
        for name in ("int8", "prune_classifier", "training_curves", "sanity_checks"):
            check_bool(getattr(self, name), name)
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ParameterError(f"seeds must be non-negative integers, got {self.seeds!r}")
        check_int(self.rounds, "rounds", 1)
        for name in ("epochs", "defence_epochs", "autoattack_n", "data_seed"):
            check_int(getattr(self, name), name, 0)
        check_int(self.n_calibration, "n_calibration", 1)
        for name in [n for n in ("n_train", "n_test") if getattr(self, n) is not None]:
            check_int(getattr(self, name), name, 1)
        if self.source_checkpoint is not None and files:
            self._check_source_checkpoint()
        if self.primary is not None:
            self._check_primary()

    def _check_primary(self) -> None:
        """Each primary comparison is spelled right and names this study's targets and attacks."""
        from gap_art.bench.comparisons import primary_comparisons  # it reads this module's config

        if not isinstance(self.primary, list) or not all(isinstance(c, str) for c in self.primary):
            raise ParameterError(f"primary must be a list of comparisons, got {self.primary!r}")
        primary_comparisons(self)

    def _check_source_checkpoint(self) -> None:
        """The user's model must load, fit the dataset, and be of architecture ``model``."""
        from gap_art.checkpoint import CheckpointError, load_model

        path = self.source_checkpoint
        if not isinstance(path, str):
            raise ParameterError(f"source_checkpoint must be a file path, got {path!r}")
        try:
            _, arch = load_model(path, self.dataset_info(), self.arch, parse_arch_kwargs(self.arch_kwargs))
        except CheckpointError as error:
            raise ParameterError(f"source_checkpoint: {error}") from None
        if arch != self.arch:
            raise ParameterError(f"arch must be the checkpoint's architecture {arch!r}, got {self.arch!r}")

    @property
    def attack_eps(self) -> float:
        """The L-inf budget in use: ``eps`` or the dataset's suggestion."""
        if self.eps is not None:
            return self.eps
        return DEFAULT_EPS if self.data is not None else DATASETS[self.dataset].eps

    def data_spec(self) -> DataSpec:
        """Where the study's data comes from: ``data`` (the user's files) or ``dataset``."""
        if self.data is None:
            check_choice(self.dataset, "dataset", sorted(DATASETS))
        return DataSpec.of(self.dataset, self.data, self.data_dir, self.input_size, self.mean, self.std)

    def dataset_info(self) -> DatasetInfo:
        """The study's input shape, classes, budget and normalisation (reads the user's files)."""
        return self.data_spec().info()

    @property
    def data_name(self) -> str:
        """The data in reports: the dataset's name or the user's folder or file."""
        name = Path(self.data).name if self.data is not None else self.dataset
        return name if self.mean is None else f"{name} (normalised)"

    def gap_budgets(self) -> list[tuple[float, float]]:
        """``(eps, eps_step)`` of each GAP calibration attack: the reference's 2/255 and 0.001
        of the input range by default, else each ``gap_eps`` with a quarter step."""
        if self.gap_eps is None:
            low, high = 0.0, 1.0  # every dataset is read into [0, 1]
            return [((high - low) * GAP_EPS, (high - low) * GAP_EPS_STEP)]
        return [(eps, default_eps_step(eps)) for eps in self.gap_eps]

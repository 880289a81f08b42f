"""The tasks of one study, from its :class:`~gap_art.bench.config.BenchConfig`.

Per seed: train the source; per (seed, target): build the target; per (seed, attack, threat
model): craft the examples once on the attacker's model(s); per (seed, target, attack, threat
model, eps): evaluate (a *cell*); per seed, the sanity checks. Per seed, the primary attack is
also crafted on the dense model over the study's validation rows (training rows that no
model of the study trains on, :func:`~gap_art.bench.inputs.study_data`):
targets record their fine-tuning curve and the kept model's point there, and every selection
(the clean-accuracy budgets) reads those, never the test examples. Every spec is typed
(:mod:`gap_art.bench.targets`, :mod:`gap_art.bench.tasks`) and built from
:mod:`gap_art.settings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gap_art.attacks import ATTACKS
from gap_art.bench.attack_roles import primary_attack, whitebox_only
from gap_art.bench.config import BenchConfig
from gap_art.bench.epoch_picks import EpochPickSpec, pick_spec
from gap_art.bench.graph import DepTasks, Graph, Task, TaskSpec
from gap_art.bench.inputs import StudyInputs, file_digest
from gap_art.bench.method_settings import method_specs
from gap_art.bench.pool_sources import build_pool
from gap_art.bench.seeds import attacker_seed, pool_seed
from gap_art.bench.target_names import pruned_target_names, records_curve
from gap_art.bench.target_spec import TargetSpec
from gap_art.bench.targets import ArtPreprocessorSpec, ArtTrainerSpec, DenseSpec, Int8Spec, PrunedSpec
from gap_art.bench.tasks import CellSpec, CraftSpec, SanitySpec, SourceSpec, ValidationCraftSpec
from gap_art.bench.threats import threat_model
from gap_art.bench.training_curves import PUBLIC_ATTACKERS, public_role
from gap_art.defences.art_builtin import ART_DEFENCES, TrainedDefence
from gap_art.defences.methods import trains_on_a_pool
from gap_art.models import independent_arch
from gap_art.settings import AttackSpec, FinetuneSpec, default_eps_step


def _format_ratio(ratio: float) -> str:
    return f"{ratio:g}x"


class _Builder:
    """Adds the tasks of one study to a graph, each once."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.inputs = StudyInputs.of(config)
        self.tasks: dict[str, Task] = {}
        self.cells: list[Task] = []
        self.extras: list[Task] = []

    def make(self, spec: TaskSpec, deps: DepTasks | None = None) -> Task:
        """The task of ``spec`` after ``deps`` (by role) in this study, added once."""
        task = Task.make(spec, self.inputs, deps)
        return self.tasks.setdefault(task.id, task)

    def source(self, seed: int, independent: bool = False, arch: str | None = None) -> Task:
        """The defender's dense model (trained with ``seed``, or the user's checkpoint for
        every seed), or with ``independent`` another one (of ``arch``), always trained: the
        attacker's own, or one in a defender's pool."""
        c = self.config
        data = SourceSpec(c.data or c.dataset, c.n_train, c.data_seed, arch or c.arch)
        if c.source_checkpoint is not None and not independent:
            digest = file_digest(c.source_checkpoint)
            return self.make(replace(data, checkpoint=c.source_checkpoint, checkpoint_sha256=digest))
        return self.make(replace(data, epochs=c.epochs, seed=seed))

    def attack(self, attack: str, eps: float, seed: int) -> AttackSpec:
        """An attack of study seed ``seed``, its random starts drawn from the attacker's seed
        (an attack that takes a confidence margin, as CW does, with the study's, on the backend
        that honours it)."""
        backend, margin = self.config.attack_backend, dict[str, Any]()
        recipe = ATTACKS.get(attack)
        if recipe.margin is not None and self.config.cw_kappa > 0:
            backend, margin = recipe.margin_backend or backend, {recipe.margin: self.config.cw_kappa}
        step = default_eps_step(eps)
        return AttackSpec(attack, backend, eps, step, seed=attacker_seed(seed), **margin)

    def craft(self, attack: AttackSpec, seed: int, threat: str, sources: tuple[Task, ...]) -> Task:
        spec = CraftSpec(seed, attack, threat, self.config.n_test, self.config.split)
        return self.make(spec, {"model": sources})

    def validation_craft(self, attack: str, seed: int, source: Task, threat: str = "dense") -> Task:
        """``attack`` crafted on ``source`` (the dense model, or ``threat``'s own) over the study's
        validation rows: the defender's measurement (random starts from the defender's seed)."""
        eps = self.config.attack_eps
        spec = AttackSpec(attack, self.config.attack_backend, eps, default_eps_step(eps), seed=seed)
        return self.make(ValidationCraftSpec(seed, spec, threat), {"model": source})

    def pruned(self, method: str, ratio: float, seed: int, source: Task, validation: Task) -> list[Task]:
        """One pruned target per GAP budget (one for criteria without an attack)."""
        specs = method_specs(self.config, method, ratio, seed)
        names = pruned_target_names(self.config, method, ratio)
        targets = []
        for settings, name in zip(specs, names, strict=True):
            spec = PrunedSpec(seed, name, method, settings, records_curve(self.config, settings))
            extra = self.curve_sources(spec, source) if spec.curves else {}
            targets.append(self.with_pool(spec, source, validation, extra))
        return targets

    def curve_sources(self, spec: TargetSpec, source: Task) -> dict[str, Task]:
        """What a training curve also transfers from at each epoch: the primary attack on the
        validation rows from each of the study's attackers' own models, and the
        replica an attacker would train the same way (``replica``, the model at the same epoch)."""
        attack, models = primary_attack(self.config), self.attackers(spec.seed, source)
        public = {
            public_role(kind): self.validation_craft(attack, spec.seed, models[kind], kind)
            for kind in PUBLIC_ATTACKERS
            if kind in self.config.threat_models
        }
        return {**public, "replica": self.with_pool(spec.replica(attacker_seed(spec.seed)), source)}

    def with_pool(
        self,
        spec: TargetSpec,
        source: Task,
        validation: Task | None = None,
        extra: DepTasks | None = None,
    ) -> Task:
        """The target of ``spec`` built from ``source`` (scored on ``validation`` if given,
        after the ``extra`` dependencies), with its pool of static sources when its method
        hardens against a pool (``+pool``, ``+pool-fgsm``, ``+pool-trades``)."""
        deps: dict[str, Task | Sequence[Task]] = {"source": source, **(extra or {})}
        if validation is not None:
            deps["validation"] = validation
        if isinstance(spec, PrunedSpec) and trains_on_a_pool(spec.settings.hardening):
            deps["pool"] = self.pool_sources(spec, source)
        return self.make(spec, deps)

    def pool_sources(self, spec: PrunedSpec, source: Task) -> tuple[Task, ...]:
        """The pool a ``+pool`` target trains against beside ``source`` (M): the sources
        ``pool_sources`` names (:mod:`gap_art.bench.pool_sources`), each with a pool seed of the
        target's seed. The dense and robust models are shared by every ``+pool`` target of the
        seed."""
        return build_pool(_PoolModels(self, spec, source), self.config.pool_sources)

    def replica(self, target: Task, source: Task, member: int = 0) -> Task:
        """The target's own method, ratio and settings run on ``source`` with the attacker's
        seed (their calibration subset, tie-breaking and fine-tuning order); for an epoch
        chosen from a curve, the replica's curve at the epoch the defender kept."""
        spec = target.spec
        assert isinstance(spec, TargetSpec)
        seed = attacker_seed(spec.seed, member)
        if isinstance(spec, EpochPickSpec):
            curve = self.replica(self.tasks[target.dep("curve")], source, member)
            return self.make(spec.replica(seed), {"curve": curve, "chosen": target})
        return self.with_pool(spec.replica(seed), source)

    def attackers(self, seed: int, source: Task) -> dict[str, Task]:
        """The attacker's own dense models in study seed ``seed`` (a task runs only if a
        cell needs it): ``independent`` (our architecture), ``independent-arch`` and ``robust``
        (their independent model adversarially trained by ART)."""
        own = attacker_seed(seed)
        independent = self.source(own, independent=True)
        return {
            "independent": independent,
            "independent-arch": self.source(own, independent=True, arch=self.independent_arch()),
            "robust": self.robust(own, independent, "robust attacker"),
            "dense": source,
        }

    def independent_arch(self) -> str:
        """The architecture of ``independent-arch`` models: the config's, or one unlike ``arch``."""
        c = self.config
        return c.independent_arch or independent_arch(c.arch, c.dataset_info().input_shape)

    def robust(self, seed: int, source: Task, label: str) -> Task:
        """``source`` adversarially trained by ART's ``robust_defence`` with ``seed``."""
        spec = _art_defence_spec(self.config, self.config.robust_defence, seed)
        return self.make(replace(spec, name=f"{label} ({self.config.robust_defence})"), {"source": source})

    def cell(self, target: Task, craft: Task, whitebox: bool, autoattack_n: int = 0) -> None:
        assert isinstance(target.spec, TargetSpec) and isinstance(craft.spec, CraftSpec)
        c = craft.spec
        spec = CellSpec(c.seed, target.spec.name, c.attack, c.threat_model, whitebox, autoattack_n)
        self.cells.append(self.make(spec, {"target": target, "craft": craft}))


def build_graph(config: BenchConfig) -> Graph:
    """Every task of the study described by ``config``."""
    b = _Builder(config)
    eps, primary = config.attack_eps, primary_attack(config)
    for seed in config.seeds:
        source = b.source(seed)
        dense = {a: b.craft(b.attack(a, eps, seed), seed, "dense", (source,)) for a in config.attacks}
        validation = b.validation_craft(primary, seed, source)
        targets, parents = _targets(b, seed, source, validation)
        if config.sanity_checks:
            spec = SanitySpec(
                eps, tuple(config.attacks), config.attack_backend, config.n_test, config.split, seed
            )
            b.extras.append(b.make(spec, {"source": source}))
        attackers = b.attackers(seed, source)
        for target in targets:
            for attack in config.attacks:
                whitebox = attack in config.whitebox_attacks
                checked = config.autoattack_n if whitebox and attack == primary else 0
                b.cell(target, dense[attack], whitebox, checked)
                for threat in config.threat_models:
                    if threat == "dense":
                        continue
                    against = _TargetAttackers(b, parents.get(target.id), attackers)
                    sources = threat_model(threat).sources(against)
                    if sources:
                        b.cell(target, b.craft(b.attack(attack, eps, seed), seed, threat, sources), False)
            for attack in whitebox_only(config):
                b.cell(target, b.craft(b.attack(attack, eps, seed), seed, "dense", (source,)), True)
            for multiplier in (m for m in config.curve_eps if m != 1.0):
                for attack in config.attacks:  # a security curve per attack
                    curve = b.craft(b.attack(attack, multiplier * eps, seed), seed, "dense", (source,))
                    b.cell(target, curve, attack in config.whitebox_attacks)
    return Graph(b.tasks, b.cells, b.extras)


class _PoolModels:
    """The :class:`~gap_art.bench.pool_sources.PoolModels` of one ``+pool`` target ``spec``."""

    def __init__(self, b: _Builder, spec: PrunedSpec, source: Task) -> None:
        self._builder, self._spec, self._source = b, spec, source
        self.replicas = b.config.pool_replicas

    def seed(self, offset: int) -> int:
        return pool_seed(self._spec.seed, offset)

    def hardened_replica(self, seed: int) -> Task:
        settings = replace(self._spec.settings, hardening="tat", seed=seed)
        name = f"{settings.name}@{_format_ratio(settings.compression)}"
        spec = replace(self._spec, seed=seed, name=name, method=settings.name, settings=settings)
        return self._builder.make(spec, {"source": self._source})

    def dense(self, seed: int, other_arch: bool = False) -> Task:
        arch = self._builder.independent_arch() if other_arch else None
        return self._builder.source(seed, independent=True, arch=arch)

    def robust(self, seed: int) -> Task:
        return self._builder.robust(seed, self._source, "pool robust model")

    def pipeline_replica(self, seed: int, pool: tuple[Task, ...]) -> Task:
        return self._builder.make(self._spec.replica(seed), {"source": self._source, "pool": pool})


class _TargetAttackers:
    """The :class:`~gap_art.bench.threats.AttackerModels` against one target: the seed's dense
    models, and replicas of ``pruned`` (the target's own model where its method can be rerun;
    for an int8 target its float parent) built on the model an attacker holds."""

    def __init__(self, b: _Builder, pruned: Task | None, attackers: dict[str, Task]) -> None:
        self._builder, self._pruned, self._attackers = b, pruned, attackers
        self.replicas = b.config.replicas

    def own(self, kind: str) -> Task:
        return self._attackers[kind]

    def replica(self, on: Task, member: int = 0) -> Task | None:
        return None if self._pruned is None else self._builder.replica(self._pruned, on, member)


def _targets(b: _Builder, seed: int, source: Task, validation: Task) -> tuple[list[Task], dict[str, Task]]:
    """The dense model, every pruned model, their int8 versions, ART's defences (each float
    target scored on the ``validation`` craft too) and the epochs chosen from training curves
    within each of ``curve_budgets`` (:mod:`gap_art.bench.epoch_picks`).

    Also returns, for each target whose method an attacker can rerun on M (a pruned model and
    its int8 version, an ART trained defence), the target that method built: what a replica
    copies.
    """
    config = b.config
    dense = b.make(DenseSpec(seed, "dense", "dense"), {"source": source, "validation": validation})
    floats = [dense]
    parents: dict[str, Task] = {}
    for method in config.methods:
        for ratio in config.compression:
            for pruned in b.pruned(method, ratio, seed, source, validation):
                parents[pruned.id] = pruned
                floats.append(pruned)
    targets = list(floats)
    if config.int8:
        for parent in floats:
            float_spec = parent.spec
            assert isinstance(float_spec, TargetSpec)
            prune_classifier = isinstance(float_spec, PrunedSpec) and float_spec.settings.prune_classifier
            name = float_spec.name
            spec = Int8Spec(seed, f"{name}+int8", f"{float_spec.method}+int8", name, prune_classifier)
            quantized = b.make(spec, {"source": source, "parent": parent})
            if parent.id in parents:
                parents[quantized.id] = parent
            targets.append(quantized)
    for defence in config.defences:
        trainer = _art_defence_spec(config, defence, seed, records_curve(config, defence))
        curves = isinstance(trainer, ArtTrainerSpec) and trainer.curves
        extra = b.curve_sources(trainer, source) if curves else {}
        target = b.make(trainer, {"source": source, "validation": validation, **extra})
        if issubclass(ART_DEFENCES.get(defence), TrainedDefence):
            parents[target.id] = target  # an attacker can rerun ART's training on M too
        targets.append(target)
    for curve in [t for t in targets if isinstance(t.spec, (PrunedSpec, ArtTrainerSpec)) and t.spec.curves]:
        for budget in config.curve_budgets:
            assert isinstance(curve.spec, TargetSpec)
            pick = b.make(
                pick_spec(curve.spec, budget), {"curve": curve, "dense": dense, "validation": validation}
            )
            parents[pick.id] = pick
            targets.append(pick)
    return targets, parents


def _art_defence_spec(config: BenchConfig, name: str, seed: int, curves: bool = False) -> TargetSpec:
    """A preprocessor wraps the source; a trainer trains from scratch for the source's epochs
    (distillation) or fine-tunes the source for ``defence_epochs``, at eps if adversarial (with
    its training curve if ``curves``)."""
    defence = ART_DEFENCES.get(name)
    if not issubclass(defence, TrainedDefence):
        return ArtPreprocessorSpec(seed, f"art:{name}", name)
    training = FinetuneSpec(
        config.epochs if defence.from_scratch else config.defence_epochs,
        config.finetune_patience if defence.adversarial else None,
        config.validation_fraction,
        seed=seed,
    )
    eps = config.attack_eps if defence.adversarial else None
    return ArtTrainerSpec(seed, f"art:{name}", name, training, eps, curves)

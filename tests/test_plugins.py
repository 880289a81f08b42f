"""Adding a criterion, an attack or an ART defence is one registered class: it then works in
the Python transformers, `gap-art list`, `gap-art bench --methods/--attacks/--defences` and a
bench run, without touching another file."""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import EntryPoint

import torch
import torchattacks
from art.attacks import evasion
from art.defences.preprocessor import SpatialSmoothing
from click.testing import CliRunner

from gap_art.attacks import ATTACKS, AttackRecipe, make_attack
from gap_art.bench import preset, run
from gap_art.cli import main
from gap_art.defences import IrregularPruning
from gap_art.defences.art_builtin import ART_DEFENCES, PreprocessorDefence
from gap_art.pruning import importance, prunable_parameters
from gap_art.registry import Registry


class SquaredMagnitude(importance.Importance):
    description = "throwaway: remove the smallest w^2"

    def score(self, inputs: importance.ScoringInputs) -> list[torch.Tensor]:
        return [getattr(m, n).detach() ** 2 for m, n in inputs.targets]


class PlainFGSM(AttackRecipe):
    description = "throwaway: FGSM under another name"
    iterative = False

    def torchattacks(self, module, s):
        return torchattacks.FGSM(module, eps=s.eps)

    def art(self, classifier, s):
        return evasion.FastGradientMethod(classifier, eps=s.eps)


class MarginL2(AttackRecipe):
    description = "throwaway: CW under another name"
    norm = "l2"
    follows_study_steps = False
    extras = {"c": 10.0, "kappa": 0.0, "lr": 0.1}
    margin, margin_backend = "kappa", "art"

    def torchattacks(self, module, s):
        return torchattacks.CW(module, c=s.extras["c"], steps=s.steps, lr=s.extras["lr"])

    def art(self, classifier, s):
        e = s.extras
        return evasion.CarliniL2Method(
            classifier, confidence=e["kappa"], learning_rate=e["lr"], max_iter=s.steps, initial_const=e["c"]
        )


class WideSmoothing(PreprocessorDefence):
    description = "throwaway: 5x5 median filter"

    def preprocessor(self, clip_values):
        return SpatialSmoothing(window_size=5, channels_first=True, clip_values=clip_values)


def _registered(registry: Registry, name: str, cls: type):
    registry.register(name)(cls)
    return name


def test_registered_plugins_run_everywhere(tmp_path, classifier, digits):
    names = (
        _registered(importance.IMPORTANCE, "squared-magnitude", SquaredMagnitude),
        _registered(ATTACKS, "plain-fgsm", PlainFGSM),
        _registered(ART_DEFENCES, "wide-smoothing", WideSmoothing),
    )
    try:
        x, y = digits.numpy("train")
        pruned = IrregularPruning(classifier, compression=4, criterion="squared-magnitude")(x)
        targets = prunable_parameters(pruned.model)
        assert sum(int((m.weight == 0).sum()) for m, _ in targets) > 0
        assert make_attack("plain-fgsm", classifier, eps=0.1).generate(x[:8], y[:8]).shape == x[:8].shape

        listing = CliRunner().invoke(main, ["list"]).output
        assert all(name in listing for name in names) and "throwaway: 5x5 median filter" in listing
        wide = {"terminal_width": 400, "max_content_width": 400}
        assert "squared-magnitude" in CliRunner().invoke(main, ["bench", "--help"], **wide).output

        config = replace(
            preset("quick"),
            methods=["squared-magnitude"],
            compression=[4.0],
            attacks=["plain-fgsm"],
            whitebox_attacks=[],
            defences=["wide-smoothing"],
            int8=False,
            sanity_checks=False,
            epochs=3,
            finetune_epochs=0,
            n_test=60,
        )
        rows = run(config, out=tmp_path / "run", progress=False).rows
        assert {r["target"] for r in rows} == {"dense", "squared-magnitude@4x", "art:wide-smoothing"}
        assert all(r["attack"] == "plain-fgsm" and not r["error"] for r in rows)
        squeezed = next(r for r in rows if r["target"] == "squared-magnitude@4x")
        assert squeezed["compression"] == __import__("pytest").approx(4.0, rel=1e-3)

        result = CliRunner().invoke(
            main,
            [
                "bench",
                "--methods",
                "squared-magnitude",
                "--compression",
                "4",
                "--attacks",
                "plain-fgsm",
                "--defences",
                "wide-smoothing",
                "--whitebox-attacks",
                "none",
                "--no-sanity-checks",
                "--no-int8",
                "--epochs",
                "3",
                "--finetune-epochs",
                "0",
                "--n-test",
                "60",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ],  # fmt: skip
        )
        assert result.exit_code == 0, result.output
    finally:
        importance.IMPORTANCE.unregister(names[0])
        ATTACKS.unregister(names[1])
        ART_DEFENCES.unregister(names[2])


def test_an_attacks_norm_and_margin_come_from_its_recipe():
    """No module tests for "cw": an L2 attack with a margin, registered under any name, gets the
    study's margin on the backend that honours it, its norm in its label, and no place in an
    L-inf minimum."""
    from gap_art.attacks import is_linf
    from gap_art.bench import build_graph
    from gap_art.bench.attack_roles import attack_label

    name = _registered(ATTACKS, "margin-l2", MarginL2)
    try:
        config = replace(preset("quick"), attacks=["pgd", name], cw_kappa=5.0, whitebox_attacks=[], seeds=[0])
        specs = [t.spec.attack for t in build_graph(config).tasks.values() if t.kind == "craft"]
        margined = [spec for spec in specs if spec.attack == name]
        assert margined and all(spec.backend == "art" and spec.kappa == 5.0 for spec in margined)
        assert all(spec.kappa is None for spec in specs if spec.attack == "pgd")
        assert (
            attack_label(name, config) == "MARGIN-L2 (L2, kappa 5)" and attack_label("pgd", config) == "PGD"
        )
        assert not is_linf(name) and is_linf("pgd")
    finally:
        ATTACKS.unregister(name)


def test_a_registered_threat_model_is_one_class():
    """An attacker kind is one registered class: the config accepts it, the CLI lists it, and
    the study crafts on the models it picks (here M and the replica, for every target whose
    method an attacker can rerun)."""
    from gap_art.bench import BenchConfig, build_graph
    from gap_art.bench.threats import DENSE, THREATS, ThreatModel

    class DenseAndReplica(ThreatModel):
        description = "throwaway: M and the replica"

        def sources(self, models):
            replica = models.replica(models.own(DENSE))
            return () if replica is None else (models.own(DENSE), replica)

    name = _registered(THREATS, "dense-and-replica", DenseAndReplica)
    try:
        config = BenchConfig(methods=["random"], compression=[4.0], attacks=["fgsm"], defences=["jpeg"],
                             threat_models=["dense", name], int8=False, sanity_checks=False)  # fmt: skip
        graph = build_graph(config)
        crafts = {
            c.spec.target: graph.tasks[c.dep("craft")] for c in graph.cells if c.spec.threat_model == name
        }
        assert set(crafts) == {"random@4x"}  # the dense model and a preprocessor have no method to rerun
        assert len(crafts["random@4x"].deps_playing("model")) == 2
        wide = {"terminal_width": 400, "max_content_width": 400}
        assert name in CliRunner().invoke(main, ["bench", "--help"], **wide).output
        assert "throwaway: M and the replica" in CliRunner().invoke(main, ["list"]).output
    finally:
        THREATS.unregister(name)


def test_a_registered_pool_source_is_one_class():
    """A kind of pool source is one registered class: `pool_sources` accepts it and every
    `+pool` target trains against its members, after the built-in first-round sources."""
    from gap_art.bench import BenchConfig, build_graph
    from gap_art.bench.pool_sources import POOL_SOURCES, PoolSource

    class SecondIndependent(PoolSource):
        description = "throwaway: another independent dense model"

        def members(self, models, first_round):
            return (models.dense(models.seed(models.replicas + 4)),)

    name = _registered(POOL_SOURCES, "second-independent", SecondIndependent)
    try:
        config = BenchConfig(methods=["magnitude+pool"], compression=[4.0], attacks=["fgsm"], defences=[],
                             pool_sources=["independent", name], int8=False, sanity_checks=False)  # fmt: skip
        graph = build_graph(config)
        (pooled,) = [t for t in graph.tasks.values() if t.kind == "target" and t.deps_playing("pool")]
        pool = [graph.tasks[d].spec for d in pooled.deps_playing("pool")]
        assert [spec.kind for spec in pool] == ["source", "source"] and pool[0].seed != pool[1].seed
    finally:
        POOL_SOURCES.unregister(name)


def test_an_entry_point_adds_a_criterion(monkeypatch):
    registry: Registry = Registry("pruning criterion", "gap_art.importance")
    point = EntryPoint("squared-magnitude", f"{__name__}:SquaredMagnitude", "gap_art.importance")
    monkeypatch.setattr(
        "gap_art.registry.entry_points", lambda group: [point] if group == registry.group else []
    )
    assert registry.names() == ["squared-magnitude"]
    assert registry.get("squared-magnitude") is SquaredMagnitude


def test_unknown_names_suggest_the_closest():
    import pytest

    with pytest.raises(
        ValueError, match=r"method must be one of .*got 'magnitud' \(did you mean 'magnitude'\?\)"
    ):
        importance.IMPORTANCE.get("magnitud", "method")


def test_a_new_module_in_a_catalogue_package_registers_itself(tmp_path, monkeypatch):
    package = tmp_path / "catalogue_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from gap_art.registry import Registry, import_submodules\n"
        "ITEMS = Registry('item', 'gap_art.test-none')\n"
        "import_submodules(__name__, __path__)\n"
    )
    (package / "extra.py").write_text(
        "from catalogue_pkg import ITEMS\n\n@ITEMS.register('extra')\nclass Extra:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__("catalogue_pkg")
    assert module.ITEMS.names() == ["extra"] and module.ITEMS.get("extra").name == "extra"

"""Pool adversarial fine-tuning (+pool): training against a pool of static sources an attacker
could use, the batch's source picked uniformly, by weight or by loss, worst-source early
stopping, and the defender's pool in the bench, built with seeds of its own."""

from __future__ import annotations

import runpy
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gap_art.bench import BenchConfig, ConfigError, build_graph
from gap_art.bench.seeds import attacker_seed, pool_seed
from gap_art.bench.targets import ArtTrainerSpec, PrunedSpec
from gap_art.bench.tasks import SourceSpec
from gap_art.classifiers import to_art_classifier
from gap_art.defences import PoolAdversarialFinetuning
from gap_art.defences.methods import apply_method, parse_method
from gap_art.defences.pool import pool_objective
from gap_art.models import create_model
from gap_art.settings import AttackSpec
from gap_art.training import RECIPES, train_model

EPS = 0.3


class Recorder(nn.Module):
    """Logits that make one input batch far worse than the others, and remember what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach())
        level = x.flatten(1).mean(1, keepdim=True)  # inputs of value v give the wrong class v-times more
        return self.scale * torch.cat([-level, level], dim=1)


def test_max_loss_sampling_trains_on_the_source_the_model_is_worst_on():
    x = torch.stack([torch.full((4, 1, 2, 2), v) for v in (0.0, 0.1, 0.9, 0.3)], dim=1)  # clean + 3 sources
    y = torch.zeros(4, dtype=torch.long)
    model = Recorder()
    pool_objective("max-loss", None, None)(model, x, y)
    assert torch.equal(model.seen[-1], x[:, 2])  # the 0.9 source has the highest loss
    with torch.random.fork_rng():
        torch.manual_seed(0)
        picks = set()
        for _ in range(30):
            pool_objective("weighted", [0.0001, 0.0001, 1.0], None)(model, x, y)
            picks.add(round(float(model.seen[-1].mean()), 3))
    assert picks == {0.3}  # weight 1 on the third source


def _trained(digits, seed):
    torch.manual_seed(seed)
    model = create_model("small-cnn", digits.info.input_shape, digits.info.nb_classes)
    train_model(model, digits.train, 15, RECIPES["adam"], seed=seed, device="cpu", progress=False)
    return to_art_classifier(model.eval(), digits.info, device="cpu")


@pytest.mark.parametrize("sampling", ["max-loss", "uniform"])
def test_pool_hardening_resists_every_source_it_trained_on(classifier, pruned, digits, sampling):
    from gap_art.attacks import make_attack

    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    other = _trained(digits, 5)
    pool = PoolAdversarialFinetuning(pruned, classifier, extra_sources=[other], sampling=sampling, eps=EPS,
                                     epochs=4, lr=1e-2, seed=0)  # fmt: skip
    hardened = pool(x, y=y)
    assert pool.finetune_record_ is not None and pool.finetune_record_.epochs_run == 4
    for source in (classifier, other):
        x_adv = make_attack("pgd", source, eps=EPS).generate(xt, yt)
        after, before = ((m.predict(x_adv).argmax(1) == yt).mean() for m in (hardened, pruned))
        assert after > before + 0.2
    zeros = [int((m.weight_mask == 0).sum()) for m in hardened.model.modules() if hasattr(m, "weight_mask")]
    assert zeros == [
        int((m.weight_mask == 0).sum()) for m in pruned.model.modules() if hasattr(m, "weight_mask")
    ]


def test_pool_hardening_checks_its_parameters(classifier, pruned):
    with pytest.raises(ValueError, match="sampling must be one of"):
        PoolAdversarialFinetuning(pruned, classifier, sampling="loudest")
    with pytest.raises(ValueError, match=r"weights must give one positive weight per source \(2"):
        PoolAdversarialFinetuning(pruned, classifier, extra_sources=[classifier], weights=[1.0])
    with pytest.raises(ValueError, match="clean_budget"):
        PoolAdversarialFinetuning(pruned, classifier, clean_budget=2.0)
    hardener = PoolAdversarialFinetuning(pruned, classifier, self_attack="fgsm", weights=[1.0, 2.0])
    hardener.set_params(sampling="uniform")
    assert hardener.sampling == "uniform" and "pool" in parse_method("gap-grad+pool").name


@pytest.fixture
def pruned(classifier, digits):
    x, y = digits.numpy("train")
    return apply_method(
        parse_method("magnitude", compression=4.0), classifier, x[:256], y[:256], x, y
    ).classifier


def test_the_pool_is_the_defenders_own_and_the_attackers_replica_builds_its_own():
    config = BenchConfig(
        methods=["magnitude+pool"], compression=[4.0], attacks=["pgd"], defences=[], int8=False, seeds=[2],
        threat_models=["dense", "replica"],
    )  # fmt: skip
    graph = build_graph(config)
    pooled = [
        t
        for t in graph.tasks.values()
        if isinstance(t.spec, PrunedSpec) and t.spec.settings.hardening == "pool"
    ]
    target = next(t for t in pooled if t.spec.seed == 2)
    assert target.roles == ("source", "validation", *["pool"] * 5)
    pool = [graph.tasks[d].spec for d in target.deps_playing("pool")]
    kinds = [type(s).__name__ for s in pool]
    assert kinds == ["PrunedSpec", "PrunedSpec", "PrunedSpec", "SourceSpec", "ArtTrainerSpec"]
    assert [s.settings.hardening for s in pool[:2]] == ["tat", "tat"] and pool[2].settings.hardening == "pool"
    assert [s.seed for s in pool] == [pool_seed(2, k) for k in (0, 1, 4, 2, 3)]
    assert isinstance(pool[3], SourceSpec) and isinstance(pool[4], ArtTrainerSpec) and pool[4].method == "fbf"
    replica = next(t for t in pooled if t.spec.seed == attacker_seed(2))
    assert replica.roles == ("source", *["pool"] * 5)  # an attacker's replica: no validation craft
    theirs = {graph.tasks[d].spec.seed for d in replica.deps_playing("pool")}
    assert theirs == {pool_seed(attacker_seed(2), k) for k in range(5)}
    assert not theirs & {s.seed for s in pool} and 2 not in theirs
    with pytest.raises(ConfigError, match="pool_replicas must be an integer >= 0"):
        BenchConfig(pool_replicas=-1).validate()


def test_pool_with_its_own_fgsm_is_a_method_with_the_same_pool(classifier, pruned, digits):
    """``+pool-fgsm``: the pool hardening with the model's own FGSM as one more source, a
    method of its own (so a study compares it with ``+pool``, paired), built with the same pool."""
    from gap_art.defences.methods import HARDENINGS, trains_on_a_pool

    hardener = HARDENINGS.get("pool-fgsm")(pruned, classifier, epochs=1)
    assert hardener.self_attack == "fgsm" and isinstance(hardener, PoolAdversarialFinetuning)
    assert parse_method("magnitude+pool-fgsm").hardening == "pool-fgsm"
    assert trains_on_a_pool("pool-fgsm") and trains_on_a_pool("pool") and not trains_on_a_pool("tat")
    with pytest.raises(ValueError, match="weights must give one positive weight per source \\(2"):
        HARDENINGS.get("pool-fgsm")(pruned, classifier, sampling="weighted", weights=[1.0])
    config = BenchConfig(
        methods=["magnitude+pool", "magnitude+pool-fgsm"], compression=[4.0], attacks=["pgd"], defences=[],
        int8=False, seeds=[2], threat_models=["dense"],
    )  # fmt: skip
    targets = {
        t.spec.settings.hardening: t
        for t in build_graph(config).tasks.values()
        if isinstance(t.spec, PrunedSpec) and t.spec.seed == 2 and t.spec.settings.hardening
    }
    theirs, ours = targets["pool"].deps_playing("pool"), targets["pool-fgsm"].deps_playing("pool")
    # the same tat replicas, independent and robust models; a bootstrap replica of its own pipeline
    assert ours[:2] == theirs[:2] and ours[3:] == theirs[3:] and ours[2] != theirs[2]
    x, y = digits.numpy("train")
    hardened = hardener(x[:128], y=y[:128])
    weights = dict(hardened.model.named_buffers())
    assert all((weights[name] == mask).all() for name, mask in dict(pruned.model.named_buffers()).items())


def test_the_trades_term_adds_beta_times_the_kl_from_the_clean_prediction():
    """``trades``: the pool's loss plus beta times the KL divergence of the prediction on the
    craft's examples from the clean prediction; zero when the craft returns the clean batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(8, 2, 1, 2, 2)  # clean + one source
    y = torch.randint(3, (8,))
    pool_loss = pool_objective("uniform", None, None)(model, x, y)
    shifted = x[:, 0] + 0.5
    with_term = pool_objective("uniform", None, None, (lambda clean, _: clean + 0.5, 6.0))(model, x, y)
    p_clean = torch.softmax(model(x[:, 0]), 1)
    kl = (p_clean * (p_clean.log() - torch.log_softmax(model(shifted), 1))).sum(1).mean()
    torch.testing.assert_close(with_term, pool_loss + 6.0 * kl)
    assert kl > 0
    same = pool_objective("uniform", None, None, (lambda clean, _: clean, 6.0))(model, x, y)
    torch.testing.assert_close(same, pool_loss)


def test_pool_with_a_trades_term_is_a_method_that_trains_on_the_pool(classifier, pruned, digits):
    """``+pool-trades``: ``+pool-fgsm`` with a TRADES term (TPGD on the model being trained,
    beta 1, chosen on validation rows), its own method on the same pool; beta is checked."""
    from gap_art.defences import TradesPoolAdversarialFinetuning
    from gap_art.defences.methods import HARDENINGS, trains_on_a_pool

    hardener = HARDENINGS.get("pool-trades")(pruned, classifier, epochs=1)
    assert isinstance(hardener, TradesPoolAdversarialFinetuning)
    assert hardener.trades_beta == 1.0 and hardener.self_attack == "fgsm" and trains_on_a_pool("pool-trades")
    assert parse_method("magnitude+pool-trades").hardening == "pool-trades"
    assert "trades_beta" in hardener.params
    with pytest.raises(ValueError, match=r"trades_beta must be in \[0.0, 100.0\], got -1"):
        HARDENINGS.get("pool-trades")(pruned, classifier, trades_beta=-1.0)
    with pytest.raises(ValueError, match="trades_beta must be in"):
        hardener.set_params(trades_beta=float("nan"))
    with pytest.raises(TypeError):
        hardener.set_params(trades_beta="high")
    assert hardener.trades_beta == 1.0  # a refused value leaves the transformer as it was
    x, y = digits.numpy("train")
    hardened = hardener(x[:128], y=y[:128])
    untouched = PoolAdversarialFinetuning(pruned, classifier, epochs=1, self_attack="fgsm")(
        x[:128], y=y[:128]
    )
    weights = dict(hardened.model.named_buffers())
    assert all((weights[name] == mask).all() for name, mask in dict(pruned.model.named_buffers()).items())
    # the own attacks take the hardening attack's budget and seed, never its own settings
    with_decay = AttackSpec("mifgsm", decay=1.0)
    assert (
        HARDENINGS.get("pool-trades")(pruned, classifier, epochs=1, attack=with_decay)(x[:32], y=y[:32])
        is not None
    )
    first = next(name for name, _ in hardened.model.named_parameters())
    assert not torch.equal(
        dict(hardened.model.named_parameters())[first], dict(untouched.model.named_parameters())[first]
    )


def _pool_of(config: BenchConfig) -> tuple[list, dict]:
    """The specs of the seed-2 ``+pool`` target's pool, and every task of the study by id."""
    graph = build_graph(config)
    target = next(
        t
        for t in graph.tasks.values()
        if isinstance(t.spec, PrunedSpec) and t.spec.settings.hardening == "pool" and t.spec.seed == 2
    )
    assert target.roles[:2] == ("source", "validation")
    return [graph.tasks[d] for d in target.deps_playing("pool")], graph.tasks


def test_pool_sources_choose_the_pool_and_each_source_keeps_its_seed_in_any_pool():
    base = BenchConfig(
        methods=["magnitude+pool"], compression=[4.0], attacks=["pgd"], defences=[], int8=False, seeds=[2],
        pool_replicas=2, dataset="fashion-mnist", arch="lenet-wide",
    )  # fmt: skip
    full, _ = _pool_of(base)  # the default: 2 replicas, the bootstrap, independent, robust

    replicas_only, tasks = _pool_of(replace(base, pool_sources=["replicas", "bootstrap"]))
    assert [t.spec.settings.hardening for t in replicas_only] == ["tat", "tat", "pool"]
    assert [t.id for t in replicas_only[:2]] == [t.id for t in full[:2]]  # the same two replicas
    bootstrap = replicas_only[2]
    assert [tasks[d] for d in bootstrap.deps_playing("pool")] == replicas_only[:2]

    public, _ = _pool_of(replace(base, pool_sources=["independent", "robust", "independent-arch"]))
    kinds = [(type(t.spec).__name__, getattr(t.spec, "arch", None)) for t in public]
    assert kinds == [("SourceSpec", "lenet-wide"), ("ArtTrainerSpec", None), ("SourceSpec", "mlp")]
    assert [t.id for t in public[:2]] == [t.id for t in full[3:]]  # the same models, the same seeds
    assert public[2].spec.seed == pool_seed(2, 2 + 3) not in {t.spec.seed for t in full}

    alone, _ = _pool_of(replace(base, pool_sources=[]))
    assert alone == []
    for bad, message in [(["replica"], "unknown 'replica'"), (["robust", "robust"], "each item once")]:
        with pytest.raises(ConfigError, match=f"pool_sources.*{message}"):
            replace(base, pool_sources=bad).validate(files=False)


def test_pool_runs_in_the_bench(tmp_path, monkeypatch, capsys, warm):
    from gap_art.bench import preset, run

    config = replace(preset("quick"), methods=["magnitude+pool"], compression=[4.0], attacks=["pgd"],
                     defences=[], int8=False, n_test=100, threat_models=["dense", "replica"],
                     pool_replicas=1, pool_sources=["replicas", "bootstrap"], finetune_epochs=2,
                     defence_epochs=1, sanity_checks=False)  # fmt: skip
    results = run(config, out=warm(tmp_path), progress=False)  # the small study's dense model
    assert not results.failed
    rows = {(r["target"], r["threat_model"]): r for r in results.rows}
    assert {("magnitude+pool@4x", "dense"), ("magnitude+pool@4x", "replica")} <= set(rows)
    assert np.isfinite(rows[("magnitude+pool@4x", "dense")]["worst_attacker_transfer_accuracy"])

    # benchmarks/pool_early_stopping.py rebuilds the kept model from the cache, epoch scores included
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "pool_early_stopping.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(tmp_path)])
    capsys.readouterr()
    runpy.run_path(str(script), run_name="__main__")  # as `python script FOLDER` runs it
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("seed 0:")]
    assert "(as cached)" in line and "scores per epoch: " in line

"""Channel pruning through Torch-Pruning (issue 38): a physically smaller model, coupled layers
pruned consistently, the logits layer whole, ART's transformer conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gap_art.attacks import make_attack
from gap_art.classifiers import to_art_classifier
from gap_art.data import DATASETS
from gap_art.defences import StructuredPruning
from gap_art.errors import ParameterError
from gap_art.models import create_model
from gap_art.pruning.structured import CHANNEL_CRITERIA, kept_whole, prune_channels, shrink_to


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("criterion", sorted(CHANNEL_CRITERIA))
def test_each_criterion_gives_a_smaller_model_at_the_ratio_asked(classifier, digits, criterion):
    x, y = digits.numpy("train")
    before = [p.detach().clone() for p in classifier.model.parameters()]
    defence = StructuredPruning(classifier, compression=2.0, criterion=criterion, finetune_epochs=0)
    pruned = defence(x, y=y)
    report = defence.compression_report_
    assert report is not None and report.parameters_before == parameters(classifier.model)
    assert report.parameters_after == parameters(pruned.model)  # fewer tensors' elements, not zeros
    assert 2.0 <= report.compression < 2.5 and report.macs_after < report.macs_before
    assert pruned.model.classifier[-1].out_features == classifier.nb_classes  # the logits layer whole
    assert pruned.predict(x[:5]).shape == (5, classifier.nb_classes)
    assert all(torch.equal(a, b) for a, b in zip(before, classifier.model.parameters(), strict=True))


def test_the_criterion_decides_which_channels_go_and_random_is_seeded(classifier, digits):
    x, y = digits.numpy("train")

    def first_filters(criterion: str, seed: int) -> torch.Tensor:
        pruned = StructuredPruning(classifier, 2.0, criterion=criterion, finetune_epochs=0, seed=seed)(x, y=y)
        return pruned.model.features[0].weight.detach()

    assert torch.equal(first_filters("random", 0), first_filters("random", 0))
    assert not torch.equal(first_filters("random", 0), first_filters("random", 1))
    first, second = classifier.model.features[0].weight.detach(), classifier.model.features[2].weight.detach()
    kept = [next(i for i in range(len(first)) if torch.equal(first[i], w)) for w in first_filters("l2", 0)]
    squared = [first.flatten(1).pow(2).sum(1), second.transpose(0, 1).flatten(1).pow(2).sum(1)]
    score = sum(s / s.mean() for s in squared) / 2  # a group's L2 score: its filter and its inputs
    removed = sorted(set(range(len(first))) - set(kept))
    assert score[kept].mean() > score[removed].mean()  # the magnitude criterion keeps larger groups


def test_a_pruned_model_fine_tunes_and_is_attackable_white_box(classifier, digits):
    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    defence = StructuredPruning(classifier, 4.0, criterion="l1", finetune_epochs=3, finetune_lr=1e-2)
    pruned = defence(x, y=y)
    assert defence.finetune_record_ is not None and defence.finetune_record_.epochs_run >= 1
    accuracy = float((pruned.predict(xt).argmax(1) == yt).mean())
    assert accuracy > 0.8  # fine-tuning recovers the task at a quarter of the parameters
    x_adv = make_attack("pgd", pruned, eps=0.3).generate(xt[:64], yt[:64])
    assert float((pruned.predict(x_adv).argmax(1) == yt[:64]).mean()) < accuracy


def test_residual_blocks_prune_consistently():
    """ResNet-20's padded shortcuts: its residual stream stays whole, the blocks' inner channels
    go, and the model still runs (the coupled BatchNorm and next convolution follow)."""
    info = DATASETS["cifar10"]
    torch.manual_seed(0)
    model = create_model("resnet20", info.input_shape, info.nb_classes).eval()
    whole = {id(m): m.out_channels for m in kept_whole(model) if isinstance(m, torch.nn.Conv2d)}
    report = prune_channels(model, torch.zeros(1, *info.input_shape), "l2", 2.0)
    assert report.compression >= 2.0
    for block in model.layers:
        assert block.conv1.out_channels == block.bn1.num_features == block.conv2.in_channels
        assert block.conv2.out_channels == whole[id(block.conv2)]
    assert model(torch.rand(2, *info.input_shape)).shape == (2, info.nb_classes)


def test_bad_settings_are_errors_naming_the_parameter(classifier, digits):
    x, y = digits.numpy("train")
    with pytest.raises(ParameterError, match="compression"):
        StructuredPruning(classifier, compression=0.5)
    with pytest.raises(ParameterError, match="criterion"):
        StructuredPruning(classifier, criterion="l3")
    with pytest.raises(ParameterError, match="out of reach"):
        StructuredPruning(classifier, compression=1000.0, finetune_epochs=0)(x)
    with pytest.raises(ParameterError, match="y is required"):
        StructuredPruning(classifier, criterion="taylor", finetune_epochs=0)(x)
    with pytest.raises(ParameterError, match="transformed_classifier"):
        StructuredPruning(classifier, finetune_epochs=0)(x, transformed_classifier=classifier, y=y)
    with pytest.raises(ParameterError, match="unknown parameters"):
        StructuredPruning(classifier).set_params(scope="layer")


def test_an_own_architecture_without_markers_keeps_its_last_linear_layer():
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    info = DATASETS["digits"]
    classifier = to_art_classifier(model, info, device="cpu")
    pruned = StructuredPruning(classifier, 2.0, criterion="random", finetune_epochs=0)(
        np.zeros((4, *info.input_shape), dtype=np.float32)
    )
    assert pruned.model[-1].out_features == 10 and pruned.model[1].out_features < 32


@pytest.mark.parametrize("arch, dataset", [("small-cnn", "digits"), ("resnet20", "cifar10")])
def test_a_channel_pruned_model_reloads_from_its_checkpoint_with_identical_predictions(
    tmp_path, arch, dataset
):
    """The checkpoint names the architecture only; its weights' shapes carry the fewer channels,
    so it reloads without the user's code changing, predicting exactly as before."""
    from gap_art.checkpoint import load_checkpoint, save_checkpoint

    info = DATASETS[dataset]
    torch.manual_seed(0)
    model = create_model(arch, info.input_shape, info.nb_classes).eval()
    prune_channels(model, torch.zeros(1, *info.input_shape), "random", 3.0, seed=1)
    path = save_checkpoint(tmp_path / "small.pt", model, arch, info)
    loaded, _, _ = load_checkpoint(path)
    x = torch.rand(8, *info.input_shape)
    assert parameters(loaded) == parameters(model) and torch.equal(loaded(x), model(x))


def test_the_prune_command_saves_a_smaller_model(tmp_path, classifier, digits):
    from click.testing import CliRunner

    from gap_art.checkpoint import load_checkpoint, save_checkpoint
    from gap_art.cli import main

    source = save_checkpoint(tmp_path / "m.pt", classifier.model, "small-cnn", digits.info)
    out = tmp_path / "small.pt"
    args = ["prune", str(source), "--structure", "channel", "--method", "l1", "--compression", "2"]
    result = CliRunner().invoke(main, [*args, "--finetune-epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "parameters (2." in result.output and "fewer multiply-adds" in result.output
    loaded, _, extra = load_checkpoint(out)
    assert extra["method"] == "l1/channel" and parameters(loaded) * 2 <= parameters(classifier.model)
    assert out.stat().st_size < source.stat().st_size
    wrong = CliRunner().invoke(main, [*args, "--method", "activation", "--out", str(tmp_path / "x.pt")])
    assert wrong.exit_code == 2 and "--method" in wrong.output and "'l1'" in wrong.output
    masks = CliRunner().invoke(main, [*args, "--keep-masks", "--out", str(tmp_path / "x.pt")])
    assert masks.exit_code == 2 and "--keep-masks" in masks.output and not (tmp_path / "x.pt").exists()
    shipped = CliRunner().invoke(
        main, ["export", str(out), "--format", "state_dict", "--out", str(tmp_path / "s.pt")]
    )
    assert shipped.exit_code == 0, shipped.output
    state = torch.load(tmp_path / "s.pt", weights_only=True)  # as the export's help says: shrink, then load
    fresh = create_model("small-cnn", digits.info.input_shape, digits.info.nb_classes)
    shrink_to(fresh, state)
    fresh.load_state_dict(state)
    x = torch.rand(4, *digits.info.input_shape)
    assert torch.equal(fresh.eval()(x), loaded(x))


def test_gap_art_list_names_every_channel_criterion():
    from gap_art.bench.catalogue import catalogue

    section = next(names for title, names in catalogue().items() if title.startswith("channel criteria"))
    assert set(section) == set(CHANNEL_CRITERIA) and all(section.values())


def test_an_irregularly_pruned_model_can_be_pruned_by_channel_too(classifier, digits):
    """Its masks are folded into zeros first (Torch-Pruning cannot copy a masked module); the
    irregular pruning's zeros stay where their channels stay."""
    from gap_art.defences import IrregularPruning

    x, y = digits.numpy("train")
    sparse = IrregularPruning(classifier, 2.0, criterion="magnitude", finetune_epochs=0)(x, y=y)
    both = StructuredPruning(sparse, 2.0, criterion="l2", finetune_epochs=0)(x, y=y)
    assert not [name for name, _ in both.model.named_buffers() if name.endswith("_mask")]
    assert parameters(both.model) * 2 <= parameters(sparse.model)
    zeros = sum(int((p == 0).sum()) for p in both.model.parameters())
    assert zeros > 0.2 * parameters(both.model)  # about half the surviving weights were zeroed


def test_summed_scores_remove_the_channels_whose_weights_score_highest_for_gap():
    """GAP's criteria per channel: each weight's score summed over the channel's weights in every
    coupled layer; GAP removes the highest sums (Torch-Pruning the lowest importance)."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc, self.out = (
                torch.nn.Conv2d(1, 8, 3),
                torch.nn.Linear(288, 16),
                torch.nn.Linear(16, 3),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.relu(self.fc(torch.relu(self.conv(x)).flatten(1))))

    torch.manual_seed(0)
    model = Net()
    scores = {name: torch.zeros_like(p) for name, p in model.named_parameters() if name.endswith("weight")}
    scores["conv.weight"] += torch.arange(8.0).view(8, 1, 1, 1)  # channel c scores c per weight
    scores["out.weight"] -= torch.arange(16.0)  # the fc neurons' columns in the next layer: j scores -j
    filters = model.conv.weight.detach().clone()
    report = prune_channels(model, torch.zeros(1, 1, 8, 8), "gap-grad", 2.0, weight_scores=scores)
    kept = [c for c in range(8) for w in model.conv.weight if torch.equal(w, filters[c])]
    assert kept == list(range(model.conv.out_channels)) and model.conv.out_channels < 8  # the highest went
    assert model.fc.out_features < 16 and report.compression >= 2.0
    with pytest.raises(ParameterError, match="gap-grad"):
        prune_channels(Net(), torch.zeros(1, 1, 8, 8), "gap-grad", 2.0)  # no scores given


def test_gap_criteria_prune_by_channel_from_gaps_own_weight_scores(classifier, digits):
    """``gap-grad`` by channel scores every weight as GreedyAdversarialPruning does (the logits
    layer's inputs too), seeded; a scoring parameter changed drops the fit."""
    from gap_art.defences import GreedyAdversarialPruning

    x, y = digits.numpy("train")
    defence = StructuredPruning(classifier, 2.0, "gap-grad", nb_calibration=64, finetune_epochs=0, seed=3)
    defence.fit(x, y)
    reference = GreedyAdversarialPruning(
        classifier, criterion="grad", nb_calibration=64, prune_classifier=True, seed=3
    )
    reference.fit(x, y)
    assert defence.scores_ is not None and reference.scores_ is not None
    assert set(defence.scores_) == set(reference.scores_) and "classifier.3.weight" in defence.scores_
    assert all(torch.allclose(defence.scores_[k], reference.scores_[k]) for k in reference.scores_)
    first = defence(x, y=y).model.features[0].weight.detach()
    again = StructuredPruning(classifier, 2.0, "gap-grad", nb_calibration=64, finetune_epochs=0, seed=3)(
        x, y=y
    )
    assert torch.equal(first, again.model.features[0].weight.detach())
    defence.set_params(eps=0.05)
    assert defence.scores_ is None and not defence.is_fitted
    with pytest.raises(ParameterError, match="eps"):
        StructuredPruning(classifier, criterion="gap-taylor", eps=-1.0)
    with pytest.raises(ParameterError, match="y is required"):
        StructuredPruning(classifier, criterion="gap-grad").fit(x)


def test_magnitude_by_channel_sums_each_weights_magnitude_without_labels(classifier, digits):
    x, _ = digits.numpy("train")
    defence = StructuredPruning(classifier, 2.0, "magnitude", finetune_epochs=0)
    defence.fit(x)  # no labels, no attack: |w| of every Conv/Linear weight
    weights = dict(classifier.model.named_parameters())
    assert defence.scores_ is not None
    assert all(torch.equal(score, weights[name].detach().abs()) for name, score in defence.scores_.items())
    assert parameters(defence(x).model) * 2 <= parameters(classifier.model)


def test_the_fine_tuning_monitor_sees_every_epoch(classifier, digits):
    x, y = digits.numpy("train")
    defence = StructuredPruning(classifier, 2.0, "l2", finetune_epochs=2, finetune_patience=None)
    seen: list[int] = []
    defence.finetune_monitor = lambda epoch, model: seen.append(epoch)
    defence(x, y=y)
    assert seen == [0, 1, 2] and defence.finetune_records_ == [defence.finetune_record_]


def test_channel_methods_are_method_names_that_compose_with_hardenings(classifier, digits):
    from gap_art.defences import apply_method, parse_method
    from gap_art.pruning.structured import ChannelReport
    from gap_art.settings import FinetuneSpec, MethodSpec

    spec = parse_method("l2/channel+tat", compression=2.0, finetune=FinetuneSpec(1))
    assert (spec.criterion, spec.structure, spec.hardening, spec.name) == (
        "l2",
        "channel",
        "tat",
        "l2/channel+tat",
    )
    assert MethodSpec.parse(spec.name) == MethodSpec.parse("l2/channel+tat")
    x, y = digits.numpy("train")
    result = apply_method(spec, classifier, x[:256], y[:256], x, y)
    assert isinstance(result.report, ChannelReport) and len(result.records) == 2
    pretrained = parse_method("ensemble-adv>l2/channel", compression=2.0, finetune=FinetuneSpec(1))
    assert (pretrained.pretraining, pretrained.structure) == ("ensemble-adv", "channel")
    defended = apply_method(pretrained, classifier, x[:256], y[:256], x[:256], y[:256])
    assert isinstance(defended.report, ChannelReport) and defended.report.compression >= 2.0
    assert parameters(result.classifier.model) * 2 <= parameters(classifier.model)
    for wrong, match in [
        ("activation/channel", "'magnitude'"),
        ("l2/chanel", "channel"),
        ("l2/channel+iter", "one round"),
    ]:
        with pytest.raises(ParameterError, match=match):
            parse_method(wrong)
    with pytest.raises(ParameterError, match="prune_classifier"):
        parse_method("l2/channel", prune_classifier=True)


def test_the_prune_command_prunes_channels_by_gaps_criterion(tmp_path, classifier, digits):
    from click.testing import CliRunner

    from gap_art.checkpoint import load_checkpoint, save_checkpoint
    from gap_art.cli import main

    source = save_checkpoint(tmp_path / "m.pt", classifier.model, "small-cnn", digits.info)
    out = tmp_path / "small.pt"
    args = [
        "prune",
        str(source),
        "--method",
        "gap-grad/channel",
        "--compression",
        "2",
        "--n-calibration",
        "64",
    ]
    result = CliRunner().invoke(main, [*args, "--finetune-epochs", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    loaded, _, extra = load_checkpoint(out)
    assert extra["method"] == "gap-grad/channel" and parameters(loaded) * 2 <= parameters(classifier.model)


def test_the_bench_runs_channel_methods_under_every_attacker_with_replicas_and_int8(tmp_path, warm):
    """``<criterion>/channel`` methods in a study: the replica attacker reruns the channel
    method, int8 quantizes the smaller model, the rows record compression and multiply-adds,
    and GAP's channel criterion is compared with the channel baselines by default."""
    from conftest import small_config

    from gap_art.bench import run
    from gap_art.bench.comparisons import default_comparisons

    config = small_config(
        methods=["random/channel", "gap-grad/channel"], compression=[2.0], attacks=["fgsm"], defences=[],
        threat_models=["dense", "replica"], replicas=2, finetune_epochs=1, n_test=100,
    )  # fmt: skip
    assert [str(c) for c in default_comparisons(config)] == [
        "gap-grad/channel@2x vs random/channel@2x: fgsm from dense"
    ]
    study = run(config, out=warm(tmp_path), progress=False)
    rows = [r for r in study.rows if r["target"].startswith("gap-grad/channel@2x")]
    assert {r["threat_model"] for r in rows} == {"dense", "replica"} and not any(r.get("error") for r in rows)
    for row in rows:
        assert row["compression"] >= 2.0 and row["macs_after"] < row["macs_before"]
    assert {r["target"] for r in rows} == {"gap-grad/channel@2x", "gap-grad/channel@2x+int8"}
    replica = next(r for r in rows if r["threat_model"] == "replica" and r["target"] == "gap-grad/channel@2x")
    assert replica["transfer_accuracy"] is not None

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
from gap_art.pruning.structured import CHANNEL_CRITERIA, kept_whole, prune_channels


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("criterion", sorted(CHANNEL_CRITERIA))
def test_each_criterion_gives_a_smaller_model_at_the_ratio_asked(classifier, digits, criterion):
    x, y = digits.numpy("train")
    before = [p.detach().clone() for p in classifier.model.parameters()]
    defence = StructuredPruning(classifier, compression=2.0, criterion=criterion, finetune_epochs=0)
    pruned = defence(x, y=y)
    report = defence.report_
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
        StructuredPruning(classifier, compression=1.0)
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
    wrong = CliRunner().invoke(main, [*args, "--method", "magnitude", "--out", str(tmp_path / "x.pt")])
    assert wrong.exit_code == 2 and "--method" in wrong.output and "'l1'" in wrong.output
    masks = CliRunner().invoke(main, [*args, "--keep-masks", "--out", str(tmp_path / "x.pt")])
    assert masks.exit_code == 2 and "--keep-masks" in masks.output and not (tmp_path / "x.pt").exists()


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

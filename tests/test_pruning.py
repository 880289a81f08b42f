import numpy as np
import pytest
import torch
import torch.nn.functional as F
from art.attacks.evasion import ProjectedGradientDescent
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from gap_art.attacks import make_attack
from gap_art.classifiers import to_art_classifier
from gap_art.defences import GreedyAdversarialPruning, IrregularPruning, parse_method
from gap_art.pruning import (
    GreedyAdversarialUnstructured,
    compute_masks,
    greedy_adversarial_unstructured,
    magnitude_scores,
    measure_compression,
    prunable_parameters,
    prune_by_scores,
    select_removed,
    weights_to_keep,
)


def _toy(sizes):
    return nn.Sequential(*[nn.Linear(s, 3) for s in sizes])


def _every_weight(model):
    """All Linear weights of a toy model: these tests are about selection, not about which
    layer is the classifier (kept by default, see test_fair_comparison.py)."""
    return prunable_parameters(model, prune_classifier=True)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    compression=st.floats(1.01, 50.0),
    levels=st.integers(1, 5),
    largest=st.booleans(),
    scope=st.sampled_from(["global", "layer"]),
    seed=st.integers(0, 100),
)
def test_exact_count_and_exact_extremes_under_ties(sizes, compression, levels, largest, scope, seed):
    model = _toy(sizes)
    targets = _every_weight(model)
    n = sum(getattr(m, name).numel() for m, name in targets)
    if round(n / compression) < 1:
        with pytest.raises(ValueError, match="compression"):
            weights_to_keep(n, compression)
        return
    generator = torch.Generator().manual_seed(seed)
    scores = [
        torch.randint(0, levels, getattr(m, name).shape, generator=generator).float() for m, name in targets
    ]
    masks = compute_masks(targets, scores, compression, scope, largest, seed)
    removed = sum(int((mask == 0).sum()) for mask in masks)
    assert removed == n - round(n / compression)
    groups = [(torch.cat([s.flatten() for s in scores]), torch.cat([m.flatten() for m in masks]))]
    if scope == "layer":
        groups = [(s.flatten(), m.flatten()) for s, m in zip(scores, masks, strict=False)]
    for score, mask in groups:
        gone, kept = score[mask == 0], score[mask == 1]
        if len(gone) and len(kept):
            if largest:
                assert gone.min() >= kept.max()
            else:
                assert gone.max() <= kept.min()


def test_layer_scope_removes_the_same_fraction_everywhere():
    model = _toy([10, 20, 30])
    targets = _every_weight(model)
    masks = compute_masks(targets, magnitude_scores(targets), 4.0, "layer")
    for mask in masks:  # each layer within one weight of exactly 3/4 removed
        assert abs(int((mask == 0).sum()) - 0.75 * mask.numel()) <= 1


def test_global_scope_ranks_across_layers():
    model = _toy([4, 4])
    with torch.no_grad():
        model[0].weight.fill_(0.01)
        model[1].weight.fill_(1.0)
    report = prune_by_scores(model, magnitude_scores(_every_weight(model)), 2.0, prune_classifier=True)
    assert (model[0].weight == 0).all() and (model[1].weight != 0).all()
    assert report.compression == 2.0 and report.sparsity == 0.5


def test_same_seed_same_masks_other_seed_other_ties():
    targets = _every_weight(_toy([50]))
    flat = [torch.zeros(3, 50)]
    a = compute_masks(targets, flat, 2.0, seed=1)[0]
    b = compute_masks(targets, flat, 2.0, seed=1)[0]
    c = compute_masks(targets, flat, 2.0, seed=2)[0]
    assert torch.equal(a, b) and not torch.equal(a, c) and int((a == 0).sum()) == 75


def test_select_removed_rejects_nan_and_counts_forced():
    with pytest.raises(ValueError, match="NaN"):
        select_removed(torch.tensor([1.0, float("nan")]), 1, False)
    forced = torch.tensor([False, True, False, False])
    removed = select_removed(torch.tensor([1.0, 9.0, 2.0, 3.0]), 2, False, forced=forced)
    assert removed.tolist() == [True, True, False, False]


def test_masks_are_prune_buffers_that_survive_training_and_remove(digits, digits_model):
    targets = prunable_parameters(digits_model)
    prune_by_scores(digits_model, magnitude_scores(targets), 4.0)
    layer = digits_model.features[0]
    assert hasattr(layer, "weight_orig") and "weight_mask" in dict(layer.named_buffers())
    zeros = [getattr(m, n) == 0 for m, n in targets]
    optimizer = torch.optim.SGD(digits_model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = digits.train.tensors
    for _ in range(5):
        optimizer.zero_grad()
        F.cross_entropy(digits_model(x[:64]), y[:64]).backward()
        optimizer.step()
    digits_model(x[:1])
    for (m, n), z in zip(targets, zeros, strict=False):
        assert (getattr(m, n)[z] == 0).all()
    for m, n in targets:
        prune.remove(m, n)
    assert measure_compression(digits_model, targets).compression == pytest.approx(4.0, rel=1e-3)


def test_gap_method_composes_with_global_unstructured():
    model = _toy([6, 6])
    targets = _every_weight(model)
    scores = {t: torch.arange(18.0).view(3, 6) + 100 * i for i, t in enumerate(targets)}
    prune.global_unstructured(
        targets, pruning_method=GreedyAdversarialUnstructured, importance_scores=scores, amount=18
    )
    assert (model[1].weight == 0).all() and (model[0].weight != 0).all()
    single = _toy([4])
    greedy_adversarial_unstructured(
        single[0], "weight", 0.25, importance_scores=torch.arange(12.0).view(3, 4)
    )
    assert single[0].weight_mask.flatten().tolist() == [1.0] * 9 + [0.0] * 3


def test_compression_basis_model_counts_other_parameters():
    model = _toy([100])  # 300 weights + 3 biases
    scores = magnitude_scores(_every_weight(model))
    report = prune_by_scores(model, scores, 2.0, basis="model", prune_classifier=True)
    assert report.model_compression == pytest.approx(2.0, abs=0.01)
    assert report.n_nonzero == round(303 / 2 - 3)


def _brute_force_fgsm_gradients(model, x, y, eps, batch_size):
    """The accumulated adversarial gradient of both Linear weights, computed by hand for FGSM."""
    weights = [model[1].weight, model[2].weight]
    totals = [torch.zeros_like(w) for w in weights]
    for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=False):
        xb = xb.clone().requires_grad_(True)
        (grad_x,) = torch.autograd.grad(F.cross_entropy(model(xb), yb), xb)
        x_adv = (xb + eps * grad_x.sign()).clamp(0, 1).detach()
        grads = torch.autograd.grad(F.cross_entropy(model(x_adv), yb), weights)
        totals = [t + g for t, g in zip(totals, grads, strict=False)]
    return totals


@pytest.mark.parametrize("backend", ["torchattacks", "art"])
def test_gap_scores_match_brute_force_with_fgsm(backend, digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.Linear(12, 10)).eval()
    classifier = to_art_classifier(model, digits.info, device="cpu")
    x, y = digits.numpy("train")
    x, y = x[:100], y[:100]
    gap = GreedyAdversarialPruning(
        classifier, 2.0, criterion="grad", attack="fgsm", eps=0.1, attack_backend=backend, batch_size=32,
        prune_classifier=True,
    )  # fmt: skip
    gap.fit(x, y)
    expected = _brute_force_fgsm_gradients(model, torch.from_numpy(x), torch.from_numpy(y), 0.1, 32)
    assert list(gap.scores_) == ["1.weight", "2.weight"]
    for name, want in zip(gap.scores_, expected, strict=False):
        torch.testing.assert_close(gap.scores_[name], want, rtol=1e-4, atol=1e-6)
    taylor = GreedyAdversarialPruning(
        classifier, 2.0, criterion="taylor", attack="fgsm", eps=0.1, batch_size=32
    )
    taylor.fit(x, y)
    torch.testing.assert_close(
        taylor.scores_["1.weight"], model[1].weight.detach() * expected[0], rtol=1e-4, atol=1e-6
    )


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "make",
    [
        lambda c: GreedyAdversarialPruning(c, 4.0, attack="fgsm", eps=0.1, finetune_epochs=1),
        lambda c: IrregularPruning(c, 4.0, criterion="taylor", finetune_epochs=1),
    ],
)
def test_input_classifier_is_untouched_and_output_is_native_art(make, classifier, digits):
    before = _state(classifier.model)
    x, y = digits.numpy("train")
    defence = make(classifier)
    pruned = defence(x[:300], y=y[:300])
    after = _state(classifier.model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not prune.is_pruned(classifier.model) and prune.is_pruned(pruned.model)
    assert pruned.model is not classifier.model
    assert pruned.input_shape == classifier.input_shape and pruned.nb_classes == 10
    assert np.array_equal(pruned.clip_values, classifier.clip_values)
    assert defence.compression_report_.compression == pytest.approx(4.0, rel=1e-3)
    xt, yt = digits.numpy("test")
    adv = ProjectedGradientDescent(pruned, eps=0.1, eps_step=0.02, max_iter=3, verbose=False).generate(
        xt[:20]
    )
    assert adv.shape == xt[:20].shape
    ta = make_attack("pgd", pruned, eps=0.1, max_iter=3).generate(xt[:20], yt[:20])
    assert np.abs(ta - xt[:20]).max() <= 0.1 + 1e-6


def test_preprocessing_and_settings_carry_over(digits, digits_model):
    classifier = to_art_classifier(digits_model, digits.info, device="cpu", preprocessing=(0.2, 0.5))
    x, y = digits.numpy("train")
    pruned = IrregularPruning(classifier, 2.0, criterion="activation")(x[:200], y=y[:200])
    assert pruned.preprocessing.mean == pytest.approx(0.2) and pruned.preprocessing.std == pytest.approx(0.5)
    xt, yt = digits.numpy("test")
    assert (pruned.predict(xt).argmax(1) == yt).mean() > 0.8


def test_one_hot_labels_equal_index_labels(classifier, digits):
    x, y = digits.numpy("train")
    a = GreedyAdversarialPruning(classifier, 2.0, attack="fgsm", eps=0.1)
    b = GreedyAdversarialPruning(classifier, 2.0, attack="fgsm", eps=0.1)
    a.fit(x[:64], y[:64])
    b.fit(x[:64], np.eye(10)[y[:64]])
    for name in a.scores_:
        assert torch.equal(a.scores_[name], b.scores_[name])


def test_same_seed_same_pruned_model(classifier, digits):
    x, y = digits.numpy("train")
    masks = []
    for _ in range(2):
        pruned = GreedyAdversarialPruning(classifier, 3.0, eps=0.1, nb_calibration=128, seed=7)(x, y=y)
        masks.append(pruned.model.features[0].weight_mask.clone())
    assert torch.equal(*masks)


def test_compression_one_keeps_every_weight_the_unpruned_arm(classifier, digits):
    """Compression 1 removes nothing (the capacity study's unpruned arm, issue 37): every
    criterion, irregular and by channel, gives the parent's predictions, with masks of ones."""
    from gap_art.defences import StructuredPruning

    x, y = digits.numpy("train")
    expected = classifier.predict(x[:64])
    for transformer in (
        IrregularPruning(classifier, 1.0, criterion="random"),
        GreedyAdversarialPruning(classifier, 1.0, attack="fgsm", eps=0.1, nb_calibration=64),
        StructuredPruning(classifier, 1.0, finetune_epochs=0),
    ):
        kept = transformer(x[:128], y=y[:128])
        np.testing.assert_allclose(kept.predict(x[:64]), expected, atol=1e-6)
        assert all(bool(mask.all()) for name, mask in kept.model.named_buffers() if name.endswith("_mask"))
    assert parse_method("magnitude+pool", compression=1.0).compression == 1.0


def test_already_pruned_classifier_is_pruned_further_and_zeros_kept(classifier, digits):
    x, y = digits.numpy("train")
    half = IrregularPruning(classifier, 2.0)(x, y=y)
    zeros = half.model.features[0].weight == 0
    quarter = GreedyAdversarialPruning(half, 4.0, attack="fgsm", eps=0.1)(x[:200], y=y[:200])
    assert (quarter.model.features[0].weight[zeros] == 0).all()
    targets = prunable_parameters(quarter.model)
    assert measure_compression(quarter.model, targets).compression == pytest.approx(4.0, rel=1e-3)
    with pytest.raises(ValueError, match="already pruned"):
        IrregularPruning(half, 1.5)(x, y=y)


def test_transformed_classifier_receives_the_pruned_weights(classifier, digits, digits_model):
    from gap_art.models import create_model

    x, y = digits.numpy("train")
    blank = to_art_classifier(create_model("small-cnn", (1, 8, 8), 10), digits.info, device="cpu")
    defence = IrregularPruning(classifier, 2.0)
    result = defence(x, transformed_classifier=blank, y=y)
    assert result is blank and prune.is_pruned(blank.model)
    np.testing.assert_allclose(blank.predict(x[:50]), defence(x, y=y).predict(x[:50]), atol=1e-6)


def test_set_params_validates(classifier):
    gap = GreedyAdversarialPruning(classifier, 2.0)
    gap.set_params(compression=8.0, criterion="taylor")
    assert gap.compression == 8.0 and gap.criterion == "taylor" and gap.get_classifier() is classifier
    with pytest.raises(ValueError, match="criterion must be one of"):
        gap.set_params(criterion="biggest")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"compression": 0.99}, ValueError, "compression must be a number >= 1"),
        ({"compression": 1e9}, ValueError, "would remove every prunable weight"),
        ({"criterion": "x"}, ValueError, "criterion must be one of"),
        ({"scope": "x"}, ValueError, "scope must be one of"),
        ({"attack": 3}, TypeError, "attack must be a name"),
        ({"attack": "deepfool"}, ValueError, "attack must be one of"),
        ({"finetune_epochs": -1}, ValueError, "finetune_epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_parameters_name_themselves(classifier, kwargs, error, match):
    with pytest.raises(error, match=match):
        GreedyAdversarialPruning(classifier, **{"compression": 2.0, **kwargs})


def test_bad_inputs(classifier, digits):
    x, y = digits.numpy("train")
    with pytest.raises(ValueError, match="criterion must be one of"):
        IrregularPruning(classifier, criterion="biggest")
    with pytest.raises(TypeError, match="PyTorchClassifier"):
        GreedyAdversarialPruning(object())
    with pytest.raises(ValueError, match="y is required"):
        GreedyAdversarialPruning(classifier).fit(x)
    bad = x[:10].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GreedyAdversarialPruning(classifier).fit(bad, y[:10])
    with pytest.raises(ValueError, match="shape"):
        IrregularPruning(classifier).fit(x[:, :, :4])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\]"):
        GreedyAdversarialPruning(classifier).fit(x[:10], y[:10] + 20)
    no_weights = to_art_classifier(nn.Sequential(nn.Flatten(), nn.ReLU()), classifier_info(), device="cpu")
    with pytest.raises(ValueError, match="no prunable weights"):
        IrregularPruning(no_weights)


def classifier_info():
    from gap_art.data import dataset_info

    return dataset_info("digits")

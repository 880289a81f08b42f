"""Edges of the Python API found by driving it as a user's own pipeline would."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.estimators.classification import BlackBoxClassifier, PyTorchClassifier

from gap_art.defences import GreedyAdversarialPruning, IrregularPruning
from gap_art.evaluation import evaluate_transfer
from gap_art.pruning import importance, prunable_parameters


def test_set_params_refuses_unknown_names_and_drops_stale_scores(classifier, digits):
    x, y = digits.numpy("train")
    gap = GreedyAdversarialPruning(classifier, 4.0, attack="fgsm", eps=0.1)
    gap.fit(x[:128], y[:128])
    with pytest.raises(ValueError, match=r"unknown parameters \['compresion'\].*known: \[.*'compression'"):
        gap.set_params(compresion=8)
    gap.set_params(compression=8.0)  # acts after scoring: the scores stay
    assert gap.is_fitted and gap.scores_ is not None
    before = dict(gap.scores_)
    gap.set_params(criterion="abs_grad")  # changes the scores: they are dropped
    assert not gap.is_fitted and gap.scores_ is None
    gap.fit(x[:128], y[:128])
    assert torch.equal(gap.scores_["features.0.weight"], before["features.0.weight"].abs())


def test_call_reuses_the_labels_given_to_fit_for_the_same_x(classifier, digits):
    x, y = digits.numpy("train")
    x, y = x[:200], y[:200]
    magnitude = IrregularPruning(classifier, 2.0, criterion="taylor", finetune_epochs=1)
    magnitude.fit(x, y)
    assert magnitude(x).model is not classifier.model  # fine-tunes with fit's labels
    with pytest.raises(ValueError, match=r"IrregularPruning.__call__ \(fine-tuning\)"):
        magnitude(x[:50].copy())
    with pytest.raises(ValueError, match=r"GreedyAdversarialPruning.__call__"):
        GreedyAdversarialPruning(classifier, 2.0, attack="fgsm")(x)


def test_ranges_and_missing_clip_values_are_refused_at_construction(classifier, digits):
    with pytest.raises(ValueError, match=r"eps must be in \(0.0, 1.0\], got -0.1"):
        GreedyAdversarialPruning(classifier, 2.0, eps=-0.1)
    with pytest.raises(ValueError, match="eps_step must be in"):
        GreedyAdversarialPruning(classifier, 2.0, eps_step=3.0)
    bare = PyTorchClassifier(classifier.model, torch.nn.CrossEntropyLoss(), (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"no clip_values.*clip_values=\(0.0, 1.0\)"):
        GreedyAdversarialPruning(bare, 2.0)
    assert IrregularPruning(bare, 2.0, criterion="magnitude").compression == 2.0  # needs no attack


def test_a_black_box_target_is_evaluated_through_predict_alone(classifier, digits):
    x, y = digits.numpy("test")
    x, y = x[:100], y[:100]

    def answer_labels(batch: np.ndarray) -> np.ndarray:  # e.g. a remote model that returns labels
        return np.eye(10, dtype=np.float32)[classifier.predict(batch).argmax(1)]

    remote = BlackBoxClassifier(answer_labels, (1, 8, 8), 10, clip_values=(0.0, 1.0))
    (result,) = evaluate_transfer(classifier, {"remote": remote}, x, y, "fgsm", eps=0.1, progress=False)
    (direct,) = evaluate_transfer(classifier, {"local": classifier}, x, y, "fgsm", eps=0.1, progress=False)
    assert (
        result.transfer_accuracy == direct.transfer_accuracy
        and result.clean_accuracy == direct.clean_accuracy
    )
    assert result.clean_top5 is None  # labels alone carry no ranking
    with pytest.raises(TypeError, match="predict"):
        evaluate_transfer(classifier, {"bad": object()}, x, y, "fgsm", eps=0.1, progress=False)


class PowerMagnitude(importance.Importance):
    """A criterion instance with a setting of its own: remove the smallest |w|^power."""

    description = "|w|^power"

    def __init__(self, power: float) -> None:
        self.power = power

    def score(self, inputs: importance.ScoringInputs) -> list[torch.Tensor]:
        return [getattr(m, n).detach().abs() ** self.power for m, n in inputs.targets]


def test_a_criterion_instance_carries_its_settings_into_both_transformers(classifier, digits):
    x, y = digits.numpy("train")
    by_instance = IrregularPruning(classifier, 4.0, criterion=PowerMagnitude(2.0))(x)
    by_name = IrregularPruning(classifier, 4.0, criterion="magnitude")(x)
    masks = [m.weight_mask for m, _ in prunable_parameters(by_instance.model)]
    same = [m.weight_mask for m, _ in prunable_parameters(by_name.model)]
    assert all(torch.equal(a, b) for a, b in zip(masks, same, strict=True))  # |w|^2 ranks as |w|
    with pytest.raises(ValueError, match="needs no attack: use IrregularPruning"):
        GreedyAdversarialPruning(classifier, 2.0, criterion=PowerMagnitude(1.0))
    gap_criterion = importance.get("gap-taylor")
    gap = GreedyAdversarialPruning(classifier, 2.0, criterion=gap_criterion)
    assert gap._importance() is gap_criterion
    with pytest.raises(ValueError, match="needs an attack: use GreedyAdversarialPruning"):
        IrregularPruning(classifier, 2.0, criterion=gap_criterion)


def test_method_is_a_deprecated_alias_of_criterion(classifier):
    with pytest.warns(FutureWarning, match=r"method=\.\.\.\) is deprecated: use criterion="):
        pruning = IrregularPruning(classifier, 2.0, method="random")
    assert pruning.criterion == "random" and pruning.method == "random"
    with pytest.warns(FutureWarning):
        pruning.set_params(method="magnitude")
    assert pruning.criterion == "magnitude" and "method" not in pruning.params
    with pytest.raises(TypeError, match="unexpected keyword argument 'methd'"):
        IrregularPruning(classifier, 2.0, methd="random")


def test_settings_errors_name_the_transformers_own_parameters(classifier):
    with pytest.raises(ValueError, match="finetune_epochs must be an integer >= 0"):
        IrregularPruning(classifier, 2.0, finetune_epochs=-1)
    with pytest.raises(ValueError, match="finetune_optimizer must be one of"):
        IrregularPruning(classifier, 2.0, finetune_optimizer="rmsprop")
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        GreedyAdversarialPruning(classifier, 2.0, max_iter=0)
    with pytest.raises(ValueError, match="attack_backend must be one of"):
        GreedyAdversarialPruning(classifier, 2.0, attack_backend="foolbox")
    spec = GreedyAdversarialPruning(
        classifier, 4.0, finetune_epochs=2, finetune_patience=1, seed=3
    ).method_spec()
    assert (spec.compression, spec.finetune.epochs, spec.finetune.patience, spec.seed) == (4.0, 2, 1, 3)
    assert spec.calibration_attack.steps == 10 and spec.calibration_attack.seed is None


def test_every_transformer_constructor_lists_every_keyword_it_takes():
    """As ART's and torchattacks' classes do: each of a transformer's ``params`` is a named
    keyword of its constructor, and none hides behind ``**kwargs`` (only ``**renamed``, the
    deprecated spellings, which warn)."""
    import inspect

    from art.defences.transformer import Transformer

    import gap_art.defences as defences

    checked = 0
    for name in dir(defences):
        cls = getattr(defences, name)
        if not (inspect.isclass(cls) and issubclass(cls, Transformer)):
            continue
        signature = inspect.signature(cls.__init__).parameters
        named = {k for k, p in signature.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        hidden = [k for k, p in signature.items() if p.kind == p.VAR_KEYWORD and k != "renamed"]
        assert not hidden and set(cls.params) <= named, (name, hidden, set(cls.params) - named)
        checked += 1
    assert checked >= 8

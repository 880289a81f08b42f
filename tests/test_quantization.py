import numpy as np
import pytest
import torch
import torchattacks
from art.attacks.evasion import ProjectedGradientDescent
from torch import nn

from gap_art.attacks import make_attack
from gap_art.classifiers import GradientFreeError, to_art_classifier
from gap_art.data import load_dataset
from gap_art.defences import GreedyAdversarialPruning, Int8Classifier, Int8Quantization, IrregularPruning
from gap_art.models import create_model
from gap_art.quantization import QuantizationError, int8_weights, model_size, quantize_int8
from gap_art.training import RECIPES, train_model


def _accuracy(classifier, x, y):
    return float((classifier.predict(x).argmax(1) == y).mean())


def test_int8_tensors_are_int8_and_accuracy_is_close(classifier, digits):
    x, _ = digits.numpy("train")
    xt, yt = digits.numpy("test")
    int8 = Int8Quantization(classifier)(x)
    weights = int8_weights(int8.quantized_model)
    assert len(weights) == 4 and all(w.dtype == torch.int8 for w in weights.values())
    assert abs(_accuracy(int8, xt, yt) - _accuracy(classifier, xt, yt)) <= 0.01


@pytest.mark.parametrize("n", [1, 3, 257])
def test_any_batch_size(classifier, digits, n):
    x, _ = digits.numpy("train")
    int8 = Int8Quantization(classifier, nb_calibration=200)(x)
    assert int8.predict(x[:n]).shape == (n, 10)
    assert int8.predict(x[:n], batch_size=2).shape == (n, 10)


def test_clip_values_and_preprocessing_are_kept(digits, digits_model):
    classifier = to_art_classifier(digits_model, digits.info, device="cpu", preprocessing=(0.3, 0.4))
    x, _ = digits.numpy("train")
    xt, yt = digits.numpy("test")
    int8 = Int8Quantization(classifier)(x)
    assert np.array_equal(int8.clip_values, classifier.clip_values)
    assert int8.preprocessing.mean == pytest.approx(0.3)
    assert abs(_accuracy(int8, xt, yt) - _accuracy(classifier, xt, yt)) <= 0.01


def _pruned_zero_masks(pruned):
    return [m.weight == 0 for m in pruned.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("method", ["gap", "magnitude"])
def test_prune_then_quantize_keeps_zeros_and_accuracy(classifier, digits, method):
    x, y = digits.numpy("train")
    xt, yt = digits.numpy("test")
    if method == "gap":
        pruned = GreedyAdversarialPruning(classifier, 4.0, finetune_epochs=5, seed=0)(x, y=y)
    else:
        pruned = IrregularPruning(classifier, 4.0, finetune_epochs=2)(x, y=y)
    int8 = Int8Quantization(pruned)(x)
    zeros = _pruned_zero_masks(pruned)
    quantized = list(int8_weights(int8.quantized_model).values())
    assert [q.shape for q in quantized] == [z.shape for z in zeros]
    for q, z in zip(quantized, zeros, strict=False):
        assert (q[z] == 0).all()
    assert abs(_accuracy(int8, xt, yt) - _accuracy(pruned, xt, yt)) <= 0.015
    assert _accuracy(pruned, xt, yt) > 0.5


def test_prune_then_quantize_on_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("GAP_ART_DATA", str(tmp_path))
    data = load_dataset("fashion-mnist", n_train=6000, n_test=1000, download=False)
    torch.manual_seed(0)
    model = create_model("lenet", data.info.input_shape, 10)
    train_model(model, data.train, 3, RECIPES["adam"], seed=0, device="cpu", progress=False)
    classifier = to_art_classifier(model, data.info, device="cpu")
    x, y = data.numpy("train")
    xt, yt = data.numpy("test")
    pruned = IrregularPruning(classifier, 4.0, finetune_epochs=1)(x, y=y)
    int8 = Int8Quantization(pruned, nb_calibration=1000)(x)
    assert _accuracy(pruned, xt, yt) > 0.7
    assert abs(_accuracy(int8, xt, yt) - _accuracy(pruned, xt, yt)) <= 0.015


def test_gradient_free_with_clear_errors_and_surrogate(classifier, digits):
    x, y = digits.numpy("test")
    int8 = Int8Quantization(classifier)(x)
    assert isinstance(int8, Int8Classifier) and int8.surrogate is classifier
    with pytest.raises(GradientFreeError, match="surrogate"):
        int8.loss_gradient(x[:2], y[:2])
    with pytest.raises(GradientFreeError, match="surrogate"):
        int8.class_gradient(x[:2])
    with pytest.raises(GradientFreeError, match="surrogate"):
        ProjectedGradientDescent(int8, eps=0.1, max_iter=2, verbose=False).generate(x[:2])
    with pytest.raises(GradientFreeError, match="surrogate"):
        make_attack("pgd", int8)
    with pytest.raises(GradientFreeError, match="surrogate"):
        torchattacks.PGD(int8.model, eps=0.1)(torch.from_numpy(x[:2]), torch.from_numpy(y[:2]))
    adv = make_attack("pgd", int8.surrogate, eps=0.2).generate(x, y)
    assert _accuracy(int8, adv, y) < _accuracy(int8, x, y)


def test_bad_calibration_and_untraceable_models(classifier, digits):
    x, _ = digits.numpy("train")
    with pytest.raises(ValueError, match="NaN"):
        bad = x[:10].copy()
        bad[0, 0, 0, 0] = np.nan
        Int8Quantization(classifier).fit(bad)
    with pytest.raises(ValueError, match="shape"):
        Int8Quantization(classifier).fit(x[:, :, :4])
    with pytest.raises(ValueError, match="at least one"):
        Int8Quantization(classifier).fit(x[:0])
    with pytest.raises(ValueError, match="backend must be one of"):
        Int8Quantization(classifier, backend="arm")

    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent Python control flow cannot be exported
                return self.fc(x.flatten(1))
            return -self.fc(x.flatten(1))

    with pytest.raises(QuantizationError, match="torch.export could not trace DataDependent"):
        quantize_int8(DataDependent(), torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="empty"):
        quantize_int8(classifier.model, torch.rand(0, 1, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        quantize_int8(classifier.model, torch.full((4, 1, 8, 8), float("nan")))


def test_xnnpack_backend(classifier, digits):
    x, _ = digits.numpy("train")
    xt, yt = digits.numpy("test")
    int8 = Int8Quantization(classifier, backend="xnnpack")(x)
    assert abs(_accuracy(int8, xt, yt) - _accuracy(classifier, xt, yt)) <= 0.02


def test_model_size_is_honest(digits_model):
    dense = model_size(digits_model)
    assert dense.n_parameters == sum(p.numel() for p in digits_model.parameters())
    assert dense.float32_bytes == 4 * dense.n_parameters
    assert dense.n_nonzero == dense.n_prunable
    with torch.no_grad():
        digits_model.classifier[1].weight.zero_()
    sparse = model_size(digits_model)
    assert sparse.n_nonzero == dense.n_prunable - 512 * 64
    assert sparse.sparse_int8_bytes < sparse.int8_bytes < sparse.float32_bytes
    assert sparse.sparse_float32_bytes < dense.sparse_float32_bytes


def test_compiled_int8_path_predicts_like_the_eager_one(classifier, digits):
    x, _ = digits.numpy("train")
    xt, _ = digits.numpy("test")
    eager = Int8Quantization(classifier, nb_calibration=256)(x)
    compiled = Int8Quantization(classifier, nb_calibration=256, compiled=True)(x)
    agree = (compiled.predict(xt).argmax(1) == eager.predict(xt).argmax(1)).mean()
    assert agree >= 0.99
    with pytest.raises(ValueError, match="compiled must be True or False"):
        Int8Quantization(classifier, compiled="yes")

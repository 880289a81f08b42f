import numpy as np
import pytest
import torch
from torch.nn.utils import prune

from gap_art.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gap_art.classifiers import rewrap_classifier, to_art_classifier
from gap_art.models import create_model
from gap_art.pruning import clone_module
from gap_art.runtime import resolve_device
from gap_art.training import evaluate_accuracy, train_model


def test_digits_model_reaches_real_accuracy(digits, digits_model):
    assert evaluate_accuracy(digits_model, digits.test, device="cpu") >= 0.85


def test_training_is_reproducible(digits):
    def run():
        torch.manual_seed(1)
        model = create_model("small-cnn", (1, 8, 8), 10)
        losses = train_model(model, digits.train, 2, seed=5, device="cpu", progress=False)
        return losses, model.state_dict()

    (l1, s1), (l2, s2) = run(), run()
    assert l1 == l2 and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_checkpoint_round_trip_keeps_masks(tmp_path, digits, digits_model):
    prune.l1_unstructured(digits_model.features[0], "weight", 0.5)
    path = save_checkpoint(tmp_path / "m.pt", digits_model, "small-cnn", digits.info, {"epochs": 3})
    model, info, extra = load_checkpoint(path)
    assert info == digits.info and extra == {"epochs": 3}
    assert prune.is_pruned(model)
    x = digits.test.tensors[0][:20]
    with torch.no_grad():
        assert torch.equal(model(x), digits_model.eval()(x))
    assert not list(tmp_path.glob(".*tmp"))


def test_bad_checkpoints_give_clear_errors(tmp_path, digits, digits_model):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gap-art checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    path = save_checkpoint(tmp_path / "ok.pt", digits_model, "small-cnn", digits.info)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


class _WritesAFile:
    """What a hostile checkpoint holds: unpickling it would run ``open(marker, "w")``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_every_unreadable_file_is_one_line_that_never_advises_weights_only_false(tmp_path, digits):
    import pickle
    import zipfile

    from gap_art.checkpoint import load_model

    marker = tmp_path / "pwned"
    torch.save({"state_dict": _WritesAFile(marker)}, tmp_path / "hostile.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "foreign.zip.pt", "w") as archive:
        archive.writestr("notes.txt", "not torch")
    (tmp_path / "pickle.pt").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    (tmp_path / "bytes.pt").write_bytes(bytes(range(256)) * 4)
    torch.save({"a": torch.ones(3)}, tmp_path / "whole.pt")
    (tmp_path / "truncated.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:-40])
    for name in ("hostile.pt", "empty.pt", "foreign.zip.pt", "pickle.pt", "bytes.pt", "truncated.pt"):
        with pytest.raises(CheckpointError) as caught:
            load_model(tmp_path / name, digits.info, "small-cnn")
        message = str(caught.value)
        assert (
            "\n" not in message
            and "weights_only" not in message
            and "expected a gap-art checkpoint" in message
        )
    assert not marker.exists()  # the hostile object was never built
    with pytest.raises(CheckpointError, match="Python objects"):
        load_model(tmp_path / "hostile.pt", digits.info, "small-cnn")


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, digits, digits_model, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", digits_model, "small-cnn", digits.info)
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, digits_model, "small-cnn", digits.info)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_art_wrapper_predicts_like_the_model(digits, digits_model):
    classifier = to_art_classifier(digits_model, digits.info, device="cpu")
    x, _ = digits.numpy("test")
    with torch.no_grad():
        expected = digits_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(classifier.predict(x), expected, rtol=1e-5, atol=1e-5)
    assert classifier.input_shape == (1, 8, 8) and classifier.nb_classes == 10
    assert tuple(classifier.clip_values) == (0.0, 1.0)


def test_clone_of_a_pruned_model_is_independent(digits, digits_model):
    prune.random_unstructured(digits_model.classifier[1], "weight", 0.3)
    clone = clone_module(digits_model)
    clone.classifier[1].weight_orig.data.add_(1.0)
    assert not torch.equal(clone.classifier[1].weight_orig, digits_model.classifier[1].weight_orig)
    assert torch.equal(clone.classifier[1].weight_mask, digits_model.classifier[1].weight_mask)
    x = digits.test.tensors[0][:4]
    clone(x)  # the copy's mask hook is live
    assert (clone.classifier[1].weight[clone.classifier[1].weight_mask == 0] == 0).all()


def test_rewrap_carries_settings(digits, digits_model):
    classifier = to_art_classifier(digits_model, digits.info, device="cpu", preprocessing=(0.5, 0.2))
    other = rewrap_classifier(classifier, clone_module(digits_model))
    x, _ = digits.numpy("test")
    np.testing.assert_allclose(other.predict(x[:10]), classifier.predict(x[:10]), atol=1e-6)
    assert other.model is not classifier.model and other.nb_classes == 10

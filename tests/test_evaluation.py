import json

import numpy as np
import pytest
import torch
from torch import nn

from gap_art.attacks import make_attack
from gap_art.classifiers import GradientFreeError, to_art_classifier
from gap_art.data import DatasetInfo
from gap_art.defences import Int8Quantization, IrregularPruning
from gap_art.evaluation import (
    evaluate_transfer,
    evaluate_whitebox,
    format_table,
    to_csv,
    to_json,
    wilson_interval,
)


def test_fgsm_backends_agree_on_examples_and_metrics(classifier, digits):
    x, y = digits.numpy("test")
    a = make_attack("fgsm", classifier, backend="torchattacks", eps=0.1).generate(x, y)
    b = make_attack("fgsm", classifier, backend="art", eps=0.1).generate(x, y)
    np.testing.assert_allclose(a, b, atol=1e-6)
    ra = evaluate_transfer(classifier, classifier, x, y, "fgsm", eps=0.1, progress=False)[0]
    rb = evaluate_transfer(classifier, classifier, x, y, "fgsm", eps=0.1, backend="art", progress=False)[0]
    assert ra.transfer_accuracy == rb.transfer_accuracy and ra.clean_accuracy == rb.clean_accuracy


def test_backends_honour_clip_values_and_normalization(digits, digits_model):
    info = DatasetInfo("scaled", (1, 8, 8), 10, 0.1, clip_values=(0.0, 255.0))

    class Scaled(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    # the model sees (x - 0) / 255: the same function as the digits model on [0, 1] inputs
    classifier = to_art_classifier(Scaled(digits_model), info, device="cpu", preprocessing=(0.0, 255.0))
    x, y = digits.numpy("test")
    x255 = x * 255.0
    for backend in ("torchattacks", "art"):
        adv = make_attack(
            "pgd", classifier, backend=backend, eps=0.2 * 255, eps_step=0.05 * 255, random_start=False
        ).generate(x255, y)
        assert adv.min() >= 0 and adv.max() <= 255.0 + 1e-3
        assert np.abs(adv - x255).max() <= 0.2 * 255 + 1e-3
        assert (classifier.predict(adv).argmax(1) == y).mean() < 0.2
    a = make_attack("fgsm", classifier, eps=25.5).generate(x255, y)
    b = make_attack("fgsm", classifier, backend="art", eps=25.5).generate(x255, y)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_self_target_known_answers(classifier, digits):
    x, y = digits.numpy("test")
    (result,) = evaluate_transfer(classifier, {"self": classifier}, x, y, "pgd", eps=0.2, progress=False)
    assert result.transfer_accuracy == result.source_whitebox_accuracy
    assert result.clean_accuracy == result.source_clean_accuracy
    assert result.transfer_success_rate == 1.0
    assert result.both_correct == result.transfer_accuracy
    assert result.n == len(y) and result.linf_mean == pytest.approx(0.2, abs=1e-5)
    assert result.l2_mean > 0 and result.clean_top5 >= result.clean_accuracy


class _Constant(nn.Module):
    """Ignores its input: always predicts class 3."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        out = torch.zeros(len(x), 10, device=x.device) + self.bias
        out[:, 3] = 1.0
        return out


def test_a_target_that_ignores_its_input(classifier, digits):
    x, y = digits.numpy("test")
    constant = to_art_classifier(_Constant(), digits.info, device="cpu")
    (result,) = evaluate_transfer(classifier, {"constant": constant}, x, y, "fgsm", eps=0.2, progress=False)
    expected = float((y == 3).mean())
    assert result.clean_accuracy == result.transfer_accuracy == pytest.approx(expected)
    assert result.transfer_success_rate == 0.0


def test_int8_targets_and_reproducibility(classifier, digits):
    x, y = digits.numpy("test")
    xt, yt = digits.numpy("train")
    targets = {
        "magnitude": IrregularPruning(classifier, 2.0)(xt, y=yt),
        "int8": Int8Quantization(classifier)(xt),
    }
    first = evaluate_transfer(classifier, targets, x, y, "pgd", eps=0.2, seed=3, progress=False)
    second = evaluate_transfer(classifier, targets, x, y, "pgd", eps=0.2, seed=3, progress=False)
    assert [r.to_dict() for r in first] == [r.to_dict() for r in second]
    assert [r.target for r in first] == ["magnitude", "int8"]
    with pytest.raises(GradientFreeError):
        evaluate_transfer(targets["int8"], classifier, x, y, "fgsm")
    with pytest.raises(GradientFreeError):
        evaluate_whitebox(targets["int8"], x, y, "fgsm")


def test_intervals_contain_the_estimate_and_shrink():
    for k, n in [(0, 10), (3, 10), (10, 10), (300, 1000)]:
        low, high = wilson_interval(k, n)
        assert 0 <= low <= k / n <= high <= 1
    assert np.diff(wilson_interval(50, 100)) > np.diff(wilson_interval(500, 1000))
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_result_intervals_and_export(classifier, digits, tmp_path):
    x, y = digits.numpy("test")
    results = evaluate_transfer(
        classifier, {"self": classifier}, x[:100], y[:100], "fgsm", eps=0.1, progress=False
    )
    low, high = results[0].intervals["transfer_accuracy"]
    assert low <= results[0].transfer_accuracy <= high
    rows = json.loads(to_json(results, tmp_path / "r.json"))
    assert rows[0]["transfer_accuracy_ci_low"] == low
    csv_text = to_csv(results, tmp_path / "r.csv")
    assert csv_text.splitlines()[0].startswith("target,attack,n,")
    assert (tmp_path / "r.csv").read_text() == csv_text
    table = format_table(results)
    assert "transfer" in table and "self" in table


def test_whitebox_shows_pruning_is_not_a_general_defence(classifier, digits):
    x, y = digits.numpy("test")
    xt, yt = digits.numpy("train")
    pruned = IrregularPruning(classifier, 2.0)(xt, y=yt)
    result = evaluate_whitebox(pruned, x, y, "pgd", eps=0.2, progress=False)
    assert result.adversarial_accuracy < 0.2 < result.clean_accuracy


def test_bad_input(classifier, digits):
    x, y = digits.numpy("test")
    other = to_art_classifier(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), DatasetInfo("five", (1, 8, 8), 5, 0.1), device="cpu"
    )
    with pytest.raises(ValueError, match="5 classes"):
        evaluate_transfer(classifier, {"five": other}, x, y)
    with pytest.raises(ValueError, match="labels for"):
        evaluate_transfer(classifier, classifier, x, y[:10])
    with pytest.raises(ValueError, match="labels must be in"):
        evaluate_transfer(classifier, classifier, x, y + 10)
    with pytest.raises(ValueError, match=r"eps must be in \[0.0, 1.0\]"):
        evaluate_transfer(classifier, classifier, x, y, "pgd", eps=2.0)
    with pytest.raises(ValueError, match=r"eps must be in"):
        evaluate_transfer(classifier, classifier, x, y, "pgd", eps=-0.1)
    with pytest.raises(ValueError, match="attack must be one of"):
        evaluate_transfer(classifier, classifier, x, y, "deepfool")


def test_a_studys_logits_memo_scores_each_model_once_and_changes_no_number(classifier, digits):
    """The bench scores every cell of a target on the same clean examples and every target on
    the same attacker's examples: its memo predicts each (model, inputs) once, with the numbers
    of a plain evaluation."""
    from gap_art.bench import BenchConfig
    from gap_art.bench.context import Context
    from gap_art.evaluation import craft_examples

    x, y = digits.numpy("test")
    xt, yt = digits.numpy("train")
    targets = {"magnitude": IrregularPruning(classifier, 2.0)(xt, y=yt), "random": classifier}
    x_adv = craft_examples(classifier, x, y, "fgsm", eps=0.2)
    plain = evaluate_transfer(classifier, targets, x, y, "fgsm", x_adv=x_adv, progress=False)

    calls: list[int] = []
    predict = classifier.predict
    classifier.predict = lambda inputs, **kw: calls.append(len(inputs)) or predict(inputs, **kw)
    context = Context(BenchConfig(), None)  # type: ignore[arg-type]
    scored = [
        evaluate_transfer(
            classifier, {n: t}, x, y, "fgsm", x_adv=x_adv, logits=context.logits, progress=False
        )
        for n, t in targets.items()
    ]
    memo = [result for (result,) in scored]
    assert [r.to_dict() for r in memo] == [r.to_dict() for r in plain]
    for a, b in zip(memo, plain, strict=True):
        assert all(np.array_equal(a.per_example[k], b.per_example[k]) for k in b.per_example)
    assert len(calls) == 2  # the source (and the "random" target, the same model): clean and adversarial once
    assert np.array_equal(context.logits(classifier, x), predict(x, batch_size=256)) and len(calls) == 2
    context.logits(classifier, x[:10])
    assert len(calls) == 3  # other inputs: predicted again


class _Answers:
    """A classifier that answers fixed labels (``predict`` returns their one-hot rows)."""

    nb_classes = 3

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def predict(self, x):
        return np.eye(3)[self.labels[: len(x)]]


def test_model_health_names_collapsed_classes_and_chance_accuracy():
    from gap_art.evaluation.health import model_health

    y = np.repeat([0, 1, 2], 40)
    x = np.zeros((len(y), 1))
    parent = _Answers(y)
    lost_class = _Answers(np.where(y == 0, 1, y))  # never answers class 0
    constant = _Answers(np.ones_like(y))
    healthy = model_health(parent, _Answers(y), x, y)
    assert healthy.collapsed == {} and not healthy.at_chance and healthy.warnings() == []
    broken = model_health(parent, lost_class, x, y)
    assert broken.collapsed == {0: (0.0, 1.0)} and not broken.at_chance
    assert broken.warnings() == ["class 0: recall 0.00 against the parent's 1.00 (below half of it)"]
    chance = model_health(parent, constant, x, y)
    assert chance.at_chance and chance.broken and chance.majority_rate == pytest.approx(1 / 3)
    assert "at chance" in chance.warnings()[-1] and set(chance.collapsed) == {0, 2}
    untrained = model_health(constant, constant, x, y)  # the parent was at chance already
    assert (
        untrained.at_chance
        and not untrained.broken
        and "the parent: at chance too" in untrained.warnings()[0]
    )


@pytest.mark.parametrize("name", ["difgsm", "tifgsm", "vmifgsm", "apgd-dlr", "tpgd"])
def test_the_transfer_and_margin_attacks_stay_in_budget_and_fool_the_source(classifier, digits, name):
    """DI-, TI- and VMI-FGSM (torchattacks), Auto-PGD on the DLR margin loss and TRADES' TPGD
    (KL from the clean prediction): within eps,
    inside the clip range, the same examples for the same seed, and white-box on the source
    they leave far fewer correct than clean (TI-FGSM on these grey images: three identical
    channels, which stay identical)."""
    from gap_art.attacks import make_attack

    x, y = digits.numpy("test")
    x, y = x[:64], y[:64]
    eps = digits.info.eps
    adv = make_attack(name, classifier, eps=eps, seed=3).generate(x, y)
    again = make_attack(name, classifier, eps=eps, seed=3).generate(x, y)
    low, high = classifier.clip_values
    assert np.abs(adv - x).max() <= eps + 1e-6 and adv.min() >= low - 1e-6 and adv.max() <= high + 1e-6
    np.testing.assert_array_equal(adv, again)
    clean = (classifier.predict(x).argmax(1) == y).mean()
    assert (classifier.predict(adv).argmax(1) == y).mean() < clean / 2


def test_tpgd_reads_no_labels(classifier, digits):
    """TPGD moves away from the model's own clean prediction: any labels give the same
    examples, so a hardening that trains on it cannot leak them."""
    from gap_art.attacks import make_attack

    x, y = digits.numpy("test")
    attack = make_attack("tpgd", classifier, eps=digits.info.eps, seed=1)
    np.testing.assert_array_equal(attack.generate(x[:32], y[:32]), attack.generate(x[:32], (y[:32] + 1) % 10))


def test_an_attack_art_lacks_is_a_usage_error_naming_the_backend(classifier):
    from gap_art.attacks import make_attack
    from gap_art.bench import BenchConfig
    from gap_art.bench.config import ConfigError
    from gap_art.errors import ParameterError

    with pytest.raises(ParameterError, match="backend: attack 'vmifgsm' exists only in torchattacks"):
        make_attack("vmifgsm", classifier, backend="art")
    with pytest.raises(ConfigError, match="attack_backend: attack 'tifgsm'"):
        BenchConfig(attacks=["pgd", "tifgsm"], attack_backend="art").validate(files=False)
    assert make_attack("apgd-dlr", classifier, backend="art").attack.__class__.__name__ == (
        "AutoProjectedGradientDescent"
    )


def test_a_model_is_broken_only_where_its_parent_beat_chance_beyond_noise():
    """An untrained parent a little above the majority rate by sampling noise (0.113 against
    0.102 over 360 examples) did not have the task, so a pruned copy at chance lost nothing;
    a parent at 0.9 did."""
    from gap_art.evaluation.health import ModelHealth

    noise = ModelHealth(accuracy=0.098, parent_accuracy=0.113, majority_rate=0.102, collapsed={}, n=360)
    assert noise.at_chance and not noise.parent_above_chance and not noise.broken
    assert "at chance too" in noise.warnings()[0]
    trained = ModelHealth(accuracy=0.098, parent_accuracy=0.9, majority_rate=0.102, collapsed={}, n=360)
    assert trained.broken and "0.9000" in trained.warnings()[0]
    few = ModelHealth(accuracy=0.098, parent_accuracy=0.113, majority_rate=0.102, collapsed={}, n=0)
    assert few.broken  # without a count, any lead counts, as before

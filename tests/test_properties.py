"""Property tests (hypothesis): the invariants the typed-settings refactor must keep."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

from gap_art.bench import PRESETS, BenchConfig
from gap_art.bench.rows import pack_correct, unpack_correct
from gap_art.evaluation.metrics import mcnemar_exact
from gap_art.jsonable import from_dict
from gap_art.pruning.masks import apply_masks, current_mask
from gap_art.pruning.selection import compute_masks, weights_to_keep
from gap_art.settings import AttackSpec, FinetuneSpec, MethodSpec
from gap_art.training import train_to_convergence, validation_split

FAST = settings(max_examples=60, deadline=None)


def _layers(sizes: list[int]) -> list[tuple[nn.Module, str]]:
    return [(nn.Linear(size, 1, bias=False), "weight") for size in sizes]


@FAST
@given(
    sizes=st.lists(st.integers(2, 40), min_size=1, max_size=5),
    first=st.floats(1.1, 3.0),
    factor=st.floats(1.05, 3.0),
    first_scope=st.sampled_from(["global", "layer"]),
    scope=st.sampled_from(["global", "layer"]),
    seed=st.integers(0, 2**16),
    offsets=st.lists(st.floats(0.0, 5.0), min_size=5, max_size=5),
)
@example(  # a layer pruned past its share used to push the total over (max(share, already removed))
    sizes=[2, 2], first=2.0, factor=2.0, first_scope="global", scope="layer", seed=0, offsets=[0.0] * 5
)
def test_masks_already_present_count_and_the_ratio_is_exact(
    sizes, first, factor, first_scope, scope, seed, offsets
):
    """Pruning again at a higher ratio keeps what was removed and removes exactly the budget,
    in either scope (a layer already past its share must not push the total over)."""
    targets = _layers(sizes)
    total = sum(sizes)
    second = first * factor
    generator = torch.Generator().manual_seed(seed)
    # a layer's scores may sit apart from the others', so one layer can be pruned past its share
    scores = [
        torch.rand(getattr(m, n).shape, generator=generator) + offset
        for (m, n), offset in zip(targets, offsets[: len(targets)], strict=True)
    ]
    try:
        apply_masks(targets, compute_masks(targets, scores, first, first_scope, seed=seed))
        before = [current_mask(m, n) == 0 for m, n in targets]
        masks = compute_masks(targets, [torch.rand_like(s) for s in scores], second, scope, seed=seed)
    except ValueError as error:  # a ratio that would remove every weight of a tiny model
        assert "would remove every prunable weight" in str(error)
        return
    removed = sum(int((mask == 0).sum()) for mask in masks)
    assert removed == total - weights_to_keep(total, second)
    for mask, was_removed in zip(masks, before, strict=True):
        assert bool((mask[was_removed] == 0).all())


@FAST
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=300))
def test_exact_mcnemar_is_scipy_binomtest_and_symmetric(pairs):
    first = np.array([a for a, _ in pairs])
    second = np.array([b for _, b in pairs])
    test = mcnemar_exact(first, second)
    only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
    discordant = only_first + only_second
    expected = stats.binomtest(only_first, discordant, 0.5).pvalue if discordant else 1.0
    assert test.p_value == pytest.approx(expected)
    swapped = mcnemar_exact(second, first)
    assert swapped.p_value == pytest.approx(test.p_value)
    assert swapped.difference == pytest.approx(-test.difference)
    assert (swapped.only_first, swapped.only_second) == (test.only_second, test.only_first)


@FAST
@given(st.lists(st.booleans(), min_size=0, max_size=100).filter(lambda flags: len(flags) % 8 != 0))
def test_per_example_correctness_packs_and_unpacks_for_any_length(flags):
    array = np.array(flags, dtype=bool)
    row = {"transfer_correct": pack_correct(array), "n": len(array)}
    assert np.array_equal(unpack_correct(row), array)


@FAST
@given(n=st.integers(2, 500), fraction=st.floats(0.01, 0.5), seed=st.integers(0, 2**20))
def test_validation_split_is_disjoint_from_the_training_rows(n, fraction, seed):
    train, held = validation_split(n, fraction, seed)
    assert set(train).isdisjoint(held)
    assert sorted([*train, *held]) == list(range(n))
    assert len(held) == max(1, round(n * fraction))


@FAST
@given(
    n=st.integers(4, 200),
    patience=st.integers(1, 3),
    fraction=st.floats(0.05, 0.5),
    keep_start=st.booleans(),
)
def test_the_convergence_loop_scores_only_rows_it_never_trains_on(n, patience, fraction, keep_start):
    """Model selection reads held-out training rows only: what the scorer sees and what the
    trainer sees are disjoint and together are the rows given (the test split is never given)."""
    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.zeros(n, dtype=np.int64)
    model = nn.Linear(1, 1)
    seen: dict[str, np.ndarray] = {}

    def train(xs, ys, after_epoch):
        seen["train"] = xs[:, 0]
        for epoch in range(1, 6):
            with torch.no_grad():
                model.weight.add_(1.0)
            if after_epoch is not None and after_epoch(epoch):
                return

    def score(x_held, y_held):
        seen["held"] = x_held[:, 0]
        return lambda: float(model.weight.item() % 3)

    spec = FinetuneSpec(5, patience, fraction)
    record = train_to_convergence(model, x, y, spec, train, score, keep_start)
    assert set(seen["train"]).isdisjoint(seen["held"])
    assert sorted([*seen["train"], *seen["held"]]) == list(range(n))
    assert record.validation_accuracy[record.best_epoch - (0 if keep_start else 1)] == max(
        record.validation_accuracy
    )


configs = st.builds(
    BenchConfig,
    dataset=st.sampled_from(["digits", "fashion-mnist"]),
    arch=st.sampled_from(["small-cnn", "lenet", "lenet-wide"]),
    methods=st.lists(st.sampled_from(["gap-grad", "random", "magnitude+tat", "gap-iter"]), min_size=1),
    compression=st.lists(st.floats(1.5, 16), min_size=1, max_size=3),
    eps=st.none() | st.floats(0.01, 0.3),
    seeds=st.lists(st.integers(0, 100), min_size=1, max_size=3),
    finetune_patience=st.none() | st.integers(1, 5),
    n_test=st.none() | st.integers(1, 1000),
    int8=st.booleans(),
    curve_eps=st.lists(st.floats(0.1, 4.0), max_size=3),
)


@FAST
@given(configs)
def test_the_config_survives_its_dict_and_json_round_trip(config):
    config = config.validate()
    assert BenchConfig.from_dict(config.to_dict()) == config
    assert BenchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_survives_its_dict_round_trip(name):
    assert BenchConfig.from_dict(PRESETS[name].to_dict()) == PRESETS[name]


@FAST
@given(
    name=st.sampled_from(["gap-grad", "magnitude+iter+tat", "gap-iter", "random+gal"]),
    compression=st.floats(1.1, 32),
    epochs=st.integers(0, 20),
    eps=st.none() | st.floats(0.001, 1.0),
    seed=st.integers(0, 1000),
)
def test_a_method_spec_survives_its_json_round_trip(name, compression, epochs, eps, seed):
    spec = MethodSpec.parse(
        name,
        compression=compression,
        finetune=FinetuneSpec(epochs),
        hardening_attack=AttackSpec(eps=eps),
        seed=seed,
    )
    assert from_dict(MethodSpec, json.loads(json.dumps(asdict(spec)))) == spec
    assert spec.finetune.seed == seed  # one seed governs the method and its fine-tuning


@FAST
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_holm_adjusts_upward_and_keeps_the_order(p_values):
    from gap_art.evaluation import holm

    adjusted = holm(p_values)
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    assert all(p <= a <= 1.0 for a, p in zip(adjusted, p_values, strict=True))
    ranked = [adjusted[i] for i in order]
    assert ranked == sorted(ranked)  # monotone in the raw p-values
    assert ranked[0] == pytest.approx(min(1.0, m * p_values[order[0]]))  # the smallest: Bonferroni
    assert ranked[-1] >= min(1.0, p_values[order[-1]])  # the largest: at least itself


def test_holm_on_a_hand_computed_family():
    from gap_art.evaluation import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])

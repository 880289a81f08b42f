"""Tasks hand each other typed results: each kind survives the cache's JSON as the same value
and type, and a record the cache cannot read back is redone, never misread."""

import json

import pytest

from gap_art.bench.rows import as_row
from gap_art.bench.store import Store
from gap_art.bench.target_spec import TargetResult, ValidationPoint
from gap_art.bench.targets import Int8Spec, PrunedSpec
from gap_art.bench.task_results import (
    CellResult,
    CraftResult,
    Failure,
    ModelSize,
    SanityResult,
    SourceCurve,
    SourceResult,
    result_from_dict,
)
from gap_art.evaluation.sanity import SanityCheck
from gap_art.settings import AttackSpec, MethodSpec

SIZE = ModelSize(4.0, 0.75, 1200, "float32+bitmap", 4800, {"0.weight": 0.75})
ENV = {"device": "cpu", "torch_threads": 2, "cpu_capability": "avx2", "precision": "float32"}
PRUNED = TargetResult(
    spec=PrunedSpec(0, "gap-grad@4x", "gap-grad", MethodSpec(criterion="gap-grad", compression=4.0)),
    checkpoint="target-1.pt",
    size=SIZE,
    excluded_layers=("fc.weight",),
    finetune_epochs_run=3,
    finetune_best_epoch=2,
    gap_eps=0.1,
    gap_eps_step=0.01,
    gap_steps=10,
    validation_curve=((0, 0.8, 0.1, 0.0), (1, 0.85, 0.2, 0.05)),
    validation_curve_sources=(SourceCurve("independent", (0.3, 0.4)), SourceCurve("replica", (0.1, None))),
    epoch_checkpoints=("target-1.epoch0.pt", "target-1.epoch1.pt"),
    validation=ValidationPoint(0.85, 0.2, (0.9, None), (3, 0), "pgd", "e0", "40", "00"),
    time_s=1.5,
    environment=ENV,
)
RESULTS = [
    SourceResult(checkpoint="source-1.pt", size=SIZE, time_s=2.0, environment=ENV),
    CraftResult(
        examples="c.npz", sources=("a.pt", "b.pt"), attack=AttackSpec("pgd", eps=0.1), n=200, time_s=3.0
    ),
    PRUNED,
    TargetResult(
        spec=Int8Spec(0, "gap-grad@4x+int8", "gap-grad", parent="gap-grad@4x"), parent_checkpoint="x.pt"
    ),
    CellResult(columns=as_row({"transfer_accuracy": 0.5, "n": 200}), time_s=0.2),
    SanityResult(seed=1, checks=(SanityCheck("pgd beats fgsm", True, 0.1, "<= fgsm", ("pgd",)),)),
    Failure(error="RuntimeError: boom", traceback="Traceback ..."),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_every_result_kind_survives_the_caches_json(result, tmp_path):
    assert result_from_dict(json.loads(json.dumps(result.to_dict()))) == result
    store = Store(tmp_path)
    store.prepare()
    store.write_result("task-1", result)
    assert store.read_result("task-1") == result and type(store.read_result("task-1")) is type(result)


def test_a_target_gives_its_row_the_columns_it_has():
    columns = PRUNED.row_columns()
    assert columns["compression"] == 4.0 and columns["validation_clean_accuracy"] == 0.85
    assert columns["validation_curve"] == [
        [0, 0.8, 0.1, 0.0],
        [1, 0.85, 0.2, 0.05],
    ]  # as results.json holds it
    assert columns["validation_curve_sources"][1] == {"source": "replica", "accuracy": [0.1, None]}
    assert "epoch_checkpoints" not in columns  # the cache's business, not the results'
    assert columns["excluded_layers"] == ["fc.weight"] and columns["time_s"] == 1.5
    dense = TargetResult(spec=PRUNED.spec, checkpoint="s.pt", size=SIZE)
    assert "finetune_epochs_run" not in dense.row_columns()  # a method's record, where it has one


def test_a_record_of_another_version_or_torn_is_redone(tmp_path):
    store = Store(tmp_path)
    store.prepare()
    store.path("old", ".json").write_text(json.dumps({"checkpoint": "a.pt", "time_s": 1.0}))
    store.path("torn", ".json").write_text('{"result": "source", "checkpoint": ')
    assert store.read_result("old") is None and store.read_result("torn") is None
    assert Failure(error="x").failed and not SourceResult().failed

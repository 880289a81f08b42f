"""Your architecture, your data, and files you can ship (issue 23): a model class gap-art has
never seen, on images it has never seen, through every command; shipped files smaller than the
dense one; every broken input one line and exit 2."""

from __future__ import annotations

import json
import runpy
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gap_art.checkpoint import CheckpointError, checkpoint_info, load_model, save_checkpoint
from gap_art.cli import main
from gap_art.data import DatasetInfo, DataSpec, load_files
from gap_art.models import ModelInputError, create_model

REPO = Path(__file__).resolve().parents[1]

NET_SOURCE = """
from torch import nn

IMPORTED = []


class Net(nn.Module):
    def __init__(self, num_classes, in_channels=1, width=4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.LazyLinear(num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def small(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))


def needs(depth):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, depth))


def fixed():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
"""


@pytest.fixture
def own_module(tmp_path, monkeypatch):
    """A module of the user's own, importable as ``usernets`` (as from their project folder)."""
    (tmp_path / "usernets.py").write_text(NET_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "usernets"
    sys.modules.pop("usernets", None)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# An architecture from anywhere -----------------------------------------------------------------


def test_an_import_path_builds_a_class_or_a_factory_told_classes_and_channels(own_module):
    net = create_model(f"{own_module}:Net", (3, 8, 8), 5, {"width": 2})
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 5) and net.body[0].out_channels == 2
    assert create_model(f"{own_module}:small", (1, 8, 8), 7)(torch.zeros(1, 1, 8, 8)).shape == (1, 7)
    with pytest.raises(ModelInputError, match="num_classes"):  # a factory that ignores the class count
        create_model(f"{own_module}:fixed", (1, 8, 8), 10)
    for name, message in [
        ("no_such_module_xyz:Net", "cannot import module"),
        (f"{own_module}:Missing", "has no 'Missing'"),
        (f"{own_module}:IMPORTED", "class or a function"),
        (f"{own_module}:needs", "could not be built"),
    ]:
        with pytest.raises(ValueError, match=message):
            create_model(name, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="arch_kwargs"):
        create_model("small-cnn", (1, 8, 8), 10, {"width": 3})


def test_a_timm_model_is_built_randomly_initialised_without_a_download():
    pytest.importorskip("timm", reason="timm is the optional 'timm' extra")
    model = create_model("timm:resnet10t", (3, 32, 32), 10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="not a timm model"):
        create_model("timm:resnet-that-is-not", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="download"):
        create_model("timm:resnet10t", (3, 32, 32), 10, {"pretrained": True})


def test_a_checkpoint_of_own_code_imports_it_only_when_the_user_names_it(tmp_path, own_module, digits):
    net = create_model(f"{own_module}:Net", digits.info.input_shape, 10, {"width": 3})
    path = save_checkpoint(
        tmp_path / "own.pt", net, f"{own_module}:Net", digits.info, arch_kwargs={"width": 3}
    )
    sys.modules.pop(own_module, None)
    with pytest.raises(CheckpointError, match=f"pass --arch {own_module}:Net"):
        load_model(path)
    assert own_module not in sys.modules  # refusing imported nothing the file named
    model, arch = load_model(path, arch=f"{own_module}:Net")  # recorded dataset and kwargs
    assert arch == f"{own_module}:Net" and model.body[0].out_channels == 3
    x = torch.rand(4, *digits.info.input_shape)
    assert torch.equal(model(x), net.eval()(x))


# Data from anywhere ----------------------------------------------------------------------------


def _image_tree(root: Path, mode: str, size=(12, 10), classes=("cat", "dog"), test="test", n=3) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", test):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                shape = size if mode == "L" else (*size, 3)
                pixels = rng.integers(0, 256, size=shape, dtype=np.uint8) // (label + 1)
                Image.fromarray(pixels, mode).save(folder / f"{i}.png")
    return root


def test_an_image_folder_reads_as_tensors_in_pixel_space(tmp_path):
    grey = load_files(_image_tree(tmp_path / "grey", "L"), n_train=4)
    assert grey.info.input_shape == (1, 12, 10) and grey.info.nb_classes == 2 and len(grey.train) == 4
    x, y = grey.numpy("test")
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and set(y) == {0, 1}
    rgb = load_files(
        _image_tree(tmp_path / "rgb", "RGB", test="val"), input_size=(16, 16), mean=(0.5,), std=(0.2,)
    )
    assert rgb.info.input_shape == (3, 16, 16) and rgb.info.preprocessing == ((0.5,) * 3, (0.2,) * 3)
    _image_tree(tmp_path / "odd", "L", classes=("a",))
    (tmp_path / "odd" / "test" / "b").mkdir()
    Image.fromarray(np.zeros((12, 10), np.uint8), "L").save(tmp_path / "odd" / "test" / "b" / "0.png")
    with pytest.raises(ValueError, match="classes"):
        load_files(tmp_path / "odd")
    Image.fromarray(np.zeros((5, 5), np.uint8), "L").save(tmp_path / "grey" / "train" / "cat" / "small.png")
    with pytest.raises(ValueError, match="--input-size"):
        load_files(tmp_path / "grey")
    with pytest.raises(ValueError, match="train/ and test/"):
        load_files(tmp_path / "grey" / "train")


def test_an_npz_reads_channels_last_uint8_and_refuses_what_it_cannot(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 6, 6, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 4, 20),
        "x_test": rng.integers(0, 256, (8, 6, 6, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 4, 8),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    data = load_files(tmp_path / "d.npz")
    assert data.info.input_shape == (3, 6, 6) and data.info.nb_classes == 4
    x, _ = data.numpy("train")
    assert np.allclose(x[0, :, 1, 2], arrays["x_train"][0, 1, 2] / 255.0)
    np.savez(tmp_path / "float.npz", **{**arrays, "x_train": arrays["x_train"] * 2.0})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_files(tmp_path / "float.npz")
    np.savez(tmp_path / "short.npz", x_train=arrays["x_train"])
    with pytest.raises(ValueError, match="lacks"):
        load_files(tmp_path / "short.npz")


def test_normalisation_is_art_preprocessing_so_eps_stays_in_pixel_space(digits):
    from gap_art.classifiers import ClassifierModule, to_art_classifier

    info = DatasetInfo("d", (1, 8, 8), 10, 0.2, mean=(0.3,), std=(0.5,))
    model = create_model("small-cnn", (1, 8, 8), 10).eval()
    classifier = to_art_classifier(model, info, device="cpu")
    x = digits.numpy("test")[0][:4]
    with torch.no_grad():
        expected = model((torch.from_numpy(x) - 0.3) / 0.5).numpy()
        assert np.allclose(ClassifierModule(classifier)(torch.from_numpy(x)).numpy(), expected, atol=1e-5)
    assert np.allclose(classifier.predict(x), expected, atol=1e-5)
    assert classifier.clip_values.tolist() == [0.0, 1.0]  # attacks clip in pixel space


def test_a_checkpoints_recorded_data_is_the_default(tmp_path, digits):
    np.savez(
        tmp_path / "mine.npz",
        **{key: value for key, value in zip(("x_train", "y_train"), digits.numpy("train"), strict=True)},
        **{key: value for key, value in zip(("x_test", "y_test"), digits.numpy("test"), strict=True)},
    )
    spec = DataSpec(path=str(tmp_path / "mine.npz"), mean=(0.5,), std=(0.25,))
    info = spec.load().info
    torch.manual_seed(0)  # an untrained model: unseeded, its chance-level accuracy varies by run
    net = create_model("small-cnn", info.input_shape, info.nb_classes)
    path = save_checkpoint(tmp_path / "m.pt", net, "small-cnn", info)
    recorded = DataSpec().or_recorded(checkpoint_info(path))
    assert recorded.path == spec.path and recorded.mean == (0.5,) and recorded.input_size == (8, 8)
    pruned = invoke(
        "prune", path, "--method", "magnitude", "--finetune-epochs", "0", "--out", tmp_path / "p.pt"
    )  # no --data
    assert pruned.exit_code == 0, pruned.output
    assert checkpoint_info(tmp_path / "p.pt").preprocessing == ((0.5,), (0.25,))
    assert checkpoint_info(tmp_path / "p.pt").path == spec.path


def test_data_named_beside_a_checkpoint_keeps_the_models_normalisation(tmp_path, digits):
    """The README's own-model line (``prune model.pt --data images/``) on a model trained with
    normalisation: the data is read as the model was trained on it, so the model scores what it
    scores on the data its checkpoint records; another normalisation, or data of another shape
    or class count, is refused."""
    from gap_art.classifiers import pixel_space
    from gap_art.training import RECIPES, train_model

    data = tmp_path / "mine.npz"
    splits = {"train": digits.numpy("train"), "test": digits.numpy("test")}
    np.savez(data, **{f"{k}_{s}": v for s, (x, y) in splits.items() for k, v in (("x", x), ("y", y))})
    info = DataSpec(path=str(data), mean=(0.5,), std=(0.25,)).load().info
    torch.manual_seed(0)
    net = create_model("small-cnn", info.input_shape, info.nb_classes)
    bundle = DataSpec(path=str(data), mean=(0.5,), std=(0.25,)).load()
    train_model(
        pixel_space(net, info), bundle.train, 8, RECIPES["adam"], seed=0, device="cpu", progress=False
    )
    model = save_checkpoint(tmp_path / "m.pt", net, "small-cnn", info)
    prune = ("--method", "magnitude", "--compression", "2", "--finetune-epochs", "0")
    runs = {
        name: invoke("prune", model, *args, *prune, "--out", tmp_path / f"{name}.pt")
        for name, args in (("recorded", []), ("named", ["--data", data]))
    }
    assert all(run.exit_code == 0 for run in runs.values()), [run.output for run in runs.values()]
    before = {name: run.output.split("test accuracy ")[1].split(" -> ")[0] for name, run in runs.items()}
    assert before["named"] == before["recorded"] and float(before["named"]) > 0.5  # not chance
    assert checkpoint_info(tmp_path / "named.pt").preprocessing == ((0.5,), (0.25,))
    other = invoke(
        "prune", model, "--data", data, "--mean", "0.1", "--std", "0.2", "--out", tmp_path / "x.pt"
    )
    assert other.exit_code == 2 and "(0.1,)" in other.output and "(0.5,)" in other.output
    three = tmp_path / "three.npz"
    np.savez(three, x_train=splits["train"][0], y_train=splits["train"][1] % 3, x_test=splits["test"][0],
             y_test=splits["test"][1] % 3)  # fmt: skip
    refused = invoke("prune", model, "--data", three, "--out", tmp_path / "y.pt")
    assert (
        refused.exit_code == 2
        and "number of classes 3" in refused.output
        and "Traceback" not in refused.output
    )


# Files you can ship ----------------------------------------------------------------------------


@pytest.fixture
def pruned_lenet(tmp_path):
    """A randomly initialised LeNet (28x28) checkpoint, to be pruned 4x."""
    torch.manual_seed(0)
    info = DatasetInfo("fashion-mnist", (1, 28, 28), 10, 0.15)
    dense = save_checkpoint(tmp_path / "dense.pt", create_model("lenet", (1, 28, 28), 10), "lenet", info)
    return dense, info


def test_exported_files_are_small_and_reload_to_the_same_predictions(tmp_path, pruned_lenet):
    from gap_art.checkpoint import load_checkpoint
    from gap_art.export import (
        Standardize,
        folded,
        load_sparse,
        quantize_weights,
        save_pt2,
        save_sparse,
        save_state_dict,
    )
    from gap_art.pruning import prune_by_scores
    from gap_art.pruning.importance import magnitude_scores
    from gap_art.pruning.targets import prunable_parameters
    from gap_art.quantization import quantize_int8, save_program

    dense_path, info = pruned_lenet
    model = load_checkpoint(dense_path)[0]
    save_state_dict(model, tmp_path / "dense.sd")
    targets = prunable_parameters(model)
    assert prune_by_scores(model, magnitude_scores(targets), 4.0, targets).compression == pytest.approx(
        4, rel=0.01
    )
    x = torch.rand(32, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    dense_bytes = (tmp_path / "dense.sd").stat().st_size
    for int8, limit in ((False, 0.35), (True, 0.15)):
        path = save_sparse(model, tmp_path / f"s{int8}.safetensors", int8=int8)
        assert path.stat().st_size <= limit * dense_bytes, (int8, path.stat().st_size / dense_bytes)
        fresh = create_model("lenet", (1, 28, 28), 10).eval()
        fresh.load_state_dict(load_sparse(path))
        with torch.no_grad():
            reference = quantize_weights(model)(x) if int8 else expected
            assert torch.equal(fresh(x), reference)
    save_state_dict(model, tmp_path / "pruned.sd")
    fresh = create_model("lenet", (1, 28, 28), 10).eval()
    fresh.load_state_dict(torch.load(tmp_path / "pruned.sd", weights_only=True))
    with torch.no_grad():
        assert torch.equal(fresh(x), expected)
        program = save_pt2(model, tmp_path / "m.pt2", x[:2], preprocessing=((0.5,), (0.5,)))
        normalised = model((x - 0.5) / 0.5)
        assert torch.allclose(torch.export.load(str(program)).module()(x), normalised, atol=1e-5)
        int8 = quantize_int8(torch.nn.Sequential(Standardize((0.5,), (0.5,)), folded(model)), x)
        shipped = torch.export.load(str(save_program(int8, x[:2], tmp_path / "q.pt2"))).module()
        assert torch.equal(shipped(x), int8(x))  # the int8 program reloads as it was exported


def test_export_and_prune_on_the_command_line(tmp_path, digits_model, digits):
    dense = save_checkpoint(tmp_path / "dense.pt", digits_model, "small-cnn", digits.info)
    once = ("--method", "magnitude", "--finetune-epochs", "0")  # what is saved, not fine-tuning
    pruned = invoke("prune", dense, *once, "--out", tmp_path / "p.pt")
    kept = invoke("prune", dense, *once, "--keep-masks", "--out", tmp_path / "k.pt")
    assert pruned.exit_code == 0 and kept.exit_code == 0, pruned.output + kept.output
    folded = torch.load(tmp_path / "p.pt", weights_only=True)["state_dict"]
    assert not any(key.endswith("_mask") for key in folded)
    assert any(
        key.endswith("weight_mask") for key in torch.load(tmp_path / "k.pt", weights_only=True)["state_dict"]
    )
    sizes = {}
    for fmt, extra in (("state_dict", []), ("sparse", []), ("sparse", ["--int8"]), ("pt2", ["--int8"])):
        out = tmp_path / f"{fmt}{len(extra)}"
        done = invoke(
            "export", tmp_path / "p.pt", "--format", fmt, *extra, "--n-calibration", 64, "--out", out
        )
        assert done.exit_code == 0, done.output
        assert ("int8: test accuracy" in done.output) == bool(extra)  # a new int8 model is checked
        sizes[fmt + "".join(extra)] = out.stat().st_size
    assert (
        sizes["sparse"] <= 0.35 * sizes["state_dict"] and sizes["sparse--int8"] <= 0.15 * sizes["state_dict"]
    )
    import torchao.quantization.pt2e  # noqa: F401  (what a user imports before loading an int8 program)

    program = torch.export.load(str(tmp_path / "pt21")).module()
    x, y = digits.numpy("test")
    assert (program(torch.from_numpy(x)).argmax(1).numpy() == y).mean() > 0.5
    (tmp_path / "moved").mkdir()  # a checkpoint exports where its data is not: only int8 calibrates
    moved = save_checkpoint(tmp_path / "moved" / "m.pt", digits_model, "small-cnn", replace_path(digits.info))
    for fmt in ("sparse", "pt2"):
        done = invoke("export", moved, "--format", fmt, "--out", tmp_path / "moved" / fmt)
        assert done.exit_code == 0, done.output
    needs = invoke("export", moved, "--format", "pt2", "--int8", "--out", tmp_path / "moved" / "q.pt2")
    assert needs.exit_code != 0 and "does not exist" in needs.output and "Traceback" not in needs.output
    wrong = invoke("export", tmp_path / "p.pt", "--format", "state_dict", "--int8", "--out", tmp_path / "x")
    assert wrong.exit_code == 2 and "--int8" in wrong.output


def replace_path(info: DatasetInfo) -> DatasetInfo:
    """``info`` as if recorded from the user's own data at a path that no longer exists."""
    from dataclasses import replace

    return replace(info, name="gone", path="/nonexistent/gone.npz")


# Every broken input: one line, exit 2, in a real process -------------------------------------


def test_every_command_refuses_bad_input_in_one_line_with_exit_2(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02not torch")
    (tmp_path / "empty").mkdir()
    cases = {
        "train": ["train", "--data", tmp_path / "empty", "--out", tmp_path / "m.pt"],
        "prune": ["prune", junk, "--out", tmp_path / "p.pt"],
        "quantize": ["quantize", junk, "--out", tmp_path / "q.pt2"],
        "export": ["export", junk, "--out", tmp_path / "e"],
        "evaluate": ["evaluate", "--source", junk, "--target", f"t={junk}"],
        "bench": ["bench", "--arch", "not_a_module_xyz:Net", "--dry-run"],
        "report": ["report", tmp_path / "empty"],
        "compare": ["compare", tmp_path / "empty", tmp_path / "empty"],
        "arch-kwargs": ["train", "--arch-kwargs", "{bad json", "--out", tmp_path / "m.pt"],
    }
    for name, args in cases.items():  # in this process, as the command line runs them
        done = CliRunner().invoke(main, list(map(str, args)))
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
        assert done.exit_code == 2, (name, done.output[-1500:])
        assert "Traceback" not in done.output and len(errors) == 1, (name, done.output[-1500:])
        assert "weights_only=False" not in done.output, name
    # and once as its own process, through ``python -m gap_art``
    done = subprocess.run(
        [sys.executable, "-m", "gap_art", *map(str, cases["prune"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")], done.stderr[-1500:]


# The docs page's example ---------------------------------------------------------------------


def _run_in_process(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command of ``script`` as bash runs it, in this process and this Python: ``python
    FILE ARGS`` as ``__main__``, ``gap-art ARGS`` through the command group; ``$here``, the
    ``arch`` array and the ``PYTHONPATH`` export as the script sets them."""
    here, arrays = script.parent, {}
    text = script.read_text().replace("\\\n", " ").replace('"$here', f'"{here}')
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] in ("set", "export") or words[0].startswith("here="):
            continue
        if "=(" in words[0]:  # name=(word ...): a bash array
            name, first = words[0].split("=(", 1)
            items = [first, *words[1:]]
            arrays[name] = [*items[:-1], items[-1].removesuffix(")")]
            continue
        words = [part for w in words for part in _expand(w, arrays)]
        if words[0] == "python":
            monkeypatch.setattr(sys, "argv", words[1:])
            runpy.run_path(words[1], run_name="__main__")
        else:
            assert words[0] == "gap-art", line
            done = CliRunner().invoke(main, words[1:])
            assert done.exit_code == 0, (line, done.output[-3000:])


def _expand(word: str, arrays: dict[str, list[str]]) -> list[str]:
    """``${name[@]}`` as the array's words; any other word as itself."""
    if word.startswith("${") and word.endswith("[@]}"):
        return arrays[word[2:-4]]
    return [word]


def test_the_own_model_example_runs_every_command_and_the_docs_show_it_verbatim(tmp_path, monkeypatch):
    script = REPO / "examples" / "own_model" / "run.sh"
    page = (REPO / "docs" / "own-model.md").read_text()
    assert textwrap.dedent(script.read_text()).strip() in page
    assert (script.parent / "mymodels.py").read_text().strip() in page
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0  # valid bash
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(script.parent))  # the script's PYTHONPATH export
    monkeypatch.delitem(sys.modules, "mymodels", raising=False)
    _run_in_process(script, monkeypatch)
    dense = (tmp_path / "model-dense.pt").stat().st_size
    assert (tmp_path / "pruned.safetensors").stat().st_size <= 0.35 * dense
    assert (tmp_path / "pruned-int8.safetensors").stat().st_size <= 0.15 * dense
    for folder in ("evaluation", "study"):
        document = json.loads((tmp_path / folder / "results.json").read_text())
        assert document["config"]["arch"] == "mymodels:TinyNet" and document["rows"]
    assert "gap-art bench report" in (tmp_path / "study" / "report.md").read_text()


def test_an_int8_export_that_lost_the_task_says_so_and_exits_1(tmp_path, digits_model, digits, monkeypatch):
    """export --int8 makes a new model: like prune and quantize, it compares it with the float
    one on the test split, and a file at chance is saved but not reported as a success."""
    import gap_art.classifiers as classifiers

    class Constant:  # an int8 program that lost the task: always the same class
        def predict(self, x):
            logits = np.zeros((len(x), digits.info.nb_classes), dtype=np.float32)
            logits[:, 0] = 1.0
            return logits

    monkeypatch.setattr(classifiers, "program_classifier", lambda path, info: Constant())
    dense = save_checkpoint(tmp_path / "dense.pt", digits_model, "small-cnn", digits.info)
    out = tmp_path / "q.pt2"
    done = invoke("export", dense, "--format", "pt2", "--int8", "--n-calibration", 64, "--out", out)
    assert done.exit_code == 1 and out.is_file() and "Traceback" not in done.output
    assert "is at chance" in done.output and f"saved at {out}" in done.output

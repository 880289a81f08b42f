"""What a study's tasks read besides their own specs, and so what their cache keys must cover.

A task's id (:meth:`gap_art.bench.graph.Task.make`) hashes its spec, its dependencies' ids and
the :class:`StudyInputs` of its study: a digest of the data as loaded (both splits and their
metadata, so the files' contents, the subset, the normalisation and the input size all count),
of the user's model modules, of gap-art's computing code (not its report or command-line text),
and the versions of the libraries that compute, plus the configuration fields the task's kind
declares it reads through its :class:`~gap_art.bench.context.Context` (``TaskSpec.reads``).

Every :class:`~gap_art.bench.config.BenchConfig` field reaches a task's id through one of those
doors, except the few named in :data:`UNKEYED_FIELDS`, each with the reason; a test goes
through every field. The numerical environment (device, threads, CPU capability, precision)
does not key a task: it is recorded with each task (:func:`numerical_environment`), and a
resume that would mix environments is refused unless asked for.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gap_art.bench.config import BenchConfig
from gap_art.data import DataBundle, DataSpec
from gap_art.models import parse_arch_kwargs
from gap_art.models.external import import_factory, is_import_path

DATA_FIELDS = ("dataset", "data", "data_dir", "input_size", "mean", "std", "n_train", "validation_fraction")
"""Fields that reach every task through the data they load: the digest of the loaded data
(:func:`data_digest`) changes with them whenever the data does (``data_dir`` holding the same
files, or ``input_size`` of data already that size, changes no result and no id)."""

UNKEYED_FIELDS: Mapping[str, str] = {
    "device": "numerical environment: recorded with each task, a resume that mixes it is refused",
    "precision": "numerical environment: recorded with each task, a resume that mixes it is refused",
    "targets": "names the user's files in gap-art evaluate, which builds no task graph",
    "primary": "names the comparisons the report tests across seeds; no task reads it",
}
"""The only fields that key no task, each with the reason."""

LIBRARIES = (
    "torch",
    "torchvision",
    "adversarial-robustness-toolbox",
    "torchattacks",
    "torchao",
    "numpy",
    "scikit-learn",
    "timm",
)
"""The distributions whose versions change what a task computes."""

PRESENTATION_MODULES = (
    "cli/",
    "bench/catalogue.py",
    "bench/compare.py",
    "bench/comparisons.py",
    "bench/comparison_sections.py",
    "bench/config_files.py",
    "bench/curve_sections.py",
    "bench/document.py",
    "bench/drawing.py",
    "bench/evaluate.py",
    "bench/evaluation_report.py",
    "bench/flags.py",
    "bench/goal.py",
    "bench/palette.py",
    "bench/plots.py",
    "bench/primary.py",
    "bench/report.py",
    "bench/sections.py",
    "bench/summary.py",
    "bench/verdict.py",
    "evaluation/export.py",
)
"""gap-art's modules that only read, word or draw finished results (or parse commands): an
edit there keeps every cached model and example."""

PACKAGE = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of gap-art's computing code: every source file but :data:`PRESENTATION_MODULES`."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if not name.startswith(PRESENTATION_MODULES):
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`LIBRARIES` (``None``: not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=4)
def _load(spec: DataSpec, n_train: int | None, data_seed: int, validation_fraction: float) -> DataBundle:
    return spec.load(n_train=n_train, seed=data_seed, validation_fraction=validation_fraction)


def study_data(config: BenchConfig) -> DataBundle:
    """The data ``config``'s tasks read, loaded once per process: three disjoint splits
    (:mod:`gap_art.data.splits`), *train* (``n_train`` rows drawn with ``data_seed``: every
    model of the study trains on these and no others), *validation* (``validation_fraction``
    of that size, from the training rows the train subset leaves out: every selection reads
    these) and *test*."""
    return _load(*_data_key(config))


def _data_key(config: BenchConfig) -> tuple[DataSpec, int | None, int, float]:
    return config.data_spec(), config.n_train, config.data_seed, config.validation_fraction


@functools.lru_cache(maxsize=4)
def _digest(spec: DataSpec, n_train: int | None, data_seed: int, validation_fraction: float) -> str:
    bundle = _load(spec, n_train, data_seed, validation_fraction)
    digest = hashlib.sha256(json.dumps(bundle.info.to_dict(), sort_keys=True).encode())
    assert bundle.validation is not None
    for split in (bundle.train, bundle.validation, bundle.test):
        for tensor in split.tensors:
            array = np.ascontiguousarray(tensor.numpy())
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.data)
    return digest.hexdigest()[:16]


def data_digest(config: BenchConfig) -> str:
    """A hash of the data ``config``'s tasks read, as loaded: pixel values, labels and
    metadata (classes, normalisation, input shape) of its train, validation and test splits."""
    return _digest(*_data_key(config))


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (a user's checkpoint or model module)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


def module_digest(arch: str) -> str | None:
    """A hash of the source file of the user's module ``arch`` names (``package.module:Name``),
    ``None`` for an architecture gap-art, torchvision or timm provides (their code is in
    :func:`code_digest` or :func:`library_versions`)."""
    if not is_import_path(arch):
        return None
    import_factory(arch)  # imports the module as create_model will, or says why it cannot
    spec = importlib.util.find_spec(arch.partition(":")[0])
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        return None
    return file_digest(spec.origin)


@dataclass(frozen=True)
class StudyInputs:
    """What every task of one study reads besides its spec (see the module's docstring).

    :param data: :func:`data_digest` of the study's data.
    :param code: :func:`code_digest` of gap-art's computing code.
    :param libraries: :func:`library_versions`, as ``(name, version)`` pairs.
    :param models: ``(arch, digest)`` of each user module an architecture of the study names.
    :param settings: ``(field, JSON text)`` of every configuration field a task kind may
        declare it reads through its context.
    """

    data: str
    code: str
    libraries: tuple[tuple[str, str | None], ...]
    models: tuple[tuple[str, str | None], ...]
    settings: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, config: BenchConfig) -> StudyInputs:
        """The inputs of ``config``'s study (loads its data once to digest it)."""
        archs = sorted({config.arch, *([config.independent_arch] if config.independent_arch else [])})
        settings = {f.name: getattr(config, f.name) for f in fields(config)}
        settings["arch_kwargs"] = parse_arch_kwargs(config.arch_kwargs)
        return cls(
            data=data_digest(config),
            code=code_digest(),
            libraries=tuple(library_versions().items()),
            models=tuple((arch, module_digest(arch)) for arch in archs),
            settings=tuple((name, json.dumps(value, sort_keys=True)) for name, value in settings.items()),
        )

    def key(self, reads: Iterable[str]) -> dict[str, Any]:
        """The part of a task's id these inputs give, for a kind that reads the fields ``reads``."""
        settings = dict(self.settings)
        return {
            "data": self.data,
            "code": self.code,
            "libraries": dict(self.libraries),
            "models": dict(self.models),
            "reads": {name: settings[name] for name in sorted(reads)},
        }


def numerical_environment(
    device: torch.device | str, threads: int | None = None, precision: str = "float32"
) -> dict[str, Any]:
    """What changes a task's numbers without being one of its inputs: the device, torch's CPU
    threads (``threads``, or this process's: they order float sums), the CPU kernels'
    capability and the precision of gradient steps (the study's ``precision``)."""
    return {
        "device": str(device),
        "torch_threads": threads or torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "precision": precision,
    }

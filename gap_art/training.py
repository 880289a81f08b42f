"""Train and evaluate models reproducibly, on CPU or CUDA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gap_art.errors import ParameterError
from gap_art.runtime import gradient_autocast, kept_random_state, resolve_device, seeded, seeded_subset
from gap_art.settings import FinetuneSpec


@dataclass(frozen=True)
class Recipe:
    """Optimizer settings of one training run.

    :param optimizer: ``adam`` or ``sgd`` (SGD with momentum 0.9).
    :param lr: Learning rate.
    :param weight_decay: L2 penalty.
    :param schedule: ``cosine`` over the run, or ``constant``.
    :param batch_size: Examples per step.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    batch_size: int = 64


RECIPES = {
    "adam": Recipe("adam", 1e-3, 0.0, "constant", 64),
    "sgd": Recipe("sgd", 0.1, 1e-4, "cosine", 128),
}
FINETUNE_RECIPES = {
    "adam": Recipe("adam", 1e-3, 0.0, "constant", 64),
    "sgd": Recipe("sgd", 1e-3, 1e-4, "constant", 128),
}


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""The training loss of one batch: ``objective(model, x, y) -> scalar``."""


def _cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The optimizer a recipe names, over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay)
    raise ParameterError(f"optimizer must be 'adam' or 'sgd', got {recipe.optimizer!r}")


def train_model(
    model: nn.Module,
    data: Dataset,
    epochs: int,
    recipe: Recipe | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    desc: str = "train",
    on_epoch_end: Callable[[int], bool | None] | None = None,
    objective: Objective | None = None,
) -> list[float]:
    """Train ``model`` in place with cross-entropy and return the mean loss of each epoch.

    Pruning masks (``torch.nn.utils.prune``) stay in force: masked weights remain exactly zero.
    Inside :func:`~gap_art.runtime.computing_precision` ``("bfloat16")`` each step's forward
    pass (and loss) runs under bfloat16 autocast; the weights stay float32.

    :param data: Training examples ``(x, y)``.
    :param epochs: Passes over ``data`` (0 trains nothing).
    :param recipe: Optimizer settings; defaults to Adam at 1e-3.
    :param seed: Fixes the order of the examples and dropout.
    :param on_epoch_end: Called with the number of finished epochs (model in eval mode),
        e.g. to record a fine-tuning curve; returning ``True`` stops training there (early
        stopping).
    :param objective: The loss of a batch, ``objective(model, x, y)``; cross-entropy by
        default (e.g. a regularised loss that needs the input gradients).
    """
    if epochs < 0:
        raise ParameterError(f"epochs must be >= 0, got {epochs}")
    recipe = recipe or Recipe()
    target = resolve_device(device)
    model.to(target)
    optimizer = make_optimizer(model, recipe)
    loader = DataLoader(
        data,
        batch_size=recipe.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    total_steps = max(1, epochs * len(loader))
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
        if recipe.schedule == "cosine"
        else None
    )
    loss_fn = objective or _cross_entropy
    history: list[float] = []
    with seeded(seed):
        for _ in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
            model.train()
            losses = []
            for x, y in loader:
                x, y = x.to(target), y.to(target)
                optimizer.zero_grad(set_to_none=True)
                with gradient_autocast(target):
                    loss = loss_fn(model, x, y)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                losses.append((loss.item() * len(x), len(x)))
            history.append(sum(total for total, _ in losses) / max(1, sum(n for _, n in losses)))
            if on_epoch_end is not None:
                model.eval()
                if on_epoch_end(len(history)):
                    break
    model.eval()
    return history


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 512, device: str | torch.device = "auto"
) -> torch.Tensor:
    """Logits of ``model`` in eval mode on ``x``, batched, returned on the CPU."""
    target = resolve_device(device)
    model.to(target).eval()
    outputs = [model(batch.to(target)).cpu() for batch in x.split(batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)


def evaluate_accuracy(
    model: nn.Module, data: Dataset, batch_size: int = 512, device: str | torch.device = "auto"
) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``data``, counted over examples."""
    x, y = _as_tensors(data)
    if len(y) == 0:
        raise ParameterError("data must hold at least one example")
    predictions = predict_logits(model, x, batch_size, device).argmax(1)
    return float((predictions == y).float().mean())


def _as_tensors(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = getattr(data, "tensors", None)
    if tensors is not None:
        return tensors[0], tensors[1]
    xs, ys = zip(*[data[i] for i in range(len(data))], strict=True)  # type: ignore[arg-type]
    return torch.stack(list(xs)), torch.as_tensor(ys)


class EarlyStopping:
    """Keep a model's best state by a validation score, and say when to stop: after
    ``patience`` epochs without a strictly better score (``None``: never stop early).

    Call :meth:`update` after each epoch (and before training, as epoch 0, where the starting
    point may be kept), then :meth:`restore`.
    """

    def __init__(self, model: nn.Module, patience: int | None) -> None:
        self.model = model
        self.patience = patience
        self.scores: list[float] = []
        self.best_epoch = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, score: float) -> bool:
        """Record the score after ``epoch`` epochs; ``True`` when training should stop."""
        if not self.scores or score > max(self.scores):
            self.best_epoch = epoch
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.scores.append(score)
        return self.patience is not None and epoch - self.best_epoch >= self.patience

    def restore(self) -> None:
        """Load the best state back (masks included: they are part of the state dict)."""
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)


@dataclass(frozen=True)
class FinetuneRecord:
    """What training to convergence did.

    :param epochs_run: Epochs trained (fewer than the maximum when stopped early).
    :param best_epoch: The epoch whose weights were kept (0: the model before training).
    :param validation_accuracy: The validation score before training (when the start may be
        kept) and after each epoch; empty without early stopping.
    """

    epochs_run: int
    best_epoch: int
    validation_accuracy: list[float] = field(default_factory=list)


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, validation)`` indices: ``fraction`` of ``n`` held out (at least one)."""
    held = np.zeros(n, dtype=bool)
    held[seeded_subset(n, max(1, round(n * fraction)), seed)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


Watched = TypeVar("Watched")


def watch(monitor: Callable[[int, Watched], None] | None, epoch: int, model: Watched) -> None:
    """Call a training curve's ``monitor`` with the epoch and the model in training, its
    random draws kept apart from the training's: watching a run never changes it."""
    if monitor is not None:
        with kept_random_state():
            monitor(epoch, model)


EpochHook = Callable[[int], bool]
"""Called with the number of finished epochs; ``True`` stops training."""


def watched(
    after_epoch: EpochHook | None, monitor: Callable[[int, Watched], None] | None, model: Watched
) -> EpochHook:
    """The hook a training loop calls after each epoch: ``monitor`` sees ``model`` (see
    :func:`watch`), then ``after_epoch`` decides whether to stop (``None``: never)."""

    def on_epoch_end(epoch: int) -> bool:
        watch(monitor, epoch, model)
        return after_epoch is not None and after_epoch(epoch)

    return on_epoch_end


Trainer = Callable[[np.ndarray, np.ndarray, EpochHook | None], None]
"""``train(x, y, after_epoch)`` trains in place on ``(x, y)`` for up to the spec's epochs,
calling ``after_epoch`` after each; ``after_epoch=None``: every epoch, no early stopping."""
Scorer = Callable[[np.ndarray, np.ndarray], Callable[[], float]]
"""``score(x_held, y_held)`` prepares scoring on the held-out rows (e.g. crafts their
adversarial examples once) and returns the function that scores the model now."""


def train_to_convergence(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    spec: FinetuneSpec,
    train: Trainer,
    score: Scorer,
    keep_start: bool = True,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> FinetuneRecord:
    """The one convergence loop: score on ``validation`` (rows no model trained on, e.g. a
    study's validation split; when ``None``, a seeded ``spec.validation_fraction`` of
    ``(x, y)`` held out), train on the rest, score after each epoch, stop after
    ``spec.patience`` epochs without a better score and restore the best epoch's weights
    (masks included).

    Without a patience, ``train`` runs every epoch on all of ``(x, y)``. With
    ``keep_start``, the model before training competes as epoch 0 (clean fine-tuning may
    keep the pruned model); a hardening passes ``False``, so the unhardened start is never
    kept. Only training rows are ever scored: the test split plays no part.
    """
    if spec.patience is None:
        train(x, y, None)
        return FinetuneRecord(spec.epochs, spec.epochs)
    if validation is None:
        rows, held = validation_split(len(x), spec.validation_fraction, spec.seed)
        x, y, validation = x[rows], y[rows], (x[held], y[held])
    measure = score(*validation)
    stopper = EarlyStopping(model, spec.patience)
    if keep_start:
        stopper.update(0, measure())
    train(x, y, lambda epoch: stopper.update(epoch, measure()))
    stopper.restore()
    return FinetuneRecord(len(stopper.scores) - int(keep_start), stopper.best_epoch, stopper.scores)

"""Gradient misalignment fine-tuning (GAL, Kariyappa & Qureshi 2019; TRS, Yang et al.,
NeurIPS 2021): examples transfer when the two models' loss gradients point the same way, so
fine-tune the compressed model until its input gradients are orthogonal to its parent's."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from gap_art.attacks import clip_range
from gap_art.classifiers import ClassifierModule
from gap_art.defences.hardening import HARDENING_EPOCHS, HARDENING_STEPS, HardeningRun, TransferHardening
from gap_art.settings import AttackSpec, FinetuneSpec
from gap_art.training import Objective, Recipe, train_model
from gap_art.validation import check_range


def input_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """Each example's gradient of its own cross-entropy with respect to its input."""
    x = x if x.requires_grad else x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")  # sum: per-example gradients
    return torch.autograd.grad(loss, x, create_graph=create_graph)[0]


def misalignment_objective(
    sources: Sequence[nn.Module],
    misalignment: float,
    smoothness: float,
    eps: float,
    clip: tuple[float, float],
) -> Objective:
    """Cross-entropy + ``misalignment`` * mean |cos(grad_x L(model), grad_x L(source))| over
    the sources (TRS's absolute cosine: orthogonal, not opposed, gradients) + ``smoothness``
    * eps * ||grad_x L||_1 at a random point of the eps-ball (TRS's smoothness term, in loss
    units: the first-order loss increase an L-inf perturbation of size eps can cause).
    The sources are frozen: no gradient reaches their weights."""

    def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        logits = model(x)
        gradient = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x, create_graph=True)[0]
        cosines = [
            F.cosine_similarity(
                gradient.flatten(1), input_gradients(s, x.detach(), y).flatten(1), dim=1, eps=1e-12
            )
            for s in sources
        ]
        loss = F.cross_entropy(logits, y) + misalignment * torch.stack(cosines).abs().mean()
        if smoothness > 0:
            noisy = (x.detach() + torch.empty_like(x).uniform_(-eps, eps)).clamp(*clip)
            noisy_gradient = input_gradients(model, noisy, y, create_graph=True)
            loss = loss + smoothness * eps * noisy_gradient.abs().flatten(1).sum(1).mean()
        return loss

    return objective


class GradientMisalignmentFinetuning(TransferHardening):
    """Fine-tune with clean cross-entropy plus a penalty on the cosine similarity between the
    model's input gradients and the frozen parent's (and extra sources'), plus TRS's
    smoothness term (see :func:`misalignment_objective`). Pruning masks hold.

    :param misalignment: Weight of the mean absolute gradient cosine.
    :param smoothness: Weight of the gradient-norm term (0 turns it off); its perturbation
        radius is ``eps``.
    See :class:`~gap_art.defences.hardening.TransferHardening` for the other parameters (the
    attack serves early stopping: accuracy under the parent's examples on held-out data).
    """

    description = "fine-tune against |cos| of input gradients with the parent's, + TRS smoothness"
    params = TransferHardening.params + ["misalignment", "smoothness"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        misalignment: float = 1.0,
        smoothness: float = 1.0,
        extra_sources: Sequence[PyTorchClassifier] = (),
        attack: str | AttackSpec = "pgd",
        eps: float | None = None,
        eps_step: float | None = None,
        max_iter: int = HARDENING_STEPS,
        attack_backend: str = "torchattacks",
        epochs: int = HARDENING_EPOCHS,
        patience: int | None = None,
        validation_fraction: float = FinetuneSpec.validation_fraction,
        lr: float = FinetuneSpec.lr,
        optimizer: str = FinetuneSpec.optimizer,
        batch_size: int = FinetuneSpec.batch_size,
        seed: int = FinetuneSpec.seed,
        verbose: bool = False,
    ) -> None:
        self.misalignment = misalignment
        self.smoothness = smoothness
        super().__init__(
            classifier,
            parent,
            extra_sources=extra_sources,
            attack=attack,
            eps=eps,
            eps_step=eps_step,
            max_iter=max_iter,
            attack_backend=attack_backend,
            epochs=epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            lr=lr,
            optimizer=optimizer,
            batch_size=batch_size,
            seed=seed,
            verbose=verbose,
        )

    def _check_params(self) -> None:
        super()._check_params()
        check_range(self.misalignment, "misalignment", 0.0, 1e6)
        check_range(self.smoothness, "smoothness", 0.0, 1e6)

    def _train(self, run: HardeningRun) -> None:
        frozen = [ClassifierModule(s.estimator).eval() for s in run.sources]
        objective = misalignment_objective(
            frozen, self.misalignment, self.smoothness, self._eps(), clip_range(self.classifier)
        )
        recipe = Recipe(self.optimizer, self.lr, 0.0, "constant", self.batch_size)
        data = TensorDataset(torch.from_numpy(run.x), torch.from_numpy(run.y))
        device = torch.device(run.trainee.device)
        module = ClassifierModule(run.trainee)
        train_model(
            module,
            data,
            self.epochs,
            recipe,
            self.seed,
            device,
            self.verbose,
            "misalign",
            run.after_epoch,
            objective,
        )

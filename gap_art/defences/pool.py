"""Pool adversarial fine-tuning: train against the examples of a pool of static sources an
attacker could use (PubDef, Sitawarin et al., ICLR 2024; ensemble adversarial training,
Tramer et al., ICLR 2018). The pool is the parent M and any extra sources: the defender's own
replicas of the method (other seeds), an independently trained model, a robust model of M.
Each batch trains on its clean half and on one source's examples, drawn uniformly, by weight,
or (PubDef) the source whose examples the model currently gets most wrong. Early stopping
keeps the epoch with the highest worst-source accuracy on held-out rows among those within a
clean-accuracy budget of the parent's."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from gap_art.attacks import build_attack
from gap_art.classifiers import ClassifierModule
from gap_art.defences.hardening import (
    HARDENING_EPOCHS,
    HARDENING_STEPS,
    HardeningRun,
    StaticSourceAttack,
    TransferHardening,
    accuracy,
)
from gap_art.errors import ParameterError
from gap_art.settings import AttackSpec, FinetuneSpec
from gap_art.training import Objective, Recipe, train_model
from gap_art.validation import check_choice, check_range

SAMPLINGS = ("uniform", "weighted", "max-loss")
"""How a batch picks its source: uniformly, by ``weights``, or the highest-loss one (PubDef)."""


def pool_objective(
    sampling: str,
    weights: Sequence[float] | None,
    self_attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> Objective:
    """The loss of a batch whose inputs stack the clean example and each source's example
    (``x[:, 0]`` clean, ``x[:, 1 + k]`` source k): the mean of the clean cross-entropy and the
    cross-entropy on the chosen source's examples (and, with ``self_attack``, on the model's
    own examples as a further source)."""
    probabilities = None if weights is None else torch.tensor(weights, dtype=torch.float) / sum(weights)

    def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        clean, adversarial = x[:, 0], x[:, 1:]
        choices = [adversarial[:, k] for k in range(adversarial.shape[1])]
        if self_attack is not None:
            choices.append(self_attack(clean, y))
        if sampling == "max-loss":
            with torch.no_grad():
                losses = torch.stack([F.cross_entropy(model(c), y) for c in choices])
            chosen = int(losses.argmax())
        elif sampling == "weighted" and probabilities is not None:
            chosen = int(torch.multinomial(probabilities, 1))
        else:
            chosen = int(torch.randint(len(choices), (1,)))
        return (F.cross_entropy(model(clean), y) + F.cross_entropy(model(choices[chosen]), y)) / 2

    return objective


class PoolAdversarialFinetuning(TransferHardening):
    """Fine-tune against examples crafted on a pool of static sources (the parent first, then
    ``extra_sources``), one source per batch; pruning masks hold.

    :param sampling: How each batch picks its source (see :data:`SAMPLINGS`): ``uniform``,
        ``weighted`` (by ``weights``, one per source, the parent first, then the model's own
        FGSM if ``self_attack``), or ``max-loss`` (the source the model is worst on, PubDef).
    :param weights: Per-source weights for ``weighted`` sampling (positive; ``None``: equal).
    :param self_attack: ``None``, or ``fgsm`` to add FGSM crafted on the model being trained as
        one more source.
    :param clean_budget: Early stopping keeps the epoch with the highest worst-source accuracy
        on the held-out rows among the epochs whose held-out clean accuracy is at most this
        far below the parent's (a fraction; epochs outside it rank by clean accuracy, below
        every epoch inside it).
    See :class:`~gap_art.defences.hardening.TransferHardening` for the other parameters.
    """

    description = "fine-tune on clean data + a pool of static sources (PubDef), worst-source early stopping"
    params = TransferHardening.params + ["sampling", "weights", "self_attack", "clean_budget"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        sampling: str = "max-loss",
        weights: Sequence[float] | None = None,
        self_attack: str | None = None,
        clean_budget: float = 0.02,
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
        self.sampling = sampling
        self.weights = None if weights is None else list(weights)
        self.self_attack = self_attack
        self.clean_budget = clean_budget
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
        check_choice(self.sampling, "sampling", SAMPLINGS)
        if self.self_attack is not None:
            check_choice(self.self_attack, "self_attack", ("fgsm",))
        check_range(self.clean_budget, "clean_budget", 0.0, 1.0)
        sources = 1 + len(self.extra_sources) + (self.self_attack is not None)
        if self.weights is not None and (
            len(self.weights) != sources or any(not w > 0 for w in self.weights)
        ):
            raise ParameterError(
                f"weights must give one positive weight per source ({sources}: the parent, "
                f"{len(self.extra_sources)} extra source(s){', own FGSM' if self.self_attack else ''}), "
                f"got {self.weights!r}"
            )

    def _train(self, run: HardeningRun) -> None:
        stacked = np.stack([run.x, *(source.generate(run.x, run.y) for source in run.sources)], axis=1)
        data = TensorDataset(torch.from_numpy(stacked), torch.from_numpy(run.y))
        objective = pool_objective(self.sampling, self.weights, self._own_fgsm(run.trainee))
        recipe = Recipe(self.optimizer, self.lr, 0.0, "constant", self.batch_size)
        device = torch.device(run.trainee.device)
        train_model(
            ClassifierModule(run.trainee), data, self.epochs, recipe, self.seed, device, self.verbose,
            "pool", run.after_epoch, objective,
        )  # fmt: skip

    def _own_fgsm(
        self, trainee: PyTorchClassifier
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        """FGSM on the model being trained, through gap-art's attack registry (numpy round trip)."""
        if self.self_attack is None:
            return None
        attack = build_attack(AttackSpec("fgsm", eps=self._eps(), seed=self.seed), trainee)

        def craft(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            x_adv = attack.generate(x.detach().cpu().numpy(), y.cpu().numpy())
            return torch.from_numpy(x_adv).to(x.device)

        return craft

    def _validation_score(
        self,
        trainee: PyTorchClassifier,
        x_held: np.ndarray,
        y_held: np.ndarray,
        sources: list[StaticSourceAttack],
    ) -> Callable[[], float]:
        """The worst source's accuracy on the held-out rows, for epochs within ``clean_budget``
        of the parent's held-out clean accuracy; below every such epoch, the others by clean
        accuracy."""
        adversarial = [source.generate(x_held, y_held) for source in sources]
        level = accuracy(self.parent, x_held, y_held) - self.clean_budget

        def measure() -> float:
            clean = accuracy(trainee, x_held, y_held)
            if clean < level:
                return clean - 1.0
            return min(accuracy(trainee, x_adv, y_held) for x_adv in adversarial)

        return measure


class SelfFGSMPoolAdversarialFinetuning(PoolAdversarialFinetuning):
    """:class:`PoolAdversarialFinetuning` with the model's own FGSM as one more source
    (``self_attack="fgsm"``), a white-box term for when the strongest transfer attacker (the
    replica that reruns the method) comes close to white-box: with ``max-loss`` sampling a
    batch trains on it whenever the model is worst on it (method ``<criterion>+pool-fgsm``).
    Beside plain ``+pool`` it measures what the white-box term buys (issue 37)."""

    description = "pool hardening plus FGSM crafted on the model being trained as one more source"

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        sampling: str = "max-loss",
        weights: Sequence[float] | None = None,
        self_attack: str | None = "fgsm",
        clean_budget: float = 0.02,
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
        super().__init__(
            classifier,
            parent,
            sampling=sampling,
            weights=weights,
            self_attack=self_attack,
            clean_budget=clean_budget,
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

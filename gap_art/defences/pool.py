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


Craft = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Adversarial versions of a batch ``(x, y)``, crafted on the model being trained."""


def trades_term(model: nn.Module, clean_logits: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """TRADES' robustness term (Zhang et al. 2019): the KL divergence of the model's prediction
    on ``x_adv`` from its prediction on the clean batch (``clean_logits``), batch mean."""
    return F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(clean_logits, dim=1), reduction="batchmean")


def pool_objective(
    sampling: str,
    weights: Sequence[float] | None,
    self_attack: Craft | None,
    trades: tuple[Craft, float] | None = None,
) -> Objective:
    """The loss of a batch whose inputs stack the clean example and each source's example
    (``x[:, 0]`` clean, ``x[:, 1 + k]`` source k): the mean of the clean cross-entropy and the
    cross-entropy on the chosen source's examples (and, with ``self_attack``, on the model's
    own examples as a further source); with ``trades`` (a craft and its weight beta), plus
    beta times :func:`trades_term` on the examples that craft makes of the clean batch."""
    probabilities = None if weights is None else torch.tensor(weights, dtype=torch.float) / sum(weights)

    def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        clean, adversarial = x[:, 0], x[:, 1:]
        choices = [adversarial[:, k] for k in range(adversarial.shape[1])]
        if self_attack is not None:
            choices.append(self_attack(clean, y))
        x_trades = None if trades is None else trades[0](clean, y)
        if sampling == "max-loss":
            with torch.no_grad():
                losses = torch.stack([F.cross_entropy(model(c), y) for c in choices])
            chosen = int(losses.argmax())
        elif sampling == "weighted" and probabilities is not None:
            chosen = int(torch.multinomial(probabilities, 1))
        else:
            chosen = int(torch.randint(len(choices), (1,)))
        clean_logits = model(clean)
        loss = (F.cross_entropy(clean_logits, y) + F.cross_entropy(model(choices[chosen]), y)) / 2
        if trades is not None and x_trades is not None:
            loss = loss + trades[1] * trades_term(model, clean_logits, x_trades)
        return loss

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
    :param trades_beta: Weight beta of a TRADES term (Zhang et al. 2019) added to every batch's
        loss: beta times the KL divergence of the model's prediction on TPGD examples crafted
        on it (the hardening's ``eps``, ``eps_step`` and ``max_iter``) from its prediction on
        the clean batch, a white-box term that reads no labels; ``0`` leaves it out.
    :param clean_budget: Early stopping keeps the epoch with the highest worst-source accuracy
        on the held-out rows among the epochs whose held-out clean accuracy is at most this
        far below the parent's (a fraction; epochs outside it rank by clean accuracy, below
        every epoch inside it).
    See :class:`~gap_art.defences.hardening.TransferHardening` for the other parameters.
    """

    description = "fine-tune on clean data + a pool of static sources (PubDef), worst-source early stopping"
    params = TransferHardening.params + ["sampling", "weights", "self_attack", "trades_beta", "clean_budget"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        sampling: str = "max-loss",
        weights: Sequence[float] | None = None,
        self_attack: str | None = None,
        trades_beta: float = 0.0,
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
        self.trades_beta = trades_beta
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
        check_range(self.trades_beta, "trades_beta", 0.0, 100.0)
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
        trainee = run.trainee
        own_fgsm = None if self.self_attack is None else self._own_attack("fgsm", trainee)
        trades = (self._own_attack("tpgd", trainee), self.trades_beta) if self.trades_beta > 0 else None
        objective = pool_objective(self.sampling, self.weights, own_fgsm, trades)
        recipe = Recipe(self.optimizer, self.lr, 0.0, "constant", self.batch_size)
        device = torch.device(run.trainee.device)
        train_model(
            ClassifierModule(run.trainee), data, self.epochs, recipe, self.seed, device, self.verbose,
            "pool", run.after_epoch, objective,
        )  # fmt: skip

    def _own_attack(self, name: str, trainee: PyTorchClassifier) -> Craft:
        """The attack ``name`` crafted on the model being trained, at the hardening's budget,
        through gap-art's attack registry (numpy round trip, seeded, so the training's own
        random draws do not move)."""
        base = self.attack_spec()  # its budget, steps and seed; not its attack's own settings
        spec = AttackSpec(
            name,
            "torchattacks",
            base.eps,
            base.eps_step,
            base.steps,
            batch_size=base.batch_size,
            seed=base.seed,
        )
        attack = build_attack(spec, trainee)

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
        trades_beta: float = 0.0,
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
            trades_beta=trades_beta,
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


class TradesPoolAdversarialFinetuning(SelfFGSMPoolAdversarialFinetuning):
    """:class:`SelfFGSMPoolAdversarialFinetuning` with a TRADES term weighted in
    (``trades_beta``): every batch also pays beta times the KL divergence of the model's
    prediction on TPGD examples crafted on it from its clean prediction (method
    ``<criterion>+pool-trades``). ``+pool-fgsm`` samples its white-box source only when the
    model is worst on it; this one trains against the white-box direction in every batch, for
    when the replica attacker comes close to white-box (issue 37). Beta defaults to 1, not
    TRADES' and ART's 6: fine-tuning a pruned model from a trained parent, 6 (and 3) first threw
    clean and white-box accuracy down, on validation rows (``benchmarks/trades_beta.py``)."""

    description = "pool hardening with the model's own FGSM, plus a TRADES term on TPGD examples (beta 1)"

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        sampling: str = "max-loss",
        weights: Sequence[float] | None = None,
        self_attack: str | None = "fgsm",
        trades_beta: float = 1.0,
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
            trades_beta=trades_beta,
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

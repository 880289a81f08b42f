"""Transfer adversarial fine-tuning: ART's ``AdversarialTrainer`` on clean data mixed with
examples precomputed on static models (the frozen parent M and any extra sources)."""

from __future__ import annotations

from collections.abc import Sequence

from art.attacks.attack import EvasionAttack
from art.attacks.evasion import FastGradientMethod
from art.defences.trainer import AdversarialTrainer
from art.estimators.classification import PyTorchClassifier

from gap_art.defences.hardening import HARDENING_EPOCHS, HARDENING_STEPS, HardeningRun, TransferHardening
from gap_art.settings import AttackSpec, FinetuneSpec
from gap_art.validation import check_choice, check_range


class TransferAdversarialFinetuning(TransferHardening):
    """Fine-tune on clean data mixed with examples crafted on the frozen parent (and any
    extra static models): ART's ``AdversarialTrainer`` with precomputed static-source attacks,
    i.e. ensemble adversarial training (Tramer et al., ICLR 2018) with the parent as the
    static model. Optionally the model's own FGSM joins the rotation, as in the paper.

    Transfer-specific: it resists the parent's examples (accuracy under them may even exceed
    clean accuracy, the label-leaking signature) but not white-box attacks; judge it against
    attackers and attacks it was not trained on.

    :param ratio: Share of each batch replaced by adversarial examples (ART's ``ratio``).
    :param self_attack: ``None``, or ``fgsm`` to add FGSM crafted on the model being trained.
    See :class:`TransferHardening` for the other parameters.
    """

    description = "ART AdversarialTrainer on clean data + PGD from the frozen parent (fine-tuning)"
    params = TransferHardening.params + ["ratio", "self_attack"]

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        ratio: float = 0.5,
        self_attack: str | None = None,
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
        self.ratio = ratio
        self.self_attack = self_attack
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
        check_range(self.ratio, "ratio", 0.0, 1.0, low_open=True)
        if self.self_attack is not None:
            check_choice(self.self_attack, "self_attack", ("fgsm",))

    def _train(self, run: HardeningRun) -> None:
        attacks: list[EvasionAttack] = list(run.sources)
        if self.self_attack is not None:
            attacks.append(FastGradientMethod(run.trainee, eps=self._eps(), batch_size=self.batch_size))
        trainer = AdversarialTrainer(run.trainee, attacks, ratio=self.ratio)
        for epoch in range(1, self.epochs + 1):
            trainer.fit(run.x, run.y, batch_size=self.batch_size, nb_epochs=1)
            if run.after_epoch(epoch):
                return


class SelfFGSMTransferAdversarialFinetuning(TransferAdversarialFinetuning):
    """:class:`TransferAdversarialFinetuning` with the model's own FGSM in the rotation
    (``self_attack="fgsm"``): the recipe of ART-style ensemble adversarial training, applied to
    the pruned model. Beside plain ``+tat`` it separates what the self-FGSM buys from what
    compression does (method ``<criterion>+tat-fgsm``)."""

    description = "TAT plus FGSM crafted on the model being trained (ensemble adversarial training's recipe)"

    def __init__(
        self,
        classifier: PyTorchClassifier,
        parent: PyTorchClassifier,
        ratio: float = 0.5,
        self_attack: str | None = "fgsm",
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
            ratio=ratio,
            self_attack=self_attack,
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

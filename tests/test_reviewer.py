"""The skeptical reviewer's checks: sanity checks (one must fail), stronger attacks."""

import numpy as np
import pytest
import torchattacks

from gap_art.attacks import make_attack
from gap_art.classifiers import ClassifierModule
from gap_art.evaluation.sanity import run_sanity_checks, untrusted_attacks


def test_working_attacks_pass_every_check(classifier, digits):
    x, y = digits.numpy("test")
    checks = run_sanity_checks(classifier, x, y, eps=0.2, attacks=("fgsm", "pgd", "cw"))
    assert {c.name for c in checks} >= {
        "pgd works white-box",
        "cw works white-box",
        "accuracy falls with eps",
        "pgd at least as strong as fgsm",
        "pgd converged (2x steps)",
        "unbounded attack reaches ~0",
    }
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert untrusted_attacks(checks) == {}


def test_a_deliberately_broken_attack_is_flagged(classifier, digits):
    x, y = digits.numpy("test")
    broken = torchattacks.PGD(ClassifierModule(classifier), eps=0.2, alpha=0.0, steps=1, random_start=False)
    checks = {
        c.name: c
        for c in run_sanity_checks(classifier, x, y, 0.2, ("fgsm", "pgd"), overrides={"pgd": broken})
    }
    assert not checks["pgd works white-box"].passed and checks["pgd works white-box"].value == 0.0
    assert not checks["pgd at least as strong as fgsm"].passed
    assert "pgd works white-box" in untrusted_attacks(list(checks.values()))["pgd"]


def test_a_budget_too_small_to_work_is_flagged(classifier, digits):
    x, y = digits.numpy("test")
    checks = {c.name: c for c in run_sanity_checks(classifier, x, y, eps=0.02, attacks=("pgd",))}
    assert not checks["pgd works white-box"].passed
    assert checks["unbounded attack reaches ~0"].passed  # the attack itself is fine


@pytest.mark.parametrize("backend", ["torchattacks", "art"])
def test_pgd_with_restarts_is_at_least_as_strong_as_pgd(classifier, digits, backend):
    x, y = digits.numpy("test")
    x, y = x[:150], y[:150]
    settings = {"backend": backend, "eps": 0.1, "eps_step": 0.025, "seed": 0}
    pgd = make_attack("pgd", classifier, **settings).generate(x, y)
    strong = make_attack("pgd-restarts", classifier, restarts=3, **settings).generate(x, y)
    accuracy = [float((classifier.predict(a).argmax(1) == y).mean()) for a in (pgd, strong)]
    assert accuracy[1] <= accuracy[0] + 0.01
    assert np.abs(strong - x).max() <= 0.1 + 1e-6

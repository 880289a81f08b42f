"""Evaluating a deployed model that only answers ``predict`` (a remote service, ONNX, TFLite):
wrap it in ART's ``BlackBoxClassifier`` and give it to ``evaluate_transfer`` as a target.

Run: python examples/black_box_target.py [EPOCHS]   (each model's training epochs, default 20)
"""

import sys

import numpy as np
import torch
from art.estimators.classification import BlackBoxClassifier

from gap_art.classifiers import to_art_classifier
from gap_art.data import load_dataset
from gap_art.evaluation import evaluate_transfer, format_table
from gap_art.models import create_model
from gap_art.training import train_model

data = load_dataset("digits")
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
x_test, y_test = data.numpy("test")
torch.manual_seed(0)
source_model = create_model("small-cnn", (1, 8, 8), 10)
train_model(source_model, data.train, epochs=epochs, progress=False)
source = to_art_classifier(source_model, data.info, device="cpu")  # the model the attacker holds

torch.manual_seed(1)
deployed = create_model("small-cnn", (1, 8, 8), 10)  # stands in for the model behind an API
train_model(deployed, data.train, epochs=epochs, seed=1, progress=False)


def ask_the_service(x: np.ndarray) -> np.ndarray:
    """The deployed model's answers: here labels only, one-hot, as many APIs return."""
    with torch.no_grad():
        labels = deployed(torch.from_numpy(x)).argmax(1).numpy()
    return np.eye(10, dtype=np.float32)[labels]


remote = BlackBoxClassifier(ask_the_service, (1, 8, 8), 10, clip_values=(0.0, 1.0))
print(format_table(evaluate_transfer(source, {"deployed": remote}, x_test, y_test, "pgd", eps=0.2)))

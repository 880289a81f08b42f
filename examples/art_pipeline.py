"""An existing ART pipeline gains GAP and int8 targets and a transfer table.

The classifier is trained by ART itself with one-hot labels, and the attacker uses ART's own PGD:
gap-art only adds the compressed targets and the evaluation.

Run: python examples/art_pipeline.py [EPOCHS]   (the classifier's training epochs, default 20)
"""

import sys

import numpy as np
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier

from gap_art.data import load_dataset
from gap_art.defences import GreedyAdversarialPruning, Int8Quantization, IrregularPruning
from gap_art.evaluation import evaluate_transfer, format_table
from gap_art.models import create_model

data = load_dataset("digits")
x_train, y_train = data.numpy("train")
x_test, y_test = data.numpy("test")
one_hot = np.eye(10, dtype=np.float32)[y_train]  # ART pipelines often carry one-hot labels

torch.manual_seed(0)
model = create_model("small-cnn", (1, 8, 8), 10)
source = PyTorchClassifier(
    model,
    torch.nn.CrossEntropyLoss(),
    input_shape=(1, 8, 8),
    nb_classes=10,
    optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
    clip_values=(0.0, 1.0),
)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
source.fit(x_train, one_hot, batch_size=64, nb_epochs=epochs, verbose=False)

gap = GreedyAdversarialPruning(source, compression=4, finetune_epochs=10, finetune_patience=2)
pruned = gap(x_train, y=one_hot)
baseline = IrregularPruning(source, compression=4, criterion="magnitude", finetune_epochs=5)
magnitude = baseline(x_train, y=one_hot)
int8 = Int8Quantization(pruned)(x_train)

attack = ProjectedGradientDescent(source, eps=0.2, eps_step=0.05, max_iter=10, verbose=False)
results = evaluate_transfer(
    source, {"gap@4x": pruned, "magnitude@4x": magnitude, "gap@4x+int8": int8}, x_test, y_test, attack
)
print(format_table(results))

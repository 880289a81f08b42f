"""A torchvision architecture trained in plain PyTorch, pruned with GAP through
``torch.nn.utils.prune.global_unstructured`` and gap-art's ``GreedyAdversarialUnstructured``,
then fine-tuned with the masks held.

No ART object is needed to prune: gap-art's score functions take a model and batches, and the
masks are ordinary ``torch.nn.utils.prune`` masks.

Run: python examples/torchvision_plain_pytorch.py [EPOCHS]   (dense training epochs, default 3)
"""

import sys

import torch
import torchattacks
import torchvision
from torch import nn
from torch.nn.utils import prune

from gap_art.data import load_dataset
from gap_art.pruning import (
    GreedyAdversarialUnstructured,
    accumulate_gradients,
    gap_scores,
    measure_compression,
    prunable_parameters,
)

data = load_dataset("digits")
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
model.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)  # grey 8x8 inputs: no downsampling stem
model.maxpool = nn.Identity()


def train(epochs: int) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(data.train, batch_size=128, shuffle=True)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()


def accuracy() -> float:
    x, y = data.test.tensors
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


train(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
dense = accuracy()

# GAP: the gradient of the loss on adversarial examples crafted on the model itself.
targets = prunable_parameters(model)  # every Conv/Linear weight but the classifier layer (fc)
attack = torchattacks.PGD(model, eps=2 / 255, alpha=0.5 / 255, steps=10)
x_cal, y_cal = data.train.tensors[0][:256], data.train.tensors[1][:256]
batches = list(zip(x_cal.split(64), y_cal.split(64), strict=True))
scores = gap_scores(targets, accumulate_gradients(model, targets, batches, craft=attack), "grad")
prune.global_unstructured(
    targets,
    pruning_method=GreedyAdversarialUnstructured,
    importance_scores=dict(zip(targets, scores, strict=True)),
    amount=0.75,  # 4x compression of the prunable weights
)
pruned = accuracy()
train(1)  # the masks (weight_orig, weight_mask) hold through ordinary training
report = measure_compression(model, targets)
print(
    f"resnet18 on digits: clean accuracy {dense:.3f} dense, {pruned:.3f} after GAP at "
    f"{report.compression:.2f}x, {accuracy():.3f} after one fine-tuning epoch"
)

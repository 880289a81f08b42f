"""gap-art: Greedy Adversarial Pruning and compressed-model transfer attacks for ART."""

__version__ = "0.1.0"

"""gap-art: Greedy Adversarial Pruning and compressed-model transfer attacks for ART."""

import logging


class _DropKernelPreferenceNotice(logging.Filter):
    """torchao's import makes torch log a deprecation notice about its ``KernelPreference`` enum
    that no gap-art user can act on; every other record of that logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "KernelPreference" not in record.getMessage()


logging.getLogger("torch.utils._pytree").addFilter(_DropKernelPreferenceNotice())
logging.getLogger(__name__).addHandler(logging.NullHandler())  # the application decides what shows

__version__ = "0.2.0"

"""int8 post-training quantization (torchao PT2E) and honest model size."""

from gap_art.quantization.int8 import (
    QUANTIZER_BACKENDS,
    QuantizationError,
    check_calibration,
    compile_int8,
    export_model,
    int8_weights,
    quantize_int8,
)
from gap_art.quantization.program import load_program, save_program
from gap_art.quantization.size import SizeReport, model_size

__all__ = [
    "QUANTIZER_BACKENDS",
    "QuantizationError",
    "SizeReport",
    "check_calibration",
    "compile_int8",
    "export_model",
    "int8_weights",
    "load_program",
    "model_size",
    "quantize_int8",
    "save_program",
]

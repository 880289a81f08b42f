"""8-bit post-training static quantization through torchao's PT2E flow.

``torch.export`` (dynamic batch) -> ``prepare_pt2e`` -> calibration -> ``convert_pt2e``.
Weights become int8 tensors (per-channel symmetric, so a pruned zero stays exactly 0);
activations are quantized per tensor to 8 bits (unsigned for the x86 quantizer, as its
oneDNN kernels expect; signed for XNNPACK).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gap_art.errors import ParameterError, ParameterTypeError
from gap_art.pruning.masks import clone_module, make_permanent

QUANTIZER_BACKENDS = ("x86", "xnnpack")


class QuantizationError(ParameterError):
    """The model could not be exported or quantized; the message says why and what to try."""


def _quantizer(backend: str):  # noqa: ANN202 - torchao's Quantizer type is private API
    if backend == "x86":
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

        quantizer = x86.X86InductorQuantizer()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
        return quantizer
    if backend == "xnnpack":
        try:
            from executorch.backends.xnnpack.quantizer import xnnpack_quantizer as xnn
        except ImportError:
            from torchao.testing.pt2e import _xnnpack_quantizer as xnn
        quantizer = xnn.XNNPACKQuantizer()
        quantizer.set_global(xnn.get_symmetric_quantization_config(is_per_channel=True))
        return quantizer
    raise ParameterError(f"backend must be one of {list(QUANTIZER_BACKENDS)}, got {backend!r}")


def check_calibration(calibration: torch.Tensor, input_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Refuse empty, wrongly shaped (when ``input_shape`` is given) or NaN calibration data."""
    if not isinstance(calibration, torch.Tensor):
        raise ParameterTypeError(f"calibration must be a tensor, got {type(calibration).__name__}")
    if calibration.dim() == 0 or len(calibration) == 0:
        raise ParameterError("calibration data is empty: pass at least one input example")
    if input_shape is not None and tuple(calibration.shape[1:]) != tuple(input_shape):
        raise ParameterError(
            f"calibration must have shape (n, {', '.join(map(str, input_shape))}), "
            f"got {tuple(calibration.shape)}"
        )
    if torch.isnan(calibration).any():
        raise ParameterError("calibration data contains NaN values")
    return calibration.float()


def export_model(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` with a dynamic batch dimension; failures name the cause and a fix."""
    batch = torch.export.Dim("batch", min=1, max=2**20)
    sample = example[:2] if len(example) >= 2 else example.repeat(2, *([1] * (example.dim() - 1)))
    try:
        return torch.export.export(model, (sample,), dynamic_shapes=({0: batch},))
    except Exception as error:  # torch.export raises many types; all mean "cannot trace"
        detail = str(error).strip().splitlines()[0][:400] if str(error).strip() else repr(error)
        raise QuantizationError(
            f"torch.export could not trace {type(model).__name__} for int8 quantization: "
            f"{type(error).__name__}: {detail}. Fix: make the named layer or op traceable "
            "(no data-dependent Python control flow, no .item()/.numpy() in forward, no "
            "unsupported custom ops), or quantize a submodule that exports"
        ) from error


def quantize_int8(
    model: nn.Module,
    calibration: torch.Tensor,
    backend: str = "x86",
    batch_size: int = 256,
) -> nn.Module:
    """An int8 copy of ``model`` (float, possibly pruned), calibrated on ``calibration``.

    ``model`` itself is not modified. Pruning masks are made permanent on the copy, so
    pruned weights are exactly 0 in the int8 tensors. The result runs on the CPU and
    accepts any batch size.

    :param calibration: Model inputs (already preprocessed), shape ``(n, *input_shape)``.
    :param backend: ``x86`` (``X86InductorQuantizer``) or ``xnnpack`` (mobile).
    :raises QuantizationError: ``torch.export`` cannot trace the model.
    """
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = _quantizer(backend)
    float_model = make_permanent(clone_module(model)).cpu().eval()
    calibration = check_calibration(calibration).detach().cpu()
    prepared = prepare_pt2e(_exported_graph(float_model, calibration), quantizer)
    with torch.no_grad():
        for batch in calibration.split(batch_size):
            prepared(batch)
    converted = convert_pt2e(prepared)
    # converted graphs are already in inference form; this lets callers' .eval() succeed
    allow_exported_model_train_eval(converted)
    return converted


def compile_int8(quantized: nn.Module, example: torch.Tensor) -> nn.Module:
    """Optional speed path: ``torch.compile`` a converted model so Inductor lowers its
    quantize/dequantize patterns to fused int8 kernels (oneDNN on x86) where the platform
    has them. Never needed for correctness; ``benchmarks/int8_speed.py`` measures it.

    :param example: A batch of inputs; compiling happens on it, with weight freezing on.
    """
    import torch._inductor.config as inductor_config

    compiled = torch.compile(quantized)
    with inductor_config.patch(freezing=True), torch.no_grad():
        compiled(example)
    return compiled  # type: ignore[return-value]


_EXPORTS: dict[tuple, nn.Module] = {}
"""Exported graphs by architecture: exporting costs more than quantizing a small model, and a
study quantizes many models that differ only in their weights."""


def _exported_graph(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    """The exported graph of ``model``, reusing an earlier export of the same architecture
    with this model's weights loaded, when it provably computes the same outputs."""
    state = model.state_dict()
    key = (repr(model), tuple((k, tuple(v.shape)) for k, v in state.items()), tuple(calibration.shape[1:]))
    cached = _EXPORTS.get(key)
    if cached is not None:
        graph = copy.deepcopy(cached)
        graph.load_state_dict(state, strict=True)
        probe = calibration[:8]
        with torch.no_grad():
            if torch.allclose(graph(probe), model(probe), rtol=1e-5, atol=1e-6):
                return graph
    graph = export_model(model, calibration).module()
    if len(_EXPORTS) >= 8:
        _EXPORTS.pop(next(iter(_EXPORTS)))
    _EXPORTS[key] = copy.deepcopy(graph)
    return graph


def int8_weights(quantized: nn.Module) -> dict[str, torch.Tensor]:
    """The int8 constant tensors (quantized weights) that a converted model computes with."""
    graph = getattr(quantized, "graph", None)
    if graph is None:
        raise ParameterTypeError("quantized must be a converted PT2E GraphModule")
    tensors = {}
    for node in graph.nodes:
        if node.op == "get_attr":
            value = _resolve_attr(quantized, str(node.target))
            if isinstance(value, torch.Tensor) and value.dtype == torch.int8:
                tensors[str(node.target)] = value
    return tensors


def _resolve_attr(module: nn.Module, target: str) -> object:
    value: object = module
    for part in target.split("."):
        value = getattr(value, part)
    return value

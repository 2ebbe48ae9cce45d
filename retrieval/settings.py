"""Settings of the knowledge base (env prefix ``OPENCHAT_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.row_limits import RowLimits

# The embedded store a new data dir gets: Qdrant Edge (on-disk segments, native sparse vectors,
# RAM flat while ingesting; docs/retrieval.md, Qdrant Edge). Data dirs built in local mode keep it.
EMBEDDED_DEFAULT: Literal["local", "edge"] = "edge"


# Points Qdrant Edge takes between two maintenance passes (flush + optimize; docs/retrieval.md).
EDGE_MAINTAIN_EVERY = 4096


class RetrievalSettings(BaseSettings):
    """Where the vector store lives and how text is chunked, embedded and deduplicated."""

    model_config = SettingsConfigDict(env_prefix="OPENCHAT_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Everything embedded defaults persist.")
    # Files derived from the embedding model (its optimized graph, the int8 query encoder),
    # built once on first use; unset: data_dir/models. An image can build them at build time
    # (`openchat models`) into a directory of its own, so no container start has to.
    model_dir: Path | None = None
    qdrant_url: str | None = Field(default=None, description="Qdrant server; unset: the embedded store.")
    qdrant_api_key: str | None = None
    collection: str = "chunks"
    # The embedded vector store when no server is set: qdrant-client's local mode (every point
    # as Python objects in RAM) or Qdrant Edge (the Rust engine in-process, mmap'ed segments
    # under data_dir/edge). auto: whichever the data dir already holds, else EMBEDDED_DEFAULT.
    vector_store: Literal["auto", "local", "edge"] = "auto"
    # Edge: flush + optimize after this many points written (0: never), which keeps its RAM
    # flat during a large ingest (docs/retrieval.md, Qdrant Edge).
    edge_maintain_every: int = Field(default=EDGE_MAINTAIN_EVERY, ge=0)
    # auto: tantivy beside Qdrant local mode, Qdrant's sparse vectors on a server and on Edge; sqlite is
    # the older FTS5 sidecar (same analyser, slower top-k; see docs/retrieval.md).
    lexical_index: Literal["auto", "tantivy", "sqlite", "qdrant"] = "auto"
    # Store Qdrant's sparse (BM25) vectors? Unset: only when Qdrant answers the lexical side
    # itself. Beside a sidecar they are never read, and local mode holds them in Python lists:
    # 3.7 of its 9.8 kB RSS a point (docs/retrieval.md, Memory). The benchmark sets it to
    # compare the two lexical paths on one collection.
    qdrant_sparse: bool | None = None
    # Chunks are sized for the embedder's 256 word-piece window: 200 llama-index tokens
    # (tiktoken) is about 230-250 word pieces for English prose, so nothing is truncated.
    chunk_size: int = Field(default=200, ge=32, le=2048)
    chunk_overlap: int = Field(default=20, ge=0, le=512)
    # Cosine above which a chunk counts as a copy of an existing one (see docs/retrieval.md).
    near_duplicate_threshold: float = Field(default=0.95, gt=0.0, le=1.0)
    # Embed and store each new chunk's sentences for the extractive responder (docs/retrieval.md,
    # Sentence vectors): answers then embed only the question, at the price of a slower intake.
    # false: ingest as before; answers embed the sentences they read.
    sentence_vectors: bool = True
    # A new sentence that rewords one another contributor stored first is taken out like a copy
    # (retrieval.paraphrase; docs/retrieval.md, Paraphrased copies). Compares against stored
    # sentence vectors, so it needs sentence_vectors; false: only word-for-word and stretch copies.
    reworded_copies: bool = True
    ingest_batch_rows: int = Field(default=128, ge=1, le=10_000)
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    max_snippet_chars: int = Field(default=20_000, ge=1)
    max_row_chars: int = Field(default=200_000, ge=1, description="A data-set row's text; text and Markdown are cut to it.")
    max_title_chars: int = Field(default=500, ge=1, description="A data-set row's title (JSONL, CSV).")
    max_id_chars: int = Field(default=256, ge=1, description="A data-set row's id (JSONL, CSV).")
    max_meta_chars: int = Field(
        default=4096, ge=0, description="A data-set row's metadata as compact JSON; it is stored with every chunk of the row.",
    )
    # A batch of a data set is read, embedded and written as one (rows_done advances by batches);
    # it ends at ingest_batch_rows rows or once its rows hold this many characters, so one batch of
    # long rows neither holds much memory nor keeps a snippet waiting long for the intake's lock.
    ingest_batch_chars: int = Field(default=64 * 1024, ge=1)
    embed_model: Literal["all-MiniLM-L6-v2-int8"] = "all-MiniLM-L6-v2-int8"
    embed_max_length: int = Field(default=256, ge=16, le=512)
    embed_threads: int = Field(default=0, ge=0, description="onnxruntime intra-op threads; 0 = all cores")
    # Texts per onnxruntime run: the activations of a batch of long chunks dominate an
    # ingestion's peak memory (16: +300 MB, 4: +13 MB) and 4 embeds as fast as 16 on this
    # CPU (docs/retrieval.md, Memory).
    embed_batch_size: int = Field(default=4, ge=1, le=256)
    # Queries run through an int8-quantized copy of the encoder (built once into
    # model_cache_dir; see query_model.py), and repeated queries hit an LRU cache.
    quantized_queries: bool = True
    query_cache_size: int = Field(default=1024, ge=0, description="query embeddings kept; 0 = no cache")
    rrf_k: int = Field(default=2, ge=1, description="RRF constant; Qdrant's default is 2")
    prefetch_limit: int = Field(default=100, ge=1, le=1000)

    @field_validator("qdrant_url", "qdrant_api_key", "model_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def row_limits(self) -> RowLimits:
        return RowLimits(self.max_row_chars, self.max_title_chars, self.max_id_chars, self.max_meta_chars)

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def edge_path(self) -> Path:
        return self.data_dir / "edge"

    def resolved_vector_store(self) -> Literal["server", "local", "edge"]:
        """Where the vectors live: a server when a URL is set, else the embedded store.

        auto keeps a data dir on the store it was built with (an edge/ or qdrant/ folder
        with a collection in it), so changing the default never strands existing data.
        """
        if self.qdrant_url:
            return "server"
        if self.vector_store != "auto":
            return self.vector_store
        if (self.edge_path / self.collection).exists():
            return "edge"
        if (self.qdrant_path / "collection" / self.collection).exists():
            return "local"
        return EMBEDDED_DEFAULT

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical.sqlite3"

    @property
    def model_cache_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def tantivy_path(self) -> Path:
        return self.data_dir / "lexical.tantivy"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

"""The library's front door: a store plus lazily loaded readers, SAEs and labels.

The CLI, the MCP server and the evals all go through a :class:`Workspace`; models load once, on
first use, and are reused across calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from saescope.errors import InputError, MissingAssetError
from saescope.forms import add_forms
from saescope.labels import LabelBook, LatentLabels
from saescope.paths import data_home
from saescope.store.dataset import (
    MANIFEST,
    Dataset,
    Embedding,
    EmbeddingManifest,
    EmbeddingSpec,
    ShardProgress,
    Store,
    check_shard_size,
)

if TYPE_CHECKING:
    from saescope.distributed import RaySettings
    from saescope.embed.engine import EmbedConfig, Embedder, TokenEvidence
    from saescope.embed.reader import Reader
    from saescope.embed.sae import SparseAutoencoder

log = logging.getLogger(__name__)

DEFAULT = "default"


@dataclass(frozen=True)
class SAEChoice:
    """Which SAE to use: the shipped default, a local SAELens folder, or a pretrained release."""

    path: str | None = None
    release: str | None = None
    sae_id: str | None = None

    @classmethod
    def parse(cls, sae: str | None = None, release: str | None = None, sae_id: str | None = None) -> SAEChoice:
        """``sae`` is ``default``, a folder, or ``RELEASE:SAE_ID``; or give ``release`` and ``sae_id``.

        Raises:
            InputError: the combination is incomplete, or a folder is not an SAE folder.
        """
        if release or sae_id:
            if not (release and sae_id):
                raise InputError("a pretrained SAE needs both a release and an SAE id")
            return cls(release=release, sae_id=sae_id)
        if not sae or sae == DEFAULT:
            return cls()
        if ":" in sae and not path_exists(Path(sae)):
            rel, _, sid = sae.partition(":")
            if not (rel.strip() and sid.strip()):
                raise InputError(
                    f"{sae!r} is not a pretrained SAE name: write RELEASE:SAE_ID (e.g. "
                    "gemma-scope-2b-pt-res-canonical:layer_20/width_16k/canonical), a folder, or 'default'"
                )
            return cls(release=rel, sae_id=sid)
        return cls.folder(sae)

    @classmethod
    def folder(cls, path: str | Path) -> SAEChoice:
        """An SAE saved by SAELens in ``path`` (``cfg.json`` and ``sae_weights.safetensors``).

        Raises:
            InputError: ``path`` is not such a folder, or its config or weights are broken (checked without
                loading the SAE: see :func:`saescope.embed.sae.check_sae_folder`).
        """
        from saescope.embed.sae import check_sae_folder

        folder = Path(path)
        check_sae_folder(folder)
        return cls(path=str(folder))

    @property
    def cache_key(self) -> str:
        return f"{self.path}|{self.release}|{self.sae_id}"


def hf_model_for(model_name: str) -> str:
    """The Hugging Face id for a TransformerLens model name (``gemma-2-2b`` → ``google/gemma-2-2b``)."""
    if "/" in model_name:
        return model_name
    try:
        from transformer_lens.loading_from_pretrained import get_official_model_name

        return str(get_official_model_name(model_name))
    except Exception:  # noqa: BLE001 - unknown to TransformerLens: use the name as given
        return model_name


def path_exists(path: Path) -> bool:
    """Whether ``path`` exists (a name too long, or with a NUL byte, does not)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _files_version(emb: Embedding) -> tuple[int, ...]:
    """Identity of the files an embedding's matrix depends on: atomic rewrites change inode and time."""
    stats = [(emb.path / MANIFEST).stat(), (emb.dataset.path / "dataset.json").stat()]
    return tuple(v for st in stats for v in (st.st_ino, st.st_mtime_ns, st.st_size))


def spec_of(reader_id: str, layer: int, dtype: str, sae: SparseAutoencoder, config: EmbedConfig) -> EmbeddingSpec:
    """Everything that determines an embedding's vectors (its manifest's spec, whose hash is its key)."""
    return EmbeddingSpec(
        reader={"id": reader_id, "layer": layer, "dtype": dtype},
        sae={
            "id": sae.id,
            "d_sae": sae.d_sae,
            "hook_name": sae.hook.hook_name if sae.hook else None,
            "dtype": sae.dtype_name,
            "source": sae.source,
        },
        config=config.as_dict(),
    )


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in ("saescope", "torch", "transformers", "sae-lens"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


class Workspace:
    """A data root with the models needed to embed and explain documents, loaded on demand."""

    def __init__(self, root: Path | None = None, *, device: str | None = None, dtype: str | None = None) -> None:
        """``dtype`` is the readers' (default: by device, see :func:`~saescope.embed.reader.default_dtype`).

        Raises:
        InputError: ``device`` names a device this machine does not have (see :func:`check_device`)."""
        if device:
            from saescope.embed.reader import check_device

            device = check_device(device)
        self.store = Store(root if root is not None else data_home())
        self.device = device
        self.dtype = dtype
        self._lock = threading.RLock()
        self._saes: dict[str, SparseAutoencoder] = {}
        self._readers: dict[tuple[str, int], Reader] = {}
        self._labels: dict[str, LabelBook] = {}
        self._matrices: dict[tuple[str, str], tuple[tuple[int, ...], sp.csr_matrix]] = {}

    # --- models -----------------------------------------------------------------------------
    def sae(self, choice: SAEChoice | None = None) -> SparseAutoencoder:
        """Load (once) the chosen SAE.

        Raises:
            MissingAssetError: the SAE cannot be found or downloaded.
        """
        from saescope.embed.default import DEFAULT_SAE_DIR
        from saescope.embed.reader import pick_device
        from saescope.embed.sae import SparseAutoencoder

        choice = choice or SAEChoice()
        with self._lock:
            if choice.cache_key not in self._saes:
                device = pick_device(self.device)
                if choice.release and choice.sae_id:
                    sae = SparseAutoencoder.from_pretrained(choice.release, choice.sae_id, device=device)
                elif choice.path:
                    sae = SparseAutoencoder.from_disk(choice.path, device=device)
                else:
                    if not (DEFAULT_SAE_DIR / "cfg.json").is_file():
                        raise MissingAssetError(
                            f"the default SAE is missing from {DEFAULT_SAE_DIR}; reinstall saescope or run "
                            "`saescope train-sae`"
                        )
                    sae = SparseAutoencoder.from_disk(DEFAULT_SAE_DIR, device=device)
                self._saes[choice.cache_key] = sae
            return self._saes[choice.cache_key]

    def reader_for(self, sae: SparseAutoencoder, reader: str | None = None) -> Reader:
        """Load (once) the reader an SAE was trained on, or ``reader`` if given.

        Raises:
            InputError: the SAE does not say which layer it reads.
            MissingAssetError: the reader cannot be loaded.
        """
        from saescope.embed.reader import Reader

        if sae.layer is None:
            raise InputError(f"SAE {sae.id} does not name its hook point; cannot tell which layer to read")
        with self._lock:
            source, model_id = self.reader_source(sae, reader)
            key = (model_id, sae.layer)
            if key not in self._readers:
                self._readers[key] = Reader(
                    source(), sae.layer, device=self.device, dtype=self.dtype, model_id=model_id
                )
            return self._readers[key]

    def reader_source(self, sae: SparseAutoencoder, reader: str | None = None) -> tuple[Callable[[], str | Path], str]:
        """Where the reader for ``sae`` (or ``reader`` if given) loads from (called when needed: the default
        reader is converted on first use) and its model id, without loading it.

        Raises:
            InputError: the SAE does not name its model and no reader is given.
        """
        from saescope.embed.default import DEFAULT_READER_ID, default_reader_dir

        name = reader or sae.meta.get("reader") or sae.model_name
        if not name:
            raise InputError(f"SAE {sae.id} does not name its model; pass a reader")
        if name in (DEFAULT, DEFAULT_READER_ID):
            return default_reader_dir, DEFAULT_READER_ID
        target = str(name) if path_exists(Path(str(name))) else hf_model_for(str(name))
        return (lambda: target), str(name)

    def embedder(
        self, choice: SAEChoice | None = None, config: EmbedConfig | None = None, reader: str | None = None
    ) -> Embedder:
        from saescope.embed.engine import Embedder

        sae = self.sae(choice)
        return Embedder(self.reader_for(sae, reader), sae, config)

    def labels(self, sae: SparseAutoencoder) -> LabelBook:
        """All labels of ``sae``: shipped with it, plus any saved under the data root."""
        with self._lock:
            if sae.id not in self._labels:
                book = LabelBook(sae.id, sae.d_sae)
                if sae.source.get("kind") == "local":
                    shipped = Path(sae.source["path"]) / "labels.jsonl.gz"
                    if shipped.is_file():
                        book = LabelBook.load_jsonl(shipped, sae.id, sae.d_sae)
                    concepts = Path(sae.source["path"]) / "concepts.jsonl.gz"  # LLM-free descriptions, if shipped
                    if concepts.is_file():
                        book.merge(LabelBook.load_jsonl(concepts, sae.id, sae.d_sae).latents.values())
                extra = self.user_labels_path(sae.id)
                if extra.is_file():
                    book.merge(LabelBook.load_jsonl(extra, sae.id, sae.d_sae).latents.values())
                add_forms(book)  # surface forms read off the examples: cheap, so computed, not stored
                self._labels[sae.id] = book
            return self._labels[sae.id]

    def import_labels(self, sae: SparseAutoencoder, path: Path, source: str | None = None) -> int:
        """Add labels from a Neuronpedia export or provider file to ``sae``'s saved labels.

        Returns the number of latents that received a label.

        Raises:
            InputError: the file is unreadable or names latents outside the SAE.
        """
        from saescope.labels import read_label_file

        records = read_label_file(path, source=source)
        bad = [r.latent for r in records if not 0 <= r.latent < sae.d_sae]
        if bad:
            raise InputError(f"{path} labels latents {bad[:5]} outside {sae.id} (0..{sae.d_sae - 1}): wrong SAE?")
        self.save_labels(sae, records)
        return len(records)

    def save_labels(self, sae: SparseAutoencoder, records: Sequence[LatentLabels]) -> None:
        """Add ``records`` to ``sae``'s saved labels (a label replaces one of the same source and model)."""
        with self._lock:
            target = self.user_labels_path(sae.id)
            target.parent.mkdir(parents=True, exist_ok=True)
            saved = (
                LabelBook.load_jsonl(target, sae.id, sae.d_sae) if target.is_file() else LabelBook(sae.id, sae.d_sae)
            )
            saved.merge(records)
            saved.save_jsonl(target)
            self._labels.pop(sae.id, None)

    def user_labels_path(self, sae_id: str) -> Path:
        import re

        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", sae_id)
        return self.store.root / "labels" / f"{slug}.jsonl"

    # --- datasets -------------------------------------------------------------------------
    def dataset(self, name: str) -> Dataset:
        return self.store.open(name)

    def spec_for(self, embedder: Embedder) -> EmbeddingSpec:
        r = embedder.reader
        return spec_of(r.model_id, r.layer, r.dtype_name, embedder.sae, embedder.config)

    def embed(
        self,
        name: str,
        choice: SAEChoice | None = None,
        config: EmbedConfig | None = None,
        *,
        reader: str | None = None,
        shard_size: int = 256,
        progress: Callable[[ShardProgress], None] | None = None,
        ray: RaySettings | None = None,
    ) -> EmbeddingManifest:
        """Embed dataset ``name`` (resuming a previous run with the same settings), in this process or, with
        ``ray``, on a pool of Ray actors (see :mod:`saescope.distributed`); both write the same store.

        Every setting is checked before a model is loaded or anything is written; re-running a
        complete embedding changes nothing.

        Raises:
            NotFoundError: unknown dataset.
            InputError: ``shard_size`` is not a whole number from 1 to 1,000,000; a Ray cluster that
                cannot be reached.
            MissingAssetError: ``ray`` is given but Ray is not installed.
            SaescopeError: another process is embedding it with the same settings.
        """
        check_shard_size(shard_size)
        ds = self.dataset(name)
        if ray is not None:
            from saescope.distributed import embed_on_ray
            from saescope.embed.engine import EmbedConfig

            manifest = embed_on_ray(
                ds,
                self.store.root,
                choice or SAEChoice(),
                config or EmbedConfig(),
                ray,
                reader=reader,
                shard_size=shard_size,
                versions=_versions(),
                progress=progress,
            )
            self._matrices.pop((name, manifest.key), None)
            return manifest
        embedder = self.embedder(choice, config, reader)
        emb = ds.prepare_embedding(
            self.spec_for(embedder), embedder.sae.d_sae, shard_size=shard_size, versions=_versions()
        )

        def embed_fn(
            shards: Iterator[list[str]], report: Callable[[int, int], None]
        ) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
            return embedder.embed_many(shards, lambda p: report(p.docs_done, p.tokens_done))

        manifest = emb.run(embed_fn, progress)
        self._matrices.pop((name, emb.key), None)
        return manifest

    def embedding(self, name: str, sae_id: str | None = None) -> Embedding:
        return self.dataset(name).embedding(sae_id)

    def matrix(self, name: str, sae_id: str | None = None) -> tuple[Embedding, sp.csr_matrix]:
        """A dataset's complete embedding and its CSR matrix (cached in memory while the files on disk stay the
        same: another process that re-ingests or re-embeds the dataset invalidates the cached copy)."""
        emb = self.embedding(name, sae_id)
        key = (name, emb.key)
        version = _files_version(emb)
        with self._lock:
            cached = self._matrices.get(key)
            if cached is None or cached[0] != version:
                self._matrices[key] = (version, emb.matrix())
            return emb, self._matrices[key][1]

    def sae_of(self, emb: Embedding) -> SparseAutoencoder:
        """The SAE an embedding was made with."""
        return self.sae(self._choice_of(emb))

    def embedder_of(self, emb: Embedding) -> Embedder:
        """An embedder with exactly the reader, SAE and settings an embedding was made with."""
        from saescope.embed.engine import EmbedConfig

        spec = emb.manifest.spec
        return self.embedder(self._choice_of(emb), EmbedConfig(**spec.config), spec.reader.get("id"))

    def evidence(
        self, name: str, doc_id: str, latents: list[int], sae_id: str | None = None
    ) -> dict[int, list[TokenEvidence]]:
        """Which tokens of one document fire the given latents, recomputed by the reader."""
        emb = self.embedding(name, sae_id)
        ds = self.dataset(name)
        row = int(ds.row_of([doc_id])[0])
        text = str(ds.documents(["text"])["text"].iloc[row])
        return self.embedder_of(emb).token_evidence(text, latents)

    def _choice_of(self, emb: Embedding) -> SAEChoice:
        src: dict[str, Any] = emb.manifest.spec.sae.get("source") or {}
        if src.get("kind") == "pretrained":
            return SAEChoice(release=src["release"], sae_id=src["sae_id"])
        from saescope.embed.default import DEFAULT_SAE_DIR

        path = src.get("path")
        if path and Path(path).resolve() != DEFAULT_SAE_DIR.resolve():
            return SAEChoice(path=path)
        return SAEChoice()

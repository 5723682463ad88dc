"""The local cache of scoring models (lib/champion.py): a version asked for by number comes back
from it in a new process without MLflow and scores exactly as the registry's copy; a broken
file, a version without its curve and an alias are never answered from it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from affluent_assets.lib import champion, registry
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.scorer import score_rows
from affluent_assets.lib.validation import validate_frame
from affluent_assets_tests.defs.conftest import MODEL_NAME, register_tiny_model


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return register_tiny_model(tmp_path_factory.mktemp("registry"))


def cache_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def scores(scorer) -> pd.DataFrame:
    frame = generate_customers(300, seed=77).drop(columns=["C_seg"])
    rows = validate_frame(raw_extract_schema(require_label=False), frame, "x.csv")
    return score_rows(scorer, rows, "x.csv").scores


def test_a_version_comes_back_from_the_cache_without_mlflow_and_scores_the_same(store, tmp_path):
    version = store.model.version
    fetched = champion.load_champion(store.tracking_uri, MODEL_NAME, version, cache_dir=tmp_path)
    assert len(cache_files(tmp_path)) == 1
    program = (
        "import sys, pickle\n"
        "from affluent_assets.lib import champion\n"
        f"s = champion.load_champion({store.tracking_uri!r}, {MODEL_NAME!r}, {version!r},"
        f" cache_dir={str(tmp_path)!r})\n"
        "sys.stdout.buffer.write(pickle.dumps(('mlflow' in sys.modules, s.version)))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, check=True)
    assert pickle.loads(done.stdout) == (False, version)
    cached = champion.cached_scoring_model(tmp_path, store.tracking_uri, MODEL_NAME, version)
    assert cached is not None and cached.registered == fetched.registered
    pd.testing.assert_frame_equal(scores(cached), scores(fetched), check_exact=True)


def test_a_broken_file_is_fetched_again_and_rewritten(store, tmp_path):
    version = store.model.version
    champion.load_champion(store.tracking_uri, MODEL_NAME, version, cache_dir=tmp_path)
    (path,) = cache_files(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    assert champion.cached_scoring_model(tmp_path, store.tracking_uri, MODEL_NAME, version) is None
    again = champion.load_champion(store.tracking_uri, MODEL_NAME, version, cache_dir=tmp_path)
    assert again.version == version and path.read_bytes() == whole


def test_runs_that_fill_it_at_once_leave_one_whole_file(store, tmp_path):
    loaded = champion.load_champion(store.tracking_uri, MODEL_NAME)
    threads = [
        threading.Thread(target=champion.remember, args=(tmp_path, store.tracking_uri, loaded))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache_files(tmp_path)) == 1  # nothing left aside
    version = loaded.version
    assert champion.cached_scoring_model(tmp_path, store.tracking_uri, MODEL_NAME, version)


def test_a_version_without_its_curve_is_not_kept(store, tmp_path):
    loaded = champion.load_champion(store.tracking_uri, MODEL_NAME)
    without_curve = champion.ScoringModel(loaded.model, loaded.registered)
    champion.remember(tmp_path, store.tracking_uri, without_curve)
    assert cache_files(tmp_path) == []


def test_an_alias_is_asked_of_the_registry_not_the_cache(store, tmp_path):
    """The alias may have moved since a version was cached: only numbers are read from it."""
    first = champion.load_champion(store.tracking_uri, MODEL_NAME, cache_dir=tmp_path)
    again = register_tiny_model(tmp_path / "again", store.tracking_uri)
    try:
        now = champion.load_champion(store.tracking_uri, MODEL_NAME, cache_dir=tmp_path)
        assert now.version == again.model.version != first.version
    finally:
        registry.set_alias(store.tracking_uri, MODEL_NAME, first.version)


def test_another_store_or_model_name_is_another_file(store, tmp_path):
    loaded = champion.load_champion(store.tracking_uri, MODEL_NAME)
    champion.remember(tmp_path, store.tracking_uri, loaded)
    version = loaded.version
    assert (
        champion.cached_scoring_model(tmp_path, "sqlite:///elsewhere.db", MODEL_NAME, version)
        is None
    )
    assert (
        champion.cached_scoring_model(tmp_path, store.tracking_uri, "other_model", version) is None
    )

"""The champion as scoring needs it, loaded from the MLflow registry without Dagster: the fitted
model (pipeline and calibrator), its registered version (threshold, decile edges), its holdout
precision curve and its explainer's tables, built once per loaded version.

A landing run, `affluent score`, the main graph's scoring and the inference service all load it
here and score with lib/scorer.py, so a row scored by any of them gets the same answer.

A registered version never changes, so a loaded one is kept in a local cache, one file per
version (and per scikit-learn and XGBoost release, whose pickles are theirs). A landing run
whose sensor named the version scores from that file: no MLflow import (over a second) and no
store to open, for a run that scores a few thousand rows in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from affluent_assets.lib import registry
from affluent_assets.lib.evaluation import HoldoutCurve
from affluent_assets.lib.registry import CHAMPION_ALIAS, RegisteredModel
from affluent_assets.lib.training import CalibratedModel


class ChampionUnavailable(LookupError):
    """No version to score with: the registry is unreachable, or nothing holds the alias yet."""


@dataclass(frozen=True)
class ScoringModel:
    """The champion as scoring needs it: the fitted model, its registered version (threshold,
    decile edges) and its holdout precision curve (None for a model trained without one)."""

    model: CalibratedModel
    registered: RegisteredModel
    curve: HoldoutCurve | None = None

    @property
    def version(self) -> str:
        return self.registered.version


def champion_version(
    tracking_uri: str, model_name: str, alias: str = CHAMPION_ALIAS
) -> RegisteredModel:
    """The registered version that holds `alias` now (or, given a number, that version);
    ChampionUnavailable says why there is none (the registry cannot be read, or no version
    has been promoted yet)."""
    store = _sqlite_file(tracking_uri)
    named = f"version {alias}" if alias.isdigit() else f"{alias!r} version"
    if store is not None and not store.exists():  # asking would create an empty store there
        raise ChampionUnavailable(
            f"no MLflow store at {store} yet, so no {named} of model {model_name!r}; "
            "train it with affluent_job first"
        )
    try:
        found = registry.describe_version(tracking_uri, model_name, alias)
    except Exception as error:  # a server that does not answer, a store that cannot be opened
        raise ChampionUnavailable(f"cannot read the model registry: {error}") from None
    if found is None:
        raise ChampionUnavailable(
            f"no {named} of model {model_name!r} yet; train it with affluent_job first"
        )
    return found


def _sqlite_file(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


def load_scoring_model(
    tracking_uri: str, registered: RegisteredModel, warm: bool = False
) -> ScoringModel:
    """A registered version's fitted model and holdout curve. With `warm`, its explainer is
    built now (a service's first answer would otherwise pay for it; a batch run builds it when
    it explains, after its scores are queryable)."""
    from affluent_assets.lib.scoring import warm_explainer

    model = registry.load_model(tracking_uri, registered)
    if warm:
        warm_explainer(model)
    return ScoringModel(model, registered, registry.load_holdout_curve(tracking_uri, registered))


def set_threads(scorer: ScoringModel, threads: int) -> None:
    """How many threads one prediction may use. A service scoring small requests side by side
    wants one each: waking every core for one row costs more than the row, and on a busy machine
    a request would wait for all of them."""
    estimator = scorer.model.pipeline.named_steps["model"]
    if hasattr(estimator, "get_booster"):
        estimator.get_booster().set_param({"nthread": threads})


def load_champion(
    tracking_uri: str,
    model_name: str,
    alias: str = CHAMPION_ALIAS,
    cache_dir: str | Path | None = None,
) -> ScoringModel:
    """The version holding `alias` (or the version numbered so), loaded to score with;
    ChampionUnavailable when there is none or it cannot be loaded. With `cache_dir`, the
    version comes from the cache when it is there (an alias is first asked of the registry,
    since it moves; a number is not), and a version loaded from the registry is put there."""
    if cache_dir is not None and alias.isdigit():
        cached = cached_scoring_model(cache_dir, tracking_uri, model_name, alias)
        if cached is not None:
            return cached
    registered = champion_version(tracking_uri, model_name, alias)
    if cache_dir is not None and not alias.isdigit():
        cached = cached_scoring_model(cache_dir, tracking_uri, model_name, registered.version)
        if cached is not None and cached.registered == registered:
            return cached
    try:
        loaded = load_scoring_model(tracking_uri, registered)
    except Exception as error:
        raise ChampionUnavailable(
            f"cannot load {model_name} v{registered.version}: {error}"
        ) from None
    if cache_dir is not None:
        remember(cache_dir, tracking_uri, loaded)
    return loaded


def _cache_file(cache_dir: str | Path, tracking_uri: str, model_name: str, version: str) -> Path:
    import sklearn
    import xgboost

    store = hashlib.sha256(f"{tracking_uri}\n{model_name}".encode()).hexdigest()[:16]
    libraries = f"py{sys.version_info[0]}{sys.version_info[1]}-sklearn{sklearn.__version__}"
    return Path(cache_dir) / store / f"v{version}-{libraries}-xgboost{xgboost.__version__}.pkl"


def cached_scoring_model(
    cache_dir: str | Path, tracking_uri: str, model_name: str, version: str
) -> ScoringModel | None:
    """The version from the cache; None when it is not there or cannot be read back (then the
    registry is asked, and the file written again)."""
    path = _cache_file(cache_dir, tracking_uri, model_name, version)
    try:
        with path.open("rb") as file:
            # The same trust as the registry's own artifact: a cloudpickle MLflow wrote, kept
            # in the platform's data folder, which only the platform writes.
            loaded = pickle.load(file)
    except FileNotFoundError:
        return None
    except Exception:  # a file from a broken write or an older layout: fetch it again
        return None
    wanted = (model_name, str(version))
    if not isinstance(loaded, ScoringModel) or (loaded.registered.name, loaded.version) != wanted:
        return None
    return loaded


def remember(cache_dir: str | Path, tracking_uri: str, scorer: ScoringModel) -> None:
    """Keep a loaded version in the cache. The file appears whole or not at all (written
    aside, then renamed), so runs that fill it at once each leave a complete file. A version
    without its holdout curve is not kept: the curve may be logged after registration."""
    if scorer.curve is None:
        return
    registered = scorer.registered
    path = _cache_file(cache_dir, tracking_uri, registered.name, registered.version)
    aside = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with aside.open("wb") as file:
            pickle.dump(scorer, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(aside, path)
    except Exception:  # a read-only or full disk: scoring goes on, the next run fetches again
        aside.unlink(missing_ok=True)


class ChampionFollower:
    """The champion a long-running service scores with, kept current: a thread asks the
    registry every `poll_seconds` which version holds the alias and, when it moved, loads the
    new version beside the old one and swaps the reference in one assignment. A request takes
    `current` once and scores every row with it, so no answer mixes two versions, and none
    waits for a load. `problem` says why there is no champion yet (or why the last load
    failed, while the previous version keeps answering)."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        alias: str = CHAMPION_ALIAS,
        poll_seconds: float = 2.0,
        threads: int | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.threads = threads
        self.model_name = model_name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.current: ScoringModel | None = None
        self.problem: str | None = "not loaded yet"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the alias's version if it is not the one answering; True if it swapped."""
        try:
            registered = champion_version(self.tracking_uri, self.model_name, self.alias)
        except ChampionUnavailable as error:
            if self.current is None:
                self.problem = str(error)
            return False
        current = self.current
        if current is not None and current.registered == registered:
            return False
        try:
            loaded = load_scoring_model(self.tracking_uri, registered, warm=True)
            if self.threads is not None:
                set_threads(loaded, self.threads)
        except Exception as error:  # keep answering with the version that works
            self.problem = f"cannot load {self.model_name} v{registered.version}: {error}"
            return False
        self.current, self.problem = loaded, None
        return True

    def start(self) -> ChampionFollower:
        """Load once now (a service is ready when this returns with a champion), then follow."""
        self.refresh()
        self._thread = threading.Thread(target=self._follow, name="champion-follower", daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

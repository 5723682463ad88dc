"""The champion as scoring needs it, loaded from the MLflow registry without Dagster: the fitted
model (pipeline and calibrator), its registered version (threshold, decile edges), its holdout
precision curve and its explainer's tables, built once per loaded version.

A landing run, `affluent score`, the main graph's scoring and the inference service all load it
here and score with lib/scorer.py, so a row scored by any of them gets the same answer.
"""

from __future__ import annotations

import threading
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
    """The registered version that holds `alias` now; ChampionUnavailable says why there is
    none (the registry cannot be read, or no version has been promoted yet)."""
    store = _sqlite_file(tracking_uri)
    if store is not None and not store.exists():  # asking would create an empty store there
        raise ChampionUnavailable(
            f"no MLflow store at {store} yet, so no {alias!r} version of model {model_name!r}; "
            "train it with affluent_job first"
        )
    try:
        found = registry.describe_version(tracking_uri, model_name, alias)
    except Exception as error:  # a server that does not answer, a store that cannot be opened
        raise ChampionUnavailable(f"cannot read the model registry: {error}") from None
    if found is None:
        raise ChampionUnavailable(
            f"no {alias!r} version of model {model_name!r} yet; train it with affluent_job first"
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


def load_champion(tracking_uri: str, model_name: str, alias: str = CHAMPION_ALIAS) -> ScoringModel:
    """The version holding `alias`, loaded to score with; ChampionUnavailable when there is
    none or it cannot be loaded."""
    registered = champion_version(tracking_uri, model_name, alias)
    try:
        return load_scoring_model(tracking_uri, registered)
    except Exception as error:
        raise ChampionUnavailable(
            f"cannot load {model_name} v{registered.version}: {error}"
        ) from None


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

"""Online scoring over HTTP, with the champion's reasons: MLflow's scoring-server protocol
(`/invocations`, `/ping`, `/health`, `/version`) and the Open Inference Protocol v2 (KServe's
`/v2/...`), served beside the upload page by `affluent serve`.

A request's rows pass the same contract check as a landed file (lib/schemas.py, run by
lib/validation.py) and are scored by the one scorer (lib/scorer.py) with the champion that
`ChampionFollower` keeps current, so an answer here equals the row in a batch. Scoring is CPU
work: it runs in a bounded thread pool, so health checks and the page answer meanwhile, and past
the pool's queue a request gets 503 at once instead of waiting in an unbounded queue. See
docs/serving.md.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from affluent_assets.lib import quick_check
from affluent_assets.lib.champion import ChampionFollower, ScoringModel
from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.scorer import Stopwatch, score_columns
from affluent_assets.lib.validation import ContractViolation, validate_frame
from affluent_assets.web import payloads
from affluent_assets.web import telemetry as web_telemetry
from affluent_assets.web.payloads import BadRequest
from affluent_assets.web.violations import violations

SOURCE = "request"  # the source_file a request's rows are cleaned under
_SCHEMA = raw_extract_schema(require_label=False)


@dataclass(frozen=True)
class InferenceSettings:
    """What a deployment sets (AFFLUENT_SERVE_* variables, see docs/serving.md)."""

    tracking_uri: str
    model_name: str = "affluent_classifier"
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024**2
    workers: int = 2
    queue: int = 16
    poll_seconds: float = 2.0
    threads_per_request: int = 1

    @classmethod
    def from_environment(cls, tracking_uri: str) -> InferenceSettings:
        return cls(
            tracking_uri=tracking_uri,
            model_name=os.environ.get("AFFLUENT_MODEL_NAME", cls.model_name),
            max_rows=int(os.environ.get("AFFLUENT_SERVE_MAX_ROWS", cls.max_rows)),
            max_body_bytes=int(os.environ.get("AFFLUENT_SERVE_MAX_BODY_BYTES", cls.max_body_bytes)),
            workers=int(os.environ.get("AFFLUENT_SERVE_WORKERS", cls.workers)),
            queue=int(os.environ.get("AFFLUENT_SERVE_QUEUE", cls.queue)),
            poll_seconds=float(os.environ.get("AFFLUENT_SERVE_POLL_SECONDS", cls.poll_seconds)),
            threads_per_request=int(
                os.environ.get("AFFLUENT_SERVE_THREADS", cls.threads_per_request)
            ),
        )


class Busy(Exception):
    """Every worker is scoring and the queue is full."""


class ScoringPool:
    """At most `workers` requests score at once and `queue` more wait; the counter lives on the
    event loop's thread, so it needs no lock."""

    def __init__(self, workers: int, queue: int):
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scoring")
        self.capacity = workers + queue
        self.pending = 0

    async def run(self, function, *args):
        if self.pending >= self.capacity:
            raise Busy()
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.pending -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def score_request(scorer: ScoringModel, rows: payloads.Rows) -> tuple[dict, Stopwatch]:
    """Check rows against the contract (label optional) and score them with reasons: the
    scores' columns and `c_id`. Raises ContractViolation naming rows, columns and checks."""
    clock = Stopwatch()
    with clock.stage("validate"):
        # Rows that pass take the quick path; pandera then only runs to say what failed.
        valid = quick_check.checked_columns(rows)
        if valid is None:
            valid = validate_frame(_SCHEMA, pd.DataFrame(rows, dtype=object), SOURCE)
    scored = score_columns(scorer, valid, SOURCE, explain=True, clock=clock)
    return scored.scores | {"c_id": scored.clean["c_id"]}, clock


class InferenceService:
    """The champion follower, the pool and the two protocols' routes."""

    def __init__(self, settings: InferenceSettings, follower: ChampionFollower | None = None):
        self.settings = settings
        self.follower = follower or ChampionFollower(
            settings.tracking_uri,
            settings.model_name,
            poll_seconds=settings.poll_seconds,
            threads=settings.threads_per_request,
        )
        self.pool = ScoringPool(settings.workers, settings.queue)

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()
        self.pool.shutdown()

    def routes(self) -> list[Route]:
        name = self.settings.model_name
        return [
            Route("/invocations", self.invocations, methods=["POST"]),
            Route("/ping", self.ping, methods=["GET"]),
            Route("/health", self.ping, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
            Route("/v2", self.v2_server, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ping, methods=["GET"]),
            Route(f"/v2/models/{name}", self.v2_metadata, methods=["GET"]),
            Route(f"/v2/models/{name}/ready", self.ping, methods=["GET"]),
            Route(f"/v2/models/{name}/infer", self.v2_infer, methods=["POST"]),
        ]

    # Health and metadata ------------------------------------------------------------------
    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ping(self, request: Request) -> Response:
        scorer = self.follower.current
        if scorer is None:
            return JSONResponse({"ready": False, "reason": self.follower.problem}, 503)
        return JSONResponse({"ready": True, "model_version": scorer.version},
                            headers=_version_header(scorer))  # fmt: skip

    async def version(self, request: Request) -> Response:
        scorer = self.follower.current
        body = {"model_name": self.settings.model_name,
                "model_version": scorer.version if scorer else None,
                "reason": None if scorer else self.follower.problem}  # fmt: skip
        return JSONResponse(body, headers=_version_header(scorer))

    async def v2_server(self, request: Request) -> Response:
        return JSONResponse({"name": "affluent_assets", "version": "2",
                             "extensions": ["reasons", "expected_precision"]})  # fmt: skip

    async def v2_metadata(self, request: Request) -> Response:
        scorer = self.follower.current
        return JSONResponse(
            {
                "name": self.settings.model_name,
                "versions": [scorer.version] if scorer else [],
                "platform": "xgboost_sklearn_calibrated",
                "inputs": [
                    {
                        "name": column,
                        "datatype": payloads.CONTRACT_DATATYPES[kind],
                        "shape": [-1],
                        "optional": column == "C_seg",
                    }
                    for column, kind in RAW_COLUMNS.items()
                ],  # fmt: skip
                "outputs": [
                    {"name": name, "datatype": datatype, "shape": [-1]}
                    for name, datatype in payloads.OUTPUT_DATATYPES.items()
                ],
            },
            headers=_version_header(scorer),
        )

    # Scoring -----------------------------------------------------------------------------
    async def invocations(self, request: Request) -> Response:
        try:
            body, media_type = await self._body(request), _media_type(request)
            scores, clock, scorer = await self._score(
                lambda: payloads.mlflow_rows(body, media_type)
            )
        except BadRequest as error:
            return _Answer.of(error).mlflow()
        except _Answer as answer:
            return answer.mlflow()
        return JSONResponse(
            {"predictions": payloads.records(scores), "model_version": scorer.version},
            headers=_headers(scorer, clock),
        )

    async def v2_infer(self, request: Request) -> Response:
        asked: dict = {}

        def rows() -> payloads.Rows:
            columns, asked["id"], asked["outputs"] = payloads.v2_rows(payloads.parse_json(body))
            return columns

        try:
            if _media_type(request) not in ("application/json", ""):
                raise BadRequest(415, "send the infer request as application/json")
            body = await self._body(request)
            scores, clock, scorer = await self._score(rows)
        except BadRequest as error:
            return _Answer.of(error).v2()
        except _Answer as answer:
            return answer.v2()
        answer = {"model_name": self.settings.model_name, "model_version": scorer.version,
                  "outputs": payloads.v2_outputs(scores, asked["outputs"])}  # fmt: skip
        if asked["id"] is not None:
            answer["id"] = asked["id"]
        return JSONResponse(answer, headers=_headers(scorer, clock))

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_big = _Answer(413, f"the body is larger than {limit:,} bytes "
                          "(AFFLUENT_SERVE_MAX_BODY_BYTES)")  # fmt: skip
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def _score(self, rows: Callable[[], payloads.Rows]):
        """Read the rows and score them in the pool (both are CPU work), with the champion of
        the moment for the whole request."""
        scorer = self.follower.current
        if scorer is None:
            raise _Answer(503, f"no model to score with: {self.follower.problem}")
        try:
            scores, clock = await self.pool.run(self._read_and_score, scorer, rows)
        except Busy:
            raise _Answer(503, "every scoring worker is busy and the queue is full; retry "
                          "shortly", retry=True) from None  # fmt: skip
        except ContractViolation as violation:
            web_telemetry.describe_violation(violation.failures)
            raise _Answer(422, "the rows break the data contract", violations(violation.failures),
                          scorer=scorer) from None  # fmt: skip
        web_telemetry.describe_scoring(len(scores["c_id"]), scorer.version, clock)
        return scores, clock, scorer

    def _read_and_score(self, scorer: ScoringModel, rows: Callable[[], payloads.Rows]):
        columns = rows()
        count = payloads.row_count(columns)
        if count > self.settings.max_rows:
            raise _Answer(413, f"{count:,} rows in one request; at most "
                          f"{self.settings.max_rows:,} (AFFLUENT_SERVE_MAX_ROWS)")  # fmt: skip
        if count == 0:
            raise _Answer(400, "no rows to score")
        return score_request(scorer, columns)


class _Answer(Exception):
    """An error answer, written in the protocol of the route that raises it."""

    CODES = {400: "BAD_REQUEST", 413: "RESOURCE_LIMIT_EXCEEDED", 415: "BAD_REQUEST",
             422: "INVALID_PARAMETER_VALUE", 503: "TEMPORARILY_UNAVAILABLE"}  # fmt: skip

    def __init__(self, status, message, details=None, scorer=None, retry=False):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details
        self.headers = _version_header(scorer) | ({"retry-after": "1"} if retry else {})

    @classmethod
    def of(cls, error: BadRequest) -> _Answer:
        return cls(error.status, error.message)

    def mlflow(self) -> Response:
        body = {"error_code": self.CODES.get(self.status, "BAD_REQUEST"), "message": self.message}
        return JSONResponse(body | self._details(), self.status, headers=self.headers)

    def v2(self) -> Response:
        return JSONResponse({"error": self.message} | self._details(), self.status,
                            headers=self.headers)  # fmt: skip

    def _details(self) -> dict:
        return {} if self.details is None else {"violations": self.details}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _version_header(scorer: ScoringModel | None) -> dict[str, str]:
    return {"x-model-version": scorer.version} if scorer is not None else {}


def _headers(scorer: ScoringModel, clock: Stopwatch) -> dict[str, str]:
    """The version, and where the time went (Server-Timing, milliseconds)."""
    timing = ", ".join(
        f"{name};dur={seconds * 1000:.2f}" for name, seconds in clock.seconds.items()
    )
    return _version_header(scorer) | {"server-timing": timing}

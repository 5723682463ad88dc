"""The upload page and its HTTP API (Starlette, served by uvicorn: both come with
dagster-webserver). An upload lands in the landing folder; the landing sensor's run scores it,
exactly as a file dropped by hand. The page and the API read the batch's state back from the
Dagster instance, the quarantine folder and the lake. A campaign outcome file lands the same way
in the outcomes folder, for the outcomes sensor's run to read (web/outcomes.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from affluent_assets import settings
from affluent_assets.lib import lake, landing, telemetry, uploads
from affluent_assets.web import batches, outcomes
from affluent_assets.web import telemetry as web_telemetry
from affluent_assets.web.auth import BearerToken
from affluent_assets.web.inference import InferenceService, InferenceSettings
from affluent_assets.web.openapi import OPENAPI

STATIC = Path(__file__).parent / "static"
EXCEL_MAX_ROWS = 1_048_575  # a sheet's rows below the header


@dataclass(frozen=True)
class WebSettings:
    folders: batches.Folders
    token: str | None = None
    max_upload_bytes: int = uploads.DEFAULT_MAX_BYTES
    outcomes: str = field(default_factory=settings.outcomes_dir)  # campaign outcome files
    warehouse: str = field(default_factory=settings.warehouse_path)  # table model_outcomes
    # Online scoring (web/inference.py); None serves the upload page and its API only.
    inference: InferenceSettings | None = None

    @classmethod
    def from_environment(cls, token: str | None = None, max_upload_bytes: int | None = None):
        return cls(
            batches.Folders(settings.landing_dir(), settings.quarantine_dir(), settings.lake_dir()),
            token=token,
            max_upload_bytes=max_upload_bytes or uploads.DEFAULT_MAX_BYTES,
            outcomes=settings.outcomes_dir(),
            warehouse=settings.warehouse_path(),
            inference=InferenceSettings.from_environment(settings.mlflow_tracking_uri()),
        )


def create_app(web: WebSettings, instance: dg.DagsterInstance | None = None) -> Starlette:
    """The page at `/`, the API under `/api/`, the inference routes (web/inference.py); with
    `web.token` set, every route but the page and the probes needs it (web/auth.py)."""
    state = {"instance": instance}

    def dagster() -> dg.DagsterInstance:
        if state["instance"] is None:
            state["instance"] = dg.DagsterInstance.get()
        return state["instance"]

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    routes = [
        *_batch_routes(web, dagster),
        *_outcome_routes(web, dagster),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        Route("/", lambda request: FileResponse(STATIC / "index.html"), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    service = InferenceService(web.inference) if web.inference is not None else None
    if service is not None:
        routes.extend(service.routes())

    @asynccontextmanager
    async def lifespan(app):
        if service is not None:
            service.start()
        try:
            yield
        finally:
            if service is not None:
                service.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(BearerToken, token=web.token)
    web_telemetry.instrument(app, web.folders.lake)
    return app


def _batch_routes(web: WebSettings, dagster: Callable[[], dg.DagsterInstance]) -> list[Route]:
    """Landing files handed in over HTTP (into the landing folder, where the landing sensor
    reads them as dropped files), then their state and their candidate lists."""

    def landed(path: Path) -> dict:
        key = landing.batch_key_for(path.name)
        return {"batch": key, "file": path.name, "status": batches.WAITING,
                "links": {"self": f"/api/batches/{key}"}}  # fmt: skip

    async def create_batch(request: Request) -> Response:
        return await _accept_upload(request, web, web.folders.landing, landed)

    async def list_all(request: Request) -> Response:
        return JSONResponse({"batches": batches.list_batches(dagster(), web.folders)})

    async def show(request: Request) -> Response:
        found = batches.batch_state(dagster(), web.folders, request.path_params["batch"])
        if found is None:
            return _error(404, f"no batch {request.path_params['batch']!r}")
        return JSONResponse(found.to_dict())

    async def candidates(request: Request) -> Response:
        key, kind = request.path_params["batch"], request.path_params["kind"]
        found = batches.batch_state(dagster(), web.folders, key)
        if found is None:
            return _error(404, f"no batch {key!r}")
        # Content scored before under another batch: its rows and list are that batch's.
        holder = found.same_content_as or key
        if not lake.batch_file(web.folders.lake, lake.CANDIDATES, holder).exists():
            return _error(404, f"batch {key!r} has no candidate list (yet)")
        if kind == "json":
            return JSONResponse(
                {
                    "batch": holder,
                    "top": batches.top_candidates(web.folders.lake, holder, 25),
                    "curve": batches.precision_curve(web.folders.lake, holder),
                    "groups": batches.groups(web.folders.lake, holder),
                    "estimates": batches.list_estimates(web.folders.lake, holder),
                }
            )
        if kind in ("csv", "xlsx"):
            return _download(web.folders.lake, holder, kind)
        return _error(404, f"unknown format {kind!r}: csv, xlsx or json")

    return [
        Route("/api/batches", create_batch, methods=["POST"]),
        Route("/api/batches", list_all, methods=["GET"]),
        Route("/api/batches/{batch}", show, methods=["GET"]),
        Route("/api/batches/{batch}/candidates.{kind}", candidates, methods=["GET"]),
    ]


def _outcome_routes(
    web: WebSettings,
    dagster: Callable[[], dg.DagsterInstance],
) -> list[Route]:
    """Campaign outcome files: handed in like a batch (into the outcomes folder, where the
    outcomes sensor reads them as dropped files), then their state and the realized figures."""

    def landed(path: Path) -> dict:
        return {"file": path.name, "status": outcomes.WAITING,
                "links": {"self": f"/api/outcomes/{path.name}"}}  # fmt: skip

    async def create(request: Request) -> Response:
        return await _accept_upload(request, web, web.outcomes, landed)

    async def list_all(request: Request) -> Response:
        return JSONResponse({"files": outcomes.list_outcome_files(dagster(), web.outcomes)})

    async def show(request: Request) -> Response:
        file = request.path_params["file"]
        found = outcomes.outcome_file_state(dagster(), web.outcomes, file)
        if found is None:
            return _error(404, f"no outcome file {file!r}")
        return JSONResponse(found.to_dict())

    async def figures(request: Request) -> Response:
        try:
            return JSONResponse({"figures": outcomes.figures(web.warehouse)})
        except outcomes.WarehouseBusy as error:
            return _error(503, str(error))

    async def uplift(request: Request) -> Response:
        try:
            return JSONResponse(outcomes.uplift(web.warehouse))
        except outcomes.WarehouseBusy as error:
            return _error(503, str(error))

    return [
        Route("/api/outcomes", create, methods=["POST"]),
        Route("/api/outcomes", list_all, methods=["GET"]),
        # Before `{file}`: no outcome file is called `figures` (every one has a suffix).
        Route("/api/outcomes/figures", figures, methods=["GET"]),
        Route("/api/outcomes/uplift", uplift, methods=["GET"]),
        Route("/api/outcomes/{file}", show, methods=["GET"]),
    ]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _accept_upload(
    request: Request, web: WebSettings, folder: str, answer: Callable[[Path], dict]
) -> Response:
    """The one upload handler: the file lands in `folder` (202 with `answer(path)`), or the
    refusal's status and reason."""
    try:
        path = await _receive_upload(request, web, folder)
    except uploads.UploadRefused as error:
        return _error(error.status, str(error))
    return JSONResponse(answer(path), status_code=202)


async def _receive_upload(request: Request, web: WebSettings, folder: str) -> Path:
    """Stream the multipart field `file` into `folder` (the landing or the outcomes folder;
    see lib/uploads.py). A body that is not well-formed multipart, or that is ambiguous (two
    `file` fields, a refused one among them, an empty file), is refused with 400 or 415 and
    leaves nothing behind."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > web.max_upload_bytes + 64 * 1024:
        limit = f"{web.max_upload_bytes:,}"
        raise uploads.UploadRefused(413, f"the upload is larger than {limit} bytes")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise uploads.UploadRefused(400, "send the file as multipart/form-data, field 'file'")
    part = _FilePart()
    parser = MultipartParser(options[b"boundary"], part.callbacks())

    async def file_bytes():
        async for chunk in request.stream():
            _parse(parser.write, chunk)
            if part.refused is not None:
                raise part.refused
            if part.data:
                data, part.data = b"".join(part.data), []
                part.size += len(data)
                yield data
        _parse(parser.finalize)
        if part.refused is not None:
            raise part.refused
        if not part.complete:
            raise uploads.UploadRefused(400, "no complete field 'file' in the upload")
        if part.size == 0:
            raise uploads.UploadRefused(400, f"{part.filename}: the file is empty (0 bytes)")

    staged = await uploads.receive(file_bytes(), folder, web.max_upload_bytes)
    telemetry.save_traceparent(folder, part.name)  # before the sensor can see the file
    return uploads.land(staged, part.name, folder)


def _parse(step, *data: bytes) -> None:
    try:
        step(*data)
    except MultipartParseError as error:
        # e.g. a boundary other than the one the Content-Type names, or a broken part header
        raise uploads.UploadRefused(400, f"malformed multipart/form-data body ({error})") from None


class _FilePart:
    """Callbacks for python-multipart's streaming parser that keep the bytes of field `file`
    and check its file name as soon as its headers have arrived (before any data is stored).
    A second field `file` is refused: which of two files was meant cannot be told."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.field, self.value = b"", b""
        self.current: bool = False
        self.name: str | None = None
        self.filename = ""
        self.refused: uploads.UploadRefused | None = None
        self.data: list[bytes] = []
        self.size = 0
        self.complete = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._grow("field", data[start:end]),
            "on_header_value": lambda data, start, end: self._grow("value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self.headers, self.field, self.value, self.current = {}, b"", b"", False

    def _grow(self, which: str, data: bytes) -> None:
        setattr(self, which, getattr(self, which) + data)

    def _header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") != b"file" or self.refused is not None:
            return
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        if self.name is not None:
            self.refused = uploads.UploadRefused(
                400,
                f"more than one field 'file' ({self.filename}, {filename}): send one per upload",
            )
            return
        try:
            self.name = uploads.landing_name(filename)
            self.filename = filename
            self.current = True
        except uploads.UploadRefused as error:
            self.refused = error

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current:
            self.data.append(data[start:end])

    def _end(self) -> None:
        if self.current:
            self.complete, self.current = True, False


def _download(lake_dir: str, key: str, kind: str) -> Response:
    """The ranked list with reasons and expected precision, as CSV or Excel (first sheet
    capped at Excel's row limit)."""
    sql, params = batches.candidates_query(lake_dir, key)
    folder = Path(tempfile.mkdtemp(prefix="affluent-download-"))
    target = folder / f"{key}-candidates.{kind}"
    with duckdb.connect() as con:
        if kind == "csv":
            con.execute(f"copy ({sql.replace('?', _quoted(params[0]))}) to '{_path(target)}'")
        else:
            _write_excel(con.execute(sql + f" limit {EXCEL_MAX_ROWS}", params), target)
    media = {
        "csv": "text/csv",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }[kind]
    return FileResponse(
        target, media_type=media, filename=target.name,
        background=BackgroundTask(_remove, folder),
    )  # fmt: skip


def _write_excel(cursor, target: Path) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("candidates")
    sheet.append([column[0] for column in cursor.description])
    while rows := cursor.fetchmany(10_000):
        for row in rows:
            sheet.append(list(row))
    book.save(target)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path(path: Path) -> str:
    return str(path).replace("'", "''")


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)

"""The API's OpenAPI description, served at /api/openapi.json."""

_BATCH = {
    "type": "object",
    "properties": {
        "batch": {"type": "string", "description": "batch key (the landing file's safe name)"},
        "file": {"type": "string", "description": "file name in the landing folder"},
        "status": {
            "type": "string",
            "enum": ["waiting", "scoring", "scored", "quarantined", "failed"],
        },
        "reason": {"type": "string", "nullable": True, "description": "why quarantined/failed"},
        "rows": {"type": "integer", "nullable": True},
        "candidates": {"type": "integer", "nullable": True},
        "model_version": {"type": "string", "nullable": True},
        "run_id": {"type": "string", "nullable": True, "description": "the Dagster run"},
        "updated_at": {"type": "number", "nullable": True, "description": "Unix time"},
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_BATCH_PARAMETER = {"name": "batch", "in": "path", "required": True, "schema": {"type": "string"}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {
        "title": "affluent_assets scoring API",
        "version": "1",
        "description": "Hand in an ETB file; the landing sensor scores it with the champion "
        "model; read its state and download the ranked candidate list with reasons and expected "
        "precision. When a token is configured, send `Authorization: Bearer <token>`.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Batch": _BATCH, "Error": _ERROR},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/batches": {
            "post": {
                "summary": "Upload a .csv, .xlsx or .parquet file to be scored",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                                "required": ["file"],
                            }
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": "Landed; the sensor will score it",
                        "content": {"application/json": {"schema": _BATCH}},
                    },
                    "400": _error("Not a multipart upload with a field 'file'"),
                    "401": _error("Token missing or wrong"),
                    "413": _error("Larger than the configured limit"),
                    "415": _error("Not a .csv, .xlsx or .parquet file"),
                },
            },
            "get": {
                "summary": "Batches, newest first, with their states",
                "responses": {"200": {"description": "The batches"}, "401": _error("Token")},
            },
        },
        "/api/batches/{batch}": {
            "get": {
                "summary": "A batch's state",
                "parameters": [_BATCH_PARAMETER],
                "responses": {
                    "200": {
                        "description": "The batch",
                        "content": {"application/json": {"schema": _BATCH}},
                    },
                    "404": _error("No such batch"),
                },
            }
        },
        "/api/batches/{batch}/candidates.{format}": {
            "get": {
                "summary": "The ranked candidate list: csv, xlsx, or json (top 25 and the "
                "expected-precision curve)",
                "parameters": [
                    _BATCH_PARAMETER,
                    {
                        "name": "format",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["csv", "xlsx", "json"]},
                    },
                ],
                "responses": {
                    "200": {"description": "The list"},
                    "404": _error("No such batch, or not scored yet"),
                },
            }
        },
    },
}

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
        "reason": {
            "type": "string",
            "nullable": True,
            "description": "why quarantined/failed; for a scored file whose content was scored "
            "before, which batch holds its rows and list",
        },
        "rows": {"type": "integer", "nullable": True},
        "candidates": {"type": "integer", "nullable": True},
        "model_version": {"type": "string", "nullable": True},
        "run_id": {"type": "string", "nullable": True, "description": "the Dagster run"},
        "updated_at": {"type": "number", "nullable": True, "description": "Unix time"},
        "warnings": {
            "type": "array",
            "items": {"type": "string"},
            "description": "data-quality warnings of the rows (scored all the same), in words",
        },
        "same_content_as": {
            "type": "string",
            "nullable": True,
            "description": "the batch holding this file's rows and list (same content scored "
            "before); its figures are shown and its list is served under this batch",
        },
    },
}
_OUTCOME_FILE = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "description": "file name in the outcomes folder"},
        "status": {"type": "string", "enum": ["waiting", "read", "quarantined"]},
        "detail": {
            "type": "string",
            "nullable": True,
            "description": "read: its counts, e.g. '30 customers, 14 upgraded (v3)'; "
            "quarantined: the reason, naming the column and the rows",
        },
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_BATCH_PARAMETER = {"name": "batch", "in": "path", "required": True, "schema": {"type": "string"}}
_UPLOAD = {
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
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _upload_answers(landed: str, schema: dict) -> dict:
    """The answers of an upload, the same rules for a file to score and an outcome file."""
    return {
        "202": {"description": landed, "content": {"application/json": {"schema": schema}}},
        "400": _error(
            "Not a well-formed multipart upload with exactly one complete, non-empty field 'file'"
        ),
        "401": _error("Token missing or wrong"),
        "413": _error("Larger than the configured limit"),
        "415": _error("Not a .csv, .xlsx or .parquet file"),
    }


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SCORING_ANSWERS = {
    "400": _error("Malformed: not JSON, no known format, a short row, a nested value"),
    "401": _error("Token"),
    "413": _error("Too many rows (AFFLUENT_SERVE_MAX_ROWS) or too big a body"),
    "415": _error("Another content type"),
    "422": _error("Rows that break the data contract: `violations` names each column, check "
                  "and row (from 0), never a value"),
    "503": _error("No champion yet, or every worker busy (Retry-After)"),
}  # fmt: skip
_PREDICTION = {
    "type": "object",
    "properties": {
        "c_id": {"type": "integer"},
        "affluent_probability": {"type": "number", "description": "calibrated P(AFFLUENT)"},
        "flagged": {"type": "boolean", "description": "at or above the champion's threshold"},
        "predicted_segment": {"type": "string", "enum": ["AFFLUENT", "NORMAL"]},
        "score_decile": {"type": "integer", "description": "1 = top 10% of the training rows"},
        "expected_precision": {"type": "number", "nullable": True,
                               "description": "holdout precision of calling everyone scored "
                               "at or above this row"},  # fmt: skip
        "expected_recall": {"type": "number", "nullable": True},
        "reason_1": {"type": "string", "nullable": True,
                     "description": "`feature = value (+contribution)`; reason_2, reason_3 alike"},
        "model_version": {"type": "string"},
    },
}  # fmt: skip
_SCORING_PATHS = {
    "/invocations": {
        "post": {
            "summary": "MLflow's scoring protocol: contract rows as dataframe_split, "
            "dataframe_records, instances or inputs (JSON), or text/csv; one prediction per row",
            "responses": {
                "200": _json("Predictions with reasons", {
                    "type": "object",
                    "properties": {"predictions": {"type": "array", "items": _PREDICTION},
                                   "model_version": {"type": "string"}},
                }),
                **_SCORING_ANSWERS,
            },
        }
    },
    "/ping": {"get": {"summary": "Ready: 200 with the model version, 503 without a champion",
                      "security": [], "responses": {"200": {"description": "Ready"}}}},
    "/version": {"get": {"summary": "The model name and the version answering",
                         "responses": {"200": {"description": "The version"}}}},
    "/v2/health/live": {"get": {"summary": "Open Inference Protocol: live", "security": [],
                                "responses": {"200": {"description": "Live"}}}},
    "/v2/health/ready": {"get": {"summary": "Open Inference Protocol: ready (a champion loaded)",
                                 "security": [], "responses": {"200": {"description": "Ready"}}}},
    "/v2/models/affluent_classifier": {"get": {
        "summary": "Model metadata: one input per contract column, the outputs, the version",
        "responses": {"200": {"description": "Metadata"}}}},
    "/v2/models/affluent_classifier/infer": {"post": {
        "summary": "Open Inference Protocol v2 infer: one tensor per contract column "
        "(columnar); outputs named as in /invocations; `id` echoed",
        "responses": {"200": {"description": "The outputs"}, **_SCORING_ANSWERS}}},
}  # fmt: skip

OPENAPI = {
    "openapi": "3.0.3",
    "info": {
        "title": "affluent_assets scoring API",
        "version": "1",
        "description": "Hand in an ETB file; the landing sensor scores it with the champion "
        "model; read its state and download the ranked candidate list with reasons and expected "
        "precision. After the campaign, hand the list back with a column `upgraded` as an "
        "outcome file; the outcomes sensor reads it into realized precision per model version. "
        "Score one customer or a few hundred at once, with reasons, over MLflow's scoring "
        "protocol (/invocations) or the Open Inference Protocol v2 (/v2/...): docs/serving.md. "
        "When a token is configured, send `Authorization: Bearer <token>`.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Batch": _BATCH, "OutcomeFile": _OUTCOME_FILE, "Error": _ERROR},
    },
    "security": [{"bearer": []}],
    "paths": {
        **_SCORING_PATHS,
        "/api/batches": {
            "post": {
                "summary": "Upload a .csv, .xlsx or .parquet file to be scored",
                "requestBody": _UPLOAD,
                "responses": _upload_answers("Landed; the sensor will score it", _BATCH),
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
                "summary": "The ranked candidate list with each customer's `group` (campaign: "
                "call; control: held back): csv, xlsx, or json (top 25, the precision curve, "
                "the group counts and the list's estimates at the threshold and capacity cuts)",
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
        "/api/outcomes": {
            "post": {
                "summary": "Upload a campaign outcome file (the downloaded list with a column "
                "`upgraded`: yes/no, true/false, 1/0)",
                "requestBody": _UPLOAD,
                "responses": _upload_answers(
                    "Landed in the outcomes folder; the outcomes sensor will read it",
                    _OUTCOME_FILE,
                ),
            },
            "get": {
                "summary": "Outcome files, newest first: waiting, read or quarantined",
                "responses": {
                    "200": _json("The outcome files", {"type": "object"}),
                    "401": _error("Token"),
                },
            },
        },
        "/api/outcomes/figures": {
            "get": {
                "summary": "The rows of model_outcomes: per source and model version, realized "
                "against estimated (the flagged customers' own scores, 90% interval) and "
                "expected (holdout) precision (empty before the first outcomes run)",
                "responses": {
                    "200": _json("The figures", {"type": "object"}),
                    "503": _error("A run is writing the warehouse; try again"),
                },
            }
        },
        "/api/outcomes/uplift": {
            "get": {
                "summary": "The campaign's effect: upgrade rate of the called against the "
                "control group, the difference with a 90% interval, overall and by score "
                "decile, and the Qini curve; `note` says why there is none (no control rows)",
                "responses": {
                    "200": _json("uplift, qini, note", {"type": "object"}),
                    "503": _error("A run is writing the warehouse; try again"),
                },
            }
        },
        "/api/outcomes/{file}": {
            "get": {
                "summary": "An outcome file's state",
                "parameters": [
                    {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json("The outcome file", _OUTCOME_FILE),
                    "404": _error("No such outcome file"),
                },
            }
        },
    },
}

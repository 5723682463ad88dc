"""One guard for every route: with a token set (any address but loopback), a request needs
`Authorization: Bearer <token>`; without one (loopback), every request passes. The page, its
static files, the API description and the health probes stay open, because a browser loads the
page before it can ask for the token and a Kubernetes probe sends none."""

from __future__ import annotations

import hmac
import json

OPEN_PATHS = frozenset(
    {"/", "/api/openapi.json", "/ping", "/health", "/v2/health/live", "/v2/health/ready"}
)
OPEN_PREFIXES = ("/static/",)


class BearerToken:
    """Pure ASGI middleware: nothing is buffered, so uploads still stream."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send):
        if (
            self.expected is None
            or scope["type"] != "http"
            or scope["path"] in OPEN_PATHS
            or scope["path"].startswith(OPEN_PREFIXES)
        ):
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            return await self.app(scope, receive, send)
        body = json.dumps(
            {"error": "a bearer token is required (Authorization: Bearer <token>)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

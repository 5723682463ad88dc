#!/usr/bin/env python
"""The image's HEALTHCHECK: the Dagster webserver (DAGSTER_PORT, default 3000) and the upload
page (AFFLUENT_WEB_PORT, default 3001) both answer on loopback. Exit 0 healthy, 1 not."""

import os
import sys
import urllib.request

CHECKS = [
    (os.environ.get("DAGSTER_PORT") or "3000", "/server_info"),
    (os.environ.get("AFFLUENT_WEB_PORT") or "3001", "/api/openapi.json"),
]

for port, path in CHECKS:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        sys.exit(1)

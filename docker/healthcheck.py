#!/usr/bin/env python
"""The image's HEALTHCHECK: the Dagster webserver (DAGSTER_PORT, default 3000) and the upload
page (AFFLUENT_WEB_PORT, default 3001) both answer on loopback. Exit 0 healthy, 1 not.
With URLs as arguments, those are checked instead (deploy/compose/ uses it for the services
that run one server each: a plain command line, which every compose tool passes through)."""

import os
import sys
import urllib.request

CHECKS = [
    (os.environ.get("DAGSTER_PORT") or "3000", "/server_info"),
    (os.environ.get("AFFLUENT_WEB_PORT") or "3001", "/api/openapi.json"),
]

URLS = sys.argv[1:] or [f"http://127.0.0.1:{port}{path}" for port, path in CHECKS]

for url in URLS:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        sys.exit(1)

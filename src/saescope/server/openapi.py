"""The viewer API's OpenAPI schema as JSON, for the web UI's generated types:

    python -m saescope.server.openapi > web/openapi.json
    cd web && npm run api-types        # web/openapi.json -> web/src/api/schema.d.ts

Both outputs are committed; tests/server/test_openapi.py fails when either is out of date
with the server's routes and response models (saescope.server.schemas).
"""

from __future__ import annotations

import json
import sys

from saescope.server.app import api_app


def openapi_json() -> str:
    """The schema as the committed file holds it: 2-space indented, newline at the end."""
    return json.dumps(api_app().openapi(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(openapi_json())


if __name__ == "__main__":
    main()

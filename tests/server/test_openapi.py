"""The API's schema and what is generated from it: the committed web/openapi.json and
web/src/api/schema.d.ts must be what the server's routes and response models make, and the
dashboards' compact encoding must have the shape those types declare (the panels read it
through them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from saescope.server.openapi import openapi_json
from saescope.server.schemas import DashboardData
from tests.server.viewer_run import SAE_ID

WEB = Path(__file__).resolve().parents[2] / "web"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"
TSC = WEB / "node_modules" / ".bin" / "tsc"
NO_NODE_MODULES = "web/node_modules is missing: cd web && npm ci (scripts/setup.sh does it)"


def test_the_committed_schema_is_the_servers():
    assert (WEB / "openapi.json").read_text() == openapi_json(), (
        "web/openapi.json is out of date: python -m saescope.server.openapi > web/openapi.json, "
        "then cd web && npm run api-types"
    )


def test_every_api_route_has_its_areas_tag_and_a_documented_answer():
    schema = json.loads(openapi_json())
    tags = {"health", "saes", "features", "search", "training", "map", "live"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert len(operation["tags"]) == 1 and operation["tags"][0] in tags, (path, method)
            answer = operation["responses"]["200"]["content"]
            assert "image/png" in answer or answer["application/json"]["schema"], (path, method)


@pytest.mark.skipif(not GENERATOR.exists(), reason=NO_NODE_MODULES)
def test_the_committed_typescript_types_are_generated_from_the_schema(tmp_path):
    fresh = tmp_path / "schema.d.ts"
    subprocess.run(
        [str(GENERATOR), str(WEB / "openapi.json"), "-o", str(fresh)],
        cwd=WEB,
        check=True,
        capture_output=True,
    )
    assert (WEB / "src" / "api" / "schema.d.ts").read_text() == fresh.read_text(), (
        "web/src/api/schema.d.ts is out of date: cd web && npm run api-types"
    )


def encoded_dashboards(client) -> list[dict]:
    """Real encoded dashboards: two features' panels and a prompt's page, as the API sends them."""
    base = f"/api/saes/{SAE_ID}"
    found = [client.get(f"{base}/features/{f}/panels").json() for f in (0, 2)]
    found.append(client.post(f"{base}/prompt", json={"text": "The cat sat on the mat."}).json())
    return found


def test_encoded_dashboards_have_exactly_the_declared_shape(client):
    encoded = encoded_dashboards(client)
    for data in encoded:
        DashboardData.model_validate(data)  # no key missing, none unknown, every type right
    assert encoded[0]["features"][0]["top"] and encoded[-1]["prompt"]["rankings"]


@pytest.mark.skipif(not TSC.exists() or shutil.which("node") is None, reason=NO_NODE_MODULES)
def test_encoded_dashboards_type_check_as_the_panels_types(client, tmp_path):
    """The TypeScript compiler itself reads real encoded data as DashboardData (types.ts)."""
    types = (WEB / "src" / "panels" / "types").as_posix()
    lines = [f'import type {{ DashboardData }} from "{types}";']
    for i, data in enumerate(encoded_dashboards(client)):
        lines.append(f"export const data{i}: DashboardData = {json.dumps(data)};")
    checked = tmp_path / "encoded.ts"
    checked.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [str(TSC), "--noEmit", "--strict", "--skipLibCheck", "--target", "ES2020", str(checked)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]

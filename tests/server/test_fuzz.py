"""Every API operation of the OpenAPI schema fed generated requests (hypothesis): values of
the declared types and well beyond them (huge and negative ints, control characters, wrong
types, missing and extra fields, non-JSON bodies), against the real app with the real model.
None may answer 5xx or log a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saescope.server.openapi import openapi_json
from tests.server.viewer_run import SAE_ID

SCHEMA = json.loads(openapi_json())
OPERATIONS = [
    (path, method, op)
    for path, methods in SCHEMA["paths"].items()
    for method, op in methods.items()
    if method in ("get", "post")
]
LIVE_TAG = "live"

# anything JSON, small
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
WILD_INTS = (
    st.integers() | st.integers(min_value=10**17, max_value=10**40) | st.integers(max_value=-1)
)
WILD_TEXT = (
    st.text(max_size=30)
    | st.just("\x00")
    | st.text(alphabet="0123456789", min_size=19, max_size=60)
)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def value_of(schema: dict[str, Any]) -> st.SearchStrategy:
    """A value of the schema's type, often out of its bounds, sometimes of another type."""
    schema = resolve(schema)
    if "anyOf" in schema:
        return st.one_of([value_of(s) for s in schema["anyOf"]])
    if "enum" in schema:
        typed = st.sampled_from(schema["enum"])
    else:
        typed = {
            "integer": WILD_INTS,
            "number": st.floats(allow_nan=False) | WILD_INTS,
            "string": WILD_TEXT,
            "boolean": st.booleans(),
            "null": st.none(),
            "object": body_of(schema),
        }.get(schema.get("type"), ANY_JSON)
    return typed | ANY_JSON if schema.get("type") != "object" else typed


def body_of(schema: dict[str, Any]) -> st.SearchStrategy:
    props = schema.get("properties", {})
    return st.fixed_dictionaries(
        {k: value_of(v) for k, v in props.items() if k in schema.get("required", [])},
        optional={k: value_of(v) for k, v in props.items() if k not in schema.get("required", [])},
    )


def path_value(name: str, schema: dict[str, Any]) -> st.SearchStrategy[str]:
    if name == "sae_id":
        return st.sampled_from([SAE_ID, quote(SAE_ID, safe="")]) | WILD_TEXT.map(
            lambda s: quote(s, safe="")
        ).filter(bool)
    return (WILD_INTS.map(str) | WILD_TEXT.map(lambda s: quote(s, safe=""))).filter(bool)


@st.composite
def requests(draw, path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    url = path
    params = {}
    for p in op.get("parameters", []):
        if p["in"] == "path":
            url = url.replace(f"{{{p['name']}}}", draw(path_value(p["name"], p["schema"])))
        elif p["in"] == "query" and (p.get("required") or draw(st.booleans())):
            value = draw(value_of(p["schema"]))
            params[p["name"]] = value if isinstance(value, str) else json.dumps(value)
    request: dict[str, Any] = {"method": method.upper(), "url": url, "params": params}
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        kind = draw(st.sampled_from(["typed", "typed", "any", "raw"]))
        if kind == "raw":
            request["content"] = draw(st.binary(max_size=40))
            request["headers"] = {
                "content-type": draw(st.sampled_from(["application/json", "text/plain", ""]))
            }
        else:
            body = draw(body_of(resolve(schema)) if kind == "typed" else ANY_JSON)
            request["content"] = json.dumps(body).encode()
            request["headers"] = {"content-type": "application/json"}
    return request


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.seen.append(record.getMessage())


@pytest.mark.parametrize(
    ("path", "method", "op"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS]
)
def test_no_request_gets_a_5xx_or_logs_a_traceback(client, path, method, op):
    live = LIVE_TAG in op.get("tags", [])
    tracebacks = Tracebacks()
    logging.getLogger().addHandler(tracebacks)

    @settings(
        max_examples=25 if live else 80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(requests(path, method, op))
    def check(request: dict[str, Any]) -> None:
        response = client.request(**request)
        assert response.status_code < 500, (request, response.status_code, response.text[:300])
        assert not tracebacks.seen, tracebacks.seen

    try:
        check()
    finally:
        logging.getLogger().removeHandler(tracebacks)

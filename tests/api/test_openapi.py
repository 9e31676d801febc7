"""OpenAPI describes the data: every route has a named, non-empty response schema, every status
the API can answer is documented, and real responses of the tiny model validate against it
(jsonschema-rs, installed with schemathesis)."""

from __future__ import annotations

import re

import pytest
from jsonschema_rs import Draft202012Validator
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_api.settings import ApiSettings
from tests.api.test_golden import requests

COMMON = {"405", "414", "429", "500", "503"}


@pytest.fixture(scope="module")
def spec_client(tiny):
    settings = ApiSettings(data_root=tiny.root, registry=str(tiny.registry), refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client, client.get("/schema/openapi.json").json()


def _operation(spec: dict, path: str) -> dict:
    """The GET operation a concrete path is routed to: static segments win over parameters."""
    path = path.split("?")[0]
    candidates = []
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and "get" in item:
            candidates.append((template.count("{"), template))
    assert candidates, f"{path} is not documented"
    return spec["paths"][min(candidates)[1]]["get"]


def _validator(spec: dict, schema: dict) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": spec["components"]})


def test_every_route_has_a_named_response_schema_and_documents_its_statuses(spec_client):
    _, spec = spec_client
    for path, item in spec["paths"].items():
        op = item["get"]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema, path
        if path.startswith("/api"):
            refs = re.findall(
                r'"\$ref": "#/components/schemas/([^"]+)"', str(schema).replace("'", '"')
            )
            assert refs, f"{path}: response is not a named component"
            assert set(op["responses"]) >= COMMON, f"{path}: {sorted(op['responses'])}"
    names = set(spec["components"]["schemas"])
    for service in ("Neuroscope", "ActivationStats", "Neuron2graph", "NeuronExplainer"):
        for level in ("Model", "Layer", "Neuron"):
            assert f"{service}{level}Response" in names
    assert {"QuantileExamplesNeuronResponse", "LogitEffectsNeuronResponse", "Missing"} <= names
    text = spec["components"]["schemas"]["Text"]
    assert {"tokens", "activations", "max_activation"} <= set(text["properties"])


def test_real_responses_validate_against_the_schema(spec_client, tiny):
    client, spec = spec_client
    checked = 0
    for path in requests(tiny):
        r = client.get(path)
        if not path.startswith("/api") or len(path) > 2048 or "/extra" in path:
            continue  # not routed: no operation to check against
        op = _operation(spec, path)
        documented = op["responses"].get(str(r.status_code))
        assert documented, f"{path}: status {r.status_code} is not documented"
        schema = documented["content"]["application/json"]["schema"]
        errors = list(_validator(spec, schema).iter_errors(r.json()))
        assert not errors, f"{path}: {errors[0].message[:300]} at {errors[0].instance_path}"
        checked += 1
    assert checked > 30


def test_a_wrong_response_fails_validation(spec_client):
    """The schemas are strict enough to catch a changed payload."""
    client, spec = spec_client
    op = _operation(spec, "/api/tiny/neuroscope/0/1")
    validator = _validator(spec, op["responses"]["200"]["content"]["application/json"]["schema"])
    body = client.get("/api/tiny/neuroscope/0/1").json()
    assert validator.is_valid(body)
    body["data"]["texts"][0]["activations"] = "not a list"
    assert not validator.is_valid(body)

"""The neuron page's issue-11 sections (most negative examples, co-activation similar neurons)
against the JSON the API serves for the same neuron of the tiny model."""

from __future__ import annotations

import html
import re

import pytest
from litestar.testing import TestClient

from dd_api.app import create_app
from dd_assets.tables import ACTIVATION_SAMPLE_WINDOWS, NEURON_COACTIVATION
from tests.ui.conftest import remove_table
from tests.ui.test_pages import section


@pytest.fixture
def client(api_env):
    with TestClient(create_app()) as c:
        yield c


def test_negative_examples_and_coactivation_sections(client):
    page = client.get("/viz/tiny/1/7").text
    neg = section(page, "negative")
    api = client.get("/api/tiny/bottom_examples/1/7").json()["data"]
    assert "Most negative examples" in neg
    assert neg.count('class="ex"') == len(api["texts"]) > 0
    for text in api["texts"]:
        assert f"max <b>{text['max_activation']:.3g}</b>" in neg
    sim = section(page, "coactivation")
    co = client.get("/api/tiny/similar_neurons/1/7").json()["data"]["similar"]
    links = re.findall(r'href="/viz/tiny/(\d+)/(\d+)"', sim)
    for x in co:
        assert (str(x["layer"]), str(x["neuron"])) in links
    assert f"{co[0]['correlation']:+.2f}" in html.unescape(sim)


def test_sections_say_not_computed_without_the_tables(tiny, data_copy):
    from dd_api.settings import ApiSettings

    for table in (ACTIVATION_SAMPLE_WINDOWS, NEURON_COACTIVATION):
        remove_table(data_copy, table)
    settings = ApiSettings(data_root=data_copy, registry=str(tiny.registry), refresh_seconds=0)
    with TestClient(create_app(settings)) as c:
        page = c.get("/viz/tiny/0/3")
        assert page.status_code == 200
        assert "not computed" in section(page.text, "negative")
        assert "not computed" in section(page.text, "coactivation")


def test_model_and_index_pages_state_n2g_coverage_in_neurons(client):
    overall = client.get("/api/tiny/neuron2graph").json()["data"]["overall"]
    meta = client.get("/api/tiny/metadata").json()["data"]
    total = meta["num_layers"] * meta["layer_size"]
    assert overall["num_graphs"] > 0
    stated = f"{overall['num_graphs']}/{total} neurons"
    assert stated in section(client.get("/viz/tiny").text, "services")
    assert stated in client.get("/viz").text

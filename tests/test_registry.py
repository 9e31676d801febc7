import pytest

from dd_assets.registry import load_registry, parse_registry

GOOD = {"name": "m", "loader": {"kind": "hub", "name": "gpt2"}}


def test_the_shipped_registry_is_valid():
    registry = load_registry("models.yaml")
    spec = registry["smollm2-135m"]
    assert spec.loader.kind == "packaged_gguf" and spec.hook == "mlp.hook_post"
    assert spec.num_documents * spec.context_length == spec.token_budget


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**GOOD, "name": "Bad Name"}, "must match"),
        ({**GOOD, "name": "x'; DROP"}, "must match"),
        ({**GOOD, "loader": {"kind": "ftp"}}, "loader kind"),
        ({**GOOD, "loader": {"kind": "local"}}, "needs"),
        ({**GOOD, "hook": "attn.hook_z"}, "hook"),
        ({**GOOD, "context_length": 1}, "context_length"),
        ({**GOOD, "dataset": {"kind": "files"}}, "needs a path"),
        ({**GOOD, "top_k": 0}, "positive"),
    ],
)
def test_bad_entries_are_rejected(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_registry({"models": [entry]})


def test_duplicates_are_rejected():
    with pytest.raises(ValueError, match="twice"):
        parse_registry({"models": [GOOD, GOOD]})
    with pytest.raises(KeyError):
        parse_registry({"models": [GOOD]})["other"]

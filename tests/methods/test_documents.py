from dd_assets.methods.documents import pack_documents
from dd_assets.methods.hooks import hook_name


def encode(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_documents_are_bos_plus_fixed_length():
    pieces = [("a", "hello world"), ("b", "second piece of text"), ("c", "x" * 50)]
    docs = pack_documents(pieces, encode, bos_id=1, context_length=8, num_documents=5)
    assert len(docs) == 5
    assert all(len(d.token_ids) == 8 and d.token_ids[0] == 1 for d in docs)
    stream = [t for d in docs for t in d.token_ids[1:]]
    assert stream == encode("hello world\n\nsecond piece of text\n\n" + "x" * 50 + "\n\n")[:35]
    assert [d.source for d in docs[:3]] == ["a", "a", "b"]


def test_partial_tail_is_dropped():
    docs = pack_documents([("a", "abc")], encode, bos_id=0, context_length=4, num_documents=10)
    assert [d.token_ids for d in docs] == [[0, *encode("abc")]]


def test_hook_names():
    assert hook_name(7) == "blocks.7.mlp.hook_post"
    assert hook_name(0, "mlp.hook_mid") == "blocks.0.mlp.hook_mid"

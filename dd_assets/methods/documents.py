"""Turn text into fixed-length documents of token ids, BOS first (Neuroscope's layout)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    source: str  # where the document's first token came from
    token_ids: list[int]  # BOS + (context_length - 1) tokens


def pack_documents(
    pieces: Iterable[tuple[str, str]],
    encode: Callable[[str], list[int]],
    bos_id: int,
    context_length: int,
    num_documents: int,
    separator: str = "\n\n",
) -> list[Document]:
    """Concatenate the pieces' tokens into one stream and cut it into documents.

    Each document is BOS followed by the next ``context_length - 1`` tokens of the stream, as in
    Neuroscope's pre-tokenized datasets. Stops once `num_documents` are full; a partial tail is
    dropped so that every document has exactly `context_length` tokens.
    """
    body = context_length - 1
    docs: list[Document] = []
    buffer: list[int] = []
    buffer_source = ""
    for source, text in pieces:
        ids = encode(text + separator)
        if not buffer:
            buffer_source = source
        buffer.extend(ids)
        while len(buffer) >= body:
            docs.append(Document(buffer_source, [bos_id, *buffer[:body]]))
            if len(docs) == num_documents:
                return docs
            buffer = buffer[body:]
            buffer_source = source
    return docs

"""Logit effects: the output tokens a neuron promotes and suppresses most directly."""

from __future__ import annotations

from dd_api.query.refs import NeuronRef
from dd_api.query.rows import neuron_row
from dd_api.query.schemas import LogitNeuron, LogitToken
from dd_api.query.store import DataStore
from dd_api.query.values import floats
from dd_assets.tables import LOGIT_EFFECTS


def neuron(store: DataStore, ref: NeuronRef) -> LogitNeuron:
    r = neuron_row(store, LOGIT_EFFECTS, ref)

    def tokens(prefix: str) -> list[LogitToken]:
        return [
            LogitToken(token=str(t), token_id=int(i), value=v)
            for t, i, v in zip(
                r[f"{prefix}_tokens"],
                r[f"{prefix}_token_ids"],
                floats(r[f"{prefix}_values"]),
                strict=True,
            )
        ]

    return LogitNeuron(neuron_index=ref.index, top=tokens("top"), bottom=tokens("bottom"))

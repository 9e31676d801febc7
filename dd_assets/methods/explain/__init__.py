"""Neuron explanations, OpenAI Neuron Explainer style (methods.md §3), plus an offline explainer.

Modules, in the order data flows through them:

- `records`: interleaved explain/score splits, 64-token windows, 0-10 scaling, record blocks;
- `prompts`: explainer and simulator chat prompts (our wording) and reply parsing;
- `client`: OpenAI-compatible chat completions with bounded concurrency, retries, budget, cache;
- `simulate`: simulated activations from a reply (expected value over digit log-probabilities, or
  the sampled values when the endpoint gives none);
- `all_at_once`: OpenAI's all-at-once simulator, from a prompt's echoed log-probabilities;
- `scoring`: the held-out correlation score;
- `llm`: explain and score neurons with an LLM endpoint;
- `offline`: explain and score every neuron from its own data, with no LLM.

No Dagster and no storage here: arrays and records in, records out.
"""

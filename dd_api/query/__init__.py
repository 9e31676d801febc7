"""The query layer: typed references and one function per service and level, returning Structs.

Both the JSON API (``dd_api.api``) and the web UI (``dd_api.ui``) call it; it imports neither
(an import-linter contract in the tests keeps it so). Where to start:

- ``refs``: a model, layer or neuron reference, validated once (``neuron_ref(store, "m", 3, 17)``);
- ``services``: the registry, ``run(store, "neuroscope", ref)`` -> a ``schemas`` Struct, or
  ``MissingData`` naming the tables without data there;
- ``store``: table-version pinning and the partition cache, nothing else.
"""

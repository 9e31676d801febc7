"""The JSON API: DeepDecipher's routes as one Litestar controller over the query layer.

``controller`` holds the routes and builds the envelope in one place, ``responses`` the named
OpenAPI components of every envelope, ``encoding`` how Structs and numpy arrays become JSON,
``errors`` the one translation of query errors to JSON responses, ``system`` liveness and docs.
"""

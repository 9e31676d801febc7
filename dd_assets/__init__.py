"""Pipeline side of deepdecipher: method code, table schemas, storage and Dagster assets.

Kept free of imports on purpose: the API imports `dd_assets.tables`, `dd_assets.registry` and
`dd_assets.storage`, and must not pull in torch or dagster by doing so.
"""

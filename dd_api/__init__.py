"""Read-only HTTP API over the Delta tables, compatible with DeepDecipher's routes and JSON.

Never imports torch or dagster: it starts in about a second and serves whatever the pipeline has
written, picking up new table versions without a restart.
"""

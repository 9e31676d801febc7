"""Dagster assets: thin wiring from partitions and tables to the method code."""

"""Dagster wiring for deepdecipher: Definitions, resources, jobs and sensors."""

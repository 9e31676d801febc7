"""Method code: tensors and arrays in, arrays and records out. No Dagster, no storage."""

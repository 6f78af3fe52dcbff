"""Concurrency pools. DuckDB allows one writing process per file, so every step that writes the
local warehouse runs in the `warehouse` pool, limited to 1 in infra/dagster*.yaml."""

WAREHOUSE_POOL = "warehouse"

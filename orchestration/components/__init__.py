"""Our YAML factories as Dagster components (schema-checked, errors point at the line)."""

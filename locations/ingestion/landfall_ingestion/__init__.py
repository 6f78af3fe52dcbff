"""The dg project of the ingestion code location (locations/ingestion/dg.toml)."""

"""The dg project of the transformation code location (locations/transformation/dg.toml)."""

"""The dg project of the ml code location (locations/ml/dg.toml)."""

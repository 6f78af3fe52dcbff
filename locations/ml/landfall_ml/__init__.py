"""The dg project of the ml code location: its definitions are orchestration.ml's."""

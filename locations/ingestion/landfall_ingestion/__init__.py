"""The dg project of the ingestion code location: its definitions are orchestration.ingestion's."""

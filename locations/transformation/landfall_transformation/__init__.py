"""The dg project of the transformation code location: its definitions are orchestration.transformation's."""

"""Snowpark model declarations: one folder per model holding a ``defs.yaml``.

Loaded by the ``ml`` code location (orchestration/ml.py) through the Dagster component
``orchestration.components.snowpark_models.SnowparkModelComponent``; adding a folder adds a
model, without touching Python.
"""

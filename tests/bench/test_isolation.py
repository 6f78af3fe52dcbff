"""`make bench` runs every benchmark in one process: one must not leave state the next reads
(the definitions benchmark once left landing.zones.SLING_DIR on its temporary project, and the
ingest benchmark after it failed)."""

from __future__ import annotations

import shutil

import landing.zones
from bench.definitions import build_ingestion
from common.settings import PROJECT_ROOT


def test_building_a_generated_project_leaves_the_repository_replications_in_place(tmp_path):
    shutil.copytree(PROJECT_ROOT / "landing" / "zones", tmp_path / "zones")
    shutil.copytree(PROJECT_ROOT / "landing" / "sling", tmp_path / "sling")
    before = landing.zones.SLING_DIR
    defs = build_ingestion(tmp_path)
    assert landing.zones.SLING_DIR == before == PROJECT_ROOT / "landing" / "sling"
    assert len(list(defs.assets or [])) == 3

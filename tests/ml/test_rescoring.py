"""Which customers a scoring run picks: unscored for the version, or touched by new files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from ml.inputs import read_feature_inputs
from ml.rescoring import score_due_customers
from ml.scoring import DEFAULT_MODEL, SCORE_COLUMNS
from ml.warehouse_io import SnowparkWarehouse

SCORED_AT = datetime(2024, 6, 2, 12)
LOADED = datetime(2024, 6, 1, 6)  # every seeded row's LOADED_AT


def test_only_customers_of_newly_loaded_files_are_rescored(
    tmp_path: Path,
    seed_marts: Callable[[Path], None],
    assert_stored_scores: Callable[..., None],
) -> None:
    db = tmp_path / "w.duckdb"
    seed_marts(db)
    with SnowparkWarehouse.local(db) as warehouse:
        first = score_due_customers(read_feature_inputs(warehouse), DEFAULT_MODEL, SCORED_AT)
        assert first.scores.columns == list(SCORE_COLUMNS)
        assert (first.as_of, first.loaded_through) == (datetime(2024, 6, 1), LOADED)
        rows = sorted(tuple(r) for r in first.scores.collect())
        # Everyone is new to this version; each carries the file of their newest landed row.
        assert [(r[0], r[4]) for r in rows] == [
            (1, "orders/a.csv"),
            (2, "events/a.jsonl"),
            (3, "orders/a.csv"),
            (4, "orders/b.csv"),
        ]
        warehouse.write_table(first.scores, "ml", "customer_scores")

        existing = warehouse.read_table("ml", "customer_scores")
        inputs = read_feature_inputs(warehouse)
        idle = score_due_customers(inputs, DEFAULT_MODEL, SCORED_AT, existing, LOADED)
        assert idle.scores.count() == 0

    # The warehouse holds its file while open: land the new row once it is closed.
    with duckdb.connect(str(db)) as con:
        stored = con.execute(
            "select customer_id, score, model_version, scored_at, source_partition "
            "from ml.customer_scores order by 1"
        ).fetchall()
        con.execute(
            "insert into staging.stg_landing__events values "
            "('e10', 'd10', 4, '2024-05-31 09:00:00+00', 'page_view', 'events/b.jsonl', "
            "'2024-06-02 00:00:00')"
        )
    # Scores of everyone, as the plain-math oracle computes them from the hand-made features.
    assert_stored_scores(stored, SCORED_AT, None, partitions=False)

    with SnowparkWarehouse.local(db) as warehouse:
        existing = warehouse.read_table("ml", "customer_scores")
        inputs = read_feature_inputs(warehouse)
        touched = score_due_customers(inputs, DEFAULT_MODEL, SCORED_AT, existing, LOADED)
        assert [(r[0], r[2], r[4]) for r in touched.scores.collect()] == [
            (4, DEFAULT_MODEL.version, "events/b.jsonl")
        ]
        assert touched.loaded_through == datetime(2024, 6, 2)

        # Another model version has no scores yet: everyone is due again.
        other = score_due_customers(inputs, _other_model(), SCORED_AT, existing, LOADED)
        assert other.scores.count() == 4


def _other_model():  # noqa: ANN202 - test helper
    from ml.scoring import ChurnModel

    return ChurnModel(
        name="other",
        intercept=0.0,
        weights={"frequency": -1.0},
        means={"frequency": 1.0},
        scales={"frequency": 1.0},
    )

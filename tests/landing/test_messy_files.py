"""Real exports with headers that are not identifiers (`Culmen Length (mm)`) and `NA` for a
missing value: the zone maps the headers to warehouse columns and names its null string; a file
that breaks the contract is quarantined with a reason naming the column and the line."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import dagster as dg
import pytest

from landing import ledger, zones
from landing.ingest import FileOutcome, ingest_objects
from landing.sling_loader import duckdb_csv_options
from landing.validation import BadFileError, check_content
from landing.zones import ZoneConfigError, load_zone
from tests.landing.helpers import ingest, tick
from tests.landing.test_snowflake_path import snowflake, stand_in  # noqa: F401,F811 - the fakesnow fixtures

HEADERS = {
    "studyName": "study_name",
    "Sample Number": "sample_number",
    "Species": "species",
    "Culmen Length (mm)": "culmen_length_mm",
    "Culmen Depth (mm)": "culmen_depth_mm",
    "Body Mass (g)": "body_mass_g",
    "Date Egg": "date_egg",
    "Sex": "sex",
}
CONTRACT = {
    "study_name": "varchar",
    "sample_number": "bigint",
    "species": "varchar",
    "culmen_length_mm": "double",
    "culmen_depth_mm": "double",
    "body_mass_g": "bigint",
    "date_egg": "date",
}
ZONE_YAML = """\
name: penguins
prefix: penguins/
pattern: "*.csv"
format: csv
loader: sling
table: raw.penguins
columns:
{columns}
source_columns:
{mapping}
null_values: [NA]
"""
# Text in, like the shipped replications; `mode` on the stream keeps this zone on Sling (DuckDB's
# read_csv mirrors only a stream of object/source_options/columns/target_options).
REPLICATION = """\
source: LOCAL
target: WAREHOUSE
defaults:
  mode: full-refresh
streams:
  "{{object_url}}":
    object: "{{stage_table}}"
{extra}    source_options:
      format: csv
      header: true
      empty_as_null: true
    columns:
      "*": string
    target_options:
      direct_insert: true
"""


def penguins_csv(rows: int, seed: int, bad: dict[int, str] | None = None) -> bytes:
    """A penguins-like export: the original headers, `NA` and empty fields for missing values,
    quoted species names with spaces. `bad`: data row index -> culmen length text to put there."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADERS)
    for i in range(rows):
        length = "NA" if i % 7 == 3 else f"{rng.uniform(32, 60):.1f}"
        length = (bad or {}).get(i, length)
        writer.writerow(
            [
                "PAL0708",
                i + 1,
                rng.choice(["Adelie Penguin (Pygoscelis adeliae)", "Gentoo penguin (P. papua)"]),
                length,
                "NA" if i % 5 == 4 else f"{rng.uniform(13, 21):.1f}",
                "" if i % 6 == 5 else rng.randint(2700, 6300),
                f"2007-11-{1 + i % 28:02d}",
                rng.choice(["MALE", "FEMALE", "NA", ""]),
            ]
        )
    return out.getvalue().encode()


def _zone_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sling_only: bool) -> Path:
    folder = tmp_path / "zone-config"
    (folder / "sling").mkdir(parents=True)
    monkeypatch.setattr(zones, "SLING_DIR", folder / "sling")
    (folder / "sling" / "penguins.yaml").write_text(
        REPLICATION.format(extra="    mode: full-refresh\n" if sling_only else ""),
        encoding="utf-8",
    )
    path = folder / "penguins.yaml"
    path.write_text(
        ZONE_YAML.format(
            columns="\n".join(f"  {c}: {t}" for c, t in CONTRACT.items()),
            mapping="\n".join(f'  "{h}": {c}' for h, c in HEADERS.items()),
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def penguins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zones.ZoneSpec:
    return load_zone(_zone_dir(tmp_path, monkeypatch, sling_only=False))


@pytest.fixture
def penguins_on_sling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> zones.ZoneSpec:
    return load_zone(_zone_dir(tmp_path, monkeypatch, sling_only=True))


def _bad_line(rows_before: int) -> int:
    return rows_before + 2  # the header is line 1, data row 0 is line 2


def _run(bucket, warehouse, zone, files: dict[str, bytes]) -> dict[str, FileOutcome]:
    bucket.put(files)
    outcomes = {}
    for key, _log, outcome in ingest_objects(
        zone, bucket.s3, bucket.landing.bucket, sorted(files), warehouse
    ):
        assert isinstance(outcome, FileOutcome), outcome
        outcomes[key] = outcome
    return outcomes


def _check_loaded(warehouse, zone, expected_rows: int, na_lengths: int) -> None:
    with warehouse.connect(read_only=True) as con:
        q = zone.schema_name + "." + zone.table_name
        rows, nulls, typed = con.execute(
            f"select count(*), count(*) filter (where culmen_length_mm is null), "
            f"any_value(typeof(culmen_length_mm)) from {q}"
        ).fetchone()
        names = [r[0] for r in con.execute(f"describe {q}").fetchall()]
    assert (rows, nulls, typed) == (expected_rows, na_lengths, "DOUBLE")
    assert set(HEADERS.values()) <= set(names)  # every header under its warehouse name


def test_the_zone_file_maps_headers_and_names_null_strings(penguins: zones.ZoneSpec) -> None:
    assert penguins.warehouse_column("Culmen Length (mm)") == "culmen_length_mm"
    assert penguins.source_header("body_mass_g") == "Body Mass (g)"
    assert penguins.null_value == "NA"
    # DuckDB's read_csv mirrors Sling's null_if + empty_as_null: both mean NULL
    assert duckdb_csv_options(penguins)["nullstr"] == ["NA", ""]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("null_values: [NA]", "null_values: [NA, n/a]"), "at most one string"),
        (('"Sex": sex', '"Sex": body_mass_g'), "several headers map to the same column"),
        (('"Sex": sex', '"Sex": "the sex"'), "is not a safe identifier"),
        (("format: csv", "format: jsonl"), "apply to CSV zones only"),
    ],
)
def test_a_bad_mapping_fails_with_the_file_and_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: tuple[str, str], reason: str
) -> None:
    path = _zone_dir(tmp_path, monkeypatch, sling_only=False)
    path.write_text(path.read_text().replace(*edit), encoding="utf-8")
    with pytest.raises(ZoneConfigError, match=reason) as caught:
        load_zone(path)
    assert str(path) in str(caught.value)


def test_an_unmapped_header_names_the_header_and_where_to_map_it(
    penguins: zones.ZoneSpec,
) -> None:
    body = penguins_csv(3, seed=1).replace(b"Sex", b"Clutch Completion", 1)
    with pytest.raises(BadFileError) as caught:
        check_content(penguins, [body])
    message = str(caught.value)
    assert "'Clutch Completion' is not a safe identifier" in message
    assert f"under source_columns in {penguins.source_file}" in message


def test_messy_files_load_and_a_bad_value_names_column_and_line_with_duckdb_read_csv(
    bucket, warehouse, penguins
) -> None:
    """The embedded default: one DuckDB read_csv stages the run's files together."""
    assert duckdb_csv_options(penguins) is not None
    good = penguins_csv(40, seed=2)
    bad = penguins_csv(30, seed=3, bad={17: "39,1mm"})
    outcomes = _run(bucket, warehouse, penguins, {"penguins/a.csv": good, "penguins/b.csv": bad})
    assert outcomes["penguins/a.csv"].reason is None
    assert outcomes["penguins/b.csv"].reason == (
        "column culmen_length_mm (header 'Culmen Length (mm)'): 1 value(s) are not double, "
        f"e.g. '39,1mm' on line {_bad_line(17)}"
    )
    _check_loaded(warehouse, penguins, 40, sum(1 for i in range(40) if i % 7 == 3))
    with warehouse.connect(read_only=True) as con:
        states = {e.object_key: e.state for e in ledger.entries(con)}
    assert states == {"penguins/a.csv": "loaded", "penguins/b.csv": "quarantined"}


def test_one_file_run_through_dagster_quarantines_with_column_and_line(
    bucket, warehouse, penguins
) -> None:
    """One object per run (the per-object merge), through the zone's asset."""
    bad = penguins_csv(12, seed=4, bad={9: "heavy"})
    bucket.put({"penguins/b.csv": bad})
    with dg.instance_for_test() as instance:
        tick(instance, penguins, bucket.landing, None)
        run = ingest(instance, penguins, "penguins/b.csv", bucket.landing, warehouse)
        [check] = [c for c in run.get_asset_check_evaluations() if not c.passed]
    with warehouse.connect(read_only=True) as con:
        [entry] = ledger.entries(con)
    assert entry.state == "quarantined"
    assert entry.reason == (
        "column culmen_length_mm (header 'Culmen Length (mm)'): 1 value(s) are not double, "
        f"e.g. 'heavy' on line {_bad_line(9)}"
    )
    assert check.asset_key.path == ["raw", "penguins"]


def test_messy_files_load_through_a_sling_replication(bucket, warehouse, penguins_on_sling):
    """A replication DuckDB cannot mirror: Sling itself stages each file."""
    zone = penguins_on_sling
    assert duckdb_csv_options(zone) is None
    good = penguins_csv(25, seed=5)
    bad = penguins_csv(10, seed=6, bad={4: "NaN-ish"})
    outcomes = _run(bucket, warehouse, zone, {"penguins/a.csv": good, "penguins/b.csv": bad})
    assert outcomes["penguins/a.csv"].reason is None
    assert outcomes["penguins/b.csv"].reason == (
        "column culmen_length_mm (header 'Culmen Length (mm)'): 1 value(s) are not double, "
        f"e.g. 'NaN-ish' on line {_bad_line(4)}"
    )
    _check_loaded(warehouse, zone, 25, sum(1 for i in range(25) if i % 7 == 3))


@pytest.mark.timeout(300)
def test_messy_files_load_into_snowflake_through_sling(bucket, snowflake, penguins):  # noqa: F811
    """The production route: Sling stages the local copy (its header in warehouse names, NA as
    null_if) into a Snowflake staging table; here against the fakesnow stand-in."""
    good = penguins_csv(15, seed=7)
    bad = penguins_csv(8, seed=8, bad={6: "n.a."})
    outcomes = _run(bucket, snowflake, penguins, {"penguins/a.csv": good, "penguins/b.csv": bad})
    assert outcomes["penguins/a.csv"].reason is None
    assert outcomes["penguins/b.csv"].reason == (
        "column culmen_length_mm (header 'Culmen Length (mm)'): 1 value(s) are not double, "
        f"e.g. 'n.a.' on line {_bad_line(6)}"
    )
    with snowflake.connect() as con:
        rows, nulls = con.execute(
            'select count(*), count_if("CULMEN_LENGTH_MM" is null) from "RAW"."PENGUINS"'
        ).fetchone()
    assert (rows, nulls) == (15, sum(1 for i in range(15) if i % 7 == 3))


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_the_local_copy_gets_warehouse_names_and_keeps_every_other_byte(
    penguins: zones.ZoneSpec, chunk: int
) -> None:
    from landing.validation import HeaderRenamer

    body = penguins_csv(4, seed=9).replace(b"\n", b"\r\n")
    renamer = HeaderRenamer(penguins)
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    copy = b"".join(renamer.feed(p) for p in pieces) + renamer.close()
    header, rest = copy.split(b"\r\n", 1)
    assert header.decode().split(",") == list(HEADERS.values())
    assert rest == body.split(b"\r\n", 1)[1]
    # a header-only export (no line end) is renamed when the copy ends
    only = HeaderRenamer(penguins)
    assert only.feed(b'"Sample Number",Sex') + only.close() == b"sample_number,sex"

"""Zone YAML is validated: a bad file fails with the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from landing.zones import ZONES_DIR, ZoneConfigError, load_zone, load_zones


def _write(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ZONES_DIR / "orders.yaml").read_text())
    data.update(changes)
    path = tmp_path / "orders.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_zones_load() -> None:
    zones = {z.name: z for z in load_zones()}
    assert set(zones) == {"orders", "customers", "events"}
    assert zones["events"].table_keys == [["raw", "events"], ["raw", "events__items"]]
    assert zones["orders"].matches("orders/2026-11-01/a b.csv")
    assert not zones["orders"].matches("orders/2026-11-01/a.json")
    assert not zones["orders"].matches("customers/a.csv")
    assert zones["orders"].empty_files == "load"


def test_a_pattern_takes_its_files_under_a_compression_suffix() -> None:
    orders = {z.name: z for z in load_zones()}["orders"]  # pattern *.csv
    for key in ("orders/a.csv.gz", "orders/a.csv.GZ", "orders/a.csv.zst", "orders/a.csv.bz2"):
        assert orders.matches(key), key
    for key in ("orders/a.gz", "orders/a.json.gz", "orders/a.csv.tar", "orders/.gz"):
        assert not orders.matches(key), key


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"format": "xml"}, "format", "Input should be"),
        ({"table": "raw.orders; drop table x"}, "table", "not a safe identifier"),
        ({"prefix": "orders"}, "prefix", "must end with '/'"),
        ({"columns": {"order_id": "blob"}}, "columns", "unsupported type 'blob'"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
        ({"pattern": "([", "pattern_kind": "regex"}, "<root>", "not a valid regex"),
        ({"empty_files": "skip"}, "empty_files", "Input should be 'load' or 'quarantine'"),
    ],
)
def test_invalid_zone_names_file_field_and_reason(
    tmp_path: Path, changes: dict, field: str, reason: str
) -> None:
    path = _write(tmp_path, **changes)
    with pytest.raises(ZoneConfigError) as error:
        load_zone(path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    assert f"field '{field}" in message and reason in message, message

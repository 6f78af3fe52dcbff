"""The scriptable verbs against moto's server and a real Dagster instance: sample writes the
sample set, drop lands a user's file under the zone's prefix, wait returns once every landed
version has a verdict and fails on timeout."""

from __future__ import annotations

import dagster as dg

from devstack.cli import main
from landing import ledger
from tests.landing.helpers import ZONES, ingest, tick


def test_sample_writes_every_zone_deterministically(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "a"), "--rows", "20"]) == 0
    assert main(["sample", str(tmp_path / "b"), "--rows", "20"]) == 0
    written = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert {p.parts[0] for p in written} == set(ZONES)
    for path in written:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    assert "wrote 6 sample files" in capsys.readouterr().out


def test_drop_then_wait(bucket, warehouse, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LANDFALL_BUCKET", bucket.landing.bucket)
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # a shell with no AWS setup
        monkeypatch.delenv(name, raising=False)
    mine = tmp_path / "my export.csv"
    mine.write_text(
        "order_id,customer_id,order_ts,amount,status\n1,1,2026-12-01 09:00:00,2.5,paid\n"
    )
    assert main(["drop", str(mine), "--zone", "orders", "--key", "2026-12-03/mine.csv"]) == 0
    assert main(["drop", str(mine), "--zone", "orders"]) == 0
    out = capsys.readouterr().out
    assert f"-> s3://{bucket.landing.bucket}/orders/2026-12-03/mine.csv" in out
    assert "orders/my export.csv" in out

    # nothing has loaded them yet: wait gives up, naming what it saw
    assert main(["wait", "--timeout", "1", "--poll", "0.2"]) == 1
    assert "0/2 objects recorded" in capsys.readouterr().out

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = tick(instance, ZONES["orders"], bucket.landing, None)
        for request in result.run_requests:
            ingest(instance, ZONES["orders"], request.partition_key, bucket.landing, warehouse)
    assert main(["wait", "--timeout", "60", "--poll", "0.2"]) == 0
    assert "2/2 objects recorded, 0 runs in flight, 0 failed" in capsys.readouterr().out
    with warehouse.connect(read_only=True) as con:
        assert {e.object_key for e in ledger.entries(con)} == {
            "orders/2026-12-03/mine.csv",
            "orders/my export.csv",
        }


def test_drop_refuses_an_unknown_zone(tmp_path):
    file = tmp_path / "x.csv"
    file.write_text("a\n1\n")
    try:
        main(["drop", str(file), "--zone", "nope"])
    except SystemExit as exc:
        assert "no zone 'nope'; zones: customers, events, orders" in str(exc)
    else:
        raise AssertionError("an unknown zone must be refused")

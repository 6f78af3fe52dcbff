"""A failed run produces one message with run id, failed step, assets, error and a UI link,
delivered to a Slack-compatible webhook (a real HTTP server on 127.0.0.1) or a JSONL file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from sensors.notifications import notify_on_run_failure


@dg.asset(key=["raw", "always_fails"])
def always_fails() -> None:
    raise ConnectionError("warehouse unavailable: lock held by another process")


@pytest.fixture
def webhook(monkeypatch) -> Iterator[list[dict]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("LANDFALL_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    try:
        yield received
    finally:
        server.shutdown()


def _failed_run(instance: dg.DagsterInstance) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    result = dg.materialize([always_fails], instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    return run, failure


def _notify(instance, run, failure) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="notify_on_run_failure",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure,
    ).for_run_failure()
    notify_on_run_failure(context)


def test_failed_run_posts_one_message_to_the_webhook(webhook):
    with dg.instance_for_test() as instance:
        run, failure = _failed_run(instance)
        _notify(instance, run, failure)
    [payload] = webhook
    details = payload["landfall"]
    assert details["run_id"] == run.run_id
    assert details["failed_steps"] == ["raw__always_fails"]
    assert details["asset_keys"] == ["raw/always_fails"]
    assert details["ui_link"].endswith(f"/runs/{run.run_id}")
    assert run.run_id[:8] in payload["text"] and "raw/always_fails" in payload["text"]


def test_without_a_webhook_the_message_goes_to_the_local_jsonl(landfall_env, monkeypatch):
    monkeypatch.delenv("LANDFALL_NOTIFY_WEBHOOK_URL", raising=False)
    sink = landfall_env.state_dir / "notifications.jsonl"
    before = sink.read_text().splitlines() if sink.exists() else []
    with dg.instance_for_test() as instance:
        run, failure = _failed_run(instance)
        _notify(instance, run, failure)
    lines = sink.read_text().splitlines()[len(before) :]
    assert [json.loads(line)["run_id"] for line in lines] == [run.run_id]


def test_failed_checks_are_notified_once_each(webhook):
    from sensors.notifications import notify_on_check_failure

    @dg.asset(
        key=["raw", "checked"],
        check_specs=[dg.AssetCheckSpec("contract", asset=dg.AssetKey(["raw", "checked"]))],
    )
    def checked():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            passed=False,
            description="column amount: 1 value(s) are not double",
            severity=dg.AssetCheckSeverity.ERROR,
        )

    def tick(instance, cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        notify_on_check_failure(context)
        return context.cursor

    with dg.instance_for_test() as instance:
        cursor = tick(instance, None)  # starts from now: history is not replayed
        dg.materialize([checked], instance=instance)
        cursor = tick(instance, cursor)
        cursor = tick(instance, cursor)  # nothing new: nothing sent
    [payload] = webhook
    assert payload["landfall"]["check"] == "raw/checked:contract"
    assert "column amount" in payload["text"]


def _check_tick(instance, cursor):
    from sensors.notifications import notify_on_check_failure

    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    notify_on_check_failure(context)
    return context.cursor


def test_a_quarantine_is_notified_with_the_file_and_its_reason(webhook, bucket, warehouse):
    """The landing check, run for real against moto's S3: the message names file and reason."""
    from tests.landing.helpers import ZONES, ingest, tick

    zone = ZONES["orders"]
    bad = "orders/dates.csv"
    body = b"order_id,customer_id,order_ts,amount,status\n1,2,not-a-date,3.50,placed\n"
    bucket.put({bad: body})
    with dg.instance_for_test() as instance:
        cursor = _check_tick(instance, None)
        [request] = tick(instance, zone, bucket.landing, None).run_requests
        run = ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
        _check_tick(instance, cursor)
    [payload] = webhook
    url = f"s3://{bucket.landing.bucket}/{bad}"
    details = payload["landfall"]
    assert details["check"] == "raw/orders:file_accepted"
    assert details["run_id"] == run.run_id
    assert details["files"] == [url]
    assert "column order_ts: 1 value(s) are not timestamp" in details["description"]
    assert url in payload["text"] and "not-a-date" in payload["text"]


def test_a_check_without_a_description_is_notified_with_what_its_metadata_says(webhook):
    """A dbt test's check result has no description, only metadata (status, failed rows, the
    test's id): the message carries those instead of an empty line."""

    @dg.asset(
        key=["marts", "orders"],
        check_specs=[dg.AssetCheckSpec("accepted_values_status", asset=["marts", "orders"])],
    )
    def orders():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "unique_id": "test.landfall.accepted_values_fct_orders_status",
                "status": "fail",
                "dagster_dbt/failed_row_count": 7,
                "dagster/column_schema": dg.TableSchema(columns=[]),  # not a one-liner: left out
            },
        )

    with dg.instance_for_test() as instance:
        cursor = _check_tick(instance, None)
        dg.materialize([orders], instance=instance)
        _check_tick(instance, cursor)
    [payload] = webhook
    text = payload["text"]
    assert "(the check gave no description)" in text
    assert "dagster_dbt/failed_row_count: 7" in text and "status: fail" in text
    assert "unique_id: test.landfall.accepted_values_fct_orders_status" in text
    assert "column_schema" not in text
    assert payload["landfall"]["details"]["dagster_dbt/failed_row_count"] == "7"

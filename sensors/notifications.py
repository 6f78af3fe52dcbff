"""Failure notifications: one message per failed run, failed ERROR check or freshness failure,
to the sink chosen by configuration.

Sinks, by environment variable (secrets stay in the environment):
  LANDFALL_NOTIFY_WEBHOOK_URL   Slack-compatible incoming webhook (JSON with `text`)
  LANDFALL_NOTIFY_SMTP_HOST     e-mail via SMTP (+ _PORT, _USER, _PASSWORD, _FROM, _TO)
  otherwise                     a local JSONL file, $LANDFALL_STATE_DIR/notifications.jsonl
Dagster's run-status sensor keeps a cursor over run events, so each failure is seen once.
"""

from __future__ import annotations

import json
import smtplib
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import dagster as dg

from common.dagster_private import get_current_timestamp
from common.settings import get_settings, notification_settings

MAX_ERROR_CHARS = 1_500


@dataclass(frozen=True)
class FailureMessage:
    run_id: str
    job: str
    failed_steps: list[str]
    asset_keys: list[str]
    error: str
    ui_link: str

    @property
    def text(self) -> str:
        return (
            f":rotating_light: Landfall run failed: {self.job} ({self.run_id[:8]})\n"
            f"steps: {', '.join(self.failed_steps) or '-'}\n"
            f"assets: {', '.join(self.asset_keys) or '-'}\n"
            f"error: {self.error}\n{self.ui_link}"
        )


def failure_message(instance: dg.DagsterInstance, run: dg.DagsterRun, error: str) -> FailureMessage:
    """Summarise a failed run from its event log."""
    failed_steps = sorted(
        {
            record.event_log_entry.dagster_event.step_key
            for record in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
            ).records
            if record.event_log_entry.dagster_event
            and record.event_log_entry.dagster_event.step_key
        }
    )
    planned = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    assets = sorted(
        {
            record.event_log_entry.dagster_event.asset_key.to_user_string()
            for record in planned
            if record.event_log_entry.dagster_event
            and record.event_log_entry.dagster_event.asset_key
        }
    )
    return FailureMessage(
        run_id=run.run_id,
        job=run.job_name,
        failed_steps=failed_steps,
        asset_keys=assets,
        error=(error or "").strip()[:MAX_ERROR_CHARS],
        ui_link=f"{get_settings().ui_url}/runs/{run.run_id}",
    )


def send(message: FailureMessage) -> str:
    """Deliver a failure message to the configured sink; returns where it went."""
    return deliver(
        subject=f"Landfall run failed: {message.job} ({message.run_id[:8]})",
        text=message.text,
        details=asdict(message),
    )


def deliver(subject: str, text: str, details: dict) -> str:
    """Deliver any notification to the configured sink; returns where it went."""
    sink = notification_settings()
    webhook = sink.webhook_url
    if webhook:
        body = json.dumps({"text": text, "landfall": details}).encode()
        request = urllib.request.Request(
            webhook, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return "webhook"
    smtp_host = sink.smtp_host
    if smtp_host:
        email = EmailMessage()
        email["Subject"] = subject
        email["From"] = sink.smtp_from
        email["To"] = sink.smtp_to
        email.set_content(text)
        port = sink.smtp_port
        with smtplib.SMTP(smtp_host, port, timeout=10) as smtp:
            if sink.smtp_user:
                smtp.starttls()
                smtp.login(sink.smtp_user, sink.smtp_password or "")
            smtp.send_message(email)
        return "smtp"
    path = Path(get_settings().state_dir) / "notifications.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"subject": subject, **details}) + "\n")
    return str(path)


@dg.run_failure_sensor(
    name="notify_on_run_failure",
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends one message per failed run (webhook, SMTP or a local JSONL file).",
)
def notify_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    error = context.failure_event.message or ""
    message = failure_message(context.instance, context.dagster_run, error)
    where = send(message)
    context.log.info(f"notified failure of run {message.run_id} via {where}")


@dg.sensor(
    name="notify_on_check_failure",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends one message per failed ERROR-severity asset check evaluation.",
)
def notify_on_check_failure(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Reads check evaluations after the cursor (an event timestamp; the SQLite event log is
    sharded by run, so storage ids are not a global order), so each is notified once."""
    if not context.cursor:  # first tick: start from now rather than replay history
        context.update_cursor(str(time.time()))
        return dg.SkipReason("cursor initialised")
    records = context.instance.get_event_records(
        dg.EventRecordsFilter(
            event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            after_timestamp=float(context.cursor),
        ),
        ascending=True,
        limit=500,
    )
    sent = 0
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            message = check_failure_message(evaluation, record.run_id)
            deliver(subject=message.subject, text=message.text, details=asdict(message))
            sent += 1
        context.update_cursor(str(record.timestamp))
    return dg.SkipReason(f"{sent} failed check(s) notified")


@dataclass(frozen=True)
class CheckFailureMessage:
    check: str  # asset/key:check_name
    run_id: str
    description: str  # the check's own words, or "" when it gave none
    files: list[str]  # the landed file(s) the check is about, when it names them
    details: dict[str, str]  # its other short metadata (dbt: status, failed row count, test id)
    ui_link: str

    @property
    def subject(self) -> str:
        return f"Landfall check failed: {self.check}"

    @property
    def text(self) -> str:
        lines = [
            f":warning: Landfall check failed: {self.check} (run {self.run_id[:8]})",
            self.description or "(the check gave no description)",
        ]
        if self.files:
            lines.append(f"file(s): {', '.join(self.files)}")
        lines += [f"{key}: {value}" for key, value in self.details.items()]
        return "\n".join(lines)[:MAX_ERROR_CHARS] + f"\n{self.ui_link}"


# Metadata whose value reads as one short line in a message; tables, schemas and the like are
# left to the UI link.
_SHORT_METADATA = (
    dg.TextMetadataValue,
    dg.IntMetadataValue,
    dg.FloatMetadataValue,
    dg.BoolMetadataValue,
    dg.UrlMetadataValue,
    dg.PathMetadataValue,
    dg.JsonMetadataValue,
)
MAX_DETAIL_CHARS = 300


def check_failure_message(evaluation: dg.AssetCheckEvaluation, run_id: str) -> CheckFailureMessage:
    """What a failed check says, for a person: its description, the file(s) it names (the
    landing check's `file` / `quarantined` metadata) and its other short metadata — a dbt test's
    result has no description, only its status, failed row count and test id."""
    metadata = dict(evaluation.metadata or {})
    files: list[str] = []
    if isinstance(file := metadata.pop("file", None), dg.TextMetadataValue) and file.value:
        files.append(file.value)
    quarantined = metadata.get("quarantined")
    if isinstance(quarantined, dg.JsonMetadataValue) and isinstance(quarantined.value, dict):
        files += [f for f in quarantined.value if f not in files]
        metadata.pop("quarantined")  # its reasons are in the description
    description = (evaluation.description or "").strip()[:MAX_ERROR_CHARS]
    details = {}
    for key, value in metadata.items():
        if not isinstance(value, _SHORT_METADATA):
            continue
        raw = value.value
        text = json.dumps(raw, default=str) if isinstance(raw, dict | list) else str(raw)
        if text.strip() and not (key == "reason" and text in description):  # not said twice
            details[key] = text[:MAX_DETAIL_CHARS]
    return CheckFailureMessage(
        check=f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
        run_id=run_id,
        description=description,
        files=files,
        details=details,
        ui_link=f"{get_settings().ui_url}/assets/{'/'.join(evaluation.asset_key.path)}",
    )


# FreshnessPolicy states, as the daemon records them (FRESHNESS_STATE_CHANGE events)
FRESHNESS_FAIL, FRESHNESS_UNKNOWN = "FAIL", "UNKNOWN"


@dataclass(frozen=True)
class FreshnessGrace:
    """No freshness failure of an asset counts before its first expected landing.

    Never materialized (UNKNOWN): the grace ends `max_lag` after `start`, or after the daemon
    first evaluated the asset if that is later, so on a new stack right after start-up nothing
    is late. Stale (FAIL): it has landed before, so only an explicit `start` holds it back."""

    max_lag: timedelta
    start: datetime | None = None

    def ends(self, state: str, since: float) -> float:
        """When the grace ends for an asset in `state` since `since` (epoch seconds). UNKNOWN
        (never materialized) since `since`: that is when the daemon first evaluated it."""
        start = self.start.timestamp() if self.start else None
        if state == FRESHNESS_UNKNOWN:
            begin = max(since, start) if start is not None else since
        elif start is not None:
            begin = start  # it has landed, and it is late: only an explicit start holds it back
        else:
            return float("-inf")
        return begin + self.max_lag.total_seconds()


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _freshness_description(
    instance: dg.DagsterInstance, key: dg.AssetKey, state: str, since: float, grace: FreshnessGrace
) -> str:
    expected = _duration(grace.max_lag.total_seconds())
    if state == FRESHNESS_UNKNOWN:
        begin = max(since, grace.start.timestamp()) if grace.start else since
        return f"never materialized; the first load was expected within {expected} of {_utc(begin)}"
    last = instance.get_latest_materialization_event(key)
    if last is None:  # materializations wiped since the daemon's evaluation
        return f"stale: no materialization, expected at least every {expected}"
    age = get_current_timestamp() - last.timestamp
    return (
        f"stale: last materialized {_duration(age)} ago ({_utc(last.timestamp)}), "
        f"expected at least every {expected}"
    )


def freshness_failure_sensor(
    name: str, graces: Mapping[dg.AssetKey, FreshnessGrace]
) -> dg.SensorDefinition:
    """Notifies each freshness failure of these assets once, through `deliver`.

    Dagster's daemon evaluates FreshnessPolicies and records each change of an asset's state as a
    FRESHNESS_STATE_CHANGE event; alerting on them is Dagster+ only. Each tick reads the latest of
    those events per asset (`get_freshness_state_records`) and sends, past the asset's grace:
    FAIL (stale), and UNKNOWN (never materialized: the first landing is overdue). The cursor
    remembers the state change each message was for, so a failure is notified once and again
    only after the asset recovered and failed anew; WARN is left to the UI.
    """

    @dg.sensor(
        name=name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Sends one message per freshness failure (stale, or first landing overdue) of "
            f"{len(graces)} asset(s) with a FreshnessPolicy, after each asset's grace."
        ),
    )
    def _notify_on_freshness_failure(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        now = get_current_timestamp()
        notified: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
        records = context.instance.get_freshness_state_records(list(graces))
        sent = 0
        for key, grace in graces.items():
            record, asset = records.get(key), key.to_user_string()
            state = record.freshness_state.value if record else None
            if record is None or state not in (FRESHNESS_FAIL, FRESHNESS_UNKNOWN):
                notified.pop(asset, None)
                continue
            since = record.updated_at.timestamp()
            if notified.get(asset) == since or now < grace.ends(state, since):
                continue
            description = _freshness_description(context.instance, key, state, since, grace)
            link = f"{get_settings().ui_url}/assets/{'/'.join(key.path)}"
            deliver(
                subject=f"Landfall freshness failed: {asset}",
                text=f":hourglass: Landfall freshness failed: {asset}\n{description}\n{link}",
                details={
                    "freshness": asset,
                    "state": state,
                    "description": description,
                    "ui_link": link,
                },
            )
            notified[asset] = since
            sent += 1
        context.update_cursor(json.dumps(notified, sort_keys=True))
        return dg.SkipReason(f"{sent} freshness failure(s) notified")

    return _notify_on_freshness_failure

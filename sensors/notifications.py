"""Failure notifications: one message per failed run, to the sink chosen by configuration.

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
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path

import dagster as dg

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
            key = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            description = (evaluation.description or "").strip()[:MAX_ERROR_CHARS]
            link = f"{get_settings().ui_url}/assets/{'/'.join(evaluation.asset_key.path)}"
            deliver(
                subject=f"Landfall check failed: {key}",
                text=f":warning: Landfall check failed: {key}\n{description}\n{link}",
                details={
                    "check": key,
                    "run_id": record.run_id,
                    "description": description,
                    "ui_link": link,
                },
            )
            sent += 1
        context.update_cursor(str(record.timestamp))
    return dg.SkipReason(f"{sent} failed check(s) notified")

"""moto's S3 server with its state kept on disk, so `landfall down` + `landfall up` keeps the
landed objects.

moto keeps everything in memory. Its recorder appends every request it serves to a file; this
launcher turns that into persistence:

- on start, the recording is compacted to the requests that change state (reads are dropped:
  the sensors list every zone every few seconds), then replayed into a private server on a
  free port before the stack's port answers, so no client sees a half-restored bucket;
- each replayed object keeps the time it was first written (the request's `X-Amz-Date`), so the
  listing sensors' cursors do not see the restored objects as new and load them again;
- recording appends are serialised (the server is threaded; a large body is several writes).

Multipart uploads do not survive a replay (the replay gets a new upload id): upload with a
single PUT, as `put_object` does.

Run as `python -m devstack.s3_server --port P --recording FILE`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_READS = {"GET", "HEAD", "OPTIONS"}


def compact(recording: Path) -> list[dict[str, Any]]:
    """The recording's state-changing requests, in order; the file is rewritten to hold only
    them. A last line cut short by a kill mid-write is dropped."""
    if not recording.exists():
        return []
    entries = []
    for line in recording.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and str(entry.get("method", "")).upper() not in _READS:
            entries.append(entry)
    compacted = recording.with_name(recording.name + ".compacting")
    compacted.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    os.replace(compacted, recording)
    return entries


def _request_time(headers: dict[str, str]) -> datetime | None:
    """When the client signed the request (naive UTC, as moto keeps times)."""
    for name, value in headers.items():
        if name.lower() == "x-amz-date":
            try:
                return datetime.strptime(value, "%Y%m%dT%H%M%SZ")
            except ValueError:
                return None
    return None


def replay(entries: list[dict[str, Any]], endpoint: str) -> None:
    """Send each recorded request to the server at `endpoint`, with moto's S3 clock set to the
    time the request was first made."""
    import base64

    import requests
    from moto.s3 import models as s3_models

    real_clock = s3_models.utcnow
    pinned: list[datetime | None] = [None]
    s3_models.utcnow = lambda: pinned[0] or real_clock()
    target = urlsplit(endpoint)
    try:
        with requests.Session() as session:
            for entry in entries:
                headers = dict(entry.get("headers") or {})
                if headers.get("Transfer-Encoding", "") == "chunked":
                    del headers["Transfer-Encoding"]
                body = entry.get("body") or b""
                if entry.get("body_encoded"):
                    body = base64.b64decode(body)
                url = urlsplit(entry["url"])
                pinned[0] = _request_time(headers)
                session.request(
                    entry["method"],
                    urlunsplit((target.scheme, target.netloc, url.path, url.query, "")),
                    headers=headers,
                    data=body,
                    timeout=60,
                )
    finally:
        s3_models.utcnow = real_clock


def serve(host: str, port: int, recording: Path) -> None:
    recording.parent.mkdir(parents=True, exist_ok=True)
    # moto's recorder reads these when moto is imported
    os.environ["MOTO_ENABLE_RECORDING"] = "1"
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)
    entries = compact(recording)

    from moto.moto_api import recorder
    from moto.server import ThreadedMotoServer

    recorder.stop_recording()  # what is replayed is in the file already
    if entries:
        private = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        private.start()
        replay_host, replay_port = private.get_host_and_port()
        replay(entries, f"http://{replay_host}:{replay_port}")
        private.stop()

    append = recorder._record_request
    lock = threading.Lock()

    def record_serialised(*args: Any, **kwargs: Any) -> None:
        with lock:
            append(*args, **kwargs)

    recorder._record_request = record_serialised
    recorder.start_recording()

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    print(f"s3 server on http://{host}:{port}, {len(entries)} requests replayed", flush=True)
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopped.wait(1.0):
        pass
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--recording", type=Path, required=True)
    args = parser.parse_args()
    serve(args.host, args.port, args.recording)


if __name__ == "__main__":
    main()

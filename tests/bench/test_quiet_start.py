"""Each benchmark in `make bench` starts once the previous one's load has passed."""

from __future__ import annotations

import bench.results as results


def test_a_quiet_machine_starts_at_once(monkeypatch):
    monkeypatch.setattr(results.os, "getloadavg", lambda: (0.4, 0.3, 0.2))
    assert results.wait_until_quiet("ingest", timeout_s=0.0) == 0.4


def test_a_load_that_falls_is_waited_for(monkeypatch):
    loads = iter([2.8, 2.1, 1.2])
    monkeypatch.setattr(results.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr("time.sleep", lambda _s: None)
    assert results.wait_until_quiet("ingest", timeout_s=60.0, poll_s=0.0) == 1.2


def test_a_machine_that_stays_busy_starts_after_the_timeout_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(results.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert results.wait_until_quiet("scale", timeout_s=0.0) == 3.0
    assert "still busy after 0 s" in capsys.readouterr().out

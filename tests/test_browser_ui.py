"""The Dagster UI of `landfall dev` in a real browser (Debian's Chromium driven by Playwright):
the three code locations load, the global lineage shows raw -> dbt -> scores, and a
materialization launched by clicking succeeds. Screenshots are kept as test artifacts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_ROOT
from tests.dev_stack import running_landfall_dev

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / ".local" / "test-artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ASSET = "staging/stg_landing__customers"  # a dbt view over raw.customers


def _chromium() -> Path:
    """Debian's Chromium; installed from the Debian registry when absent (never a download by
    Playwright)."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed and could not be installed with apt-get")
    return CHROMIUM


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["data"]


def _runs(url: str) -> list[dict]:
    query = (
        "{ runsOrError { ... on Runs { results "
        "{ runId status jobName assetSelection { path } } } } }"
    )
    return _graphql(url, query)["runsOrError"]["results"]


def _poll(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(1)
    return value


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(1200)
def test_ui_shows_locations_lineage_and_runs_a_materialization(tmp_path):
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_landfall_dev(tmp_path) as url:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(120_000)

            def dismiss_community_modal() -> None:
                skip = page.get_by_role("button", name="Skip")
                if skip.count() and skip.first.is_visible():
                    skip.first.click()

            # 1. the three code locations, loaded without errors
            page.goto(f"{url}/locations")
            dismiss_community_modal()
            for name in ("ingestion", "transformation", "ml"):
                expect(page.locator(f'a[href="/locations/{name}/"]').first).to_be_visible()
            expect(page.get_by_text("Loaded", exact=True)).to_have_count(3)
            assert page.get_by_text("Failed", exact=True).count() == 0
            page.screenshot(path=ARTIFACTS / "1-locations.png", full_page=True)

            # 2. the global lineage: raw -> dbt -> scores
            page.goto(f"{url}/asset-groups")
            dismiss_community_modal()
            # With several groups the graph opens collapsed to one box per group: expand each.
            for group in ("landing", "staging", "intermediate", "marts", "ml"):
                box = page.get_by_role("button", name=f"asset_group {group} {group}")
                expect(box.first).to_be_visible(timeout=120_000)
                dismiss_community_modal()
                box.first.dblclick()
            for node in (
                "orders",
                "stg_landing__orders",
                "customer_order_features",
                "customer_scores",
            ):
                expect(page.get_by_text(node, exact=True).first).to_be_visible(timeout=60_000)
            page.screenshot(path=ARTIFACTS / "2-lineage.png", full_page=True)

            # 3. a materialization launched from the UI succeeds (once raw.customers exists)
            _poll(
                lambda: any(
                    r["jobName"] == "ingest_customers_job" and r["status"] == "SUCCESS"
                    for r in _runs(url)
                ),
                600,
                "the sample drop's customers to be loaded",
            )
            before = {r["runId"] for r in _runs(url)}
            page.goto(f"{url}/assets/{ASSET}")
            dismiss_community_modal()
            page.get_by_role("button", name="Materialize", exact=True).first.click()
            launched = _poll(
                lambda: [
                    r
                    for r in _runs(url)
                    if r["runId"] not in before
                    and [a["path"] for a in r["assetSelection"] or []] == [ASSET.split("/")]
                ],
                120,
                "the run launched from the UI",
            )
            run_id = launched[0]["runId"]
            status = _poll(
                lambda: next(
                    (
                        r["status"]
                        for r in _runs(url)
                        if r["runId"] == run_id
                        and r["status"] in ("SUCCESS", "FAILURE", "CANCELED")
                    ),
                    None,
                ),
                600,
                f"run {run_id} to finish",
            )
            page.goto(f"{url}/runs/{run_id}")
            expect(page.get_by_text("Success").first).to_be_visible()
            page.screenshot(path=ARTIFACTS / "3-materialization-run.png", full_page=True)
            browser.close()
        print(f"\nscreenshots: {ARTIFACTS}")
        assert status == "SUCCESS"

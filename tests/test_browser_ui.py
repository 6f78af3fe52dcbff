"""The Dagster UI of `landfall dev` in a real browser (Debian's Chromium driven by Playwright):
the three code locations load, the lineage graph shows raw -> dbt -> scores as graph nodes joined
by edges, and a materialization launched by clicking succeeds. Screenshots are kept as test
artifacts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from itertools import pairwise
from pathlib import Path

import pytest

from common.settings import PROJECT_ROOT
from tests.dev_stack import graphql, running_landfall_dev

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / ".local" / "test-artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 1000}
# The lineage graph draws full asset nodes (with the asset's name in `data-tooltip`) only at a
# zoom of at least 0.6; below that it draws minimal boxes with middle-truncated names. Zoomed to
# fit, customer_scores' upstream graph needs a viewport about this large to stay above 0.6.
LINEAGE_VIEWPORT = {"width": 2400, "height": 1800}
SCORES = "ml/customer_scores"
# One path through the upstream lineage of the scores (last key component of each node):
# raw/orders -> staging/stg_landing__orders -> marts/customer_order_features -> ml/customer_scores
LINEAGE = ("orders", "stg_landing__orders", "customer_order_features", "customer_scores")
ASSET = "staging/stg_landing__customers"  # a dbt view over raw.customers


def _chromium() -> Path:
    """Debian's Chromium; installed from the Debian registry when absent (never a download by
    Playwright)."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed and could not be installed with apt-get")
    return CHROMIUM


def _runs(url: str) -> list[dict]:
    query = (
        "{ runsOrError { ... on Runs { results "
        "{ runId status jobName tags { key value } assetSelection { path } } } } }"
    )
    return graphql(url, query)["runsOrError"]["results"]


def _poll(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(1)
    return value


def skip_community_modal_whenever_shown(page) -> None:
    """On 127.0.0.1 the UI opens a "Join the Dagster community" dialog a second after the first
    page load, over whatever the test is doing; Playwright clicks its Skip button whenever it is
    in the way of an action or an assertion."""
    dialog = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    page.add_locator_handler(
        dialog, lambda d: d.get_by_role("button", name="Skip", exact=True).click()
    )


def check_code_locations(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/locations")
    for name in ("ingestion", "transformation", "ml"):
        expect(page.locator(f'a[href="/locations/{name}/"]').first).to_be_visible()
    expect(page.get_by_text("Loaded", exact=True)).to_have_count(3)
    assert page.get_by_text("Failed", exact=True).count() == 0
    page.screenshot(path=ARTIFACTS / "1-locations.png", full_page=True)


def _svg_box(locator) -> tuple[float, float, float, float]:
    """x, y, width, height (SVG coordinates) of the graph node holding `locator`."""
    return tuple(
        locator.evaluate(
            "e => ['x', 'y', 'width', 'height']"
            ".map(a => Number(e.closest('foreignObject').getAttribute(a)))"
        )
    )


def _joins(path_d: str, upstream: tuple, downstream: tuple, slack: float = 10) -> bool:
    """Whether an edge (`d` of its SVG path, drawn left to right) starts on the right side of
    the upstream node's box and ends (at its arrow head) on the left side of the downstream's."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path_d)]
    (x1, y1), (x2, y2) = numbers[:2], numbers[-2:]
    ux, uy, uw, uh = upstream
    dx, dy, _, dh = downstream
    return (
        abs(x1 - (ux + uw)) <= slack
        and uy <= y1 <= uy + uh
        and abs(x2 - dx) <= slack
        and dy <= y2 <= dy + dh
    )


def check_lineage(page, url: str) -> None:
    """The upstream lineage of the scores on the asset page's Lineage tab (a graph only, no
    sidebar): the nodes of raw orders -> stg_landing__orders -> customer_order_features ->
    customer_scores are drawn, and an edge joins each to the next."""
    from playwright.sync_api import expect

    page.set_viewport_size(LINEAGE_VIEWPORT)
    page.goto(f"{url}/assets/{SCORES}?view=lineage&lineageScope=upstream&lineageDepth=3")
    graph = page.locator("svg").filter(has=page.locator("foreignObject"))
    boxes = {}
    for name in LINEAGE:
        label = graph.locator(f'foreignObject [data-tooltip="{name}"]')
        expect(label, f"graph node {name!r} (full size, not a minimal box)").to_be_visible()
        boxes[name] = _svg_box(label)
    edges = graph.locator("path[marker-end]").evaluate_all(
        "paths => paths.map(p => p.getAttribute('d'))"
    )
    for upstream, downstream in pairwise(LINEAGE):
        assert any(_joins(d, boxes[upstream], boxes[downstream]) for d in edges), (
            f"no edge {upstream} -> {downstream} in the lineage graph (boxes {boxes}, "
            f"edges {edges})"
        )
    page.screenshot(path=ARTIFACTS / "2-lineage.png", full_page=True)
    page.set_viewport_size(VIEWPORT)


def materialize_from_ui(page, url: str) -> tuple[str, str]:
    """Click Materialize on the asset's page; return the id and final status of the run the
    click launched (found by its `dagster/from_ui` tag, read over GraphQL)."""
    from playwright.sync_api import expect

    before = {r["runId"] for r in _runs(url)}
    page.goto(f"{url}/assets/{ASSET}")
    # The button's accessible name is "materialization Materialize" (its icon's aria-label, then
    # its text); it stays disabled until the asset definition has loaded.
    button = page.get_by_role("button", name=re.compile(r"(^|\s)Materialize$"))
    expect(button).to_be_enabled()
    button.click()

    def launched() -> list[dict]:
        return [
            r
            for r in _runs(url)
            if r["runId"] not in before
            and {"key": "dagster/from_ui", "value": "true"} in r["tags"]
            and [a["path"] for a in r["assetSelection"] or []] == [ASSET.split("/")]
        ]

    run_id = _poll(launched, 120, "the run launched from the UI")[0]["runId"]
    status = _poll(
        lambda: next(
            (
                r["status"]
                for r in _runs(url)
                if r["runId"] == run_id and r["status"] in ("SUCCESS", "FAILURE", "CANCELED")
            ),
            None,
        ),
        600,
        f"run {run_id} to finish",
    )
    page.goto(f"{url}/runs/{run_id}")
    if status == "SUCCESS":
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()  # status tag
        expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()  # event log
    page.screenshot(path=ARTIFACTS / "3-materialization-run.png", full_page=True)
    return run_id, status


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(1200)
def test_ui_shows_locations_lineage_and_runs_a_materialization(tmp_path):
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait 5 s by default, whatever page.set_default_timeout says; the UI of a
    # stack that is still loading files on two cores can take longer to render.
    expect.set_options(timeout=120_000)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_landfall_dev(tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(120_000)
            skip_community_modal_whenever_shown(page)

            # 1. the three code locations, loaded without errors
            check_code_locations(page, url)
            # 2. the lineage: raw -> dbt -> scores
            check_lineage(page, url)
            # 3. a materialization launched from the UI succeeds (once raw.customers exists)
            _poll(
                lambda: any(
                    r["jobName"] == "ingest_customers_job" and r["status"] == "SUCCESS"
                    for r in _runs(url)
                ),
                600,
                "the sample drop's customers to be loaded",
            )
            run_id, status = materialize_from_ui(page, url)
        finally:
            browser.close()
        print(f"\nscreenshots: {ARTIFACTS}")
        assert status == "SUCCESS", f"run {run_id} launched from the UI ended {status}"

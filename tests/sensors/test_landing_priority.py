"""Landing runs go first: their run requests carry Dagster's priority tag, which ranks both the
run queue and the claims on the warehouse pool's slot, so a landing run created during a burst
does not wait behind a dbt or scoring step that asked for the slot before it."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from landing.objects import LandedObject
from orchestration.pools import WAREHOUSE_POOL
from sensors.landing import LANDING_PRIORITY, PRIORITY_TAG, per_file_requests
from tests.landing.helpers import ZONES


def test_landing_run_requests_carry_the_landing_priority() -> None:
    landed = LandedObject("orders", "orders/a.csv", "e1", 10, datetime(2026, 12, 3, tzinfo=UTC))
    [request] = per_file_requests(ZONES["orders"], [landed])
    assert int(request.tags[PRIORITY_TAG]) == LANDING_PRIORITY > 0


def test_a_later_landing_claim_on_the_warehouse_slot_is_granted_before_an_earlier_default_one():
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage

        def dbt_2_claims() -> bool:
            return storage.claim_concurrency_slot(WAREHOUSE_POOL, "dbt-2", "dbt", 0).is_claimed

        storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, "dbt-1", "dbt_build", 0).is_claimed
        # a second dbt step asks first, the landing step after it; both wait
        assert not dbt_2_claims()
        assert not storage.claim_concurrency_slot(
            WAREHOUSE_POOL, "landing-1", "raw__orders", LANDING_PRIORITY
        ).is_claimed
        storage.free_concurrency_slots_for_run("dbt-1")
        # each waiting step retries its claim; the slot goes to the landing step
        assert not dbt_2_claims()
        assert storage.claim_concurrency_slot(
            WAREHOUSE_POOL, "landing-1", "raw__orders", LANDING_PRIORITY
        ).is_claimed

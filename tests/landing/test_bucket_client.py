"""The landing bucket's S3 client is built once per process and configuration: building one
costs ~0.35 s of CPU, which every sensor tick paid."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from landing.bucket import LandingBucket, forget_clients


@pytest.fixture(autouse=True)
def _fresh_clients():
    forget_clients()
    yield
    forget_clients()


def _bucket(endpoint: str = "http://127.0.0.1:1", key: str = "test") -> LandingBucket:
    return LandingBucket(
        bucket="landing", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key="x"
    )


def test_one_client_per_configuration_even_from_many_threads():
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _: _bucket().client(), range(16)))
    assert len({id(c) for c in clients}) == 1
    assert _bucket().client() is clients[0]  # another resource object, same configuration


def test_another_endpoint_or_credential_gets_its_own_client():
    first = _bucket().client()
    other_endpoint = _bucket(endpoint="http://127.0.0.1:2").client()
    other_key = _bucket(key="other").client()
    assert len({id(first), id(other_endpoint), id(other_key)}) == 3
    assert other_endpoint.meta.endpoint_url == "http://127.0.0.1:2"


def test_forgetting_builds_a_new_client():
    first = _bucket().client()
    forget_clients()
    assert _bucket().client() is not first


def test_the_cached_client_talks_to_the_bucket(bucket):
    bucket.put({"orders/a.csv": b"order_id\n1\n"})
    client = bucket.landing.client()
    assert bucket.landing.client() is client
    listed = client.list_objects_v2(Bucket=bucket.landing.bucket, Prefix="orders/")
    assert [o["Key"] for o in listed["Contents"]] == ["orders/a.csv"]


def test_the_sqs_client_is_kept_apart_and_once():
    sqs = _bucket().sqs_client()
    assert _bucket().sqs_client() is sqs
    assert sqs is not _bucket().client()
    assert sqs.meta.service_model.service_name == "sqs"

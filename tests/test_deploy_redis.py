"""The Kubernetes set-up of the rate limits: nabla's replicas count in one Redis, which
only they can reach."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from app.api.ratelimit import parse_limits
from tests.test_deploy import load


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    (container,) = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env", [])}


@pytest.fixture(scope="module")
def redis() -> dict[str, Any]:
    return load("redis-deployment.yaml")


def test_nabla_is_limited_and_shares_its_counts(env: dict[str, str]) -> None:
    assert parse_limits(env["NABLA_RATE_LIMIT"])
    url = urlsplit(env["NABLA_REDIS_URL"])
    service = load("redis-service.yaml")
    assert url.scheme == "redis" and url.hostname == service["metadata"]["name"]
    assert url.port in [p["port"] for p in service["spec"]["ports"]]


def test_the_redis_service_reaches_the_redis_pod(redis: dict[str, Any]) -> None:
    service = load("redis-service.yaml")
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert redis["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    names = {p["name"] for p in container["ports"]}
    assert all(p["targetPort"] in names for p in service["spec"]["ports"])
    assert redis["spec"]["replicas"] == 1  # one place to count in


def test_redis_keeps_nothing_on_disk_and_is_capped(redis: dict[str, Any]) -> None:
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--save") + 1] == "" and "--maxmemory" in args
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert redis["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_only_nabla_reaches_redis(redis: dict[str, Any]) -> None:
    policy = load("redis-networkpolicy.yaml")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= redis_labels.items()
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    nabla_labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert source["podSelector"]["matchLabels"].items() <= nabla_labels.items()
    assert [p["port"] for p in rule["ports"]] == ["redis"]

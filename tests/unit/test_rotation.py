"""Pure parts of credential rotation: editing cloud.conf, reading it back, expiry arithmetic, and
the rollout-complete rule (kubectl rollout status)."""

from __future__ import annotations

import datetime as dt

import pytest

from stackspray.errors import StackSprayError
from stackspray.inventory import Credential
from stackspray.kube import rollout_complete
from stackspray.rotation import credential_in, days_left, with_credential

CONF = """[Global]
auth-url="https://keystone.example:5000/v3"
application-credential-id="old-id"
application-credential-name="c-k8s-20260101T000000Z"
application-credential-secret="old-secret"
region="IU"

[BlockStorage]
ignore-volume-az=true
"""


def test_with_credential_changes_only_the_three_lines():
    new = with_credential(CONF, Credential("new-id", "c-k8s-20261122T000000Z", "Zx9-_aB=q"))
    assert credential_in(new) == ("new-id", "Zx9-_aB=q")
    lines_old, lines_new = CONF.splitlines(), new.splitlines()
    changed = [(a, b) for a, b in zip(lines_old, lines_new, strict=True) if a != b]
    assert [b.split("=", 1)[0] for _, b in changed] == [
        "application-credential-id",
        "application-credential-name",
        "application-credential-secret",
    ]
    assert 'application-credential-name="c-k8s-20261122T000000Z"' in new
    assert new.endswith("ignore-volume-az=true\n")


def test_with_credential_refuses_a_conf_without_the_lines():
    with pytest.raises(StackSprayError, match="application-credential-id"):
        with_credential("[Global]\nusername=x\n", Credential("a", "b", "c"))


def test_credential_in():
    assert credential_in(CONF) == ("old-id", "old-secret")
    assert credential_in("[Global]\n") == (None, None)


def test_days_left():
    now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    assert days_left("2026-12-22T00:00:00Z", now) == 30
    assert days_left("2026-11-21T12:00:00", now) == -0.5
    assert days_left(None, now) == float("inf")


@pytest.mark.parametrize(
    "kind, obj, done",
    [
        (
            "deployments",
            {
                "metadata": {"generation": 2},
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "availableReplicas": 1,
                },
            },
            False,
        ),
        (
            "deployments",
            {
                "metadata": {"generation": 2},
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 2,
                    "replicas": 2,
                    "updatedReplicas": 1,
                    "availableReplicas": 1,
                },
            },
            False,
        ),
        (
            "deployments",
            {
                "metadata": {"generation": 2},
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 2,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "availableReplicas": 1,
                },
            },
            True,
        ),
        (
            "daemonsets",
            {
                "metadata": {"generation": 3},
                "status": {
                    "observedGeneration": 3,
                    "desiredNumberScheduled": 4,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 4,
                },
            },
            False,
        ),
        (
            "daemonsets",
            {
                "metadata": {"generation": 3},
                "status": {
                    "observedGeneration": 3,
                    "desiredNumberScheduled": 4,
                    "updatedNumberScheduled": 4,
                    "numberAvailable": 4,
                },
            },
            True,
        ),
    ],
)
def test_rollout_complete(kind, obj, done):
    assert rollout_complete(kind, obj) is done

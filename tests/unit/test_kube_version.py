"""A changed kubernetes.kube_version on a built cluster is refused before anything changes: re-running
cluster.yml with it would be Kubespray's unsafe upgrade."""

from __future__ import annotations

import pytest

from stackspray.kubespray import DEFAULT_KUBE_VERSION, kube_version, version_change_refused
from stackspray.spec import parse_spec


def _spec(**options):
    raw = {
        "name": "demo",
        "cloud": "sandbox",
        "keypair": {"name": "k"},
        "node_groups": {
            "control-plane": {"flavor": "m3.small", "count": 1},
            "workers": {"flavor": "m3.tiny", "count": 1},
        },
        "kubernetes": options,
    }
    return parse_spec(raw)


@pytest.mark.parametrize(
    ("built", "options", "refused"),
    [
        (None, {"kube_version": "1.34.7"}, False),  # a state from before the version was recorded
        (DEFAULT_KUBE_VERSION, {}, False),
        ("1.34.7", {"kube_version": "1.34.7"}, False),
        ("1.34.7", {"kube_version": "v1.34.7"}, False),
        ("1.34.7", {"kube_version": "1.35.4"}, True),
        ("1.34.7", {}, True),  # the default is a newer version
        (DEFAULT_KUBE_VERSION, {"kube_version": "1.35.3"}, True),  # a downgrade too
    ],
)
def test_a_changed_version_is_refused_with_the_way_back(built, options, refused):
    spec = _spec(**options)
    why = version_change_refused(built, spec)
    assert (why is not None) is refused
    if refused:
        assert why.startswith("kubernetes.kube_version:") and f"back to {built}" in why
        assert "unsafe upgrade" in why and "Nothing was changed" in why
        if kube_version(spec) > built:
            assert f"invoke upgrade --cluster demo --to {kube_version(spec)}" in why
        else:
            assert "A downgrade is not possible" in why


def test_the_version_asked_for():
    assert kube_version(_spec()) == DEFAULT_KUBE_VERSION
    assert kube_version(_spec(kube_version="v1.34.7")) == "1.34.7"

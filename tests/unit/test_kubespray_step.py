"""Which Kubespray playbook a plan's changes call for on a cluster that already runs Kubernetes."""

from __future__ import annotations

import pytest

from stackspray.kubespray import kubespray_step
from stackspray.plan import Action

CP = "c-control-plane-"


def act(kind, resource, name, **detail):
    return Action(kind, resource, name, "", detail)


@pytest.mark.parametrize(
    "actions, built, expected",
    [
        ([act("noop", "server", "c-workers-1")], False, ("build", [])),
        ([act("noop", "server", "c-workers-1")], True, ("none", [])),
        (
            [
                act("create", "server", "c-workers-2"),
                act("create", "server", "c-workers-3"),
                act("create", "server-group", "c-workers-2"),
            ],
            True,
            ("scale", ["c-workers-2", "c-workers-3"]),
        ),
        (
            [act("create", "server", "c-control-plane-2"), act("create", "server", "c-workers-2")],
            True,
            ("build", []),
        ),
        (
            [act("delete", "server", "c-workers-3"), act("delete", "port", "c-workers-3-port")],
            True,
            ("none", []),
        ),
        ([act("create", "floating-ip", "c-fip")], True, ("build", [])),
        ([act("create", "share", "c-share"), act("create", "access-rule", "c-share")], True, ("none", [])),
    ],
    ids=["first-build", "nothing", "new-workers", "new-control-plane", "removal", "new-fip", "share-only"],
)
def test_kubespray_step(actions, built, expected):
    assert kubespray_step(actions, built, CP) == expected


def test_kubespray_missing_is_refused_naming_the_command(tmp_path, monkeypatch):
    """Checked before anything is created (create-cluster, add-nodes and plan on a real cloud)."""
    import pytest

    from stackspray import kubespray

    monkeypatch.setenv("STACKSPRAY_KUBESPRAY_CACHE", str(tmp_path))
    with pytest.raises(kubespray.KubesprayMissing, match=r"invoke kubespray.install.*nothing was created"):
        kubespray.check_installed()


def test_the_pin_names_v2_31_0_and_its_commit():
    from stackspray import kubespray

    p = kubespray.pin()
    assert p["tag"] == "v2.31.0" and p["commit"] == "1c9add48975060f45396b34d8e022c30d7f80dab"

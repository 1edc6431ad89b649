"""Ownership is exact: one cluster never sees another's resources, credentials or schedules."""

from __future__ import annotations

from dataclasses import dataclass, field

from stackspray import names


@dataclass
class R:
    name: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


def test_neutron_ownership_is_the_exact_tag_or_description():
    assert names.is_owned(R(tags=["stackspray", "stackspray-cluster=demo"]), "demo")
    assert names.is_owned(R(description="stackspray-cluster=demo"), "demo")
    assert not names.is_owned(R(tags=["stackspray-cluster=demo-2"]), "demo")
    assert not names.is_owned(R(description="stackspray-cluster=demo-2"), "demo")
    assert not names.is_owned(R(name="demo-net"), "demo"), "a name alone is never ownership"


def test_servers_and_shares_are_ours_by_exact_metadata():
    assert names.owns_by_metadata(R(metadata={"stackspray-cluster": "demo"}), "demo")
    assert not names.owns_by_metadata(R(metadata={"stackspray-cluster": "demo-2"}), "demo")


def test_cross_cluster_credential_lab_never_matches_lab_k8s():
    """credentials.refresh of `lab` used to delete `lab-k8s`'s live credential as an orphan."""
    theirs = R(name="lab-k8s-k8s-20261201T101010Z", description=names.credential_description("lab-k8s"))
    ours = R(name="lab-k8s-20261201T101010Z", description=names.credential_description("lab"))
    assert names.is_cluster_credential(theirs, "lab-k8s")
    assert not names.is_cluster_credential(theirs, "lab")
    assert names.is_cluster_credential(ours, "lab")
    assert not names.is_cluster_credential(ours, "lab-k8s")


def test_a_credential_needs_our_description_too():
    named_like_ours = R(name="lab-k8s-20261201T101010Z", description="someone's own credential")
    assert not names.is_cluster_credential(named_like_ours, "lab")
    legacy = R(
        name="lab-k8s-20261201T101010Z",
        description="stackspray: Kubernetes cluster lab (cloud controller, Cinder CSI)",
    )
    assert names.is_cluster_credential(legacy, "lab"), "the description earlier rotations gave"


def test_schedule_marks_are_exact():
    assert names.parse_schedule_mark("0 20 * * * cmd # stackspray:demo:scale-2000") == ("demo", "scale-2000")
    assert names.parse_schedule_mark("# stackspray:demo-2:scale-2000") == ("demo-2", "scale-2000")
    assert names.parse_schedule_mark("0 20 * * * someone else's job") is None


def test_server_indexes_and_groups_are_exact():
    assert names.server_index("demo", "workers", "demo-workers-3") == 3
    assert names.server_index("demo", "workers", "demo-workers-3x") is None
    assert names.server_index("demo", "workers", "demo-2-workers-3") is None
    assert names.is_server_group("demo", "workers", "demo-workers")
    assert names.is_server_group("demo", "workers", "demo-workers-2")
    assert not names.is_server_group("demo", "workers", "demo-2-workers")

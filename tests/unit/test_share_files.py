"""The share's inventory files and manifests (pure: no network)."""

from __future__ import annotations

import json

import jinja2
import pytest
import yaml
from stackspray_sandbox.target import SANDBOX

from stackspray.cluster_state import ClusterState
from stackspray.errors import SpecError
from stackspray.paths import PLAYBOOKS
from stackspray.share import (
    SECRET_FILE,
    VARS_FILE,
    ShareNotReady,
    fingerprint,
    parse_export_path,
    share_files,
)
from stackspray.spec import parse_spec
from stackspray.target import PLAIN

EXPORT = "10.0.0.1:6789,10.0.0.2:6789,10.0.0.3:6789:/volumes/_nogroup/7f3a/9c1e"
KEY = "AQBx-unit-test-not-a-real-key=="


def spec_with(share: dict | None = None):
    data = {
        "name": "demo",
        "cloud": "x",
        "keypair": {"name": "k"},
        "node_groups": {
            "control-plane": {"flavor": "m3.small", "count": 1},
            "workers": {"flavor": "m3.small", "count": 2},
        },
        "share": {"size_gb": 10, **(share or {})},
    }
    return parse_spec(data, env={})


def render(spec, *, sandbox=False, export=EXPORT):
    files = share_files(
        spec,
        ClusterState.from_dict({"share": {"id": "s1", "export_path": export}}),
        access_key=KEY,
        kubeconfig="/x/kubeconfig",
        target=SANDBOX if sandbox else PLAIN,
    )
    return {f.path: f for f in files}


def test_export_path_gives_monitors_and_root_path():
    assert parse_export_path(EXPORT) == (
        ["10.0.0.1:6789", "10.0.0.2:6789", "10.0.0.3:6789"],
        "/volumes/_nogroup/7f3a/9c1e",
    )
    assert parse_export_path("[2001:db8::1]:6789,[2001:db8::2]:6789:/volumes/x") == (
        ["[2001:db8::1]:6789", "[2001:db8::2]:6789"],
        "/volumes/x",
    )


@pytest.mark.parametrize("bad", ["/volumes/x", "nfs-server/share", ""])
def test_an_export_path_that_is_not_cephfs_is_refused_with_the_fix(bad):
    with pytest.raises(ShareNotReady, match="share_type"):
        parse_export_path(bad)


def test_the_key_is_only_in_the_0600_file():
    files = render(spec_with())
    assert set(files) == {VARS_FILE, SECRET_FILE}
    assert files[SECRET_FILE].mode == 0o600 and KEY in files[SECRET_FILE].text
    assert files[VARS_FILE].mode == 0o644 and KEY not in files[VARS_FILE].text


def test_variables_describe_a_static_cephfs_volume():
    v = yaml.safe_load(render(spec_with({"fs_name": "cephfs"}))[VARS_FILE].text)
    assert v["share_volume_attributes"] == {
        "clusterID": "demo-manila",
        "staticVolume": "true",
        "rootPath": "/volumes/_nogroup/7f3a/9c1e",
        "fsName": "cephfs",
    }
    assert v["share_monitors"] == ["10.0.0.1:6789", "10.0.0.2:6789", "10.0.0.3:6789"]
    assert v["share_access_rule"] == "demo-share-rw"
    assert (v["share_claim_name"], v["share_namespace"]) == ("demo-share", "default")
    assert v["share_size_gb"] == 10 and v["stackspray_kubeconfig"] == "/x/kubeconfig"
    assert "fsName" not in yaml.safe_load(render(spec_with())[VARS_FILE].text)["share_volume_attributes"]


def test_node_mounts_are_mounted_on_a_real_cloud_and_only_written_to_fstab_on_the_sandbox():
    spec = spec_with({"mount_on_nodes": True, "mount_path": "/data/"})
    real = yaml.safe_load(render(spec)[VARS_FILE].text)
    sandbox = yaml.safe_load(render(spec, sandbox=True)[VARS_FILE].text)
    assert real["share_mount_on_nodes"] and real["share_mount_path"] == "/data"
    assert (real["share_node_mount_state"], real["share_install_ceph_client"]) == ("mounted", True)
    assert (sandbox["share_node_mount_state"], sandbox["share_install_ceph_client"]) == ("present", False)
    assert real["share_secret_file"] == "/etc/ceph/demo-share-rw.secret"


def test_no_share_or_no_export_path_yet_is_a_clear_error():
    with pytest.raises(ShareNotReady, match="run create-cluster"):
        share_files(spec_with(), ClusterState(), access_key=KEY, kubeconfig="k", target=PLAIN)


def test_fingerprint_changes_with_key_variables_and_nodes():
    a = list(render(spec_with()).values())
    b = list(render(spec_with({"namespace": "science"})).values())
    assert fingerprint(a, ["n1"]) == fingerprint(a, ["n1"])
    assert fingerprint(a, ["n1"]) != fingerprint(b, ["n1"])
    assert fingerprint(a, ["n1"]) != fingerprint(a, ["n1", "n2"])


@pytest.mark.parametrize(
    "share, field",
    [
        ({"claim_name": "Data_Share"}, "share.claim_name"),
        ({"namespace": "-bad"}, "share.namespace"),
        ({"mount_on_nodes": "yes"}, "share.mount_on_nodes"),
        ({"mount_path": "data"}, "share.mount_path"),
        ({"mount_path": "/"}, "share.mount_path"),
        ({"mount_path": "/my data"}, "share.mount_path"),
        ({"mountpath": "/data"}, "share.mountpath"),
        ({"owner": {"uid": 1000}}, "share.owner"),
        ({"owner": {"uid": -1, "gid": 100}}, "share.owner.uid"),
        ({"owner": {"uid": 1000, "gid": "users"}}, "share.owner.gid"),
        ({"owner": {"uid": 1000, "gid": 100, "mode": 777}}, "share.owner.mode"),
    ],
)
def test_bad_share_fields_are_named(share, field):
    with pytest.raises(SpecError) as err:
        spec_with(share)
    assert field in str(err.value)


def test_manifests_render_to_the_objects_the_node_plugin_needs():
    v = yaml.safe_load(render(spec_with())[VARS_FILE].text)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps  # Ansible's filter of that name
    text = env.from_string((PLAYBOOKS / "templates/cephfs-csi.yml.j2").read_text()).render(**v)
    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {
        "Namespace",
        "CSIDriver",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    }
    assert kinds["CSIDriver"]["metadata"]["name"] == "cephfs.csi.ceph.com"
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "ceph-csi-config")
    assert json.loads(config["data"]["config.json"]) == [
        {"clusterID": "demo-manila", "monitors": ["10.0.0.1:6789", "10.0.0.2:6789", "10.0.0.3:6789"]}
    ]
    ds = kinds["DaemonSet"]["spec"]["template"]["spec"]
    assert ds["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
    assert {c["image"] for c in ds["containers"]} == {v["share_cephcsi_image"], v["share_registrar_image"]}
    mounted = {m["name"] for c in ds["containers"] for m in c["volumeMounts"]}
    assert mounted <= {vol["name"] for vol in ds["volumes"]}, "every mounted volume is declared"
    config_maps = {vol["configMap"]["name"] for vol in ds["volumes"] if "configMap" in vol}
    made = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert config_maps == made, "every ConfigMap the DaemonSet mounts is created"
    assert all(d["metadata"].get("namespace") in (None, v["share_csi_namespace"]) for d in docs)


def test_the_owner_is_passed_to_the_playbook_and_changes_what_was_applied():
    owned = spec_with({"owner": {"uid": 1000, "gid": 100}})
    assert owned.share.owner == (1000, 100)
    variables = yaml.safe_load(render(owned)[VARS_FILE].text)
    assert variables["share_owner"] == {"uid": 1000, "gid": 100}
    assert variables["share_owner_mount"] == "/run/stackspray-demo-share-owner"
    assert yaml.safe_load(render(spec_with())[VARS_FILE].text)["share_owner"] is None
    other = spec_with({"owner": {"uid": 1001, "gid": 100}})
    assert fingerprint(list(render(owned).values()), []) != fingerprint(list(render(other).values()), [])

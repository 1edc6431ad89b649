"""What a built cluster's nodes must look like. Run by `invoke verify` with pytest-testinfra over
SSH (testinfra's ansible backend reads the cluster's inventory, jump host included).

On the stackspray sandbox no Kubernetes runs: nodes the Kubespray stand-in built carry
/etc/kubernetes/STACKSPRAY-STAND-IN, and the kubelet/containerd checks then check that marker
instead and say so in their name ("stand-in")."""

from __future__ import annotations

import os

import pytest

from stackspray import certs

STAND_IN = "/etc/kubernetes/STACKSPRAY-STAND-IN"


# Read at test time, not import time: verify may run this suite several times in one process.
def _env_set(name: str) -> set[str]:
    return set(filter(None, os.environ.get(name, "").split(",")))


def _first_cp() -> str:
    return os.environ.get("STACKSPRAY_VERIFY_FIRST_CP", "")


def _share_skip() -> None:
    if os.environ.get("STACKSPRAY_VERIFY_SHARE") != "1":
        pytest.skip("the spec does not mount the share on the nodes")


def _name(host) -> str:
    return host.backend.get_hostname()


def test_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == _name(host)


def test_etc_hosts_lists_every_node(host):
    text = host.file("/etc/hosts").content_string
    missing = sorted(n for n in _env_set("STACKSPRAY_VERIFY_NODES") if n not in text)
    assert not missing, f"/etc/hosts lacks {missing}"


def test_etc_hosts_keeps_every_node_across_a_reboot(host):
    """cloud-init with manage_etc_hosts renders /etc/hosts from this template on every boot (an
    unshelve too): the nodes must be in it, or they are gone after the next one."""
    template = host.file("/etc/cloud/templates/hosts.debian.tmpl")
    if not template.exists:
        pytest.skip("no cloud-init template of /etc/hosts on this node")
    missing = sorted(n for n in _env_set("STACKSPRAY_VERIFY_NODES") if n not in template.content_string)
    assert not missing, f"{template.path} lacks {missing}: they leave /etc/hosts at the next boot"


def test_ssh_listens(host):
    assert host.socket("tcp://0.0.0.0:22").is_listening or host.socket("tcp://:::22").is_listening


@pytest.mark.parametrize("service", ["kubelet", "containerd"])
def test_kubernetes_services_run(host, service, record_property):
    if host.file(STAND_IN).exists:
        record_property("stand_in", True)  # the table says so
        assert host.file(STAND_IN).contains("no Kubernetes is installed"), "stand-in marker unreadable"
        return
    svc = host.service(service)
    assert svc.is_running and svc.is_enabled, f"{service} is not running and enabled"


def test_api_server_listens_on_the_first_control_plane(host):
    if _name(host) != _first_cp():
        pytest.skip("not the first control-plane node")
    assert host.socket("tcp://0.0.0.0:6443").is_listening or host.socket("tcp://:::6443").is_listening


def test_certificate_renewal_timer_is_enabled_on_the_control_plane(host):
    """Kubespray's auto_renew_certificates: kubeadm's one-year certificates renewed monthly by a
    systemd timer on every control-plane node (roles/kubernetes/control-plane/tasks/main.yml)."""
    if _name(host) not in _env_set("STACKSPRAY_VERIFY_CONTROL_PLANE"):
        pytest.skip("control-plane nodes only")
    if os.environ.get("STACKSPRAY_VERIFY_CERT_RENEW") != "1":
        pytest.skip("auto_renew_certificates is off in the cluster's Kubespray variables")
    timer = host.service("k8s-certs-renew.timer")
    assert timer.is_enabled and timer.is_running, (
        "k8s-certs-renew.timer is not enabled and active: the control plane's certificates expire a "
        "year after they were issued; re-run `invoke create-cluster`"
    )


def test_control_plane_certificates_are_valid(host, record_property):
    """Every certificate and authority `kubeadm certs check-expiration` lists on a control-plane
    node (what the API server, controller manager, scheduler, etcd and admin.conf use): none
    expired; under 30 days left is a warning in verify's table."""
    if _name(host) not in _env_set("STACKSPRAY_VERIFY_CONTROL_PLANE"):
        pytest.skip("control-plane nodes only")
    out = host.run("sudo -n /usr/local/bin/kubeadm certs check-expiration")
    assert out.rc == 0, f"kubeadm certs check-expiration failed: {(out.stderr or out.stdout).strip()[:200]}"
    rows = certs.parse_check_expiration(out.stdout)
    assert rows, f"kubeadm certs check-expiration listed no certificate: {out.stdout.strip()[:200]}"
    expired = [r.name for r in rows if r.level == "expired"]
    assert not expired, (
        f"expired on this node: {', '.join(expired)}: run `invoke certs.renew` (an expired CA needs a new "
        "cluster or kubeadm's manual CA rotation)"
    )
    near = [f"{r.name} ({r.days_left:.0f} days)" for r in rows if r.level == "warning"]
    if near:
        record_property(
            "warning", f"under {certs.WARN_DAYS} days left: {', '.join(near)}: run `invoke certs.renew`"
        )


@pytest.mark.parametrize(
    "path",
    [
        "/etc/kubernetes/cinder_cloud_config",
        "/etc/kubernetes/cinder-csi-cloud-config-secret.yml",
        "/etc/kubernetes/external-openstack-cloud-config-secret.yml",
    ],
)
def test_cloud_config_present_and_private(host, path):
    """Every file holding the cluster's application credential: root's, 0600."""
    if _name(host) != _first_cp():
        pytest.skip("cloud config files live on the first control-plane node")
    f = host.file(path)
    assert f.exists, f"{path} is missing"
    assert f.user == "root" and f.mode & 0o077 == 0, f"{path} is readable by others (mode {oct(f.mode)})"


def _fstab_entry(host) -> list[str] | None:
    for line in host.file("/etc/fstab").content_string.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == os.environ["STACKSPRAY_VERIFY_SHARE_PATH"]:
            return fields
    return None


def test_share_in_fstab(host):
    _share_skip()
    fields = _fstab_entry(host)
    path = os.environ["STACKSPRAY_VERIFY_SHARE_PATH"]
    assert fields, f"/etc/fstab has no entry for {path}"
    assert fields[0] == os.environ["STACKSPRAY_VERIFY_SHARE_SRC"], f"{path} mounts {fields[0]}, not the share"
    assert fields[2] == "ceph", f"{path} is mounted as {fields[2]}, not ceph"


def test_share_key_file_private(host):
    _share_skip()
    f = host.file(os.environ["STACKSPRAY_VERIFY_SHARE_KEY_FILE"])
    assert f.exists, f"{f.path} is missing"
    assert f.user == "root" and f.mode == 0o600, f"{f.path} must be root's, mode 0600 (is {oct(f.mode)})"


def test_share_mounted(host, record_property):
    _share_skip()
    path = os.environ["STACKSPRAY_VERIFY_SHARE_PATH"]
    if os.environ.get("STACKSPRAY_VERIFY_SHARE_STATE") == "present":
        # The sandbox's node hosts have no CephFS client: the share is in fstab, not mounted.
        record_property("stand_in", "no CephFS client on the sandbox, in /etc/fstab only")
        assert host.file(path).is_directory, f"mount point {path} is missing"
        return
    mp = host.mount_point(path)
    assert mp.exists and mp.filesystem == "ceph", f"{path} is not mounted (mount -a, see dmesg)"

"""The Kubespray step of create-cluster on the sandbox: the real ansible-runner runs our
prepare-nodes.yml and the Kubespray stand-in over SSH against the node hosts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml
from conftest import ssh
from helpers import BIN, ROOT, make_spec, quiet, user_runner  # noqa: F401 (make_spec is a fixture)

from stackspray.cluster import create_cluster
from stackspray.inventory import SECRETS_FILE
from stackspray.kube import Kube
from stackspray.playbook import PlaybookFailed
from stackspray.resize import resize_group
from stackspray.spec import load_spec
from stackspray.state import ClusterDir
from stackspray.verify import verify_cluster


def test_create_cluster_through_kubeconfig_then_grow_and_shrink(
    make_spec, ssh_key, sandbox, tmp_path, monkeypatch
):
    path, inv = make_spec(workers=1)
    spec = load_spec(path)
    progress = quiet()
    result = create_cluster(spec, progress=progress, root=inv)
    cdir = ClusterDir(spec.name, inv)
    text = "\n".join(progress.lines)

    # A person sees which playbook, play and task runs, and that this is the stand-in.
    assert "STAND-IN" in text and "running prepare-nodes.yml" in text and "task: Wait until the node" in text
    kubeconfig = Path(result.kubeconfig)
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    fip = result.state["floating_ip"]["address"]
    assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == f"https://{fip}:6443"

    # The credential: recorded without its secret; the secret only in the 0600 file.
    cred = cdir.load().to_dict()["credential"]
    assert cred["name"].startswith(f"{spec.name}-k8s-") and "secret" not in cred
    secret_file = cdir.path / SECRETS_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = yaml.safe_load(secret_file.read_text())["external_openstack_application_credential_secret"]
    leaks = [
        p
        for p in cdir.path.rglob("*")
        if p.is_file() and p != secret_file and secret in p.read_text(errors="ignore")
    ]
    assert leaks == [], "the secret is in no log, artifact or other file"
    assert secret not in text

    # The files holding the credential on the first control-plane node: Kubespray (and its
    # stand-in) writes them 0640 and the Cinder CSI Secret manifest 0644; create-cluster leaves
    # every one 0600.
    files = ssh(
        fip,
        ssh_key,
        "sudo stat -c '%a %U %n' /etc/kubernetes/cinder_cloud_config "
        "/etc/kubernetes/cinder-csi-cloud-config-secret.yml "
        "/etc/kubernetes/external-openstack-cloud-config-secret.yml",
    )
    assert files.splitlines() == [
        "600 root /etc/kubernetes/cinder_cloud_config",
        "600 root /etc/kubernetes/cinder-csi-cloud-config-secret.yml",
        "600 root /etc/kubernetes/external-openstack-cloud-config-secret.yml",
    ]
    conf = ssh(fip, ssh_key, "sudo cat /etc/kubernetes/cinder_cloud_config")
    assert f'application-credential-name="{cred["name"]}"' in conf
    assert f'application-credential-id="{cred["id"]}"' in conf

    # Re-running with nothing changed does not run Kubespray again.
    again = quiet()
    create_cluster(spec, progress=again, root=inv)
    assert not any("running cluster.yml" in line for line in again.lines)

    # Add two workers with add-nodes: the spec's count is rewritten in place (the user's comment
    # stays), then Kubespray's facts.yml on every host, then scale.yml limited to the new ones.
    path.write_text("# workshop cluster: keep this comment\n" + path.read_text())
    kube = Kube(kubeconfig)
    grow = quiet()
    grown = resize_group(path, "workers", 2, progress=grow, root=inv)
    assert grown.resize == {
        "cluster": spec.name,
        "spec": str(path),
        "group": "workers",
        "from": 1,
        "to": 3,
    }
    assert load_spec(path).group("workers").count == 3
    assert path.read_text().startswith("# workshop cluster: keep this comment\n")
    assert grow.lines[0].endswith("add-nodes: " + str(path) + ": node_groups.workers.count 1 -> 3")
    new = f"{spec.name}-workers-2,{spec.name}-workers-3"
    assert any(f"running scale.yml on {new}" in line for line in grow.lines), grow.lines
    # facts.yml on the hosts scale.yml leaves out, while prepare-nodes readies the new ones.
    others = f"all hosts but {spec.name}-workers-2, {spec.name}-workers-3"
    assert any(f"running playbooks/facts.yml on {others}" in line for line in grow.lines), grow.lines
    assert not any("running cluster.yml" in line for line in grow.lines)
    hosts = yaml.safe_load((cdir.path / "hosts.yml").read_text())
    assert sorted(hosts["all"]["children"]["kube_node"]["hosts"]) == [
        f"{spec.name}-workers-{i}" for i in (1, 2, 3)
    ]
    etc_hosts = ssh(fip, ssh_key, "cat /etc/hosts")
    assert f"{spec.name}-workers-3" in etc_hosts
    assert set(kube.nodes()) == {f"{spec.name}-control-plane-1"} | {
        f"{spec.name}-workers-{i}" for i in (1, 2, 3)
    }

    # Remove one with the remove-nodes command: remove-node.yml first (the node leaves
    # Kubernetes), then the VM goes; the spec file says 2.
    env = dict(os.environ, STACKSPRAY_INVENTORIES=str(inv))
    invoke = [sys.executable, "-m", "invoke"]
    before = path.read_text()
    refused = subprocess.run(
        [*invoke, "add-nodes", "--spec", str(path), "--group", "control-plane"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "node_groups.control-plane.count: 2 is even" in refused.stderr, refused
    assert path.read_text() == before
    out = subprocess.run(
        [*invoke, "remove-nodes", "--spec", str(path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert f"{path}: node_groups.workers.count is now 2 (was 3)" in text
    assert load_spec(path).group("workers").count == 2
    assert "running remove-node.yml" in text
    assert text.index("running remove-node.yml") < text.index(f"deleted server {spec.name}-workers-3"), text
    hosts = yaml.safe_load((cdir.path / "hosts.yml").read_text())
    assert sorted(hosts["all"]["children"]["kube_node"]["hosts"]) == [
        f"{spec.name}-workers-{i}" for i in (1, 2)
    ]
    assert f"{spec.name}-workers-3" not in kube.nodes()

    # add-nodes --no-kubernetes makes the VM only; the next converge joins it, as it does the
    # VMs of an add-nodes cut short before scale.yml.
    # As a user runs them: OS_CLOUD exported, from another directory.
    w3 = f"{spec.name}-workers-3"
    user = user_runner(sandbox, tmp_path, {"STACKSPRAY_INVENTORIES": str(inv)})
    out = user("add-nodes", "--spec", str(path), "--no-kubernetes")
    assert "running " not in out.stdout, out.stdout
    assert w3 not in kube.nodes() and w3 not in cdir.load().kubernetes_nodes
    out = user("create-cluster", "--spec", str(path))
    assert f"{w3}: in the cloud but not yet in Kubernetes: joining now" in out.stdout, out.stdout
    assert f"running scale.yml on {w3}" in out.stdout
    assert w3 in kube.nodes() and w3 in cdir.load().kubernetes_nodes

    # Nothing left to change: no playbook runs.
    again = quiet()
    create_cluster(load_spec(path), progress=again, root=inv)
    assert not any("running " in line and ".yml" in line for line in again.lines), again.lines

    # verify: every check passes on every node; a wrong hostname is caught and named.
    result = verify_cluster(spec.name, root=inv)
    assert result.ok, result.failures
    assert set(result.nodes) == {
        f"{spec.name}-control-plane-1",
        f"{spec.name}-workers-1",
        f"{spec.name}-workers-2",
        w3,
    }
    assert result.results["certificates"] == {
        "API server serving certificate valid for 30 days or more": "PASS",
        "kubeconfig client certificate valid for 30 days or more": "PASS",
    }
    cp_checks = result.results[f"{spec.name}-control-plane-1"]
    assert cp_checks["api server listens on the first control plane"] == "PASS"
    assert cp_checks["certificate renewal timer is enabled on the control plane"] == "PASS"
    assert {o for c, o in cp_checks.items() if "stand-in node" in c} == {"N/A"}
    assert sum(1 for c in cp_checks if "stand-in node" in c) == 2  # kubelet, containerd
    w2 = f"{spec.name}-workers-2"
    # testinfra reads the inventory with ansible-inventory (the venv's; verify finds its own).
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    worker = testinfra.get_host(f"ansible://{w2}", ansible_inventory=str(cdir.path / "hosts.yml"), sudo=True)
    worker.run_test("hostname wrong-name")
    out = subprocess.run(
        [*invoke, "verify", "--cluster", spec.name], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"FAIL {w2}: hostname is the inventory name" in out.stdout


def test_a_failing_task_is_summarised_and_a_rerun_continues(make_spec, ssh_key):
    path, inv = make_spec(workers=1)
    spec = load_spec(path)
    create_cluster(spec, progress=quiet(), root=inv, kubernetes=False)
    fip = ClusterDir(spec.name, inv).load().to_dict()["floating_ip"]["address"]
    # Break the first control-plane node: /etc/kubernetes is a file, so the stand-in cannot use it.
    ssh(fip, ssh_key, "sudo rm -rf /etc/kubernetes && sudo touch /etc/kubernetes")
    with pytest.raises(PlaybookFailed) as err:
        create_cluster(spec, progress=quiet(), root=inv)
    failure = err.value.failures[0]
    assert failure.host == f"{spec.name}-control-plane-1"
    assert failure.task == "[stand-in] /etc/kubernetes"
    assert failure.message
    assert f"{spec.name}-control-plane-1: failed at task '[stand-in] /etc/kubernetes'" in str(err.value)

    ssh(fip, ssh_key, "sudo rm -f /etc/kubernetes")  # the operator fixes the cause
    result = create_cluster(spec, progress=quiet(), root=inv)
    assert Path(result.kubeconfig).exists()

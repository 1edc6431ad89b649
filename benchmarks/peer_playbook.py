# ruff: noqa: E501  (the peer playbook is YAML as its documentation writes it, one task per line)
"""create-cluster vs the playbook a user would otherwise write with the openstack.cloud collection.

    .venv/bin/python benchmarks/peer_playbook.py [--workers 1 5 20] [--json]

The peer is an Ansible playbook using the openstack.cloud modules (installed with the `ansible`
package stackspray depends on) the way their documentation shows: one task per resource, a loop
over the servers with `wait: true`, then the floating IP. It creates what create-cluster creates
(OpenStack side only: network, subnet on the project's router, the four security groups and
their rules, keypair, server groups of 10, one port per node with the pod/service ranges as
allowed address pairs, the servers, the floating IP). Both are measured in the same run, each on a
new cluster, with wall time and OpenStack API calls (counted by the sandbox's proxy, Keystone
included); both are torn down afterwards. The router step is `openstack router add subnet`: the
collection's router module manages a router's whole interface list, which on Jetstream2 is the
project's only router (quota 1), not the user's to rewrite. The floating IP task says
`wait: false`: the module waits for the address to turn ACTIVE by default, which the sandbox's
Neutron (no L3 agent) never reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import openstack

sys.path.insert(0, str(Path(__file__).parent))
from create_cluster import CLI_CLEANUP, calls  # noqa: E402
from stackspray_sandbox import faults  # noqa: E402
from stackspray_sandbox.paths import SandboxPaths  # noqa: E402
from stackspray_sandbox.specs import write_small_cluster_spec  # noqa: E402

from stackspray.cluster import create_cluster, destroy_cluster  # noqa: E402
from stackspray.progress import Progress  # noqa: E402
from stackspray.spec import load_spec  # noqa: E402

PLAYBOOK = """
- name: A Kubernetes-ready set of servers, as the openstack.cloud documentation shows
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    nodes: "{{ ['control-plane-1'] + range(1, workers + 1) | map('string') | map('regex_replace', '^', 'workers-') | list }}"
    pairs: [{ip_address: 10.233.64.0/18}, {ip_address: 10.233.0.0/18}]
  tasks:
    - openstack.cloud.network: {name: "{{ c }}-net"}
    - openstack.cloud.subnet: {name: "{{ c }}-subnet", network_name: "{{ c }}-net", cidr: "{{ cidr }}"}
    - name: Attach the subnet to the project's router
      ansible.builtin.command: openstack router add subnet auto_allocated_router {{ c }}-subnet
    - openstack.cloud.security_group: {name: "{{ c }}-{{ item }}"}
      loop: [cluster, ssh, api, nodeport]
    - openstack.cloud.security_group_rule: {security_group: "{{ c }}-cluster", remote_group: "{{ c }}-cluster", protocol: any}
    - openstack.cloud.security_group_rule: {security_group: "{{ c }}-ssh", protocol: tcp, port_range_min: 22, port_range_max: 22, remote_ip_prefix: 0.0.0.0/0}
    - openstack.cloud.security_group_rule: {security_group: "{{ c }}-api", protocol: tcp, port_range_min: 6443, port_range_max: 6443, remote_ip_prefix: 0.0.0.0/0}
    - openstack.cloud.security_group_rule: {security_group: "{{ c }}-nodeport", protocol: tcp, port_range_min: 30000, port_range_max: 32767, remote_ip_prefix: 0.0.0.0/0}
    - openstack.cloud.keypair: {name: "{{ c }}-key", public_key_file: "{{ key }}"}
    - openstack.cloud.server_group: {name: "{{ c }}-control-plane", policy: soft-anti-affinity}
    - openstack.cloud.server_group: {name: "{{ c }}-workers-{{ item }}", policy: soft-anti-affinity}
      loop: "{{ range(1, (workers + 9) // 10 + 1) | list }}"
      register: worker_groups
    - openstack.cloud.port:
        name: "{{ c }}-{{ item }}-port"
        network: "{{ c }}-net"
        security_groups: ["{{ c }}-cluster", "{{ c }}-ssh", "{{ c }}-{{ 'api' if item == 'control-plane-1' else 'nodeport' }}"]
        allowed_address_pairs: "{{ pairs }}"
      loop: "{{ nodes }}"
    - openstack.cloud.server:
        name: "{{ c }}-{{ item }}"
        image: Featured-Ubuntu24
        flavor: m3.tiny
        key_name: "{{ c }}-key"
        nics: [{port-name: "{{ c }}-{{ item }}-port"}]
        auto_ip: false
        wait: true
      loop: "{{ nodes }}"
    - openstack.cloud.floating_ip: {server: "{{ c }}-control-plane-1", network: public, wait: false}
"""


def stackspray(workers: int, key: Path, octet: int, inv: Path) -> dict:
    name = f"pp{uuid.uuid4().hex[:4]}"
    spec = write_small_cluster_spec(
        inv, name, key, f"10.{octet}.0.0/24", workers, control_plane_flavor="m3.tiny"
    )
    quiet = Progress(emit=lambda m: None)
    faults.reset_call_counts()
    t0 = time.monotonic()
    try:
        create_cluster(load_spec(spec), progress=quiet, root=inv, kubernetes=False)
        return {"seconds": round(time.monotonic() - t0, 1), "api_calls": calls()}
    finally:
        destroy_cluster(name, root=inv, progress=quiet)


def peer(workers: int, key: Path, octet: int, work: Path) -> dict:
    name = f"pb{uuid.uuid4().hex[:4]}"
    book = work / "peer.yml"
    book.write_text(PLAYBOOK)
    bin_dir = Path(sys.executable).parent
    # The openstack.cloud collection the `ansible` 11 package ships (2.5.0) reads
    # openstack.version.__version__, which openstacksdk 4.15 stopped importing with the package
    # (openstacksdk 3ae89d6): without this shim every module fails with "module 'openstack' has no
    # attribute 'version'".
    shim = work / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text("import openstack.version  # noqa: F401\n")
    env = dict(
        os.environ,
        OS_CLOUD="sandbox",
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        PYTHONPATH=str(shim),
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    extra = json.dumps(
        {
            "c": name,
            "workers": workers,
            "key": str(key),
            "cidr": f"10.{octet}.0.0/24",
            "ansible_python_interpreter": sys.executable,  # the one with openstacksdk
        }
    )
    faults.reset_call_counts()
    t0 = time.monotonic()
    out = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "-i", "localhost,", str(book), "-e", extra],
        env=env,
        capture_output=True,
        text=True,
    )
    measured = {"seconds": round(time.monotonic() - t0, 1), "api_calls": calls()}
    conn = openstack.connect(cloud="sandbox")
    server = conn.compute.find_server(f"{name}-control-plane-1")
    ports = {p.id for p in conn.network.ports(device_id=server.id)} if server else set()
    fip = next((f.floating_ip_address for f in conn.network.ips() if f.port_id in ports), "")
    subprocess.run(["bash", "-c", CLI_CLEANUP, "clean", name, fip], env=env, capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"peer playbook failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return measured


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(SandboxPaths.default().clouds_yaml))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        key = work / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        for i, n in enumerate(args.workers):
            ours = stackspray(n, key.with_suffix(".pub"), 70 + 2 * i, work)
            theirs = peer(n, key.with_suffix(".pub"), 71 + 2 * i, work)
            rows.append({"workers": n, "stackspray": ours, "openstack_cloud_playbook": theirs})
    if args.json:
        print(json.dumps(rows))
        return 0
    print(
        f"{'workers':>8} {'stackspray s':>13} {'calls':>6} {'playbook s':>11} {'calls':>6} {'playbook/ours':>14}"
    )
    for r in rows:
        s, p = r["stackspray"], r["openstack_cloud_playbook"]
        print(
            f"{r['workers']:>8} {s['seconds']:>13} {s['api_calls']:>6} {p['seconds']:>11} {p['api_calls']:>6} "
            f"{p['seconds'] / s['seconds']:>14.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

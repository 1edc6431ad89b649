"""Ansible at the width of the cluster, on the sandbox (Kubespray stand-in).

    .venv/bin/python benchmarks/ansible_width.py [--workers 1 10 20] [--narrow 20] [--json]
    .venv/bin/python benchmarks/ansible_width.py --boot 49     # 50 node hosts, SSH-ready times

For each worker count, one new cluster (1 control plane + N m3.tiny workers) is built by
create-cluster with Kubernetes (the Kubespray stand-in on the sandbox), and the wall time of
prepare-nodes.yml and cluster.yml is read from the run's own summary lines; the ratio to the
1-worker cluster is printed. `--narrow N` builds one more N-worker cluster with `--forks 5`
(Ansible's default, what a run without stackspray's setting gets) in the same run, for comparison.
`--boot N` boots 1 + N servers without Kubernetes and reports each node host's seconds from
ACTIVE to SSH-ready and its boots (from the node agent's records, `invoke sandbox.status`).
Every cluster is destroyed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from stackspray_sandbox import cloud
from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.progress import Progress
from stackspray.spec import load_spec

SUMMARY = re.compile(
    r"(?P<book>[\w./-]+\.yml): ok on (?P<hosts>\d+) host\(s\), (?P<tasks>\d+) task\(s\) "
    r"in (?P<s>[\d.]+)s(?: \(slowest: (?P<slow>.*)\))?$"
)


def build(workers: int, key: Path, octet: int, inv: Path, forks: int | None = None) -> dict:
    name = f"aw{uuid.uuid4().hex[:4]}"
    spec = write_small_cluster_spec(
        inv, name, key, f"10.{octet}.0.0/24", workers, control_plane_flavor="m3.tiny"
    )
    lines: list[str] = []
    try:
        create_cluster(load_spec(spec), progress=Progress(emit=lines.append), root=inv, forks=forks)
    finally:
        destroy_cluster(name, root=inv, progress=Progress(emit=lambda m: None))
    books = {}
    for line in lines:
        m = SUMMARY.search(line.strip())
        if m:
            books[m["book"]] = {
                "hosts": int(m["hosts"]),
                "tasks": int(m["tasks"]),
                "seconds": float(m["s"]),
                "slowest": m["slow"] or "",
            }
    return {"workers": workers, "forks": forks or "hosts", "playbooks": books}


def boot(workers: int, key: Path, inv: Path) -> dict:
    name = f"ab{uuid.uuid4().hex[:4]}"
    spec = write_small_cluster_spec(inv, name, key, "10.96.0.0/24", workers, control_plane_flavor="m3.tiny")
    try:
        create_cluster(load_spec(spec), progress=Progress(emit=lambda m: None), root=inv, kubernetes=False)
        active = time.monotonic()  # every server is ACTIVE in Nova now; the node agent boots hosts
        deadline = active + 600
        while True:
            nodes = [n for n in cloud.status()["nodes"] if n["hostname"].startswith(f"{name}-")]
            done = [
                n for n in nodes if n.get("boot") and (n["boot"]["ready_seconds"] or n["boot"]["problems"])
            ]
            if len(done) == workers + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        all_ready = round(time.monotonic() - active, 1)
    finally:
        destroy_cluster(name, root=inv, progress=Progress(emit=lambda m: None))
    ready = sorted(n["boot"]["ready_seconds"] for n in nodes if n.get("boot") and n["boot"]["ready_seconds"])
    return {
        "node_hosts": len(nodes),
        "ssh_ready": len(ready),
        "seconds_min": ready[0] if ready else None,
        "seconds_median": statistics.median(ready) if ready else None,
        "seconds_max": ready[-1] if ready else None,
        "rebooted": sum(1 for n in nodes if n.get("boot") and n["boot"]["boots"] > 1),
        "seconds_from_all_active_to_all_ssh_ready": all_ready,
        "problems": [p for n in nodes if n.get("boot") for p in n["boot"].get("problems") or []],
        "kernel": cloud.status()["kernel"],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 10, 20])
    ap.add_argument("--narrow", type=int, default=0, help="also build this many workers with --forks 5")
    ap.add_argument("--boot", type=int, default=0, help="only boot 1 + N node hosts and time them")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(SandboxPaths.default().clouds_yaml))
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp)
        key = inv / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        if args.boot:
            result = boot(args.boot, key.with_suffix(".pub"), inv)
            print(json.dumps(result) if args.json else json.dumps(result, indent=1))
            return 0 if result["ssh_ready"] == result["node_hosts"] == args.boot + 1 else 1
        rows = [build(n, key.with_suffix(".pub"), 60 + 2 * i, inv) for i, n in enumerate(args.workers)]
        if args.narrow:
            rows.append(build(args.narrow, key.with_suffix(".pub"), 90, inv, forks=5))
    base = rows[0]["playbooks"]
    for r in rows:
        for book, b in r["playbooks"].items():
            b["x_first"] = round(b["seconds"] / base[book]["seconds"], 2) if book in base else None
    if args.json:
        print(json.dumps(rows))
        return 0
    print(
        f"{'workers':>8} {'forks':>6} {'playbook':<20} {'hosts':>6} {'tasks':>6} {'seconds':>8} "
        f"{'x first':>8}"
    )
    for r in rows:
        for book, b in r["playbooks"].items():
            print(
                f"{r['workers']:>8} {r['forks']!s:>6} {book:<20} {b['hosts']:>6} {b['tasks']:>6} "
                f"{b['seconds']:>8.1f} {b['x_first']!s:>8}  {b['slowest']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

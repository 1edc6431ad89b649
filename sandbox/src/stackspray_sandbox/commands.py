"""The sandbox's commands, added to stackspray's (`invoke sandbox.up`, `stackspray sandbox.up`)
through the `stackspray.commands` entry point."""

from __future__ import annotations

import json
import sys

from invoke import Collection, Exit, task

from stackspray_sandbox import cloud
from stackspray_sandbox.errors import SandboxError


@task(help={"json": "print a machine-readable report"})
def up(c, json_=False):
    """Install (first time) and start the sandbox cloud and its node hosts; idempotent."""
    try:
        report = cloud.up(
            progress=lambda line: print(line, file=sys.stderr if json_ else sys.stdout, flush=True)
        )
    except SandboxError as exc:
        raise Exit(f"sandbox.up failed: {exc}", code=1) from exc
    if json_:
        print(json.dumps({"steps": report.steps, "total": report.total, "clouds_yaml": report.clouds_yaml}))
        return
    for step, secs in report.steps.items():
        print(f"  {step:<34} {secs:6.1f}s")
    print(f"sandbox is up in {report.total:.1f}s")
    print(f"  export OS_CLIENT_CONFIG_FILE={report.clouds_yaml} OS_CLOUD=sandbox")


@task(help={"json": "print a machine-readable report"})
def down(c, json_=False):
    """Stop every process, node host, namespace, bridge and mount of the sandbox (state is kept)."""
    stopped = cloud.down()
    left = cloud.leftovers()
    if json_:
        print(json.dumps({"stopped": stopped, "leftovers": left}))
    else:
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    if left:
        raise Exit(f"sandbox.down left these behind: {left}", code=2)


@task(help={"json": "print a machine-readable report"})
def status(c, json_=False):
    """Show each sandbox daemon (PID, ready) and each node host."""
    st = cloud.status()
    if json_:
        print(json.dumps(st))
    else:
        for name, d in st["daemons"].items():
            state = "ready" if d["ready"] else ("starting" if d["pid"] else "stopped")
            print(f"  {name:<18} {state:<9} {d['pid'] or ''}")
        for n in st["nodes"]:
            state = "running" if n["running"] else "stopped"
            boot = n.get("boot") or {}
            how = (
                f"SSH in {boot['ready_seconds']}s"
                + (f" after {boot['boots']} boots" if boot["boots"] > 1 else "")
                if boot.get("ready_seconds") is not None
                else "; ".join(boot.get("problems") or [])
            )
            print(
                f"  node {n['hostname']:<24} {n['fixed_ip']:<15} {' '.join(n['floating_ips'])} {state} {how}"
            )
        for name, k in st.get("kernel", {}).items():
            low = " (LOW: fewer node hosts boot)" if k["now"] < k["needed"] else ""
            print(f"  kernel {name} = {k['now']}" + (f" (was {k['was']})" if "was" in k else "") + low)
        print(f"clouds.yaml: {st['clouds_yaml']}")
    if not st["running"]:
        raise Exit("sandbox is not (fully) running: invoke sandbox.up", code=3)


sandbox = Collection("sandbox", up=up, down=down, status=status)

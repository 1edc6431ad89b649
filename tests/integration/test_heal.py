"""`invoke heal` as a user runs it (`OS_CLOUD` exported, from another folder), with the sandbox's
faults: a worker whose node host is killed (the server still ACTIVE, SSH dead, so its Node goes
NotReady) is soft-rebooted and Ready again; a worker shelved by `scale` is never touched; two of
three workers broken with max_unhealthy 40 % → nothing is remedied and the reason is shown, and
with max_unhealthy 2 both are rebooted at once; a worker whose OS stays silent through both
reboots is held while a worker is shelved, then replaced once it is unshelved — a new server of
the same name on the same address, joined and Ready; a heal killed (SIGKILL) after it deleted a
server is finished by the next one; a replacement whose server never boots is backed off and
reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import yaml
from helpers import BIN, ROOT, eventually, kube_tools, user_env, user_runner
from stackspray_sandbox import faults
from stackspray_sandbox.specs import write_small_cluster_spec


def test_heal_reboots_then_replaces_broken_workers_and_never_a_shelved_one(sandbox, conn, ssh_key, tmp_path):
    name = f"he{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.59.0.0/24", 3)
    data = yaml.safe_load(spec.read_text())
    data["node_groups"]["workers"]["heal"] = {"unhealthy_for": "5s", "reboot_timeout": "25s"}
    # Kubespray's variable for how long the node lifecycle controller waits before a silent node
    # is NotReady (40s by default; the API stand-in honours it): the test waits less.
    data["kubernetes"] = {"kube_controller_node_monitor_grace_period": "10s"}
    spec.write_text(yaml.safe_dump(data))
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    run = user_runner(sandbox, tmp_path, env=env)
    kubeconfig = tmp_path / "inventories" / name / "kubeconfig"
    w1, w2, w3 = (f"{name}-workers-{i}" for i in (1, 2, 3))

    def server(node: str):
        return next(s for s in conn.compute.servers(name=node) if s.name == node)

    def ready(node: str) -> str:
        out = subprocess.run(
            [str(kube_tools()["kubectl"]), "--kubeconfig", str(kubeconfig), "get", "node", node, "-o",
             'jsonpath={.status.conditions[?(@.type=="Ready")].status}'],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return out.stdout.strip()

    def heal(*args: str, ok: bool = True) -> dict:
        out = run("heal", "--cluster", name, "--json", *args, ok=ok)
        return json.loads(out.stdout)

    def steps(doc: dict) -> dict[str, tuple[str, str]]:
        return {s["node"]: (s["action"], s["reason"]) for s in doc["steps"]}

    try:
        run("create-cluster", "--spec", str(spec))
        run("scale", "--cluster", name, "--shelve", "--nodes", w3)
        assert server(w3).status == "SHELVED_OFFLOADED"
        shelved_at = server(w3).updated_at

        # A killed node host: NotReady after the grace period; heal reboots it.
        assert faults.kill_node(server(w1).id, paths=sandbox.paths)
        assert eventually(lambda: ready(w1) == "Unknown", timeout=90)
        planned = heal("--dry-run")
        assert steps(planned)[w1][0] in ("wait", "soft-reboot"), planned
        assert steps(planned)[w3][0] == "skip" and "shelved" in steps(planned)[w3][1], planned
        assert steps(planned)[w2][0] == "healthy"
        assert ready(w1) == "Unknown", "a dry run did something"
        time.sleep(5)  # the group's unhealthy_for
        healed = heal()
        assert [(r["node"], r["remedy"], r["outcome"]) for r in healed["remedies"]] == [
            (w1, "soft-reboot", "ok")
        ]
        assert ready(w1) == "True" and all(s["node"] == w3 for s in healed["left"]), healed
        assert server(w3).status == "SHELVED_OFFLOADED" and server(w3).updated_at == shelved_at

        # Two of three broken: more than max_unhealthy 40 % (1): nothing is done, and heal says why.
        for node in (w1, w2):
            assert faults.kill_node(server(node).id, paths=sandbox.paths)
        assert eventually(lambda: ready(w1) == ready(w2) == "Unknown", timeout=90)
        time.sleep(5)
        held = run("heal", "--cluster", name, ok=False)
        assert "more than max_unhealthy 40% (1)" in held.stdout + held.stderr, held.stdout
        assert "done:" not in held.stdout
        assert ready(w1) == ready(w2) == "Unknown"
        # Allowed two: both rebooted, at once.
        data["node_groups"]["workers"]["heal"]["max_unhealthy"] = 2
        spec.write_text(yaml.safe_dump(data))
        both = heal()
        assert sorted((r["node"], r["remedy"], r["outcome"]) for r in both["remedies"]) == [
            (w1, "soft-reboot", "ok"),
            (w2, "soft-reboot", "ok"),
        ]

        # An OS that stays silent through both reboots: replaced — but not while a worker is
        # shelved (joining the new server needs Kubespray to reach every node): held, then done
        # once it is unshelved.
        old = server(w1)
        old_ip = [a["addr"] for addrs in old.addresses.values() for a in addrs][0]
        faults.silent_os(2, name_contains=w1, paths=sandbox.paths)
        assert faults.kill_node(old.id, paths=sandbox.paths)
        assert eventually(lambda: ready(w1) == "Unknown", timeout=90)
        time.sleep(5)
        held = heal(ok=False)
        assert [(r["remedy"], r["outcome"]) for r in held["remedies"]] == [
            ("soft-reboot", "failed"),
            ("hard-reboot", "failed"),
        ], held
        (left,) = [s for s in held["left"] if s["node"] == w1]
        assert left["action"] == "hold" and f"{w3} is shelved" in left["reason"], held
        assert server(w1).id == old.id, "nothing was taken out"
        run("scale", "--cluster", name, "--unshelve", "--nodes", w3)
        replaced = heal()
        assert [(r["remedy"], r["outcome"]) for r in replaced["remedies"]] == [("replace", "ok")], replaced
        new = server(w1)
        assert (
            new.id != old.id and [a["addr"] for addrs in new.addresses.values() for a in addrs][0] == old_ip
        )
        assert ready(w1) == "True"
        state_file = tmp_path / "inventories" / name / "state.json"
        state = json.loads(state_file.read_text())
        assert state["heal"] == {}, state["heal"]

        # SIGKILL in the middle of a replacement (its server deleted, the new one not made yet):
        # the next heal finds that in its memory and finishes it — same name, same address.
        old2 = server(w2)
        faults.silent_os(2, name_contains=w2, paths=sandbox.paths)
        assert faults.kill_node(old2.id, paths=sandbox.paths)
        assert eventually(lambda: ready(w2) == "Unknown", timeout=90)
        time.sleep(5)
        killed = subprocess.Popen(
            [str(BIN / "invoke"), "-r", str(ROOT), "heal", "--cluster", name],
            cwd=tmp_path, env={**user_env(sandbox), **env}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            taken_out = eventually(
                lambda: (
                    (json.loads(state_file.read_text()).get("heal") or {}).get(w2, {}).get("server_deleted")
                ),
                timeout=180,
            )
        finally:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
        assert taken_out, json.loads(state_file.read_text())["heal"]
        assert not [s for s in conn.compute.servers(name=w2) if s.name == w2], "the server is gone"
        finished = heal()
        assert [(r["node"], r["remedy"], r["outcome"]) for r in finished["remedies"]] == [
            (w2, "replace", "ok")
        ], finished
        assert server(w2).id != old2.id and ready(w2) == "True"

        # A replacement that fails to boot (Nova's ERROR, every try create-cluster makes): backed
        # off and reported, heal exits 1, and the broken node is not forgotten.
        old1 = server(w1)
        faults.silent_os(2, name_contains=w1, paths=sandbox.paths)
        assert faults.kill_node(old1.id, paths=sandbox.paths)
        assert eventually(lambda: ready(w1) == "Unknown", timeout=90)
        time.sleep(5)
        faults.boot_errors(3, name_contains=w1, paths=sandbox.paths)  # create-cluster's 3 attempts
        failed = heal(ok=False)
        assert [(r["remedy"], r["outcome"]) for r in failed["remedies"]] == [
            ("soft-reboot", "failed"),
            ("hard-reboot", "failed"),
            ("replace", "failed"),
        ], failed
        assert "failed to boot 3 times" in failed["remedies"][-1]["detail"], failed
        (left,) = [x for x in failed["left"] if x["node"] == w1]
        assert left["action"] == "backoff" and "next try in" in left["reason"], failed
        memory = json.loads(state_file.read_text())["heal"][w1]
        assert memory["failed_replacements"] == 1 and memory["backoff_until"], memory
        assert faults.boot_errors_remaining(sandbox.paths) == 0
    finally:
        run("destroy-cluster", "--cluster", name, "--yes")

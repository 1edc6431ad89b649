"""Service Unit rates as a user sets them, judged through `status` run as a user runs it
(`OS_CLOUD` exported, from another folder): the built-in table with its source, the user's rates
file over it, the spec's `su_rates` over both, and a bad rates file named before anything."""

from __future__ import annotations

import json
import uuid

import yaml
from helpers import user_runner
from stackspray_sandbox.specs import write_small_cluster_spec


def test_status_names_each_rate_and_follows_the_file_and_the_spec(sandbox, ssh_key, tmp_path):
    name = f"su{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.58.0.0/24", 1)
    data = yaml.safe_load(spec.read_text())
    data["node_groups"]["workers"]["flavor"] = "g3.small"  # 4 vCPUs, a GPU flavor
    spec.write_text(yaml.safe_dump(data))
    config = tmp_path / "config"
    rates_file = config / "stackspray" / "su-rates.yaml"
    env = {"XDG_CONFIG_HOME": str(config), "STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    run = user_runner(sandbox, tmp_path, env=env)
    try:
        run("create-cluster", "--spec", str(spec), "--no-kubernetes")

        def status() -> dict:
            doc = json.loads(run("status", "--cluster", name, "--json").stdout)
            return {n["role"]: n["su_per_hour"] for n in doc["nodes"]} | {"rates": doc["su_rates"]}

        built_in = status()
        assert built_in["control-plane"] == 2 and built_in["workers"] == 8, built_in  # 4 vCPUs x 2
        assert "docs.jetstream-cloud.org/general/instance-flavors" in built_in["rates"]["g3"]["source"]

        rates_file.parent.mkdir(parents=True)
        rates_file.write_text("g3: 4\n")
        from_file = status()
        assert from_file["workers"] == 16 and from_file["control-plane"] == 2, from_file
        assert from_file["rates"]["g3"] == {
            "su_per_vcpu_hour": 4.0,
            "source": f"your rates file {rates_file}",
        }

        data["su_rates"] = {"g3": 1}
        spec.write_text(yaml.safe_dump(data))
        again = json.loads(run("create-cluster", "--spec", str(spec), "--no-kubernetes", "--json").stdout)
        assert [a for a in again["actions"] if a["kind"] != "noop"] == [], (
            "a rate changes nothing in the cloud"
        )
        from_spec = status()
        assert from_spec["workers"] == 4, from_spec  # the spec's rate wins over the user's file
        text = run("status", "--cluster", name).stdout
        assert f"g3: 1 SU per vCPU-hour (the spec's su_rates ({spec}))" in text, text
        assert "Service Units: 6/hour now" in text, text

        rates_file.write_text("g3: lots\n")
        bad = run("status", "--cluster", name, ok=False)
        said = bad.stdout + bad.stderr
        assert f"{rates_file}.g3: SU per vCPU-hour must be a number" in said and "Traceback" not in said, said
    finally:
        rates_file.unlink(missing_ok=True)
        run("destroy-cluster", "--cluster", name, "--yes")

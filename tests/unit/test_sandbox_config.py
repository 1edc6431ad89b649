"""Pure parts of the sandbox: fault rule matching, INI rendering, the services' settings."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
import yaml
from stackspray_sandbox import lanes, services
from stackspray_sandbox.faultproxy import FaultTable
from stackspray_sandbox.paths import SandboxPaths


def test_fault_rule_matches_service_method_and_path_then_runs_out():
    t = FaultTable()
    t.add({"service": "nova", "method": "post", "path": r"/servers$", "count": 2, "status": 409})
    assert t.take("neutron", "POST", "/v2.1/servers") is None, "other service"
    assert t.take("nova", "GET", "/v2.1/servers") is None, "other method"
    assert t.take("nova", "POST", "/v2.1/servers/abc/action") is None, "path regex"
    assert t.take("nova", "POST", "/v2.1/servers")["status"] == 409
    assert t.take("nova", "POST", "/v2.1/servers")["status"] == 409
    assert t.take("nova", "POST", "/v2.1/servers") is None, "count used up"
    assert t.rules()[0]["fired"] == 2
    assert t.stats()["calls"]["nova"] == 5 and t.stats()["calls"]["nova POST"] == 4


def test_first_live_rule_wins_and_wildcards_match_everything():
    t = FaultTable()
    t.add({"service": "*", "kind": "reset", "count": 1})
    t.add({"service": "glance", "status": 503, "count": 1})
    assert t.take("glance", "GET", "/v2/images")["kind"] == "reset"
    assert t.take("glance", "GET", "/v2/images")["status"] == 503
    assert t.take("glance", "GET", "/v2/images") is None


def test_a_lanes_rule_fires_only_for_its_projects_calls_and_clears_alone():
    t = FaultTable()
    t.add({"service": "nova", "status": 500, "count": 2, "project": "sandbox-1"})
    t.add({"service": "nova", "status": 503, "count": 1, "project": "sandbox"})
    assert t.scoped()
    assert t.take("nova", "POST", "/v2.1/servers") is None, "a call without a token's project"
    assert t.take("nova", "POST", "/v2.1/servers", "sandbox-2") is None, "another lane's call"
    assert t.take("nova", "POST", "/v2.1/servers", "sandbox-1")["status"] == 500
    assert t.take("nova", "POST", "/v2.1/servers", "sandbox")["status"] == 503
    assert {f["project"] for f in t.stats()["fired"]} == {"sandbox-1", "sandbox"}
    t.clear("sandbox-1")
    assert [r["project"] for r in t.rules()] == ["sandbox"]
    assert [f["project"] for f in t.stats()["fired"]] == ["sandbox"]
    assert not t.scoped(), "the one left is used up"
    t.clear()
    assert t.rules() == [] and t.stats()["fired"] == []


def test_lanes_name_their_projects_zones_folders_and_move_networks(monkeypatch, tmp_path):
    monkeypatch.delenv(lanes.LANE_ENV, raising=False)
    assert lanes.current() is None and lanes.number() == 0 and lanes.project() == "sandbox"
    assert SandboxPaths(tmp_path).clouds_yaml == tmp_path / "clouds.yaml"
    assert lanes.cidr("10.57.0.0/24") == "10.57.0.0/24"
    monkeypatch.setenv(lanes.LANE_ENV, "3")
    assert (lanes.project(), lanes.member()) == ("sandbox-3", "sandbox-member-3")
    assert lanes.zone() == "sandbox-3.projects.jetstream-cloud.org."
    assert SandboxPaths(tmp_path).clouds_yaml == tmp_path / "lanes" / "3" / "clouds.yaml"
    assert lanes.cidr("10.57.0.0/24") == "10.57.3.0/24" and lanes.cidr("10.1.0.0/25") == "10.1.3.0/25"
    assert lanes.project(0) == "sandbox" and lanes.cidr("10.1.0.0/24", 0) == "10.1.0.0/24"
    with pytest.raises(ValueError, match="10.X.0.0/24"):
        lanes.cidr("192.168.0.0/24")
    with pytest.raises(ValueError, match="10.X.0.0/24"):
        lanes.cidr("10.8.0.0/16")
    monkeypatch.setenv(lanes.LANE_ENV, "100")
    with pytest.raises(ValueError, match="from 0 to 99"):
        lanes.current()


def test_bad_rules_are_refused():
    t = FaultTable()
    with pytest.raises(ValueError, match="unknown fault kind"):
        t.add({"kind": "explode"})
    with pytest.raises(Exception):  # noqa: B017 (re.error)
        t.add({"path": "("})
    assert t.rules() == []


def test_render_ini_keeps_case_and_booleans():
    text = services.render_ini({"DEFAULT": {"Flag": True}, "cache": {"enabled": False, "n": 3}})
    p = configparser.RawConfigParser()
    p.optionxform = str
    p.read_string(text)
    assert p["DEFAULT"]["Flag"] == "true"
    assert p["cache"]["enabled"] == "false" and p["cache"]["n"] == "3"


@pytest.fixture
def fake_paths(tmp_path) -> SandboxPaths:
    paths = SandboxPaths(tmp_path)
    for svc, name in [("glance", "glance-api-paste.ini"), ("neutron", "api-paste.ini"),
                      ("nova", "api-paste.ini"), ("manila", "api-paste.ini"),
                      ("cinder", "api-paste.ini")]:  # fmt: skip
        f = paths.venv / "etc" / svc / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("[pipeline:main]\n")
    dns_paste = paths.dns_venv / "etc" / "designate" / "api-paste.ini"
    dns_paste.parent.mkdir(parents=True, exist_ok=True)
    dns_paste.write_text("[pipeline:main]\n")
    return paths


def _parse(text: str) -> configparser.RawConfigParser:
    p = configparser.RawConfigParser()
    p.read_string(text)
    return p


def test_settings_that_matter(fake_paths):
    secrets = {k: f"pw-{k}" for k in ("db", "rabbit", "service", "admin", "member")}
    cfg = services.configs(fake_paths, secrets)
    ks = _parse(cfg["keystone/keystone.conf"])
    assert ks["cache"]["enabled"] == "true" and ks["cache"]["backend"] == "oslo_cache.dict"
    nova = _parse(cfg["nova/nova.conf"])
    assert nova["DEFAULT"]["shelved_offload_time"] == "0"
    assert nova["DEFAULT"]["compute_driver"] == "stackspray_sandbox.FaultInjectingFakeDriver"
    assert nova["service_user"]["send_service_user_token"] == "true"
    assert nova["quota"]["cores"] == "150"
    compute = _parse(cfg["nova/nova-compute.conf"])
    assert "database" not in compute and "api_database" not in compute
    ml2 = _parse(cfg["neutron/plugins/ml2/ml2_conf.ini"])
    assert ml2["ml2"]["mechanism_drivers"] == "stackspray_sandbox"
    assert _parse(cfg["neutron/neutron.conf"])["quotas"]["quota_floatingip"] == "10"
    manila = _parse(cfg["manila/manila.conf"])
    assert "CEPHFS" in manila["DEFAULT"]["enabled_share_protocols"]
    cinder = _parse(services.configs(fake_paths, secrets, "the-fsid")["cinder/cinder.conf"])
    # Jetstream2's volume storage quota, and the RBD backend (ceph.py says why not LVM).
    assert cinder["DEFAULT"]["quota_gigabytes"] == "1000" and cinder["DEFAULT"]["enabled_backends"] == "ceph"
    assert cinder["ceph"]["volume_driver"] == "cinder.volume.drivers.rbd.RBDDriver"
    assert cinder["ceph"]["rbd_secret_uuid"] == "the-fsid" and cinder["ceph"]["rbd_user"] == "cinder"
    assert nova["cinder"]["os_region_name"] == "RegionOne"
    designate = _parse(cfg["designate/designate.conf"])
    assert designate["service:mdns"]["listen"] == f"127.0.0.1:{services.MDNS_PORT}"
    assert designate["keystone_authtoken"]["service_type"] == "dns"
    (pool,) = yaml.safe_load(cfg["designate/pools.yaml"])
    mdns = {"host": "127.0.0.1", "port": services.MDNS_PORT}
    # No DNS server: the fake backend, and mdns answers the worker's serial polls and NOTIFYs.
    assert pool["id"] == services.DEFAULT_POOL_ID and pool["nameservers"] == [mdns]
    assert pool["targets"] == [
        {"type": "fake", "description": "no DNS server", "masters": [mdns], "options": mdns}
    ]


def test_services_talk_to_each_other_on_internal_ports_only(fake_paths):
    secrets = {k: "x" for k in ("db", "rabbit", "service", "admin", "member")}
    cfg = services.configs(fake_paths, secrets)
    public_ports = {str(api.public_port) for api in services.APIS.values()}
    for name, text in cfg.items():
        if name.endswith(("api-paste.ini", ".yaml")):
            continue
        p = _parse(text)
        for section in p.sections():
            for key, value in p[section].items():
                if key in ("www_authenticate_uri", "api_base_uri"):
                    continue  # what clients are told to use: the public (proxied) endpoint
                for port in public_ports:
                    assert f":{port}/" not in value and not value.endswith(f":{port}"), (name, section, key)


def test_every_config_is_written_0600(fake_paths):
    secrets = {k: "x" for k in ("db", "rabbit", "service", "admin", "member")}
    services.write_configs(fake_paths, secrets, "fsid")
    files = [f for f in Path(fake_paths.etc).rglob("*") if f.is_file()]
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)

"""The typed state file: today's files (schema 1, written by main at 634127f) are read and
migrated; broken files give a StateError naming the file and the fix, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.cluster_state import SCHEMA_VERSION, ClusterState, StateError
from stackspray.state import ClusterDir

V1 = Path(__file__).parent / "fixtures" / "state-v1-main-634127f.json"


def test_a_state_written_by_main_is_read_typed_and_migrated(tmp_path):
    raw = json.loads(V1.read_text())
    assert "schema_version" not in raw, "the fixture is a schema-1 file"
    cdir = ClusterDir("fixture", tmp_path)
    cdir.path.mkdir(parents=True)
    cdir.state_file.write_text(V1.read_text())
    state = cdir.load()
    assert state.schema_version == SCHEMA_VERSION
    assert state.cluster == "fixture" and state.cloud == "sandbox"
    assert set(state.servers) == {"fixture-control-plane-1", "fixture-workers-1"}
    cp = state.servers["fixture-control-plane-1"]
    assert cp.group == "control-plane" and cp.fixed_ip and cp.floating_ip == state.floating_ip.address
    assert state.credential.name.startswith("fixture-k8s-") and state.credential.expires_at
    assert state.credential_rotations and state.credential_rotations[-1].new_id == state.credential.id
    assert state.share.export_path and state.share.claim == "default/fixture-share" and state.share.applied
    assert state.scale_runs and state.keypair.uploaded and state.network.cidr == "10.88.0.0/24"
    # Written back: the current version, and every field of the old file is still there.
    cdir.save(state)
    again = json.loads(cdir.state_file.read_text())
    assert again["schema_version"] == SCHEMA_VERSION
    for key, value in raw.items():
        if key == "updated_at":
            continue
        if isinstance(value, dict) and key in ("credential", "share"):
            # Fields added since (with their defaults) may join; none of the old ones change.
            assert again[key] | value == again[key], key
            added = {k: v for k, v in again[key].items() if k not in value}
            assert added == ({"access_rules": False} if key == "credential" else {"owner_applied": None}), key
        elif key == "scale_runs":
            # Each run now says who made it; the old ones, written by `invoke scale`, were manual.
            assert again[key] == [dict(r, source="manual") for r in value], key
        else:
            assert again[key] == value, key


def test_keys_of_a_newer_schema_are_kept():
    state = ClusterState.from_dict({"schema_version": 2, "cluster": "c", "future_field": {"min": 0}})
    assert state.extra == {"future_field": {"min": 0}} and state.to_dict()["future_field"] == {"min": 0}


def test_a_state_from_a_newer_stackspray_is_refused():
    with pytest.raises(StateError, match="newer stackspray"):
        ClusterState.from_dict({"schema_version": SCHEMA_VERSION + 1, "cluster": "c"})


@pytest.mark.parametrize("text", ["", "   \n", "{not json", "[1, 2]", '{"servers": {"a": 5}}'])
def test_a_broken_state_file_is_named_with_what_to_do(tmp_path, text):
    cdir = ClusterDir("c", tmp_path)
    cdir.path.mkdir(parents=True)
    cdir.state_file.write_text(text)
    with pytest.raises(StateError) as err:
        cdir.load()
    assert str(cdir.state_file) in str(err.value) and "create-cluster" in str(err.value)


def test_no_state_file_is_an_empty_falsy_state(tmp_path):
    state = ClusterDir("c", tmp_path).load()
    assert not state and state.servers == {}


def test_state_and_secret_files_are_written_durably_with_their_modes(tmp_path):
    cdir = ClusterDir("c", tmp_path)
    cdir.save(ClusterState(cluster="c"))
    p = cdir.write_secret("k", "value")
    assert p.stat().st_mode & 0o777 == 0o600 and cdir.secrets.stat().st_mode & 0o777 == 0o700
    assert not list(cdir.path.glob(".*.tmp")), "no temporary file is left"

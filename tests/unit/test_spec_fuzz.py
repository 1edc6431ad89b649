"""The spec is data: thousands of generated and mutated specs (hypothesis) each end in a valid
ClusterSpec or a SpecError whose every problem names a field — never another exception, and in
bounded time and message size. Through the text parser (YAML) and through `invoke plan` as a
user runs it."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackspray.errors import SpecError
from stackspray.spec import ClusterSpec, load_spec, parse_spec, parse_spec_text

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "name": "demo",
    "cloud": "c",
    "keypair": {"name": "k"},
    "network": {"cidr": "10.20.0.0/24"},
    "node_groups": {
        "control-plane": {"flavor": "m3.small", "count": 1},
        "workers": {"flavor": "m3.small", "count": 2},
    },
    "allowed_cidrs": {"ssh": ["10.0.0.0/8"]},
    "share": {"size_gb": 10},
    "kubernetes": {"kube_network_plugin": "calico"},
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "$(touch /tmp/pwned)ubuntu",
            "{{ lookup('pipe', 'id') }}",
            "demo\n",
            "10.0.0.0/30",
            "fd00::/64",
            "0.0.0.0/0",
            "a b c",
            "../..",
            "%h%p",
            "\x00",
            "m3.small",
            "control-plane",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)
PATHS = [
    (),
    ("name",),
    ("cloud",),
    ("ssh_user",),
    ("image",),
    ("keypair",),
    ("keypair", "name"),
    ("keypair", "public_key_file"),
    ("network",),
    ("network", "cidr"),
    ("network", "dns_nameservers"),
    ("network", "existing"),
    ("node_groups",),
    ("node_groups", "control-plane"),
    ("node_groups", "control-plane", "count"),
    ("node_groups", "workers"),
    ("node_groups", "workers", "count"),
    ("node_groups", "workers", "extra_groups"),
    ("node_groups", "gpu"),
    ("floating_ip",),
    ("floating_ip", "address"),
    ("su_rates",),
    ("su_rates", "g3"),
    ("allowed_cidrs",),
    ("allowed_cidrs", "ssh"),
    ("share",),
    ("share", "size_gb"),
    ("share", "mount_path"),
    ("share", "access_rule"),
    ("share", "namespace"),
    ("kubernetes",),
    ("kubernetes", "pod_cidr"),
    ("kubernetes", "cloud_provider"),
    ("kubernetes", "kube_version"),
]


def mutate(doc: dict, path: tuple, value) -> object:
    if not path:
        return value
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


def check(outcome_of) -> None:
    started = time.monotonic()
    try:
        spec = outcome_of()
    except SpecError as err:
        assert err.problems, "a SpecError lists its problems"
        for p in err.problems:
            field, _, what = p.partition(": ")
            assert field and what, f"every problem names a field: {p!r}"
        assert len(str(err)) < 20_000, "the message is bounded"
    else:
        assert isinstance(spec, ClusterSpec)
        assert sum(g.count for g in spec.node_groups) <= 200
    assert time.monotonic() - started < 2.0


# Examples are drawn anew each run (no database): every CI run tries other ones.
FUZZ = settings(max_examples=800, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=4))
def test_mutated_specs_end_in_a_spec_or_a_named_problem(mutations):
    doc: object = BASE
    for path, value in mutations:
        doc = mutate(doc if isinstance(doc, dict) else {}, path, value)
    check(lambda: parse_spec(doc, "<fuzz>", env={}))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_ends_in_a_spec_or_a_named_problem(text):
    check(lambda: parse_spec_text(text, "<fuzz>", env={}))


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(PATHS[1:]), values)
def test_mutated_spec_text_round_trips_through_yaml(path, value):
    text = yaml.safe_dump(mutate(BASE, path, value), allow_unicode=True)
    check(lambda: parse_spec_text(text, "<fuzz>", env={}))


def test_an_alias_bomb_is_refused_quickly_with_a_short_message():
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("name: *a8")
    check(lambda: parse_spec_text("\n".join(lines), "<bomb>", env={}))


def test_duplicate_keys_are_refused_naming_the_key():
    text = "name: demo\ncloud: c\nname: other\n"
    try:
        parse_spec_text(text, "<dup>", env={})
    except SpecError as err:
        assert "'name' appears twice" in str(err)
    else:
        raise AssertionError("a duplicate key was accepted")


def test_non_utf8_files_are_refused(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_bytes(b"name: d\xe9mo\n")
    try:
        load_spec(spec, env={})
    except SpecError as err:
        assert "not UTF-8" in str(err)
    else:
        raise AssertionError("a Latin-1 file was accepted")
    key = tmp_path / "k.pub"
    key.write_bytes(b"\xff\xfe ssh-ed25519 AAAA")
    spec.write_text(f"name: demo\ncloud: c\nkeypair: {{public_key_file: {key}}}\n")
    try:
        load_spec(spec, env={})
    except SpecError as err:
        assert any(p.startswith("keypair.public_key_file:") for p in err.problems)


def test_the_plan_command_never_shows_a_traceback(tmp_path):
    """As a user runs it: OS_CLOUD exported, from another folder. Each file is refused before the
    cloud is asked anything, with exit 1 and the field named."""
    env = dict(os.environ, OS_CLOUD="nowhere", STACKSPRAY_INVENTORIES=str(tmp_path / "inv"))
    cases = {
        "ssh_user": {**BASE, "ssh_user": "$(touch /tmp/stackspray-pwned)ubuntu"},
        "node_groups.control-plane": mutate(BASE, ("node_groups", "control-plane"), 5),
        "kubernetes.cloud_provider": mutate(BASE, ("kubernetes", "cloud_provider"), "openstack"),
        "network.cidr": mutate(BASE, ("network", "cidr"), "10.20.0.0/30"),
        "share.size_gb": {**BASE, "share": {}},
    }
    for field, doc in cases.items():
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(doc))
        out = subprocess.run(
            [sys.executable, "-m", "invoke", "-r", str(ROOT), "plan", "--spec", str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        text = out.stdout + out.stderr
        assert out.returncode == 1, (field, text)
        assert f"{field}:" in text and "Traceback" not in text, (field, text)
    assert not Path("/tmp/stackspray-pwned").exists()

"""openstacksdk's own block-storage functional tests (openstack/tests/functional/block_storage/v3,
shipped in the openstacksdk wheel) run against the sandbox — tests we did not write, which skip on
a cloud without Cinder — configured as their tox environment configures them for devstack: the
demo user is the lane's project member, the operator the cloud admin."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET


def test_openstacksdks_block_storage_functional_tests_pass(sandbox, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OS_", "OPENSTACKSDK_"))},
        "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml),
        "OS_CLOUD": "sandbox-admin",
        "OPENSTACKSDK_DEMO_CLOUD": "sandbox",
        "OPENSTACKSDK_DEMO_CLOUD_ALT": "sandbox-password",
        "OPENSTACKSDK_OPERATOR_CLOUD": "sandbox-admin",
        "OPENSTACKSDK_SYSTEM_ADMIN_CLOUD": "sandbox-admin",
        "OPENSTACKSDK_FLAVOR": "m3.tiny",
        "OPENSTACKSDK_IMAGE": "Featured-Ubuntu24",
        # Their per-test timeout (openstack/tests/base.py) is 5 s unless set, as tox sets it.
        "OS_TEST_TIMEOUT": "600",
    }
    report = tmp_path / "junit.xml"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-o",
            "addopts=",
            "-q",
            f"--junitxml={report}",
            "--pyargs",
            "openstack.tests.functional.block_storage.v3",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    cases = ET.parse(report).getroot().iter("testcase")
    failed, skipped, passed = [], [], []
    for case in cases:
        name = f"{case.get('classname')}.{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append((name, case.find("skipped").get("message", "")))
        else:
            passed.append(name)
    assert not failed and out.returncode == 0, out.stdout[-6000:]
    # Only the backups skip: they need an object store (Swift), which the sandbox does not run yet.
    assert all("test_backup" in name and "Object service" in why for name, why in skipped), skipped
    assert len(passed) >= 17, passed

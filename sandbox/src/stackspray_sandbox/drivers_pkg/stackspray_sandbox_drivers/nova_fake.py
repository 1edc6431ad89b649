"""Nova virt driver for the sandbox: nova's fake driver plus boot-fault injection.

Servers "run" only inside nova-compute's memory; the sandbox's node agent turns every ACTIVE
server into a real host. A test makes the next N boots fail (server -> ERROR with a fault)
by writing ``$STACKSPRAY_SANDBOX_FAULTS/boot_error.json``: {"remaining": N, "name_contains": ""}
(or ``boot_error-<project>.json``, one per sandbox lane: every such file is a rule).
"""

import fcntl
import glob
import json
import os

from nova import exception
from nova.virt import fake


def _take_boot_fault(name):
    faults = os.environ.get("STACKSPRAY_SANDBOX_FAULTS")
    if not faults:
        return None
    for path in sorted(glob.glob(os.path.join(faults, "boot_error*.json"))):
        message = _take_from(path, name)
        if message:
            return message
    return None


def _take_from(path, name):
    try:
        fh = open(path, "r+")
    except FileNotFoundError:
        return None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            rule = json.load(fh)
        except ValueError:
            return None
        if rule.get("remaining", 0) <= 0 or rule.get("name_contains", "") not in name:
            return None
        rule["remaining"] -= 1
        fh.seek(0)
        fh.truncate()
        json.dump(rule, fh)
        return rule.get("message", "injected boot failure (stackspray sandbox)")


class FaultInjectingFakeDriver(fake.FakeDriverWithoutFakeNodes):
    def spawn(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        allocations,
        network_info=None,
        block_device_info=None,
        power_on=True,
        accel_info=None,
    ):
        message = _take_boot_fault(instance.display_name or "")
        if message:
            raise exception.BuildAbortException(instance_uuid=instance.uuid, reason=message)
        return super().spawn(
            context,
            instance,
            image_meta,
            injected_files,
            admin_password,
            allocations,
            network_info,
            block_device_info,
            power_on,
            accel_info,
        )

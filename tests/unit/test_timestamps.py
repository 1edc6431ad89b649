"""timestamps.epoch: the one reader of the stamps Kubernetes and our state files write."""

from __future__ import annotations

import pytest

from stackspray.timestamps import epoch


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("1970-01-01T00:01:40Z", 100.0),
        ("2026-12-07T11:22:33Z", 1796642553.0),
        ("2026-12-07T11:22:33.123456Z", 1796642553.0),  # fractional seconds (metav1.MicroTime)
        ("2026-12-07T11:22:33", 1796642553.0),
        (None, None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_epoch(stamp, expected):
    assert epoch(stamp) == expected

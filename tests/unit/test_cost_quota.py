"""Service Unit arithmetic and the quota preflight table."""

from __future__ import annotations

import pytest

from stackspray import cost, quota
from stackspray.errors import QuotaError


@pytest.mark.parametrize(
    "flavor,vcpus,status,su",
    [
        ("m3.medium", 8, "ACTIVE", 8),  # 1 SU per vCPU-hour
        ("r3.large", 64, "ACTIVE", 128),  # large memory x2
        ("g3.small", 4, "ACTIVE", 16),  # GPU x4
        ("m3.medium", 8, "SUSPENDED", 6),  # 75 %
        ("m3.medium", 8, "SHUTOFF", 4),  # 50 %
        ("g3.large", 16, "SHELVED_OFFLOADED", 0),  # shelved costs nothing
        ("m3.quad", 4, "BUILD", 4),  # charged as running
    ],
)
def test_su_per_hour(flavor, vcpus, status, su):
    assert cost.su_per_hour(flavor, vcpus, status) == su


def test_idle_ten_worker_cluster_burns_80_su_per_hour():
    assert sum(cost.su_per_hour("m3.medium", 8, "ACTIVE") for _ in range(10)) == 80
    assert 80 * cost.HOURS_PER_MONTH == 58400


def test_quota_fits_and_unlimited():
    rows = [quota.QuotaRow("cores", 10, 100, 150), quota.QuotaRow("shares", 1, 5, -1)]
    quota.check(rows)


def test_quota_refusal_shows_need_used_limit():
    rows = [quota.QuotaRow("cores", 64, 100, 150), quota.QuotaRow("floating IPs", 1, 3, 10)]
    with pytest.raises(QuotaError) as err:
        quota.check(rows)
    text = str(err.value)
    assert "cores" in text and "64" in text and "100" in text and "150" in text and "EXCEEDED" in text
    assert text.count("EXCEEDED") == 1

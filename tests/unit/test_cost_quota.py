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
        ("g3.small", 4, "ACTIVE", 8),  # GPU x2 (the current instance-flavors page)
        ("m3.medium", 8, "SUSPENDED", 6),  # 75 %
        ("m3.medium", 8, "SHUTOFF", 4),  # 50 %
        ("g3.large", 16, "SHELVED_OFFLOADED", 0),  # shelved costs nothing
        ("m3.quad", 4, "BUILD", 4),  # charged as running
    ],
)
def test_su_per_hour(flavor, vcpus, status, su):
    assert cost.su_per_hour(flavor, vcpus, status) == su


@pytest.fixture
def rates_file(tmp_path, monkeypatch):
    """The user's rates file, in a config folder of this test's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "stackspray" / "su-rates.yaml"
    path.parent.mkdir()
    return path


def test_every_built_in_rate_names_its_source_and_the_gpu_disagreement():
    rates = cost.Rates()
    for fam in ("m3", "r3", "g3"):
        assert "docs.jetstream-cloud.org/general/instance-flavors" in rates.rate(f"{fam}.x").source
    assert "said 4" in rates.rate("g3.small").source
    unknown = rates.rate("x9.huge")
    assert unknown.su_per_vcpu_hour == 1 and "su_rates" in unknown.source


def test_the_user_file_then_the_spec_override_the_table(rates_file):
    rates_file.write_text("g3: 3\nr3: 2.5\n")
    rates = cost.rates_for({"g3": {"su_per_vcpu_hour": 4, "source": "the spec's su_rates (c.yaml)"}})
    assert cost.su_per_hour("g3.medium", 8, "ACTIVE", rates) == 32  # the spec wins over the file
    assert rates.rate("g3.medium").source == "the spec's su_rates (c.yaml)"
    assert cost.su_per_hour("r3.large", 64, "ACTIVE", rates) == 160
    assert rates.rate("r3.large").source == f"your rates file {rates_file}"
    assert rates.rate("m3.tiny") == cost.BUILT_IN["m3"]
    used = rates.used(["m3.tiny", "g3.medium", "g3.small", None])
    assert list(used) == ["g3", "m3"] and used["g3"]["su_per_vcpu_hour"] == 4
    # What an agent on the cluster is given: only what differs from the table, with its source.
    assert cost.shipped({}) == {
        "g3": {"su_per_vcpu_hour": 3.0, "source": f"your rates file {rates_file}"},
        "r3": {"su_per_vcpu_hour": 2.5, "source": f"your rates file {rates_file}"},
    }
    # …and read back the way the agent reads them (as a state's su_rates).
    assert cost.rates_for(cost.shipped({})).rate("g3.x") == cost.Rate(3.0, f"your rates file {rates_file}")


@pytest.mark.parametrize(
    "text,message",
    [
        ("g3: two\n", "g3: SU per vCPU-hour must be a number from 0 to 1000, got 'two'"),
        ("g3: -1\n", "g3: SU per vCPU-hour must be a number from 0 to 1000, got -1"),
        ("g3: true\n", "got True"),
        ("G3.small: 2\n", "G3.small: not a flavor family"),
        ("- g3\n", "must be a mapping of flavor family to SU per vCPU-hour"),
        ("g3: [\n", "not YAML"),
    ],
)
def test_a_bad_rates_file_is_named_with_its_key(rates_file, text, message):
    rates_file.write_text(text)
    with pytest.raises(cost.RatesError) as err:
        cost.rates_for()
    assert str(rates_file) in str(err.value) and message in str(err.value)


def test_no_rates_file_is_the_table(rates_file):
    assert cost.rates_for() == cost.Rates()
    assert cost.shipped() == {}


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

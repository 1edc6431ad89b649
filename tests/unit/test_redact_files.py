"""The redactor scrubs by what the cluster's secrets are, not by the mode their files have now."""

from __future__ import annotations

import yaml

from stackspray import secret_files
from stackspray.redact import Redactor, secrets_of

CREDENTIAL_SECRET = "c2VjcmV0LW9mLXRoZS1jbHVzdGVyLWNyZWRlbnRpYWw"
SHARE_KEY = "AQBshare0key0cephx0value0000000000000000=="


def test_a_secret_file_whose_mode_was_loosened_is_still_scrubbed(tmp_path):
    cred = tmp_path / secret_files.CREDENTIAL
    cred.parent.mkdir(parents=True)
    cred.write_text(yaml.safe_dump({"external_openstack_application_credential_secret": CREDENTIAL_SECRET}))
    (tmp_path / secret_files.SECRETS_DIR).mkdir()
    key = tmp_path / secret_files.SECRETS_DIR / "share-access-key"
    key.write_text(SHARE_KEY)
    for f in (cred, key):
        f.chmod(0o644)  # a chmod, or a restore from a backup that lost the modes
    found = secrets_of(tmp_path)
    assert {CREDENTIAL_SECRET, SHARE_KEY} <= found
    text = Redactor(found).scrub(f"cloud.conf: secret={CREDENTIAL_SECRET} key={SHARE_KEY}")
    assert CREDENTIAL_SECRET not in text and SHARE_KEY not in text


def test_a_world_readable_file_that_is_not_a_secret_file_is_not_read_for_secrets(tmp_path):
    other = tmp_path / "group_vars" / "all" / "stackspray.yml"
    other.parent.mkdir(parents=True)
    other.write_text(yaml.safe_dump({"some_token_name": "x", "cluster_token": "not-a-secret-of-ours-123"}))
    other.chmod(0o644)
    assert "not-a-secret-of-ours-123" not in secrets_of(tmp_path)

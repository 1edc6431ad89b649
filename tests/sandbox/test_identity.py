"""Keystone in the sandbox: password and application-credential auth, the credential life cycle."""

from __future__ import annotations

import datetime as dt
import time

import openstack
import pytest
from conftest import unique
from keystoneauth1 import exceptions as ks_exc
from stackspray_sandbox import lanes
from stackspray_sandbox.services import APIS


def app_cred_connection(cred_id: str, secret: str):
    # load_yaml_config=False: with clouds.yaml present, openstacksdk would merge its password.
    return openstack.connect(
        auth_type="v3applicationcredential",
        auth={
            "auth_url": APIS["keystone"].public_url(),
            "application_credential_id": cred_id,
            "application_credential_secret": secret,
        },
        region_name="RegionOne",
        load_yaml_config=False,
        load_envvars=False,
    )


def test_password_auth_gives_project_scoped_token(sandbox):
    conn = openstack.connect(cloud="sandbox-password")
    token = conn.session.get_token()
    assert token
    assert conn.current_project.name == lanes.project()
    assert conn.identity.get_user(conn.current_user_id).name == lanes.member()


def test_the_sandbox_entry_is_an_unrestricted_application_credential_as_on_jetstream2(sandbox, conn):
    """Jetstream2's command line authenticates with application credentials only."""
    auth = conn.config.get_auth_args()
    assert "application_credential_id" in auth and "password" not in auth
    own = conn.identity.get_application_credential(conn.current_user_id, auth["application_credential_id"])
    # An application-credential token names its project by id only.
    assert (
        own.unrestricted is True
        and conn.identity.get_project(conn.current_project_id).name == lanes.project()
    )
    restricted = openstack.connect(cloud="sandbox-restricted")
    rid = restricted.config.get_auth_args()["application_credential_id"]
    assert (
        restricted.identity.get_application_credential(restricted.current_user_id, rid).unrestricted is False
    )


def test_wrong_password_is_refused(sandbox):
    bad = openstack.connect(
        auth={
            "auth_url": APIS["keystone"].public_url(),
            "username": lanes.member(),
            "password": "not-the-password",
            "project_name": lanes.project(),
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        load_yaml_config=False,
        load_envvars=False,
    )
    with pytest.raises(ks_exc.Unauthorized):
        bad.session.get_token()


def test_application_credential_create_use_delete(conn):
    user = conn.current_user_id
    cred = conn.identity.create_application_credential(user=user, name=unique("test-appcred"))
    try:
        assert cred.secret, "Keystone returns the secret once, at creation"
        ac = app_cred_connection(cred.id, cred.secret)
        # A real read call per service the cluster uses.
        assert isinstance(list(ac.compute.flavors()), list)
        assert ac.network.find_network("public") is not None
        assert isinstance(list(ac.shared_file_system.shares()), list)
    finally:
        conn.identity.delete_application_credential(user, cred.id)
    refused = app_cred_connection(cred.id, cred.secret)
    # Keystone answers a deleted credential with 404 "Could not find Application Credential".
    with pytest.raises((ks_exc.Unauthorized, ks_exc.NotFound)):
        refused.session.get_token()


def test_application_credential_expiry_is_enforced(conn):
    user = conn.current_user_id
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    cred = conn.identity.create_application_credential(
        user=user, name=unique("test-appcred-exp"), expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S")
    )
    try:
        assert cred.expires_at is not None
        app_cred_connection(cred.id, cred.secret).session.get_token()
        time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
        with pytest.raises(ks_exc.Unauthorized):
            app_cred_connection(cred.id, cred.secret).session.get_token()
    finally:
        conn.identity.delete_application_credential(user, cred.id)


def test_restricted_credential_cannot_create_credentials(conn):
    user = conn.current_user_id
    cred = conn.identity.create_application_credential(user=user, name=unique("test-restricted"))
    try:
        ac = app_cred_connection(cred.id, cred.secret)
        with pytest.raises(openstack.exceptions.ForbiddenException):
            ac.identity.create_application_credential(user=user, name=unique("test-child"))
    finally:
        conn.identity.delete_application_credential(user, cred.id)

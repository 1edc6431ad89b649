"""Connections to the cloud: the operator's (a clouds.yaml entry) and a credential's own.

`connect(cloud)` is how every command reaches OpenStack. `connect_with_credential` checks an
application credential on its own: it must not read clouds.yaml or any `OS_*` variable, or the
operator's `OS_CLOUD` (password, or another credential) would be mixed into the check.
"""

from __future__ import annotations

import openstack
from openstack import config as os_config

from .errors import CloudError


def connect(cloud: str):
    """openstacksdk connection to a clouds.yaml entry, authenticated, with errors that say what to do."""
    try:
        conn = openstack.connect(cloud=cloud)
        conn.authorize()
        return conn
    except openstack.exceptions.ConfigException as exc:
        raise CloudError(
            f"cloud {cloud!r}: not found in clouds.yaml ({exc}); set OS_CLOUD or `cloud:`"
        ) from exc
    except Exception as exc:  # keystoneauth errors
        raise CloudError(f"cloud {cloud!r}: cannot authenticate: {exc}") from exc


def connect_with_credential(conn, credential_id: str, secret: str):
    """A connection authenticated with one application credential only, on the same Keystone,
    region and TLS settings as `conn`; clouds.yaml and the environment are not read."""
    base = conn.config.config
    region = os_config.get_cloud_region(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="v3applicationcredential",
        auth={
            "auth_url": conn.config.get_auth_args()["auth_url"],
            "application_credential_id": credential_id,
            "application_credential_secret": secret,
        },
        region_name=conn.config.region_name,
        verify=base.get("verify", True),
        cacert=base.get("cacert"),
        interface=base.get("interface", "public"),
    )
    c = openstack.connection.Connection(config=region)
    c.authorize()
    return c

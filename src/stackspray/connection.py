"""Connections to the cloud: the operator's (a clouds.yaml entry) and a credential's own.

`connect(cloud)` is how every command reaches OpenStack. `connect_with_credential` checks an
application credential on its own: it must not read clouds.yaml or any `OS_*` variable, or the
operator's `OS_CLOUD` (password, or another credential) would be mixed into the check.
"""

from __future__ import annotations

import configparser

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


def connect_cloud_config(path: str) -> tuple[object, str]:
    """A connection with the application credential of a Kubernetes cloud config file (the
    `[Global]` section Kubespray writes for the cloud controller and Cinder CSI: auth-url,
    application-credential-id/-secret, region, ca-file), read now; (connection, credential id).
    Nothing else is read: not clouds.yaml, not the environment."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path) as fh:
            parser.read_file(fh)
        glob = {k: v.strip().strip('"') for k, v in parser["Global"].items()}
        auth = {
            "auth_url": glob["auth-url"],
            "application_credential_id": glob["application-credential-id"],
            "application_credential_secret": glob["application-credential-secret"],
        }
    except (OSError, KeyError, configparser.Error) as exc:
        raise CloudError(
            f"{path}: not a cloud config with an application credential ({exc.__class__.__name__}: {exc})"
        ) from exc
    region = os_config.get_cloud_region(
        load_yaml_config=False,
        load_envvars=False,
        auth_type="v3applicationcredential",
        auth=auth,
        region_name=glob.get("region") or None,
        cacert=glob.get("ca-file") or None,
        interface="public",
    )
    try:
        c = openstack.connection.Connection(config=region)
        c.authorize()
    except Exception as exc:  # keystoneauth errors
        raise CloudError(
            f"the application credential in {path} ({auth['application_credential_id']}) cannot "
            f"authenticate at {auth['auth_url']}: {exc}"
        ) from exc
    return c, auth["application_credential_id"]

"""Which files of a cluster's folder hold secrets — named once, so that what is written 0600, what
the redactor scrubs from output and what destroy-cluster removes are the same list, whatever
mode a file has on disk now (a chmod or a restore from backup must not make a secret visible)."""

from __future__ import annotations

# The cluster credential for the cloud controller and Cinder CSI (Kubespray's group_vars).
CREDENTIAL = "group_vars/all/openstack-credential.yml"
# The share's cephx access key, as the share playbook reads it.
SHARE = "group_vars/all/manila-share-secret.yml"
# The admin kubeconfig: its client key.
KUBECONFIG = "kubeconfig"
ADMIN_CONF = "artifacts/admin.conf"
# Bare secrets (the share's access key as Manila gave it, a credential being rotated).
SECRETS_DIR = "secrets"

FILES = (CREDENTIAL, SHARE, KUBECONFIG, ADMIN_CONF)

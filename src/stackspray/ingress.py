"""Web traffic into the cluster (`ingress:` in the spec): 80/443, a controller, HTTPS certificates.

The security group `<cluster>-ingress` (80 and 443 from `ingress.allowed_cidrs.http`) is the
planner's, beside the others (plan.py). Here `playbooks/ingress.yml` installs the controller —
Traefik's Helm chart, pinned, as a DaemonSet on the host network of the ingress group's nodes —
and applies a Let's Encrypt ClusterIssuer (ACME HTTP-01 through the controller's ingress class)
for Kubespray's cert-manager. Why Traefik: Kubespray v2.31.0 no longer ships ingress-nginx
(kubernetes-sigs/kubespray#12767) and ingress-nginx itself reached end of maintenance in March
2026; Traefik serves the same Ingress objects (zero-to-jupyterhub's `ingress:` among them).

`ingress_files()` is pure: the variables the playbook reads. A fingerprint of them is kept in the
state, so a re-run with nothing changed runs no playbook.
"""

from __future__ import annotations

from . import inventory, kubespray, names
from .cluster_state import ClusterState, Ingress
from .errors import StackSprayError
from .spec import INGRESS_CLASS, ClusterSpec
from .state import ClusterDir
from .target import Target

VARS_FILE = "group_vars/all/ingress.yml"
NAMESPACE = "traefik"
ISSUER = "letsencrypt"
# Traefik's chart, pinned: 41.5.0 carries Traefik Proxy v3.7.13 (traefik/traefik-helm-chart#1997).
CHART = {
    "release": "traefik",
    "repository": "traefik",
    "repository_url": "https://traefik.github.io/charts",
    "ref": "traefik/traefik",
    "version": "41.5.0",
}
HELM = "/usr/local/bin/helm"  # Kubespray's bin_dir (roles/kubespray_defaults), where helm_enabled puts it
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


class IngressNotReady(StackSprayError):
    pass


def chart_values(spec: ClusterSpec) -> dict:
    """The chart's values: one controller pod on each ingress node, bound to 80/443 on the host."""
    ing = spec.ingress
    assert ing is not None
    return {
        "deployment": {"kind": "DaemonSet"},
        "hostNetwork": True,
        "ports": {"web": {"port": 80}, "websecure": {"port": 443}},
        # Ports below 1024 on the host network need NET_BIND_SERVICE and root (the chart's
        # values.yaml, "hostNetwork").
        "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
        "podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0},
        # A host port cannot be held by two pods of one node: replace one node at a time.
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "service": {"type": "ClusterIP"},
        "nodeSelector": {names.GROUP_LABEL: ing.group},
        "tolerations": [{"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        "ingressClass": {"enabled": True, "isDefaultClass": True, "name": INGRESS_CLASS},
    }


def ingress_files(
    spec: ClusterSpec, state: ClusterState, *, kubeconfig: str, target: Target
) -> list[inventory.InventoryFile]:
    """The inventory file playbooks/ingress.yml reads (pure: no I/O)."""
    ing = spec.ingress
    if ing is None:
        raise IngressNotReady(f"the spec of cluster {spec.name} has no `ingress` section")
    variables = {
        "stackspray_kubeconfig": kubeconfig,
        "ingress_chart": CHART,
        "ingress_helm": HELM,
        "ingress_namespace": NAMESPACE,
        "ingress_values": chart_values(spec),
        "ingress_class": INGRESS_CLASS,
        "ingress_tls": ing.tls,
        "ingress_email": ing.email or "",
        "ingress_acme_server": ing.acme_server,
        "ingress_issuer": ISSUER,
        "ingress_labels": {"app.kubernetes.io/managed-by": "stackspray", "stackspray.io/cluster": spec.name},
        # Nodes with no way to the chart repository (the test cloud's) get no chart.
        "ingress_install_chart": target.charts,
    }
    return [
        inventory.InventoryFile(
            VARS_FILE,
            inventory._dump(variables, f"ingress of cluster {spec.name} (playbooks/ingress.yml)"),
            0o644,
        )
    ]


def address(spec: ClusterSpec, state: ClusterState) -> str | None:
    """Where the ingress answers from outside: the floating IP when the control plane serves it,
    else the first ingress node's fixed address (reachable inside the network only)."""
    ing = spec.ingress
    if ing is None:
        return None
    if ing.group == names.CONTROL_PLANE and state.floating_ip:
        return state.floating_ip.address
    nodes = sorted((n for n, s in state.servers.items() if s.group == ing.group), key=names.natural_key)
    return state.servers[nodes[0]].fixed_ip if nodes else None


def url(spec: ClusterSpec, state: ClusterState) -> str | None:
    """The URL users open: the DNS name when there is one, else the address over HTTP."""
    ing = spec.ingress
    if ing is None:
        return None
    if ing.url:
        return ing.url
    where = address(spec, state)
    return f"http://{where}/" if where else None


def forget(cdir: ClusterDir) -> None:
    """The spec has no `ingress` any more: its variables leave the inventory (the security group
    is closed by the planner; the controller release and the issuer stay, see docs/jupyterhub.md)."""
    (cdir.path / VARS_FILE).unlink(missing_ok=True)
    state = cdir.load()
    if state.ingress is not None:
        state.ingress = None
        cdir.save(state)


def setup_ingress(
    conn,
    spec: ClusterSpec,
    cdir: ClusterDir,
    say,
    target: Target,
    *,
    force: bool = False,
    forks: int | None = None,
) -> dict:
    """Run playbooks/ingress.yml unless what it would apply was applied already."""
    state = cdir.load()
    kubeconfig = state.kubeconfig
    if not kubeconfig:
        raise IngressNotReady(f"cluster {spec.name} has no kubeconfig yet: run create-cluster first")
    files = ingress_files(spec, state, kubeconfig=kubeconfig, target=target)
    digest = inventory.fingerprint(files)
    result = {"url": url(spec, state), "address": address(spec, state), "ran": False}
    if not force and state.ingress is not None and state.ingress.applied == digest:
        say(f"ingress: set up already ({result['url']})")
        return result
    kubespray.write_inventory(conn, spec, cdir, say, target)
    inventory.write(cdir.path, files)
    if not target.charts:
        say(f"{target.name}: the ingress controller chart is not installed (no chart repository here)")
    kubespray.run_ours("ingress.yml", cdir, say, forks=forks)
    state = cdir.load()
    state.ingress = Ingress(applied=digest, url=result["url"], address=result["address"])
    cdir.save(state)
    say(f"ingress: {result['url']}" + (" (certificates from Let's Encrypt)" if spec.ingress.tls else ""))
    result["ran"] = True
    return result

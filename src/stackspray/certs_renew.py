"""`invoke certs.renew`: the control plane's certificates renewed now, the operator's kubeconfig
issued again, the new dates read back from where clients see them.

The work on the nodes is playbooks/certs-renew.yml (Kubespray's k8s-certs-renew.sh.j2 without its
"not due yet" skip, then Kubespray's kubeconfig_localhost step); this module holds the lock, runs
it, writes the kubeconfig (0600) and checks with `certs.check` that the API server now presents a
later certificate — a renewal that changed nothing is an error, not a success.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import certs, inventory, kubeconfig_refresh
from .errors import StackSprayError
from .hibernate_plan import refuse_if_hibernated
from .kubespray import run_ours
from .progress import Progress
from .state import ClusterDir


@dataclass
class RenewResult:
    """The certificates before and after, and the run's log."""

    cluster: str
    before: list[dict] = field(default_factory=list)
    after: list[dict] = field(default_factory=list)
    kubeconfig: str = ""
    log: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _serving(expiries: list[certs.Expiry]) -> certs.Expiry | None:
    return next((e for e in expiries if e.what == certs.SERVING), None)


def renew(name: str, *, root: Path | None = None, progress: Progress | None = None) -> RenewResult:
    """Renew the cluster's control-plane certificates and its kubeconfig; raise when the API server
    does not present a later certificate afterwards."""
    say = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if state.hibernation is not None and state.hibernation.phase != "waking":
        refuse_if_hibernated(state, "certs.renew")
    hosts = cdir.path / inventory.HOSTS_FILE
    if not state.kubeconfig or not hosts.exists():
        raise StackSprayError(
            f"cluster {name!r} has no Kubernetes to renew certificates of (no kubeconfig or inventory in "
            f"{cdir.path}): run `invoke create-cluster` first"
        )
    with cdir.command("certs.renew") as run:
        before = certs.check(state.kubeconfig, name)
        was = _serving(before)
        say(f"before: {was.what}: {was.detail}" if was else "before: no serving certificate read")
        run_ours("certs-renew.yml", cdir, say)
        kubeconfig_refresh.write_issued(cdir)
        after = certs.check(state.kubeconfig, name)
        now = _serving(after)
        say(f"after: {now.what}: {now.detail}" if now else "after: no serving certificate read")
        if (
            now is None
            or now.level != "ok"
            or (was is not None and was.not_after and now.not_after and now.not_after <= was.not_after)
        ):
            raise StackSprayError(
                f"certs.renew ran on the control plane, but the API server presents "
                f"{now.detail if now else 'no certificate'}: see {run.log}"
            )
        return RenewResult(
            name, [e.to_dict() for e in before], [e.to_dict() for e in after], state.kubeconfig, str(run.log)
        )

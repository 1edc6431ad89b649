"""The SSH keypair the servers boot with: uploaded from `keypair.public_key_file`, or the
spec's existing keypair (never changed). Keypairs carry no marks: destroy deletes only the one
the state file says stackspray uploaded."""

from __future__ import annotations

from ..cloudops import act, ensure, read
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res

KIND = "keypair"
DEPENDS_ON: tuple[str, ...] = ()


def needs(spec: ClusterSpec | None) -> set[str]:
    return set() if spec is None else {"keypair"}


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    kp = view.get("keypair")
    if kp is not None:
        obs.keypair = Res(kp.name, kp.name, True, "", {"fingerprint": kp.fingerprint})


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    kp = spec.keypair
    if kp.public_key_file is None:
        return [Action("noop", KIND, kp.name, "existing keypair from the spec")]
    if obs.keypair is None:
        return [Action("create", KIND, kp.name, f"upload {kp.public_key_file}")]
    return [Action("noop", KIND, kp.name, "uploaded")]


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    if not any(a.kind == "create" for a in actions):
        return
    kp = ctx.spec.keypair
    public = kp.public_key_file.read_text().strip()
    _, created = ensure(
        lambda: ctx.api.find("keypair", kp.name),
        lambda: ctx.api.create("keypair", name=kp.name, public_key=public),
        f"keypair {kp.name}",
    )
    if created:
        ctx.say(f"uploaded keypair {kp.name}")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    """Only the keypair the state says stackspray uploaded (`known["keypair"]`)."""
    name = known.get("keypair")
    if not name:
        return []
    kp = read(lambda: view.api.find("keypair", name), "find keypair")
    return [Res(kp.name, kp.name, True)] if kp is not None else []


def delete(api, a: Action) -> None:
    act(lambda: api.delete("keypair", a.detail["id"]), f"delete keypair {a.name}")

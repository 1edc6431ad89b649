"""The cluster's servers `<c>-<group>-<n>`, one per node, each booted on its own port in its
group's server group with the metadata marks `stackspray-cluster` and `stackspray-group`.

A server in ERROR is deleted and booted again (up to `BOOT_ATTEMPTS` times, the fault in the
message); a group's count lowered removes its highest-numbered servers (never the first
control-plane node). Flavor differences are reported, not resized."""

from __future__ import annotations

import re

from .. import names
from ..cloudops import SERVER_TIMEOUT, act, ensure, read, wait_gone, wait_until
from ..errors import CloudError, Conflict
from ..names import META_CLUSTER, META_GROUP, owns_by_metadata
from ..spec import ClusterSpec, NodeGroup
from .base import Action, ApplyContext, Lookups, Observed, Res, have, results
from .server_group import server_group_of

KIND = "server"
DEPENDS_ON = ("port", "server-group", "keypair")
BOOT_ATTEMPTS = 3


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"servers"}


def flavor_name(server) -> str | None:
    flavor = server.flavor or {}
    if isinstance(flavor, dict):
        return flavor.get("original_name") or flavor.get("name")
    return getattr(flavor, "original_name", None) or getattr(flavor, "name", None)


def index(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def removed_servers(spec: ClusterSpec, group: NodeGroup, obs: Observed) -> list[str]:
    """The group's servers beyond its count, highest index first (the first control-plane node
    is never among them: it is a conflict)."""
    wanted = set(spec.server_names(group))
    extra = sorted(
        (
            n
            for n, s in obs.servers.items()
            if s.owned and s.detail.get("group") == group.name and n not in wanted
        ),
        key=index,
        reverse=True,
    )
    return [n for n in extra if not (group.is_control_plane and index(n) == 1)]


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    c = spec.name
    wanted = {n for g in spec.node_groups for n in spec.server_names(g)}
    for s in view.get("servers"):
        owned = owns_by_metadata(s, c)
        if not owned and s.name not in wanted:
            continue  # another cluster's (or someone's) server that merely shares the prefix
        if s.name in obs.servers and obs.servers[s.name].owned and owned:
            raise Conflict(
                f"two servers of cluster {c} are named {s.name} ({obs.servers[s.name].id}, {s.id}): "
                "delete the one that should not exist and re-run"
            )
        if s.name in obs.servers and not owned:
            continue  # keep the owned one
        meta = s.metadata or {}
        obs.servers[s.name] = Res(
            s.id,
            s.name,
            owned,
            s.status,
            {
                "flavor": flavor_name(s),
                "group": meta.get(META_GROUP),
                "addresses": s.addresses,
                "fault": (s.fault or {}).get("message") if s.status == "ERROR" else None,
            },
        )


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    acts: list[Action] = []
    for group in spec.node_groups:
        sg_of = server_group_of(spec, group, obs.server_group_limit)
        for sname in spec.server_names(group):
            boot = {
                "group": group.name,
                "flavor": group.flavor,
                "port": names.port(sname),
                "server_group": sg_of[sname],
                "boot_volume_gb": group.boot_volume_gb,
            }
            srv = obs.servers.get(sname)
            if srv is None:
                acts.append(Action("create", KIND, sname, "missing", boot))
            elif not srv.owned:
                have(acts, spec.name, KIND, sname, srv)
            elif srv.status == "ERROR":
                acts.append(
                    Action(
                        "delete",
                        KIND,
                        sname,
                        "in ERROR: delete and boot again",
                        {"recreate": True, "id": srv.id},
                    )
                )
                acts.append(Action("create", KIND, sname, "replaces the server in ERROR", boot))
            else:
                why = f"{srv.status.lower()}" + (
                    f"; flavor {srv.detail.get('flavor')} differs from spec {group.flavor} (not resized)"
                    if srv.detail.get("flavor") not in (None, group.flavor)
                    else ""
                )
                acts.append(Action("noop", KIND, sname, why))
        for sname in removed_servers(spec, group, obs):
            acts.append(
                Action(
                    "delete",
                    KIND,
                    sname,
                    f"beyond {group.name}.count={group.count}",
                    {"id": obs.servers[sname].id},
                )
            )
        if group.is_control_plane:
            first = names.server(spec.name, group.name, 1)
            s = obs.servers.get(first)
            if s is not None and s.owned and s.detail.get("group") == group.name and first not in sg_of:
                acts.append(Action("conflict", KIND, first, "the first control-plane node cannot be removed"))
    return acts


# -- applying -----------------------------------------------------------------------------------


def _find(api, cluster: str, name: str):
    for s in api.list("server", name=f"^{re.escape(name)}$"):
        if owns_by_metadata(s, cluster):
            return s
    return None


def _image(ctx: ApplyContext):
    name = ctx.spec.image
    return ctx.looked_up(f"image {name}", lambda: ctx.api.find("image", name))


def _flavor(ctx: ApplyContext, name: str):
    return ctx.looked_up(f"flavor {name}", lambda: ctx.api.find("flavor", name))


def prefetch(ctx: ApplyContext, actions: list[Action]) -> None:
    """The image and flavors the boots need, looked up while the network is made."""
    if any(a.kind == "create" for a in actions):
        ctx.pool.submit(_image, ctx)
        for flavor in sorted({a.detail["flavor"] for a in actions if a.kind == "create"}):
            ctx.pool.submit(_flavor, ctx, flavor)


def _boot(ctx: ApplyContext, a: Action):
    api, spec = ctx.api, ctx.spec
    image, flavor = _image(ctx), _flavor(ctx, a.detail["flavor"])
    kwargs = dict(
        name=a.name,
        flavor_id=flavor.id,
        key_name=spec.keypair.name,
        networks=[{"port": ctx.ids[f"port:{a.detail['port']}"]}],
        metadata={META_CLUSTER: spec.name, META_GROUP: a.detail["group"]},
    )
    sg = ctx.ids.get(f"sgroup:{a.detail['server_group']}")
    if sg:
        kwargs["scheduler_hints"] = {"group": sg}
    if a.detail.get("boot_volume_gb"):
        kwargs["block_device_mapping_v2"] = [
            {
                "boot_index": 0,
                "uuid": image.id,
                "source_type": "image",
                "destination_type": "volume",
                "volume_size": a.detail["boot_volume_gb"],
                "delete_on_termination": True,
            }
        ]
    else:
        kwargs["image_id"] = image.id
    server, created = ensure(
        lambda: _find(api, spec.name, a.name),
        lambda: api.create("server", **kwargs),
        f"server {a.name}",
        known_absent=True,  # the plan's create, or a replacement whose deletion was waited for
    )
    if created:
        ctx.say(f"booting {a.name} ({a.detail['flavor']})")
    return server


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    """Boot the planned servers at once and wait for all with one shared listing per look; a
    server that lands in ERROR is deleted and booted again."""
    creates = [a for a in actions if a.kind == "create"]
    if not creates:
        return
    api, c = ctx.api, ctx.spec.name
    pending = {a.name: a for a in creates}
    attempts = dict.fromkeys(pending, 1)
    results([ctx.pool.submit(_boot, ctx, a) for a in creates])
    faults: dict[str, str] = {}
    while pending:

        def check():
            listed = api.list("server", name=f"^{re.escape(c)}-")
            ctx.listed_servers = listed
            mine = [s for s in listed if owns_by_metadata(s, c)]
            found = {s.name: s for s in mine if s.name in pending}
            done = {n: s for n, s in found.items() if s.status in ("ACTIVE", "ERROR")}
            return done or None

        done = wait_until(
            lambda: read(check, "poll servers"), f"servers {sorted(pending)} to boot", timeout=SERVER_TIMEOUT
        )
        exhausted = []
        for name, s in done.items():
            if s.status == "ACTIVE":
                ctx.say(f"{name} ACTIVE")
                pending.pop(name)
                continue
            fault = (s.fault or {}).get("message", "no fault recorded")
            faults[name] = fault
            if attempts[name] >= BOOT_ATTEMPTS:
                exhausted.append(name)
                continue
            ctx.say(
                f"{name} went to ERROR ({fault}); deleting and booting again "
                f"(attempt {attempts[name] + 1}/{BOOT_ATTEMPTS})"
            )
            _delete_and_wait(api, s.id, name, timeout=300)
            attempts[name] += 1
            _boot(ctx, pending[name])
        # Only a server whose last boot was seen in ERROR has used its attempts: one booted again
        # just now (its third) is waited for on the next look, not given up on.
        if exhausted:
            detail = "; ".join(f"{n}: {faults[n]}" for n in exhausted)
            raise CloudError(
                f"server(s) failed to boot {BOOT_ATTEMPTS} times: {detail}. They are left in ERROR "
                "for inspection; re-run create-cluster to replace them."
            )


def _delete_and_wait(api, server_id: str, name: str, timeout: float) -> None:
    act(lambda: api.delete("server", server_id), f"delete server {name}")
    wait_gone(lambda: api.find("server", server_id), f"server {name} deleted", timeout=timeout)


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [Res(s.id, s.name, True, s.status) for s in view.get("servers") if owns_by_metadata(s, cluster)]


def delete(api, a: Action) -> None:
    _delete_and_wait(api, a.detail["id"], a.name, timeout=600)

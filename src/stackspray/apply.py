"""Carrying out a plan against the cloud, in dependency order, concurrently where independent.

Phases: network → security groups, keypair, server groups → removals → ports → servers (one
shared wait with backoff; a server that lands in ERROR is deleted and booted again up to
`BOOT_ATTEMPTS` times, the fault in the message) → floating IP. The share and its access rule
are independent of all that and run beside it. Every create goes through `cloudops.ensure`,
so an interrupted run is finished by running again.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from . import dns, names
from .cloudops import PARALLEL, SERVER_TIMEOUT, act, ensure, read, wait_gone, wait_until
from .cluster_state import Server
from .errors import CloudError, Conflict, NotFound
from .names import ADOPTED_TAG, META_CLUSTER, META_GROUP, is_owned, owns_by_metadata
from .observe import flavor_name, rule_tuple, sg_rules
from .plan import DESTROY_ORDER, OWNER_TAG, Action, cluster_tag
from .progress import Progress
from .spec import ClusterSpec
from .state import ClusterDir

log = logging.getLogger(__name__)

BOOT_ATTEMPTS = 3


class Applier:
    def __init__(self, conn, spec: ClusterSpec, cdir: ClusterDir, progress: Progress) -> None:
        self.conn = conn
        self.spec = spec
        self.cdir = cdir
        self.say = progress
        self.tag = cluster_tag(spec.name)
        self.tags = names.owner_tags(spec.name)
        self.ids: dict[str, str] = {}
        self.found: dict[str, object] = {}
        # The cluster's servers as the last wait listed them, once every boot is done (None: no
        # server was booted): record_state uses it instead of listing them again.
        self.listed_servers: list | None = None
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL)
        self.state_lock = threading.Lock()
        self.lookup_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _owned(self, items, name: str):
        return next((i for i in items if i.name == name and is_owned(i, self.spec.name)), None)

    def _tag(self, res) -> None:
        if set(self.tags) - set(getattr(res, "tags", None) or []):
            act(
                lambda: self.conn.network.set_tags(res, sorted(set(self.tags) | set(res.tags or []))),
                f"tag {res.name}",
            )

    def _neutron_ensure(self, kind: str, name: str, lister, creator, known_absent: bool = False):
        res, created = ensure(
            lambda: self._owned(lister(), name), creator, f"{kind} {name}", known_absent=known_absent
        )
        self._tag(res)
        if created:
            self.say(f"created {kind} {name}")
        return res

    # -- phases ------------------------------------------------------------------------------

    def run(self, actions: list[Action]) -> None:
        by = {}
        for a in actions:
            by.setdefault((a.resource, a.kind), []).append(a)
        boots = by.get(("server", "create"), [])
        if boots:  # the image and flavors are looked up while the network is made
            self.pool.submit(self._image)
            for flavor in sorted({a.detail["flavor"] for a in boots}):
                self.pool.submit(self._flavor, flavor)
        share_job: Future | None = None
        if self.spec.share and any(
            a.resource in ("share", "access-rule") and a.kind != "noop" for a in actions
        ):
            share_job = self.pool.submit(self.share, actions)
        # The network, security groups, keypair and server groups do not depend on each other.
        jobs = [self.pool.submit(self.network, actions)]
        jobs += [
            self.pool.submit(self.security_group, a)
            for a in actions
            if a.resource == "security-group" and a.kind in ("create", "update")
        ]
        if ("keypair", "create") in by:
            jobs.append(self.pool.submit(self.keypair))
        jobs += [self.pool.submit(self.server_group, a) for a in by.get(("server-group", "create"), [])]
        _results(jobs)
        _results([self.pool.submit(self.security_group_ids), self.pool.submit(self.server_group_ids)])
        _results([self.pool.submit(self.delete_server, a) for a in by.get(("server", "delete"), [])])
        _results([self.pool.submit(self.delete_port, a) for a in by.get(("port", "delete"), [])])
        _results([self.pool.submit(self.port, a) for a in by.get(("port", "create"), [])])
        _results([self.pool.submit(self.port_security_groups, a) for a in by.get(("port", "update"), [])])
        self.port_ids()
        # The floating IP goes on the control-plane node's port while the servers boot (Neutron
        # associates it with a port whether or not a server is bound to it yet).
        fip_jobs = [
            self.pool.submit(self.floating_ip, a)
            for a in by.get(("floating-ip", "create"), []) + by.get(("floating-ip", "update"), [])
        ]
        try:
            self.servers(by.get(("server", "create"), []))
        finally:
            _results(fip_jobs)
        for a in by.get(("dns-record", "delete"), []):
            dns.delete_record(self.conn, a.detail["id"], a.detail["zone_id"], a.name)
            self.say(f"deleted DNS record {a.name}")
        for a in by.get(("dns-record", "create"), []) + by.get(("dns-record", "update"), []):
            fip = next(
                (
                    f
                    for f in read(lambda: list(self.conn.network.ips()), "list floating IPs")
                    if is_owned(f, self.spec.name)
                ),
                None,
            )
            if fip is None:
                raise CloudError(f"DNS record {a.name}: the cluster has no floating IP to point it at")
            dns.ensure_record(
                self.conn, self.spec.name, a.detail["zone"], a.name, fip.floating_ip_address, self.say
            )
        if share_job is not None:
            share_job.result()

    def network(self, actions: list[Action]) -> None:
        net = self.conn.network
        c = self.spec.name
        if self.spec.network.existing:
            n = read(lambda: net.find_network(self.spec.network.existing), "find network")
            self.ids["network"] = n.id
            subnets = read(lambda: list(net.subnets(network_id=n.id, ip_version=4)), "list subnets")
            if not subnets:
                raise CloudError(f"network {self.spec.network.existing} has no IPv4 subnet")
            self.ids["subnet"] = subnets[0].id
            return
        d = self.tag  # the description: an ownership mark set atomically at creation
        net_name, sub_name, router_name = names.network(c), names.subnet(c), names.router(c)
        n = self._neutron_ensure(
            "network",
            net_name,
            lambda: net.networks(name=net_name),
            lambda: net.create_network(name=net_name, description=d),
        )
        self.ids["network"] = n.id
        s = self._neutron_ensure(
            "subnet",
            sub_name,
            lambda: net.subnets(name=sub_name),
            lambda: net.create_subnet(
                name=sub_name,
                network_id=n.id,
                ip_version=4,
                cidr=self.spec.network.cidr,
                description=d,
                dns_nameservers=list(self.spec.network.dns_nameservers),
            ),
        )
        self.ids["subnet"] = s.id
        target = next((a for a in actions if a.resource == "router-interface"), None)
        if target is not None and target.kind == "noop" and target.detail.get("router_id"):
            self.ids["router"] = target.detail["router_id"]
            return  # the plan saw the subnet on its router a moment ago
        own = any(a.resource == "router" and a.kind == "create" for a in actions)
        if target is not None and target.detail.get("router_id") and not own:
            # The project's router (or our own from an earlier run): attach to it, never change it.
            r = read(lambda: net.get_router(target.detail["router_id"]), f"read router {target.name}")
            router_name = r.name
        else:
            ext = read(lambda: net.find_network(self.spec.network.external_network), "find external network")
            r = self._neutron_ensure(
                "router",
                router_name,
                lambda: net.routers(name=router_name),
                lambda: net.create_router(
                    name=router_name, description=d, external_gateway_info={"network_id": ext.id}
                ),
            )
        self.ids["router"] = r.id

        def attached() -> bool:
            ifaces = read(
                lambda: list(net.ports(device_id=r.id, device_owner="network:router_interface")),
                "list router interfaces",
            )
            return any(ip["subnet_id"] == s.id for p in ifaces for ip in p.fixed_ips)

        if not attached():
            try:
                act(
                    lambda: net.add_interface_to_router(r, subnet=s.id), f"attach {sub_name} to {router_name}"
                )
            except CloudError:
                # An earlier attempt whose answer was lost may have attached it: look, don't guess.
                if not attached():
                    raise
            self.say(f"attached {sub_name} to {router_name}")

    def security_group(self, a: Action) -> None:
        net = self.conn.network
        sg = self._neutron_ensure(
            "security group",
            a.name,
            lambda: net.security_groups(name=a.name),
            lambda: net.create_security_group(name=a.name, description=self.tag),
        )
        current = read(lambda: net.get_security_group(sg.id), f"read {a.name}")
        have = {tuple(r) for r in sg_rules(current)}
        add = a.detail.get("rules") or a.detail.get("add") or []
        for rule in add:
            if tuple(rule) in have:
                continue
            direction, ether, proto, pmin, pmax, cidr, group = rule
            body = {"security_group_id": sg.id, "direction": direction, "ethertype": ether}
            if proto:
                body.update(protocol=proto, port_range_min=pmin, port_range_max=pmax)
            if cidr:
                body["remote_ip_prefix"] = cidr
            if group == "self":
                body["remote_group_id"] = sg.id
            try:
                act(lambda b=body: net.create_security_group_rule(**b), f"rule on {a.name}")
            except Conflict:
                pass  # Neutron's SecurityGroupRuleExists: an earlier attempt created it
        for rule in a.detail.get("remove", []):
            for r in current.security_group_rules:
                if r["direction"] == "ingress" and rule_tuple(r, sg.id) == tuple(rule):
                    act(
                        lambda rid=r["id"]: net.delete_security_group_rule(rid, ignore_missing=True),
                        f"remove rule from {a.name}",
                    )
        self.say(f"security group {a.name}: {len(add)} rule(s) ensured")

    def security_group_ids(self) -> None:
        wanted = set(names.security_groups(self.spec.name))
        for sg in read(lambda: list(self.conn.network.security_groups()), "list security groups"):
            if sg.name in wanted and is_owned(sg, self.spec.name):
                self.ids[f"sg:{sg.name}"] = sg.id

    def keypair(self) -> None:
        kp = self.spec.keypair
        public = kp.public_key_file.read_text().strip()
        _, created = ensure(
            lambda: self.conn.compute.find_keypair(kp.name),
            lambda: self.conn.compute.create_keypair(name=kp.name, public_key=public),
            f"keypair {kp.name}",
        )
        if created:
            self.say(f"uploaded keypair {kp.name}")

    def server_group(self, a: Action) -> None:
        compute = self.conn.compute

        def find():
            return next((g for g in compute.server_groups() if g.name == a.name), None)

        group, created = ensure(
            find,
            lambda: compute.create_server_group(name=a.name, policy="soft-anti-affinity"),
            f"server group {a.name}",
        )
        self._remember("server_groups", a.name, group.id)
        if created:
            self.say(f"created server group {a.name}")

    def _remember(self, section: str, name: str, rid: str) -> None:
        """Record an id in the state file at once (server groups carry no ownership mark)."""
        with self.state_lock:
            state = self.cdir.load()
            getattr(state, section)[name] = rid
            self.cdir.save(state)

    def server_group_ids(self) -> None:
        for g in read(lambda: list(self.conn.compute.server_groups()), "list server groups"):
            if any(names.is_server_group(self.spec.name, grp.name, g.name) for grp in self.spec.node_groups):
                self.ids[f"sgroup:{g.name}"] = g.id

    def port(self, a: Action) -> None:
        net = self.conn.network
        body = dict(
            name=a.name,
            network_id=self.ids["network"],
            description=self.tag,
            fixed_ips=[{"subnet_id": self.ids["subnet"]}],
            security_group_ids=[self.ids[f"sg:{n}"] for n in a.detail["security_groups"]],
            allowed_address_pairs=[{"ip_address": c} for c in a.detail["allowed_address_pairs"]],
        )
        self._neutron_ensure(
            "port", a.name, lambda: net.ports(name=a.name), lambda: net.create_port(**body), known_absent=True
        )

    def port_security_groups(self, a: Action) -> None:
        """Put the cluster's groups the plan wants on a port; a group that is not the cluster's
        (one the user added) stays."""
        net = self.conn.network
        port = read(lambda: net.get_port(a.detail["id"]), f"read port {a.name}")
        ours = {self.ids[f"sg:{n}"] for n in names.security_groups(self.spec.name) if f"sg:{n}" in self.ids}
        keep = [i for i in port.security_group_ids or [] if i not in ours]
        wanted = keep + [self.ids[f"sg:{n}"] for n in a.detail["security_groups"]]
        act(lambda: net.update_port(port, security_group_ids=wanted), f"security groups of {a.name}")
        self.say(f"port {a.name}: security groups {', '.join(a.detail['security_groups'])}")

    def port_ids(self) -> None:
        for p in read(lambda: list(self.conn.network.ports(network_id=self.ids["network"])), "list ports"):
            if is_owned(p, self.spec.name):
                self.ids[f"port:{p.name}"] = p.id

    def _find_server(self, name: str):
        for s in self.conn.compute.servers(name=f"^{re.escape(name)}$"):
            if owns_by_metadata(s, self.spec.name):
                return s
        return None

    def _looked_up(self, key: str, find):
        """One look-up per run for what every server needs (the image, each flavor)."""
        with self.lookup_lock:
            if key not in self.found:
                self.found[key] = read(find, f"find {key}")
            return self.found[key]

    def _image(self):
        name = self.spec.image
        return self._looked_up(f"image {name}", lambda: self.conn.image.find_image(name))

    def _flavor(self, name: str):
        return self._looked_up(f"flavor {name}", lambda: self.conn.compute.find_flavor(name))

    def _boot(self, a: Action):
        compute = self.conn.compute
        image, flavor = self._image(), self._flavor(a.detail["flavor"])
        kwargs = dict(
            name=a.name,
            flavor_id=flavor.id,
            key_name=self.spec.keypair.name,
            networks=[{"port": self.ids[f"port:{a.detail['port']}"]}],
            metadata={META_CLUSTER: self.spec.name, META_GROUP: a.detail["group"]},
        )
        sg = self.ids.get(f"sgroup:{a.detail['server_group']}")
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
            lambda: self._find_server(a.name),
            lambda: compute.create_server(**kwargs),
            f"server {a.name}",
            known_absent=True,  # the plan's create, or a replacement whose deletion was waited for
        )
        if created:
            self.say(f"booting {a.name} ({a.detail['flavor']})")
        return server

    def servers(self, creates: list[Action]) -> None:
        if not creates:
            return
        pending = {a.name: a for a in creates}
        attempts = dict.fromkeys(pending, 1)
        _results([self.pool.submit(self._boot, a) for a in creates])
        faults: dict[str, str] = {}
        while pending:

            def check():
                listed = list(self.conn.compute.servers(name=f"^{re.escape(self.spec.name)}-"))
                self.listed_servers = listed
                mine = [s for s in listed if owns_by_metadata(s, self.spec.name)]
                found = {s.name: s for s in mine if s.name in pending}
                done = {n: s for n, s in found.items() if s.status in ("ACTIVE", "ERROR")}
                return done or None

            done = wait_until(
                lambda: read(check, "poll servers"),
                f"servers {sorted(pending)} to boot",
                timeout=SERVER_TIMEOUT,
            )
            for name, s in done.items():
                if s.status == "ACTIVE":
                    self.say(f"{name} ACTIVE")
                    pending.pop(name)
                    continue
                fault = (s.fault or {}).get("message", "no fault recorded")
                faults[name] = fault
                if attempts[name] >= BOOT_ATTEMPTS:
                    continue
                self.say(
                    f"{name} went to ERROR ({fault}); deleting and booting again "
                    f"(attempt {attempts[name] + 1}/{BOOT_ATTEMPTS})"
                )
                act(lambda s=s: self.conn.compute.delete_server(s, ignore_missing=True), f"delete {name}")
                wait_gone(lambda s=s: self.conn.compute.find_server(s.id), f"{name} deleted", timeout=300)
                attempts[name] += 1
                self._boot(pending[name])
            failed = [
                n for n in pending if attempts[n] >= BOOT_ATTEMPTS and n in done and done[n].status == "ERROR"
            ]
            if failed:
                detail = "; ".join(f"{n}: {faults[n]}" for n in failed)
                raise CloudError(
                    f"server(s) failed to boot {BOOT_ATTEMPTS} times: {detail}. They are left in ERROR "
                    "for inspection; re-run create-cluster to replace them."
                )

    def delete_server(self, a: Action) -> None:
        s = read(lambda: self._find_server(a.name), f"find {a.name}")
        if s is None:
            return
        act(lambda: self.conn.compute.delete_server(s, ignore_missing=True), f"delete server {a.name}")
        wait_gone(lambda: self._find_server(a.name), f"{a.name} deleted", timeout=300)
        self.say(f"deleted server {a.name} ({a.reason})")

    def delete_port(self, a: Action) -> None:
        for p in read(lambda: list(self.conn.network.ports(name=a.name)), f"find {a.name}"):
            if is_owned(p, self.spec.name):
                act(
                    lambda p=p: self.conn.network.delete_port(p, ignore_missing=True), f"delete port {a.name}"
                )

    def floating_ip(self, a: Action) -> None:
        net = self.conn.network
        port_id = self.ids[f"port:{names.port(a.detail['server'])}"]
        if a.kind == "update":
            # By the mark, not the tags alone: a run killed between the create and the tagging
            # left a floating IP with only the description mark.
            listed = read(lambda: list(net.ips()), "list floating IPs")
            fip = next((f for f in listed if is_owned(f, self.spec.name)), None)
            if fip is None:
                raise CloudError(
                    f"floating IP {a.name}: gone since the plan was made (released by someone?): re-run"
                )
            self._tag(fip)
        elif "adopt" in a.detail:
            fip = read(lambda: next(iter(net.ips(floating_ip_address=a.detail["adopt"])), None), "find FIP")
            if fip is None:
                raise CloudError(f"floating IP {a.detail['adopt']} is not allocated to this project")
            act(
                lambda: net.set_tags(fip, sorted(set(fip.tags or []) | set(self.tags) | {ADOPTED_TAG})),
                "tag adopted floating IP",
            )
        else:
            ext = read(lambda: net.find_network(self.spec.network.external_network), "find external network")
            fip, _ = ensure(
                lambda: next((f for f in net.ips() if is_owned(f, self.spec.name)), None),
                lambda: net.create_ip(floating_network_id=ext.id, description=self.tag),
                "floating IP",
            )
            self._tag(fip)
        act(lambda: net.update_ip(fip, port_id=port_id), "associate floating IP")
        self.say(f"floating IP {fip.floating_ip_address} on {a.detail['server']}")

    def share(self, actions: list[Action]) -> None:
        sfs = self.conn.shared_file_system
        sh_spec = self.spec.share
        name = names.share(self.spec.name)
        for a in actions:
            if a.resource == "share" and a.kind == "delete":
                old = self._find_share(name)
                if old is not None:
                    act(lambda old=old: sfs.delete_share(old), f"delete share {name}")
                    wait_gone(lambda: self._find_share(name), f"{name} deleted", timeout=300)

        share, created = ensure(
            lambda: self._find_share(name),
            lambda: sfs.create_share(
                name=name,
                size=sh_spec.size_gb,
                share_proto="CEPHFS",
                share_type=sh_spec.share_type,
                metadata={META_CLUSTER: self.spec.name},
            ),
            f"share {name}",
        )
        if created:
            self.say(f"creating share {name} ({sh_spec.size_gb} GiB)")

        def available():
            s = read(lambda: sfs.get_share(share.id), f"read share {name}")
            if s.status == "error":
                raise CloudError(f"share {name} went to error; re-run to replace it")
            return s if s.status == "available" else None

        wait_until(available, f"share {name} available", timeout=600)

        def find_rule():
            return next((r for r in sfs.access_rules(share) if r.access_to == sh_spec.access_rule), None)

        rule, _ = ensure(
            find_rule,
            lambda: sfs.create_access_rule(
                share.id, access_to=sh_spec.access_rule, access_type="cephx", access_level="rw"
            ),
            f"access rule {sh_spec.access_rule}",
        )

        def active():
            r = read(lambda: sfs.get_access_rule(rule.id), "read access rule")
            if r.state == "error":
                raise CloudError(f"access rule {sh_spec.access_rule} went to error")
            return r if r.state == "active" and r.access_key else None

        rule = wait_until(active, f"access rule {sh_spec.access_rule} active", timeout=300)
        self.cdir.write_secret("share-access-key", rule.access_key)
        self.say(f"share {name} ready; access key stored in {self.cdir.secrets / 'share-access-key'}")

    def _find_share(self, name: str):
        for s in self.conn.shared_file_system.shares(details=True):
            if s.name == name and owns_by_metadata(s, self.spec.name):
                return s
        return None


def _results(futures: list[Future]) -> list:
    """Wait for every job; raise the first failure only after all finished (none is stranded)."""
    results, errors = [], []
    for f in futures:
        try:
            results.append(f.result())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    if errors:
        if len(errors) > 1:
            raise CloudError("; ".join(str(e) for e in errors)) from errors[0]
        raise errors[0]
    return results


def server_record(s, floating_by_fixed: dict[str, str] | None = None) -> Server:
    """What the state file keeps of a server (floating IPs from Neutron when given)."""
    fixed, floating = None, None
    for addrs in (s.addresses or {}).values():
        for ad in addrs:
            if ad.get("OS-EXT-IPS:type") == "floating":
                floating = ad["addr"]
            elif ad.get("version") == 4 and fixed is None:
                fixed = ad["addr"]
    floating = (floating_by_fixed or {}).get(fixed, floating)
    return Server(
        id=s.id,
        status=s.status,
        flavor=flavor_name(s),
        fixed_ip=fixed,
        floating_ip=floating,
        group=(s.metadata or {}).get(META_GROUP),
    )


def destroy(conn, actions: list[Action], say: Progress) -> dict[str, int]:
    """Carry out `plan.plan_destroy`'s actions, phase by phase in their order, each phase's
    calls concurrently; every call is idempotent (a re-run after a kill finishes the job).
    Returns how many of each kind were deleted (or released)."""
    net, compute = conn.network, conn.compute
    by: dict[str, list[Action]] = {}
    for a in actions:
        if a.kind != "noop":
            by.setdefault(a.resource, []).append(a)

    def server(a: Action) -> None:
        act(lambda: compute.delete_server(a.detail["id"], ignore_missing=True), f"delete server {a.name}")
        wait_gone(lambda: compute.find_server(a.detail["id"]), f"server {a.name} deleted", timeout=600)

    def floating_ip(a: Action) -> None:
        fid = a.detail["id"]
        if a.kind == "update":  # adopted: release, keep the address and the user's own tags
            act(lambda: net.update_ip(fid, port_id=None), f"disassociate adopted floating IP {a.name}")
            keep = [t for t in a.detail.get("tags", []) if not t.startswith(OWNER_TAG)]
            act(lambda: net.set_tags(net.get_ip(fid), keep), f"untag adopted floating IP {a.name}")
        else:
            act(lambda: net.delete_ip(fid, ignore_missing=True), f"delete floating IP {a.name}")

    def router_interface(a: Action) -> None:
        try:
            act(
                lambda: net.remove_interface_from_router(a.detail["id"], subnet=a.detail["subnet_id"]),
                f"detach subnet from router {a.detail['router']}",
            )
        except NotFound:
            pass  # already detached

    def share(a: Action) -> None:
        sfs = conn.shared_file_system
        try:
            act(lambda: sfs.delete_share(a.detail["id"]), f"delete share {a.name}")
        except NotFound:
            return
        wait_gone(
            lambda: next((x for x in sfs.shares() if x.id == a.detail["id"]), None),
            f"share {a.name} deleted",
            timeout=600,
        )

    def credential(a: Action) -> None:
        act(
            lambda: conn.identity.delete_application_credential(
                a.detail["user"], a.detail["id"], ignore_missing=True
            ),
            f"delete application credential {a.name}",
        )

    run: dict[str, Callable[[Action], None]] = {
        "server": server,
        "floating-ip": floating_ip,
        "port": lambda a: act(
            lambda: net.delete_port(a.detail["id"], ignore_missing=True), f"delete {a.name}"
        ),
        "router-interface": router_interface,
        "router": lambda a: act(
            lambda: net.delete_router(a.detail["id"], ignore_missing=True), f"delete {a.name}"
        ),
        "subnet": lambda a: act(
            lambda: net.delete_subnet(a.detail["id"], ignore_missing=True), f"delete {a.name}"
        ),
        "network": lambda a: act(
            lambda: net.delete_network(a.detail["id"], ignore_missing=True), f"delete {a.name}"
        ),
        "security-group": lambda a: act(
            lambda: net.delete_security_group(a.detail["id"], ignore_missing=True), f"delete {a.name}"
        ),
        "server-group": lambda a: act(
            lambda: compute.delete_server_group(a.detail["id"], ignore_missing=True), f"delete {a.name}"
        ),
        "share": share,
        "dns-record": lambda a: dns.delete_record(conn, a.detail["id"], a.detail["zone_id"], a.name),
        "keypair": lambda a: act(
            lambda: compute.delete_keypair(a.detail["id"], ignore_missing=True), f"delete keypair {a.name}"
        ),
        "application-credential": credential,
    }
    done: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for kind in DESTROY_ORDER:
            phase = by.get(kind, [])
            if not phase:
                continue
            _results([pool.submit(run[kind], a) for a in phase])
            done[kind] = len(phase)
            say(
                f"{'released' if kind == 'floating-ip' and phase[0].kind == 'update' else 'deleted'} "
                f"{len(phase)} {kind}(s): {', '.join(a.name for a in phase)}"
            )
    return done

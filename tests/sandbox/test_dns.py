"""Designate in the sandbox: the project's zone as on Jetstream2, a record made as the project
member becomes ACTIVE (the fake backend's polls answered by mdns) and mdns serves it over DNS."""

from __future__ import annotations

import socket
import struct
import time

from conftest import unique
from stackspray_sandbox import lanes
from stackspray_sandbox.services import MDNS_PORT


def query_a(name: str) -> list[str]:
    """A plain DNS query for an A record to mdns (RFC 1035 message, UDP): the addresses answered."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x5A5A, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(packet, ("127.0.0.1", MDNS_PORT))
        reply = s.recv(4096)
    answers = struct.unpack(">H", reply[6:8])[0]
    at = 12 + len(qname) + 4
    out = []
    for _ in range(answers):
        at += 2 if reply[at] & 0xC0 == 0xC0 else len(qname)  # name (compressed pointer or full)
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", reply[at : at + 10])
        at += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(reply[at : at + length]))
        at += length
    return out


def test_the_projects_zone_exists_and_a_record_turns_active_and_is_served(conn):
    PROJECT_ZONE = lanes.zone()  # noqa: N806 (the lane's, named as the constant it was)
    (zone,) = [z for z in conn.dns.zones() if z.name == PROJECT_ZONE]
    assert zone.status == "ACTIVE"
    name = f"{unique('rec')}.{PROJECT_ZONE}"
    rec = conn.dns.create_recordset(zone, name=name, type="A", records=["192.0.2.44"], ttl=300)
    try:
        deadline = time.monotonic() + 60
        while conn.dns.get_recordset(rec, zone).status != "ACTIVE":
            assert time.monotonic() < deadline, "record not ACTIVE within 60 s"
            time.sleep(0.5)
        assert query_a(name) == ["192.0.2.44"]
    finally:
        conn.dns.delete_recordset(rec, zone, ignore_missing=True)

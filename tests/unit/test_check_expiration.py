"""Reading `kubeadm certs check-expiration` (cmd/kubeadm/app/cmd/certs.go; RESIDUAL TIME as
apimachinery's duration.ShortHumanDuration): every certificate and authority row, its residual
time in days, judged — expired ("<invalid>"), under 30 days a warning, else ok; headers, blank
lines and anything else ignored."""

from __future__ import annotations

from stackspray.certs import parse_check_expiration

# The layout kubeadm v1.35 prints (columns as newCmdCertsExpiration writes them).
KUBEADM = """\
[check-expiration] Reading configuration from the "kubeadm-config" ConfigMap in namespace "kube-system"...

CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED
admin.conf                 Dec 07, 2027 07:40 UTC   364d            ca                      no
apiserver                  Dec 27, 2026 07:40 UTC   19d             ca                      no
apiserver-kubelet-client   Dec 06, 2026 07:40 UTC   <invalid>       ca                      no
controller-manager.conf    Dec 08, 2026 06:40 UTC   23h             ca                      no
front-proxy-client         Dec 07, 2027 07:40 UTC   364d            front-proxy-ca          no

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Dec 05, 2036 07:40 UTC   9y              no
front-proxy-ca          Dec 05, 2036 07:40 UTC   9y              no
"""


def test_every_row_is_read_and_judged():
    rows = {r.name: (r.days_left, r.level) for r in parse_check_expiration(KUBEADM)}
    assert rows == {
        "admin.conf": (364.0, "ok"),
        "apiserver": (19.0, "warning"),
        "apiserver-kubelet-client": (-1.0, "expired"),
        "controller-manager.conf": (round(23 / 24, 2), "warning"),
        "front-proxy-client": (364.0, "ok"),
        "ca": (9 * 365.0, "ok"),
        "front-proxy-ca": (9 * 365.0, "ok"),
    }


def test_nothing_listed_is_nothing_read():
    assert parse_check_expiration("error: open /etc/kubernetes/admin.conf: permission denied\n") == []

"""The cluster's application credential: `credentials.refresh` and `credentials.schedule`."""

from __future__ import annotations

from invoke import Collection, task

from .. import schedule as sched
from ..rotation import refresh as refresh_credential
from ..schedule import ScheduleResult
from .output import call, emit, progress
from .scale import schedule_listing
from .values import cluster_name, number, whole

JSON = "machine-readable output"


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "force": "rotate even when the credential is not near expiry",
        "threshold_days": "rotate when fewer days than this are left (default 30)",
        "expiry_days": "the new credential's lifetime in days (default 90)",
        "rollout_timeout": "seconds to wait for the restarted workloads to be Ready (default 300)",
        "json": JSON,
    },
)
def refresh(c, cluster, force=False, threshold_days=30, expiry_days=90, rollout_timeout=300, json_=False):
    """Rotate the cluster's OpenStack application credential with no outage (exit 0 ok/rotated,
    1 failed and rolled back, 2 failed and needs attention)."""
    result = call(
        json_,
        "credentials.refresh",
        lambda: refresh_credential(
            cluster_name(cluster),
            force=force,
            threshold_days=number(threshold_days, "threshold-days"),
            expiry_days=whole(expiry_days, "expiry-days"),
            rollout_timeout=number(rollout_timeout, "rollout-timeout"),
            progress=progress(json_),
        ),
    )
    emit(result, json_)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "at": "local time HH:MM to run at (default 03:17)",
        "days": "mon-fri, sun, ... (default: sun, i.e. weekly)",
        "list": "list the cluster's scheduled jobs",
        "remove": "remove the refresh schedule",
        "json": JSON,
    },
)
def schedule(c, cluster, at="03:17", days="sun", list_=False, remove=False, json_=False):
    """Run credentials.refresh on a schedule (systemd user timer, or crontab), weekly by default."""

    def run() -> ScheduleResult:
        name = cluster_name(cluster)
        if list_:
            return schedule_listing(name, "credentials")
        if remove:
            return ScheduleResult(name, "remove", removed=sched.remove(name, "credentials-refresh"))
        job = sched.Job(
            name,
            "credentials-refresh",
            ("credentials.refresh", "--cluster", name),
            sched.parse_when(at, days),
        )
        return ScheduleResult(name, "install", installed=sched.install(job))

    emit(call(json_, "credentials.schedule", run), json_)


collection = Collection("credentials", refresh=refresh, schedule=schedule)

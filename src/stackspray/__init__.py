"""stackspray: Kubernetes clusters on OpenStack research clouds, safe to re-run."""

__version__ = "0.1.0"

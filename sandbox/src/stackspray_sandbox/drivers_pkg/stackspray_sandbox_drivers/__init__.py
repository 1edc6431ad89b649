"""Sandbox-only OpenStack drivers (stackspray test support). Not for real clouds."""

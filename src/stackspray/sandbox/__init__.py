"""A real OpenStack cloud and SSH-reachable node hosts on one machine (tests and trials)."""

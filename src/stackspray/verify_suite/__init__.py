"""The pytest-testinfra suite `invoke verify` runs against every node of a cluster."""

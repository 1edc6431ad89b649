"""The sandbox's exceptions: each message says what failed and where its log is."""


class SandboxError(RuntimeError):
    """Base of every sandbox failure."""

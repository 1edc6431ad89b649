"""stackspray's commands for `invoke` at a checkout: the same collections the installed
`stackspray` command runs (src/stackspray/cli/). `invoke --list` shows them."""

from stackspray.cli import namespace

ns = namespace()

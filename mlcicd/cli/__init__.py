"""The `mlcicd` command line.

`base` holds what every command shares: the group `main`, the per-invocation State, the shared
options and the one error handler (MlcicdError -> message and exit code, there and only there).
The commands live beside it, one module per concern: deploy_commands (render, plan, apply and
the rest of the Terraform work), backend_commands (bootstrap, connect) and stage_commands (review
and the pipeline stages); each imports `base` and registers its commands on `main` when `main`
first needs one of them (base.COMMAND_MODULES says which module defines which command).
A command parses its arguments, builds typed objects and calls one function of the module that
owns the concern. Heavy modules are imported inside commands so that `mlcicd --help` stays fast.
"""

from mlcicd.cli.base import main, run

__all__ = ["main", "run"]

"""The `mlcicd` command line.

`base` holds what every command shares: the group `main`, the per-invocation State, the shared
options and the one error handler (MlcicdError -> message and exit code, there and only there).
The commands live beside it, one module per concern: deploy_commands (render, plan, apply and
the rest of the Terraform work), backend_commands (bootstrap, connect) and stage_commands (review
and the pipeline stages); each imports `base` and registers itself on `main` when imported here.
A command parses its arguments, builds typed objects and calls one function of the module that
owns the concern. Heavy modules are imported inside commands so that `mlcicd --help` stays fast.
"""

import gc

# The imports make tens of thousands of objects that live as long as the process: collecting
# while they are made frees nothing, and once frozen no later collection walks them again.
collecting = gc.isenabled()
gc.disable()
from mlcicd.cli import backend_commands, deploy_commands, stage_commands  # noqa: E402, F401 (they register themselves)
from mlcicd.cli.base import main  # noqa: E402

gc.freeze()
if collecting:
    gc.enable()

__all__ = ["main"]

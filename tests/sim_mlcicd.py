"""`mlcicd` as the pipeline simulation's CodeBuild runs it: the real CLI, with every AWS call
recorded (tests/aws_calls.py) and the operations moto lacks answered through Stubber
(tests/sagemaker_side.py, tests/stubbed_ops.py). Started as
`python -c "from tests.sim_mlcicd import run; run()" ARGS`, so the module sitecustomize imported is
the one that runs (`-m` would run a second copy of it)."""

from __future__ import annotations

from tests import aws_calls, sagemaker_side, stubbed_ops

_installed = False


def install() -> None:
    global _installed
    if not _installed:
        _installed = True
        aws_calls.install_from_environ()
        sagemaker_side.install()
        stubbed_ops.install()


def run() -> None:
    install()
    from mlcicd.cli import main

    main(prog_name="mlcicd")


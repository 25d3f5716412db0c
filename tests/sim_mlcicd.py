"""`mlcicd` as the pipeline simulation's CodeBuild runs it: the real CLI, with every AWS call
recorded (tests/aws_calls.py) and the operations moto lacks answered through Stubber
(tests/sagemaker_side.py, tests/stubbed_ops.py). Run as `python -m tests.sim_mlcicd ARGS`."""

from __future__ import annotations

from tests import aws_calls, sagemaker_side, stubbed_ops


def run() -> None:
    aws_calls.install_from_environ()
    sagemaker_side.install()
    stubbed_ops.install()
    from mlcicd.cli import main

    main(prog_name="mlcicd")


if __name__ == "__main__":
    run()

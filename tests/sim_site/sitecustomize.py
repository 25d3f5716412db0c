"""On PYTHONPATH in the pipeline simulation's builds: every Python process a build starts (mlcicd,
or a `python3 -c` in buildspec.yml) records its AWS calls and meets the same stand-ins for
what moto lacks."""

from tests import sim_mlcicd

sim_mlcicd.install()

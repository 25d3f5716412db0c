from mlcicd.cli import run

run()

from mlcicd.cli import main

main()

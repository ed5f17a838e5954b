from wtnas_cli.cli import main

main()

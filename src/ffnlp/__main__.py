from ffnlp.cli.main import main

main()

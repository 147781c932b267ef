from satgate_cli.app import main

main()

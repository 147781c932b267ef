import sys

from satgate.cli import main

main(["authz", *sys.argv[1:]])

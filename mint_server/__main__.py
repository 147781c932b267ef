import sys

from satgate.cli import main

main(["mint", *sys.argv[1:]])

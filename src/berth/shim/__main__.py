"""`python -m berth.shim CONFIG_JSON` (or `--template` for the pre-forked template)."""

from berth.shim.server import main

main()

"""`python -m csms.cli` runs the `csms` command (useful before the entry point is installed)."""

from csms.cli.main import main

main()

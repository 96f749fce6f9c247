"""The `csms` command: the composition root, the one place that builds every role and starts it.

Nothing imports this package back (an import-linter contract checks it), so the layers read bottom-up:
domain ← event store ← write side / projections / read side ← CLI.
"""

from csms.cli.main import cli, main

__all__ = ["cli", "main"]

"""Versioned schema migrations, applied in order under an advisory lock and recorded in the database."""

from csms.migrations.runner import Migration, MigrationError, load_migrations, migrate

__all__ = ["Migration", "MigrationError", "load_migrations", "migrate"]

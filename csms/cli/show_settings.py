"""`csms settings`: the effective configuration, one VARIABLE=value per line, with secrets hidden."""

from __future__ import annotations

import re
from dataclasses import fields

import click

from csms.connectivity import redact_url
from csms.settings import Settings

# Variables whose whole value is secret. Passwords inside URLs are hidden separately, whatever the name.
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|_KEY$")


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """(variable, printable value) for every setting, defaults included; unset values are empty."""
    printable: list[tuple[str, str]] = []
    for field in fields(settings):
        name: str = field.metadata["env"]
        value = getattr(settings, field.name)
        if value is None:
            text = ""
        elif _SECRET_NAME.search(name):
            text = "***"
        else:
            text = str(value)
            if "://" in text:
                text = redact_url(text)
        printable.append((name, text))
    return printable


@click.command("settings")
@click.pass_obj
def show_settings(settings: Settings) -> None:
    """Print the effective configuration (secrets hidden)."""
    click.echo("# Effective configuration; secrets are shown as ***. An empty URL means an embedded server.")
    for name, value in effective_settings(settings):
        click.echo(f"{name}={value}")

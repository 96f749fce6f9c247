"""Every `csms ...` command line in the operations guide and ops/README.md is one the real CLI accepts:
its subcommands exist and its options and arguments parse, so a renamed command or option fails here."""

from __future__ import annotations

import re
import shlex
import uuid
from pathlib import Path

import click
import pytest

from csms.cli.main import cli

PROJECT = Path(__file__).resolve().parents[2]
DOCUMENTS = [PROJECT / "docs" / "operations.md", PROJECT / "ops" / "README.md"]

# `csms` as a command, not a namespace (`kubectl -n csms ...`), a file name or a key prefix.
_COMMAND = re.compile(r"(?<![\w/.:-])(?<!-n )(?<!namespace )csms[ \t]+(?P<arguments>[^|;&#`\n]+)")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
# Placeholders in prose (`csms serve --role NAME`) are not checked; in examples, ids are filled in.
_PLACEHOLDER = re.compile(r"\b(?:NAME|ROLE|COMMAND|N)\b")
_UUID_PLACEHOLDER = re.compile(r"\b[A-Z]+_UUID\b")


def command_lines(text: str) -> list[str]:
    """The arguments of every `csms` invocation in fenced code and inline code, continuation lines joined."""
    found: list[str] = []
    fenced: list[str] = []
    in_fence = False
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            fenced.append(line)
        else:
            found.extend(span for span in _INLINE_CODE.findall(line) if not _PLACEHOLDER.search(span))
    return [
        match["arguments"].strip()
        for snippet in [*fenced, *found]
        for match in _COMMAND.finditer(snippet)
        if match["arguments"].strip()
    ]


def parse(arguments: str) -> None:
    """Parse `csms ARGUMENTS` the way the CLI would, without running anything."""
    words = [_UUID_PLACEHOLDER.sub(str(uuid.uuid4()), word) for word in shlex.split(arguments)]
    command: click.Command = cli
    name, parent = "csms", None
    # The groups take no options of their own: the first word names the subcommand.
    while isinstance(command, click.Group):
        context = click.Context(command, info_name=name, parent=parent)
        found = command.get_command(context, words[0]) if words else None
        if found is None:
            raise click.UsageError(f"no command {words[:1]} in {context.command_path}")
        name, parent, command, words = words[0], context, found, words[1:]
    command.make_context(name, words, parent=parent)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_documented_command_parses(document: Path) -> None:
    commands = command_lines(document.read_text())
    assert commands, f"no csms command found in {document.name}"
    failures = []
    for arguments in commands:
        try:
            parse(arguments)
        except click.ClickException as error:
            failures.append(f"csms {arguments}: {error.format_message()}")
    assert failures == []


def test_a_wrong_command_or_option_fails() -> None:
    parse("projections rebuild session_history --retire-after 30")
    with pytest.raises(click.UsageError):
        parse("projections rebuild session_history --retire-afterwards 30")
    with pytest.raises(click.UsageError):
        parse("projection status")
    with pytest.raises(click.BadParameter):
        parse("serve --role gateways")


def test_commands_are_found_where_they_are_written() -> None:
    text = (
        "Run `csms projections status`, not `csms serve --role NAME`.\n"
        "```sh\nkubectl -n csms exec deploy/projector -- csms projections rebuild fleet_registry\n"
        "csms chargers add --id CP-1 \\\n    --evse 1:IEC_62196_T2:22   # prints it\n```\n"
    )
    assert command_lines(text) == [
        "projections rebuild fleet_registry",
        "chargers add --id CP-1      --evse 1:IEC_62196_T2:22",
        "projections status",
    ]

"""The `tokenward` console: one command family per module."""

from __future__ import annotations

import logging

import click

from provisioning.clients import client_group
from provisioning.fob import fob_group
from provisioning.keys import keys_group
from provisioning.security_keys import key_group
from provisioning.serve import serve
from provisioning.tokens import token_group
from provisioning.users import user_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tokenward")
def main() -> None:
    """Tokenward: second-factor authentication server and admin console."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


main.add_command(serve)
main.add_command(user_group)
main.add_command(keys_group)
main.add_command(token_group)
main.add_command(fob_group)
main.add_command(key_group)
main.add_command(client_group)
main.add_command(__import__("provisioning.radius", fromlist=["radius_group"]).radius_group)

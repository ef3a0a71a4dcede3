"""Who acts: an HTTP client or the console. Standard library only, so that the console can name itself
without loading the database layer (see `provisioning.console.CONSOLE_ACTOR`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where: an HTTP client, or the console."""

    name: str
    client_ip: str = ""
    request_id: str = ""

    @classmethod
    def console(cls) -> Actor:
        return cls(name="console", client_ip="console")

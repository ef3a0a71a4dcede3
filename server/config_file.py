"""The optional TOML configuration file (`--config FILE` or `TOKENWARD_CONFIG`).

Its keys are the `TOKENWARD_*` settings in lower case without the prefix (`public_url = "https://…"`); the
environment wins over the file. Values become the strings the environment would hold, so one conversion and
one set of checks (server.config) serve both. Relative paths in the file are relative to the file, so a
console run from another directory finds the same instance.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from server.errors import ConfigurationError

CONFIG_VARIABLE = "TOKENWARD_CONFIG"
# Settings that name a file or directory: resolved against the config file's directory when relative.
PATH_SETTINGS = frozenset(
    {"instance_dir", "ldap_bind_password_file", "ldap_ca_file", "webauthn_trust_anchors"}
)
# Settings that are lists: a TOML array is joined as the environment variable would separate its items.
LIST_SEPARATORS = {"ldap_url": " ", "webauthn_aaguid_allowlist": ","}


def read_config_file(path: Path, *, known: frozenset[str], prefix: str) -> dict[str, str]:
    """The file's settings as environment variables (`{"TOKENWARD_PUBLIC_URL": "…"}`); an unreadable file,
    bad TOML, an unknown key or a value of the wrong kind is a ConfigurationError naming the file and key."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as err:
        raise ConfigurationError(f"{CONFIG_VARIABLE}: cannot read {path} ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"{path}: not valid TOML ({err})") from None
    values: dict[str, str] = {}
    for key, value in document.items():
        if key not in known:
            raise ConfigurationError(
                f"{path}: unknown setting {key!r} (keys are TOKENWARD_* names in lower case)"
            )
        text = _as_text(key, value, path)
        if key in PATH_SETTINGS and text and not Path(text).is_absolute():
            text = str(path.parent / text)
        if key == "database_url":
            text = _sqlite_beside(text, path.parent)
        values[prefix + key.upper()] = text
    return values


def _sqlite_beside(url: str, directory: Path) -> str:
    """A relative SQLite file (`sqlite:///state/tokenward.db`) is relative to the config file too."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return url
    database = url[len(prefix) :]
    if not database or database.startswith(":"):  # `:memory:` and the like
        return url
    return prefix + str(directory / database)


def _as_text(key: str, value: object, path: Path) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, list) and key in LIST_SEPARATORS and all(isinstance(item, str) for item in value):
        return LIST_SEPARATORS[key].join(value)
    raise ConfigurationError(f"{path}: {key} must be a string, a number or true/false")


def merged_environment(
    environ: Mapping[str, str], *, known: frozenset[str], prefix: str
) -> Mapping[str, str]:
    """`environ` over the settings of the file it names in TOKENWARD_CONFIG (if any)."""
    config = environ.get(CONFIG_VARIABLE, "")
    if not config:
        return environ
    from_file = read_config_file(Path(config).expanduser().resolve(), known=known, prefix=prefix)
    return {**from_file, **environ}

"""Which fobs are attached: USB serial ports with the fob's VID/PID, and the udev symlinks to them.

udev-rules/70-tokenward.rules names each fob `/dev/tokenward/fob-<serial>`; that stable path is the port to
use when it exists. Ports found both ways are reported once. Discovery opens no port: `SerialFob.hello()`
tells whether a fob is provisioned.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serial.tools import list_ports

from devices.fob.protocol import WORD_PATTERN
from devices.fob.usb_ids import FOB_USB_PRODUCT_ID, FOB_USB_VENDOR_ID

__all__ = ["DEFAULT_SYMLINK_DIR", "SYMLINK_PREFIX", "AttachedFob", "attached_fobs"]

DEFAULT_SYMLINK_DIR = Path("/dev/tokenward")
SYMLINK_PREFIX = "fob-"


@dataclass(frozen=True)
class AttachedFob:
    """One attached fob: `port` is what to open (the udev symlink when there is one)."""

    port: str
    device: str  # the kernel's tty, e.g. /dev/ttyACM0 (the symlink resolved)
    serial: str | None
    description: str


def _from_symlinks(directory: Path) -> dict[str, AttachedFob]:
    found: dict[str, AttachedFob] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return found
    for entry in entries:
        serial = entry.name.removeprefix(SYMLINK_PREFIX)
        if serial == entry.name or WORD_PATTERN.fullmatch(serial) is None or not _links_to_a_tty(entry):
            continue
        device = os.path.realpath(entry)
        found[device] = AttachedFob(str(entry), device, serial, "fob (udev symlink)")
    return found


def _links_to_a_tty(entry: Path) -> bool:
    try:
        return entry.is_symlink() and stat.S_ISCHR(entry.stat().st_mode)
    except OSError:  # dangling
        return False


def _from_usb(ports: Iterable[Any]) -> dict[str, AttachedFob]:
    found: dict[str, AttachedFob] = {}
    for info in ports:
        if info.vid != FOB_USB_VENDOR_ID or info.pid != FOB_USB_PRODUCT_ID:
            continue
        device = os.path.realpath(info.device)
        description = info.description if info.description not in (None, "", "n/a") else "fob (USB)"
        found[device] = AttachedFob(info.device, device, info.serial_number or None, description)
    return found


def attached_fobs(
    *, symlink_dir: Path = DEFAULT_SYMLINK_DIR, ports: Iterable[Any] | None = None
) -> list[AttachedFob]:
    """Attached fobs sorted by port. `ports` defaults to pyserial's `list_ports.comports()` (which never
    lists pseudo-terminals, so emulators are found through symlinks only)."""
    usb = _from_usb(list_ports.comports() if ports is None else ports)
    linked = _from_symlinks(symlink_dir)
    merged: list[AttachedFob] = []
    for device in usb.keys() | linked.keys():
        by_usb, by_link = usb.get(device), linked.get(device)
        if by_usb is None or by_link is None:
            merged.append(by_link or usb[device])
        else:
            serial = by_usb.serial or by_link.serial
            merged.append(AttachedFob(by_link.port, device, serial, by_usb.description))
    return sorted(merged, key=lambda fob: fob.port)

"""Security keys on USB (CTAP HID, through python-fido2).

Everything else programs against `fido2.ctap.CtapDevice`: a `SoftAuthenticator` stands in for a key in tests.
On Linux a key is a /dev/hidraw* node; udev-rules/ gives the service's group access to FIDO devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from fido2.ctap import CtapError
from fido2.hid import ConnectionFailure, CtapHidDevice, get_descriptor, list_descriptors, open_connection
from fido2.hid.base import HidDescriptor

from devices.fido.errors import NoSecurityKey, SecurityKeyUnavailable

__all__ = ["SecurityKeyInfo", "list_security_keys", "open_security_key"]


@dataclass(frozen=True)
class SecurityKeyInfo:
    """An attached FIDO HID device, as the OS describes it (listing opens no device)."""

    path: str
    vendor_id: int
    product_id: int
    product_name: str | None
    serial_number: str | None

    @classmethod
    def from_descriptor(cls, descriptor: HidDescriptor) -> SecurityKeyInfo:
        path = descriptor.path
        return cls(
            path=path.decode("utf-8", "replace") if isinstance(path, bytes) else path,
            vendor_id=descriptor.vid,
            product_id=descriptor.pid,
            product_name=descriptor.product_name,
            serial_number=descriptor.serial_number,
        )


def list_security_keys() -> list[SecurityKeyInfo]:
    """Attached FIDO HID devices, sorted by path. Devices this process may not open are left out (python-fido2
    skips them), so an empty list can also mean missing permissions."""
    return sorted((SecurityKeyInfo.from_descriptor(d) for d in list_descriptors()), key=lambda key: key.path)  # type: ignore[no-untyped-call]


def open_security_key(path: str | None = None) -> CtapHidDevice:
    """The key at `path`, or the first attached key. Raises `NoSecurityKey` when there is none,
    `SecurityKeyUnavailable` when it cannot be opened (busy, unplugged, no permission)."""
    try:
        if path is not None:
            descriptor = get_descriptor(path)  # type: ignore[no-untyped-call]
        else:
            descriptors = sorted(list_descriptors(), key=lambda d: str(d.path))  # type: ignore[no-untyped-call]
            if not descriptors:
                raise NoSecurityKey("no FIDO2 security key is attached")
            descriptor = descriptors[0]
        return CtapHidDevice(descriptor, open_connection(descriptor))  # type: ignore[no-untyped-call]
    except FileNotFoundError as err:
        raise NoSecurityKey(f"no security key at {path}") from err
    except (OSError, ValueError, ConnectionFailure, CtapError) as err:
        raise SecurityKeyUnavailable(f"the security key could not be opened: {err}") from err

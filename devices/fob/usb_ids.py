"""The fob's USB identity: the one place it is written down.

Discovery matches ports with it, and tests/devices/test_udev_rules.py checks that udev-rules/ agrees.

PLACEHOLDER: 1209:0001 is the "Test PID" of pid.codes (the open-source hardware vendor ID 0x1209), meant
for private testing only. Before fobs are built for anyone else, request a PID of our own at
https://pid.codes/ and change FOB_USB_PRODUCT_ID here and in udev-rules/70-tokenward.rules (a test fails
until both agree).
"""

from __future__ import annotations

FOB_USB_VENDOR_ID = 0x1209
FOB_USB_PRODUCT_ID = 0x0001


def udev_hex(value: int) -> str:
    """A USB ID as udev's `ATTRS{idVendor}`/`ATTRS{idProduct}` spell it: four lower-case hex digits."""
    return f"{value:04x}"

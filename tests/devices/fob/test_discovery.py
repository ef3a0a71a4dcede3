"""Discovery: udev symlinks to (emulated) fobs, and USB ports matched by the IDs of usb_ids.py."""

from __future__ import annotations

import os
from pathlib import Path

from serial.tools.list_ports_common import ListPortInfo

from devices.fob.discovery import AttachedFob, attached_fobs
from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator
from devices.fob.usb_ids import FOB_USB_PRODUCT_ID, FOB_USB_VENDOR_ID


def _usb_port(device: str, vid: int, pid: int, serial: str | None = "TWUSB01") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.description = vid, pid, serial, "Tokenward Fob"
    return info


def test_a_symlinked_fob_is_found_and_answers(tmp_path: Path, emulator: FobEmulator) -> None:
    link = tmp_path / f"fob-{emulator.serial}"
    link.symlink_to(emulator.port)
    (tmp_path / "fob-DANGLING").symlink_to(tmp_path / "gone")
    (tmp_path / "other-device").symlink_to(emulator.port)
    found = attached_fobs(symlink_dir=tmp_path, ports=[])
    assert found == [
        AttachedFob(str(link), os.path.realpath(emulator.port), emulator.serial, "fob (udev symlink)")
    ]
    with SerialFob(found[0].port) as fob:
        assert fob.hello().serial == emulator.serial


def test_usb_ports_are_matched_by_vendor_and_product(tmp_path: Path) -> None:
    ports = [
        _usb_port("/dev/ttyACM3", FOB_USB_VENDOR_ID, FOB_USB_PRODUCT_ID),
        _usb_port("/dev/ttyACM4", FOB_USB_VENDOR_ID, FOB_USB_PRODUCT_ID + 1),
        _usb_port("/dev/ttyUSB0", 0x0403, FOB_USB_PRODUCT_ID),
    ]
    found = attached_fobs(symlink_dir=tmp_path / "missing", ports=ports)
    assert found == [AttachedFob("/dev/ttyACM3", "/dev/ttyACM3", "TWUSB01", "Tokenward Fob")]


def test_a_port_found_both_ways_is_listed_once_by_its_symlink(tmp_path: Path, emulator: FobEmulator) -> None:
    link = tmp_path / "fob-TWUSB01"
    link.symlink_to(emulator.port)
    ports = [_usb_port(emulator.port, FOB_USB_VENDOR_ID, FOB_USB_PRODUCT_ID, serial=None)]
    found = attached_fobs(symlink_dir=tmp_path, ports=ports)
    assert found == [AttachedFob(str(link), os.path.realpath(emulator.port), "TWUSB01", "Tokenward Fob")]


def test_this_machine_can_be_asked() -> None:
    assert all(isinstance(fob, AttachedFob) for fob in attached_fobs())

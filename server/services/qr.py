"""QR codes of otpauth URIs: inline SVG (no Pillow needed) and PNG (pypng)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.pure
import qrcode.image.svg


def _qr(uri: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(uri)
    code.make(fit=True)
    return code


def qr_svg(uri: str) -> str:
    image = _qr(uri).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")  # type: ignore[no-any-return]


def qr_png(uri: str) -> bytes:
    buffer = io.BytesIO()
    _qr(uri).make_image(image_factory=qrcode.image.pure.PyPNGImage).save(buffer)
    return buffer.getvalue()

"""What an uploaded document really is, judged by its bytes, never by its name or declared type."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from config.errors import PayloadTooLarge, UnsupportedFile


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    extension: str


_SIGNATURES: tuple[tuple[bytes, int, Sniffed], ...] = (
    (b"\xff\xd8\xff", 0, Sniffed("image/jpeg", ".jpg")),
    (b"\x89PNG\r\n\x1a\n", 0, Sniffed("image/png", ".png")),
    (b"WEBP", 8, Sniffed("image/webp", ".webp")),
    (b"%PDF-", 0, Sniffed("application/pdf", ".pdf")),
)


def sniff_document(upload: UploadedFile) -> Sniffed:
    """The type of a KYC upload: JPEG, PNG, WebP or PDF by magic bytes; images must also decode.

    Raises ``UnsupportedFile`` for anything else (an executable renamed to .jpg, a truncated image), and
    ``PayloadTooLarge`` for an image whose pixel count makes it a decompression bomb.
    """
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for magic, offset, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic and (offset == 0 or head.startswith(b"RIFF")):
            if kind.content_type.startswith("image/"):
                _verify_image(upload)
            return kind
    raise UnsupportedFile("Upload a JPEG, PNG or WebP image, or a PDF.")


def _verify_image(upload: UploadedFile) -> None:
    try:
        with Image.open(upload) as image:
            image.verify()
    except Image.DecompressionBombError as exc:  # a few KB that would decode to gigabytes
        raise PayloadTooLarge("The image has too many pixels; send a smaller photo.", code="image_too_large") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedFile("The image is damaged or not really an image.") from exc
    finally:
        upload.seek(0)

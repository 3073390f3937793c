"""File storage for private uploads (KYC documents, proofs of delivery)."""

from __future__ import annotations

from django.core.files.storage import FileSystemStorage


class PrivateFileStorage(FileSystemStorage):
    """Files on disk that never have a public URL.

    Staff read them through permission-checked views that stream the file; anything that asks
    the storage for a URL is a bug that would leak a document, so it fails loudly.
    """

    def url(self, name: str | None) -> str:
        raise NotImplementedError("private files have no public URL; serve them through a staff view")

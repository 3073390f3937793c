"""``Idempotency-Key`` for POSTs that create things.

The first response to a key is kept in Redis for ``IDEMPOTENCY_TTL_S`` (24 h). The same key with the
same body replays it (status and body, plus ``Idempotent-Replayed: true``); the same key with another
body is a 409; a second request while the first is still running is a 409 too. Keys are scoped to the
caller (token, or client IP when anonymous) and the path, so two riders can never collide.

With Redis unreachable the header is ignored, with a log line, rather than turned into a 500: the endpoints
that take it are idempotent in the database too (a withdrawal by its key, an order by its ``external_ref``),
so a retry still makes nothing twice; it is answered anew instead of replayed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.ratelimit import client_key
from config.errors import Conflict

logger = logging.getLogger("fleetops.api.idempotency")

HEADER = "HTTP_IDEMPOTENCY_KEY"
_PENDING = "pending"
_IN_FLIGHT_TTL_S = 60


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class IdempotentRequestInProgress(Conflict):
    code = "idempotency_request_in_progress"


@dataclass
class Claim:
    """A key this request holds: ``finish`` stores the response it ends with."""

    cache_key: str
    fingerprint: str

    def finish(self, response: Response) -> None:
        try:
            if response.status_code >= 500 or response.status_code == 429:
                cache.delete(self.cache_key)  # the client may retry with the same key
                return
            stored = {
                "fingerprint": self.fingerprint,
                "status": response.status_code,
                "body": json.dumps(response.data, default=str),
            }
            cache.set(self.cache_key, stored, timeout=settings.IDEMPOTENCY_TTL_S)
        except Exception:  # Redis gone since the claim: the answer stands, it is just not kept for a replay
            logger.warning("idempotent response not stored: the cache failed", exc_info=True)


def _fingerprint(request: Request) -> str:
    """What makes two requests the same: method, path, media type and content.

    A multipart body is compared by its parsed fields and file contents, never byte for byte: a client
    picks a new boundary on every retry, and an upload may be larger than Django will hold as
    ``request.body`` (``DATA_UPLOAD_MAX_MEMORY_SIZE``). A file's name and declared type are not kept by
    any endpoint, so they do not count.
    """
    digest = hashlib.sha256()
    media_type = request.content_type.split(";", 1)[0].strip().lower()
    for part in (request.method or "", request.path, media_type):
        _add(digest, part.encode())
    if media_type.startswith("multipart/"):
        data: QueryDict = request.data  # type: ignore[assignment]  # what the multipart parser gives
        for name in sorted(data):
            for value in data.getlist(name):
                _add(digest, name.encode())
                if isinstance(value, UploadedFile):
                    _add(digest, b"file")
                    _add(digest, str(value.size).encode())
                    for chunk in value.chunks():
                        digest.update(chunk)
                    value.seek(0)
                else:
                    _add(digest, b"text")
                    _add(digest, str(value).encode())
    else:
        digest.update(request._request.body)
    return digest.hexdigest()


def _add(digest: Any, part: bytes) -> None:
    """Length-prefixed, so that no two different sequences of parts hash alike."""
    digest.update(b"%d:" % len(part))
    digest.update(part)


def claim_or_replay(request: Request) -> Claim | Response | None:
    """Before the view runs: a stored response to replay, a claim to finish later, or None (no key sent)."""
    key = request.META.get(HEADER, "").strip()
    if not key:
        return None
    if len(key) > 255:
        raise exceptions.ValidationError({"Idempotency-Key": ["Use at most 255 characters."]})
    cache_key = f"idem:{client_key('', request)}:{request.path}:{hashlib.sha256(key.encode()).hexdigest()}"
    fingerprint = _fingerprint(request)
    try:
        if cache.add(cache_key, _PENDING, timeout=_IN_FLIGHT_TTL_S):
            return Claim(cache_key=cache_key, fingerprint=fingerprint)
        stored: Any = cache.get(cache_key)
    except Exception:  # Redis unreachable: see the module's docstring
        logger.warning("Idempotency-Key not checked: the cache failed", exc_info=True)
        return None
    if stored is None or stored == _PENDING:
        raise IdempotentRequestInProgress(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        )
    if stored["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
    response = Response(json.loads(stored["body"]), status=stored["status"])
    response["Idempotent-Replayed"] = "true"
    return response

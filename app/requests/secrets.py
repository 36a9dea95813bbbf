"""Secret field values at rest: one token per request, with the key ``app.crypto`` derives
from ``PAO_SECRET_KEY``.

Values are decrypted only to render a step; the column is erased when the request ends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from app.crypto import Keys, SecretError


class SecretKeyMissing(Exception):
    """A request has secret fields but PAO_SECRET_KEY is unset."""


def encrypt(key: str | None, values: dict[str, dict[str, Any]]) -> bytes | None:
    """``{owner: {field: value}}`` as one token; None when there is nothing secret."""
    if not any(values.values()):
        return None
    if not key:
        raise SecretKeyMissing("this request has secret fields, and PAO_SECRET_KEY is not set: "
                               "PAO cannot store them encrypted")
    return Keys(key).encrypt(json.dumps(values)).encode()


def decrypt(key: str | None, token: bytes | None) -> dict[str, dict[str, Any]]:
    if token is None:
        return {}
    if not key:
        raise SecretKeyMissing("PAO_SECRET_KEY is not set: the request's secret fields cannot be read")
    try:
        return json.loads(Keys(key).decrypt(bytes(token).decode()))
    except SecretError:
        raise SecretKeyMissing("the request's secret fields were encrypted with another "
                               "PAO_SECRET_KEY") from None


def body_hash(key: str | None, body: Any) -> str:
    """A keyed hash of a submission, to tell a retry from a different body.

    Keyed (HMAC) so the stored hash does not let anyone test guesses of a secret field.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hmac.new((key or "pao-idempotency").encode(), canonical, hashlib.sha256).hexdigest()

"""Keys derived from ``PAO_SECRET_KEY``: encryption at rest (stored App secrets, requests'
secret fields) and signed values (console sessions, CSRF tokens).

One secret, separate keys per use (HKDF with a label each), so a signature can never
be replayed as a ciphertext or the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretError(Exception):
    """A ciphertext or a signed value that this key did not make (or that was altered)."""


def _derive(secret_key: str, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"pao:{label}".encode()).derive(secret_key.encode())


class Keys:
    """Encryption and signing with keys derived from one secret."""

    def __init__(self, secret_key: str):
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, "encrypt")))
        self._signing = _derive(secret_key, "sign")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretError("stored secret does not decrypt with PAO_SECRET_KEY (was the key changed?)") \
                from None

    def mac(self, purpose: str, value: str) -> str:
        """A keyed hash of ``value`` for ``purpose`` (CSRF tokens, set-up state)."""
        digest = hmac.new(self._signing, f"{purpose}\n{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, purpose: str, data: dict[str, Any]) -> str:
        """``data`` as a compact, tamper-evident string (readable, not secret)."""
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self.mac(purpose, body)}"

    def unsign(self, purpose: str, signed: str) -> dict[str, Any]:
        body, _, mac = signed.rpartition(".")
        if not body or not hmac.compare_digest(mac.encode(), self.mac(purpose, body).encode()):
            raise SecretError("bad signature")
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            raise SecretError("bad signed value") from None
        if not isinstance(data, dict):
            raise SecretError("bad signed value")
        return data

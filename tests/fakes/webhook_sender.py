"""Deliver webhooks to PAO the way GitHub does: signed, with GitHub's headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class WebhookResult:
    status: int
    body: Any  # parsed JSON, or text when the answer was not JSON
    delivery_id: str
    headers: Mapping[str, str]


def sign_payload(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send_webhook(target_url: str, event: str, payload: Any, secret: str, *,
                       delivery_id: str | None = None, hook_id: int = 1,
                       session: aiohttp.ClientSession | None = None) -> WebhookResult:
    """Sign and POST a delivery the way GitHub does; the receiver's answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/" + hashlib.sha1(b"pao", usedforsecurity=False).hexdigest()[:7],
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": sign_payload(body, secret),
    }
    installation = payload.get("installation") if isinstance(payload, dict) else None
    if installation:
        headers["X-GitHub-Hook-Installation-Target-Type"] = "integration"
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(target_url, data=body, headers=headers) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return WebhookResult(resp.status, parsed, delivery_id, dict(resp.headers))
    finally:
        if own:
            await session.close()

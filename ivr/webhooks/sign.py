"""Standard Webhooks signing, sans-IO: the three headers of one attempt.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the MAC
HMAC-SHA256 with the secret's decoded bytes (config/webhooks.decode_secret),
sent as `v1,<base64>`.  The id stays the same on every attempt of a message, so
a receiver can drop a repeat; the timestamp is the attempt's, so a receiver can
refuse a replay (the reference verifier allows five minutes either way).
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(key, msg_id, timestamp, body),
            "content-type": "application/json"}

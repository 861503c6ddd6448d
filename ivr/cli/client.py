"""The `ivr incident` commands' side of the control API: one request, one line out."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

from ivr.config import Config


def call_api(config: Config, url: str | None, method: str, path: str,
             body: dict[str, Any] | None = None) -> int:
    base = url or f"http://{config.listen_host}:{config.listen_port}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {config.api.token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            print(json.dumps(json.loads(resp.read()), indent=2))
            return 0
    except urllib.error.HTTPError as err:
        print(f"ivr: {err.code}: {_message(err.read())}", file=sys.stderr)
    except OSError as exc:
        print(f"ivr: cannot reach ivr at {base}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
    return 1


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200]

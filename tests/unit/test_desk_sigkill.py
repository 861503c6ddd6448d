"""Registry writes survive SIGKILL: `ivr run` as a real process, tickets filed over
HTTP while it is killed, then `ivr registry verify` on what is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import free_port
from tests.unit.test_cli import ami_env, poll

IVR = Path(sys.executable).with_name("ivr")
TOKEN = "operator-op1-token-0001"
ROOT = Path(__file__).resolve().parents[2]


def file_ticket(base: str, i: int) -> str | None:
    request = urllib.request.Request(
        f"{base}/api/v1/tickets", method="POST",
        data=json.dumps({"account": "100101", "problem": f"fault {i}"}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return str(json.loads(resp.read())["number"]) if resp.status == 201 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None           # killed before it answered


def test_every_answered_ticket_is_in_an_intact_chain_after_sigkill(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"operator op1 {TOKEN}\n")
    tokens.chmod(0o600)
    port = free_port()
    env = ami_env(tmp_path, free_port())
    env.update(IVR_API_TOKENS_FILE=str(tokens), IVR_LEDGER_URL=f"sqlite:///{tmp_path}/ledger.db",
               IVR_LISTEN=f"127.0.0.1:{port}")
    config = tmp_path / "ivr.toml"
    config.write_text(f'[routing]\ndirectory = "{ROOT}/ivr/lab/files/subscribers.csv"\n')
    env["IVR_CONFIG"] = str(config)
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(IVR), "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    answered: list[str] = []
    try:
        poll(f"{base}/healthz", until=200)
        deadline = time.monotonic() + 10
        while file_ticket(base, -1) is None and time.monotonic() < deadline:
            time.sleep(0.1)      # until the desk has read its (empty) registry

        def clerk(k: int) -> None:
            for i in range(k * 1000, k * 1000 + 200):
                if (number := file_ticket(base, i)) is None:
                    return
                answered.append(number)
        clerks = [threading.Thread(target=clerk, args=(k,)) for k in range(4)]
        for c in clerks:
            c.start()
        time.sleep(1.5)
        os.kill(proc.pid, signal.SIGKILL)
        for c in clerks:
            c.join(10)
    finally:
        proc.kill()
        proc.wait(10)
    assert len(answered) > 10
    verify_env = {**os.environ, "IVR_LEDGER_URL": env["IVR_LEDGER_URL"]}
    done = subprocess.run([str(IVR), "registry", "verify"], env=verify_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    exported = subprocess.run([str(IVR), "registry", "export", "--from", "2000-01-01",
                               "--to", "2100-01-01"], env=verify_env,
                              capture_output=True, text=True, timeout=60)
    kept = {e["number"] for e in json.loads(exported.stdout)["entries"]}
    assert set(answered) <= kept      # nothing answered is lost
    assert len(kept) <= len(answered) + 1 + 4   # at most the probe and one in flight per clerk

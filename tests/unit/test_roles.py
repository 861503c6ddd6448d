"""Tokens with roles: the tokens file's rules, and who a request's token names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import tokens as roles

GOOD = "operator op1 operator-op1-token-0001\n"


def tokens_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_token_names_its_holder_and_role(tmp_path: Path) -> None:
    path = tokens_file(tmp_path, "# the desk\n\n" + GOOD + "office anna office-anna-token-00001 # x\n")
    tokens = roles.load(path, admin_token="the-old-single-api-token")
    assert len(tokens) == 3
    assert tokens.who("Bearer operator-op1-token-0001") == roles.Actor("operator", "op1")
    assert tokens.who("Bearer office-anna-token-00001") == roles.Actor("office", "anna")
    assert tokens.who("Bearer the-old-single-api-token") == roles.Actor("admin", "api.token")
    assert tokens.who("Bearer operator-op1-token-0002") is None
    assert tokens.who("operator-op1-token-0001") is None          # no scheme
    assert tokens.who("") is None


@pytest.mark.parametrize("text, mode, message", [
    (GOOD, 0o644, "others can read it (mode 0644); chmod 600 it"),
    (GOOD, 0o640, "others can read it"),
    ("operator op1\n", 0o600, "line 1: expected ROLE NAME TOKEN, got 2 field(s)"),
    ("boss op1 operator-op1-token-0001\n", 0o600, "line 1: unknown role 'boss'"),
    ("operator op1 short\n", 0o600, "shorter than 22"),
    (GOOD + "operator op2 operator-op1-token-0001\n", 0o600, "line 2: the token of op2 is op1's too"),
    (GOOD + "operator op1 operator-op1-token-0002\n", 0o600, "line 2: operator op1 has a token already"),
    ("operator op/1 operator-op1-token-0001\n", 0o600, "name 'op/1'"),
])
def test_a_bad_tokens_file_is_refused_naming_the_line(tmp_path: Path, text: str, mode: int,
                                                       message: str) -> None:
    path = tokens_file(tmp_path, text, mode)
    with pytest.raises(roles.TokensError, match=message.replace("(", r"\(").replace(")", r"\)")):
        roles.load(path)


def test_a_missing_tokens_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(roles.TokensError, match="No such file"):
        roles.load(tmp_path / "nope")


def test_ivr_run_refuses_a_readable_tokens_file(tmp_path: Path) -> None:
    path = tokens_file(tmp_path, GOOD, 0o644)
    env = {**os.environ, "IVR_API_TOKENS_FILE": str(path), "IVR_AMI_USERNAME": "ivr",
           "IVR_AMI_SECRET": "s", "IVR_AMI_PORT": "1", "IVR_LEDGER_URL": f"sqlite:///{tmp_path}/l.db",
           "IVR_LISTEN": "127.0.0.1:0"}
    done = subprocess.run([str(Path(sys.executable).parent / "ivr"), "run"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    [line] = [x for x in done.stderr.splitlines() if x.startswith("ivr:")]
    assert line == f"ivr: bad config: api.tokens_file {path}: others can read it (mode 0644); chmod 600 it"

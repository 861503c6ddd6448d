"""Tokens that cannot be guessed, in a file only ivr can read, and `ivr tokens new`."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from ivr.cli import main as cli
from ivr.config import tokens as roles
from ivr.lab.pbx import Lab


def tokens_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("token, refused", [
    ("a" * 21, "shorter than 22"),
    ("Z9-_" * 5 + "x", "shorter than 22"),               # 21 of base64
    ("0123456789abcdef" * 2, None),                      # 32 hex: 128 bits
    ("0123456789abcdef0123456789abcde", "hex digits only"),   # 31 hex
    ("0123456789ABCDEF012345", "hex digits only"),       # 22 hex: 88 bits
    ("10waz5JQRF19S0hgw4vL1Q", None),                    # token_urlsafe(16): 22 characters
    ("rU427iUs5hB0UmCGMcxhvWn1Pmcr_NcBAtTl-aoeSDM", None),   # token_urlsafe(32)
    ("x" * 21 + "é", "not printable ASCII"),
])
def test_a_token_under_128_bits_is_refused(tmp_path: Path, token: str, refused: str | None) -> None:
    path = tokens_file(tmp_path, f"operator op1 {token}\n")
    if refused is None:
        assert roles.load(path).who(f"Bearer {token}") == roles.Actor("operator", "op1")
        assert roles.load(None, admin_token=token).who(f"Bearer {token}") is not None
        return
    with pytest.raises(roles.TokensError, match=f"line 1: the token of op1 is {refused}"):
        roles.load(path)
    with pytest.raises(roles.TokensError, match=f"api.token \\(or IVR_API_TOKEN\\): {refused}"):
        roles.load(None, admin_token=token)


def test_an_empty_tokens_file_says_the_api_is_off(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tokens_file(tmp_path, "# nobody yet\n\n")
    caplog.set_level(logging.WARNING, logger="ivr.roles")
    assert len(roles.load(path)) == 0
    assert f"api.tokens_file {path} holds no token: the control API is off" in caplog.text
    caplog.clear()
    assert len(roles.load(path, admin_token="the-old-single-api-token")) == 1
    assert "holds no token" in caplog.text and "is off" not in caplog.text


def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")


def test_a_tokens_file_of_another_user_is_refused(tmp_path: Path) -> None:
    as_root()
    path = tokens_file(tmp_path, "operator op1 operator-op1-token-0001\n")
    os.chown(path, 4242, -1)
    with pytest.raises(roles.TokensError, match="owned by uid 4242, not by ivr's user"):
        roles.load(path, env={})


def test_a_systemd_credential_is_taken_as_it_is(tmp_path: Path) -> None:
    as_root()
    creds = tmp_path / "credentials"
    creds.mkdir()
    path = tokens_file(creds, "operator op1 operator-op1-token-0001\n", 0o440)
    os.chown(path, 4242, -1)
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert len(roles.load(path, env=env)) == 1
    with pytest.raises(roles.TokensError):           # the same file outside: refused
        roles.load(path, env={"CREDENTIALS_DIRECTORY": str(tmp_path / "other")})


def test_the_labs_tokens_pass_the_rules(tmp_path: Path) -> None:
    status = Lab(cache_dir=tmp_path / "lab").status()
    tokens = roles.load(status.tokens_file, status.api_token)
    assert len(tokens) == 6         # op1, sup1, anna, eng1, the wall's tv1, and the admin


# -- ivr tokens new --------------------------------------------------------------

def new(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["tokens", "new", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_tokens_new_creates_the_file_0600_and_prints_the_token_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tokens"
    code, out, err = new(capsys, "office", "anna", "--file", str(path))
    assert code == 0 and stat.S_IMODE(path.stat().st_mode) == 0o600
    token = out.strip()
    assert out == token + "\n" and token not in err and len(token) >= 43
    assert roles.load(path).who(f"Bearer {token}") == roles.Actor("office", "anna")
    code, out, _ = new(capsys, "operator", "op1", "--file", str(path))
    assert code == 0
    assert roles.load(path).who(f"Bearer {out.strip()}") == roles.Actor("operator", "op1")
    assert len(path.read_text().splitlines()) == 2


def test_tokens_new_appends_after_a_last_line_without_newline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tokens_file(tmp_path, "operator op1 operator-op1-token-0001")
    code, out, _ = new(capsys, "engineer", "eng1", "--file", str(path))
    assert code == 0 and len(roles.load(path)) == 2


def test_tokens_new_reads_the_configs_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tokens"
    conf = tmp_path / "ivr.toml"
    conf.write_text(f'[api]\ntokens_file = "{path}"\n')
    code, out, _ = new(capsys, "admin", "root", "--config", str(conf))
    assert code == 0 and roles.load(path).who(f"Bearer {out.strip()}") is not None


@pytest.mark.parametrize("args, mode, message", [
    (["operator", "op1"], 0o600, "operator op1 has a token in"),
    (["boss", "op9"], 0o600, "unknown role 'boss'"),
    (["operator", "op/9"], 0o600, "name 'op/9'"),
    (["operator", "op9"], 0o644, "others can read it"),
])
def test_tokens_new_refuses_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], mode: int, message: str) -> None:
    path = tokens_file(tmp_path, "operator op1 operator-op1-token-0001\n", mode)
    before = path.read_bytes()
    code, out, err = new(capsys, *args, "--file", str(path))
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_tokens_new_needs_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_API_TOKENS_FILE", raising=False)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    code, out, err = new(capsys, "operator", "op9")
    assert code == 2 and out == "" and "no tokens file" in err

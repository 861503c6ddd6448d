"""systemd credentials ($CREDENTIALS_DIRECTORY) in the config: names, precedence, refusals.

The order is defaults < file < credentials < environment < flags
(ivr/config/credentials.py); a credential's file is taken as systemd set it up.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ivr.config import ConfigError, load
from ivr.config import tokens as roles
from ivr.desk import keys

TOKEN = "S3cretTokenOfTheAdmin_0123456789"
SECRET = "dialplan-secret-0123456789"


def creds(tmp_path: Path, **files: str) -> dict[str, str]:
    """A credentials folder with `files` (`_` in a keyword is `-`, `__` is `.`)."""
    folder = tmp_path / "credentials"
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".").replace("_", "-")).write_text(text)
    return {"CREDENTIALS_DIRECTORY": str(folder)}


def conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.toml"
    path.write_text(text)
    return path


def test_each_credential_fills_its_key(tmp_path: Path) -> None:
    env = creds(tmp_path, ami_secret="ami\n", dialplan_secret=SECRET + "\n",
                tokens=f"admin root {TOKEN}\n", registry__key="x",
                ledger_url="postgresql://ivr:pw@db/ivr\n")
    config = load(None, env)
    folder = Path(env["CREDENTIALS_DIRECTORY"])
    assert (config.ami.secret, config.ami.dialplan_secret) == ("ami", SECRET)
    assert config.api.tokens_file == str(folder / "tokens")
    assert config.desk.registry_key == str(folder / "registry.key")
    assert config.ledger.url == "postgresql://ivr:pw@db/ivr"


def test_a_credential_beats_the_file_and_loses_to_the_environment(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = conf(tmp_path, '[ami]\nsecret = "from-file"\ndialplan_secret = "file-0123456789abcdef"\n'
                          '[api]\ntokens_file = "/etc/ivr/tokens"\n')
    env = creds(tmp_path, ami_secret="from-credential", dialplan_secret=SECRET, tokens="")
    config = load(path, env)
    assert config.ami.secret == "from-credential"
    assert config.ami.dialplan_secret == SECRET
    assert config.api.tokens_file.endswith("credentials/tokens")
    with caplog.at_level(logging.WARNING):
        config = load(path, {**env, "IVR_AMI_SECRET": "from-env"})
    assert config.ami.secret == "from-env"
    assert "IVR_AMI_SECRET overrides the credential ami-secret" in caplog.text
    assert "from-env" not in caplog.text and "from-credential" not in caplog.text


def test_several_pbxs_take_a_credential_each(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = conf(tmp_path, '[pbx.paris]\nhost = "10.0.0.1"\n[pbx.lyon-2]\nhost = "10.0.0.2"\n')
    env = creds(tmp_path, **{"ami-secret.paris": "p", "dialplan-secret.lyon-2": SECRET})
    config = load(path, env)
    paris, lyon = config.pbxs
    assert (paris.ami.secret, paris.ami.dialplan_secret) == ("p", "")
    assert (lyon.ami.secret, lyon.ami.dialplan_secret) == ("", SECRET)
    with caplog.at_level(logging.WARNING):
        config = load(path, {**env, "IVR_PBX_LYON_2_DIALPLAN_SECRET": "env-0123456789abcdef"})
    assert config.pbxs[1].ami.dialplan_secret == "env-0123456789abcdef"
    assert "IVR_PBX_LYON_2_DIALPLAN_SECRET overrides the credential dialplan-secret.lyon-2" \
        in caplog.text


@pytest.mark.parametrize("toml, name, said", [
    ('[pbx.paris]\nhost = "h"\n', "ami-secret", "expected ami-secret.NAME for each [pbx.NAME]"),
    ('[pbx.paris]\nhost = "h"\n', "dialplan-secret.lyon", "names no PBX of the config"),
    ("", "ami-secret.default", "expected ami-secret (with [ami])"),
])
def test_a_credential_naming_no_pbx_is_one_line(tmp_path: Path, toml: str, name: str,
                                                said: str) -> None:
    env = creds(tmp_path, **{name: SECRET})
    with pytest.raises(ConfigError) as err:
        load(conf(tmp_path, toml), env)
    assert str(err.value).startswith(f"credential {name}: ") and said in str(err.value)
    assert "\n" not in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("text, said", [
    ("", "expected one line, got nothing"), ("\n", "expected one line, got nothing"),
    ("a\nb\n", "several lines"), ("\udcff", "not UTF-8")])
def test_a_bad_secret_credential_is_one_line_without_its_value(tmp_path: Path, text: str,
                                                               said: str) -> None:
    env = creds(tmp_path)
    Path(env["CREDENTIALS_DIRECTORY"], "ami-secret").write_bytes(
        text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError) as err:
        load(None, env)
    assert said in str(err.value) and "\n" not in str(err.value)


def test_a_bad_dialplan_secret_credential_is_checked_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(None, creds(tmp_path, dialplan_secret="short"))
    assert str(err.value).startswith("ami.dialplan_secret: 16 to 256 characters")


def test_no_credentials_directory_changes_nothing(tmp_path: Path) -> None:
    creds(tmp_path, ami_secret="unused")
    assert load(None, {}).ami.secret == ""


def test_the_tokens_and_the_key_credentials_are_read_whatever_their_mode(tmp_path: Path) -> None:
    # systemd gives the service's user read access by an ACL, which shows as group bits.
    env = creds(tmp_path, tokens=f"admin root {TOKEN}\n")
    folder = Path(env["CREDENTIALS_DIRECTORY"])
    made = keys.create(folder / "registry.key")
    for name in ("tokens", "registry.key"):
        (folder / name).chmod(0o440)
    config = load(None, env)
    tokens = roles.load(config.api.tokens_file, env=env)
    assert tokens.who(f"Bearer {TOKEN}") == roles.Actor("admin", "root")
    key = Path(config.desk.registry_key)
    assert keys.load(key, env).verifier == made.verifier
    assert keys.load_or_create(key, env=env).verifier == made.verifier
    with pytest.raises(keys.KeyFileError, match="lets others read"):
        keys.load(key, {})          # the same file outside a credentials folder: refused

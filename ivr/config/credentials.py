"""systemd credentials: the secrets a unit hands ivr in $CREDENTIALS_DIRECTORY.

`LoadCredential=ID:PATH` makes systemd, as root, copy PATH into a directory that
only the service's user can read, whatever PATH's owner and mode: so a root-owned
0600 file reaches a DynamicUser= service.  ivr reads these IDs there:

    tokens                 api.tokens_file, the credential's path (ROLE NAME TOKEN lines)
    registry.key           desk.registry_key, the credential's path (read, never made)
    ami-secret             ami.secret; with [pbx.NAME] tables, ami-secret.NAME each
    dialplan-secret        ami.dialplan_secret; with [pbx.NAME], dialplan-secret.NAME
    ledger-url             ledger.url (its password stays out of the config file)

Precedence, the one place it is decided: a credential beats the config file and
loses to the environment (IVR_AMI_SECRET, IVR_PBX_<NAME>_SECRET, ...) and flags,
that is defaults < file < credentials < environment < flags.  The file is
world-readable and should name no secret; the environment is the explicit
override of one run.  An environment variable that overrides a credential is
logged as a warning, so a forgotten ivr.env line is seen.

A secret's credential is its text, one trailing newline dropped.  An ID of ours
that names no PBX of the config (ami-secret.lyon without [pbx.lyon], a bare
ami-secret with [pbx.NAME] tables) is a ConfigError: a typo, not a secret to
drop silently.  Other IDs are not ivr's and are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ivr.config.values import ConfigError

if TYPE_CHECKING:
    from ivr.config import AmiConfig, Config

log = logging.getLogger(__name__)

TOKENS, REGISTRY_KEY, LEDGER_URL = "tokens", "registry.key", "ledger-url"
AMI_SECRET, DIALPLAN_SECRET = "ami-secret", "dialplan-secret"
# A PBX's credential -> the tail of the environment variable that beats it.
PER_PBX = {AMI_SECRET: "SECRET", DIALPLAN_SECRET: "DIALPLAN_SECRET"}
MAX_SECRET = 64 * 1024


def folder(env: Mapping[str, str]) -> Path | None:
    """$CREDENTIALS_DIRECTORY, or None outside a unit that loads credentials."""
    where = env.get("CREDENTIALS_DIRECTORY")
    return Path(where) if where else None


def inside(path: Path, env: Mapping[str, str]) -> bool:
    """Whether `path` is one of this service's credentials (readable by it alone, as
    systemd set it up: its owner and mode are systemd's, not ours to check)."""
    where = folder(env)
    return where is not None and path.resolve().is_relative_to(where.resolve())


def apply(cfg: Config, env: Mapping[str, str]) -> Config:
    """`cfg` (defaults and file) with what the credentials give; see the module's doc."""
    where = folder(env)
    if where is None:
        return cfg
    names = _names(where)
    if TOKENS in names:
        _beaten(env, "IVR_API_TOKENS_FILE", TOKENS)
        cfg = replace(cfg, api=replace(cfg.api, tokens_file=str(where / TOKENS)))
    if REGISTRY_KEY in names:
        cfg = replace(cfg, desk=replace(cfg.desk, registry_key=str(where / REGISTRY_KEY)))
    if LEDGER_URL in names:
        _beaten(env, "IVR_LEDGER_URL", LEDGER_URL)
        cfg = replace(cfg, ledger=replace(cfg.ledger, url=_secret(where, LEDGER_URL)))
    return _pbx_secrets(cfg, where, names, env)


def _pbx_secrets(cfg: Config, where: Path, names: set[str], env: Mapping[str, str]) -> Config:
    from ivr.config import pbx_env_prefix      # the package imports this module first
    several = bool(cfg.pbx)
    pbxs = {p.name for p in cfg.pbxs}
    for name in sorted(names):
        base, dot, pbx = name.partition(".")
        if base not in PER_PBX:
            continue
        if several != bool(dot) or (dot and pbx not in pbxs):
            want = f"{base}.NAME for each [pbx.NAME] table" if several else f"{base} (with [ami])"
            raise ConfigError(f"credential {name}: names no PBX of the config; expected {want}")
        value = _secret(where, name)
        if not several:
            _beaten(env, f"IVR_AMI_{PER_PBX[base]}", name)
            cfg = replace(cfg, ami=_given(cfg.ami, base, value))
            continue
        _beaten(env, pbx_env_prefix(pbx) + PER_PBX[base], name)
        cfg = replace(cfg, pbx=tuple(replace(p, ami=_given(p.ami, base, value))
                                     if p.name == pbx else p for p in cfg.pbx))
    return cfg


def _given(ami: AmiConfig, base: str, value: str) -> AmiConfig:
    if base == AMI_SECRET:
        return replace(ami, secret=value)
    return replace(ami, dialplan_secret=value)


def _names(where: Path) -> set[str]:
    try:
        return {p.name for p in where.iterdir()}
    except OSError as exc:
        raise ConfigError(f"$CREDENTIALS_DIRECTORY {where}: {exc.strerror or exc}") from None


def _secret(where: Path, name: str) -> str:
    """A credential's text without its trailing newline; never shown in an error."""
    try:
        with (where / name).open("rb") as f:
            data = f.read(MAX_SECRET + 1)
    except OSError as exc:
        raise ConfigError(f"credential {name}: cannot read {where / name}: "
                          f"{exc.strerror or exc}") from None
    if len(data) > MAX_SECRET:
        raise ConfigError(f"credential {name}: longer than {MAX_SECRET} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"credential {name}: not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text or "\n" in text or "\r" in text:
        raise ConfigError(f"credential {name}: expected one line, got "
                          f"{'nothing' if not text else 'several lines'}")
    return text


def _beaten(env: Mapping[str, str], var: str, name: str) -> None:
    if var in env:
        log.warning("%s overrides the credential %s (the environment beats credentials)",
                    var, name)

"""Typed configuration: defaults, then the TOML file, then systemd credentials
(credentials.py), then IVR_* variables, then flags.

Every mistake is one line naming the key and what was expected
(ConfigError); `ivr run` prints it and exits 2.  ivr/kit/files/ivr.example.toml
(`ivr kit` writes it) is the commented reference.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.config import credentials, names, secrets as dialplan_secrets
from ivr.config import callback, webhooks as hooks
from ivr.config.callback import CallbackConfig as CallbackConfig
from ivr.config.webhooks import WebhookConfig as WebhookConfig
from ivr.config.values import BOUNDS as BOUNDS, ConfigError as ConfigError
from ivr.config.values import only as _only, section as _section, typed as _typed
from ivr.calls.records import DEFAULT_PBX  # the one PBX of a config with only [ami]
from ivr.calls.judge import DEFAULT_THRESHOLD_MS, FIRST_LINE


@dataclass(frozen=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = ""
    secret: str = field(default="", repr=False)
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    trace: bool = False
    # Ask Asterisk at login to send only what ivr follows (ami/server_filter.py).
    server_filter: bool = True
    # What this PBX's dialplan sends ivr (X-Ivr-Secret); none: its questions get 401.
    dialplan_secret: str = field(default="", repr=False)
    dialplan_sources: tuple[str, ...] = ()    # CIDRs its questions may come from; none: any


_PBX_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class PbxConfig:
    """One PBX ivr follows: a [pbx.NAME] table, or [ami] as the PBX named `default`."""

    name: str
    ami: AmiConfig


@dataclass(frozen=True)
class QueueConfig:
    name: str
    sla_seconds: float = DEFAULT_THRESHOLD_MS / 1000
    overflow_to: str | None = None
    overflow_after_seconds: float | None = None


@dataclass(frozen=True)
class ApiConfig:
    token: str = field(default="", repr=False)   # an admin token; with no tokens_file, the only one
    tokens_file: str = ""       # ROLE NAME TOKEN lines, mode 0600 (ivr/config/tokens.py)


@dataclass(frozen=True)
class PromptsConfig:
    language: str = "en"        # en or ru: the spoken prompts' language (ivr/routing/prompts.py)


@dataclass(frozen=True)
class DeskConfig:
    ticket_due_hours: float = 24.0
    complaint_deadline_days: float = 30.0
    registry_key: str = ""      # the registry's signing key; empty: registry.key in the state directory


@dataclass(frozen=True)
class RoutingConfig:
    directory: str | None = None        # subscribers CSV: number,account,area
    incidents_file: str | None = None   # where incidents survive a restart
    prompts_dir: str | None = None      # where ivr writes incident prompts (Asterisk's IVR_PROMPTS)
    repeat_window_seconds: float = 600.0   # a call within this of an unanswered one is a repeat
    # What this site calls ivr's queues and numbers (config/names.py; a FreePBX numbers
    # its queues): the dialplan's globals and extensions, as `ivr kit` writes them.
    first_line: str = FIRST_LINE        # the paid queue
    common: str = "common"              # where first-line's unanswered callers move
    engineers: str = "engineers"        # the second line, by escalation only
    supervisors: str = "supervisors"    # complaints
    hotline: str = "8800"               # what customers dial
    escalation: str = "9000"            # an operator's transfer to the engineers
    supervisor: str = "9001"            # an operator's transfer to a supervisor
    readback: str = "9002"              # an operator's transfer: the call's numbers read back

    def role_queues(self) -> dict[str, str]:
        """The queue playing each part, by its [ivr-queues] extension (first-line...)."""
        return {role: getattr(self, key) for role, key in names.ROLES.items()}


@dataclass(frozen=True)
class LedgerConfig:
    url: str = field(default="", repr=False)   # empty: SQLite in the state directory
    spool: str = ""                 # empty: beside a SQLite ledger, else in the state directory
    spool_max_records: int = 200_000
    queue_log_decisions: bool = False   # write ivr's moves and escalations into queue_log
    # Asterisk's queue_log, for the start-up backfill (ledger/catchup.py): its file, or
    # the database and table of its realtime form; of queue_log_pbx (empty: the first PBX).
    queue_log: str = ""
    queue_log_db: str = field(default="", repr=False)
    queue_log_table: str = "queue_log"
    queue_log_pbx: str = ""
    # Calls older than this many days are deleted by `ivr ledger purge` (ledger/retention.py),
    # the registry never; 0: kept forever.
    retention_days: int = 0


@dataclass(frozen=True)
class ReportConfig:
    timezone: str = "UTC"
    short_abandon_seconds: float = 5.0
    pay_once_per_caller: bool = False   # the statement also counts one answer per caller per window
    max_days: int = 366             # a longer period is refused (a report's size is bounded)
    deadline_seconds: float = 60.0  # a report or history query of the API past this is a 503
    service_level_target: float = 0.8   # the board's target line: a share answered within


def default_queues(r: RoutingConfig) -> tuple[QueueConfig, ...]:
    """The queues followed when the config has no [queues]: the four parts, named as
    [routing] names them.  A first-line caller not answered within the paid threshold
    moves to common then."""
    return (QueueConfig(r.first_line, overflow_to=r.common,
                        overflow_after_seconds=DEFAULT_THRESHOLD_MS / 1000),
            QueueConfig(r.common), QueueConfig(r.engineers), QueueConfig(r.supervisors))


DEFAULT_QUEUES = default_queues(RoutingConfig())

@dataclass(frozen=True)
class Config:
    ami: AmiConfig = AmiConfig()
    listen_host: str = "127.0.0.1"
    listen_port: int = 9105
    # http.metrics_listen: where ivr also serves /metrics, alone (no API); none: not.
    metrics_listen: tuple[str, int] | None = None
    queues: tuple[QueueConfig, ...] = DEFAULT_QUEUES
    log_level: str = "INFO"
    api: ApiConfig = ApiConfig()
    routing: RoutingConfig = RoutingConfig()
    ledger: LedgerConfig = LedgerConfig()
    report: ReportConfig = ReportConfig()
    desk: DeskConfig = DeskConfig()
    prompts: PromptsConfig = PromptsConfig()
    pbx: tuple[PbxConfig, ...] = ()     # [pbx.NAME] tables; none: [ami] is the one PBX
    webhooks: tuple[WebhookConfig, ...] = ()   # [webhooks.NAME]: where the desk's events go
    callback: CallbackConfig = CallbackConfig()   # [callback]: key 1 in common (config/callback.py)

    @property
    def callback_queues(self) -> tuple[str, ...]:    # where callers may press 1 for a callback
        return self.callback.queues or (self.routing.common,)

    @property
    def pbxs(self) -> tuple[PbxConfig, ...]:
        """Every PBX to follow, in the config's order."""
        return self.pbx or (PbxConfig(DEFAULT_PBX, self.ami),)

    @property
    def queue_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.queues)

    @property
    def first_line(self) -> QueueConfig:
        """The queue whose answers are paid (routing.first_line), as configured; the
        default's threshold when [queues] leaves it out."""
        name = self.routing.first_line
        return next((q for q in self.queues if q.name == name), default_queues(self.routing)[0])

    def ledger_url(self, env: Mapping[str, str] = os.environ) -> str:
        return self.ledger.url or f"sqlite:///{state_dir(env) / 'ledger.db'}"

    def spool_path(self, env: Mapping[str, str] = os.environ) -> Path:
        """ledger.spool; else beside a SQLite ledger, else in the state directory."""
        if self.ledger.spool:
            return Path(self.ledger.spool)
        url = self.ledger_url(env)
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            return Path(url[len("sqlite:///"):] + "-spool.jsonl")
        return state_dir(env) / "ledger-spool.jsonl"


def state_dir(env: Mapping[str, str]) -> Path:
    """Where ivr keeps its files: systemd's StateDirectory, /var/lib/ivr for root, else ~/.local/state."""
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/ivr")
    return Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "ivr"


_ENV_AMI = {"IVR_AMI_HOST": "host", "IVR_AMI_PORT": "port",
            "IVR_AMI_USERNAME": "username", "IVR_AMI_SECRET": "secret",
            "IVR_AMI_DIALPLAN_SECRET": "dialplan_secret"}


def load(path: Path | None = None, env: Mapping[str, str] | None = None,
         listen: str | None = None, log_level: str | None = None) -> Config:
    env = env or {}
    cfg = Config()
    path = path or (Path(env["IVR_CONFIG"]) if env.get("IVR_CONFIG") else None)
    if path is not None:
        cfg = _from_file(cfg, path)
    cfg = credentials.apply(cfg, env)     # beats the file, loses to the environment
    cfg = _from_env(cfg, env)
    if listen is not None:
        cfg = _with_listen(cfg, listen, "--listen")
    if log_level is not None:
        cfg = replace(cfg, log_level=_level(log_level, "--log-level"))
    _check_ledger(cfg)
    _check_dialplan(cfg)
    _check_metrics_listen(cfg)
    hooks.check(cfg.webhooks)
    return cfg


LEDGER_SCHEMES = ("sqlite", "postgresql", "postgres")


def _check_ledger(cfg: Config) -> None:
    url = cfg.ledger.url
    scheme, sep, _ = url.partition("://")
    if url and (not sep or scheme.split("+", 1)[0].lower() not in LEDGER_SCHEMES):
        shown = url.split("@")[-1] if "@" in url else url
        raise ConfigError(f"ledger.url: unknown scheme in {shown!r} "
                          "(expected sqlite:///PATH or postgresql://USER@HOST/DB)")
    try:
        ZoneInfo(cfg.report.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"report.timezone: unknown time zone {cfg.report.timezone!r}") from None
    _check_queue_log(cfg.ledger, [p.name for p in cfg.pbxs])


_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _check_queue_log(ledger: LedgerConfig, pbxs: list[str]) -> None:
    if ledger.queue_log and ledger.queue_log_db:
        raise ConfigError("ledger.queue_log and ledger.queue_log_db: give one queue_log source, not both")
    scheme, sep, _ = ledger.queue_log_db.partition("://")
    if ledger.queue_log_db and (not sep or scheme.split("+", 1)[0].lower() not in LEDGER_SCHEMES):
        raise ConfigError("ledger.queue_log_db: expected postgresql://USER@HOST/DB (or sqlite:///PATH)")
    if not _TABLE.fullmatch(ledger.queue_log_table):
        raise ConfigError(f"ledger.queue_log_table: expected a plain table name, "
                          f"got {ledger.queue_log_table[:40]!r}")
    if ledger.queue_log_pbx and ledger.queue_log_pbx not in pbxs:
        raise ConfigError(f"ledger.queue_log_pbx: {ledger.queue_log_pbx!r} is not a PBX of the "
                          f"config (known: {', '.join(pbxs)})")


def _from_file(cfg: Config, path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except ValueError as exc:   # e.g. an integer too long to read
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    _only(data, {"ami", "pbx", "http", "queues", "log_level", "api", "desk", "prompts", "routing", "ledger",
                 "report", "webhooks", "callback"}, "")
    if "pbx" in data:
        if "ami" in data:
            raise ConfigError("[ami] and [pbx.NAME] tables together: with several PBXs, "
                              "give each its own [pbx.NAME] table")
        cfg = replace(cfg, pbx=_pbxs(_section(data, "pbx")))
    ami = _section(data, "ami")
    _only(ami, set(AmiConfig.__dataclass_fields__), "ami.")
    cfg = replace(cfg, ami=replace(cfg.ami, **{k: _typed(AmiConfig, k, v, "ami.") for k, v in ami.items()}))
    http = _section(data, "http")
    _only(http, {"listen", "metrics_listen"}, "http.")
    if "listen" in http:
        cfg = _with_listen(cfg, str(http["listen"]), "http.listen")
    if "metrics_listen" in http:
        cfg = replace(cfg, metrics_listen=_address(str(http["metrics_listen"]), "http.metrics_listen"))
    api = _section(data, "api")
    _only(api, set(ApiConfig.__dataclass_fields__), "api.")
    cfg = replace(cfg, api=ApiConfig(**{k: _typed(ApiConfig, k, v, "api.") for k, v in api.items()}))
    spoken = _section(data, "prompts")
    _only(spoken, set(PromptsConfig.__dataclass_fields__), "prompts.")
    cfg = replace(cfg, prompts=PromptsConfig(
        **{k: _typed(PromptsConfig, k, v, "prompts.") for k, v in spoken.items()}))
    if cfg.prompts.language not in ("en", "ru"):
        raise ConfigError(f"prompts.language: en or ru, got {cfg.prompts.language!r}")
    desk = _section(data, "desk")
    _only(desk, set(DeskConfig.__dataclass_fields__), "desk.")
    cfg = replace(cfg, desk=DeskConfig(**{k: _typed(DeskConfig, k, v, "desk.") for k, v in desk.items()}))
    routing = _section(data, "routing")
    _only(routing, set(RoutingConfig.__dataclass_fields__), "routing.")
    cfg = replace(cfg, routing=RoutingConfig(
        **{k: _typed(RoutingConfig, k, v, "routing.") for k, v in routing.items()}))
    names.check({k: getattr(cfg.routing, k) for k in (*names.ROLES.values(), *names.NUMBERS)})
    kind: Any
    for name, kind in (("ledger", LedgerConfig), ("report", ReportConfig)):
        table = _section(data, name)
        _only(table, set(kind.__dataclass_fields__), f"{name}.")
        typed = {k: _typed(kind, k, v, f"{name}.") for k, v in table.items()}
        cfg = replace(cfg, **{name: kind(**typed)})
    cfg = replace(cfg, queues=_queues(_section(data, "queues")) if "queues" in data
                  else default_queues(cfg.routing))
    if "webhooks" in data:
        cfg = replace(cfg, webhooks=hooks.parse(data["webhooks"]))
    cfg = replace(cfg, callback=callback.parse(data.get("callback", {}), cfg.routing.common))
    if "log_level" in data:
        cfg = replace(cfg, log_level=_level(str(data["log_level"]), "log_level"))
    return cfg


def _queues(data: dict[str, Any]) -> tuple[QueueConfig, ...]:
    queues = []
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise ConfigError(f"queues.{name} must be a table")
        fields = set(QueueConfig.__dataclass_fields__) - {"name"}
        _only(raw, fields, f"queues.{name}.")
        values = {k: _typed(QueueConfig, k, v, f"queues.{name}.") for k, v in raw.items()}
        queues.append(QueueConfig(name, **values))
    if not queues:
        raise ConfigError("[queues] lists no queue; leave it out for the defaults")
    for q in queues:
        _check_overflow(q, {q.name for q in queues})
    return tuple(queues)


def _pbxs(data: dict[str, Any]) -> tuple[PbxConfig, ...]:
    found = []
    for name, raw in data.items():
        if not _PBX_NAME.fullmatch(name):
            raise ConfigError(f"pbx.{name}: a PBX name is a-z, 0-9, '-' or '_', "
                              "starting with a letter, at most 32")
        if not isinstance(raw, dict):
            raise ConfigError(f"pbx.{name} must be a table")
        _only(raw, set(AmiConfig.__dataclass_fields__), f"pbx.{name}.")
        ami = AmiConfig(**{k: _typed(AmiConfig, k, v, f"pbx.{name}.") for k, v in raw.items()})
        found.append(PbxConfig(name, ami))
    if not found:
        raise ConfigError("[pbx] lists no PBX; leave it out and use [ami] for one")
    addresses = [(p.ami.host, p.ami.port) for p in found]
    for p in found:
        if addresses.count((p.ami.host, p.ami.port)) > 1:
            raise ConfigError(f"pbx.{p.name}: another PBX has the same AMI address "
                              f"{p.ami.host}:{p.ami.port}")
    return tuple(found)


def pbx_env_prefix(name: str) -> str:
    """IVR_PBX_<NAME>_: where a [pbx.NAME] table's secrets come from the environment."""
    return f"IVR_PBX_{name.upper().replace('-', '_')}_"


def _check_overflow(q: QueueConfig, names: set[str]) -> None:
    if (q.overflow_to is None) != (q.overflow_after_seconds is None):
        raise ConfigError(f"queues.{q.name}: set overflow_to and overflow_after_seconds together")
    if q.overflow_to is not None and q.overflow_to not in names:
        raise ConfigError(f"queues.{q.name}.overflow_to names an unknown queue {q.overflow_to!r}")
    if q.overflow_to == q.name:
        raise ConfigError(f"queues.{q.name}.overflow_to cannot be the queue itself")


def _from_env(cfg: Config, env: Mapping[str, str]) -> Config:
    for var, key in _ENV_AMI.items():
        if var in env and cfg.pbx:
            raise ConfigError(f"{var} sets [ami], but the config has [pbx.NAME] tables: "
                              f"use {pbx_env_prefix(cfg.pbx[0].name)}{var.removeprefix('IVR_AMI_')} "
                              "(IVR_PBX_<NAME>_...) for each")
        if var in env:
            cfg = replace(cfg, ami=replace(cfg.ami, **{key: _typed(AmiConfig, key, env[var], var)}))
    pbxs = []
    for p in cfg.pbx:
        prefix, ami = pbx_env_prefix(p.name), p.ami
        for ami_var, key in _ENV_AMI.items():   # IVR_AMI_HOST -> IVR_PBX_<NAME>_HOST ...
            var = prefix + ami_var.removeprefix("IVR_AMI_")
            if var in env:
                ami = replace(ami, **{key: _typed(AmiConfig, key, env[var], var)})
        pbxs.append(replace(p, ami=ami))
    cfg = replace(cfg, pbx=tuple(pbxs))
    if "IVR_API_TOKEN" in env:
        cfg = replace(cfg, api=replace(cfg.api, token=_typed(ApiConfig, "token", env["IVR_API_TOKEN"],
                                                             "IVR_API_TOKEN")))
    if "IVR_API_TOKENS_FILE" in env:
        cfg = replace(cfg, api=replace(cfg.api, tokens_file=env["IVR_API_TOKENS_FILE"]))
    if "IVR_LEDGER_URL" in env:
        cfg = replace(cfg, ledger=replace(cfg.ledger, url=env["IVR_LEDGER_URL"]))
    if "IVR_LEDGER_QUEUE_LOG_DB" in env:   # its password stays out of the file
        cfg = replace(cfg, ledger=replace(cfg.ledger, queue_log_db=env["IVR_LEDGER_QUEUE_LOG_DB"]))
    cfg = replace(cfg, webhooks=hooks.from_env(cfg.webhooks, env))
    if "IVR_LISTEN" in env:
        cfg = _with_listen(cfg, env["IVR_LISTEN"], "IVR_LISTEN")
    if "IVR_METRICS_LISTEN" in env:
        cfg = replace(cfg, metrics_listen=_address(env["IVR_METRICS_LISTEN"], "IVR_METRICS_LISTEN"))
    if "IVR_LOG_LEVEL" in env:
        cfg = replace(cfg, log_level=_level(env["IVR_LOG_LEVEL"], "IVR_LOG_LEVEL"))
    return cfg


def _with_listen(cfg: Config, value: str, where: str) -> Config:
    host, port = _address(value, where)
    return replace(cfg, listen_host=host, listen_port=port)


def _address(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _check_metrics_listen(cfg: Config) -> None:
    """Not http.listen's own port (on its host, or on every address): ivr would find it
    taken by itself."""
    if cfg.metrics_listen is None or not cfg.listen_port:
        return
    host, port = cfg.metrics_listen
    if port == cfg.listen_port and (host == cfg.listen_host
                                    or {host, cfg.listen_host} & {"0.0.0.0", "::", ""}):
        raise ConfigError(f"http.metrics_listen: {host}:{port} is http.listen's port "
                          f"({cfg.listen_host}:{cfg.listen_port}), which serves /metrics already: "
                          "leave metrics_listen out, or give another port")


def _level(value: str, where: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{where}: expected DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level


def _check_dialplan(cfg: Config) -> None:
    for p in cfg.pbxs:
        where = "ami." if not cfg.pbx else f"pbx.{p.name}."
        problem = dialplan_secrets.problem(where, p.name, p.ami.dialplan_secret,
                                           p.ami.dialplan_sources, cfg.pbxs)
        if problem:
            raise ConfigError(problem)

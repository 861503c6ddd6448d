"""ivr.config.load: defaults, precedence (file < env < flags), one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import config as cfg
from ivr.config import AmiConfig, Config, ConfigError, QueueConfig, load
from ivr.kit import shipped

SECRET = "env-Secr3t-value"

FULL = """\
log_level = "debug"

[ami]
host = "pbx.example.net"
port = 15038
username = "ivr"
secret = "file-secret"
ping_interval = 2.5
ping_timeout = 1
trace = true

[http]
listen = "0.0.0.0:9200"

[queues.sales]
sla_seconds = 20.5
overflow_to = "backup"
overflow_after_seconds = 45

[queues.backup]
sla_seconds = 60
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.toml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), {})
    return one_line(info.value)


def one_line(exc: ConfigError) -> str:
    message = str(exc)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


# -- defaults ----------------------------------------------------------------

def test_defaults_with_no_file_and_empty_env() -> None:
    config = load(None, {})
    assert config == Config()
    assert (config.ami.host, config.ami.port) == ("127.0.0.1", 5038)
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9105)
    assert config.log_level == "INFO"
    assert config.queue_names == ("first-line", "common", "engineers", "supervisors")


def test_default_queues_first_line_overflows_to_common_after_30_s() -> None:
    first, common, engineers, supervisors = load(None, {}).queues
    assert first == QueueConfig("first-line", 30.0, overflow_to="common",
                                overflow_after_seconds=30.0)
    assert (common.overflow_to, engineers.overflow_to, supervisors.overflow_to) == (None,) * 3
    assert common.sla_seconds == engineers.sla_seconds == supervisors.sla_seconds == 30.0


def test_env_none_means_empty_env() -> None:
    assert load() == load(None, {})


# -- precedence ----------------------------------------------------------------

def test_listen_file_then_env_then_flag(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nlisten = "10.0.0.1:9001"\n')
    env = {"IVR_LISTEN": "10.0.0.2:9002"}

    from_file = load(path, {})
    from_env = load(path, env)
    from_flag = load(path, env, listen="10.0.0.3:9003")

    assert (from_file.listen_host, from_file.listen_port) == ("10.0.0.1", 9001)
    assert (from_env.listen_host, from_env.listen_port) == ("10.0.0.2", 9002)
    assert (from_flag.listen_host, from_flag.listen_port) == ("10.0.0.3", 9003)


def test_ami_settings_file_then_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[ami]\nhost = "filehost"\nport = 6000\nusername = "fileuser"\n')
    assert load(path, {}).ami.port == 6000

    config = load(path, {"IVR_AMI_PORT": "7000", "IVR_AMI_USERNAME": "envuser"})

    assert config.ami.port == 7000
    assert config.ami.username == "envuser"
    assert config.ami.host == "filehost"  # not overridden: the file's value stays


def test_every_ami_env_variable_is_read() -> None:
    env = {"IVR_AMI_HOST": "h", "IVR_AMI_PORT": "1", "IVR_AMI_USERNAME": "u",
           "IVR_AMI_SECRET": "s"}
    ami = load(None, env).ami
    assert (ami.host, ami.port, ami.username, ami.secret) == ("h", 1, "u", "s")


def test_log_level_file_then_env_then_flag(tmp_path: Path) -> None:
    path = write(tmp_path, 'log_level = "error"\n')
    env = {"IVR_LOG_LEVEL": "warning"}
    assert load(path, {}).log_level == "ERROR"
    assert load(path, env).log_level == "WARNING"
    assert load(path, env, log_level="debug").log_level == "DEBUG"


def test_ivr_config_env_names_the_file_when_no_path(tmp_path: Path) -> None:
    path = write(tmp_path, "[ami]\nport = 6001\n")
    assert load(None, {"IVR_CONFIG": str(path)}).ami.port == 6001


def test_explicit_path_wins_over_ivr_config(tmp_path: Path) -> None:
    named = tmp_path / "named.toml"
    named.write_text("[ami]\nport = 6002\n")
    env_file = write(tmp_path, "[ami]\nport = 6003\n")
    assert load(named, {"IVR_CONFIG": str(env_file)}).ami.port == 6002


def test_listen_accepts_bracketed_ipv6(tmp_path: Path) -> None:
    config = load(None, {}, listen="[::1]:9105")
    assert (config.listen_host, config.listen_port) == ("::1", 9105)


# -- errors: one line, naming the key --------------------------------------

def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, 'listen = "127.0.0.1:1"\n')
    assert "unknown config key listen" in message


def test_unknown_ami_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[ami]\npassword = "x"\n')
    assert "ami.password" in message
    assert "secret" in message  # lists the known keys, so the fix is obvious


def test_unknown_http_key(tmp_path: Path) -> None:
    assert "http.port" in load_error(tmp_path, "[http]\nport = 80\n")


@pytest.mark.parametrize("value", ['"abc"', "5038.5", "true", '""'])
def test_ami_port_wrong_type(tmp_path: Path, value: str) -> None:
    message = load_error(tmp_path, f"[ami]\nport = {value}\n")
    assert message.startswith("ami.port: expected int")


@pytest.mark.parametrize("key", ["ping_interval", "ping_timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "-0.5", '"soon"', "nan"])
def test_ami_durations_must_be_positive_numbers(tmp_path: Path, key: str, value: str) -> None:
    message = load_error(tmp_path, f"[ami]\n{key} = {value}\n")
    assert message.startswith(f"ami.{key}: expected float")


def test_trace_must_be_a_bool(tmp_path: Path) -> None:
    assert load_error(tmp_path, '[ami]\ntrace = "maybe"\n').startswith("ami.trace: expected bool")


def test_env_port_error_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load(None, {"IVR_AMI_PORT": "abc"})
    assert one_line(info.value).startswith("IVR_AMI_PORT: expected int")


@pytest.mark.parametrize("value", ["nohost", "host:99999", ":80", "host:", "host:-1",
                                   "host:http"])
def test_bad_listen_flag(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(None, {}, listen=value)
    message = one_line(info.value)
    assert message.startswith("--listen: expected HOST:PORT")
    assert repr(value) in message


def test_bad_listen_in_env_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load(None, {"IVR_LISTEN": "nohost"})
    assert one_line(info.value).startswith("IVR_LISTEN: expected HOST:PORT")


def test_bad_listen_in_file_names_the_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[http]\nlisten = "host:99999"\n')
    assert message.startswith("http.listen: expected HOST:PORT")


def test_bad_log_level_flag() -> None:
    with pytest.raises(ConfigError) as info:
        load(None, {}, log_level="verbose")
    message = one_line(info.value)
    assert message.startswith("--log-level:")
    assert "'verbose'" in message


def test_bad_log_level_in_env_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(None, {"IVR_LOG_LEVEL": "loud"})
    assert one_line(info.value).startswith("IVR_LOG_LEVEL:")
    assert load_error(tmp_path, 'log_level = "trace"\n').startswith("log_level:")


def test_invalid_toml(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[ami\nport = 1\n")
    assert "not valid TOML" in message
    assert "ivr.toml" in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(missing, {})
    message = one_line(info.value)
    assert str(missing) in message
    assert "No such file" in message


def test_missing_file_named_by_ivr_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(None, {"IVR_CONFIG": str(missing)})
    assert str(missing) in one_line(info.value)


def test_overflow_to_unknown_queue(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[queues.a]\noverflow_to = "b"\noverflow_after_seconds = 5\n')
    assert message.startswith("queues.a.overflow_to")
    assert "'b'" in message


def test_overflow_to_without_overflow_after_seconds(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[queues.a]\noverflow_to = "b"\n[queues.b]\n')
    assert message.startswith("queues.a:")
    assert "overflow_after_seconds" in message


def test_overflow_after_seconds_without_overflow_to(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[queues.a]\noverflow_after_seconds = 5\n")
    assert message.startswith("queues.a:")
    assert "overflow_to" in message


def test_queue_not_a_table(tmp_path: Path) -> None:
    assert load_error(tmp_path, "[queues]\na = 5\n") == "queues.a must be a table"


def test_unknown_queue_key(tmp_path: Path) -> None:
    assert "queues.a.sla" in load_error(tmp_path, "[queues.a]\nsla = 5\n")


def test_queue_sla_must_be_positive(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[queues.a]\nsla_seconds = 0\n")
    assert message.startswith("queues.a.sla_seconds: expected float")


@pytest.mark.parametrize("section", ["ami", "http", "queues"])
def test_section_not_a_table(tmp_path: Path, section: str) -> None:
    assert load_error(tmp_path, f"{section} = 5\n") == f"[{section}] must be a table"


# -- a full example, typed -------------------------------------------------

def test_full_example_round_trips_into_typed_values(tmp_path: Path) -> None:
    config = load(write(tmp_path, FULL), {"IVR_AMI_SECRET": SECRET})

    assert config.ami == AmiConfig(host="pbx.example.net", port=15038, username="ivr",
                                   secret=SECRET, ping_interval=2.5, ping_timeout=1.0,
                                   trace=True)
    assert type(config.ami.port) is int
    assert type(config.ami.ping_timeout) is float
    assert config.ami.trace is True
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9200)
    assert config.log_level == "DEBUG"
    assert config.queues == (
        QueueConfig("sales", 20.5, overflow_to="backup", overflow_after_seconds=45.0),
        QueueConfig("backup", 60.0),
    )
    assert type(config.queues[0].overflow_after_seconds) is float


def test_secret_is_not_in_repr(tmp_path: Path) -> None:
    config = load(write(tmp_path, FULL), {"IVR_AMI_SECRET": SECRET})
    assert config.ami.secret == SECRET
    assert SECRET not in repr(config)
    assert SECRET not in repr(config.ami)
    assert "file-secret" not in repr(load(write(tmp_path, FULL), {}))


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False)])
def test_trace_bool_from_file(tmp_path: Path, text: str, expected: bool) -> None:
    assert load(write(tmp_path, f"[ami]\ntrace = {text}\n"), {}).ami.trace is expected


def test_queues_section_replaces_the_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[queues.only]\n"), {})
    assert config.queues == (QueueConfig("only"),)


# -- regressions for bugs found in review ------------------------------------

def test_shipped_example_config_loads(tmp_path: Path) -> None:
    example = shipped.directory() / "ivr.example.toml"
    config = cfg.load(example, {})
    assert config.queue_names == ("first-line", "common", "engineers", "supervisors")
    assert config.ami.username == "ivr" and config.listen_port == 9105


@pytest.mark.parametrize("body, key", [
    ("[ami]\nping_interval = true\n", "ami.ping_interval"),
    ("[ami]\nport = 0\n", "ami.port"),
    ("[ami]\nport = 99999\n", "ami.port"),
    ("[ami]\nusername = 5\n", "ami.username"),
    ("[ami]\nhost = \"\"\n", "ami.host"),
    ("[queues.a]\noverflow_to = \"a\"\noverflow_after_seconds = 30\n", "queues.a.overflow_to"),
    ("[queues.a]\nsla_seconds = inf\n", "queues.a.sla_seconds"),
    ("[queues]\n", "[queues]"),
])
def test_more_bad_values_are_one_line_errors(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text(body)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, {})
    assert key in str(err.value) and "\n" not in str(err.value)


def test_non_utf8_config_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_bytes(b"[ami]\nhost = \"\xff\xfe\"\n")
    with pytest.raises(cfg.ConfigError, match="not UTF-8"):
        cfg.load(path, {})


# -- the ledger and reports ---------------------------------------------------

def test_ledger_defaults_to_sqlite_in_the_state_directory(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": str(tmp_path / "state")}
    config = load(None, env)
    assert config.ledger_url(env) == f"sqlite:///{tmp_path / 'state' / 'ledger.db'}"
    assert config.spool_path(env) == tmp_path / "state" / "ledger.db-spool.jsonl"
    assert config.report.timezone == "UTC" and config.report.short_abandon_seconds == 5.0


def test_ledger_url_from_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[ledger]\nurl = "sqlite:////srv/a.db"\nqueue_log_decisions = true\n'
                           '[report]\ntimezone = "Europe/Moscow"\n')
    assert load(path, {}).ledger.url == "sqlite:////srv/a.db"
    assert load(path, {}).ledger.queue_log_decisions is True
    assert load(path, {}).report.timezone == "Europe/Moscow"
    env = {"IVR_LEDGER_URL": "postgresql://ivr@db/ivr", "STATE_DIRECTORY": str(tmp_path)}
    config = load(path, env)
    assert config.ledger_url(env) == "postgresql://ivr@db/ivr"
    assert config.spool_path(env) == tmp_path / "ledger-spool.jsonl"


@pytest.mark.parametrize("text, message", [
    ('[ledger]\nurl = "mysql://u:pw@h/db"\n', "ledger.url: unknown scheme in 'h/db'"),
    ('[ledger]\nurl = "/var/lib/ivr/ledger.db"\n', "ledger.url: unknown scheme"),
    ('[report]\ntimezone = "Mars/Base"\n', "report.timezone: unknown time zone 'Mars/Base'"),
    ('[ledger]\nspool_max_records = 0\n', "ledger.spool_max_records"),
    ('[ledger]\nbogus = 1\n', "unknown config key ledger.bogus"),
])
def test_bad_ledger_config_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text), {})
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "pw" not in str(err.value)          # a password in the URL is never echoed


# -- several PBXs -----------------------------------------------------------------

PBXS = """\
[pbx.paris]
host = "10.0.0.1"
username = "ivr"

[pbx.lyon-2]
host = "10.0.0.2"
port = 5039
username = "ivr-lyon"
server_filter = false
"""


def test_pbx_tables_are_the_pbxs_in_order(tmp_path: Path) -> None:
    config = load(write(tmp_path, PBXS), {"IVR_PBX_PARIS_SECRET": SECRET,
                                          "IVR_PBX_LYON_2_SECRET": "other"})
    assert [p.name for p in config.pbxs] == ["paris", "lyon-2"]
    paris, lyon = config.pbxs
    assert (paris.ami.host, paris.ami.port, paris.ami.secret) == ("10.0.0.1", 5038, SECRET)
    assert (lyon.ami.port, lyon.ami.username, lyon.ami.secret, lyon.ami.server_filter) == (
        5039, "ivr-lyon", "other", False)


def test_ami_alone_is_one_pbx_named_default() -> None:
    config = load(None, {"IVR_AMI_USERNAME": "ivr"})
    assert [(p.name, p.ami.username) for p in config.pbxs] == [("default", "ivr")]


@pytest.mark.parametrize("text, env, needles", [
    (PBXS + "[ami]\nusername = \"x\"\n", {}, ("[ami] and [pbx.NAME] tables together",)),
    (PBXS, {"IVR_AMI_SECRET": "s"}, ("IVR_AMI_SECRET", "IVR_PBX_PARIS_SECRET")),
    ("[pbx.Paris]\nhost = \"h\"\n", {}, ("pbx.Paris", "a-z")),
    ("[pbx.a]\ncolour = 1\n", {}, ("unknown config key pbx.a.colour",)),
    ("[pbx.a]\nport = 0\n", {}, ("pbx.a.port",)),
    ("[pbx]\n", {}, ("[pbx] lists no PBX",)),
    ("[pbx.a]\nhost = \"h\"\n[pbx.b]\nhost = \"h\"\n", {}, ("pbx.a", "same AMI address h:5038")),
])
def test_bad_pbx_tables_are_one_line(tmp_path: Path, text: str, env: dict[str, str],
                                     needles: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message

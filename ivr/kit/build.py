"""The kit for one PBX: its site values from ivr's config, and every file with its text.

Nothing here writes (write.py does) or prints: a secret the config lacks is made here
and said only as a note naming the files that hold it.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from urllib.parse import urlsplit
from dataclasses import dataclass, field

from ivr.config import Config, PbxConfig, names, pbx_env_prefix
from ivr.kit import freepbx, readme, render, shipped
from ivr.kit.render import KitError, Site

# The shipped files the kit copies or fills in, by where they go in the kit.
PROMETHEUS = ("prometheus/prometheus.yml", "prometheus/rules/ivr-recording.yml",
              "prometheus/rules/ivr-alerts.yml", "prometheus/tests/ivr-recording.test.yml",
              "prometheus/tests/ivr-alerts.test.yml")
AS_SHIPPED = ("systemd/ivr.service", "systemd/ivr-backup.service", "systemd/ivr-backup.timer",
              "ivr.example.toml", "runbook.md", "grafana/dashboards/ivr.json",
              "grafana/provisioning/datasources/ivr.yaml",
              "grafana/provisioning/dashboards/ivr.yaml")
# Files with a secret in them (the AMI secret, the dialplan secret): written 0600.
SECRET_FILES = frozenset({"asterisk/extensions_ivr.conf", "asterisk/manager_ivr.conf",
                          "asterisk/globals_custom.conf", "asterisk/manager_custom.conf",
                          "systemd/ivr.env"})
SHIPPED = ("dialplans/extensions_ivr.conf", "dialplans/queues_ivr.conf",
           "asterisk/manager_ivr.conf", "systemd/ivr.env.example", *PROMETHEUS, *AS_SHIPPED)


@dataclass(frozen=True)
class KitFile:
    path: str                          # where it goes in the kit's folder
    text: str = field(repr=False)
    secret: bool = False               # holds a secret: written 0600


@dataclass(frozen=True)
class Kit:
    site: Site
    files: tuple[KitFile, ...]
    notes: tuple[str, ...]             # what a person should know, no secret in them


def pick_pbx(config: Config, name: str | None) -> PbxConfig:
    """--pbx NAME's table; without it, the config's first (or only) PBX."""
    pbxs = config.pbxs
    if name is None:
        return pbxs[0]
    for p in pbxs:
        if p.name == name:
            return p
    raise KitError(f"--pbx {name}: no such PBX in the config (known: "
                   f"{', '.join(p.name for p in pbxs)})")


_URL = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
_ANY = ("0.0.0.0", "::", "")


def ivr_url(config: Config, given: str | None) -> str:
    """IVR_URL: --url, else http.listen, unless that is every address of the host."""
    if given is not None:
        url = given.rstrip("/")
        # CURL() splits its arguments at commas: only a plain scheme, host and port.
        if not _URL.fullmatch(url):
            raise KitError(f"--url: expected http://HOST:PORT, where the PBX reaches ivr, got {given!r}")
        return url
    host, port = config.listen_host, config.listen_port
    if host in _ANY:
        raise KitError(f"http.listen is {host or '*'}:{port}, every address of this host: give "
                       f"the one the PBX reaches ivr at with --url http://ADDRESS:{port}")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _permit(pbx: PbxConfig, url: str) -> str:
    """Where ivr's AMI logins come from: loopback beside the PBX, else ivr's own address
    (the host of IVR_URL) when that is an IPv4 address."""
    host = urlsplit(url).hostname or ""
    if _loopback(pbx.ami.host) or _loopback(host):
        return render.LOOPBACK_PERMIT
    try:
        if ipaddress.ip_address(host).version == 4:
            return f"{host}/255.255.255.255"
    except ValueError:
        pass
    return render.LOOPBACK_PERMIT


_RUNBOOK = re.compile(r"https?://[^\s\"'#\\]+")


def runbook_url(given: str | None) -> str:
    """--runbook-url: where the site publishes runbook.md, the alerts' section anchors after it."""
    if given is None:
        return render.SHIPPED_RUNBOOK
    if not _RUNBOOK.fullmatch(given):
        raise KitError(f"--runbook-url: expected an http:// or https:// URL without '#', "
                       f"quotes or blanks, got {given[:200]!r}")
    return given


def scrape_target(config: Config, url: str) -> str:
    """Where Prometheus scrapes ivr: http.metrics_listen, with IVR_URL's host when that
    listens on every address; none without it (IVR_URL's address serves /metrics)."""
    if config.metrics_listen is None:
        return ""
    host, port = config.metrics_listen
    if host in _ANY:
        host = urlsplit(url).hostname or host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def site(config: Config, pbx_name: str | None, url: str | None,
         runbook: str | None = None) -> tuple[Site, list[str]]:
    pbx = pick_pbx(config, pbx_name)
    notes: list[str] = []
    address = ivr_url(config, url)
    if runbook is None:
        notes.append(f"the alerts' runbook_url point at {render.SHIPPED_RUNBOOK}, which never "
                     "resolves: publish runbook.md and give its URL with --runbook-url")
    dialplan_secret, ami_secret = pbx.ami.dialplan_secret, pbx.ami.secret
    if not dialplan_secret:
        dialplan_secret = secrets.token_urlsafe(24)
        notes.append(f"PBX {pbx.name} has no dialplan secret in the config: the kit made one "
                     "(in the dialplan's globals and in systemd/ivr.env)")
    if not ami_secret:
        ami_secret = secrets.token_urlsafe(24)
        notes.append(f"PBX {pbx.name} has no AMI secret in the config: the kit made one "
                     "(in the AMI user's file and in systemd/ivr.env)")
    s = Site(pbx=pbx.name, url=address, queues=config.routing.role_queues(),
             numbers={key: getattr(config.routing, key) for key in names.NUMBERS},
             ami_user=pbx.ami.username or "ivr", permit=_permit(pbx, address),
             env_prefix=pbx_env_prefix(pbx.name) if config.pbx else "IVR_AMI_",
             env_username=not pbx.ami.username,
             dialplan_secret=dialplan_secret, ami_secret=ami_secret,
             runbook=runbook_url(runbook), scrape=scrape_target(config, address))
    if s.permit == render.LOOPBACK_PERMIT and not _loopback(pbx.ami.host):
        notes.append("the AMI user permits logins from 127.0.0.1 only: set its permit to the "
                     "address ivr connects from")
    return s, notes


def kit(config: Config, pbx: str | None = None, url: str | None = None,
        freepbx_shapes: bool = False, source: str = "ivr's config",
        runbook: str | None = None) -> Kit:
    """The kit for one PBX; source says where the config came from (the README names it)."""
    s, notes = site(config, pbx, url, runbook)
    dialplan = render.extensions(shipped.read("dialplans/extensions_ivr.conf"), s)
    queues = render.queues(shipped.read("dialplans/queues_ivr.conf"), s)
    ami = render.manager(shipped.read("asterisk/manager_ivr.conf"), s)
    if freepbx_shapes:
        asterisk = freepbx.files(dialplan, queues, ami, s.numbers["hotline"])
    else:
        asterisk = {"asterisk/extensions_ivr.conf": dialplan, "asterisk/queues_ivr.conf": queues,
                    "asterisk/manager_ivr.conf": ami}
    asterisk["systemd/ivr.env"] = render.env(shipped.read("systemd/ivr.env.example"), s)
    files = [KitFile(path, text, secret=path in SECRET_FILES) for path, text in asterisk.items()]
    files += [KitFile(name, shipped.read(name)) for name in AS_SHIPPED]
    files += [KitFile(name, render.prometheus(shipped.read(name), s)) for name in PROMETHEUS]
    listing = [(f.path, f.secret) for f in files]
    files.append(KitFile("README.txt", readme.text(s, listing, freepbx_shapes, source)))
    return Kit(s, tuple(files), tuple(notes))

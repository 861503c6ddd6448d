"""The `ivr` command: run the service, or manage the lab PBX."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from ivr.cli import desk as cli_desk, ledger as cli_ledger, replay as cli_replay, tokens as cli_tokens
from ivr import config as cfg
from ivr.routing.directory import DirectoryError
from ivr.routing.incidents import IncidentError
from ivr.config.tokens import TokensError
from ivr.lab.pbx import Lab, LabError, LabStatus
from ivr.reports.billing import ReportError

log = logging.getLogger("ivr")

DESCRIPTION = """\
ivr follows every caller of an Asterisk call center through its queues over
AMI, measures answer times against each queue's SLA threshold (30.000 s by
default) to the millisecond, moves callers still waiting in first-line at
30 s to the common queue, and exports the figures to Prometheus.
"""

RUN_EPILOG = """\
configuration, lowest precedence first:
  built-in defaults      AMI 127.0.0.1:5038, HTTP 127.0.0.1:9105, queues
                         first-line (30 s, overflow to common at 30 s),
                         common, engineers
  --config FILE          TOML (see deploy/ivr.example.toml); or IVR_CONFIG
  environment            IVR_AMI_HOST IVR_AMI_PORT IVR_AMI_USERNAME
                         IVR_AMI_SECRET IVR_LISTEN IVR_LOG_LEVEL
                         IVR_API_TOKEN IVR_LEDGER_URL
  flags                  --listen, --log-level
With no AMI username anywhere, ivr uses the running lab PBX's (`ivr lab up`);
with no lab running either, that is an error.
The call ledger (ledger.url) is SQLite in the state directory by default
(/var/lib/ivr for root, $STATE_DIRECTORY under systemd); on the lab, in the
lab folder.  See `ivr ledger --help` and `ivr report billing --help`.
--record-ami FILE keeps the raw AMI stream, with each chunk's arrival time
(the Login's Secret masked), for `ivr replay FILE`; past --record-max-mb the
file rotates to FILE.1 .. FILE.3.  A failing write stops the recording, never
ivr.

HTTP endpoints:
  /metrics   Prometheus metrics (ivr_queue_*, ivr_journey*, ivr_ami_*)
  /healthz   200 while the process is alive
  /readyz    200 once logged in to AMI and resynced, else 503

exit status: 0 stopped cleanly, 1 runtime failure (e.g. port taken),
2 bad configuration.
"""

LAB_EPILOG = """\
The lab is a real Asterisk 22 chrooted in a Debian unstable root built with
debootstrap under $IVR_LAB_DIR (default ~/.cache/ivr/lab); it needs root.
SIP on udp 127.0.0.1:5060 (hotline 8800), AMI on 127.0.0.1:5038.
Agents: op1..op4 at 127.0.0.1:5071-5074 (first-line), sup1, sup2 at 5075,
5076 (supervisors), gen1, gen2 at 5091, 5092 (common), eng1, eng2 at 5081,
5082 (engineers).
"""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)   # ivr logs its own migration line
    try:
        return int(args.func(args))
    except (cfg.ConfigError, DirectoryError, IncidentError, TokensError) as exc:
        print(f"ivr: bad config: {exc}", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"ivr lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivr", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="follow the PBX and serve /metrics", description=DESCRIPTION,
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    run.add_argument("--listen", metavar="HOST:PORT", help="HTTP address (default 127.0.0.1:9105)")
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    run.add_argument("--trace-ami", action="store_true", help="log every AMI frame (secrets masked)")
    run.add_argument("--record-ami", type=Path, metavar="FILE",
                     help="record the raw AMI stream into FILE for `ivr replay` (secrets masked)")
    run.add_argument("--record-max-mb", type=_megabytes, default=64, metavar="MB",
                     help="rotate the recording past this size, keeping 3 old files (default 64)")
    run.set_defaults(func=_run)
    _lab_parser(sub)
    _incident_parser(sub)
    cli_ledger.add_parsers(sub)
    cli_replay.add_parsers(sub)
    cli_desk.add_parsers(sub)
    cli_tokens.add_parsers(sub)
    prompts = sub.add_parser("prompts", help="generate the spoken prompts (espeak-ng, sox)",
                             description="Write the dialplan's prompts as 8 kHz WAV files into DIR "
                                         "(the dialplan's IVR_PROMPTS, /var/lib/asterisk/sounds/ivr).")
    prompts.add_argument("--out", type=Path, default=Path("/var/lib/asterisk/sounds/ivr"), metavar="DIR")
    prompts.add_argument("--language", choices=("en", "ru"),
                         help="the prompts' language (default prompts.language of --config, en)")
    prompts.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    prompts.set_defaults(func=_prompts)
    demo = sub.add_parser("demo", help="lab + ivr + SIPp traffic, with a live summary")
    demo.add_argument("--minutes", type=float, default=3.0, help="how long to run (default 3)")
    demo.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9105")
    demo.set_defaults(func=_demo)
    return p


def _lab_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser("lab", help="the lab PBX: up, down, status", epilog=LAB_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lab.add_argument("--dir", type=Path, help="lab folder (default $IVR_LAB_DIR or ~/.cache/ivr/lab)")
    lab.add_argument("--name", default="default",
                     help="a second lab PBX for several-PBX setups (e.g. b: its own folder "
                          "lab-b, every port 100 higher: SIP 5160, AMI 5138)")
    lsub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = lsub.add_parser("up", help="build (first time) and start the lab Asterisk")
    up.add_argument("--fresh", action="store_true", help="rebuild the root from scratch")
    up.set_defaults(func=_lab_up)
    lsub.add_parser("down", help="stop the lab Asterisk and unmount").set_defaults(func=_lab_down)
    status = lsub.add_parser("status", help="is it running; AMI credentials")
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.set_defaults(func=_lab_status)


def _incident_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inc = sub.add_parser("incident", help="known incidents: open, list, close (control API)",
                         description="Manage known incidents through a running ivr's control API.",
                         epilog="The API token comes from --config/IVR_API_TOKEN, or the lab's.")
    inc.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    inc.add_argument("--url", help="ivr's base URL (default: http:// + the config's listen address)")
    isub = inc.add_subparsers(dest="incident_command", required=True, metavar="ACTION")
    op = isub.add_parser("open", help="announce a known incident to the callers it covers")
    op.add_argument("--area", required=True, help='area slug, or "*" for all areas')
    op.add_argument("--message", required=True, help="what callers are told (spoken)")
    op.add_argument("--expires-in", type=float, default=4 * 3600, metavar="SECONDS",
                    help="how long it stays in force (default 4 h)")
    op.set_defaults(func=_incident_open)
    isub.add_parser("list", help="incidents in force").set_defaults(func=_incident_list)
    close = isub.add_parser("close", help="end an incident")
    close.add_argument("id")
    close.set_defaults(func=_incident_close)


def _prompts(args: argparse.Namespace) -> int:
    from ivr.routing import prompts
    language = args.language or cfg.load(args.config, os.environ).prompts.language
    try:
        written = prompts.generate_static(args.out, language)
    except prompts.PromptError as exc:
        print(f"ivr prompts: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} {language} prompt(s) written, "
          f"{len(prompts.TEXTS[language]) - len(written)} already up to date, in {args.out}")
    return 0


def _incident_open(args: argparse.Namespace) -> int:
    from ivr.cli.client import call_api
    body = {"area": args.area, "message": args.message, "expires_in": args.expires_in}
    return call_api(load_config(args), args.url, "POST", "/api/v1/incidents", body)


def _incident_list(args: argparse.Namespace) -> int:
    from ivr.cli.client import call_api
    return call_api(load_config(args), args.url, "GET", "/api/v1/incidents")


def _incident_close(args: argparse.Namespace) -> int:
    from ivr.cli.client import call_api
    return call_api(load_config(args), args.url, "DELETE", f"/api/v1/incidents/{args.id}")


def load_config(args: argparse.Namespace, need_ami: bool = False) -> cfg.Config:
    config = cfg.load(getattr(args, "config", None), os.environ,
                      listen=getattr(args, "listen", None), log_level=getattr(args, "log_level", None))
    if getattr(args, "trace_ami", False):
        config = replace(config, ami=replace(config.ami, trace=True),
                         pbx=tuple(replace(p, ami=replace(p.ami, trace=True)) for p in config.pbx))
    if not config.pbx and not config.ami.username:
        # The lab is a tool of the tests and the demo, never a silent fallback: only a
        # lab that is running lends its AMI user, and nothing is created for it.
        lab = Lab()
        if not lab.running():
            if need_ami:
                raise cfg.ConfigError(
                    "no AMI username configured ([ami] username in the config file, or "
                    "IVR_AMI_USERNAME) and no lab running (`ivr lab up`)")
            return config
        try:
            status = lab.status()
        except OSError as exc:
            raise cfg.ConfigError(f"no AMI username configured and the lab's credentials "
                                  f"are unreadable: {exc}") from None
        log.debug("no AMI username configured: using the running lab PBX's AMI user")
        config = replace(config, ami=replace(config.ami, host=status.ami.host,
                                             port=status.ami.port, username=status.ami.username,
                                             secret=status.ami.secret))
        config = lab_routing(config, status)
    return config


def lab_routing(config: cfg.Config, lab: LabStatus) -> cfg.Config:
    """On the lab, unless configured: its sample directory, prompts folder, API token,
    the console's tokens (one per role) and its dialplan secret."""
    r = config.routing
    routing = replace(r, directory=r.directory or lab.subscribers,
                      prompts_dir=r.prompts_dir or lab.prompts_dir)
    api = config.api if config.api.token else replace(config.api, token=lab.api_token)
    if not api.tokens_file and lab.tokens_file:
        api = replace(api, tokens_file=lab.tokens_file)
    ledger = config.ledger if config.ledger.url else replace(config.ledger, url=lab.ledger)
    ami = config.ami if config.ami.dialplan_secret or config.pbx \
        else replace(config.ami, dialplan_secret=lab.dialplan_secret)   # the lab's [globals]
    return replace(config, routing=routing, api=api, ledger=ledger, ami=ami)


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if not 0 < value < 1 << 20:
        raise argparse.ArgumentTypeError(f"out of range (above 0, in MB): {text}")
    return value


def _run(args: argparse.Namespace) -> int:
    from ivr.ami.recording import Recorder
    from ivr.service import run, serve
    config = load_config(args, need_ami=True)
    logging.getLogger().setLevel(config.log_level)
    recorder = None
    if args.record_ami is not None:
        recorder = Recorder(args.record_ami, max_bytes=max(1, round(args.record_max_mb * (1 << 20))))
        try:
            recorder.open()     # a path that cannot be written is said now, not at connect
        except OSError as exc:
            print(f"ivr: cannot record AMI into {args.record_ami}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        log.info("recording the AMI stream into %s", args.record_ami)
    try:
        return run(serve(config, recorder))
    finally:
        if recorder is not None:
            recorder.close()


def _demo(args: argparse.Namespace) -> int:
    from ivr.lab.demo import demo
    from ivr.service import run
    Lab().up()
    return run(demo(load_config(args), args.minutes))


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.dir, name=args.name)


def _lab_up(args: argparse.Namespace) -> int:
    status = _lab(args).up(fresh=args.fresh)
    print(f"lab up: asterisk pid {status.pid}, SIP {status.sip}, "
          f"AMI {status.ami.host}:{status.ami.port} user {status.ami.username}")
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    _lab(args).down()
    print("lab down")
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(status.to_json())
    else:
        state = f"running (pid {status.pid})" if status.running else "stopped"
        print(f"lab {state}; root {status.root}; AMI {status.ami.host}:{status.ami.port}")
    return 0 if status.running else 3

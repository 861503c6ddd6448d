"""`ivr lab` and `ivr demo`, and the running lab as the fallback of an unconfigured ivr.

The lab and the demo are tools of the tests and the demo, not of the service: this is
the only module outside ivr/lab/ that knows them, and it imports them inside its
functions, so `ivr run` on a configured PBX host never loads ivr.lab.  The wheel leaves
ivr/lab out (pyproject.toml): installed from it, the lab commands say so and stop.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ivr import config as cfg
from ivr.cli.grammar import shared

if TYPE_CHECKING:
    from ivr.lab.pbx import Lab, LabStatus

log = logging.getLogger("ivr")

LAB_EPILOG = """\
The lab is a real Asterisk 22 chrooted in a Debian unstable root built with
debootstrap under $IVR_LAB_DIR (default ~/.cache/ivr/lab); it needs root.
SIP on udp 127.0.0.1:5060 (hotline 8800), AMI on 127.0.0.1:5038.
Agents: op1..op4 at 127.0.0.1:5071-5074 (first-line), sup1, sup2 at 5075,
5076 (supervisors), gen1, gen2 at 5091, 5092 (common), eng1, eng2 at 5081,
5082 (engineers).
"""

Command = Callable[[argparse.Namespace], int]

NO_LAB = ("the lab comes with a source checkout of ivr (git clone, then `make setup`), "
          "not with the installed package")


def lab_shipped() -> bool:
    """Whether this ivr has its lab: a checkout (editable install) has, a wheel has not."""
    return importlib.util.find_spec("ivr.lab") is not None


def add_lab_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    lab = sub.add_parser("lab", help="the lab PBX: up, down, status", epilog=LAB_EPILOG,
                         formatter_class=fmt)
    common = shared(lab, _lab_options)
    lsub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = lsub.add_parser("up", help="build (first time) and start the lab Asterisk",
                         parents=[common], epilog=LAB_EPILOG, formatter_class=fmt)
    up.add_argument("--fresh", action="store_true", help="rebuild the root from scratch")
    up.set_defaults(func=_lab_up)
    lsub.add_parser("down", help="stop the lab Asterisk and unmount", parents=[common],
                    epilog=LAB_EPILOG, formatter_class=fmt).set_defaults(func=_lab_down)
    status = lsub.add_parser("status", help="is it running; AMI credentials", parents=[common],
                             epilog=LAB_EPILOG + "exit status: 0 running, 3 stopped.\n",
                             formatter_class=fmt)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_lab_status)


def _lab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, help="lab folder (default $IVR_LAB_DIR or ~/.cache/ivr/lab)")
    p.add_argument("--name", default="default",
                   help="a second lab PBX for several-PBX setups (e.g. b: its own folder "
                        "lab-b, every port 100 higher: SIP 5160, AMI 5138)")


def add_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="lab + ivr + SIPp traffic, with a live summary",
                          description="Start the lab PBX (it needs root), run ivr on it and "
                                      "SIPp callers against it, and print a summary of the "
                                      "calls as they go.")
    demo.add_argument("--minutes", type=float, default=3.0, help="how long to run (default 3)")
    demo.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9105",
                      help="ivr's HTTP address during the demo (default 127.0.0.1:9105)")
    demo.set_defaults(func=_demo)


def _lab_errors(command: Command) -> Command:
    """A LabError is one line a person can act on: `ivr lab: ...`, exit 1; no lab in
    this install is one line too, exit 2."""
    @functools.wraps(command)
    def said(args: argparse.Namespace) -> int:
        if not lab_shipped():
            print(f"ivr {args.command}: {NO_LAB}", file=sys.stderr)
            return 2
        from ivr.lab.pbx import LabError
        try:
            return command(args)
        except LabError as exc:
            print(f"ivr lab: {exc}", file=sys.stderr)
            return 1
    return said


# -- the running lab as a fallback ----------------------------------------------

def with_lab(config: cfg.Config, need_ami: bool = False) -> cfg.Config:
    """With no PBX configured, the running lab's AMI user and routing (lab_routing)."""
    if config.pbx or config.ami.username:
        return config
    if not lab_shipped():
        if need_ami:
            raise cfg.ConfigError("no AMI username configured ([ami] username in the config "
                                  "file, or IVR_AMI_USERNAME)")
        return config
    from ivr.lab.pbx import Lab
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
    return lab_routing(config, status)


def lab_routing(config: cfg.Config, lab: LabStatus) -> cfg.Config:
    """On the lab, unless configured: its sample directory, prompts folder, API token,
    the console's tokens (one per role), its dialplan secret and its callback trunk."""
    r = config.routing
    routing = replace(r, directory=r.directory or lab.subscribers,
                      prompts_dir=r.prompts_dir or lab.prompts_dir)
    api = config.api if config.api.token else replace(config.api, token=lab.api_token)
    if not api.tokens_file and lab.tokens_file:
        api = replace(api, tokens_file=lab.tokens_file)
    ledger = config.ledger if config.ledger.url else replace(config.ledger, url=lab.ledger)
    ami = config.ami if config.ami.dialplan_secret or config.pbx \
        else replace(config.ami, dialplan_secret=lab.dialplan_secret)   # the lab's [globals]
    # Customers are called back through the lab's trunk, where a SIPp answers (port 5300).
    callback = config.callback if config.callback.dial \
        else replace(config.callback, dial=LAB_CALLBACK_DIAL, ring_seconds=5, retry_seconds=2)
    return replace(config, routing=routing, api=api, ledger=ledger, ami=ami, callback=callback)


LAB_CALLBACK_DIAL = "PJSIP/{number}@lab-trunk"


def with_lab_ledger(config: cfg.Config) -> cfg.Config:
    """The lab's ledger when neither AMI nor the ledger is configured and a lab exists."""
    if config.ledger.url or config.ami.username or not lab_shipped():
        return config
    from ivr.lab.pbx import Lab
    lab = Lab()
    if lab.dir.exists():
        config = replace(config, ledger=replace(config.ledger, url=lab.ledger_url()))
    return config


# -- the commands -----------------------------------------------------------------

@_lab_errors
def _demo(args: argparse.Namespace) -> int:
    from ivr.lab.demo import demo, log_to_file
    from ivr.lab.pbx import Lab, default_cache_dir
    from ivr.service import run
    log_to_file(sys.stderr, default_cache_dir())
    Lab().up()
    config = with_lab(cfg.load(None, os.environ, listen=args.listen))
    return run(demo(config, args.minutes))


def _lab(args: argparse.Namespace) -> Lab:
    from ivr.lab.pbx import Lab
    return Lab(args.dir, name=args.name)


@_lab_errors
def _lab_up(args: argparse.Namespace) -> int:
    status = _lab(args).up(fresh=args.fresh)
    print(f"lab up: asterisk pid {status.pid}, SIP {status.sip}, "
          f"AMI {status.ami.host}:{status.ami.port} user {status.ami.username}")
    return 0


@_lab_errors
def _lab_down(args: argparse.Namespace) -> int:
    _lab(args).down()
    print("lab down")
    return 0


@_lab_errors
def _lab_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(status.to_json())
    else:
        state = f"running (pid {status.pid})" if status.running else "stopped"
        print(f"lab {state}; root {status.root}; AMI {status.ami.host}:{status.ami.port}")
    return 0 if status.running else 3

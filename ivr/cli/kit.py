"""`ivr kit`: the deploy kit for one PBX, filled in from ivr's config (ivr/kit/)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ivr import config as cfg
from ivr.kit import build, write
from ivr.kit.render import KitError

EPILOG = """\
The kit: the dialplan (extensions_ivr.conf, queues_ivr.conf), the AMI user
(manager_ivr.conf), the systemd unit and ivr.env, the example config, the
Prometheus rules with their tests and the alerts' runbook, the Grafana dashboard,
and README.txt with the steps.  Filled in: IVR_URL (http.listen, or --url), the
alerts' runbook_url (--runbook-url), IVR_PBX, this PBX's dialplan
and AMI secrets (from the config and IVR_* variables, as `ivr run` reads them;
made when missing), the queues and numbers of [routing].  Files with a secret are
0600; no secret is printed.  --freepbx writes extensions_custom.conf,
globals_custom.conf, manager_custom.conf and queues_custom.conf instead.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kit = sub.add_parser("kit", help="write the deploy kit for one PBX (dialplan, AMI user, "
                                     "systemd unit, rules, dashboard, README)",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    kit.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="where to write it: a new or empty folder")
    kit.add_argument("--config", type=Path, metavar="FILE", help="ivr's config (or IVR_CONFIG)")
    kit.add_argument("--pbx", metavar="NAME", help="the PBX of a [pbx.NAME] table (default: the first)")
    kit.add_argument("--url", metavar="URL",
                     help="where the PBX reaches ivr, http://HOST:PORT (default: http.listen; "
                          "needed when ivr listens on every address)")
    kit.add_argument("--runbook-url", metavar="URL",
                     help="where you publish the kit's runbook.md: the alerts' runbook_url "
                          "(default: https://ivr.invalid/runbook.md, which never resolves)")
    kit.add_argument("--freepbx", action="store_true", help="FreePBX's *_custom files instead")
    kit.add_argument("--force", action="store_true",
                     help="write into a folder that is not empty, replacing only the kit's files")
    kit.set_defaults(func=_kit)


def _kit(args: argparse.Namespace) -> int:
    config = cfg.load(args.config, os.environ)
    named = args.config or os.environ.get("IVR_CONFIG")
    source = f"the config {named}" if named else "ivr's defaults"
    try:
        made = build.kit(config, args.pbx, args.url, args.freepbx, source + " and IVR_* variables",
                         args.runbook_url)
        write.write(args.out, made.files, force=args.force)
    except KitError as exc:
        print(f"ivr kit: {exc}", file=sys.stderr)
        return 2
    shape = "FreePBX" if args.freepbx else "Asterisk"
    print(f"ivr kit: {len(made.files)} files for PBX {made.site.pbx} ({shape}) in {args.out}; "
          f"the steps are in {args.out / 'README.txt'}")
    for note in made.notes:
        print(f"ivr kit: {note}")
    return 0

"""`ivr run`: follow the PBX and serve /metrics; and load_config, the config of every
command that talks to a PBX or to a running ivr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from ivr import config as cfg
from ivr.cli.lab import with_lab

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
  --config FILE          TOML (`ivr kit` writes an example); or IVR_CONFIG
  credentials            systemd's $CREDENTIALS_DIRECTORY: tokens, ami-secret,
                         dialplan-secret, registry.key, ledger-url
  environment            IVR_AMI_HOST IVR_AMI_PORT IVR_AMI_USERNAME
                         IVR_AMI_SECRET IVR_LISTEN IVR_METRICS_LISTEN
                         IVR_LOG_LEVEL IVR_API_TOKEN IVR_LEDGER_URL
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
  /metrics   Prometheus metrics (ivr_queue_*, ivr_journey*, ivr_ami_*); also
             alone on http.metrics_listen (IVR_METRICS_LISTEN) when set
  /healthz   200 while the process is alive
  /readyz    200 once logged in to AMI and resynced, else 503

exit status: 0 stopped cleanly, 1 runtime failure (e.g. port taken),
2 bad configuration.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def load_config(args: argparse.Namespace, need_ami: bool = False) -> cfg.Config:
    config = cfg.load(getattr(args, "config", None), os.environ,
                      listen=getattr(args, "listen", None), log_level=getattr(args, "log_level", None))
    if getattr(args, "trace_ami", False):
        config = replace(config, ami=replace(config.ami, trace=True),
                         pbx=tuple(replace(p, ami=replace(p.ami, trace=True)) for p in config.pbx))
    return with_lab(config, need_ami)


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
        return run(serve(config, recorder, lambda: load_config(args, need_ami=True)))
    finally:
        if recorder is not None:
            recorder.close()

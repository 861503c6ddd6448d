"""`ivr replay FILE`: run an AMI recording or transcript through the real pipeline
and show every call as ivr would have counted it.

This is how a support engineer answers "why was this call counted so?" from
a customer's recording, without a PBX and without touching any ledger.
Exit status: 0 done, 2 a file that cannot be read, a damaged recording, or a
file that is no recording and holds no AMI frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from pathlib import Path

from ivr.calls.judge import DEFAULT_THRESHOLD_MS, FIRST_LINE
from ivr.calls.tracker import Tracker
from ivr.pbx.replay import Replay, ReplayedCall, replay_files, to_json

REPLAY_EPILOG = """\
FILE is one of two kinds:
  a recording    written by `ivr run --record-ami FILE`: its first line is
                 "#ivr-ami-recording 1", then every chunk ivr read from AMI
                 with the time it arrived (and what ivr sent, Secret masked).
                 Events are timed as ivr timed them: by Asterisk's Timestamp
                 header, else by their arrival.  Rotated parts (FILE.2, FILE.1,
                 FILE) may be given together, oldest first.
  a transcript   anything else: the raw bytes Asterisk sent, from the banner
                 on, however captured (tests/fixtures/*.ami).  There are no
                 arrival times, so an event without a Timestamp header
                 (timestampevents = no) is timed when the replay reads it:
                 a wait Asterisk states (HoldTime) is judged as HoldTime x
                 1000 ms, as live, and a warning says so.

Each call: uniqueid, caller, payable (answered in the first-line queue
within the threshold of first entering it), then one line per queue visit:
queue, outcome, wait in ms, the member who answered.  A call the recording
ended before its hang-up is marked "in progress"; its open visit's outcome
is `waiting` (or `leaving`: left, reason not yet known), its wait unknown.

--json prints {"calls": [{"uniqueid", "caller", "payable", "in_progress",
"visits": [{"queue", "outcome", "wait_ms", "member"}]}]}.

exit status: 0 done, 2 a file unreadable, not a readable recording, or
neither a recording nor a transcript (not one AMI frame in it).
"""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay", help="replay an AMI recording or transcript: every call as ivr counts it",
        description=textwrap.fill(
            "Run an AMI recording (`ivr run --record-ami`) or a plain AMI transcript through "
            "ivr's real pipeline (codec, event parser, journey tracker, snapshot resync) and "
            "print every call it holds, with each queue visit's outcome and wait.", 78),
        epilog=REPLAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="a recording or a transcript (several: one stream, in this order)")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.add_argument("--first-line", default=FIRST_LINE, metavar="QUEUE",
                   help=f"the queue whose answers are paid (default {FIRST_LINE})")
    p.add_argument("--threshold-ms", type=_threshold, default=DEFAULT_THRESHOLD_MS, metavar="N",
                   help=f"first-line's answer threshold for payable, inclusive, and the "
                        f"wait at which a Redirect out of it is its timeout move "
                        f"(default {DEFAULT_THRESHOLD_MS})")
    p.set_defaults(func=_replay)


def _threshold(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of ms: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _replay(args: argparse.Namespace) -> int:
    # The tracker logs every call's moves at INFO: the listing already says them.
    logging.getLogger("ivr.calls.journeys").setLevel(logging.WARNING)
    tracker = Tracker({args.first_line: args.threshold_ms}, first_line=args.first_line,
                      overflow_ms={args.first_line: args.threshold_ms})
    try:
        replay = replay_files(args.files, tracker)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else args.files[0]
        print(f"ivr replay: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ivr replay: {exc}", file=sys.stderr)
        return 2
    if not replay.frames and not replay.recorded:     # a recording of a quiet PBX is one
        names = ", ".join(str(f) for f in args.files)
        print(f"ivr replay: {names}: not one AMI frame in it: neither a recording "
              f"(ivr run --record-ami) nor an AMI transcript", file=sys.stderr)
        return 2
    _warn(replay)
    calls = replay.calls()
    if args.json:
        print(json.dumps(to_json(calls), indent=2))
    else:
        print(to_table(calls))
    return 0


def _warn(replay: Replay) -> None:
    if replay.untimed:
        print(f"ivr replay: warning: {replay.untimed} event(s) had neither a Timestamp header "
              "nor an arrival time (a plain transcript from a PBX with timestampevents = no): "
              "they are timed as the replay reads them, and a wait Asterisk states is judged "
              "as its HoldTime in whole seconds, as live (a recording, ivr run --record-ami, "
              "has their arrival times)",
              file=sys.stderr)
    if replay.malformed:
        print(f"ivr replay: warning: {replay.malformed} malformed AMI frame(s) skipped",
              file=sys.stderr)


def to_table(calls: list[ReplayedCall]) -> str:
    lines: list[str] = []
    for c in calls:
        state = "  in progress" if c.in_progress else ""
        lines.append(f"{c.uniqueid}  caller {c.caller or '-'}  "
                     f"payable {'yes' if c.payable else 'no'}{state}")
        for v in c.visits:
            wait = "-" if v.wait_ms is None else f"{v.wait_ms} ms"
            lines.append(f"    {v.queue:<14} {v.outcome:<14} {wait:>10}  {v.member or '-'}")
    in_progress = sum(c.in_progress for c in calls)
    lines.append(f"{len(calls)} call(s)" + (f", {in_progress} in progress" if in_progress else ""))
    return "\n".join(lines)

"""`ivr incident open|list|close`: known incidents, through a running ivr's control API."""

from __future__ import annotations

import argparse

from ivr.cli.client import call_api
from ivr.cli.grammar import Subparsers, config_option, shared
from ivr.cli.run import load_config

EPILOG = """\
--config and --url go before the action or after it.  The API token comes
from --config (api.token) or IVR_API_TOKEN, or the running lab's.
exit status: 0 done, 1 ivr answered an error or could not be reached,
2 bad config.
"""


def add_parser(sub: Subparsers) -> None:
    inc = sub.add_parser("incident", help="known incidents: open, list, close (control API)",
                         description="Manage known incidents through a running ivr's control "
                                     "API.  Each action prints the API's JSON answer.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = shared(inc, config_option, _url_option)
    isub = inc.add_subparsers(dest="incident_command", required=True, metavar="ACTION")
    op = isub.add_parser("open", help="announce a known incident to the callers it covers",
                         parents=[common], epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    op.add_argument("--area", required=True, help='area slug, or "*" for all areas')
    op.add_argument("--message", required=True, help="what callers are told (spoken)")
    op.add_argument("--expires-in", type=float, default=4 * 3600, metavar="SECONDS",
                    help="how long it stays in force (default 4 h)")
    op.set_defaults(func=_open)
    isub.add_parser("list", help="incidents in force", parents=[common], epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter).set_defaults(func=_list)
    close = isub.add_parser("close", help="end an incident", parents=[common], epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    close.add_argument("id", metavar="ID", help="the incident's id (from open or list)")
    close.set_defaults(func=_close)


def _url_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="ivr's base URL (default: http:// + the config's listen address)")


def _open(args: argparse.Namespace) -> int:
    body = {"area": args.area, "message": args.message, "expires_in": args.expires_in}
    return call_api(load_config(args), args.url, "POST", "/api/v1/incidents", body)


def _list(args: argparse.Namespace) -> int:
    return call_api(load_config(args), args.url, "GET", "/api/v1/incidents")


def _close(args: argparse.Namespace) -> int:
    return call_api(load_config(args), args.url, "DELETE", f"/api/v1/incidents/{args.id}")

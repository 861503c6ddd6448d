"""`ivr registry key|checkpoint|prove|witness` and `verify --checkpoint/--proof`:
the registry as a transparency log (ivr/desk/tlog.py) from the shell.

    ivr registry key                       the log's public key (a vkey line) for the provider
    ivr registry checkpoint                the signed checkpoint of the registry as it is now
    ivr registry prove NUMBER              an inclusion proof of a ticket's, complaint's or
                                           claim's filing, against the latest checkpoint
    ivr registry verify --checkpoint FILE  0: today's log extends FILE's; 1: it does not;
                                           2: FILE is not a checkpoint signed by the log's key
    ivr registry verify --proof P --checkpoint FILE   0 included, 1 not, 2 malformed/unsigned
    ivr registry witness --url --token --state DIR    the provider's side (desk/witness.py)

`key` and `checkpoint` make the key file if there is none (desk.registry_key).
`verify` never does: without --key it reads the key on this host, which the
provider need not trust; with --key VKEYFILE it checks against the public key
the provider kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Awaitable, Callable

from ivr import config as cfg
from ivr.cli.common import ledger_config, ledger_epilog, run_with_store
from ivr.cli.grammar import Subparsers, config_option
from ivr.desk import keys, numbers, registry, tlog, witness
from ivr.desk.checkpoint import MAX_NOTE, Checkpoint, NoteError, Signer, Verifier, open_checkpoint
from ivr.ledger.store import Store

WITNESS_EPILOG = """\
The witness runs on the provider's host, not ivr's.  It fetches
GET URL/api/v1/registry/checkpoint with the bearer token (a token of role
office, admin, supervisor or engineer), checks the checkpoint is signed by the
pinned key (--key VKEYFILE the first time; kept in DIR/log.vkey), and that it
extends the last one it kept (GET /api/v1/registry/consistency).  It keeps
every checkpoint it has seen in DIR.
exit status (--once): 0 consistent, 1 not (an ERROR line says why), 2 bad
input, or ivr could not be asked.  As a service, the gauge
ivr_registry_witness_inconsistent is 1 from the first inconsistency on.
"""


KEY_EPILOG = """\
The key file is desk.registry_key of --config (default: registry.key in ivr's
state directory); it is made, mode 0600, if there is none.
"""


class Refused(Exception):
    """Bad input: one line, exit 2."""


def add_parsers(rsub: Subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    key = rsub.add_parser("key", help="the log's public key (vkey) for the provider to keep",
                          epilog=KEY_EPILOG, formatter_class=fmt)
    config_option(key)
    key.add_argument("--name", help="the log's name for a NEW key (default HOSTNAME/ivr-registry)")
    key.set_defaults(func=_key)
    cp = rsub.add_parser("checkpoint", help="the registry's signed checkpoint (C2SP tlog-checkpoint)",
                         epilog=KEY_EPILOG + "\n" + ledger_epilog(), formatter_class=fmt)
    config_option(cp)
    cp.set_defaults(func=_checkpoint)
    pr = rsub.add_parser("prove", help="an inclusion proof of a ticket, complaint or claim (JSON)",
                         epilog=ledger_epilog(), formatter_class=fmt)
    config_option(pr)
    pr.add_argument("number", metavar="NUMBER",
                    help="the ticket's, complaint's or claim's number (10000012...)")
    pr.add_argument("--checkpoint", type=Path, metavar="FILE",
                    help="prove against this (earlier) checkpoint instead of the latest")
    pr.set_defaults(func=_prove)
    wit = rsub.add_parser("witness", help="the provider's witness: fetch, check and keep checkpoints",
                          epilog=WITNESS_EPILOG, formatter_class=fmt)
    wit.add_argument("--url", required=True, help="ivr's HTTP address, e.g. http://ivr.example:9105")
    wit.add_argument("--token", default=os.environ.get("IVR_WITNESS_TOKEN"),
                     help="bearer token (default $IVR_WITNESS_TOKEN)")
    wit.add_argument("--state", required=True, type=Path, metavar="DIR",
                     help="where the witness keeps the pinned key and every checkpoint")
    wit.add_argument("--key", type=Path, metavar="VKEYFILE", help="the log's public key to pin")
    wit.add_argument("--interval", default="5m", help="time between checks (30s, 5m, 1h)")
    wit.add_argument("--once", action="store_true", help="check once; exit 0, 1 or 2")
    wit.add_argument("--metrics-port", type=int, metavar="PORT",
                     help="serve the witness's own /metrics on --metrics-host:PORT")
    wit.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                     help="the address of --metrics-port (default 127.0.0.1)")
    wit.set_defaults(func=_witness)


def verify_args(ver: argparse.ArgumentParser) -> None:
    ver.add_argument("--checkpoint", type=Path, metavar="FILE",
                     help="check that today's log extends this signed checkpoint")
    ver.add_argument("--proof", type=Path, metavar="FILE",
                     help="check this inclusion proof against --checkpoint")
    ver.add_argument("--key", type=Path, metavar="VKEYFILE",
                     help="the log's public key (default: the key file on this host)")


def _fail(message: str, status: int = 2) -> int:
    print(f"ivr registry: {message}", file=sys.stderr)
    return status


def _read(path: Path, cap: int, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(cap + 1)
    except OSError as exc:
        raise Refused(f"{what} {path}: {exc.strerror}") from None
    if len(data) > cap:
        raise Refused(f"{what} {path}: more than {cap} bytes, not a {what}")
    return data


def _verifier(key: Path | None, config: cfg.Config) -> Verifier:
    if key is not None:
        try:
            return Verifier.parse(_read(key, 4096, "key").decode("ascii", "replace"))
        except NoteError as exc:
            raise Refused(f"key {key}: {exc}") from None
    try:
        return keys.load(keys.path(config.desk)).verifier
    except keys.KeyFileError as exc:
        raise Refused(f"{exc}; or give the log's public key with --key") from None


def _signer(config: cfg.Config, name: str | None = None) -> Signer:
    try:
        return keys.load_or_create(keys.path(config.desk), name)
    except keys.KeyFileError as exc:
        raise Refused(str(exc)) from None


def _key(args: argparse.Namespace) -> int:
    try:
        signer = _signer(ledger_config(args), args.name)
    except Refused as exc:
        return _fail(str(exc))
    if args.name and args.name != signer.name:
        return _fail(f"the key exists, named {signer.name}; --name is for a new key only")
    print(signer.verifier.vkey())
    return 0


async def _entries(store: Store) -> list[registry.Entry]:
    rows, _ = await store.registry()
    return [registry.of_row(r) for r in rows]


def _checkpoint(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        signer = _signer(config)
        print(tlog.checkpoint(signer, tlog.leaves(await _entries(store))), end="")
        return 0
    return _guarded(args, work, check=_signer)      # the key first: needed whatever the ledger


def _prove(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        kind, number = _number(args.number)
        entries = await _entries(store)
        size = None
        if args.checkpoint is not None:
            size = _open(args.checkpoint, _verifier(None, config)).size
        try:
            print(json.dumps(tlog.prove(entries, number, size), indent=1, ensure_ascii=False))
        except LookupError as exc:
            raise Refused(str(exc)) from None
        return 0
    return _guarded(args, work, check=lambda config: _number(args.number))


def _number(text: str) -> tuple[str, str]:
    try:
        return numbers.parse(text)
    except numbers.NumberError as exc:
        raise Refused(str(exc)) from None


def _open(path: Path, verifier: Verifier) -> Checkpoint:
    try:
        return open_checkpoint(_read(path, MAX_NOTE, "checkpoint"), verifier)
    except NoteError as exc:
        raise Refused(f"checkpoint {path}: {exc}") from None


def verify(args: argparse.Namespace) -> int:
    """`verify --checkpoint` (with --proof: the proof against it, which needs no ledger:
    the office checks a proof where there is none)."""
    if args.checkpoint is None:
        return _fail("--proof needs --checkpoint FILE (the checkpoint the proof is against)")
    try:
        cp = _open(args.checkpoint, _verifier(args.key, ledger_config(args)))
        if args.proof is not None:
            return _verify_proof(args.proof, cp)
    except (Refused, cfg.ConfigError) as exc:
        return _fail(str(exc))

    async def work(config: cfg.Config, store: Store) -> int:
        result = tlog.extends(cp, tlog.leaves(await _entries(store)))
        if not result.ok:
            return _fail(f"NOT consistent with {args.checkpoint}: {result.why}", 1)
        print(f"registry consistent: {result.why}")
        return 0
    return _guarded(args, work)


def _verify_proof(path: Path, cp: Checkpoint) -> int:
    try:
        proof = tlog.Proof.parse(_read(path, tlog.MAX_PROOF_FILE, "proof"))
    except NoteError as exc:
        raise Refused(f"proof {path}: {exc}") from None
    if proof.tree_size != cp.size:
        raise Refused(f"proof {path} is for a tree of {proof.tree_size} entries, the checkpoint "
                      f"has {cp.size}: prove it again with --checkpoint")
    e = proof.entry
    if registry.digest(e.seq, e.at_us, e.kind, e.number, e.event, e.actor_role, e.actor, e.body,
                       e.prev) != e.hash:
        return _fail(f"NOT included: {e.kind} {e.number} entry {e.seq} in the proof does not "
                     f"give its own hash (the entry was altered)", 1)
    if not proof.verify(cp):
        return _fail(f"NOT included: {e.kind} {e.number} entry {e.seq} is not in the registry "
                     f"the checkpoint signed (the proof or the entry was altered)", 1)
    print(f"included: {e.kind} {e.number} ({e.event} by {e.actor_role} {e.actor}) is entry "
          f"{e.seq} of the {cp.size} the checkpoint signed")
    return 0


Work = Callable[[cfg.Config, Store], Awaitable[int]]


def _guarded(args: argparse.Namespace, work: Work,
             check: Callable[[cfg.Config], object] | None = None) -> int:
    """`work` on the ledger, read-only, `check` first; a Refused or bad config is
    `ivr registry: ...` and exit 2."""
    try:
        return run_with_store(args, work, check=check)
    except (Refused, cfg.ConfigError) as exc:
        return _fail(str(exc))


_INTERVAL = re.compile(r"([0-9]+(?:\.[0-9]+)?)(s|m|h)?")


def interval(text: str) -> float:
    m = _INTERVAL.fullmatch(text.strip())
    if not m or float(m[1]) <= 0:
        raise Refused(f"--interval {text!r}: expected a time such as 30s, 5m or 1h")
    return float(m[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


def _witness(args: argparse.Namespace) -> int:
    try:
        every = interval(args.interval)
        if not args.token:
            raise Refused("--token (or $IVR_WITNESS_TOKEN): ivr's API needs a bearer token")
        w = witness.Witness(args.url, args.token, args.state,
                            _verifier(args.key, cfg.Config()) if args.key else None)
    except (Refused, witness.WitnessError) as exc:
        return _fail(str(exc))
    if args.once:
        return asyncio.run(w.once())
    try:
        return asyncio.run(w.serve(every, args.metrics_host, args.metrics_port))
    except OSError as exc:          # the metrics port taken, say
        return _fail(f"witness: {exc.strerror or exc}")
    except KeyboardInterrupt:
        return 0

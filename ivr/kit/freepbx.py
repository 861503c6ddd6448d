"""FreePBX's shapes of the Asterisk files (`ivr kit --freepbx`).

FreePBX writes extensions.conf's [globals], manager.conf and its queues itself and
leaves *_custom files for the admin: its extensions.conf includes extensions_custom.conf,
its generated [globals] includes globals_custom.conf, its manager.conf includes
manager_custom.conf (read in FreePBX's framework sources).  So the dialplan's globals
go apart from its contexts, each file gets a header saying where it goes, and a queue
named by a number, which FreePBX's Queues module makes, is left to the module.
"""

from __future__ import annotations

import re

from ivr.kit.render import KitError


def _body(text: str) -> str:
    """The file without its leading comment block (the plain-Asterisk instructions)."""
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith(";"):
        start += 1
    return "".join(lines[start:]).lstrip("\n")


def split_globals(dialplan: str) -> tuple[str, str]:
    """(the [globals] lines, every other section) of the rendered extensions_ivr.conf."""
    found = re.search(r"^\[globals\]\n(.*?)(?=^\[)", dialplan, flags=re.M | re.S)
    if not found:
        raise KitError("the shipped extensions_ivr.conf has no [globals] section: reinstall ivr")
    lines = [line for line in found.group(1).splitlines(keepends=True)
             if not line.startswith("; If your extensions.conf has its own [globals]")]
    return "".join(lines).strip("\n") + "\n", dialplan[found.end():]


GLOBALS = """\
; ivr's dialplan globals, for FreePBX (`ivr kit --freepbx`).  FreePBX writes
; [globals] itself and includes /etc/asterisk/globals_custom.conf inside it: add
; these lines to that file.  They hold this PBX's dialplan secret: keep the file
; readable by Asterisk only.

"""

EXTENSIONS = """\
; ivr's dialplan, for FreePBX (`ivr kit --freepbx`): append it to
; /etc/asterisk/extensions_custom.conf, which FreePBX's extensions.conf includes.
; Its globals (IVR_URL, the secret, the queues) are in globals_custom.conf.
; Send the support line's inbound route to the custom destination
; ivr-customers,{hotline},1; operators' phones reach ivr-agents from from-internal.

"""

AGENTS = """
[from-internal-custom]
; FreePBX's phones dial in from-internal, which includes this context: so the
; operators' transfers to the escalation, supervisor and read-back numbers reach
; ivr-agents.  If your extensions_custom.conf has a [from-internal-custom]
; already, put this include line in it instead.
include => ivr-agents
"""

MANAGER = """\
; ivr's AMI user, least privilege, for FreePBX (`ivr kit --freepbx`): append it to
; /etc/asterisk/manager_custom.conf, which FreePBX's manager.conf includes (FreePBX
; rewrites manager.conf itself).  ivr times calls from AMI's Timestamp header: the
; [general] section must have timestampevents = yes.  It holds the AMI secret: keep
; the file readable by Asterisk only.

"""

QUEUES = """\
; ivr's queues, for FreePBX (`ivr kit --freepbx`): append to
; /etc/asterisk/queues_custom.conf.  A queue named by a number is one that FreePBX's
; Queues module makes: its section is left commented out here, so FreePBX's stays
; the only one; give it this template's settings in the module instead (common's
; too: its context ivr-callback-key and its periodic announcement of a callback).
; Members are site-specific: add them in the Queues module, or here, e.g.
;   member => PJSIP/op1,0,op1

"""


def _numbered_left_to_freepbx(queues: str) -> str:
    """A numbered queue's section, its settings too (common's callback context and
    announcement), commented out: they go into the Queues module."""
    out, inside = [], False
    for line in queues.splitlines(keepends=True):
        if re.fullmatch(r"\[[0-9]+\]\(ivr-queue\)", line.rstrip("\n")):
            out.append(f"; {line.rstrip()}   <- FreePBX's Queues module defines this queue\n")
            inside = True
            continue
        inside = inside and bool(line.strip()) and not line.startswith("[")
        out.append(f";   {line}" if inside and not line.startswith(";") else line)
    return "".join(out)


def files(dialplan: str, queues: str, ami: str, hotline: str) -> dict[str, str]:
    """The Asterisk files of the kit, from the rendered plain ones, by path in the kit."""
    values, contexts = split_globals(dialplan)
    head = EXTENSIONS.format(hotline=hotline)
    return {"asterisk/extensions_custom.conf": head + contexts.rstrip("\n") + "\n" + AGENTS,
            "asterisk/globals_custom.conf": GLOBALS + values,
            "asterisk/manager_custom.conf": MANAGER + _body(ami),
            "asterisk/queues_custom.conf": QUEUES + _numbered_left_to_freepbx(_body(queues))}

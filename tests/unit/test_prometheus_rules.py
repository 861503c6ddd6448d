"""prometheus/ of the kit (ivr/kit/files): the example config, the recording and alerting rules, and
their promtool unit tests. Also checks that ivr's real /metrics output passes
`promtool check metrics` and has every series the rules use.

Needs `promtool` (Debian package `prometheus`). Without it the tests skip, or
fail when CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import require_tool
from prometheus_client import CollectorRegistry, generate_latest

from ivr.app import overflow_rules
from ivr.kit import render, shipped
from ivr.config import Config, WebhookConfig
from ivr.metrics.desk import DeskMetrics
from ivr.metrics.webhooks import WebhookMetrics
from ivr.webhooks.sender import Sender
from ivr.desk.service import Desk
from ivr.ledger.store import Store
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents
from ivr.calls.tracker import Tracker
from ivr.http import throttle
from ivr.metrics.families import Metrics
from ivr.metrics.live import LiveCollector
from ivr.metrics import runtime
from tests.replay import Replay, transcript

PROMETHEUS = shipped.directory() / "prometheus"
RULES = ("rules/ivr-recording.yml", "rules/ivr-alerts.yml")
RULE_TESTS = ("tests/ivr-recording.test.yml", "tests/ivr-alerts.test.yml")
TRANSCRIPTS = ("answered", "abandoned", "moved")
# Where the shipped alerts point; `ivr kit --runbook-url` puts the site's in its place.
RUNBOOK_URL = render.SHIPPED_RUNBOOK


class _Ledger:
    backlog, write_errors, dropped, quarantined = 0, 0, 0, 0


class _Pbx:
    def __init__(self, tracker: Tracker) -> None:
        self.name, self.tracker, self.ami = "default", tracker, _Ami()


class _Ami:
    up, reconnects, events_received, malformed_frames = True, 1, 100, 0


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "prometheus")


def run(cmd: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run from the kit's prometheus/, where the configuration's relative paths start."""
    proc = subprocess.run(cmd, cwd=PROMETHEUS, input=stdin, capture_output=True, timeout=120,
                          env=dict(os.environ, LC_ALL="C.UTF-8"))
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))


def report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(proc.args)}\nexit {proc.returncode}\n{proc.stdout}{proc.stderr}"


def exposition() -> bytes:
    """ivr's /metrics after replaying lab transcripts, with a registry built as the app builds it."""
    config = Config()
    names = config.queue_names
    registry = CollectorRegistry()
    runtime.install(registry)    # app.build's: process_*, python_*, ivr_build_info
    metrics = Metrics(registry, names, [q.sla_seconds for q in config.queues],
                      [(r.from_queue, r.to_queue) for r in overflow_rules(config).values()])
    thresholds = {q.name: round(q.sla_seconds * 1000) for q in config.queues}
    replays = [Replay(tracker=Tracker(thresholds), metrics=metrics).feed(transcript(name))
               for name in TRANSCRIPTS]
    pbx = _Pbx(replays[-1].tracker)
    registry.register(LiveCollector([pbx], names, incidents=Incidents(), ledger=_Ledger()))
    # An in-memory ledger never opened: the desk's metrics read none.
    DeskMetrics(registry, Desk(Store("sqlite://"), Directory.empty(), Incidents()))
    WebhookMetrics(registry, Sender(Store("sqlite://"), [WebhookConfig(
        "helpdesk", "https://helpdesk.example/in", "whsec_" + "A" * 44, ("ticket.filed",))]))
    throttle.Guard(registry)     # web.make_web's: the wrong credentials of every door
    return generate_latest(registry)


def test_config_is_valid(promtool: str) -> None:
    proc = run([promtool, "check", "config", "prometheus.yml"])
    assert proc.returncode == 0, report(proc)
    # check config also checks the rule files it loads: both must be found.
    assert "2 rule files found" in proc.stdout, report(proc)


@pytest.mark.parametrize("rules", RULES)
def test_rules_are_valid(promtool: str, rules: str) -> None:
    proc = run([promtool, "check", "rules", rules])
    assert proc.returncode == 0, report(proc)


@pytest.mark.parametrize("tests", RULE_TESTS)
def test_rule_unit_tests_pass(promtool: str, tests: str) -> None:
    proc = run([promtool, "test", "rules", tests])
    assert proc.returncode == 0, report(proc)


def test_exposition_passes_promtool_check_metrics(promtool: str) -> None:
    text = exposition()
    proc = run([promtool, "check", "metrics"], stdin=text)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), report(proc)


def test_rules_use_only_exported_series() -> None:
    """A renamed metric would leave a rule silently empty: every ivr_* name in the
    rules must be in the exposition, and so must the short-abandon bucket."""
    text = exposition().decode()
    exported = set(re.findall(r"^(?:# (?:HELP|TYPE) )?(ivr_[a-z_]+)", text, flags=re.M))
    for rules in RULES:
        source = (PROMETHEUS / rules).read_text()
        # Plain metric names, not the recording rules' level:metric:operations names.
        used = set(re.findall(r"(?<![\w:])ivr_[a-z_]+(?![\w:])", source))
        assert used, rules
        assert used <= exported, f"{rules}: not exported by ivr: {sorted(used - exported)}"
    for le in re.findall(r'ivr_queue_abandon_wait_seconds_bucket\{le="([^"]+)"\}',
                         (PROMETHEUS / RULES[0]).read_text()):
        assert f'ivr_queue_abandon_wait_seconds_bucket{{le="{le}",' in text, \
            f'le="{le}" is not a bucket edge of ivr_queue_abandon_wait_seconds'


RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def sections(markdown: str) -> set[str]:
    """The anchors of a Markdown file's sections (## headings), as GitHub and most
    renderers make them."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^## (.+)$", markdown, flags=re.M)}


def alerts() -> dict[str, str]:
    """Each alert of the shipped rules with its block of text, in order."""
    text = (PROMETHEUS / RULES[1]).read_text()
    parts = re.split(r"^\s+- alert: (\w+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_alert_has_a_runbook_url_into_the_runbook() -> None:
    found = alerts()
    assert len(found) >= 12, sorted(found)
    anchors = sections(RUNBOOK.read_text())
    for name, block in found.items():
        urls = re.findall(r'^\s+runbook_url: "([^"]+)"$', block, flags=re.M)
        assert len(urls) == 1, f"{name}: runbook_url {urls}"
        base, _, anchor = urls[0].partition("#")
        assert base == RUNBOOK_URL and anchor == name.lower(), f"{name}: {urls[0]}"
        assert anchor in anchors, f"{name}: no section #{anchor} in docs/runbook.md"
    # One section per alert, and none for an alert that is gone.
    assert anchors == {name.lower() for name in found}

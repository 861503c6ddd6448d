"""`ivr run` as a user runs it: the console script, no arguments but --listen, on the lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import eventually, free_port
from tests.helpers import http_get as get

pytestmark = pytest.mark.lab
IVR = str(Path(sys.executable).with_name("ivr"))




async def test_ivr_run_follows_the_lab_and_serves_metrics(lab: Lab, phones: list[traffic.Sipp]) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    proc = subprocess.Popen([IVR, "run", "--listen", base[7:]], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await eventually(lambda: get(base + "/readyz")[0] == 200, timeout=15, what="ready")
        assert json.loads(get(base + "/readyz")[1])["ready"] is True
        assert get(base + "/healthz")[0] == 200
        phones += [traffic.agent(op, ring_ms=2000) for op in ("op1", "op2", "op3", "op4")]
        phones.append(traffic.callers(1, hold_ms=10_000, rate=1, number_prefix="7960"))

        def metric(line: str) -> bool:
            return line in get(base + "/metrics")[1].splitlines()
        await eventually(lambda: metric('ivr_queue_answered_within_sla_total{pbx="default",queue="first-line"} 1.0'),
                         timeout=20, interval=0.2, what="answered call in /metrics")
        await eventually(lambda: metric('ivr_journeys_total{outcome="answered",pbx="default"} 1.0'),
                         timeout=20, interval=0.2, what="journey ended in /metrics")
        text = get(base + "/metrics")[1]
        assert 'ivr_queue_agents{pbx="default",queue="first-line",state="available"} 4.0' in text
        assert 'ivr_queue_sla_threshold_seconds{pbx="default",queue="first-line"} 30.0' in text
        assert 'ivr_queue_answer_wait_seconds_bucket{le="30.0",pbx="default",queue="first-line"} 1.0' in text
        assert 'ivr_ami_up{pbx="default"} 1.0' in text and 'ivr_payable_calls_total{pbx="default"} 1.0' in text
    except AssertionError as failure:
        proc.send_signal(signal.SIGTERM)
        raise AssertionError(f"{failure}; ivr said:\n{proc.communicate(timeout=10)[1]}") from None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert lab.status().ami.secret not in err + out
    assert "entered first-line" in err        # logs name the call

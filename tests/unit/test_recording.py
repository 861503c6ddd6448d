"""Recordings of the raw AMI stream (ivr/ami/recording.py): written by the recorder
AmiClient feeds, read back by `ivr replay`."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
from pathlib import Path

import pytest

from ivr.ami.client import AmiClient
from ivr.ami.codec import Message, serialize
from ivr.ami.recording import (MAGIC, RECEIVED, SENT, Recorder, mask_secret, read_records,
                               read_recording)
from ivr.cli.main import main
from ivr.pbx.replay import Replay, replay_files
from tests.helpers import free_port, http_get
from tests.unit.test_cli import IVR, ami_env
from tests.unit.test_cli import SECRET as CLI_SECRET
from tests.unit.test_client import SECRET, FakeAmi, eventually, frame, make_settings, running

T0 = 1796128145.123456


def recorded(path: Path, chunks: list[tuple[str, float, bytes]], **kw: int) -> Recorder:
    rec = Recorder(path, **kw)
    for direction, at, data in chunks:
        (rec.received if direction == RECEIVED else rec.sent)(data, at)
    rec.close()
    return rec


def near(at: float) -> object:
    """Equal to a time read back within a microsecond (pytest.approx, typed as what it is
    compared with: anything)."""
    return pytest.approx(at, abs=1e-6)


# -- the recorder and the reader ---------------------------------------------

def test_round_trip_gives_back_chunks_and_times_with_the_secret_masked(tmp_path: Path) -> None:
    path = tmp_path / "ami.rec"
    login = serialize("Login", {"Username": "ivr", "Secret": SECRET, "Events": "on"}, "ivr-1")
    chunks = [(RECEIVED, T0, b"Asterisk Call Manager/11.0.0\r\n"),
              (SENT, T0 + 0.001, login),
              (RECEIVED, T0 + 0.0025, b"Response: Success\r\nActionID: ivr-1\r\n\r\nEvent: Hang"),
              (RECEIVED, T0 + 4.5, b"up\r\nUniqueid: 1.1\r\n\r\n"),
              (RECEIVED, T0 + 5, b"\n\x00\xff binary, and a header look-alike:\n< 1.000000 3\n")]
    recorded(path, chunks)
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"< 1796128145.123456 30\nAsterisk Call Manager/11.0.0\r\n\n" in raw
    assert SECRET.encode() not in raw
    masked = login.replace(SECRET.encode(), b"********")
    assert list(read_records(path)) == [
        (d, near(at), masked if d == SENT else data) for d, at, data in chunks]
    assert [(near(at), data) for d, at, data in chunks if d == RECEIVED] \
        == list(read_recording(path))


@pytest.mark.parametrize("frame_bytes, expected", [
    (b"Action: Login\r\nSecret: abc\r\n\r\n", b"Action: Login\r\nSecret: ********\r\n\r\n"),
    (b"action: login\r\nUsername: u\r\nSECRET:abc def\r\nEvents: on\r\n\r\n",
     b"action: login\r\nUsername: u\r\nSECRET:********\r\nEvents: on\r\n\r\n"),
    (b"Action: Ping\r\nActionID: 1\r\n\r\n", b"Action: Ping\r\nActionID: 1\r\n\r\n"),
    (b"Action: Setvar\r\nVariable: Secret\r\nValue: x\r\n\r\n",
     b"Action: Setvar\r\nVariable: Secret\r\nValue: x\r\n\r\n"),
])
def test_only_a_logins_secret_is_masked(frame_bytes: bytes, expected: bytes) -> None:
    assert mask_secret(frame_bytes) == expected


def test_rotation_keeps_backups_each_a_whole_recording(tmp_path: Path) -> None:
    path = tmp_path / "ami.rec"
    chunks = [(RECEIVED, T0 + n, b"Event: Noise\r\nN: %d\r\n\r\n" % n) for n in range(200)]
    recorded(path, chunks, max_bytes=500, backups=3)
    files = [path.with_name(f"ami.rec.{n}") for n in (3, 2, 1)] + [path]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)
    kept: list[bytes] = []
    for part in files:
        raw = part.read_bytes()
        assert raw.startswith(MAGIC) and len(raw) <= 500
        records = list(read_records(part))
        assert records and all(d == RECEIVED for d, _, _ in records)
        kept += [data for _, _, data in records]
    # Oldest first, the kept files are the last chunks written, whole and in order.
    assert kept == [data for _, _, data in chunks[-len(kept):]]


def test_a_chunk_larger_than_the_cap_still_goes_whole_into_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "ami.rec"
    big = b"x" * 1000
    recorded(path, [(RECEIVED, T0, b"small"), (RECEIVED, T0 + 1, big)], max_bytes=100, backups=1)
    assert [data for _, data in read_recording(path)] == [big]
    assert [data for _, data in read_recording(path.with_name("ami.rec.1"))] == [b"small"]


def test_an_earlier_recording_is_rotated_away_and_another_file_is_left_alone(
        tmp_path: Path) -> None:
    path = tmp_path / "ami.rec"
    recorded(path, [(RECEIVED, T0, b"first run")])
    recorded(path, [(RECEIVED, T0 + 60, b"second run")])
    assert [d for _, d in read_recording(path)] == [b"second run"]
    assert [d for _, d in read_recording(path.with_name("ami.rec.1"))] == [b"first run"]

    precious = tmp_path / "ivr.toml"
    precious.write_text("[ami]\n")
    with pytest.raises(FileExistsError, match="not an AMI recording"):
        Recorder(precious).open()
    assert precious.read_text() == "[ami]\n" and not precious.with_name("ivr.toml.1").exists()


def test_a_failing_write_warns_once_and_stops_recording(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "no-such-dir" / "ami.rec"
    rec = Recorder(path)
    with caplog.at_level(logging.WARNING, logger="ivr.ami.recording"):
        rec.received(b"Event: X\r\n\r\n", T0)
        rec.received(b"Event: Y\r\n\r\n", T0 + 1)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and str(path) in warnings[0]
    assert not rec.enabled


def test_a_record_cut_short_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "ami.rec"
    chunks = [(RECEIVED, T0 + n, b"Event: E\r\nN: %d\r\n\r\n" % n) for n in range(3)]
    recorded(path, chunks)
    whole = path.read_bytes()
    stream = b"".join(data for _, _, data in chunks)
    cut = tmp_path / "cut.rec"
    for end in range(len(MAGIC), len(whole) + 1):     # ivr killed at every byte
        cut.write_bytes(whole[:end])
        got = b"".join(data for _, data in read_recording(cut))
        assert stream.startswith(got)
    assert got == stream


@pytest.mark.parametrize("damage, offset", [
    (b"< yesterday 5\nhello\n", len(MAGIC)),
    (b"< 1.000000 5\nhello\n= 2.000000 1\nx\n", len(MAGIC) + 19),
    (b"< 1.000000 3\nhello\n", len(MAGIC)),       # 5 bytes behind a length of 3
    (b"garbage without an end" * 5, len(MAGIC)),
])
def test_a_damaged_record_names_the_file_and_the_byte(tmp_path: Path, damage: bytes,
                                                      offset: int) -> None:
    path = tmp_path / "bad.rec"
    path.write_bytes(MAGIC + damage)
    with pytest.raises(ValueError) as err:
        list(read_records(path))
    message = str(err.value)
    assert str(path) in message and f"at byte {offset}" in message and "\n" not in message


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v2.rec"
    path.write_bytes(b"#ivr-ami-recording 2\n< 1.000000 1\nx\n")
    with pytest.raises(ValueError, match="unknown recording version '2'"):
        list(read_records(path))


def test_a_plain_transcript_is_one_chunk_without_arrival_time(tmp_path: Path) -> None:
    path = tmp_path / "capture.ami"
    data = b"Asterisk Call Manager/11.0.0\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n"
    path.write_bytes(data)
    assert list(read_recording(path)) == [(None, data)]


# -- AmiClient records; the recording replays --------------------------------

def event(name: str, ts: float, **headers: str) -> list[tuple[str, str]]:
    return [("Event", name), ("Privilege", "agent,all"), ("Timestamp", f"{ts:.6f}"),
            *headers.items()]


def joined(ts: float, uid: str, caller: str, queue: str = "first-line") -> list[tuple[str, str]]:
    return event("QueueCallerJoin", ts, Channel=f"PJSIP/c-{uid}", CallerIDNum=caller,
                 Context="ivr-queues", Exten="first-line", Uniqueid=uid, Linkedid=uid,
                 Queue=queue, Position="1", Count="1")


TRAFFIC = [
    joined(T0, "9.1", "5001"),
    joined(T0 + 0.5, "9.2", "5002"),
    event("AgentConnect", T0 + 3.25, Uniqueid="9.1", Queue="first-line", MemberName="op1",
          Interface="PJSIP/op1", HoldTime="3"),
    event("HangupRequest", T0 + 8.49, Uniqueid="9.2"),     # the caller hangs up
    event("QueueCallerAbandon", T0 + 8.5, Channel="PJSIP/c-9.2", Context="ivr-queues",
          Exten="first-line", Uniqueid="9.2", Queue="first-line", HoldTime="8"),
    event("Hangup", T0 + 8.6, Uniqueid="9.2", Cause="0"),
    event("Hangup", T0 + 20, Uniqueid="9.1", Cause="16"),
    joined(T0 + 21, "9.3", "5003"),              # still waiting when the recording ends
]


class SnapshotAmi(FakeAmi):
    """FakeAmi that also answers CoreShowChannels, and keeps every byte it sent."""

    def __init__(self, secret: str = SECRET) -> None:
        super().__init__(secret)
        self.wire = bytearray()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        write = writer.write

        def keep(data: bytes | bytearray | memoryview) -> None:
            self.wire += data
            write(data)
        setattr(writer, "write", keep)     # this connection's writer only: every byte goes by keep
        await super()._handle(reader, writer)

    def _answer(self, msg: Message, writer: asyncio.StreamWriter) -> None:
        if msg["Action"] != "CoreShowChannels":
            return super()._answer(msg, writer)
        self.received.append(msg)
        aid = msg["ActionID"]
        writer.write(frame([("Response", "Success"), ("ActionID", aid), ("EventList", "start")])
                     + frame([("Event", "CoreShowChannel"), ("ActionID", aid),
                              ("Uniqueid", "0.9")])
                     + frame([("Event", "CoreShowChannelsComplete"), ("ActionID", aid),
                              ("EventList", "Complete"), ("ListItems", "1")]))


async def test_a_recording_made_by_amiclient_replays_as_its_bytes_fed_directly(
        tmp_path: Path) -> None:
    server = SnapshotAmi()
    await server.start()
    path = tmp_path / "ami.rec"
    recorder = Recorder(path)
    seen: list[Message] = []
    snapshots = 0

    async def on_login(client: AmiClient) -> None:      # as Pbx.resync asks
        nonlocal snapshots
        await client.action_list("QueueStatus")
        await client.action_list("CoreShowChannels")
        snapshots += 1

    try:
        client = AmiClient(make_settings(server.port), seen.append, on_login, recorder=recorder)
        async with running(client):
            await eventually(lambda: client.up and snapshots == 1)
            for pairs in TRAFFIC:
                server.send(pairs)
                await asyncio.sleep(0.01)       # several reads, so several records
            await eventually(lambda: sum(m.event != "Newchannel" for m in seen) == len(TRAFFIC))
    finally:
        await server.stop()
        recorder.close()

    raw = path.read_bytes()
    assert SECRET.encode() not in raw and b"\r\nSecret: ********\r\n" in raw
    assert b"".join(data for _, data in read_recording(path)) == bytes(server.wire)
    sent = [data for d, _, data in read_records(path) if d == SENT]
    assert [data.split(b"\r\n", 1)[0] for data in sent[:3]] == [
        b"Action: Login", b"Action: QueueStatus", b"Action: CoreShowChannels"]

    from_recording = replay_files([path])
    direct = Replay()
    direct.receive(bytes(server.wire))
    direct.close()
    assert from_recording.calls() == direct.calls()
    calls = {c.uniqueid: c for c in from_recording.calls()}
    assert [(v.outcome, v.wait_ms, v.member) for v in calls["9.1"].visits] == [
        ("answered", 3250, "op1")]
    assert calls["9.1"].payable and not calls["9.1"].in_progress
    assert [(v.outcome, v.wait_ms) for v in calls["9.2"].visits] == [("abandoned", 8000)]
    assert calls["9.3"].in_progress and calls["9.3"].visits[0].outcome == "waiting"
    # The snapshot after the login reached the tracker: its member is known.
    assert ("sales", "op1") in from_recording.tracker.members


async def test_a_recorder_that_cannot_write_never_breaks_the_connection(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeAmi()
    await server.start()
    recorder = Recorder(tmp_path / "gone" / "ami.rec")
    seen: list[Message] = []
    try:
        client = AmiClient(make_settings(server.port), seen.append, recorder=recorder)
        async with running(client):
            await eventually(lambda: client.up)
            server.send([("Event", "Hangup"), ("Uniqueid", "1.1")])
            await eventually(lambda: [m.event for m in seen] == ["Hangup"])
            assert (await client.action("Ping"))["Ping"] == "Pong"
    finally:
        await server.stop()
    assert not recorder.enabled
    assert sum("AMI recording" in r.getMessage() for r in caplog.records) == 1


# -- ivr run --record-ami, then ivr replay --------------------------------------

async def test_ivr_run_records_and_ivr_replay_reads_it(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    server = SnapshotAmi(CLI_SECRET)
    await server.start()
    path, http_port = tmp_path / "ami.rec", free_port()
    proc = subprocess.Popen(
        [str(IVR), "run", "--listen", f"127.0.0.1:{http_port}", "--record-ami", str(path)],
        env=ami_env(tmp_path, server.port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = f"http://127.0.0.1:{http_port}/readyz"

        async def answers_ready() -> bool:
            return (await asyncio.to_thread(http_get, ready))[0] == 200
        deadline = asyncio.get_running_loop().time() + 20
        while not await answers_ready():
            assert proc.poll() is None and asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        for pairs in TRAFFIC[:3] + TRAFFIC[6:7]:        # 9.1 joins, is answered, hangs up
            server.send(pairs)
        await eventually(lambda: path.exists() and b"Event: Hangup" in path.read_bytes())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=20)
        await server.stop()
    assert proc.returncode == 0, err.decode()
    assert CLI_SECRET.encode() not in path.read_bytes() + err
    assert b"Secret: ********" in path.read_bytes()

    assert main(["replay", str(path), "--json"]) == 0
    calls = {c["uniqueid"]: c for c in json.loads(capsys.readouterr().out)["calls"]}
    assert calls["9.1"] == {"uniqueid": "9.1", "caller": "5001", "payable": True,
                            "in_progress": False, "visits": [
                                {"queue": "first-line", "outcome": "answered", "wait_ms": 3250,
                                 "member": "op1"}]}
    assert calls["9.2"]["in_progress"] and calls["9.2"]["visits"][0]["outcome"] == "waiting"


def test_ivr_run_refuses_to_record_over_a_file_that_is_not_a_recording(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_AMI_USERNAME", "ivr-test")
    precious = tmp_path / "notes.txt"
    precious.write_text("mine\n")
    assert main(["run", "--record-ami", str(precious)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"ivr: cannot record AMI into {precious}: ")
    assert precious.read_text() == "mine\n"


def test_a_reconnect_in_a_recording_starts_a_fresh_stream(tmp_path: Path) -> None:
    """A frame cut short by a dropped connection must not swallow the next connection's."""
    path = tmp_path / "ami.rec"
    banner = b"Asterisk Call Manager/11.0.0\r\n"
    recorded(path, [(RECEIVED, T0, banner), (RECEIVED, T0 + 1, frame(joined(T0 + 1, "9.1", "5001"))),
                    (RECEIVED, T0 + 2, b"Event: Hangup\r\nUniq"),            # the link drops here
                    (RECEIVED, T0 + 5, banner + frame(joined(T0 + 5, "9.2", "5002")))])
    r = replay_files([path])
    assert sorted(c.uniqueid for c in r.calls()) == ["9.1", "9.2"]
    assert r.malformed == 1

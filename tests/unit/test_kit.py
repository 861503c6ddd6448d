"""`ivr kit` (issue 21 item 1): the deploy kit travels in the wheel, the lab does not, and
the kit written for a site says that site's names, numbers, address and secrets.

The wheel is built from a clean copy of the source and only unpacked, never installed:
the kit and the lab commands run from the unpacked wheel in a subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from ivr import config as cfg
from ivr.cli.main import main
from ivr.kit import build, render, shipped
from ivr.kit.render import KitError
from tests.helpers import require_tool

ROOT = Path(__file__).resolve().parents[2]
DIALPLAN_SECRET = "kit-Dialplan-secret-0123456789"
AMI_SECRET = "kit-Ami-secret-0123456789"
NUMBERED = """\
[routing]
first_line = "600"
common = "601"
engineers = "602"
supervisors = "603"
hotline = "7000"
escalation = "7011"
supervisor = "7010"
readback = "7012"
"""
SITE = f"""\
[ami]
username = "ivr-kit"
secret = "{AMI_SECRET}"
dialplan_secret = "{DIALPLAN_SECRET}"

[http]
listen = "10.0.0.5:9105"

{NUMBERED}"""
SECRET_FILES = {"asterisk/extensions_ivr.conf", "asterisk/manager_ivr.conf", "systemd/ivr.env"}


@pytest.fixture(autouse=True)
def clean_ivr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ivr kit` reads os.environ as `ivr run` does: keep the developer's IVR_* out."""
    for var in [v for v in os.environ if v.startswith("IVR_")]:
        monkeypatch.delenv(var)


def kit(tmp_path: Path, config: str, *flags: str, out: str = "kit") -> tuple[int, Path]:
    path = tmp_path / "ivr.toml"
    path.write_text(config)
    return main(["kit", "--config", str(path), "--out", str(tmp_path / out), *flags]), tmp_path / out


def sections(text: str) -> dict[str, list[str]]:
    """An Asterisk file's lines by section, comments and blanks left out."""
    found: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[([^\]]+)\](?:\(.*\))?", line)
        if header:
            current = header.group(1)
            found.setdefault(current, [])
        elif line.strip() and not line.lstrip().startswith(";"):
            found[current].append(line)
    return found


def assignments(lines: list[str]) -> dict[str, str]:
    return {key.strip(): value.strip() for key, _, value in (line.partition("=") for line in lines)}


def extens(lines: list[str]) -> set[str]:
    return {m.group(1) for line in lines if (m := re.match(r"exten => ([^,]+),1,", line))}


def env_file(path: Path) -> dict[str, str]:
    return assignments([line for line in path.read_text().splitlines()
                        if line and not line.startswith("#")])


# -- the kit written for a site -------------------------------------------------

def test_the_dialplan_says_the_sites_address_names_numbers_and_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = kit(tmp_path, SITE)
    assert code == 0
    said = capsys.readouterr()
    assert DIALPLAN_SECRET not in said.out + said.err and AMI_SECRET not in said.out + said.err
    dialplan = sections((out / "asterisk/extensions_ivr.conf").read_text())
    values = assignments(dialplan["globals"])
    assert {k: values[k] for k in render.globals_values(build.site(cfg.load(tmp_path / "ivr.toml"),
                                                                   None, None)[0])} == {
        "IVR_URL": "http://10.0.0.5:9105", "IVR_PBX": "default",
        "IVR_DIALPLAN_SECRET": DIALPLAN_SECRET, "IVR_QUEUE_FIRST_LINE": "600",
        "IVR_QUEUE_COMMON": "601", "IVR_QUEUE_ENGINEERS": "602", "IVR_QUEUE_SUPERVISORS": "603"}
    assert extens(dialplan["ivr-customers"]) == {"7000"}
    assert extens(dialplan["ivr-agents"]) == {"7010", "7011", "7012"}
    agents = "\n".join(dialplan["ivr-agents"])
    # escalation and supervisor swap the shipped order: each number keeps its part.
    assert "exten => 7011,1,NoOp(ivr: escalation" in agents
    assert "exten => 7010,1,NoOp(ivr: ${UNIQUEID} (${CALLERID(num)}) to a supervisor)" in agents
    assert "exten => 7012,1,NoOp(ivr: numbers" in agents
    queues = sections((out / "asterisk/queues_ivr.conf").read_text())
    assert {"600", "601", "602", "603", "ivr-queue"} <= set(queues)
    assert not {"first-line", "common", "engineers", "supervisors"} & set(queues)
    manager = sections((out / "asterisk/manager_ivr.conf").read_text())
    user = assignments([line for line in manager["ivr-kit"] if not line.startswith("eventfilter")])
    assert (user["secret"], user["permit"]) == (AMI_SECRET, "127.0.0.1/255.255.255.255")
    assert "ivr" not in manager


def test_secret_bearing_files_are_0600_and_the_others_0644(tmp_path: Path) -> None:
    code, out = kit(tmp_path, SITE)
    assert code == 0
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode)
             for p in out.rglob("*") if p.is_file()}
    assert {name for name, mode in modes.items() if mode == 0o600} == SECRET_FILES
    assert {mode for name, mode in modes.items() if name not in SECRET_FILES} == {0o644}
    for name, mode in modes.items():
        text = (out / name).read_text()
        assert (DIALPLAN_SECRET in text or AMI_SECRET in text) == (name in SECRET_FILES), name


def test_ivr_reads_the_secrets_the_kit_made_and_asterisk_holds(tmp_path: Path) -> None:
    """No secret in the config: the kit makes both, and ivr run with the kit's ivr.env
    reads the very values of the dialplan's globals and the AMI user."""
    code, out = kit(tmp_path, NUMBERED)
    assert code == 0
    env = env_file(out / "systemd/ivr.env")
    config = cfg.load(tmp_path / "ivr.toml", env)
    dialplan = assignments(sections((out / "asterisk/extensions_ivr.conf").read_text())["globals"])
    manager = sections((out / "asterisk/manager_ivr.conf").read_text())["ivr"]
    assert config.ami.dialplan_secret == dialplan["IVR_DIALPLAN_SECRET"]
    assert len(config.ami.dialplan_secret) >= 16
    assert config.ami.username == "ivr" and f"secret = {config.ami.secret}" in manager


def test_a_pbx_table_takes_its_own_names_and_secret_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_PBX_LYON_DIALPLAN_SECRET", DIALPLAN_SECRET)
    config = ('[pbx.paris]\nhost = "10.0.0.1"\nusername = "ivr"\n'
              '[pbx.lyon]\nhost = "10.0.0.2"\nusername = "ivr-lyon"\n'
              '[http]\nlisten = "0.0.0.0:9105"\n')
    code, out = kit(tmp_path, config, "--pbx", "lyon", "--url", "http://10.0.0.9:9105")
    assert code == 0
    values = assignments(sections((out / "asterisk/extensions_ivr.conf").read_text())["globals"])
    assert (values["IVR_PBX"], values["IVR_URL"], values["IVR_DIALPLAN_SECRET"]) == (
        "lyon", "http://10.0.0.9:9105", DIALPLAN_SECRET)
    manager = assignments(sections((out / "asterisk/manager_ivr.conf").read_text())["ivr-lyon"])
    assert manager["permit"] == "10.0.0.9/255.255.255.255"    # ivr is on another host
    env = env_file(out / "systemd/ivr.env")
    assert env["IVR_PBX_LYON_DIALPLAN_SECRET"] == DIALPLAN_SECRET
    assert not [k for k in env if k.startswith("IVR_AMI_")]    # with [pbx.NAME] ivr refuses them
    assert cfg.load(tmp_path / "ivr.toml", env).pbxs[1].ami.secret == manager["secret"]


def test_rendered_with_the_defaults_the_dialplan_is_the_shipped_file() -> None:
    """The shipped files are a valid default dialplan by themselves (the lab loads them)."""
    site = build.site(cfg.Config(), None, None)[0]
    default = render.Site(**{**site.__dict__, "dialplan_secret": ""})
    for name, fill in (("dialplans/extensions_ivr.conf", render.extensions),
                       ("dialplans/queues_ivr.conf", render.queues)):
        assert fill(shipped.read(name), default) == shipped.read(name), name


def test_a_shipped_file_out_of_shape_stops_the_kit() -> None:
    site = build.site(cfg.Config(), None, None)[0]
    text = shipped.read("dialplans/extensions_ivr.conf").replace("exten => 9001,1,", "exten => 9005,1,")
    with pytest.raises(KitError, match="exten lines .*9001"):
        render.extensions(text, site)


def test_freepbx_writes_its_custom_files(tmp_path: Path) -> None:
    code, out = kit(tmp_path, SITE.replace('common = "601"', 'common = "ivr-common"'), "--freepbx")
    assert code == 0
    asterisk = sorted(p.name for p in (out / "asterisk").iterdir())
    assert asterisk == ["extensions_custom.conf", "globals_custom.conf", "manager_custom.conf",
                        "queues_custom.conf"]
    values = sections((out / "asterisk/globals_custom.conf").read_text())
    assert list(values) == [""]                      # lines for FreePBX's own [globals]
    assert assignments(values[""])["IVR_DIALPLAN_SECRET"] == DIALPLAN_SECRET
    dialplan = sections((out / "asterisk/extensions_custom.conf").read_text())
    assert "globals" not in dialplan and extens(dialplan["ivr-customers"]) == {"7000"}
    assert dialplan["from-internal-custom"] == ["include => ivr-agents"]
    queues = sections((out / "asterisk/queues_custom.conf").read_text())
    # 600... are the Queues module's; a named queue is defined here.
    assert "ivr-common" in queues and not {"600", "602", "603"} & set(queues)
    assert "ivr-kit" in sections((out / "asterisk/manager_custom.conf").read_text())
    for name in ("globals_custom.conf", "manager_custom.conf"):
        assert stat.S_IMODE((out / "asterisk" / name).stat().st_mode) == 0o600
    assert "Not verified" in (out / "README.txt").read_text()


def test_the_readme_gives_the_steps_with_the_sites_values(tmp_path: Path) -> None:
    code, out = kit(tmp_path, SITE)
    assert code == 0
    readme = (out / "README.txt").read_text()
    for needle in ('#include "ivr/extensions_ivr.conf"', '#include "ivr/queues_ivr.conf"',
                   '#include "ivr/manager_ivr.conf"', "manager reload", "dialplan reload",
                   "module reload app_queue.so", "systemctl enable --now ivr",
                   "http://10.0.0.5:9105/readyz", "dialplan show 7000@ivr-customers",
                   "queue show 600", "timestampevents = yes", "ivr-backup.timer /etc/systemd",
                   "systemctl enable --now ivr ivr-backup.timer"):
        assert needle in readme, needle
    assert DIALPLAN_SECRET not in readme and AMI_SECRET not in readme
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                     if p.is_file() and p.name != "README.txt")
    listed = {line.split()[0]: line.split(maxsplit=1)[1:] for line in readme.splitlines()
              if line.startswith("  ") and line.split()[0] in written}
    assert sorted(listed) == written and all(listed.values()), listed   # each one said


# -- bad input: one line, exit 2, nothing half-written ------------------------------

def one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("ivr kit: "), err
    for needle in needles:
        assert needle in err, err


def test_a_folder_that_is_not_empty_is_refused_and_left_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "mine.txt").write_text("mine")
    code, out = kit(tmp_path, SITE)
    assert code == 2
    one_line(capsys, "not empty", "--force")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ivr.toml", "kit"]   # no staging left


def test_force_replaces_the_kits_own_files_only(tmp_path: Path) -> None:
    (tmp_path / "kit" / "asterisk").mkdir(parents=True)
    (tmp_path / "kit" / "mine.txt").write_text("mine")
    (tmp_path / "kit" / "asterisk" / "extensions_ivr.conf").write_text("old")
    code, out = kit(tmp_path, SITE, "--force")
    assert code == 0
    assert (out / "mine.txt").read_text() == "mine"
    assert DIALPLAN_SECRET in (out / "asterisk/extensions_ivr.conf").read_text()
    assert stat.S_IMODE((out / "asterisk/extensions_ivr.conf").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ivr.toml", "kit"]


def test_an_empty_folder_takes_the_kit(tmp_path: Path) -> None:
    (tmp_path / "kit").mkdir()
    code, out = kit(tmp_path, SITE)
    assert code == 0 and (out / "README.txt").is_file()


@pytest.mark.parametrize(("config", "flags", "needles"), [
    (SITE, ("--pbx", "lyon"), ("--pbx lyon", "known: default")),
    ('[pbx.paris]\nhost = "10.0.0.1"\n[pbx.nice]\nhost = "10.0.0.2"\n', ("--pbx", "x"),
     ("known: paris, nice",)),
    ('[http]\nlisten = "0.0.0.0:9105"\n', (), ("0.0.0.0:9105", "--url")),
    ('[http]\nlisten = "[::]:9105"\n', (), ("--url",)),
    (SITE, ("--url", "http://10.0.0.5:9105/x,y"), ("--url",)),
    ('[ami]\nsecret = "a;b-c"\n', (), ("AMI secret",)),
    (SITE, ("--runbook-url", "wiki/ivr"), ("--runbook-url",)),
    (SITE, ("--runbook-url", "https://wiki.example.net/ivr#x"), ("--runbook-url", "'#'")),
])
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str,
                               flags: tuple[str, ...], needles: tuple[str, ...]) -> None:
    code, out = kit(tmp_path, config, *flags)
    assert code == 2 and not out.exists()
    one_line(capsys, *needles)
    assert "a;b-c" not in capsys.readouterr().err


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("")
    code, _ = kit(tmp_path, SITE, out="afile/kit")
    assert code == 2
    one_line(capsys, "afile is not a folder")


# -- the rendered rules and unit still pass their tools --------------------------------

def test_the_rendered_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    code, out = kit(tmp_path, SITE)
    assert code == 0
    rules = (out / "prometheus/rules/ivr-recording.yml").read_text()
    assert 'ivr_queue_entered_total{queue="600"}' in rules and "first-line" not in rules
    # With the site's runbook too: the alerts and their tests change alike.
    assert main(["kit", "--config", str(tmp_path / "ivr.toml"), "--out", str(tmp_path / "k2"),
                 "--runbook-url", "https://wiki.example.net/ivr"]) == 0
    for kit_dir in (out, tmp_path / "k2"):
        for args in (["check", "config", "prometheus.yml"],
                     ["check", "rules", "rules/ivr-recording.yml", "rules/ivr-alerts.yml"],
                     ["test", "rules", "tests/ivr-recording.test.yml", "tests/ivr-alerts.test.yml"]):
            done = subprocess.run([promtool, *args], cwd=kit_dir / "prometheus", capture_output=True,
                                  text=True, timeout=120, env=dict(os.environ, LC_ALL="C.UTF-8"))
            assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_link_to_the_runbook_where_the_site_publishes_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = kit(tmp_path, SITE)
    assert code == 0
    assert f"runbook_url point at {render.SHIPPED_RUNBOOK}" in capsys.readouterr().out
    assert (out / "runbook.md").read_text() == (ROOT / "docs/runbook.md").read_text()
    wiki = "https://wiki.example.net/ops/ivr-runbook"
    code, out = kit(tmp_path, SITE, "--runbook-url", wiki, out="kit2")
    assert code == 0 and "--runbook-url" not in capsys.readouterr().out
    for name in ("rules/ivr-alerts.yml", "tests/ivr-alerts.test.yml"):
        text = (out / "prometheus" / name).read_text()
        assert render.SHIPPED_RUNBOOK not in text
        assert f'runbook_url: "{wiki}#ivrservicelevellow"' in text
    assert wiki in (out / "README.txt").read_text()


@pytest.mark.parametrize(("metrics_listen", "target"), [
    (None, "10.0.0.5:9105"), ("10.0.0.7:9106", "10.0.0.7:9106"), ("0.0.0.0:9106", "10.0.0.5:9106")])
def test_prometheus_scrapes_http_metrics_listen_when_set(
        tmp_path: Path, metrics_listen: str | None, target: str) -> None:
    extra = f'metrics_listen = "{metrics_listen}"\n' if metrics_listen else ""
    code, out = kit(tmp_path, SITE.replace('listen = "10.0.0.5:9105"\n',
                                           f'listen = "10.0.0.5:9105"\n{extra}'))
    assert code == 0
    config = (out / "prometheus/prometheus.yml").read_text()
    assert f'- targets: ["{target}"]' in config and render.SHIPPED_TARGET not in config
    assert f"Prometheus scrapes        {target}/metrics" in (out / "README.txt").read_text()
    alerts = (out / "prometheus/rules/ivr-alerts.yml").read_text()
    assert "http://10.0.0.5:9105/readyz" in alerts      # the API stays on IVR_URL


def test_the_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    code, out = kit(tmp_path, SITE)
    assert code == 0
    text = (out / "systemd/ivr.service").read_text()
    assert text == shipped.read("systemd/ivr.service")
    # verify checks that ExecStart's binary exists: /opt/ivr/bin/ivr only on a deployed host.
    binary = Path(sys.executable).with_name("ivr")
    copy = tmp_path / "ivr.service"
    copy.write_text(text.replace("ExecStart=/opt/ivr/bin/ivr ",
                                 f"ExecStart={binary if binary.is_file() else '/bin/true'} "))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, SYSTEMD_COLORS="0", LC_ALL="C.UTF-8"))
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


# -- the wheel: the kit in, the lab out ------------------------------------------------

def test_importlib_resources_finds_every_shipped_file() -> None:
    for name in build.SHIPPED:
        node = shipped.files()
        for part in name.split("/"):
            node = node.joinpath(part)
        assert node.is_file(), name


def _backend_here() -> bool:
    """Whether this venv can build the wheel itself: setuptools 70.1 and later carry
    bdist_wheel, older ones need the wheel package."""
    major, minor = (int(n) for n in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ivr's wheel, built from a copy of the source as a checkout updated from an older
    ivr is: no build/ folder (stale files from an old build would ride along), but the
    egg-info `make setup` wrote then, whose SOURCES.txt lists the lab's files too."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT / "ivr", src / "ivr", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    info = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()",
                           "-q", "egg_info"], cwd=src, capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stdout + info.stderr
    with (src / "ivr.egg-info" / "SOURCES.txt").open("a") as sources:
        for path in sorted((src / "ivr" / "lab").rglob("*")):
            if path.is_file():
                sources.write(f"{path.relative_to(src)}\n")
    dist = tmp_path_factory.mktemp("dist")
    isolation = ["--no-build-isolation"] if _backend_here() else []
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation,
                           "-w", str(dist), str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = dist.glob("ivr-*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(where)
    return where


def test_the_wheel_carries_the_kit_and_not_the_lab(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {f"ivr/kit/files/{name}" for name in build.SHIPPED} <= names
    assert not [n for n in names if n.startswith("ivr/lab/")]


# The venv of a checkout has ivr installed editable, whose finder would find the
# checkout's ivr.lab for the unpacked wheel's ivr: the subprocess drops it first.
FROM_THE_WHEEL = """\
import sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
import ivr
assert ivr.__file__.startswith(sys.argv[1]), ivr.__file__
from ivr.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def from_the_wheel(unpacked: Path, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(PYTHONPATH=str(unpacked), IVR_LAB_DIR=str(tmp_path / "lab"))
    return subprocess.run([sys.executable, "-c", FROM_THE_WHEEL, str(unpacked), *argv],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_from_the_wheel_ivr_kit_writes_the_kit(unpacked: Path, tmp_path: Path) -> None:
    (tmp_path / "ivr.toml").write_text(SITE)
    done = from_the_wheel(unpacked, tmp_path, "kit", "--config", "ivr.toml", "--out", "kit")
    assert done.returncode == 0, done.stderr
    written = {str(p.relative_to(tmp_path / "kit")) for p in (tmp_path / "kit").rglob("*")
               if p.is_file()}
    assert written == {f.path for f in build.kit(cfg.load(tmp_path / "ivr.toml")).files}


def test_from_the_wheel_the_lab_commands_say_where_the_lab_is(unpacked: Path,
                                                              tmp_path: Path) -> None:
    # Only `status` of a lab folder of this test: were the lab there, nothing would start.
    done = from_the_wheel(unpacked, tmp_path, "lab", "--dir", str(tmp_path / "lab"), "status")
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.splitlines() == [
        "ivr lab: the lab comes with a source checkout of ivr (git clone, then `make setup`), "
        "not with the installed package"]
    done = from_the_wheel(unpacked, tmp_path, "run")
    assert done.returncode == 2 and "lab" not in done.stderr
    assert "no AMI username configured" in done.stderr

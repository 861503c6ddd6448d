"""The atheris harnesses in fuzz/, briefly, as part of the suite.

Each harness runs for BUDGET seconds through fuzz/run.sh, from its seeds and
a fixed libFuzzer seed; anything it finds fails the test, with the input kept
under pytest's tmp_path.  Longer runs: `fuzz/run.sh 600` (fuzz/README.md).

Needs atheris (the test extras).  Without it the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import require

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "fuzz" / "run.sh"
HARNESSES = sorted(ROOT.glob("fuzz/fuzz_*.py"))
BUDGET = 10

CRASHING_HARNESS = '''
import sys
from pathlib import Path

import atheris


def test_one_input(data: bytes) -> None:
    if data.startswith(b"crash"):
        raise ValueError("found it")


if sys.argv[1:2] == ["--seeds"]:
    Path(sys.argv[2]).mkdir(parents=True)
    (Path(sys.argv[2]) / "seed").write_bytes(b"crash me")
else:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
'''


def run_fuzz(budget: int, harness: Path, artifacts: Path) -> subprocess.CompletedProcess[str]:
    require(importlib.util.find_spec("atheris") is not None,
            "atheris is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHON": sys.executable, "FUZZ_ARTIFACTS": str(artifacts),
           "TMPDIR": str(artifacts.parent)}
    return subprocess.run([str(RUN), str(budget), str(harness)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=budget + 120)


def test_there_are_harnesses() -> None:
    assert [h.name for h in HARNESSES] == ["fuzz_codec.py", "fuzz_http.py"]


@pytest.mark.parametrize("harness", HARNESSES, ids=lambda h: h.stem)
def test_harness_finds_nothing(harness: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    result = run_fuzz(BUDGET, harness, artifacts)
    found = sorted(p.name for p in artifacts.glob("*")) if artifacts.exists() else []
    assert result.returncode == 0, f"{found} in {artifacts}\n{result.stdout[-4000:]}"
    assert "Done " in result.stdout, result.stdout[-4000:]


def test_a_crash_fails_the_run(tmp_path: Path) -> None:
    harness = tmp_path / "fuzz_crashing.py"
    harness.write_text(CRASHING_HARNESS)
    artifacts = tmp_path / "artifacts"
    result = run_fuzz(5, harness, artifacts)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "ValueError: found it" in result.stdout
    (crash,) = artifacts.glob("fuzz_crashing-crash-*")
    assert crash.read_bytes().startswith(b"crash")

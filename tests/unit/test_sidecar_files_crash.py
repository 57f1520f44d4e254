"""A writer killed with SIGKILL in the middle of a tight loop of refreshes never leaves a partial file."""

from __future__ import annotations

import configparser
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

KILLS = 10
TIMEOUT_SECONDS = 10

# Rewrites the credentials files as fast as it can, each generation with a distinct key id and a
# session token as long as real ones (about 1 KB), so a torn write would show.
WRITER = """
import datetime as dt, sys
from pathlib import Path
from rolesanywhere_sidecar.files import OutputFiles
from rolesanywhere_protocol.credentials import Credentials
output = OutputFiles(Path(sys.argv[1]), profile_name="app")
output.prepare()
generation = int(sys.argv[2])  # each writer counts on from its own start
while True:
    generation += 1
    output.write_credentials(Credentials(
        access_key_id=f"ASIA{generation:016d}",
        secret_access_key=f"secret{generation:034d}",
        session_token=f"{generation:016d}" * 64,
        expiration=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
        role_arn="arn:aws:iam::123456789012:role/app",
    ))
"""


def read_generation(directory: Path) -> int | None:
    """The generation in credentials.json after checking both files are complete; None before the first write."""
    json_path, ini_path = directory / "credentials.json", directory / "credentials"
    if not json_path.exists():
        return None
    document = json.loads(json_path.read_text())
    generation = int(document["AccessKeyId"][4:])
    assert document["SessionToken"] == f"{generation:016d}" * 64
    assert document["Expiration"] == "2030-01-01T00:00:00Z"
    if ini_path.exists():
        ini = configparser.ConfigParser()
        ini.read_string(ini_path.read_text())
        ini_generation = int(ini["app"]["aws_access_key_id"][4:])
        assert ini["app"]["aws_session_token"] == f"{ini_generation:016d}" * 64
        assert ini_path.read_text().endswith("\n")
    return generation


def test_sigkill_during_refreshes_leaves_complete_files(tmp_path):
    seen: set[int] = set()
    for round_number in range(KILLS):
        before = read_generation(tmp_path)
        start = str(round_number * 10**9)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), start])
        try:
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while read_generation(tmp_path) in (before, None):  # kill once it is busy rewriting
                assert time.monotonic() < deadline, "the writer did not write"
                assert writer.poll() is None, "the writer died on its own"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(TIMEOUT_SECONDS)
        seen.add(read_generation(tmp_path))
    assert len(seen) == KILLS  # each round ended at a different, complete generation

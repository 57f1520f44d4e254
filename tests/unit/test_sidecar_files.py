"""Atomic writes and the files shared with the pod's other containers."""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from rolesanywhere_protocol.credentials import Credentials
from rolesanywhere_sidecar import files
from rolesanywhere_sidecar.files import (
    OutputFiles,
    UnusableCredentialsFile,
    check_credentials_file,
    directory_mode,
    remove_leftover_temporaries,
    write_atomically,
)

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def make_credentials(key_id: str = "ASIAEXAMPLE1", expires_in: float = 3600) -> Credentials:
    return Credentials(
        access_key_id=key_id,
        secret_access_key="secret-" + key_id,
        session_token="token-" + key_id,
        expiration=NOW + dt.timedelta(seconds=expires_in),
        role_arn="arn:aws:iam::123456789012:role/app",
    )


def test_write_creates_the_file_with_its_content_and_mode_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        write_atomically(tmp_path / "f", b"data", mode=0o640)
    finally:
        os.umask(previous)
    assert (tmp_path / "f").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_a_reader_of_the_old_file_keeps_reading_the_old_content(tmp_path):
    target = tmp_path / "f"
    write_atomically(target, b"old " * 1000, mode=0o600)
    with target.open("rb") as reader:
        write_atomically(target, b"new", mode=0o600)
        assert reader.read() == b"old " * 1000  # replaced by rename, not rewritten in place
    assert target.read_bytes() == b"new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f"
    write_atomically(target, b"old", mode=0o600)
    with pytest.raises(TypeError):
        write_atomically(target, "not bytes", mode=0o600)  # fails after the temporary file exists
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the directory to another group")
def test_files_take_the_group_of_a_set_group_id_directory_as_with_an_fs_group(tmp_path):
    # The kubelet prepares an emptyDir like this when the pod has an fsGroup.
    fs_group = 4321
    os.chown(tmp_path, -1, fs_group)
    tmp_path.chmod(0o2770)
    write_atomically(tmp_path / "f", b"x", mode=0o640)
    assert (tmp_path / "f").stat().st_gid == fs_group


def test_directory_mode_lets_the_readers_of_the_files_enter():
    assert directory_mode(0o640) == 0o750
    assert directory_mode(0o644) == 0o755
    assert directory_mode(0o600) == 0o700


def test_output_files_hold_the_credentials_in_both_formats(tmp_path):
    output = OutputFiles(tmp_path / "out", profile_name="app", mode=0o640)
    assert output.prepare() == []
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750
    output.write_credentials(make_credentials())
    process_json = json.loads((tmp_path / "out" / "credentials.json").read_text())
    assert process_json == {
        "Version": 1,
        "AccessKeyId": "ASIAEXAMPLE1",
        "SecretAccessKey": "secret-ASIAEXAMPLE1",
        "SessionToken": "token-ASIAEXAMPLE1",
        "Expiration": "2030-01-01T13:00:00Z",
    }
    ini = configparser.ConfigParser()
    ini.read(tmp_path / "out" / "credentials")
    assert dict(ini["app"]) == {
        "aws_access_key_id": "ASIAEXAMPLE1",
        "aws_secret_access_key": "secret-ASIAEXAMPLE1",
        "aws_session_token": "token-ASIAEXAMPLE1",
    }
    for name in ("credentials", "credentials.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o640


def test_the_token_file_has_no_line_break(tmp_path):
    OutputFiles(tmp_path).write_token("abc")
    assert (tmp_path / "token").read_bytes() == b"abc"


def test_leftover_temporaries_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    leftovers = [tmp_path / ".credentials.json.x1.tmp", tmp_path / ".token.x2.tmp"]
    kept = [tmp_path / "credentials", tmp_path / ".other.tmp", tmp_path / ".credentials.json.swp"]
    for path in leftovers + kept:
        path.write_text("x")
    assert sorted(remove_leftover_temporaries(tmp_path)) == sorted(leftovers)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def write_json(path: Path, document) -> Path:
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, r"does not exist yet"),
        ("{not json", r"is not readable JSON"),
        ({"Version": 1}, r"lacks AccessKeyId or Expiration"),
        ({"AccessKeyId": "A", "Expiration": "tomorrow"}, r"has Expiration 'tomorrow': expected ISO 8601"),
        ({"AccessKeyId": "A", "Expiration": "2030-01-01T12:00:59Z"}, r"less than 60 s from now"),
    ],
)
def test_check_rejects_unusable_credentials_files(tmp_path, content, expected):
    path = tmp_path / "credentials.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        write_json(path, content)
    with pytest.raises(UnusableCredentialsFile, match=expected):
        check_credentials_file(path, now=NOW, min_validity=files.MIN_VALIDITY)


def test_check_accepts_credentials_valid_for_a_minute_more(tmp_path):
    path = write_json(tmp_path / "c.json", {"AccessKeyId": "A", "Expiration": "2030-01-01T12:01:00Z"})
    assert check_credentials_file(path, now=NOW, min_validity=files.MIN_VALIDITY) == NOW + dt.timedelta(
        minutes=1
    )


def test_the_credentials_of_a_previous_run_are_read_back(tmp_path):
    output = OutputFiles(tmp_path)
    assert output.read_credentials("arn:aws:iam::123456789012:role/app") is None
    output.write_credentials(make_credentials())
    assert output.read_credentials("arn:aws:iam::123456789012:role/app") == make_credentials()
    (tmp_path / "credentials.json").write_text('{"Version": 1}')
    assert output.read_credentials("arn:aws:iam::123456789012:role/app") is None


def test_a_separate_credentials_directory_gets_both_credentials_files_and_the_shared_one_only_the_token(tmp_path):
    """Delivery EndpointOnly: the app containers mount the shared directory, where only the token is."""
    shared, private = tmp_path / "shared", tmp_path / "sidecar-only"
    output = OutputFiles(shared, credentials_directory=private)
    assert output.prepare() == []
    output.write_credentials(make_credentials())
    output.write_token("abc")
    assert sorted(p.name for p in shared.iterdir()) == ["token"]
    assert sorted(p.name for p in private.iterdir()) == ["credentials", "credentials.json"]
    assert output.read_credentials("arn:aws:iam::123456789012:role/app") is not None  # restart continuity

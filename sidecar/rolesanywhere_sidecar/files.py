"""The files the sidecar shares with the pod's other containers, each written atomically.

A reader (or a crash) at any moment sees either the old or the new complete file: the data goes to
a temporary file in the same directory, is flushed to disk, renamed over the target (rename is
atomic within one file system), and the directory entry is flushed too.

File mode: the default 0640 lets the owner and the file's group read the files, nobody else.
Who is in that group depends on the pod:
- With a pod `securityContext.fsGroup`, the kubelet makes the shared emptyDir group-owned by the
  fsGroup with the set-group-ID bit, so every file created in it gets the fsGroup as group, and every
  container of the pod runs with the fsGroup as a supplemental group: all of them can read.
- Without an fsGroup, files get the sidecar's primary group (65532 in our image), so the app
  containers need that group among the pod's `supplementalGroups` (additive, and unlike an fsGroup
  it chowns no volume), or the sidecar runs with the apps' group.
Containers outside the pod never see the emptyDir at all, so `--file-mode 0644` is the fallback
where neither holds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .contract import CREDENTIALS_FILE as CREDENTIALS_INI
from .contract import CREDENTIALS_JSON_FILE as CREDENTIALS_JSON
from .contract import TOKEN_FILE as TOKEN

if TYPE_CHECKING:
    from rolesanywhere_protocol.credentials import Credentials

# Credentials count as usable (for /readyz and `check`) only while valid at least this much longer.
MIN_VALIDITY = dt.timedelta(seconds=60)
_TEMPORARY_SUFFIX = ".tmp"


def directory_mode(file_mode: int) -> int:
    """A directory mode letting whoever may read the files also enter the directory (0640 -> 0750)."""
    return 0o700 | (file_mode & 0o077) | ((file_mode & 0o044) >> 2)


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` by a complete file holding `data` with permission bits `mode`, atomically."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=_TEMPORARY_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), mode)  # mkstemp creates 0600; the umask does not apply to fchmod
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Flush the directory entry so a rename survives a power loss, not only a process crash."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_leftover_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files a killed writer left behind (they never replace a target); return them."""
    names = (CREDENTIALS_INI, CREDENTIALS_JSON, TOKEN)
    leftovers = [
        path
        for path in directory.glob(f".*{_TEMPORARY_SUFFIX}")
        if any(path.name.startswith(f".{name}.") for name in names)
    ]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


class OutputFiles:
    """The shared directory (`token`) and the credentials directory (`credentials` (INI) and
    `credentials.json` (credential-process JSON)); by default one and the same."""

    def __init__(
        self,
        directory: Path,
        *,
        profile_name: str = "default",
        mode: int = 0o640,
        credentials_directory: Path | None = None,
    ) -> None:
        self.directory = directory
        self.credentials_directory = credentials_directory or directory
        self.profile_name = profile_name
        self.mode = mode

    def prepare(self) -> list[Path]:
        """Create the directories if needed and clean up after a killed predecessor."""
        leftovers: list[Path] = []
        for directory in dict.fromkeys((self.directory, self.credentials_directory)):
            directory.mkdir(parents=True, exist_ok=True, mode=directory_mode(self.mode))
            leftovers += remove_leftover_temporaries(directory)
        return leftovers

    def write_credentials(self, credentials: Credentials) -> None:
        """Write both credentials files from a protocol `Credentials`."""
        process_json = json.dumps(credentials.to_process_json(), indent=2) + "\n"
        write_atomically(self.credentials_directory / CREDENTIALS_JSON, process_json.encode(), mode=self.mode)
        write_atomically(
            self.credentials_directory / CREDENTIALS_INI,
            credentials.to_ini(self.profile_name).encode(),
            mode=self.mode,
        )

    def read_credentials(self, role_arn: str) -> Credentials | None:
        """The credentials a previous run of this pod's sidecar left, or None when there are none usable."""
        from rolesanywhere_protocol.credentials import Credentials

        try:
            document = json.loads((self.credentials_directory / CREDENTIALS_JSON).read_text())
            return Credentials.from_process_json(document, role_arn=role_arn)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write_token(self, token: str) -> None:
        # No trailing newline: SDKs send the file's content as the header value and reject line breaks.
        write_atomically(self.directory / TOKEN, token.encode(), mode=self.mode)


class UnusableCredentialsFile(Exception):
    """credentials.json is missing, unparsable or expires too soon; the message says which."""


def read_expiration(path: Path) -> dt.datetime:
    """The Expiration of a credential-process JSON file, as an aware datetime."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UnusableCredentialsFile(f"{path} does not exist yet") from None
    except (OSError, ValueError) as error:
        raise UnusableCredentialsFile(f"{path} is not readable JSON: {error}") from None
    if not isinstance(document, dict) or not document.get("AccessKeyId") or not document.get("Expiration"):
        raise UnusableCredentialsFile(f"{path} lacks AccessKeyId or Expiration")
    try:
        expiration = dt.datetime.fromisoformat(document["Expiration"])
    except (TypeError, ValueError):
        raise UnusableCredentialsFile(
            f"{path} has Expiration {document['Expiration']!r}: expected ISO 8601 such as 2030-01-01T00:00:00Z"
        ) from None
    if expiration.tzinfo is None:
        raise UnusableCredentialsFile(f"{path} has Expiration {document['Expiration']!r} without a time zone")
    return expiration


def check_credentials_file(path: Path, *, now: dt.datetime, min_validity: dt.timedelta) -> dt.datetime:
    """Raise UnusableCredentialsFile unless `path` holds credentials valid for `min_validity` more."""
    expiration = read_expiration(path)
    if expiration - now < min_validity:
        raise UnusableCredentialsFile(
            f"{path} holds credentials expiring at {expiration.isoformat()}, "
            f"less than {int(min_validity.total_seconds())} s from now"
        )
    return expiration

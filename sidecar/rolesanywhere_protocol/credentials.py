"""Temporary AWS credentials as CreateSession returns them, and the formats the SDKs read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import ServiceError

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_expiration(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z, the form every AWS SDK parses: 2024-05-01T12:00:00Z."""
    return moment.astimezone(dt.UTC).strftime(EXPIRATION_FORMAT)


def parse_expiration(value: str) -> dt.datetime:
    """An ISO 8601 timestamp (Z or offset, optional fraction) as an aware datetime; ValueError otherwise."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"expiration {value!r} has no time zone")
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: dt.datetime
    role_arn: str

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return (
            f"Credentials(access_key_id={self.access_key_id!r}, role_arn={self.role_arn!r}, "
            f"expiration={format_expiration(self.expiration)!r})"
        )

    def seconds_left(self, now: dt.datetime) -> float:
        return (self.expiration - now).total_seconds()

    def to_process_json(self) -> dict[str, Any]:
        """The credential_process output format (Version 1)."""
        return {
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": format_expiration(self.expiration),
        }

    def to_container_json(self) -> dict[str, Any]:
        """The container credentials provider format (AWS_CONTAINER_CREDENTIALS_FULL_URI)."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": format_expiration(self.expiration),
            "RoleArn": self.role_arn,
        }

    def to_ini(self, profile: str = "default") -> str:
        """A shared credentials file section (AWS_SHARED_CREDENTIALS_FILE)."""
        return (
            f"[{profile}]\n"
            f"aws_access_key_id = {self.access_key_id}\n"
            f"aws_secret_access_key = {self.secret_access_key}\n"
            f"aws_session_token = {self.session_token}\n"
            f"# expires {format_expiration(self.expiration)}, role {self.role_arn}\n"
        )

    @classmethod
    def from_process_json(cls, document: dict[str, Any], role_arn: str = "") -> Credentials:
        """Read back `to_process_json()` output (or aws_signing_helper's); KeyError/ValueError when malformed."""
        return cls(
            access_key_id=document["AccessKeyId"],
            secret_access_key=document["SecretAccessKey"],
            session_token=document["SessionToken"],
            expiration=parse_expiration(document["Expiration"]),
            role_arn=role_arn,
        )


def credentials_from_response(document: object, *, role_arn: str, status: int = 201) -> Credentials:
    """The first credential set of a CreateSession response body; ServiceError when it has none."""
    try:
        entry = document["credentialSet"][0]  # type: ignore[index]
        values = entry["credentials"]
        return Credentials(
            access_key_id=values["accessKeyId"],
            secret_access_key=values["secretAccessKey"],
            session_token=values["sessionToken"],
            expiration=parse_expiration(values["expiration"]),
            role_arn=entry.get("roleArn") or role_arn,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise ServiceError(
            status,
            "MalformedResponse",
            f"the response has no usable credentialSet[0].credentials ({type(error).__name__}: {error})",
            retryable=True,
        ) from None

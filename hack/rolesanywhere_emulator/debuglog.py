"""What the emulator's debug endpoints serve and accept: the log of CreateSession answers, and injected faults."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

#: How many answers /_emulator/sessions keeps (oldest dropped first).
SESSION_LOG_SIZE = 1000


@dataclass
class SessionRecord:
    """One CreateSession answer, for the debug endpoint."""

    time: str
    status: int
    code: str = ""
    reason: str = ""
    serial: str = ""  # decimal, as in the Authorization header
    serial_hex: str = ""
    subject: str = ""
    issuer: str = ""
    trust_anchor_arn: str = ""
    profile_arn: str = ""
    role_arn: str = ""
    duration_seconds: int | None = None
    access_key_id: str = ""
    expiration: str = ""

    def to_json(self) -> dict:
        return {
            "time": self.time,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "serialNumber": self.serial,
            "serialNumberHex": self.serial_hex,
            "subject": self.subject,
            "issuer": self.issuer,
            "trustAnchorArn": self.trust_anchor_arn,
            "profileArn": self.profile_arn,
            "roleArn": self.role_arn,
            "durationSeconds": self.duration_seconds,
            "accessKeyId": self.access_key_id,
            "expiration": self.expiration,
        }


@dataclass
class SessionLog:
    entries: deque = field(default_factory=lambda: deque(maxlen=SESSION_LOG_SIZE))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: SessionRecord) -> None:
        with self.lock:
            self.entries.append(record)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return [record.to_json() for record in self.entries]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


@dataclass
class Fault:
    """An injected failure answered instead of the next `count` CreateSession requests."""

    status: int
    code: str
    message: str
    count: int

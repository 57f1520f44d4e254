"""Error answers in the service's shape: HTTP status, x-amzn-ErrorType, and a JSON body {"message": ...}."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer. `message` goes to the client as the service would word it; `reason` (the
    emulator's own explanation, e.g. which check failed) goes to the log and /_emulator/sessions."""

    def __init__(self, status: int, code: str, message: str, reason: str = ""):
        super().__init__(f"{status} {code}: {message}" + (f" ({reason})" if reason else ""))
        self.status, self.code, self.message, self.reason = status, code, message, reason or message


def access_denied(message: str, reason: str = "") -> ApiError:
    return ApiError(403, "AccessDeniedException", message, reason)


def validation(message: str, reason: str = "") -> ApiError:
    return ApiError(400, "ValidationException", message, reason)


def not_found(message: str, reason: str = "") -> ApiError:
    return ApiError(404, "ResourceNotFoundException", message, reason)


def throttled(message: str = "Rate exceeded", reason: str = "") -> ApiError:
    return ApiError(429, "ThrottlingException", message, reason)


def internal(message: str, reason: str = "") -> ApiError:
    return ApiError(500, "InternalServerException", message, reason)


INVALID_SIGNATURE = "Invalid signature"
UNTRUSTED_CERTIFICATE = "Untrusted Signing Certificate"

"""Does a role's trust policy let Roles Anywhere assume it?

Roles Anywhere assumes the role as the service principal rolesanywhere.amazonaws.com and, in the
same call, tags the session and sets its source identity, so the trust policy must allow all of
REQUIRED_ACTIONS to that principal. Conditions are evaluated against the keys Roles Anywhere
supplies: aws:SourceArn (the trust anchor), aws:SourceAccount, sts:SourceIdentity, and the
certificate's attributes as aws:PrincipalTag/x509Subject/*, aws:PrincipalTag/x509Issuer/* and
aws:PrincipalTag/x509SAN/* (see tags.py). Every key has one value: a certificate attribute with
several values is one tag, its values joined by "/".

IAM's rules, as far as this module goes:
- an explicit Deny wins;
- a negated operator (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike, and their
  IgnoreCase forms) holds when the key is absent; the others do not, unless they end in IfExists;
- StringLike/ArnLike patterns know only "*" (any run of characters) and "?" (one character);
- an operator this module does not know makes an Allow grant nothing; in a Deny whose other
  conditions hold it refuses the request (fail closed: the emulator cannot tell whether it holds).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SERVICE_PRINCIPAL = "rolesanywhere.amazonaws.com"
REQUIRED_ACTIONS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")
SOURCE_IDENTITY_KEY = "sts:SourceIdentity"
PRINCIPAL_TAG_PREFIX = "aws:PrincipalTag/"
IF_EXISTS = "IfExists"

Context = Mapping[str, str]


class PolicyDenied(Exception):
    """The trust policy does not let Roles Anywhere assume the role; the message says why."""


class _Undecidable(Exception):
    """A condition uses an operator the emulator does not evaluate."""


def check_trust_policy(document: object, context: Context) -> None:
    """Raise PolicyDenied unless `document` allows every REQUIRED_ACTIONS to the Roles Anywhere principal."""
    statements = _statements(document)
    lowered = {key.lower(): value for key, value in context.items()}
    for action in REQUIRED_ACTIONS:
        allowed = False
        reason = f"no statement allows {SERVICE_PRINCIPAL} to {action}"
        for index, statement in enumerate(statements):
            if not (_principal_matches(statement) and _action_matches(statement, action)):
                continue
            effect = statement.get("Effect")
            try:
                applies, why = _conditions_hold(statement.get("Condition") or {}, lowered)
            except _Undecidable as error:
                if effect == "Deny":
                    raise PolicyDenied(
                        f"statement {index} of the trust policy is a Deny with {error}: refused, "
                        "since the emulator cannot tell whether it applies"
                    ) from None
                applies, why = False, str(error)
            if effect == "Deny" and applies:
                raise PolicyDenied(
                    f"statement {index} of the trust policy denies {action} to {SERVICE_PRINCIPAL}"
                )
            if effect == "Allow":
                allowed = allowed or applies
                reason = reason if applies else f"statement {index}: {why}"
        if not allowed:
            raise PolicyDenied(f"the trust policy does not allow {action}: {reason}")


def certificate_context(
    *, source_arn: str, source_account: str, source_identity: str, principal_tags: Mapping[str, str]
) -> dict[str, str]:
    """The condition keys Roles Anywhere provides for a request; `principal_tags` as tags.principal_tags."""
    context = {
        "aws:SourceArn": source_arn,
        "aws:SourceAccount": source_account,
        SOURCE_IDENTITY_KEY: source_identity,
    }
    context.update({PRINCIPAL_TAG_PREFIX + name: value for name, value in principal_tags.items()})
    return context


def wildcard_match(value: str, pattern: str, *, ignore_case: bool = False) -> bool:
    """IAM's *Like matching: "*" is any run of characters, "?" one character, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _statements(document: object) -> list[dict]:
    if not isinstance(document, dict) or "Statement" not in document:
        raise PolicyDenied("the trust policy has no Statement")
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    return [s for s in statements if isinstance(s, dict)]


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _principal_matches(statement: dict) -> bool:
    if "NotPrincipal" in statement:
        return not _names_service(statement["NotPrincipal"])
    return _names_service(statement.get("Principal"))


def _names_service(principal: object) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return SERVICE_PRINCIPAL in _as_list(principal.get("Service")) or "*" in _as_list(principal.get("AWS"))


def _action_matches(statement: dict, action: str) -> bool:
    def matches(patterns: object) -> bool:
        return any(wildcard_match(action, p, ignore_case=True) for p in _as_list(patterns))

    if "NotAction" in statement:
        return not matches(statement["NotAction"])
    return matches(statement.get("Action"))


def _conditions_hold(conditions: object, context: dict[str, str]) -> tuple[bool, str]:
    """(whether every condition holds, why not); _Undecidable when only an unknown operator is left.

    Known conditions are decided first, so a statement that a known condition already rules out
    never counts as undecidable.
    """
    if not isinstance(conditions, dict):
        return False, "Condition is not a mapping"
    undecidable = None
    for operator, tests in conditions.items():
        if not isinstance(tests, dict):
            return False, f"condition {operator} is not a mapping"
        for key, expected in tests.items():
            try:
                held, why = _condition(operator, key, _as_list(expected), context.get(key.lower()))
            except _Undecidable as error:
                undecidable = undecidable or error
                continue
            if not held:
                return False, why
    if undecidable:
        raise undecidable
    return True, ""


def _equals(a: str, e: str) -> bool:
    return a == e


def _equals_ignore_case(a: str, e: str) -> bool:
    return a.lower() == e.lower()


def _like(a: str, e: str) -> bool:
    return wildcard_match(a, e)


#: Positive comparisons; each also has a negated form, "Not" after the family name.
_COMPARISONS = {
    "StringEquals": _equals,
    "StringEqualsIgnoreCase": _equals_ignore_case,
    "StringLike": _like,
    "ArnEquals": _equals,
    "ArnLike": _like,
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition(operator: str, key: str, expected: list[str], actual: str | None) -> tuple[bool, str]:
    base = operator
    if_exists = base.endswith(IF_EXISTS)
    if if_exists:
        base = base[: -len(IF_EXISTS)]
    qualifier, _, base = base.rpartition(":")  # ForAnyValue: / ForAllValues: (every key has one value)
    if base == "Null":
        want_missing = [e.lower() for e in expected] == ["true"]
        return (actual is None) == want_missing, f"{operator} {key} does not hold"
    negated = base in _NEGATED
    compare = _COMPARISONS.get(_NEGATED.get(base, base))
    if compare is None:
        raise _Undecidable(f"condition operator {operator}, which the emulator does not support")
    if actual is None:
        # IAM: a negated operator on a missing key holds, and so does ForAllValues (over no values);
        # a positive one holds only with IfExists.
        held = negated or if_exists or qualifier == "ForAllValues"
        return held, f"condition key {key} is not present in the request"
    matched = any(compare(actual, e) for e in expected)
    return matched != negated, f"{operator} {key} {expected} does not hold for {actual!r}"

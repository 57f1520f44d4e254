"""Does a role's trust policy let Roles Anywhere assume it?

Roles Anywhere assumes the role as the service principal rolesanywhere.amazonaws.com and, in the
same call, tags the session and sets its source identity, so the trust policy must allow all of
REQUIRED_ACTIONS to that principal. Conditions are evaluated against the keys Roles Anywhere
supplies: aws:SourceArn (the trust anchor), aws:SourceAccount, and the certificate's attributes as
aws:PrincipalTag/x509Subject/*, aws:PrincipalTag/x509Issuer/* and aws:PrincipalTag/x509SAN/*.
An explicit Deny wins; a condition operator this module does not know makes its statement not apply
(so an Allow with it grants nothing, and a Deny with it is reported).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

SERVICE_PRINCIPAL = "rolesanywhere.amazonaws.com"
REQUIRED_ACTIONS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")

Context = Mapping[str, Sequence[str]]


class PolicyDenied(Exception):
    """The trust policy does not let Roles Anywhere assume the role; the message says why."""


def check_trust_policy(document: object, context: Context) -> None:
    """Raise PolicyDenied unless `document` allows every REQUIRED_ACTIONS to the Roles Anywhere principal."""
    statements = _statements(document)
    lowered = {key.lower(): list(values) for key, values in context.items()}
    for action in REQUIRED_ACTIONS:
        allowed = False
        reason = f"no statement allows {SERVICE_PRINCIPAL} to {action}"
        for index, statement in enumerate(statements):
            if not (_principal_matches(statement) and _action_matches(statement, action)):
                continue
            applies, why = _conditions_hold(statement.get("Condition") or {}, lowered)
            effect = statement.get("Effect")
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
    *,
    source_arn: str,
    source_account: str,
    subject: Mapping[str, Sequence[str]],
    issuer: Mapping[str, Sequence[str]],
    san: Mapping[str, Sequence[str]],
) -> dict[str, list[str]]:
    """The condition keys Roles Anywhere provides for a request."""
    context: dict[str, list[str]] = {"aws:SourceArn": [source_arn], "aws:SourceAccount": [source_account]}
    for prefix, attributes in (("x509Subject", subject), ("x509Issuer", issuer), ("x509SAN", san)):
        for name, values in attributes.items():
            context[f"aws:PrincipalTag/{prefix}/{name}"] = list(values)
    return context


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
        return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _as_list(patterns))

    if "NotAction" in statement:
        return not matches(statement["NotAction"])
    return matches(statement.get("Action"))


def _conditions_hold(conditions: object, context: dict[str, list[str]]) -> tuple[bool, str]:
    """(whether every condition holds, why not)."""
    if not isinstance(conditions, dict):
        return False, "Condition is not a mapping"
    for operator, tests in conditions.items():
        if not isinstance(tests, dict):
            return False, f"condition {operator} is not a mapping"
        for key, expected in tests.items():
            held, why = _condition(operator, key, _as_list(expected), context.get(key.lower()))
            if not held:
                return False, why
    return True, ""


def _condition(operator: str, key: str, expected: list[str], actual: list[str] | None) -> tuple[bool, str]:
    base = operator
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    qualifier, _, base = base.rpartition(":")  # ForAnyValue: / ForAllValues:
    if base == "Null":
        want_missing = [e.lower() for e in expected] == ["true"]
        return (actual is None) == want_missing, f"{operator} {key} does not hold"
    comparisons = {
        "StringEquals": lambda a, e: a == e,
        "StringNotEquals": lambda a, e: a != e,
        "StringEqualsIgnoreCase": lambda a, e: a.lower() == e.lower(),
        "StringLike": fnmatch.fnmatchcase,
        "StringNotLike": lambda a, e: not fnmatch.fnmatchcase(a, e),
        "ArnEquals": lambda a, e: a == e,
        "ArnLike": fnmatch.fnmatchcase,
        "ArnNotEquals": lambda a, e: a != e,
        "ArnNotLike": lambda a, e: not fnmatch.fnmatchcase(a, e),
    }
    compare = comparisons.get(base)
    if compare is None:
        return False, f"condition operator {operator} is not supported by the emulator"
    if actual is None:
        return if_exists, f"condition key {key} is not present in the request"
    negated = "Not" in base
    if negated:  # every actual value must differ from every expected one
        held = all(all(compare(a, e) for e in expected) for a in actual)
    elif qualifier == "ForAllValues":
        held = all(any(compare(a, e) for e in expected) for a in actual)
    else:
        held = any(compare(a, e) for a in actual for e in expected)
    return held, f"{operator} {key} {expected} does not hold for {actual}"

"""ARNs of Roles Anywhere resources and IAM roles, and the service endpoint of a region."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .limits import PARTITIONS, REGION_PATTERN

#: The service name used in ARNs, endpoint host names and the signature's credential scope.
SERVICE = "rolesanywhere"

#: Partitions Roles Anywhere runs in, and the DNS suffix of each one's endpoints.
PARTITION_DNS_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}

_ARN = re.compile(
    rf"^arn:(?P<partition>{'|'.join(PARTITIONS)}):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*)"
    r":(?P<account>\d{12}|):(?P<resource>.+)$"
)
#: Regions with a FIPS 140 endpoint for Roles Anywhere (as the AWS endpoint data lists them).
FIPS_REGIONS = frozenset(
    {"us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-gov-east-1", "us-gov-west-1"}
)

_REGION = re.compile(REGION_PATTERN)


@dataclass(frozen=True)
class Arn:
    """A parsed ARN; `resource_type`/`resource_id` split the resource at its first "/"."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def resource_type(self) -> str:
        return self.resource.split("/", 1)[0]

    @property
    def resource_id(self) -> str:
        return self.resource.split("/", 1)[1] if "/" in self.resource else ""

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(
    value: str, *, what: str = "ARN", service: str | None = None, resource_type: str | None = None
) -> Arn:
    """Parse `value`, checking the service and resource type when given; `what` names it in errors.

    >>> parse_arn("arn:aws:iam::123456789012:role/app", service="iam", resource_type="role").resource_id
    'app'
    """
    example = f"arn:aws:{service or 'SERVICE'}:REGION:123456789012:{resource_type or 'TYPE'}/ID"
    match = _ARN.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"{what} {value!r} is not a valid ARN: expected the form {example}")
    arn = Arn(**match.groupdict())
    if service and arn.service != service:
        raise ConfigError(f"{what} {value!r} is a {arn.service} ARN: expected a {service} ARN like {example}")
    if resource_type and (arn.resource_type != resource_type or not arn.resource_id):
        raise ConfigError(f"{what} {value!r} is not a {resource_type} ARN: expected the form {example}")
    if service == SERVICE and not (arn.region and arn.account):
        raise ConfigError(f"{what} {value!r} lacks a region or an account id: expected the form {example}")
    return arn


def parse_trust_anchor_arn(value: str) -> Arn:
    return parse_arn(value, what="trust anchor ARN", service=SERVICE, resource_type="trust-anchor")


def parse_profile_arn(value: str) -> Arn:
    return parse_arn(value, what="profile ARN", service=SERVICE, resource_type="profile")


def parse_role_arn(value: str) -> Arn:
    return parse_arn(value, what="role ARN", service="iam", resource_type="role")


def partition_of(region: str) -> str:
    """The partition a region belongs to (aws, aws-cn or aws-us-gov)."""
    if not _REGION.match(region or ""):
        raise ConfigError(f"region {region!r} is not a valid AWS region name: expected e.g. us-east-1")
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def endpoint_for(region: str, fips: bool = False) -> str:
    """The Roles Anywhere endpoint URL of a region, e.g. https://rolesanywhere.us-east-1.amazonaws.com.

    FIPS endpoints (rolesanywhere-fips.REGION...) exist in FIPS_REGIONS only.
    """
    partition = partition_of(region)
    if fips and region not in FIPS_REGIONS:
        raise ConfigError(
            f"Roles Anywhere has no FIPS endpoint in region {region!r}: expected one of "
            f"{', '.join(sorted(FIPS_REGIONS))}, or set an explicit endpoint"
        )
    host = f"{SERVICE}-fips" if fips else SERVICE
    return f"https://{host}.{region}.{PARTITION_DNS_SUFFIX[partition]}"


def check_same_region(trust_anchor: Arn, profile: Arn) -> str:
    """The region to call: the trust anchor's, which must also be the profile's."""
    if trust_anchor.region != profile.region:
        raise ConfigError(
            f"trust anchor {trust_anchor} is in {trust_anchor.region} but profile {profile} is in "
            f"{profile.region}: both must be in the region whose Roles Anywhere endpoint is called"
        )
    return trust_anchor.region

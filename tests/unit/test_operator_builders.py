"""The other pure builders: the Certificate, the webhook configuration, workload templates, settings."""

from __future__ import annotations

import pytest
from rolesanywhere_operator import settings as settings_module
from rolesanywhere_operator.certificates import (
    build_certificate,
    certificate_missing,
    missing_certificate_event,
)
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_operator.status import Event, Observed
from rolesanywhere_operator.webhook import build_webhook_configuration, client_config_for
from rolesanywhere_operator.workloads import ReportedOnce, missed_template_event, template_patch


def binding(certificate: dict, namespace: str = "shop"):
    return parse_binding(
        {
            "metadata": {"name": "s3-reader", "namespace": namespace, "uid": "uid-1"},
            "spec": {
                "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/"
                "11111111-2222-3333-4444-555555555555",
                "profileArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/"
                "66666666-7777-8888-9999-000000000000",
                "roleArn": "arn:aws:iam::111122223333:role/s3-reader",
                "certificate": certificate,
            },
        }
    )


LABELS = {"app.kubernetes.io/managed-by": "rolesanywhere-operator", "rolesanywhere.dev/binding-name": "s3-reader"}


def test_certificate_with_defaults():
    assert build_certificate(binding({"issuerRef": {"name": "shop-ca"}})) == {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {
            "name": "rolesanywhere-s3-reader",
            "namespace": "shop",
            "labels": LABELS,
            "ownerReferences": [
                {
                    "apiVersion": "rolesanywhere.dev/v1alpha1",
                    "kind": "RolesAnywhereBinding",
                    "name": "s3-reader",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "secretName": "rolesanywhere-s3-reader-tls",
            "secretTemplate": {"labels": LABELS},
            "commonName": "s3-reader.shop",
            "subject": {"organizations": ["shop"]},
            "duration": "24h",
            "usages": ["digital signature", "client auth"],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
            "issuerRef": {"name": "shop-ca", "kind": "Issuer", "group": "cert-manager.io"},
        },
    }


def test_certificate_with_every_option():
    cert = build_certificate(
        binding(
            {
                "issuerRef": {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"},
                "commonName": "reports",
                "organizationalUnits": ["finance", "batch"],
                "duration": "720h",
                "renewBefore": "240h",
                "privateKey": {"algorithm": "RSA"},
            }
        )
    )
    assert cert["spec"] == {
        "secretName": "rolesanywhere-s3-reader-tls",
        "secretTemplate": {"labels": LABELS},
        "commonName": "reports",
        "subject": {"organizations": ["shop"], "organizationalUnits": ["finance", "batch"]},
        "duration": "720h",
        "renewBefore": "240h",
        "usages": ["digital signature", "client auth"],
        "privateKey": {"algorithm": "RSA", "size": 2048, "encoding": "PKCS8", "rotationPolicy": "Always"},
        "issuerRef": {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"},
    }


def test_a_secret_ref_binding_has_no_certificate():
    with pytest.raises(TypeError, match="binding shop/s3-reader uses secretRef"):
        build_certificate(binding({"secretRef": {"name": "exported"}}))


HANDLED = {"metadata": {"annotations": {"rolesanywhere.dev/last-handled-configuration": "{}"}}}


def test_a_deleted_certificate_is_created_again_with_a_warning():
    issued = binding({"issuerRef": {"name": "shop-ca"}})
    assert missing_certificate_event(issued, HANDLED, Observed(generation=1)) == Event(
        "Warning", "CertificateRecreated", "Certificate rolesanywhere-s3-reader was missing (deleted?); created it again"
    )


@pytest.mark.parametrize(
    "certificate, body, observed",
    [
        ({"issuerRef": {"name": "shop-ca"}}, HANDLED, Observed(generation=1, certificate={"kind": "Certificate"})),
        ({"secretRef": {"name": "exported"}}, HANDLED, Observed(generation=1)),  # no Certificate to keep
        ({"issuerRef": {"name": "shop-ca"}}, {"metadata": {}}, Observed(generation=1)),  # new: its create handler applies it
        ({"issuerRef": {"name": "shop-ca"}},  # being deleted: the garbage collector removes it on purpose
         {"metadata": {**HANDLED["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}, Observed(generation=1)),
    ],
)
def test_a_certificate_is_not_created_again_when_it_exists_or_should_not(certificate, body, observed):
    assert missing_certificate_event(binding(certificate), body, observed) is None


@pytest.mark.parametrize(
    "certificate, body, observed, missing",
    [
        ({"issuerRef": {"name": "shop-ca"}}, HANDLED, Observed(generation=1), True),  # deleted by someone
        ({"issuerRef": {"name": "shop-ca"}}, {"metadata": {}}, Observed(generation=1), True),  # new, kopf not there yet
        ({"issuerRef": {"name": "shop-ca"}}, HANDLED, Observed(generation=1, certificate={"kind": "Certificate"}), False),
        ({"secretRef": {"name": "exported"}}, HANDLED, Observed(generation=1), False),
        ({"issuerRef": {"name": "shop-ca"}},
         {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}, Observed(generation=1), False),
    ],
)
def test_a_missing_certificate_is_applied_by_any_refresh_new_binding_or_not(certificate, body, observed, missing):
    assert certificate_missing(binding(certificate), body, observed) is missing


NAMESPACE_SELECTOR = {
    "matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "rolesanywhere-system"]},
        {"key": "rolesanywhere.dev/injection", "operator": "NotIn", "values": ["disabled"]},
    ]
}
COMMON = {
    "namespaceSelector": NAMESPACE_SELECTOR,
    "matchPolicy": "Equivalent",
    "sideEffects": "None",
    "reinvocationPolicy": "Never",
    "timeoutSeconds": 10,
    "admissionReviewVersions": ["v1"],
}


def test_webhook_configuration_out_of_cluster():
    served = {"url": "https://127.0.0.1:40123", "caBundle": "Q0E="}
    assert build_webhook_configuration(
        "rolesanywhere-operator",
        client_config_for(served, None),
        failure_policy="Fail",
        excluded_namespaces=("rolesanywhere-system", "kube-system"),
    ) == {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": "rolesanywhere-operator",
            "labels": {"app.kubernetes.io/managed-by": "rolesanywhere-operator"},
        },
        "webhooks": [
            {
                "name": "inject.pods.rolesanywhere.dev",
                "clientConfig": {"url": "https://127.0.0.1:40123/inject-pod", "caBundle": "Q0E="},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "operations": ["CREATE"],
                        "scope": "Namespaced",
                    }
                ],
                "objectSelector": {"matchLabels": {"rolesanywhere.dev/inject": "true"}},
                "failurePolicy": "Fail",
                **COMMON,
            },
            {
                "name": "template.workloads.rolesanywhere.dev",
                "clientConfig": {"url": "https://127.0.0.1:40123/copy-workload-binding", "caBundle": "Q0E="},
                "rules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "resources": ["deployments", "statefulsets", "daemonsets"],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                **COMMON,
            },
        ],
    }


def test_webhook_configuration_in_cluster_uses_the_service():
    served = {"url": "https://10.0.0.7:9443", "caBundle": "Q0E="}
    config = build_webhook_configuration(
        "rolesanywhere-operator",
        client_config_for(served, "rolesanywhere-system/rolesanywhere-webhook"),
        failure_policy="Ignore",
        excluded_namespaces=(),
    )
    pods, workloads = config["webhooks"]
    assert pods["clientConfig"] == {
        "service": {
            "namespace": "rolesanywhere-system",
            "name": "rolesanywhere-webhook",
            "port": 443,
            "path": "/inject-pod",
        },
        "caBundle": "Q0E=",
    }
    assert workloads["clientConfig"]["service"]["path"] == "/copy-workload-binding"
    assert pods["failurePolicy"] == "Ignore"
    assert client_config_for(served, "ops/hook:8443")["service"]["port"] == 8443


def test_only_opted_in_pods_are_sent_to_the_failing_webhook():
    config = build_webhook_configuration("r", {"url": "https://x"}, failure_policy="Fail", excluded_namespaces=())
    pods, workloads = config["webhooks"]
    assert pods["objectSelector"] == {"matchLabels": {"rolesanywhere.dev/inject": "true"}}
    # Workloads cannot be selected on their annotation; that webhook is Ignore, so it holds nothing up.
    assert "objectSelector" not in workloads and workloads["failurePolicy"] == "Ignore"


def workload(annotation: str | None, template: dict | None, labels: dict | None = None) -> dict:
    metadata: dict = {"annotations": template} if template is not None else {}
    if labels is not None:
        metadata["labels"] = labels
    return {
        "metadata": {"annotations": {"rolesanywhere.dev/binding": annotation} if annotation else {}},
        "spec": {"template": {"metadata": metadata}},
    }


COPIED = "rolesanywhere.dev/binding-from-workload"
BINDING = "rolesanywhere.dev/binding"
INJECT = "rolesanywhere.dev/inject"
OPTED_IN = {INJECT: "true", "app": "web"}


@pytest.mark.parametrize(
    "annotation, template, labels, patch_annotations, patch_labels",
    [
        ("s3", None, None, {BINDING: "s3", COPIED: "true"}, {INJECT: "true"}),
        ("s3", {BINDING: "s3", COPIED: "true"}, OPTED_IN, None, None),
        # copied before the label existed (an older operator): the label is added
        ("s3", {BINDING: "s3", COPIED: "true"}, {"app": "web"}, {BINDING: "s3", COPIED: "true"}, {INJECT: "true"}),
        ("dynamo", {BINDING: "s3", COPIED: "true"}, OPTED_IN, {BINDING: "dynamo", COPIED: "true"}, {INJECT: "true"}),
        (None, {BINDING: "s3", COPIED: "true", "other": "x"}, OPTED_IN, {BINDING: None, COPIED: None}, {INJECT: None}),
        # the user's own template annotation stays, and wins over the workload's; it only gets the label
        (None, {BINDING: "s3"}, None, None, {INJECT: "true"}),
        ("dynamo", {BINDING: "s3"}, None, None, {INJECT: "true"}),
        (None, {BINDING: "s3"}, OPTED_IN, None, None),
        (None, None, None, None, None),
    ],
)
def test_workload_template_patch(annotation, template, labels, patch_annotations, patch_labels):
    if patch_labels is None:
        expected = None
    else:
        metadata = {"labels": patch_labels, **({"annotations": patch_annotations} if patch_annotations else {})}
        expected = {"spec": {"template": {"metadata": metadata}}}
    assert template_patch(workload(annotation, template, labels)) == expected


def test_excluded_namespaces_setting():
    assert settings_module.resolve({}, {}).webhook_excluded_namespaces is None
    resolved = settings_module.resolve({"webhook_excluded_namespaces": "cert-manager, calico-system,"}, {})
    assert resolved.webhook_excluded_namespaces == ("cert-manager", "calico-system")
    with pytest.raises(settings_module.SettingsError, match="bad --webhook-excluded-namespaces"):
        settings_module.resolve({"webhook_excluded_namespaces": "../x"}, {})


def test_settings_precedence_flag_over_env_over_default():
    env = {"ROLESANYWHERE_OPERATOR_SIDECAR_IMAGE": "from-env:1", "ROLESANYWHERE_OPERATOR_WEBHOOK_PORT": "8443"}
    resolved = settings_module.resolve({"sidecar_image": "from-flag:1"}, env)
    assert (resolved.sidecar_image, resolved.webhook_port, resolved.webhook_failure_policy) == (
        "from-flag:1",
        8443,
        "Fail",
    )


@pytest.mark.parametrize(
    "flags, env, message",
    [
        ({"webhook_port": "x"}, {}, "bad --webhook-port: expected an integer from 0 to 65535, got 'x'"),
        ({}, {"ROLESANYWHERE_OPERATOR_WEBHOOK_FAILURE_POLICY": "Maybe"},
         "bad ROLESANYWHERE_OPERATOR_WEBHOOK_FAILURE_POLICY: expected one of Fail, Ignore, got 'Maybe'"),
        ({"sidecar_resources": "[]"}, {}, "bad --sidecar-resources: expected a JSON object with requests and/or limits"),
        ({"sidecar_resources": '{"limits": {"memory": "lots"}}'}, {},
         "bad --sidecar-resources: limits.memory: expected a quantity such as 10m, 64Mi or 1, got 'lots'"),
        ({"default_https_proxy": "http://svc:pw@proxy:3128"}, {},
         "bad --default-https-proxy: holds credentials (user:password@)"),
        ({"webhook_cert_file": "/tmp/c"}, {}, "--webhook-cert-file and --webhook-key-file must be given together"),
        ({"default_ca_bundle": "corp-ca/../../x"}, {}, "bad --default-ca-bundle: expected CONFIGMAP or CONFIGMAP/KEY: expected a key"),
        ({"default_ca_bundle": "Corp/ca.crt"}, {}, "bad --default-ca-bundle: expected CONFIGMAP or CONFIGMAP/KEY: expected a Kubernetes name"),
    ],
)
def test_bad_settings_name_the_flag_or_env_var(flags, env, message):
    with pytest.raises(settings_module.SettingsError) as raised:
        settings_module.resolve(flags, env)
    assert str(raised.value).startswith(message)


def test_default_ca_bundle_setting():
    assert settings_module.resolve({"default_ca_bundle": "corp-ca"}, {}).default_ca_bundle == ("corp-ca", "ca.crt")
    assert settings_module.resolve({"default_ca_bundle": "corp-ca/b.pem"}, {}).default_ca_bundle == ("corp-ca", "b.pem")


def test_the_subject_always_carries_the_bindings_namespace_whatever_cn_and_ou_it_asks_for():
    # Review M9: a binding in "evil" asking for another namespace's CN and OU still gets O=evil, which a
    # trust policy pinning x509Subject/O (as `rolesanywhere-operator trust-policy` writes) refuses.
    spoof = binding({"issuerRef": {"name": "ca"}, "commonName": "s3-reader.backup",
                     "organizationalUnits": ["backup"]}, namespace="evil")
    assert build_certificate(spoof)["spec"]["subject"]["organizations"] == ["evil"]


def test_a_workload_the_webhook_missed_is_reported_once_per_generation_with_the_command_that_fixes_it():
    web = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": 4,
                                              "annotations": {"rolesanywhere.dev/binding": "s3-reader"}},
           "spec": {"template": {"metadata": {}}}}
    assert template_patch(web) is not None  # not in step: the webhook did not see the change
    event = missed_template_event(web)
    assert (event.type, event.reason) == ("Warning", "TemplateNotInStep")
    assert "kubectl rollout restart deployment/web -n shop" in event.message
    reported = ReportedOnce()
    assert reported.add("u1", 4) and not reported.add("u1", 4)  # its status updates are not reported again
    assert reported.add("u1", 5) and reported.add("u2", 1)
    assert not reported.add(None, 1)

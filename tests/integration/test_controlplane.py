"""The foundation: the local control plane's real components do their real jobs."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from rolesanywhere_devkit.processes import wait_for

TESTDATA = Path(__file__).parent / "testdata"
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_server_reports_the_pinned_release(cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"].startswith("v1.") and "master" not in version["gitVersion"]
    assert int(version["minor"]) >= 29


def test_deployment_gets_replicaset_and_pods_from_controller_manager(cluster, namespace):
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
                },
            },
        },
        namespace,
    )

    def pods_owned_by_a_replicaset():
        pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout)
        owners = {o["kind"] for p in pods["items"] for o in p["metadata"].get("ownerReferences", [])}
        return len(pods["items"]) == 2 and owners == {"ReplicaSet"}

    wait_for(pods_owned_by_a_replicaset, timeout=60, what="2 pods created by a ReplicaSet")
    replicasets = json.loads(cluster.kubectl("get", "replicasets", "-n", namespace, "-o", "json").stdout)["items"]
    assert [rs["metadata"]["ownerReferences"][0]["name"] for rs in replicasets] == ["web"]


def _ready(cluster, kind, name, namespace):
    obj = json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def test_ca_issuer_issues_a_certificate_that_chains_to_the_private_ca(cluster, namespace):
    # The organisation's private CA: a self-signed root held in a Secret, used by a CA Issuer.
    cluster.apply(
        """
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: root-ca}
spec:
  isCA: true
  commonName: Example Org Root CA
  secretName: root-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: selfsigned, kind: Issuer}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: private-ca}
spec: {ca: {secretName: root-ca}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: workload}
spec:
  commonName: s3-reader.team-a
  subject: {organizationalUnits: [backup]}
  secretName: workload-tls
  duration: 24h
  privateKey: {algorithm: ECDSA, size: 256}
  usages: [client auth, digital signature]
  issuerRef: {name: private-ca, kind: Issuer}
""",
        namespace,
    )
    wait_for(lambda: _ready(cluster, "certificate", "workload", namespace), timeout=90, what="Certificate workload Ready")

    root = cluster.get("secret", "root-ca", namespace)["data"]
    leaf_secret = cluster.get("secret", "workload-tls", namespace)["data"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(root["tls.crt"]))
    leaf = x509.load_pem_x509_certificate(base64.b64decode(leaf_secret["tls.crt"]))
    leaf.verify_directly_issued_by(ca)  # raises unless the CA's key signed it
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "s3-reader.team-a"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "backup"
    assert base64.b64decode(leaf_secret["ca.crt"]) == base64.b64decode(root["tls.crt"])
    assert "tls.key" in leaf_secret


def test_helm_installs_and_uninstalls_a_chart(cluster, namespace, tools_bin, tmp_path):
    helm_env = {"KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(tmp_path / "cache"),
                "HELM_CONFIG_HOME": str(tmp_path / "config"), "HELM_DATA_HOME": str(tmp_path / "data"),
                "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def helm(*args):
        return subprocess.run([str(tools_bin / "helm"), *args], env=helm_env, capture_output=True, text=True,
                              check=True)

    helm("install", "smoke", str(TESTDATA / "charts" / "smoke"), "-n", namespace, "--set", "greeting=hi")
    assert cluster.get("configmap", "smoke-config", namespace)["data"] == {"greeting": "hi"}
    assert cluster.get("serviceaccount", "smoke-sa", namespace)
    assert cluster.get("deployment", "smoke-web", namespace)["spec"]["replicas"] == 1
    assert "smoke" in helm("list", "-n", namespace, "-q").stdout.split()

    helm("uninstall", "smoke", "-n", namespace, "--wait")
    for kind, name in (("configmap", "smoke-config"), ("serviceaccount", "smoke-sa"), ("deployment", "smoke-web")):
        wait_for(
            lambda kind=kind, name=name: cluster.kubectl("get", kind, name, "-n", namespace, check=False).returncode != 0,
            timeout=30,
            what=f"{kind}/{name} to be removed",
        )
    assert helm("list", "-n", namespace, "-q").stdout.strip() == ""


def test_aws_signing_helper_runs(tools_bin):
    result = subprocess.run([str(tools_bin / "aws_signing_helper"), "version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    pinned = next(
        line.split()[1]
        for line in (REPO_ROOT / "hack/tools/aws-signing-helper/go.mod").read_text().splitlines()
        if "github.com/aws/rolesanywhere-credential-helper v" in line
    )
    assert result.stdout.strip() == pinned.removeprefix("v")

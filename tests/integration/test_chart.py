"""The Helm chart: lint, schema, server-side validation, install and uninstall on a real control plane.

These tests get a control plane of their own: the chart installs cluster-scoped objects (CRDs, the
ClusterRole) whose removal the other tests must not see.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from localcluster import cert_manager_crds
from localcluster.controlplane import ControlPlane
from rolesanywhere_devkit.operator import OperatorProcess
from rolesanywhere_devkit.processes import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rolesanywhere-operator"
ALL_VALUES = Path(__file__).parent / "testdata" / "chart-values-all.yaml"
KUBE_VERSION = "1.34.4"


class Helm:
    def __init__(self, bin_dir: Path, kubeconfig: Path, home: Path) -> None:
        self.binary = str(bin_dir / "helm")
        self.env = {"KUBECONFIG": str(kubeconfig), "HOME": str(home), "PATH": "/usr/bin:/bin",
                    "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_DATA_HOME": str(home / "data")}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, *args: str) -> list[dict]:
        out = self("template", "rao", str(CHART), "--kube-version", KUBE_VERSION, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def chart_cluster(tools_bin, tmp_path_factory):
    plane = ControlPlane(tmp_path_factory.mktemp("chart-cluster"), tools_bin)
    plane.start(cert_manager_crds=cert_manager_crds())
    yield plane
    plane.stop()


@pytest.fixture
def helm(tools_bin, chart_cluster, tmp_path) -> Helm:
    return Helm(tools_bin, chart_cluster.kubeconfig, tmp_path)


def leaf_paths(tree, prefix=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaf_paths(value, (*prefix, key))
    else:
        yield prefix


def test_lint_passes(helm):
    result = helm("lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_the_all_options_values_file_sets_every_value():
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    everything = yaml.safe_load(ALL_VALUES.read_text())
    top_level = {path[0] for path in leaf_paths(defaults)}
    assert set(everything) == top_level
    for path in leaf_paths(defaults):
        node = everything
        for key in path:
            assert key in node, f"{ALL_VALUES.name} does not set {'.'.join(path)}"
            node = node[key]


@pytest.mark.parametrize("values", [None, ALL_VALUES], ids=["defaults", "every-option"])
def test_rendered_manifests_pass_server_side_validation(helm, chart_cluster, values):
    args = ["-n", "rao-system"] + (["-f", str(values)] if values else [])
    documents = helm.template(*args)
    chart_cluster.kubectl("create", "namespace", "rao-system", check=False)
    applied = set()
    by_namespace: dict[str, list[dict]] = {}
    for document in documents:  # the secret readers' RoleBindings live in the namespaces they grant
        by_namespace.setdefault(document["metadata"].get("namespace", "rao-system"), []).append(document)
    for namespace, group in by_namespace.items():
        result = chart_cluster.kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-",
            input="\n---\n".join(json.dumps(d) for d in group), check=False,
        )
        assert result.returncode == 0, result.stderr
        applied |= {f"{namespace}/{line.split(' ', 1)[0]}" for line in result.stdout.splitlines()}
    assert len(applied) == len(documents)


def test_every_option_reaches_the_operator(helm):
    documents = helm.template("-n", "rao-system", "-f", str(ALL_VALUES))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == "registry.example/rolesanywhere-operator:9.9.9"
    assert env["ROLESANYWHERE_OPERATOR_SIDECAR_IMAGE"] == "registry.example/rolesanywhere-sidecar:9.9.8"
    assert json.loads(env["ROLESANYWHERE_OPERATOR_SIDECAR_RESOURCES"]) == {
        "requests": {"cpu": "20m", "memory": "40Mi"}, "limits": {"memory": "80Mi"}}
    assert env["ROLESANYWHERE_OPERATOR_DEFAULT_ENDPOINT"] == "https://rolesanywhere.example:8443"
    assert env["ROLESANYWHERE_OPERATOR_DEFAULT_CA_BUNDLE"] == "corporate-ca/bundle.pem"
    assert env["ROLESANYWHERE_OPERATOR_DEFAULT_HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["ROLESANYWHERE_OPERATOR_WEBHOOK_FAILURE_POLICY"] == "Ignore"
    assert env["ROLESANYWHERE_OPERATOR_LOG_LEVEL"] == "debug"
    assert env["ROLESANYWHERE_OPERATOR_WEBHOOK_EXCLUDED_NAMESPACES"] == "cert-manager,calico-system"
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    budget = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 2
    assert container["ports"][0]["containerPort"] == 10443
    assert pod["priorityClassName"] == "system-cluster-critical"
    serving = next(d for d in documents if d["kind"] == "Certificate" and d["metadata"]["name"] == "rao-webhook")
    assert serving["spec"]["issuerRef"] == {"name": "corporate-issuer", "kind": "ClusterIssuer",
                                            "group": "cert-manager.io"}
    assert not any(d["kind"] == "Issuer" for d in documents)  # no self-signed CA with an issuerRef
    assert env["ROLESANYWHERE_OPERATOR_ALLOWED_CLUSTER_ISSUERS"] == "corporate-issuer"
    (policy,) = [d for d in documents if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "webhook", "protocol": "TCP"}],
                                          "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]},
                                         # Per-pod identity: opted-in pods' sidecars reach the identity endpoint.
                                         {"ports": [{"port": "webhook", "protocol": "TCP"}],
                                          "from": [{"namespaceSelector": {},
                                                    "podSelector": {"matchLabels": {"rolesanywhere.dev/inject": "true"}}}]},
                                         {"ports": [{"port": "health", "protocol": "TCP"}]}]
    assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    readers = [d for d in documents if d["kind"] == "RoleBinding"]
    assert sorted(d["metadata"]["namespace"] for d in readers) == ["default", "kube-public"]
    assert {d["roleRef"]["name"] for d in readers} == {"rao-secret-reader"}


#: Everything the operator's ClusterRole may grant (README, "What the operator may do", says why each):
#: (API group, resource, verbs, resourceNames or None for any). No Secret, no workload write.
ALLOWED_RULES = [
    ("rolesanywhere.dev", "rolesanywherebindings", {"get", "list", "watch", "patch"}, None),
    ("rolesanywhere.dev", "rolesanywherebindings/status", {"get", "patch"}, None),
    ("cert-manager.io", "certificates", {"get", "list", "watch", "create", "patch"}, None),
    ("cert-manager.io", "certificaterequests", {"get", "list", "create", "delete"}, None),
    # Per-pod identity: the operator approves the requests it made for pods whose token it reviewed.
    ("cert-manager.io", "certificaterequests/status", {"patch"}, None),
    ("cert-manager.io", "signers", {"approve"}, ["issuers.cert-manager.io/*", "clusterissuers.cert-manager.io/*"]),
    ("authentication.k8s.io", "tokenreviews", {"create"}, None),
    ("cert-manager.io", "issuers", {"get"}, None),
    ("cert-manager.io", "clusterissuers", {"get"}, None),
    ("", "configmaps", {"get"}, None),
    ("", "pods", {"get", "list", "watch", "delete"}, None),
    ("", "namespaces", {"get", "list", "watch"}, None),
    ("apps", "deployments", {"list", "watch"}, None),
    ("apps", "statefulsets", {"list", "watch"}, None),
    ("apps", "daemonsets", {"list", "watch"}, None),
    ("", "events", {"create"}, None),
    ("events.k8s.io", "events", {"create"}, None),
    ("apiextensions.k8s.io", "customresourcedefinitions", {"list", "watch"}, None),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", {"create"}, None),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", {"get", "patch"}, ["rao"]),
    ("kopf.dev", "clusterkopfpeerings", {"get", "list", "watch", "create", "patch"}, None),
    ("rbac.authorization.k8s.io", "clusterroles", {"get"}, ["rao"]),
]


def test_by_default_pods_get_the_sidecar_image_and_the_operator_runs_its_own(helm):
    """Every injected pod pulls the lean sidecar image (the Dockerfile's `sidecar` target), not the operator's;
    emptying sidecar.image.repository falls back to the operator's image, which runs the sidecar too."""
    def images(*args: str) -> tuple[str, str]:
        deployment = next(d for d in helm.template("-n", "rao-system", *args) if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        return container["image"], env["ROLESANYWHERE_OPERATOR_SIDECAR_IMAGE"]

    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert images() == (f"rolesanywhere-operator:{app_version}", f"rolesanywhere-sidecar:{app_version}")
    assert images("--set", "image.tag=1.2.3") == ("rolesanywhere-operator:1.2.3", "rolesanywhere-sidecar:1.2.3")
    assert images("--set", "sidecar.image.repository=") == (f"rolesanywhere-operator:{app_version}",) * 2


def test_the_cluster_role_grants_nothing_beyond_the_listed_rules_and_no_secret(helm):
    documents = helm.template("-n", "rao-system", "-f", str(ALL_VALUES))
    role = next(d for d in documents if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "rao")
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert any(
                    (group, resource) == (g, r) and set(rule["verbs"]) <= verbs
                    and (names is None or rule.get("resourceNames") == names)
                    for g, r, verbs, names in ALLOWED_RULES
                ), f"ClusterRole rule beyond the listed ones: {group or 'core'} {resource} {rule['verbs']}"
                assert resource != "secrets"
    # Secrets: get only, and only through RoleBindings in the namespaces listed in secretAccess.namespaces.
    reader = next(d for d in documents if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "rao-secret-reader")
    assert reader["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert not any(d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "rao-secret-reader"
                   for d in documents)


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_by_default_the_webhook_stays_answering_and_cert_manager_never_waits_for_it(helm):
    documents = helm.template("-n", "rao-system")
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    budget = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
    assert (budget["spec"]["minAvailable"], budget["spec"]["selector"]["matchLabels"]) == (1, selector)
    (spread,) = pod["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["whenUnsatisfiable"], spread["labelSelector"]["matchLabels"]) == (
        "kubernetes.io/hostname", "DoNotSchedule", selector)
    container = pod["containers"][0]
    # Above the operator's measured peak of 290 MiB (bench/RESULTS.md, 5,000 injected pods).
    assert _mebibytes(container["resources"]["limits"]["memory"]) >= 320
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ROLESANYWHERE_OPERATOR_WEBHOOK_EXCLUDED_NAMESPACES"] == "cert-manager"


def test_the_schema_takes_namespace_names_as_the_operator_does():
    from rolesanywhere_operator import spec

    schema = json.loads((CHART / "values.schema.json").read_text())
    items = schema["properties"]["webhook"]["properties"]["excludedNamespaces"]["items"]
    assert (items["pattern"], items["maxLength"]) == (spec.NAMESPACE_PATTERN, spec.NAMESPACE_MAX_LENGTH)


def test_a_network_policy_without_peers_is_refused_saying_what_to_set(helm):
    assert not any(d["kind"] == "NetworkPolicy" for d in helm.template("-n", "rao-system"))  # off by default
    result = helm("template", "rao", str(CHART), "--kube-version", KUBE_VERSION, "--set", "networkPolicy.enabled=true",
                  check=False)
    assert result.returncode != 0 and "networkPolicy.webhookFrom: expected the NetworkPolicy peers" in result.stderr


POD_MONITOR_API = "monitoring.coreos.com/v1/PodMonitor"


def test_the_pod_monitor_scrapes_every_injected_sidecar_and_renders_only_where_its_api_exists(helm):
    from rolesanywhere_operator import constants as c

    def monitors(*args: str) -> list[dict]:
        return [d for d in helm.template("-n", "rao-system", *args) if d["kind"] == "PodMonitor"]

    assert monitors("--api-versions", POD_MONITOR_API) == []  # off by default
    # Without the Prometheus Operator's API, enabling it installs nothing that would fail.
    assert monitors("--set", "podMonitor.enabled=true") == []
    assert monitors("-f", str(ALL_VALUES)) == []

    (monitor,) = monitors("--set", "podMonitor.enabled=true", "--api-versions", POD_MONITOR_API)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "rao-system"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    # The pods the webhook injected (its label), the port the sidecar declares, the sidecar's metrics path.
    assert spec["selector"] == {"matchExpressions": [{"key": c.INJECTED_LABEL, "operator": "Exists"}]}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == (c.SIDECAR_HEALTH_PORT_NAME, c.METRICS_PATH,
                                                                       "http")
    assert "interval" not in endpoint  # the Prometheus' own
    # Prometheus names a pod label's meta label with every character but [a-zA-Z0-9_] as "_".
    (relabeling,) = endpoint["relabelings"]
    assert relabeling == {"sourceLabels": [f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', c.INJECTED_LABEL)}"],
                          "targetLabel": "binding"}

    (configured,) = monitors("-f", str(ALL_VALUES), "--api-versions", POD_MONITOR_API)
    assert configured["metadata"]["labels"]["release"] == "prometheus"
    assert configured["spec"]["podMetricsEndpoints"][0]["interval"] == "60s"


def test_a_pod_monitor_interval_prometheus_would_refuse_is_refused_naming_the_key(helm):
    result = helm("template", "rao", str(CHART), "--kube-version", KUBE_VERSION, "--set", "podMonitor.interval=1min",
                  check=False)
    assert result.returncode != 0 and "/podMonitor/interval" in result.stderr


def test_one_replica_gets_no_disruption_budget_that_would_block_every_drain(helm):
    documents = helm.template("-n", "rao-system", "--set", "replicaCount=1")
    assert not any(d["kind"] == "PodDisruptionBudget" for d in documents)


def test_the_operator_settings_the_chart_sets_exist():
    from rolesanywhere_operator import settings

    known = {settings.SETTINGS.env(f.name) for f in settings.SETTINGS.fields}
    template = (CHART / "templates" / "deployment.yaml").read_text()
    used = {word for word in template.replace("{", " ").replace("}", " ").replace(",", " ").split()
            if word.startswith("ROLESANYWHERE_OPERATOR_")}
    assert used and used <= known, used - known


@pytest.mark.parametrize(
    ("override", "named"),
    [("webhok.port=9443", "webhok"), ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
     ("crds.kepp=true", "kepp"), ("replicaCount=0", "/replicaCount")],
)
def test_a_values_typo_is_rejected_naming_the_key(helm, override, named):
    result = helm("template", "rao", str(CHART), "--kube-version", KUBE_VERSION, "--set", override, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr


def _exists(cluster, *args) -> bool:
    return cluster.kubectl("get", *args, check=False).returncode == 0


def test_install_creates_everything_and_uninstall_removes_it_keeping_the_crd(helm, chart_cluster, tmp_path):
    cluster, ns = chart_cluster, "rao-keep"
    helm("install", "rao", str(CHART), "-n", ns, "--create-namespace")
    expected = [
        ("crd", "rolesanywherebindings.rolesanywhere.dev"), ("crd", "clusterkopfpeerings.kopf.dev"),
        ("clusterrole", "rao"), ("clusterrolebinding", "rao"), ("serviceaccount", "rao", "-n", ns),
        ("service", "rao-webhook", "-n", ns), ("deployment", "rao", "-n", ns),
        ("certificate", "rao-webhook", "-n", ns), ("issuer", "rao-webhook", "-n", ns),
        ("poddisruptionbudget", "rao", "-n", ns),
        ("validatingadmissionpolicy", "rolesanywherebindings.rolesanywhere.dev"),
        ("validatingadmissionpolicybinding", "rolesanywherebindings.rolesanywhere.dev"),
    ]
    for args in expected:
        assert _exists(cluster, *args), args
    # cert-manager issues the webhook's serving certificate from the chart's CA.
    wait_for(lambda: _exists(cluster, "secret", "rao-webhook-tls", "-n", ns), timeout=90,
             what="the webhook serving Secret")

    # The operator (out of cluster here: no kubelet runs its pod) owns its webhook configuration
    # through the chart's ClusterRole, so uninstalling removes that too.
    operator = OperatorProcess(cluster, tmp_path / "operator", service_account=(ns, "rao"),
                               extra_args=("--webhook-owner-cluster-role=rao", "--peering=rao")).start()
    try:
        webhook = json.loads(cluster.kubectl("get", "mutatingwebhookconfiguration",
                                             operator.webhook_configuration, "-o", "json").stdout)
        assert [o["name"] for o in webhook["metadata"]["ownerReferences"]] == ["rao"]
        assert _exists(cluster, "clusterkopfpeering", "rao")
    finally:
        operator.process.terminate()
        operator.process.wait(timeout=20)

    helm("uninstall", "rao", "-n", ns, "--wait")
    for args in expected:
        if args[0] == "crd" and args[1].startswith("rolesanywherebindings"):
            continue
        wait_for(lambda args=args: not _exists(cluster, *args), timeout=60, what=f"{args} to be removed")
    wait_for(lambda: not _exists(cluster, "mutatingwebhookconfiguration", operator.webhook_configuration),
             timeout=60, what="the garbage collector to remove the webhook configuration")
    assert _exists(cluster, "crd", "rolesanywherebindings.rolesanywhere.dev")  # crds.keep (the default)


def test_uninstall_removes_the_crd_when_not_kept(helm, chart_cluster):
    cluster, ns = chart_cluster, "rao-drop"
    cluster.kubectl("delete", "crd", "rolesanywherebindings.rolesanywhere.dev", "--ignore-not-found")
    helm("install", "rao", str(CHART), "-n", ns, "--create-namespace", "--set", "crds.keep=false")
    assert _exists(cluster, "crd", "rolesanywherebindings.rolesanywhere.dev")
    helm("uninstall", "rao", "-n", ns, "--wait")
    wait_for(lambda: not _exists(cluster, "crd", "rolesanywherebindings.rolesanywhere.dev"), timeout=60,
             what="the CRD to be removed")

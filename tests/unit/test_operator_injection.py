"""The pod injection builders, case by case.

Each file under testdata/injection/pods is one pod: the binding's spec changes, the pod as submitted
and the pod as injected (or the error). Two things appear there as placeholders, because each is
specified once elsewhere: the sidecar container ($native-sidecar; the files under
testdata/injection/sidecars) and the app env ($app-env; testdata/injection/app-env.yaml). So changing
a sidecar or an app env var touches one file, not every pod.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.injection import (
    InjectionError,
    build_sidecar,
    build_sidecar_settings,
    inject_pod,
    should_inject,
    unsupported_server,
)
from rolesanywhere_operator.settings import Settings
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_sidecar.settings import SETTINGS as SIDECAR

TESTDATA = Path(__file__).parent / "testdata" / "injection"
POD_CASES = sorted((TESTDATA / "pods").glob("*.yaml"))
SIDECAR_CASES = sorted((TESTDATA / "sidecars").glob("*.yaml"))


def load_case(path: Path) -> dict:
    case = yaml.safe_load(path.read_text())
    binding = yaml.safe_load((TESTDATA / "binding.yaml").read_text())
    binding["spec"].update(case.get("spec") or {})
    case["binding"] = parse_binding(binding)
    overrides = dict(case.get("settings") or {})
    if "default_ca_bundle" in overrides:
        overrides["default_ca_bundle"] = tuple(overrides["default_ca_bundle"])
    case["settings"] = Settings(**overrides)
    return case


APP_ENV_PLACEHOLDER = "$app-env"


def expected_app_env(binding, without: set[str]) -> list[dict]:
    groups = yaml.safe_load((TESTDATA / "app-env.yaml").read_text())
    env = []
    for group, variables in groups.items():
        if group not in without:
            listed = variables if isinstance(variables, list) else variables[binding.delivery]
            env += [{**v, "value": v["value"].format(region=binding.app_region)} for v in listed]
    return env


def _expand_env(env: list, binding) -> list:
    expanded = []
    for item in env:
        if isinstance(item, str) and item.startswith(APP_ENV_PLACEHOLDER):
            without = set(item.removeprefix(APP_ENV_PLACEHOLDER).removeprefix(" without").split())
            expanded += expected_app_env(binding, without)
        else:
            expanded.append(item)
    return expanded


def expand_placeholders(pod: dict, case: dict) -> dict:
    built = {"$native-sidecar": build_sidecar(case["binding"], case["settings"])}
    spec = pod["spec"]
    for key in ("containers", "initContainers"):
        if key in spec:
            spec[key] = [built.get(x, x) if isinstance(x, str) else x for x in spec[key]]
            for container in spec[key]:
                if "env" in container and container is not built["$native-sidecar"]:
                    container["env"] = _expand_env(container["env"], case["binding"])
    return pod


@pytest.mark.parametrize("path", POD_CASES, ids=[p.stem for p in POD_CASES])
def test_pod_cases(path: Path):
    case = load_case(path)
    if "error" in case:
        with pytest.raises(InjectionError) as raised:
            inject_pod(case["pod"], case["binding"], case["settings"], identity_ca=case.get("identity_ca"))
        assert str(raised.value) == case["error"].strip()
        return
    submitted = yaml.safe_load(path.read_text())["pod"]
    injected = inject_pod(case["pod"], case["binding"], case["settings"], identity_ca=case.get("identity_ca"))
    assert injected.pod == expand_placeholders(case["expected"], case)
    assert injected.warnings == case.get("warnings", [])
    assert case["pod"] == submitted, "the builder must not modify the submitted pod"


@pytest.mark.parametrize("path", SIDECAR_CASES, ids=[p.stem for p in SIDECAR_CASES])
def test_sidecar_cases(path: Path):
    case = load_case(path)
    assert build_sidecar(case["binding"], case["settings"]) == case["expected"]


@pytest.mark.parametrize("path", SIDECAR_CASES, ids=[p.stem for p in SIDECAR_CASES])
def test_the_sidecar_parses_its_rendered_env_back_to_the_settings_the_operator_built(path: Path):
    case = load_case(path)
    env = build_sidecar(case["binding"], case["settings"])["env"]
    rendered = {e["name"]: e["value"] for e in env if e["name"].startswith(SIDECAR.env_prefix) and "value" in e}
    built = build_sidecar_settings(case["binding"], case["settings"])
    assert SIDECAR.resolve({}, rendered, "serve") == built


def test_every_sidecar_env_var_is_a_sidecar_setting():
    """The operator only sets variables the sidecar declares (plus the standard proxy variables)."""
    case = load_case(TESTDATA / "sidecars" / "secret-ref-and-options.yaml")
    names = {e["name"] for e in build_sidecar(case["binding"], case["settings"])["env"]}
    assert names - {SIDECAR.env(f.name) for f in SIDECAR.fields} == {"HTTPS_PROXY", "NO_PROXY"}


def annotated(annotations: dict | None = None, containers: list | None = None) -> dict:
    return {
        "metadata": {"annotations": annotations or {}},
        "spec": {"containers": containers or [{"name": "app", "image": "app:1"}]},
    }


@pytest.mark.parametrize(
    "pod, namespace, inject, reason",
    [
        (annotated({c.BINDING_ANNOTATION: "s3"}), "shop", True, "annotated"),
        (annotated({c.BINDING_ANNOTATION: " s3 "}), "shop", True, "annotated"),
        (annotated(), "shop", False, "no rolesanywhere.dev/binding annotation"),
        ({"metadata": {}, "spec": {}}, "shop", False, "no rolesanywhere.dev/binding annotation"),
        (annotated({c.BINDING_ANNOTATION: "s3"}), "kube-system", False, "namespace kube-system is excluded from injection"),
        (
            annotated({c.BINDING_ANNOTATION: "s3", c.INJECTED_ANNOTATION: "s3"}),
            "shop",
            False,
            "already injected (annotation rolesanywhere.dev/injected)",
        ),
        (
            annotated({c.BINDING_ANNOTATION: "s3"}, [{"name": "rolesanywhere-sidecar"}]),
            "shop",
            False,
            "already has a container named rolesanywhere-sidecar",
        ),
    ],
)
def test_should_inject(pod, namespace, inject, reason):
    decision = should_inject(pod, namespace, ("kube-system",))
    assert (decision.inject, decision.reason) == (inject, reason)
    if inject:
        assert decision.binding == "s3"


def test_an_empty_binding_annotation_is_an_error_naming_the_annotation():
    with pytest.raises(InjectionError, match="annotation rolesanywhere.dev/binding is empty"):
        should_inject(annotated({c.BINDING_ANNOTATION: " "}), "shop", ())


@pytest.mark.parametrize(
    "value",
    ["../../victim/rolesanywherebindings/s3-admin", "..", "a/b", "S3", "x" * 64, "s3%2Fadmin"],
)
def test_a_binding_annotation_that_is_not_a_binding_name_is_refused_naming_the_annotation(value):
    with pytest.raises(InjectionError) as raised:
        should_inject(annotated({c.BINDING_ANNOTATION: value}), "shop", ())
    assert str(raised.value).startswith("should-inject: annotation rolesanywhere.dev/binding: expected a Kubernetes name")


def test_a_binding_annotation_of_63_characters_is_a_name():
    assert should_inject(annotated({c.BINDING_ANNOTATION: "x" * 63}), "shop", ()).binding == "x" * 63


def test_an_injected_pod_is_not_injected_again():
    case = load_case(TESTDATA / "pods" / "native-basic.yaml")
    once = inject_pod(case["pod"], case["binding"], case["settings"]).pod
    assert not should_inject(once, "shop", ()).inject


def test_api_servers_without_native_sidecars_are_refused_with_one_clear_message():
    assert unsupported_server((1, 29)) is None
    assert unsupported_server((1, 34)) is None
    assert unsupported_server((2, 0)) is None
    assert unsupported_server((1, 28)) == (
        "the API server is Kubernetes 1.28; the operator needs 1.29 or later, whose native sidecars "
        "(init containers with restartPolicy Always) give the app credentials before it starts"
    )


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def _mounted_at(container: dict, path: str) -> str | None:
    """The volume under whose mount `path` lies in `container`, if any."""
    for mount in container.get("volumeMounts") or []:
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return mount["name"]
    return None


def test_an_endpoint_only_pods_apps_mount_no_credentials_file_and_the_sidecar_writes_them_where_only_it_sees():
    """Review finding M4: with EndpointOnly a file-read bug in an app yields no credentials."""
    case = load_case(TESTDATA / "pods" / "delivery-endpoint-only.yaml")
    pod = inject_pod(case["pod"], case["binding"], case["settings"]).pod
    sidecar, *apps = pod["spec"]["initContainers"] + pod["spec"]["containers"]
    assert sidecar["name"] == c.SIDECAR_CONTAINER
    sidecar_env = _env(sidecar)
    credentials_dir = sidecar_env[SIDECAR.env("credentials_dir")]
    shared_dir = sidecar_env[SIDECAR.env("output_dir")]
    private_volume = _mounted_at(sidecar, credentials_dir)
    assert private_volume is not None, "the sidecar writes the credentials files into a volume of its own"
    assert _mounted_at(sidecar, shared_dir) == c.CREDENTIALS_VOLUME != private_volume
    for app in apps:
        assert all(m["name"] != private_volume for m in app.get("volumeMounts") or []), app["name"]
        assert _mounted_at(app, f"{credentials_dir}/{c.CREDENTIALS_FILE}") is None
        # The shared volume it does mount receives only the token (the sidecar's output_dir minus the files).
        token_file = _env(app)["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
        assert _mounted_at(app, token_file) == c.CREDENTIALS_VOLUME
        assert "AWS_SHARED_CREDENTIALS_FILE" not in _env(app)


@pytest.mark.parametrize("delivery", ["Endpoint", "EndpointOnly", "FileOnly", "File"])
def test_the_sidecar_is_told_where_each_delivery_puts_the_files_and_whether_to_serve_credentials(delivery):
    case = load_case(TESTDATA / "pods" / "native-basic.yaml")
    binding = yaml.safe_load((TESTDATA / "binding.yaml").read_text())
    binding["spec"]["delivery"] = delivery
    env = _env(build_sidecar(parse_binding(binding), case["settings"]))
    credentials_dir = env.get(SIDECAR.env("credentials_dir"))
    no_endpoint = env.get(SIDECAR.env("no_credentials_endpoint"))
    assert (credentials_dir, no_endpoint) == {
        "Endpoint": (None, None),
        "EndpointOnly": (c.SIDECAR_CREDENTIALS_MOUNT_PATH, None),
        "FileOnly": (None, "true"),
        "File": (None, "true"),
    }[delivery]


def _injected(spec: dict | None = None, metadata: dict | None = None, binding_spec: dict | None = None, **settings):
    binding = yaml.safe_load((TESTDATA / "binding.yaml").read_text())
    binding["spec"].update(binding_spec or {})
    pod = {
        "metadata": {"name": "web", "annotations": {c.BINDING_ANNOTATION: "s3-reader"}, **(metadata or {})},
        "spec": {"containers": [{"name": "app", "image": "app:1"}], **(spec or {})},
    }
    pod["metadata"]["annotations"] = {c.BINDING_ANNOTATION: "s3-reader", **pod["metadata"]["annotations"]}
    return inject_pod(pod, parse_binding(binding), Settings(**settings))


def _sidecar_of(injected) -> dict:
    return injected.pod["spec"]["initContainers"][0]


def test_the_sidecar_declares_only_its_health_port_which_its_probes_ask_over_http():
    """No probe spawns a process: both are httpGet /readyz on the named health port; the credentials
    endpoint, on the pod's loopback, is declared nowhere (review finding L3)."""
    sidecar = _sidecar_of(_injected())
    assert sidecar["ports"] == [{"name": "ra-health", "containerPort": 9912, "protocol": "TCP"}]
    assert len(c.SIDECAR_HEALTH_PORT_NAME) <= 15  # an IANA service name, as a port name must be
    for probe in (sidecar["startupProbe"], sidecar["readinessProbe"]):
        assert "exec" not in probe
        assert probe["httpGet"] == {"path": "/readyz", "port": "ra-health", "scheme": "HTTP"}
    assert _env(sidecar)[SIDECAR.env("health_port")] == "9912"  # pinned: the port and the probes depend on it
    # Two minutes for the first credentials, asked every second; not Ready 30 s after they stop being valid.
    startup, readiness = sidecar["startupProbe"], sidecar["readinessProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 120
    assert readiness["periodSeconds"] * readiness["failureThreshold"] == 30


def test_a_host_network_pod_is_warned_about_and_its_sidecar_declares_the_ports_it_takes_on_the_node():
    injected = _injected({"hostNetwork": True})
    [warning] = injected.warnings
    assert warning.startswith("the pod uses hostNetwork: the sidecar's endpoint listens on the node's 127.0.0.1:9911")
    assert "health port 9912 (/healthz, /readyz, /metrics) on every address of the node" in warning
    assert _sidecar_of(injected)["ports"] == [
        {"name": "ra-credentials", "containerPort": 9911, "protocol": "TCP"},
        {"name": "ra-health", "containerPort": 9912, "protocol": "TCP"},
    ]


def test_a_pod_sharing_its_process_namespace_is_warned_about():
    """Review finding L4: the sidecar is undumpable, but the apps can still see and signal it."""
    [warning] = _injected({"shareProcessNamespace": True}).warnings
    assert warning.startswith("the pod sets shareProcessNamespace: its containers see the sidecar's processes")
    assert _injected({"shareProcessNamespace": False}).warnings == []


def test_a_pod_with_a_container_named_like_the_sidecar_but_no_marker_is_left_alone_with_a_warning():
    """Review finding L12: it used to be skipped silently while its binding annotation asked for credentials."""
    pod = annotated({c.BINDING_ANNOTATION: "s3"}, [{"name": c.SIDECAR_CONTAINER}])
    decision = should_inject(pod, "shop", ())
    assert not decision.inject
    expected = (
        "not injected for binding 's3': the pod already has a container named rolesanywhere-sidecar but not the "
        "rolesanywhere.dev/injected annotation; rename that container"
    )
    assert decision.warnings == (expected,)
    already = annotated({c.BINDING_ANNOTATION: "s3", c.INJECTED_ANNOTATION: "s3"}, [{"name": c.SIDECAR_CONTAINER}])
    assert should_inject(already, "shop", ()).warnings == ()


ISTIO = c.ISTIO_EXCLUDE_OUTBOUND_PORTS_ANNOTATION
LINKERD = c.LINKERD_SKIP_OUTBOUND_PORTS_ANNOTATION
ISTIO_IN = c.ISTIO_EXCLUDE_INBOUND_PORTS_ANNOTATION
LINKERD_IN = c.LINKERD_SKIP_INBOUND_PORTS_ANNOTATION
MESH_ANNOTATIONS = (ISTIO, LINKERD, ISTIO_IN, LINKERD_IN)
IN_ISTIO = {ISTIO: "443", ISTIO_IN: "9912"}
IN_LINKERD = {LINKERD: "443", LINKERD_IN: "9912"}


@pytest.mark.parametrize(
    "metadata, spec, expected",
    [
        ({"labels": {c.ISTIO_INJECT_LABEL: "true"}}, {}, IN_ISTIO),
        ({"annotations": {c.ISTIO_INJECT_LABEL: "true"}}, {}, IN_ISTIO),
        ({"labels": {c.ISTIO_REVISION_LABEL: "1-22"}}, {}, IN_ISTIO),
        ({"labels": {c.ISTIO_REVISION_LABEL: "1-22", c.ISTIO_INJECT_LABEL: "false"}}, {}, {}),
        ({}, {"initContainers": [{"name": c.ISTIO_PROXY_CONTAINER, "restartPolicy": "Always"}]}, IN_ISTIO),
        ({"annotations": {ISTIO: "8443, 443", ISTIO_IN: "9912"}},
         {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}, {}),
        ({"annotations": {ISTIO_IN: "8080"}}, {"containers": [{"name": "app"}, {"name": "istio-proxy"}]},
         {ISTIO: "443", ISTIO_IN: "8080,9912"}),
        ({"annotations": {c.LINKERD_INJECT_ANNOTATION: "enabled"}}, {}, IN_LINKERD),
        ({"annotations": {c.LINKERD_INJECT_ANNOTATION: "disabled"}}, {}, {}),
        ({"annotations": {LINKERD: "25,587"}}, {"containers": [{"name": "app"}, {"name": "linkerd-proxy"}]},
         {LINKERD: "25,587,443", LINKERD_IN: "9912"}),
        ({"annotations": {LINKERD: "400-500", LINKERD_IN: "9000-9999"}},
         {"containers": [{"name": "app"}, {"name": "linkerd-proxy"}]}, {}),
        ({}, {}, {}),
    ],
)
def test_a_pod_joining_a_mesh_gets_the_sidecars_ports_excluded_from_the_redirects(metadata, spec, expected):
    """Review finding M7: with the mesh's CNI the redirect exists before the proxy (which starts after the
    sidecar) runs, so the sidecar's CreateSession must bypass the outbound one or the pod never starts; and
    the kubelet's probes of the health port must bypass the inbound one."""
    injected = _injected(spec, metadata)
    annotations = injected.pod["metadata"]["annotations"]
    mesh = {k: v for k, v in annotations.items() if k in MESH_ANNOTATIONS}
    assert mesh == {**{k: v for k, v in (metadata.get("annotations") or {}).items() if k in MESH_ANNOTATIONS},
                    **expected}
    mesh_warnings = [w for w in injected.warnings if "mesh" in w]
    assert len(mesh_warnings) == len(expected)
    for annotation in expected:
        assert any(f"annotation {annotation} now includes" in w for w in mesh_warnings), annotation


def test_the_excluded_port_is_that_of_the_endpoint_or_of_the_https_proxy_the_sidecar_calls():
    istio = {"labels": {c.ISTIO_INJECT_LABEL: "true"}}
    endpoint = _injected(metadata=istio, binding_spec={"sidecar": {"endpoint": "https://ra.internal:8443"}})
    assert endpoint.pod["metadata"]["annotations"][ISTIO] == "8443"
    proxied = _injected(metadata=istio, default_https_proxy="http://proxy.corp:3128")
    assert proxied.pod["metadata"]["annotations"][ISTIO] == "3128"
    # An endpoint on the health port's number: each redirect still gets its exclusion, and its warning.
    same = _injected(metadata=istio, binding_spec={"sidecar": {"endpoint": "https://ra.internal:9912"}})
    assert {k: same.pod["metadata"]["annotations"][k] for k in (ISTIO, ISTIO_IN)} == {ISTIO: "9912", ISTIO_IN: "9912"}
    assert [w.split(",", 1)[0] for w in same.warnings] == [
        f"the pod joins the Istio mesh: annotation {ISTIO} now includes 9912",
        f"the pod joins the Istio mesh: annotation {ISTIO_IN} now includes 9912",
    ]

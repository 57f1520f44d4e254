"""The pod injection builders, case by case.

Each file under testdata/injection/pods is one pod: the binding's spec changes, the pod as submitted
and the pod as injected (or the error). The sidecar container appears there as a placeholder
($native-sidecar) because its contents are specified once, by the files under testdata/injection/sidecars, so changing a sidecar env var touches one file, not every pod.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.injection import (
    InjectionError,
    build_sidecar,
    inject_pod,
    should_inject,
    unsupported_server,
)
from rolesanywhere_operator.settings import Settings
from rolesanywhere_operator.spec import parse_binding

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


def expand_placeholders(pod: dict, case: dict) -> dict:
    built = {"$native-sidecar": build_sidecar(case["binding"], case["settings"])}
    spec = pod["spec"]
    for key in ("containers", "initContainers"):
        if key in spec:
            spec[key] = [built.get(x, x) if isinstance(x, str) else x for x in spec[key]]
    return pod


@pytest.mark.parametrize("path", POD_CASES, ids=[p.stem for p in POD_CASES])
def test_pod_cases(path: Path):
    case = load_case(path)
    if "error" in case:
        with pytest.raises(InjectionError) as raised:
            inject_pod(case["pod"], case["binding"], case["settings"])
        assert str(raised.value) == case["error"].strip()
        return
    submitted = yaml.safe_load(path.read_text())["pod"]
    injected = inject_pod(case["pod"], case["binding"], case["settings"])
    assert injected.pod == expand_placeholders(case["expected"], case)
    assert injected.warnings == case.get("warnings", [])
    assert case["pod"] == submitted, "the builder must not modify the submitted pod"


@pytest.mark.parametrize("path", SIDECAR_CASES, ids=[p.stem for p in SIDECAR_CASES])
def test_sidecar_cases(path: Path):
    case = load_case(path)
    assert build_sidecar(case["binding"], case["settings"]) == case["expected"]


def test_every_sidecar_env_var_is_a_sidecar_setting():
    """The operator only sets variables the sidecar declares (plus the standard proxy variables)."""
    case = load_case(TESTDATA / "sidecars" / "secret-ref-and-options.yaml")
    names = {e["name"] for e in build_sidecar(case["binding"], case["settings"])["env"]}
    assert names - set(c.SIDECAR_ENV.values()) == {"HTTPS_PROXY", "NO_PROXY"}


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
    credentials_dir = sidecar_env[c.SIDECAR_ENV["credentials_dir"]]
    shared_dir = sidecar_env[c.SIDECAR_ENV["output_dir"]]
    private_volume = _mounted_at(sidecar, credentials_dir)
    assert private_volume is not None, "the sidecar writes the credentials files into a volume of its own"
    assert _mounted_at(sidecar, shared_dir) == c.CREDENTIALS_VOLUME != private_volume
    for app in apps:
        assert all(m["name"] != private_volume for m in app.get("volumeMounts") or []), app["name"]
        assert _mounted_at(app, f"{credentials_dir}/{c.CREDENTIALS_FILE}") is None
        # The shared volume it does mount receives only the token (the sidecar's output_dir minus the files).
        token_file = _env(app)[c.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE]
        assert _mounted_at(app, token_file) == c.CREDENTIALS_VOLUME
        assert c.AWS_SHARED_CREDENTIALS_FILE not in _env(app)


@pytest.mark.parametrize("delivery", ["Endpoint", "EndpointOnly", "FileOnly", "File"])
def test_the_sidecar_is_told_where_each_delivery_puts_the_files_and_whether_to_serve_credentials(delivery):
    case = load_case(TESTDATA / "pods" / "native-basic.yaml")
    binding = yaml.safe_load((TESTDATA / "binding.yaml").read_text())
    binding["spec"]["delivery"] = delivery
    env = _env(build_sidecar(parse_binding(binding), case["settings"]))
    credentials_dir = env.get(c.SIDECAR_ENV["credentials_dir"])
    no_endpoint = env.get(c.SIDECAR_ENV["no_credentials_endpoint"])
    assert (credentials_dir, no_endpoint) == {
        "Endpoint": (None, None),
        "EndpointOnly": (c.SIDECAR_CREDENTIALS_MOUNT_PATH, None),
        "FileOnly": (None, "true"),
        "File": (None, "true"),
    }[delivery]

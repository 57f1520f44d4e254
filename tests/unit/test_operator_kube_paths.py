"""API paths: a namespace or a name is one path segment, and a read object is checked to be where asked."""

from __future__ import annotations

import pytest
from rolesanywhere_operator.kube import ApiError, binding_path, in_namespace, path


def test_paths_of_core_and_custom_resources():
    assert path("v1", "secrets", "shop", "tls") == "/api/v1/namespaces/shop/secrets/tls"
    assert binding_path("shop", "s3", "status") == "/apis/rolesanywhere.dev/v1alpha1/namespaces/shop/rolesanywherebindings/s3/status"
    assert path("v1", "namespaces") == "/api/v1/namespaces"


@pytest.mark.parametrize(
    "name, escaped",
    [("../../victim/rolesanywherebindings/s3-admin", "..%2F..%2Fvictim%2Frolesanywherebindings%2Fs3-admin"),
     ("a?b#c", "a%3Fb%23c"), ("a b", "a%20b")],
)
def test_a_name_stays_one_segment(name, escaped):
    assert path("v1", "secrets", "shop", name) == f"/api/v1/namespaces/shop/secrets/{escaped}"
    assert path("v1", "secrets", name, "x") == f"/api/v1/namespaces/{escaped}/secrets/x"


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_segments_are_refused(name):
    with pytest.raises(ValueError, match="is not a Kubernetes name"):
        path("v1", "secrets", "shop", name)
    with pytest.raises(ValueError, match="is not a Kubernetes name"):
        path("v1", "secrets", name, "x")


def test_an_object_of_another_namespace_is_refused():
    found = {"metadata": {"name": "s3-admin", "namespace": "victim"}}
    assert in_namespace(found, "victim", "/p") is found
    with pytest.raises(ApiError, match="in namespace 'victim', not 'shop' as asked"):
        in_namespace(found, "shop", "/p")
    with pytest.raises(ApiError, match="in namespace None"):
        in_namespace({"metadata": {}}, "shop", "/p")

"""Where the cluster connection comes from, and what a broken one says (no API server needed:
the failures are real ones: missing files, a port nothing listens on, a server of another CA)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from authsvc.cluster.connection import ClusterSource, connect, require_source, resolve_source
from authsvc.cluster.errors import NO_CONNECTION, ClusterUnreachable, NoClusterConnection
from authsvc.settings.cluster import ClusterAPISettings
from tests.components.kube_apiserver import free_port

HOME = Path("/srv/authsvc-home")


def resolve(
    option: str | None = None,
    context: str | None = None,
    environ: dict[str, str] | None = None,
    token: Path | None = None,
    **settings: object,
) -> ClusterSource | None:
    return resolve_source(
        option=option,
        context=context,
        settings=ClusterAPISettings.model_validate(settings),
        home_root=HOME,
        environ=environ or {},
        in_cluster_token=token or Path("/nonexistent/token"),
    )


def test_the_flag_wins_then_the_setting_then_kubeconfig_then_the_pod(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    env = {"KUBECONFIG": f"/a.conf{os.pathsep}/b.conf", **pod}

    flag = resolve("x.conf", environ=env, token=token, kubeconfig="admin.conf")
    setting = resolve(environ=env, token=token, kubeconfig="admin.conf", context="ops")
    listed = resolve(environ=env, token=token)
    in_cluster = resolve(environ=pod, token=token)

    assert flag == ClusterSource("--kubeconfig", "x.conf", None, 10.0)
    # A relative setting is relative to the home, like every path in authsvc.yaml.
    assert setting == ClusterSource("cluster.api.kubeconfig", str(HOME / "admin.conf"), "ops", 10.0)
    assert listed is not None and listed.kubeconfig == env["KUBECONFIG"] and listed.origin == "KUBECONFIG"
    assert in_cluster == ClusterSource("in-cluster", None, None, 10.0)


def test_nothing_configured_is_no_connection(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}

    assert resolve() is None
    assert resolve(environ={"KUBECONFIG": os.pathsep}) is None
    assert resolve(environ=pod) is None  # no service-account token: not in a pod
    assert resolve(environ=pod, token=token, in_cluster=False) is None
    # ~/.kube/config is never used implicitly.
    assert resolve(environ={"HOME": str(tmp_path)}) is None
    with pytest.raises(NoClusterConnection, match=f"^{NO_CONNECTION}$"):
        require_source(None)


def kubeconfig(path: Path, server: str, ca_file: Path | None = None) -> Path:
    cluster: dict[str, object] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


def source(path: Path | str, context: str | None = None) -> ClusterSource:
    return ClusterSource("--kubeconfig", str(path), context, dt.timedelta(seconds=2).total_seconds())


@pytest.mark.parametrize(
    ("content", "context", "fragment"),
    [
        (None, None, "no such file"),
        ("{{{ not yaml", None, "cannot use --kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", None, "cannot use --kubeconfig"),
        ("ok", "no-such-context", "no-such-context"),
    ],
)
def test_an_unusable_kubeconfig_is_one_line(
    tmp_path: Path, content: str | None, context: str | None, fragment: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content == "ok":
        kubeconfig(path, "https://127.0.0.1:6443")
    elif content is not None:
        path.write_text(content)

    with pytest.raises(NoClusterConnection) as raised:
        connect(source(path, context))

    message = str(raised.value)
    assert fragment in message and "\n" not in message and message.startswith("cannot use --kubeconfig")


def test_an_api_server_that_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    client = connect(source(kubeconfig(tmp_path / "k", f"https://127.0.0.1:{port}")))

    with pytest.raises(ClusterUnreachable) as raised:
        client.call("list Namespaces", client.core.list_namespace)

    assert str(raised.value) == (
        f"cannot reach the API server at https://127.0.0.1:{port} (--kubeconfig {tmp_path / 'k'}): connection refused"
    )

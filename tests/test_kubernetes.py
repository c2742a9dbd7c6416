"""The Kubernetes manifests (`deploy/kubernetes/`, for a database server with use_docker=yes).

Every document is valid against the Kubernetes JSON schemas that kubernetes-validate
bundles (strict: no unknown field), and so is what kustomize builds from them (with the
components and without); the Prometheus Operator's ServiceMonitor, which they do not
know, against the operator's own models (cloudcoil's, generated from its CRDs; strict
too). The kustomizations list exactly their files. Whatever must agree with the rest
of the bake does: the port and the user of the Dockerfile, the probes and the metrics
scrape of the app, token and all (served for real, on the manifests' settings),
one image everywhere, every ConfigMap and Secret key a setting of `app/settings.py`, the
shipped Secret refused by those settings until its placeholders are replaced, the
migration Job's command the one of compose's `migrate`, and the commands of the Job, of
the wait before the web pods start and of the purge CronJob run as written against the
real database server.
"""

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from dockerfile_parse import DockerfileParser
from pydantic import ValidationError
from ruamel.yaml import YAML
from sqlalchemy.engine import make_url

from tests.baked_app import serve_baked
from tests.conftest import IN_CI, RUN_ID, Bakery, Cookies, DatabaseServer, run, tail
from tests.variants import TEST_PYTHON_VERSION, YES_NO, Variant

SERVER_DATABASES = ("postgresql", "mysql")
MANIFEST_VARIANTS = [
    *(
        Variant(database, example, "no", TEST_PYTHON_VERSION)
        for database in SERVER_DATABASES
        for example in YES_NO
    ),
    *(
        Variant(database, "yes", "no", TEST_PYTHON_VERSION, auth="jwt")
        for database in SERVER_DATABASES
    ),
    # The task workers: with the examples on one server, without them on the other.
    Variant("postgresql", "yes", "no", TEST_PYTHON_VERSION, task_queue="taskiq"),
    Variant("mysql", "no", "no", TEST_PYTHON_VERSION, task_queue="taskiq"),
]
TASK_QUEUE_VARIANTS = [v for v in MANIFEST_VARIANTS if v.task_queue == "taskiq"]
# The commands differ with the examples only by the purge CronJob's, and with auth only by
# the Secret's keys: run them once per server.
COMMAND_VARIANTS = [
    v
    for v in MANIFEST_VARIANTS
    if v.include_example_models == "yes" and v.auth == "none" and v.task_queue == "none"
]
WITHOUT_MANIFESTS = [
    Variant("sqlite", "yes", "no", TEST_PYTHON_VERSION),
    Variant("postgresql", "yes", "no", TEST_PYTHON_VERSION, use_docker="no"),
    Variant("mysql", "yes", "no", TEST_PYTHON_VERSION, use_docker="no"),
]
KUBERNETES_VERSION = kubernetes_validate.latest_version()
COMPONENTS = "# components:\n"
# The optional parts (kustomize Components), by database.
COMPONENT_FOLDERS = {"postgresql": ["monitoring", "pgbouncer"], "mysql": ["monitoring"]}
PGBOUNCER_IMAGE = re.compile(r"edoburu/pgbouncer:v\d+\.\d+\.\d+-p\d+")
# Variables that the edoburu/pgbouncer image's entrypoint.sh reads (v1.25.2-p0; not all
# of them): PgBouncer's keys must be among them, or the image would silently ignore them.
PGBOUNCER_VARIABLES = frozenset(
    {
        "DATABASE_URL", "DATABASE_URLS", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER",
        "DB_PASSWORD", "AUTH_FILE", "AUTH_TYPE", "AUTH_USER", "AUTH_QUERY", "AUTH_DBNAME",
        "AUTH_HBA_FILE", "POOL_MODE", "MAX_CLIENT_CONN", "POOL_SIZE", "DEFAULT_POOL_SIZE",
        "MIN_POOL_SIZE", "RESERVE_POOL_SIZE", "RESERVE_POOL_TIMEOUT", "MAX_DB_CONNECTIONS",
        "MAX_USER_CONNECTIONS", "SERVER_ROUND_ROBIN", "IGNORE_STARTUP_PARAMETERS",
        "ADMIN_USERS", "STATS_USERS", "LISTEN_ADDR", "LISTEN_PORT", "CLIENT_ENCODING",
        "SERVER_RESET_QUERY", "SERVER_LIFETIME", "SERVER_IDLE_TIMEOUT", "QUERY_WAIT_TIMEOUT",
        "MAX_PREPARED_STATEMENTS", "LOG_CONNECTIONS", "LOG_DISCONNECTIONS", "VERBOSE",
    }
)  # fmt: skip
# Read by other programs than the app's settings: prometheus-client.
NOT_SETTINGS = frozenset({"PROMETHEUS_MULTIPROC_DIR"})
# The servers' default max_connections: the manifests' pools must fit in it.
DEFAULT_MAX_CONNECTIONS = {"postgresql": 100, "mysql": 151}
# Kinds of the Prometheus Operator, which kubernetes-validate has no schema for.
OPERATOR_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_NAME = {"CronJob": 52}  # the controller appends 11 characters to a Job's name
MAX_LABEL = 63
COMMAND_TIMEOUT = 60
PLACEHOLDER = "change-me"


def _load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in YAML(typ="safe", pure=True).load_all(text) if doc is not None]


def _deploy(project: Path) -> Path:
    return project / "deploy" / "kubernetes"


def _kustomization(folder: Path) -> dict[str, Any]:
    (document,) = _load_all((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    return document


def _patch_files(folder: Path) -> set[str]:
    return {patch["path"] for patch in _kustomization(folder).get("patches", [])}


def _manifest_files(project: Path) -> list[Path]:
    """Every YAML file of the manifests but the kustomizations and their patches."""
    files = []
    for path in sorted(_deploy(project).rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.name in _patch_files(path.parent):
            continue
        files.append(path)
    return files


def _resources(project: Path) -> list[dict[str, Any]]:
    """The base's resources, as kustomize reads them (every document of every file)."""
    folder = _deploy(project)
    return [
        document
        for name in _kustomization(folder)["resources"]
        for document in _load_all((folder / name).read_text(encoding="utf-8"))
    ]


def _web_name(resources: list[dict[str, Any]]) -> str:
    """The name of the web pods' Deployment (beside it, with a task queue: the workers')."""
    (web,) = [
        r
        for r in resources
        if r["kind"] == "Deployment"
        and r["metadata"]["labels"]["app.kubernetes.io/component"] == "web"
    ]
    name: str = web["metadata"]["name"]
    return name


def _one(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind and name in (None, r["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def _pod_specs(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each workload's pod spec, by `Kind/name`."""
    specs = {}
    for r in resources:
        key = f"{r['kind']}/{r['metadata']['name']}"
        if r["kind"] in ("Deployment", "Job"):
            specs[key] = r["spec"]["template"]["spec"]
        elif r["kind"] == "CronJob":
            specs[key] = r["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _image_name(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def _app_containers(project: Path, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every container that runs the service's own image."""
    slug = project.name
    return [
        c
        for pod in _pod_specs(resources).values()
        for c in _containers(pod)
        if _image_name(c["image"]) == slug
    ]


@dataclass(frozen=True)
class Image:
    """What the baked Dockerfile's runtime stage says."""

    command: list[str]
    exposed: list[str]
    uid: int
    environment: dict[str, str]

    def option(self, name: str) -> str:
        return self.command[self.command.index(name) + 1]


def _image(project: Path) -> Image:
    parser = DockerfileParser(path=str(project / "Dockerfile"))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    command = json.loads(next(value for name, value in instructions if name == "CMD"))
    exposed = [value for name, value in instructions if name == "EXPOSE"]
    users = [re.search(r"useradd .*--uid (\d+) app\b", v) for n, v in instructions if n == "RUN"]
    (uid,) = [int(match.group(1)) for match in users if match]
    assert ("USER", "app") in instructions
    environment = {name: value for name, value in parser.envs.items() if name != "PATH"}
    return Image(command, exposed, uid, environment)


def _compose(project: Path) -> dict[str, Any]:
    (document,) = _load_all((project / "docker-compose.yml").read_text(encoding="utf-8"))
    return document


def _in_project(project: Path, code: str, *args: str) -> Any:
    """Run `code` with the baked project on sys.path; it prints one JSON value."""
    result = run([sys.executable, "-c", code, *args], cwd=project, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, tail(result.stdout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _setting_names(project: Path) -> set[str]:
    code = (
        "import json\nfrom app.settings import Settings\n"
        "print(json.dumps(sorted(name.upper() for name in Settings.model_fields)))"
    )
    return set(_in_project(project, code))


def _config_maps_and_secrets(resources: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    found = {}
    for r in resources:
        if r["kind"] == "ConfigMap":
            found["ConfigMap", r["metadata"]["name"]] = r["data"]
        elif r["kind"] == "Secret":
            found["Secret", r["metadata"]["name"]] = r["stringData"]
    return found


def _environment(container: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, str]:
    """The variables a container gets from its envFrom and its plain `env` values
    (`valueFrom` ones resolved from the Secrets and ConfigMaps in `resources`)."""
    sources = _config_maps_and_secrets(resources)
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", "configMapRef") if "configMapRef" in source else ("Secret", "secretRef")
        )
        environment.update(sources[kind, source[ref]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            ref = (
                variable["valueFrom"].get("secretKeyRef")
                or variable["valueFrom"]["configMapKeyRef"]
            )
            kind = "Secret" if "secretKeyRef" in variable["valueFrom"] else "ConfigMap"
            environment[variable["name"]] = sources[kind, ref["name"]][ref["key"]]
    return environment


def _strict_errors(documents: list[dict[str, Any]], where: str) -> list[str]:
    errors = []
    for document in documents:
        name = f"{where}: {document.get('kind')}/{document.get('metadata', {}).get('name')}"
        if (document.get("apiVersion"), document.get("kind")) in OPERATOR_KINDS:
            errors += [f"{name}: {error}" for error in _operator_errors(document)]
            continue
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            errors.append(f"{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error.message}")
    return errors


def _operator_errors(document: dict[str, Any]) -> list[str]:
    """A Prometheus Operator resource against the operator's models (cloudcoil's,
    generated from its CRDs), as strictly as kubernetes-validate: a field the model
    does not know is an error, not dropped."""
    from cloudcoil.models.prometheus_operator import v1  # a few seconds: only when needed

    model = getattr(v1, document["kind"])
    try:
        parsed = model.model_validate(document)
    except ValidationError as error:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"{path}: unknown field" for path in _dropped(document, kept)]


def _dropped(given: Any, kept: Any, path: str = "") -> list[str]:
    """The paths of `given` that `kept` (the model's dump of it) lost."""
    lost: list[str] = []
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            where = f"{path}.{key}" if path else key
            lost += _dropped(value, kept[key], where) if key in kept else [where]
    elif isinstance(given, list) and isinstance(kept, list):
        for index, (value, dumped) in enumerate(zip(given, kept, strict=True)):
            lost += _dropped(value, dumped, f"{path}.{index}")
    return lost


def _kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        message = "kubectl is not installed (its `kubectl kustomize` builds the manifests)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return _load_all(result.stdout)


def _with(project: Path, tmp_path: Path, *components: str) -> Path:
    """A copy of the manifests with `components` turned on, as the kustomization's
    comment says to: `components:` and their lines uncommented."""
    copy = tmp_path / "-".join(("kubernetes", *components))
    shutil.copytree(_deploy(project), copy)
    text = (copy / "kustomization.yaml").read_text(encoding="utf-8")
    assert text.count(COMPONENTS) == 1
    text = text.replace(COMPONENTS, COMPONENTS.removeprefix("# "))
    for component in components:
        line = f"#   - {component}\n"
        assert text.count(line) == 1, component
        text = text.replace(line, line.removeprefix("#"))
    (copy / "kustomization.yaml").write_text(text, encoding="utf-8")
    return copy


# ---------------------------------------------------------------------------
# Which bakes have manifests


@pytest.mark.parametrize("variant", WITHOUT_MANIFESTS, ids=str)
def test_no_manifests_without_a_server_database_and_the_image(
    bakery: Bakery, variant: Variant
) -> None:
    project = bakery.project(variant)
    assert not (project / "deploy").exists()
    assert not (project / "docs" / "kubernetes.md").exists()


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_the_kustomizations_list_exactly_their_files(bakery: Bakery, variant: Variant) -> None:
    folder = _deploy(bakery.project(variant))
    assert (bakery.project(variant) / "docs" / "kubernetes.md").is_file()
    base = _kustomization(folder)
    files = {p.name for p in folder.iterdir() if p.is_file() and p.name != "kustomization.yaml"}
    assert sorted(base["resources"]) == sorted(files)
    assert (folder / "purge-cronjob.yaml").exists() == (variant.include_example_models == "yes")
    # The only folders are the optional components, each off until uncommented.
    folders = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert folders == COMPONENT_FOLDERS[variant.database]
    text = (folder / "kustomization.yaml").read_text(encoding="utf-8")
    assert "components" not in _kustomization(folder)
    for name in folders:
        assert f"#   - {name}\n" in text
        component = _kustomization(folder / name)
        assert component["kind"] == "Component"
        listed = [*component["resources"], *_patch_files(folder / name)]
        present = [p.name for p in (folder / name).iterdir() if p.is_file()]
        assert sorted(listed) == sorted(set(present) - {"kustomization.yaml"})
    if variant.database != "postgresql":
        assert "pgbouncer" not in text.lower()


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_each_variant_names_only_its_own_database(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    others = {"postgresql": ("mysql", "mariadb"), "mysql": ("postgres", "pgbouncer")}
    pages = [*sorted(_deploy(project).rglob("*.yaml")), project / "docs" / "kubernetes.md"]
    mentions = [
        f"{page.relative_to(project)}: {word}"
        for page in pages
        for word in others[variant.database]
        if word in page.read_text(encoding="utf-8").lower()
    ]
    assert mentions == []


# ---------------------------------------------------------------------------
# Valid Kubernetes


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_every_manifest_is_valid_kubernetes(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    errors = []
    for path in _manifest_files(project):
        documents = _load_all(path.read_text(encoding="utf-8"))
        assert documents, f"{path.name} holds no document"
        errors += _strict_errors(documents, str(path.relative_to(project)))
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_what_kustomize_builds_is_valid_kubernetes(
    bakery: Bakery, variant: Variant, tmp_path: Path
) -> None:
    project = bakery.project(variant)
    built = _kustomize(_deploy(project))
    assert _strict_errors(built, "kubectl kustomize") == []
    # kustomize changes nothing but the image's tag, and the migration Job's name,
    # which ends with it.
    tag = _kustomization(_deploy(project))["images"][0]["newTag"]
    expected = [
        (r["kind"], r["metadata"]["name"] + (f"-{tag}" if r["kind"] == "Job" else ""))
        for r in _resources(project)
    ]
    assert sorted((r["kind"], r["metadata"]["name"]) for r in built) == sorted(expected)
    assert {c["image"] for c in _app_containers(project, built)} == {f"{project.name}:{tag}"}
    # Resources each component adds (monitoring: the web pods', and the workers').
    added = {"pgbouncer": 6, "monitoring": 2 if variant.task_queue == "taskiq" else 1}
    for component in COMPONENT_FOLDERS[variant.database]:
        with_it = _kustomize(_with(project, tmp_path, component))
        assert _strict_errors(with_it, f"kubectl kustomize ({component})") == []
        assert len(with_it) == len(built) + added[component]


def _with_tag(project: Path, tmp_path: Path, tag: str) -> Path:
    """A copy of the manifests whose image has another tag, as a release sets it."""
    copy = tmp_path / f"kubernetes-{tag}"
    shutil.copytree(_deploy(project), copy)
    text = (copy / "kustomization.yaml").read_text(encoding="utf-8")
    shipped = 'newTag: "0.1.0"'
    assert text.count(shipped) == 1
    (copy / "kustomization.yaml").write_text(
        text.replace(shipped, f'newTag: "{tag}"'), encoding="utf-8"
    )
    return copy


def test_each_release_gets_a_migration_job_of_its_own(bakery: Bakery, tmp_path: Path) -> None:
    """A Job cannot be changed once created (`kubectl apply` of a changed one fails), so
    each release's Job has a name of its own: the image's tag. The same release again
    gives the same Job, which `kubectl apply` leaves as it is."""
    project = bakery.project(Variant("postgresql", "yes", "no", TEST_PYTHON_VERSION))
    name = _one(_resources(project), "Deployment")["metadata"]["name"]

    def job(tag: str, folder: str) -> dict[str, Any]:
        built = _kustomize(_with_tag(project, tmp_path / folder, tag))
        assert _strict_errors(built, f"kubectl kustomize ({tag})") == []
        (found,) = [r for r in built if r["kind"] == "Job"]
        return found

    first, second, again = job("1.4.0", "a"), job("1.5.0-rc.1", "b"), job("1.4.0", "c")
    assert first["metadata"]["name"] == f"{name}-migrate-1.4.0"
    assert second["metadata"]["name"] == f"{name}-migrate-1.5.0-rc.1"
    assert again == first
    (container,) = second["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{project.name}:1.5.0-rc.1"
    # The replacement renames the Job only.
    base = _kustomize(_deploy(project))
    assert sorted(r["metadata"]["name"] for r in base if r["kind"] != "Job") == sorted(
        r["metadata"]["name"] for r in _resources(project) if r["kind"] != "Job"
    )


# ---------------------------------------------------------------------------
# Agreeing with the image and the app


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_ports_probes_and_shutdown_agree_with_the_image(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    image = _image(project)
    resources = _resources(project)
    name = _web_name(resources)
    pod = _one(resources, "Deployment", name)["spec"]["template"]
    (app,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in app["ports"]}
    assert list(ports.values()) == [int(image.option("--port"))]
    assert image.exposed == [str(image.option("--port"))]

    def port(probe: dict[str, Any]) -> int:
        value = probe["httpGet"]["port"]
        return ports[value] if isinstance(value, str) else int(value)

    assert app["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert app["startupProbe"]["httpGet"]["path"] == "/livez"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
        assert port(app[probe]) == int(image.option("--port")), probe
    assert "annotations" not in pod["metadata"]  # prometheus.io/* would scrape without the token
    # The Service reaches the container port by its name.
    service = _one(resources, "Service", name)
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ports
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    # The ServiceMonitor scrapes /metrics through that Service's port, with the token.
    (monitor,) = _load_all((_deploy(project) / "monitoring" / "servicemonitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    assert (endpoint["port"], endpoint["path"]) == (service_port["name"], "/metrics")
    credentials = endpoint["authorization"]["credentials"]
    secret = _one(resources, "Secret", credentials["name"])
    assert endpoint["authorization"]["type"] == "Bearer"
    assert credentials["key"] == "METRICS_TOKEN"
    assert credentials["key"] in secret["stringData"]
    # /readyz gives up before the probe does.
    settings = _environment(app, resources)
    assert float(settings["READINESS_TIMEOUT"]) < app["readinessProbe"]["timeoutSeconds"]
    # The endpoints drop the pod (preStop), then uvicorn finishes the requests in flight,
    # all before the kubelet kills it.
    pause = app["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    graceful = int(image.option("--timeout-graceful-shutdown"))
    assert pod["spec"]["terminationGracePeriodSeconds"] > int(pause[1]) + graceful


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_pods_run_as_the_image_user_on_a_read_only_root(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    image = _image(project)
    multiprocess_dir = image.environment["PROMETHEUS_MULTIPROC_DIR"]
    resources = [
        document
        for path in _manifest_files(project)
        for document in _load_all(path.read_text(encoding="utf-8"))
    ]
    pods = _pod_specs(resources)
    assert len(pods) == (3 if variant.include_example_models == "yes" else 2) + (
        1 if variant.database == "postgresql" else 0
    ) + (1 if variant.task_queue == "taskiq" else 0)
    for where, pod in pods.items():
        runs_the_image = all(_image_name(c["image"]) == project.name for c in _containers(pod))
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        if runs_the_image:
            assert security["runAsUser"] == security["runAsGroup"] == image.uid, where
        else:
            assert PGBOUNCER_IMAGE.fullmatch(pod["containers"][0]["image"]), where
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted: list[str] = []
        for container in _containers(pod):
            at = f"{where} {container['name']}"
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, at
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, at
            mounts = container.get("volumeMounts", [])
            assert all("emptyDir" in volumes[m["name"]] for m in mounts), at
            mounted += [m["name"] for m in mounts]
            if runs_the_image:
                # app/metrics.py creates the directory at import: it must be writable.
                assert any(
                    f"{multiprocess_dir}/".startswith(m["mountPath"].rstrip("/") + "/")
                    for m in mounts
                ), at
        # No two containers share a scratch directory (nor one process's metrics files).
        assert len(mounted) == len(set(mounted)) == len(volumes), where


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_one_image_everywhere(bakery: Bakery, variant: Variant) -> None:
    project = bakery.project(variant)
    resources = _resources(project)
    images = {c["image"] for c in _app_containers(project, resources)}
    assert images == {project.name}
    expected = 4 if variant.include_example_models == "yes" else 3  # + the CronJob's
    expected += 2 if variant.task_queue == "taskiq" else 0  # + the worker and its wait
    assert len(_app_containers(project, resources)) == expected
    (kustomized,) = _kustomization(_deploy(project))["images"]
    assert kustomized["name"] == project.name
    # compose builds the same image; if it names it, it is this name.
    for service in ("migrate", "app"):
        named = _compose(project)["services"][service].get("image")
        assert named is None or _image_name(named) == project.name, service


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_every_variable_is_a_setting_and_the_numbers_agree(
    bakery: Bakery, variant: Variant
) -> None:
    project = bakery.project(variant)
    settings = _setting_names(project)
    resources = _resources(project)
    unknown = {
        f"{container['name']}: {variable}"
        for container in _app_containers(project, resources)
        for variable in _environment(container, resources)
        if variable not in settings | NOT_SETTINGS
    }
    assert unknown == set()
    # Every ConfigMap and Secret is for the app's containers.
    used = {
        (kind, ref["name"])
        for container in _app_containers(project, resources)
        for source in container.get("envFrom", [])
        for kind, ref in (
            ("ConfigMap", source.get("configMapRef")),
            ("Secret", source.get("secretRef")),
        )
        if ref
    }
    assert used == set(_config_maps_and_secrets(resources))

    name = _web_name(resources)
    deployment = _one(resources, "Deployment", name)
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    web = _environment(app, resources)
    hpa = _one(resources, "HorizontalPodAutoscaler", name)["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set
    assert hpa["minReplicas"] >= 2
    pdb = _one(resources, "PodDisruptionBudget", name)["spec"]
    assert pdb["maxUnavailable"] < hpa["minReplicas"]
    assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # SERVICE_INSTANCES: the most pods at once, during a rollout at the autoscaler's maximum.
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert int(web["SERVICE_INSTANCES"]) == hpa["maxReplicas"] + surge
    # Every pod's pools, the purge's and the migration's connection fit the server's default.
    pools = (
        int(web["SERVICE_INSTANCES"])
        * int(web["WEB_CONCURRENCY"])
        * (int(web["DB_POOL_SIZE"]) + int(web["DB_MAX_OVERFLOW"]))
    )
    jobs = 1  # the migration (NullPool: one connection)
    if variant.include_example_models == "yes":
        (purge,) = _pod_specs(resources)[f"CronJob/{name}-purge"]["containers"]
        job = _environment(purge, resources)
        jobs += int(job["JOB_DB_POOL_SIZE"]) + int(job.get("JOB_DB_MAX_OVERFLOW", "0"))
    if variant.task_queue == "taskiq":
        workers = _one(resources, "Deployment", f"{name}-worker")
        (worker,) = workers["spec"]["template"]["spec"]["containers"]
        settings_of_worker = _environment(worker, resources)
        rollout = workers["spec"]["strategy"]["rollingUpdate"]
        most = workers["spec"]["replicas"] + rollout["maxSurge"]
        pools += most * (
            int(settings_of_worker["WORKER_DB_POOL_SIZE"])
            + int(settings_of_worker["WORKER_DB_MAX_OVERFLOW"])
        )
    assert pools + jobs <= DEFAULT_MAX_CONNECTIONS[variant.database]


@pytest.mark.parametrize("variant", TASK_QUEUE_VARIANTS, ids=str)
def test_the_workers_probes_shutdown_and_disruption_budget(
    bakery: Bakery, variant: Variant
) -> None:
    """The worker's command is compose's; its probes ask /livez on WORKER_METRICS_PORT and
    nothing reads its readiness (no Service selects it); it gets longer to stop than
    WORKER_SHUTDOWN_SECONDS; Prometheus scrapes that port with the token (a PodMonitor: the
    pods carry no prometheus.io/* annotations, which would scrape without it); drains take
    one at a time."""
    project = bakery.project(variant)
    resources = _resources(project)
    name = f"{_web_name(resources)}-worker"
    deployment = _one(resources, "Deployment", name)
    pod = deployment["spec"]["template"]
    (worker,) = pod["spec"]["containers"]
    assert worker["command"] == _compose(project)["services"]["worker"]["command"]
    code = (
        "import json\nfrom app.settings import Settings\n"
        's = Settings(_env_file=None, environment="development")\n'
        "print(json.dumps([s.worker_metrics_port, s.worker_shutdown_seconds]))"
    )
    port, shutdown = _in_project(project, code)
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"metrics": port}
    for probe in ("startupProbe", "livenessProbe"):
        assert worker[probe]["httpGet"] == {"path": "/livez", "port": "metrics"}, probe
    assert "readinessProbe" not in worker
    assert pod["spec"]["terminationGracePeriodSeconds"] > shutdown
    assert "annotations" not in pod["metadata"]
    monitor_file = _deploy(project) / "monitoring" / "worker-podmonitor.yaml"
    (monitor,) = _load_all(monitor_file.read_text(encoding="utf-8"))
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert monitor["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert endpoint["authorization"]["credentials"]["key"] == "METRICS_TOKEN"
    selector = deployment["spec"]["selector"]["matchLabels"]
    pdb = _one(resources, "PodDisruptionBudget", name)["spec"]
    assert pdb["selector"]["matchLabels"] == selector
    assert pdb["maxUnavailable"] < deployment["spec"]["replicas"]
    for service in (r for r in resources if r["kind"] == "Service"):
        assert service["spec"]["selector"] != selector


@pytest.mark.parametrize("variant", MANIFEST_VARIANTS, ids=str)
def test_the_shipped_secret_is_refused_until_its_placeholders_are_replaced(
    bakery: Bakery, variant: Variant
) -> None:
    project = bakery.project(variant)
    resources = _resources(project)
    name = _web_name(resources)
    (secret,) = [r["stringData"] for r in resources if r["kind"] == "Secret"]
    # Nothing real is committed: every value holds the placeholder.
    assert all(PLACEHOLDER in value for value in secret.values()), secret
    (app,) = _pod_specs(resources)[f"Deployment/{name}"]["containers"]
    shipped = {**_image(project).environment, **_environment(app, resources)}
    assert shipped["ENVIRONMENT"] == "production"
    real = _real_secrets(secret)
    # Each environment alone, as in a pod (no `.env`: the image has none).
    code = (
        "import json, os, sys\nfrom pydantic import ValidationError\n"
        "from app.settings import Settings\n"
        "answers = []\n"
        "for environment in json.loads(sys.argv[1]):\n"
        "    os.environ.clear()\n    os.environ.update(environment)\n"
        "    try:\n        Settings(_env_file=None)\n"
        "    except ValidationError as error:\n        answers.append(str(error))\n"
        "    else:\n        answers.append('accepted')\n"
        "print(json.dumps(answers))"
    )
    # Every placeholder but one replaced: refused, naming the one left.
    environments = [{**shipped, **real, key: shipped[key]} for key in real]
    answers = _in_project(project, code, json.dumps([*environments, {**shipped, **real}]))
    for key, answer in zip(real, answers, strict=False):
        assert re.search(rf"(?<![A-Z_]){key} (is|uses) the placeholder", answer), (key, answer)
    assert answers[-1] == "accepted"


JWT_MANIFEST_VARIANTS = [v for v in MANIFEST_VARIANTS if v.auth == "jwt"]


@pytest.mark.parametrize("variant", JWT_MANIFEST_VARIANTS, ids=str)
def test_the_throttle_sees_the_client_behind_the_ingress_and_no_one_else(
    bakery: Bakery, variant: Variant
) -> None:
    """Behind an Ingress the pods' peer is the controller: with the ConfigMap's
    FORWARDED_ALLOW_IPS, the app built on those settings takes the client from a peer
    in the pod network, and from no other peer (a client cannot name itself anyone)."""
    project = bakery.project(variant)
    resources = _resources(project)
    (app,) = _pod_specs(resources)[f"Deployment/{_web_name(resources)}"]["containers"]
    trusted = _environment(app, resources)["FORWARDED_ALLOW_IPS"]
    assert "*" not in trusted
    code = (
        "import asyncio, json, os, sys\n"
        "os.environ.update(ENVIRONMENT='development', FORWARDED_ALLOW_IPS=sys.argv[1])\n"
        "from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware\n"
        "from app.main import create_app\n"
        "(proxy,) = [m for m in create_app().user_middleware if m.cls is ProxyHeadersMiddleware]\n"
        "seen = []\n"
        "async def echo(scope, receive, send):\n    seen.append(scope['client'][0])\n"
        "async def ask(peer):\n"
        "    scope = {'type': 'http', 'client': (peer, 5000), 'scheme': 'http',\n"
        "             'headers': [(b'x-forwarded-for', b'203.0.113.9')]}\n"
        "    await ProxyHeadersMiddleware(echo, **proxy.kwargs)(scope, None, None)\n"
        "for peer in sys.argv[2:]:\n    asyncio.run(ask(peer))\n"
        "print(json.dumps(seen))"
    )
    seen = _in_project(project, code, trusted, "10.244.1.7", "127.0.0.1", "198.51.100.4")
    # The controller's pod: the client it names. Anyone else: its own address.
    assert seen == ["203.0.113.9", "127.0.0.1", "198.51.100.4"]


def _real_secrets(secret: dict[str, str]) -> dict[str, str]:
    """The Secret with a random value for each placeholder (in a URL: its password)."""
    real = {}
    for key, value in secret.items():
        if "://" in value:
            password = secrets.token_urlsafe(16)
            real[key] = make_url(value).set(password=password).render_as_string(hide_password=False)
        else:
            real[key] = secrets.token_urlsafe(32)
    return real


# ---------------------------------------------------------------------------
# The commands, for real


@pytest.fixture
def server(request: pytest.FixtureRequest, variant: Variant) -> DatabaseServer:
    fixture = {"postgresql": "postgres_server", "mysql": "mariadb_server"}[variant.database]
    found: DatabaseServer = request.getfixturevalue(fixture)
    return found


@pytest.fixture
def database_url(server: DatabaseServer, variant: Variant) -> Iterator[str]:
    name = f"ckt_{RUN_ID}_k8s_{variant.database[:2]}_{variant.include_example_models}"
    server.drop(name)
    server.create(name)
    yield server.url(name)
    server.drop(name)


def _here(argv: list[str]) -> list[str]:
    """An image's command on this machine: its `python` is this interpreter."""
    assert argv[0] == "python", argv
    return [sys.executable, *argv[1:]]


@pytest.mark.parametrize("variant", COMMAND_VARIANTS, ids=str)
def test_the_commands_run_as_written(
    bakery: Bakery, variant: Variant, database_url: str, tmp_path: Path
) -> None:
    project = bakery.project(variant)
    resources = _resources(project)
    name = _web_name(resources)
    pods = _pod_specs(resources)
    (secret,) = [r["stringData"] for r in resources if r["kind"] == "Secret"]

    def environment(container: dict[str, Any]) -> dict[str, str]:
        """As the pod gets it, with real secrets and the server here."""
        multiprocess = tmp_path / container["name"]
        return {
            **_image(project).environment,
            "PROMETHEUS_MULTIPROC_DIR": str(multiprocess),
            **_environment(container, resources),
            **_real_secrets(secret),
            "DATABASE_URL": database_url,
        }

    # 1. The migration Job: compose's `migrate` command.
    (migrate,) = pods[f"Job/{name}-migrate"]["containers"]
    assert migrate["command"] == _compose(project)["services"]["migrate"]["command"]
    result = run(_here(migrate["command"]), project, environment(migrate), COMMAND_TIMEOUT)
    assert result.returncode == 0, tail(result.stdout)

    # 2. The web pods' init container: the schema is at head, so it returns at once.
    (wait,) = pods[f"Deployment/{name}"]["initContainers"]
    assert wait["command"][:4] == ["python", "-m", "scripts.db", "wait"]
    started = time.monotonic()
    result = run(_here(wait["command"]), project, environment(wait), COMMAND_TIMEOUT)
    assert result.returncode == 0, tail(result.stdout)
    assert "ok: the schema is at head" in result.stdout
    assert time.monotonic() - started < COMMAND_TIMEOUT / 2

    # 3. The purge CronJob, its arguments and its job pool as they are.
    (purge,) = pods[f"CronJob/{name}-purge"]["containers"]
    result = run(_here(purge["command"]), project, environment(purge), COMMAND_TIMEOUT)
    assert result.returncode == 0, tail(result.stdout)
    assert "done: 0 users and 0 posts purged" in result.stdout

    # 4. The web container, on the manifests' settings: its probes answer, and its
    # metrics answer the ServiceMonitor's scrape (with the Secret's token), nobody else.
    (app,) = pods[f"Deployment/{name}"]["containers"]
    (monitor,) = _load_all((_deploy(project) / "monitoring" / "servicemonitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]
    web = environment(app)
    token = web[endpoint["authorization"]["credentials"]["key"]]
    with serve_baked(project, web) as base_url:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = app[probe]["httpGet"]["path"]
            response = httpx.get(f"{base_url}{path}", timeout=app[probe].get("timeoutSeconds", 1))
            assert response.status_code == 200, (probe, response.text)
        metrics = f"{base_url}{endpoint['path']}"
        assert httpx.get(metrics, timeout=5).status_code == 401
        scraped = httpx.get(metrics, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert scraped.status_code == 200


# ---------------------------------------------------------------------------
# PgBouncer (PostgreSQL)


def test_pgbouncer_component_wires_the_web_pods_through_it(bakery: Bakery, tmp_path: Path) -> None:
    project = bakery.project(Variant("postgresql", "yes", "no", TEST_PYTHON_VERSION))
    built = _kustomize(_with(project, tmp_path, "pgbouncer"))
    base = _kustomize(_deploy(project))
    name = _one(base, "Deployment")["metadata"]["name"]
    pods = _pod_specs(built)
    (app,) = pods[f"Deployment/{name}"]["containers"]
    (wait,) = pods[f"Deployment/{name}"]["initContainers"]
    through = _environment(app, built)
    direct = _environment(wait, built)
    assert through["DB_PGBOUNCER"] == "true"
    assert "DB_PGBOUNCER" not in direct
    # Everything but the web container still goes to PostgreSQL itself.
    base_pods = _pod_specs(base)
    for where, pod in pods.items():
        for container in _containers(pod):
            if container is app or _image_name(container["image"]) != project.name:
                continue
            (same,) = [c for c in _containers(base_pods[where]) if c["name"] == container["name"]]
            assert _environment(container, built) == _environment(same, base), where
    # The migration needs a session of its own (env.py refuses DB_PGBOUNCER=true).
    (job,) = [key for key in pods if key.startswith("Job/")]
    (migrate,) = pods[job]["containers"]
    migration = _environment(migrate, built)
    assert "DB_PGBOUNCER" not in migration
    assert make_url(migration["DATABASE_URL"]).host != f"{name}-pgbouncer"
    # The web pods' URL: PgBouncer's Service, its database, user and password.
    bouncer = _one(built, "Deployment", f"{name}-pgbouncer")
    (pgbouncer,) = bouncer["spec"]["template"]["spec"]["containers"]
    config = _environment(pgbouncer, built)
    assert set(config) <= PGBOUNCER_VARIABLES
    assert config["POOL_MODE"] == "transaction"
    url = make_url(through["DATABASE_URL"])
    service = _one(built, "Service", f"{name}-pgbouncer")["spec"]
    (service_port,) = service["ports"]
    assert service["selector"] == bouncer["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"]: p["containerPort"] for p in pgbouncer["ports"]}
    assert container_ports[service_port["targetPort"]] == 5432  # the image's listen_port
    assert (url.host, url.port) == (f"{name}-pgbouncer", service_port["port"])
    assert url.database == config["DB_NAME"] == make_url(direct["DATABASE_URL"]).database
    assert (url.username, url.password) == (config["DB_USER"], config["DB_PASSWORD"])
    assert url.drivername == "postgresql+asyncpg"
    # PgBouncer's server connections and the jobs fit PostgreSQL's default limit, and
    # every web pool fits one PgBouncer's client limit.
    web = int(through["SERVICE_INSTANCES"]) * int(through["WEB_CONCURRENCY"])
    web *= int(through["DB_POOL_SIZE"]) + int(through["DB_MAX_OVERFLOW"])
    assert web <= int(config["MAX_CLIENT_CONN"])
    servers = bouncer["spec"]["replicas"] * int(config["DEFAULT_POOL_SIZE"])
    assert servers + 1 + 1 <= DEFAULT_MAX_CONNECTIONS["postgresql"]


# ---------------------------------------------------------------------------
# Names


def test_names_are_valid_for_the_longest_slug(
    cookies: Cookies, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Kubernetes names: DNS labels (no `_`), CronJob names at most 52 characters."""
    slug = "a_service_whose_name_is_long_enough_to_test_every_limit_x"
    assert len(slug) == 57
    clean_environment.setenv("SKIP_FIRST_MIGRATION", "1")
    result = cookies.bake(
        extra_context={"project_slug": slug, "database": "postgresql", "run_first_migration": "no"}
    )
    assert result.exception is None, repr(result.exception)
    assert result.project_path is not None
    project = Path(result.project_path)
    documents = [
        d
        for p in sorted(_deploy(project).rglob("*.yaml"))
        for d in _load_all(p.read_text(encoding="utf-8"))
    ]
    problems = []
    for document in documents:
        if document["kind"] in ("Kustomization", "Component"):
            continue
        name = document["metadata"]["name"]
        if not DNS_LABEL.fullmatch(name) or len(name) > MAX_NAME.get(document["kind"], MAX_LABEL):
            problems.append(f"{document['kind']}/{name}")
        for value in document["metadata"].get("labels", {}).values():
            if len(value) > MAX_LABEL or not DNS_LABEL.fullmatch(value):
                problems.append(f"{document['kind']}/{name}: label {value}")
    assert problems == []
    # The image keeps the slug, which a Docker image name may hold.
    (kustomized,) = _kustomization(_deploy(project))["images"]
    assert kustomized["name"] == slug
    # The migration Job's name ends with the image's tag: the longest tag that
    # kustomization.yaml allows still gives a name that fits the Job's pod label
    # (batch.kubernetes.io/job-name, 63 characters at most).
    allowed = re.search(
        r"at most (\d+) characters", (_deploy(project) / "kustomization.yaml").read_text()
    )
    assert allowed is not None
    longest = "1." + "9" * (int(allowed.group(1)) - 2)
    built = _kustomize(_with_tag(project, tmp_path, longest))
    (job,) = [r for r in built if r["kind"] == "Job"]
    assert len(job["metadata"]["name"]) == MAX_LABEL
    assert job["metadata"]["name"].endswith(f"-migrate-{longest}")

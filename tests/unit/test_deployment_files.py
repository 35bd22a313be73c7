"""The container image recipe and the Kubernetes manifests, checked offline: the Dockerfile's
stages, user, health check and entry point; every manifest against the Kubernetes schemas
(kubernetes-validate bundles them), rendered with kustomize where a kustomize is installed."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from dockerfile_parse import DockerfileParser
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.31.0"  # the oldest Kubernetes the manifests promise to run on (sleep preStop: 1.30)
ALSO = [kubernetes_validate.latest_version()]


def _instructions(path: Path = REPO / "Dockerfile") -> list[dict]:
    with path.open("rb") as handle:
        return DockerfileParser(fileobj=handle).structure


def _stages(instructions: list[dict]) -> dict[str, list[dict]]:
    stages: dict[str, list[dict]] = {}
    current: list[dict] | None = None
    for item in instructions:
        if item["instruction"] == "FROM":
            words = item["value"].split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            current = stages.setdefault(name, [])
        if current is not None:
            current.append(item)
    return stages


def test_dockerfile_builds_the_wheel_in_one_stage_and_runs_it_slim_and_non_root():
    stages = _stages(_instructions())
    assert list(stages) == ["build", "content", "runtime"]  # the runtime last: `docker build .`
    build, runtime = stages["build"], stages["runtime"]
    assert build[0]["value"].startswith("python:${PYTHON_VERSION}-slim")
    assert runtime[0]["value"].startswith("python:${PYTHON_VERSION}-slim")
    build_runs = " ".join(i["value"] for i in build if i["instruction"] == "RUN")
    assert "python -m build --wheel" in build_runs  # the hatch hook generates the protos here
    copied = {i["value"].split()[0] for i in build if i["instruction"] == "COPY"}
    assert {"protos/", "src/", "rules/", "data/", "pyproject.toml"} <= copied
    installs = [i["value"] for i in runtime if i["instruction"] == "RUN"]
    assert any("from=build" in v and "--no-index" in v for v in installs)  # wheels from the build only
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any("useradd" in v and "10001" in v for v in installs)


def test_dockerfile_health_check_uses_cptrules_health_and_serves():
    runtime = _stages(_instructions())["runtime"]
    checks = [i["value"] for i in runtime if i["instruction"] == "HEALTHCHECK"]
    assert len(checks) == 1 and 'CMD ["cptrules", "health", "127.0.0.1:50051"' in checks[0]
    entry = [i["value"] for i in runtime if i["instruction"] == "ENTRYPOINT"]
    assert entry == ['["cptrules", "serve"]']
    assert any('"--port", "50051"' in i["value"] for i in runtime if i["instruction"] == "CMD")


def test_the_health_check_command_exists_with_those_options():
    from cptrules.cli import build_parser

    args = build_parser().parse_args(["health", "127.0.0.1:50051", "--timeout", "5"])
    assert args.func.__name__ == "cmd_health" and args.timeout == 5.0


def test_dockerignore_sends_only_what_the_build_copies():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert lines[lines.index("**")] == "**"  # everything out, then the build's inputs back in
    assert {"!protos/", "!src/", "!rules/", "!data/", "!pyproject.toml", "!hatch_build.py"} <= set(lines)
    assert "src/cptrules/v1/" in lines  # generated at build, never copied from a checkout


# -- Kubernetes -------------------------------------------------------------------------------


def _documents(path: Path) -> list[dict]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d]


def _validate(document: dict) -> None:
    for version in (K8S_VERSION, *ALSO):
        kubernetes_validate.validate(document, version, strict=True)


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _render(folder: Path) -> list[dict]:
    command = _kustomize()
    if command is None:
        pytest.skip("no kustomize or kubectl here; the resource files are validated one by one")
    out = subprocess.run([*command, str(folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in YAML(typ="safe").load_all(out.stdout) if d]


def test_every_base_resource_file_is_listed_and_valid():
    kustomization = _documents(DEPLOY / "base" / "kustomization.yaml")[0]
    files = sorted(p.name for p in (DEPLOY / "base").glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    kinds = set()
    for name in files:
        for document in _documents(DEPLOY / "base" / name):
            _validate(document)
            kinds.add(document["kind"])
    assert kinds == {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def test_the_validator_refuses_a_misspelt_field():
    deployment = _documents(DEPLOY / "base" / "deployment.yaml")[0]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def _by_kind(documents: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def _server(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_base_deployment_probes_security_and_volumes():
    rendered = _by_kind(_documents(DEPLOY / "base" / "deployment.yaml"))
    deployment = rendered[("Deployment", "cptrules")]
    pod = deployment["spec"]["template"]["spec"]
    container = _server(deployment)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051  # native gRPC probes
    assert container["readinessProbe"]["grpc"]["service"] == "cptrules.v1.CodeRulesService"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    for each in (container, pod["initContainers"][0]):
        context = each["securityContext"]
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
        assert context["capabilities"]["drop"] == ["ALL"]
        assert each["resources"]["requests"] and each["resources"]["limits"]["memory"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"content": "/srv/cptrules", "tmp": "/tmp", "tls": "/etc/cptrules/tls"}
    assert "--rules=/srv/cptrules/rules" in container["args"]
    assert "--data-dir=/srv/cptrules/data" in container["args"]
    grace = next(float(a.split("=")[1]) for a in container["args"] if a.startswith("--grace="))
    assert pod["terminationGracePeriodSeconds"] > grace + container["lifecycle"]["preStop"]["sleep"]["seconds"]


def test_base_renders_with_kustomize_and_validates():
    rendered = _render(DEPLOY / "base")
    for document in rendered:
        _validate(document)
    found = _by_kind(rendered)
    assert found[("Service", "cptrules-headless")]["spec"]["clusterIP"] == "None"
    assert found[("HorizontalPodAutoscaler", "cptrules")]["spec"]["scaleTargetRef"]["name"] == "cptrules"
    pdb = found[("PodDisruptionBudget", "cptrules")]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= found[("Deployment", "cptrules")]["spec"]["template"]["metadata"]["labels"].items()
    assert _server(found[("Deployment", "cptrules")])["image"] == "cptrules:0.1.0"


def test_tls_overlay_serves_tls_and_probes_with_cptrules_health():
    rendered = _render(DEPLOY / "overlays" / "example")
    for document in rendered:
        _validate(document)
        assert document["metadata"]["namespace"] == "billing-codes"
    deployment = _by_kind(rendered)[("Deployment", "cptrules")]
    container = _server(deployment)
    assert "--insecure" not in container["args"]
    assert {"--tls-cert=/etc/cptrules/tls/tls.crt", "--tls-key=/etc/cptrules/tls/tls.key"} <= set(container["args"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:3] == ["cptrules", "health", "127.0.0.1:50051"]
        assert "--tls-ca=/etc/cptrules/tls/ca.crt" in command
    tls = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert tls["secret"]["optional"] is False


@pytest.mark.slow
def test_the_wheel_the_image_installs_has_the_protos_the_embedded_default_and_the_plugin(tmp_path):
    """What the Dockerfile's build stage does (`python -m build --wheel`, here through pip):
    the wheel carries the generated modules, the embedded rules and data, and both entry points."""
    import zipfile

    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path),
                            str(REPO)], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("cptrules-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"cptrules/v1/code_pb2.py", "cptrules/v1/code_rules_service_pb2_grpc.py",
            "cptrules/embedded/rules/ruleset.yaml", "cptrules/embedded/data/pfs/RVU25D.json.gz",
            "cptrules/testing.py", "cptrules/client/health.py"} <= names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "cptrules = cptrules.cli:main" in text and "[pytest11]" in text and "cptrules.testing" in text

"""Offline checks of kuberay/rayjob.yaml, the KubeRay RayJob, and of the Dockerfile its image is built from.

The manifest is validated against the openAPIV3Schema of KubeRay's RayJob CRD (../shared/kuberay
beside the repository; skipped where it is absent), with unknown fields refused as `kubectl apply
--validate=strict` refuses them. Then the checks below cover what the search needs on Kubernetes,
as tests/deploy/test_cluster_yaml.py does for `ray up`: the image is the project's built on the installed
Ray's GPU image, a head that runs no trials, GPU workers that scale from 0, token auth, a cluster
deleted when the job ends, and an entrypoint that search.run's own parser accepts with resources
that the GPU group can hold. `test_checks_catch_broken_manifests` feeds each check a broken copy.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

import ray

REPO = Path(__file__).resolve().parents[2]
RAYJOB = REPO / "kuberay" / "rayjob.yaml"
DOCKERFILE = REPO / "Dockerfile"
CRD = REPO.parent / "shared" / "kuberay" / "ray.io_rayjobs.yaml"
GPU = "nvidia.com/gpu"
RAY_IMAGE = f"rayproject/ray:{ray.__version__}-py311-gpu"  # the same image cluster.yaml runs
Manifest = dict[str, Any]
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD is 1.4 MB


def load(path: Path) -> Any:
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


def strict(schema: Any) -> Any:
    """The CRD's schema as a JSON Schema validator reads it the way the API server does: an object
    with `properties` takes no other field (the server prunes or, strict, refuses them) unless it
    says x-kubernetes-preserve-unknown-fields; x-kubernetes-int-or-string is an integer or a string."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def pod_specs(m: Manifest) -> dict[str, Manifest]:
    """The pod templates' specs: "head" and each worker group's name."""
    cluster = m["spec"]["rayClusterSpec"]
    specs = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    specs |= {g["groupName"]: g["template"]["spec"] for g in cluster.get("workerGroupSpecs", [])}
    return specs


def gpus_of(group: Manifest) -> float:
    limits = [c.get("resources", {}).get("limits", {}) for c in group["template"]["spec"]["containers"]]
    return sum(float(lim.get(GPU, 0)) for lim in limits)


def entrypoint_args(m: Manifest) -> list[str]:
    words = shlex.split(m["spec"]["entrypoint"])
    assert words[:3] == ["python", "-m", "search.run"], f"the entrypoint is {words[:3]}, not python -m search.run"
    return words[3:]


# ---------------------------------------------------------------- checks


def check_image(m: Manifest, dockerfile: str | None = None) -> None:
    """Every Ray container runs the project's image, tagged and built FROM the installed Ray's GPU image."""
    dockerfile = DOCKERFILE.read_text() if dockerfile is None else dockerfile
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.M)
    assert froms == [RAY_IMAGE], f"the Dockerfile builds FROM {froms}, expected [{RAY_IMAGE!r}] (the installed Ray)"
    assert m["spec"]["rayClusterSpec"].get("rayVersion") == ray.__version__, (
        f"rayVersion is {m['spec']['rayClusterSpec'].get('rayVersion')!r}, the installed Ray is {ray.__version__}")
    for where, spec in pod_specs(m).items():
        for c in spec["containers"]:
            repository, _, tag = c["image"].rpartition(":")
            assert repository.endswith("/dcgan-search") and tag == RAY_IMAGE.split(":")[1], (
                f"{where}'s container {c['name']} runs {c['image']!r}: expected the project's image built from "
                f"the Dockerfile, <registry>/dcgan-search:{RAY_IMAGE.split(':')[1]}")


def check_head(m: Manifest) -> None:
    params = m["spec"]["rayClusterSpec"]["headGroupSpec"].get("rayStartParams", {})
    assert params.get("num-cpus") == "0", (
        f"the head's rayStartParams num-cpus is {params.get('num-cpus')!r}: set \"0\" so no trial is placed on the head")


def check_gpu_workers(m: Manifest) -> None:
    """A GPU worker group that scales from 0 by Ray's autoscaler."""
    cluster = m["spec"]["rayClusterSpec"]
    assert cluster.get("enableInTreeAutoscaling") is True, "enableInTreeAutoscaling is not true: nothing adds GPU pods"
    groups = [g for g in cluster.get("workerGroupSpecs", []) if gpus_of(g) >= 1]
    assert groups, f"no worker group asks for a GPU ({GPU} in its containers' limits)"
    for g in groups:
        assert g.get("minReplicas", 0) == 0 and g.get("replicas", 0) == 0, (
            f"GPU group {g['groupName']} has minReplicas={g.get('minReplicas')}, replicas={g.get('replicas')}: "
            "set both to 0 so that no GPU pod runs while no trial asks for one")
        assert g.get("maxReplicas", 0) >= 1, f"GPU group {g['groupName']} has maxReplicas < 1: it can never start"


def check_token_auth(m: Manifest) -> None:
    auth = m["spec"]["rayClusterSpec"].get("authOptions", {})
    assert auth.get("mode") == "token", f"authOptions.mode is {auth.get('mode')!r}: set token"
    for where, spec in pod_specs(m).items():
        for c in spec["containers"]:
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert env.get("RAY_AUTH_MODE", "token") == "token", (
                f"{where}'s container {c['name']} sets RAY_AUTH_MODE={env['RAY_AUTH_MODE']}")
            assert "RAY_AUTH_TOKEN" not in env or env["RAY_AUTH_TOKEN"] is None, (
                f"{where}'s container {c['name']} puts the token itself in the manifest")


def check_teardown(m: Manifest) -> None:
    spec = m["spec"]
    assert spec.get("shutdownAfterJobFinishes") is True, (
        "shutdownAfterJobFinishes is not true: the GPU cluster would keep running after the search")
    assert spec.get("ttlSecondsAfterFinished", 0) > 0, "ttlSecondsAfterFinished is not set"


def check_entrypoint(m: Manifest) -> None:
    """search.run's own parser accepts the arguments; the storage is a bucket; the resources are
    ones the planner accepts and that the GPU group holds at the concurrency asked for."""
    from search.plan import check_gpus
    from search.run import build_parser

    args = build_parser().parse_args(entrypoint_args(m))  # SystemExit(2) on a flag it does not know
    assert re.match(r"^(s3|gs)://[^/]+", args.storage), (
        f"--storage is {args.storage!r}: trials on other pods need a bucket, e.g. s3://YOUR-BUCKET/dcgan-experiments")
    assert args.space and not args.dry_run and not args.resume
    check_gpus(args.gpus_per_worker, args.workers_per_trial)  # SearchError if the planner would refuse
    assert args.gpus_per_worker > 0, "--gpus-per-worker is 0: the trials would never ask for the GPU pods"
    groups = [g for g in m["spec"]["rayClusterSpec"]["workerGroupSpecs"] if gpus_of(g) >= 1]
    capacity = sum(g["maxReplicas"] * gpus_of(g) for g in groups)
    wanted = (args.concurrency or 1) * args.workers_per_trial * args.gpus_per_worker
    assert wanted <= capacity, (f"--concurrency {args.concurrency} trials need {wanted:g} GPUs at once; the GPU "
                                f"groups hold {capacity:g} at their maxReplicas")


CHECKS: list[Callable[[Manifest], None]] = [check_image, check_head, check_gpu_workers, check_token_auth,
                                             check_teardown, check_entrypoint]


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load(RAYJOB)


@pytest.fixture(scope="module")
def validator():
    if not CRD.exists():
        pytest.skip(f"KubeRay's RayJob CRD is not at {CRD}")
    import jsonschema

    crd = load(CRD)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_crd_accepts_the_manifest(manifest, validator):
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    assert not errors, "\n".join(errors)


def test_the_crd_refuses_what_kubernetes_refuses(manifest, validator):
    """The validation can fail: a misspelt field, a wrong type, a value outside an enum."""
    for path, value in ((("spec", "rayClusterSpec", "enableInTreeAutoScaling"), True),  # misspelt
                        (("spec", "ttlSecondsAfterFinished"), "10m"),
                        (("spec", "rayClusterSpec", "authOptions", "mode"), "tokens")):
        broken = copy.deepcopy(manifest)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert any(True for _ in validator.iter_errors(broken)), f"{'.'.join(path)}={value!r} passed the CRD"


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_rayjob_yaml(check, manifest):
    check(manifest)


def _gpu_group(m: Manifest) -> Manifest:
    return m["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]


def _entrypoint(old: str, new: str) -> Callable[[Manifest], None]:
    def mutate(m: Manifest) -> None:
        assert old in m["spec"]["entrypoint"]
        m["spec"]["entrypoint"] = m["spec"]["entrypoint"].replace(old, new)
    return mutate


BROKEN = [
    ("stock Ray image", lambda m: _gpu_group(m)["template"]["spec"]["containers"][0].update(image=RAY_IMAGE),
     check_image, "the project's image"),
    ("old Ray", lambda m: m["spec"]["rayClusterSpec"].update(rayVersion="2.49.0"), check_image, "rayVersion"),
    ("head runs trials", lambda m: m["spec"]["rayClusterSpec"]["headGroupSpec"].update(rayStartParams={}),
     check_head, "num-cpus"),
    ("GPUs always on", lambda m: _gpu_group(m).update(minReplicas=1), check_gpu_workers, "minReplicas=1"),
    ("no autoscaler", lambda m: m["spec"]["rayClusterSpec"].pop("enableInTreeAutoscaling"), check_gpu_workers,
     "enableInTreeAutoscaling"),
    ("no auth", lambda m: m["spec"]["rayClusterSpec"].pop("authOptions"), check_token_auth, "authOptions.mode"),
    ("auth off in a pod", lambda m: _gpu_group(m)["template"]["spec"]["containers"][0].update(
        env=[{"name": "RAY_AUTH_MODE", "value": "disabled"}]), check_token_auth, "RAY_AUTH_MODE=disabled"),
    ("cluster kept", lambda m: m["spec"].update(shutdownAfterJobFinishes=False), check_teardown, "keep running"),
    ("misspelt flag", _entrypoint("--gpus-per-worker", "--gpu-per-worker"), check_entrypoint, "SystemExit"),
    ("local storage", _entrypoint("--storage s3://", "--storage ./s3/"), check_entrypoint, "bucket"),
    ("too many at once", _entrypoint("--concurrency 16", "--concurrency 32"), check_entrypoint, "GPUs at once"),
    ("shared GPU with DDP", _entrypoint("--gpus-per-worker 0.25", "--gpus-per-worker 0.25 --workers-per-trial 2"),
     check_entrypoint, "NCCL"),
]


@pytest.mark.parametrize("what, mutate, check, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_checks_catch_broken_manifests(manifest, what, mutate, check, message):
    broken = copy.deepcopy(manifest)
    mutate(broken)
    with pytest.raises((Exception, SystemExit)) as caught:
        check(broken)
    assert message in f"{caught.type.__name__}: {caught.value}", caught.value


def test_checks_catch_a_dockerfile_on_another_ray(manifest):
    with pytest.raises(AssertionError, match="the installed Ray"):
        check_image(manifest, DOCKERFILE.read_text().replace(ray.__version__, "2.49.0"))

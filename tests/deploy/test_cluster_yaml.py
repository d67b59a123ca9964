"""Offline checks of cluster.yaml, the `ray up` config for AWS.

Ray's own `prepare_config` and `validate_config` check the file, as `ray up` does before it
contacts AWS. Ray's provider bootstrap (which needs AWS) is not called. Then the checks below
cover what a working, safe cluster needs: GPU workers on spot with an on-demand fallback, an
idle head that runs no trials, the Ray image of the installed version, token auth inside the
container, no Ray port open to the world, and a dashboard bound to loopback.

Each check is a function of the config dict. `test_checks_catch_broken_configs` feeds
each one a broken copy of the file and expects it to fail with a clear message.
No network, no Ray cluster: a fixture makes any socket connection fail.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import itertools
import os
import re
import shlex
import socket
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
import yaml

import ray
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO / "cluster.yaml"

# HOME of the user in rayproject/ray images. Ray's docker support mounts "~/x" in file_mounts
# at <image HOME>/x in the container (ray/autoscaler/_private/docker.py, docker_start_cmds).
CONTAINER_HOME = "/home/ray"
# Where Ray looks for the token when RAY_AUTH_TOKEN_PATH is unset: ~/.ray/auth_token
# (ray/_private/authentication/authentication_token_setup.py, _get_default_token_path).
DEFAULT_TOKEN_PATH = "~/.ray/auth_token"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WORLD_V4, WORLD_V6 = "0.0.0.0/0", "::/0"
# EC2 instance families with NVIDIA GPUs, for node types that leave resources to autodetection.
GPU_FAMILIES = ("p3", "p4", "p5", "p6", "g4dn", "g5", "g6", "g6e", "gr6")

Config = Dict[str, Any]


# ---------------------------------------------------------------- loading


def load_raw(path: Path = CLUSTER_YAML) -> Config:
    with open(path) as f:
        return yaml.safe_load(f)


def prepare(raw: Config) -> Config:
    """What `ray up` does to the file before it contacts the cloud provider
    (ray/autoscaler/_private/commands.py, _bootstrap_config): merge in the provider's
    defaults.yaml, merge setup commands, check the docker section, fill per-type worker
    limits, then validate against ray-schema.json and the node-type rules."""
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    return prepared


# ---------------------------------------------------------------- small parsers


def docker_env(options: List[str]) -> Dict[str, str]:
    """Environment variables set by `docker run` options (--env K=V, --env=K=V, -e K=V)."""
    tokens = [t for opt in options for t in shlex.split(opt)]
    env: Dict[str, str] = {}
    for i, tok in enumerate(tokens):
        value = None
        if tok in ("--env", "-e") and i + 1 < len(tokens):
            value = tokens[i + 1]
        elif tok.startswith("--env="):
            value = tok[len("--env="):]
        if value and "=" in value:
            key, val = value.split("=", 1)
            env[key] = val
    return env


def ray_start_calls(commands: List[str]) -> List[Tuple[Dict[str, str], List[str]]]:
    """Every `ray start` in a list of shell commands: (inline env assignments, arguments)."""
    calls = []
    for cmd in commands:
        for segment in re.split(r";|&&|\|\||\n", cmd):
            try:
                tokens = shlex.split(segment)
            except ValueError:
                continue
            for i in range(len(tokens) - 1):
                if tokens[i] == "ray" and tokens[i + 1] == "start":
                    env = dict(t.split("=", 1) for t in tokens[:i] if re.match(r"^[A-Za-z_]\w*=", t))
                    calls.append((env, tokens[i + 2:]))
    return calls


def option_value(args: List[str], name: str):
    """Value of --name=value or --name value in a list of arguments, else None."""
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def container_path(remote: str) -> str:
    """Where a file_mounts target lands inside the container."""
    return remote.replace("~/", CONTAINER_HOME + "/", 1) if remote.startswith("~/") else remote


def worker_types(cfg: Config) -> Dict[str, Config]:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def is_gpu_type(node_type: Config) -> bool:
    if node_type.get("resources", {}).get("GPU", 0) >= 1:
        return True
    instance = node_type.get("node_config", {}).get("InstanceType", "")
    return instance.split(".")[0] in GPU_FAMILIES


def is_spot(node_type: Config) -> bool:
    market = node_type.get("node_config", {}).get("InstanceMarketOptions", {})
    return str(market.get("MarketType", "")).lower() == "spot"


def all_run_options(cfg: Config) -> Dict[str, List[str]]:
    """`docker run` options per node type: global run_options + head/worker ones, with a
    node type's own docker section replacing the global one's keys, as Ray merges them
    (ray/autoscaler/v2/instance_manager/config.py, get_docker_config)."""
    out = {}
    for name, node_type in cfg["available_node_types"].items():
        docker = dict(cfg.get("docker", {}))
        docker.update(node_type.get("docker", {}))
        role = "head" if name == cfg["head_node_type"] else "worker"
        out[name] = list(docker.get("run_options", [])) + list(docker.get(f"{role}_run_options", []))
    return out


# ---------------------------------------------------------------- Ray's security-group rules


def _ray_aws_rule_functions() -> Dict[str, Callable]:
    """Ray's default inbound rules for AWS (ray/autoscaler/_private/aws/config.py). That module
    imports boto3 at the top, which this project doesn't need, so without boto3 the three small
    rule functions are read from Ray's installed source and run on their own."""
    try:
        from ray.autoscaler._private.aws import config as aws_config

        return {
            "all": aws_config._create_default_inbound_rules,
            "ssh": aws_config._create_default_ssh_inbound_rules,
        }
    except ImportError:
        pass
    origin = importlib.util.find_spec("ray.autoscaler._private.aws.config").origin
    tree = ast.parse(Path(origin).read_text())
    wanted = {
        "_create_default_inbound_rules",
        "_create_default_intracluster_inbound_rules",
        "_create_default_ssh_inbound_rules",
    }
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    assert {f.name for f in funcs} == wanted, f"Ray's AWS config.py no longer defines {wanted}"
    namespace: Dict[str, Any] = {"itertools": itertools}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), origin, "exec"), namespace)
    return {"all": namespace["_create_default_inbound_rules"], "ssh": namespace["_create_default_ssh_inbound_rules"]}


def inbound_rules(cfg: Config) -> List[Dict[str, Any]]:
    """The inbound rules Ray writes into the cluster's security group: its defaults (all
    traffic from the group itself, TCP 22 from anywhere) followed by provider.security_group
    .IpPermissions (ray/autoscaler/_private/aws/config.py, _update_inbound_rules)."""
    extended = cfg["provider"].get("security_group", {}).get("IpPermissions", [])
    return _ray_aws_rule_functions()["all"]({"sg-of-this-cluster"}, copy.deepcopy(extended))


def _opens_to_world(rule: Dict[str, Any]) -> bool:
    v4 = {r.get("CidrIp") for r in rule.get("IpRanges", [])}
    v6 = {r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])}
    return WORLD_V4 in v4 or WORLD_V6 in v6


def _is_ssh_only(rule: Dict[str, Any]) -> bool:
    return str(rule.get("IpProtocol")) == "tcp" and rule.get("FromPort") == 22 and rule.get("ToPort") == 22


# ---------------------------------------------------------------- checks


def check_gpu_workers(cfg: Config) -> None:
    """Spot GPU workers, an on-demand GPU fallback, all scaling from zero."""
    gpu = {k: v for k, v in worker_types(cfg).items() if is_gpu_type(v)}
    assert gpu, "no GPU worker node type (resources GPU >= 1 or a GPU InstanceType)"
    for name, node_type in gpu.items():
        assert node_type.get("min_workers", 0) == 0, (
            f"GPU node type {name} has min_workers={node_type.get('min_workers')}: it should be 0 "
            "so that an idle cluster runs no GPU instances"
        )
        assert node_type.get("max_workers", 0) >= 1, f"GPU node type {name} has max_workers < 1: it can never start"
    spot = [k for k, v in gpu.items() if is_spot(v)]
    on_demand = [k for k, v in gpu.items() if not is_spot(v)]
    assert spot, "no spot GPU node type (node_config.InstanceMarketOptions.MarketType: spot)"
    assert on_demand, "no on-demand GPU node type to fall back on when spot capacity is missing"
    assert cfg["max_workers"] >= 1, "global max_workers < 1: no worker can start"


def check_head(cfg: Config) -> None:
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert head.get("resources") == {"CPU": 0}, (
        f"head node type resources are {head.get('resources')}, expected {{'CPU': 0}} so that no "
        "trial is placed on the head"
    )


def check_image(cfg: Config, version: str = ray.__version__) -> None:
    """The Ray GPU image of exactly the installed Ray, and no other Ray pinned in setup."""
    expected = f"rayproject/ray:{version}-py311-gpu"
    docker = cfg.get("docker", {})
    images = {"docker.image": docker.get("image")}
    for key in ("head_image", "worker_image"):
        if key in docker:
            images[f"docker.{key}"] = docker[key]
    for name, node_type in cfg["available_node_types"].items():
        if "worker_image" in node_type.get("docker", {}):
            images[f"{name}.docker.worker_image"] = node_type["docker"]["worker_image"]
    for where, image in images.items():
        assert image == expected, f"{where} is {image!r}, expected {expected!r} (the installed Ray {version})"
    commands = cfg.get("setup_commands", []) + cfg.get("head_setup_commands", []) + cfg.get("worker_setup_commands", [])
    for cmd in commands:
        for pinned in re.findall(r"\bray(?:\[[^\]]*\])?==([0-9][\w.]*)", cmd):
            assert pinned == version, f"setup command pins Ray {pinned}, but the image is Ray {version}: {cmd!r}"


def check_no_world_ports(cfg: Config) -> None:
    """Only TCP 22 may be open to 0.0.0.0/0 or ::/0; nothing duplicates Ray's own rules."""
    node_configs = [t.get("node_config", {}) for t in cfg["available_node_types"].values()]
    if all("SecurityGroupIds" in nc for nc in node_configs):
        pytest.skip("every node type brings its own SecurityGroupIds: Ray writes no rules, check them in AWS")
    extended = cfg["provider"].get("security_group", {}).get("IpPermissions", [])
    defaults = _ray_aws_rule_functions()["ssh"]()
    for rule in extended:
        assert rule not in defaults, (
            f"provider.security_group.IpPermissions repeats Ray's default rule {rule}: AWS rejects an "
            "authorize-ingress call that lists the same permission twice, so ray up would fail"
        )
    for rule in inbound_rules(cfg):
        if _opens_to_world(rule):
            assert _is_ssh_only(rule), (
                f"inbound rule {rule} opens more than TCP 22 to the world (dashboard 8265, GCS 6379 "
                "and Ray client 10001 must stay inside the security group)"
            )


def check_token_auth(cfg: Config) -> None:
    """RAY_AUTH_MODE=token wherever Ray starts (in the container), and the token file shipped
    to where Ray in the container reads it."""
    run_options = all_run_options(cfg)
    envs = {name: docker_env(opts) for name, opts in run_options.items()}
    for name, env in envs.items():
        mode = env.get("RAY_AUTH_MODE", "token")
        assert mode == "token", f"docker run options of {name} set RAY_AUTH_MODE={mode}"
        assert "RAY_AUTH_TOKEN" not in env, f"docker run options of {name} put the token itself in the config"
    starts = {
        "head_start_ray_commands": ray_start_calls(cfg.get("head_start_ray_commands", [])),
        "worker_start_ray_commands": ray_start_calls(cfg.get("worker_start_ray_commands", [])),
    }
    for key, calls in starts.items():
        assert calls, f"{key} has no `ray start`"
        for env, _ in calls:
            mode = env.get("RAY_AUTH_MODE", "token")
            assert mode == "token", f"{key} starts Ray with RAY_AUTH_MODE={mode}"
    in_container = all(env.get("RAY_AUTH_MODE") == "token" for env in envs.values())
    on_every_start = all(env.get("RAY_AUTH_MODE") == "token" for calls in starts.values() for env, _ in calls)
    assert in_container or on_every_start, (
        "RAY_AUTH_MODE=token is not set inside the container: add `--env RAY_AUTH_MODE=token` to "
        "docker.run_options (or prefix every `ray start` with RAY_AUTH_MODE=token)"
    )
    token_paths = {env.get("RAY_AUTH_TOKEN_PATH", container_path(DEFAULT_TOKEN_PATH)) for env in envs.values()}
    mounts = cfg.get("file_mounts", {})
    mounted_at = {container_path(remote): local for remote, local in mounts.items()}
    for path in token_paths:
        assert path in mounted_at, (
            f"Ray in the container reads its token from {path}, but no file_mounts entry puts a file there "
            f"(file_mounts targets: {sorted(mounts)})"
        )
        local = os.path.expanduser(mounted_at[path])
        assert local == os.path.expanduser(DEFAULT_TOKEN_PATH), (
            f"the token mounted at {path} comes from {mounted_at[path]!r}, not from {DEFAULT_TOKEN_PATH} "
            "where `ray get-auth-token --generate` writes it"
        )


def check_dashboard_loopback(cfg: Config) -> None:
    heads = [args for _, args in ray_start_calls(cfg.get("head_start_ray_commands", [])) if "--head" in args]
    assert heads, "head_start_ray_commands has no `ray start --head`"
    for args in heads:
        host = option_value(args, "--dashboard-host")
        assert host in LOOPBACK, (
            f"`ray start --head` has --dashboard-host={host}: set --dashboard-host=127.0.0.1 and reach the "
            "dashboard with `ray dashboard cluster.yaml` (an SSH tunnel)"
        )


def check_idle_timeout(raw: Config) -> None:
    """On the file as written: prepare_config would fill in Ray's default of 5 minutes."""
    minutes = raw.get("idle_timeout_minutes")
    assert isinstance(minutes, (int, float)) and minutes > 0, (
        f"idle_timeout_minutes is {minutes!r}: set it so idle GPU workers are terminated"
    )


def check_project_installed(cfg: Config) -> None:
    """Head and workers pip-install the project tree that file_mounts copies from the repo."""
    mounts = cfg.get("file_mounts", {})
    project = [remote for remote, local in mounts.items() if Path(os.path.expanduser(local)) in (Path("."), REPO)]
    assert project, "file_mounts doesn't copy the repository ('.' from the repo root) to the nodes"
    for key in ("head_setup_commands", "worker_setup_commands"):
        cmds = cfg.get(key, [])
        assert any("pip install" in c and any(r in c for r in project) for c in cmds), (
            f"{key} (after merging setup_commands) doesn't `pip install` the mounted project {project}"
        )
    for name, node_type in worker_types(cfg).items():
        cmds = node_type.get("worker_setup_commands")
        if cmds is not None:
            assert any("pip install" in c and any(r in c for r in project) for c in cmds), (
                f"node type {name} replaces worker_setup_commands without installing the project"
            )


def check_shared_storage(cfg: Config) -> None:
    """A bucket every node reaches: DCGAN_STORAGE is an s3:// or gs:// URI, and AWS workers have
    an instance profile to write to it."""
    envs = {name: docker_env(opts) for name, opts in all_run_options(cfg).items()}
    for name, env in envs.items():
        storage = env.get("DCGAN_STORAGE", "")
        assert re.match(r"^(s3|gs)://[^/]+", storage), (
            f"DCGAN_STORAGE in the docker run options of {name} is {storage!r}: a multi-node search needs "
            "shared storage, e.g. s3://YOUR-BUCKET/dcgan-experiments"
        )
    if cfg["provider"]["type"] == "aws":
        for name, node_type in worker_types(cfg).items():
            assert "IamInstanceProfile" in node_type.get("node_config", {}), (
                f"worker node type {name} has no IamInstanceProfile: its trials can't write checkpoints to S3"
            )


CHECKS_ON_PREPARED = [
    check_gpu_workers,
    check_head,
    check_image,
    check_no_world_ports,
    check_token_auth,
    check_dashboard_loopback,
    check_project_installed,
    check_shared_storage,
]


# ---------------------------------------------------------------- tests


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def raw() -> Config:
    return load_raw()


@pytest.fixture(scope="module")
def prepared(raw) -> Config:
    return prepare(raw)


def test_ray_accepts_the_file(prepared):
    # prepare_config filled in what ray up needs and validate_config passed.
    assert prepared["cluster_name"] == "dcgan-search"
    assert prepared["provider"]["type"] == "aws"
    assert prepared["available_node_types"][prepared["head_node_type"]]["max_workers"] == 0


@pytest.mark.parametrize("check", CHECKS_ON_PREPARED, ids=lambda f: f.__name__)
def test_cluster_yaml(check, prepared):
    check(prepared)


def test_idle_timeout_is_set(raw):
    check_idle_timeout(raw)


def test_autoscaler_prefers_spot_and_falls_back_to_on_demand(raw):
    """Ray's own autoscaler v2 scheduler (the default for `ray up`), offline: GPU demand goes to
    spot first, on-demand takes over only after spot reaches its max_workers, and on-demand is
    picked when spot has just failed to allocate (its recoverable availability is 0)."""
    from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig
    from ray.autoscaler.v2.scheduler import ResourceDemandScheduler, SchedulingRequest
    from ray.autoscaler.v2.utils import ResourceRequestUtil
    from ray.core.generated.autoscaler_pb2 import ResourceRequestByCount

    config = AutoscalingConfig(copy.deepcopy(raw), skip_content_hash=True)
    node_types = config.get_node_type_configs()
    prepared_types = worker_types(prepare(raw))
    spot = [k for k, v in prepared_types.items() if is_gpu_type(v) and is_spot(v)]
    on_demand = [k for k, v in prepared_types.items() if is_gpu_type(v) and not is_spot(v)]

    def launches(n_gpus: int, availability=None) -> Dict[str, int]:
        request = SchedulingRequest(
            disable_launch_config_check=True,
            node_type_configs=node_types,
            max_num_nodes=config.get_max_num_nodes(),
            resource_requests=[
                ResourceRequestByCount(request=ResourceRequestUtil.make({"CPU": 1, "GPU": 1}), count=n_gpus)
            ],
            recoverable_resource_availabilities=availability or {},
        )
        reply = ResourceDemandScheduler().schedule(request)
        out: Dict[str, int] = {}
        for launch in reply.to_launch:
            out[launch.instance_type] = out.get(launch.instance_type, 0) + launch.count
        return out

    spot_cap = sum(prepared_types[k]["max_workers"] for k in spot)
    small = launches(1)
    assert set(small) <= set(spot) and sum(small.values()) == 1, f"one GPU trial launched {small}, expected one spot node"
    big = launches(spot_cap + 1)
    assert sum(big.get(k, 0) for k in spot) == spot_cap, f"{spot_cap + 1} GPU trials launched {big}"
    assert sum(big.get(k, 0) for k in on_demand) >= 1, f"no on-demand node once spot is at its cap: {big}"
    assert sum(big.values()) <= raw["max_workers"], f"launched {big}, over max_workers={raw['max_workers']}"
    failed = launches(1, {k: 0.0 for k in spot})
    assert set(failed) <= set(on_demand) and failed, f"with spot just failed, one GPU trial launched {failed}"


# ---------------------------------------------------------------- the checks catch mistakes


def _set(path: str, value):
    def mutate(cfg):
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()
_WORLD_DASHBOARD = {"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": WORLD_V4}]}
_WORLD_ALL_V6 = {"FromPort": -1, "ToPort": -1, "IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": WORLD_V6}]}
_WORLD_SSH = {"FromPort": 22, "ToPort": 22, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": WORLD_V4}]}


def _drop_auth_everywhere(cfg):
    cfg["docker"]["run_options"] = [o for o in cfg["docker"]["run_options"] if "RAY_AUTH_MODE" not in o]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        cfg[key] = [c.replace("RAY_AUTH_MODE=token ", "") for c in cfg[key]]


def _dashboard_public(cfg):
    cfg["head_start_ray_commands"] = [
        c.replace("--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0") for c in cfg["head_start_ray_commands"]
    ]


def _no_spot(cfg):
    for node_type in cfg["available_node_types"].values():
        node_type["node_config"].pop("InstanceMarketOptions", None)


def _no_on_demand(cfg):
    for name in [k for k, v in cfg["available_node_types"].items() if is_gpu_type(v) and not is_spot(v)]:
        del cfg["available_node_types"][name]


def _gpu_always_on(cfg):
    for node_type in worker_types(cfg).values():
        node_type["min_workers"] = 1


def _no_pip_install(cfg):
    cfg["setup_commands"] = ["echo nothing to install"]


def _token_not_mounted(cfg):
    del cfg["file_mounts"]["~/.ray/auth_token"]


def _auth_disabled_on_workers(cfg):
    cfg["worker_start_ray_commands"] = [
        c.replace("RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled") for c in cfg["worker_start_ray_commands"]
    ]


def _local_storage(cfg):
    cfg["docker"]["run_options"] = [
        re.sub(r"DCGAN_STORAGE=\S+", "DCGAN_STORAGE=experiments", o) for o in cfg["docker"]["run_options"]
    ]


BROKEN = [
    ("old image", _set("docker.image", "rayproject/ray:2.49.0-py311-gpu"), check_image, "installed Ray"),
    ("ray-ml image", _set("docker.image", f"rayproject/ray-ml:{ray.__version__}-py311-gpu"), check_image, "expected"),
    ("head runs trials", _set("available_node_types.head.resources", {"CPU": 4}), check_head, "no trial"),
    ("dashboard to world", _set("provider.security_group.IpPermissions", [_WORLD_DASHBOARD]), check_no_world_ports, "8265"),
    ("all ports to ::/0", _set("provider.security_group.IpPermissions", [_WORLD_ALL_V6]), check_no_world_ports, "world"),
    ("ssh rule repeated", _set("provider.security_group.IpPermissions", [_WORLD_SSH]), check_no_world_ports, "twice"),
    ("no token auth", _drop_auth_everywhere, check_token_auth, "RAY_AUTH_MODE=token is not set"),
    ("auth disabled", _auth_disabled_on_workers, check_token_auth, "RAY_AUTH_MODE=disabled"),
    ("token not shipped", _token_not_mounted, check_token_auth, "no file_mounts entry"),
    ("public dashboard", _dashboard_public, check_dashboard_loopback, "0.0.0.0"),
    ("no spot", _no_spot, check_gpu_workers, "no spot"),
    ("no on-demand", _no_on_demand, check_gpu_workers, "no on-demand"),
    ("GPUs always on", _gpu_always_on, check_gpu_workers, "min_workers=1"),
    ("no project install", _no_pip_install, check_project_installed, "pip install"),
    ("local storage", _local_storage, check_shared_storage, "shared storage"),
    ("no idle timeout", _set("idle_timeout_minutes", _DELETE), None, "idle_timeout_minutes"),
]


@pytest.mark.parametrize("what, mutate, check, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_checks_catch_broken_configs(raw, what, mutate, check, message):
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(AssertionError, match=re.escape(message)):
        if check is None:
            check_idle_timeout(broken)
        else:
            check(prepare(broken))

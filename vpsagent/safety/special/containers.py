"""Containers and clusters: docker/podman and kubectl verbs, and the commands they run inside
(`docker exec`, `docker run IMAGE CMD`, `kubectl exec -- CMD`), judged like any command."""

from __future__ import annotations

import re
from dataclasses import replace

from vpsagent.safety.analyze import Call, Delegate, Outcome
from vpsagent.safety.model import CHANGE, DES, RO, UNKNOWN, Finding
from vpsagent.safety.parse import Word
from vpsagent.safety.table import Program, judge, opts, scan

_DOCKER_GLOBAL = ("Hcl", opts("--host", "--context", "--config", "--log-level", "--tlscacert", "--tlscert", "--tlskey",
                              "--url", "--connection", "--identity", "--root", "--runroot", "--storage-driver"))
_EXEC_ARGS = ("euw", opts("--env", "--user", "--workdir", "--env-file", "--detach-keys"))
_RUN_ARGS = ("vepwuhlmcaL", opts(
    "--volume", "--env", "--publish", "--name", "--workdir", "--user", "--hostname", "--network", "--net", "--mount",
    "--entrypoint", "--env-file", "--label", "--restart", "--cpus", "--memory", "--log-driver", "--log-opt",
    "--add-host", "--dns", "--device", "--cap-add", "--cap-drop", "--security-opt", "--tmpfs", "--ulimit",
    "--platform", "--pull", "--link", "--ipc", "--pid", "--uts", "--runtime", "--shm-size", "--stop-signal",
    "--stop-timeout", "--health-cmd", "--health-interval", "--gpus", "--cidfile", "--volumes-from", "--group-add",
    "--sysctl", "--cpu-shares", "--cpuset-cpus", "--memory-swap", "--expose", "--attach", "--label-file",
    "--network-alias", "--userns", "--cgroupns", "--storage-opt", "--annotation", "--detach-keys"))
_HOST_ROOT = re.compile(r"^(/|/etc|/var/run/docker\.sock|/run/docker\.sock|/root|/boot|/dev)(:|$)")


def docker(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, _DOCKER_GLOBAL[0], _DOCKER_GLOBAL[1], stop_at_operand=True)
    words = [w.value for w in rest]
    if words[:1] == ["exec"] or words[:2] == ["container", "exec"]:
        return _exec(call, rest[2 if words[0] == "container" else 1:])
    if words[:1] == ["run"] or words[:2] == ["container", "run"]:
        return _run(call, rest[2 if words[0] == "container" else 1:])
    if words[:1] == ["compose"] and len(words) > 1 and words[1] in ("exec", "run"):
        return _compose_exec(call, rest[1:])
    base = judge(call, replace(spec, handler=None))
    return _docker_destroys(call, words, base)


def docker_compose(call: Call, spec: Program) -> Outcome:
    from vpsagent.safety.programs import PROGRAMS

    return docker(call.derive([Word.plain("compose"), *call.args]), PROGRAMS["docker"])


def _docker_destroys(call: Call, words: list[str], base: Finding) -> Finding:
    flags = {w for w in words if w.startswith("-")}
    group, action = (words + ["", ""])[:2]
    if group == "rm" and (flags & {"-f", "--force", "-v", "--volumes"} or any(re.fullmatch(r"-\w*[fv]\w*", f) for f in flags)):
        return Finding(DES, f"{call.prog} rm -f/-v deletes running containers or their volumes")
    if group in ("container",) and action in ("rm", "remove") and flags & {"-f", "--force", "-v", "--volumes"}:
        return Finding(DES, f"{call.prog} container rm -f deletes running containers")
    if group == "compose" and action in ("down", "rm") and (flags & {"-v", "--volumes"} or any(re.fullmatch(r"-\w*v\w*", f) for f in flags)):
        return Finding(DES, f"{call.prog} compose {action} -v deletes the volumes and their data")
    if group == "swarm" and action == "leave" and flags & {"-f", "--force"}:
        return Finding(DES, f"{call.prog} swarm leave --force destroys the swarm state")
    return base


def _exec(call: Call, rest: list[Word]) -> Outcome:
    s, inner = scan(rest, _EXEC_ARGS[0], _EXEC_ARGS[1], stop_at_operand=True)
    if len(inner) < 2:
        return Finding(UNKNOWN, f"{call.prog} exec without a command")
    return Delegate(argv=inner[1:])


def _run(call: Call, rest: list[Word]) -> Outcome:
    s, inner = scan(rest, _RUN_ARGS[0], _RUN_ARGS[1], stop_at_operand=True)
    mounts = [w.value for w in s.values.get("-v", []) + s.values.get("--volume", [])]
    risky = s.has("--privileged") or any(_HOST_ROOT.match(m) for m in mounts) or \
        any(w.value == "host" for w in s.values.get("--pid", []))
    floor = Finding(CHANGE, f"{call.prog} run starts a container")
    entry = s.value("--entrypoint")
    command = ([entry] if entry is not None else []) + inner[1:]
    if not command:
        if risky:
            return Finding(UNKNOWN, f"{call.prog} run gives an image's own command access to the host")
        if not s.has("-d", "--detach"):
            return Finding(UNKNOWN, f"{call.prog} run runs an image's own command in the foreground (a job the gate cannot see)")
        return floor
    return Delegate(argv=command, floor=floor)


def _compose_exec(call: Call, rest: list[Word]) -> Outcome:
    verb = rest[0].value
    s, inner = scan(rest[1:], "euwTp", opts("--env", "--user", "--workdir", "--index", "--entrypoint", "--name",
                                           "--publish", "--volume", "--label"), stop_at_operand=True)
    if len(inner) < 2:
        return Finding(CHANGE if verb == "run" else UNKNOWN, f"{call.prog} compose {verb} without a command")
    floor = Finding(CHANGE, f"{call.prog} compose run starts a container") if verb == "run" else None
    return Delegate(argv=inner[1:], floor=floor)


_KUBE_ARGS = ("nclosfLk", opts("--kustomize", "--namespace", "--context", "--selector", "--output", "--kubeconfig", "--cluster", "--user",
                              "--container", "--since", "--tail", "--filename", "--server", "--token", "--field-selector",
                              "--timeout", "--as", "--request-timeout", "--template", "--sort-by", "--grace-period"))
_KUBE_DESTROY = frozenset({"namespace", "namespaces", "ns", "pv", "pvc", "persistentvolume", "persistentvolumes",
                           "persistentvolumeclaim", "persistentvolumeclaims", "node", "nodes", "crd", "crds",
                           "customresourcedefinition", "customresourcedefinitions", "statefulset", "statefulsets", "sts",
                           "secret", "secrets", "deployment", "deployments", "deploy", "all"})


def kubectl(call: Call, spec: Program) -> Outcome:
    s, rest = scan(call.args, _KUBE_ARGS[0], _KUBE_ARGS[1], stop_at_operand=True)
    words = [w.value for w in rest]
    if words[:1] == ["exec"]:
        return _kube_exec(call, rest[1:])
    sub_scan, _ = scan(rest, _KUBE_ARGS[0], _KUBE_ARGS[1])
    flags = s.flags | sub_scan.flags
    dry = any(v.value in ("client", "server", "") or v.value == "true" for v in sub_scan.values.get("--dry-run", [])) \
        or "--dry-run" in flags
    if dry and words[:1] != ["exec"]:
        return Finding(RO, "kubectl --dry-run changes nothing")
    if words[:1] == ["debug"]:
        return Finding(UNKNOWN, "kubectl debug opens a shell in a pod or on a node")
    if words[:1] == ["delete"]:
        if sub_scan.value("-f", "--filename", "-k", "--kustomize") is not None or any(w.many for w in sub_scan.operands):
            return Finding(DES, "kubectl delete of everything a manifest or an input list names deletes data")
        objs = [w.value.split("/")[0].lower() for w in sub_scan.operands[1:]]
        if "--all" in flags or "--all-namespaces" in flags or "-A" in flags or any(o in _KUBE_DESTROY or o.split(",")[0] in _KUBE_DESTROY for o in objs):
            return Finding(DES, "kubectl delete of namespaces, volumes, workloads, nodes or --all deletes data")
        return Finding(CHANGE, "kubectl delete removes resources")
    if words[:1] == ["apply"] and "--prune" in flags:
        return Finding(DES, "kubectl apply --prune deletes resources missing from the files")
    return judge(call, replace(spec, handler=None))


def _kube_exec(call: Call, rest: list[Word]) -> Outcome:
    if any(w.value == "--" for w in rest):
        idx = next(i for i, w in enumerate(rest) if w.value == "--")
        inner = rest[idx + 1:]
    else:
        s, tail = scan(rest, "cnip", opts("--container", "--namespace", "--pod-running-timeout"), stop_at_operand=True)
        inner = tail[1:]
    if not inner:
        return Finding(UNKNOWN, "kubectl exec without a command")
    return Delegate(argv=inner)


def crictl(call: Call, spec: Program) -> Outcome:
    words = call.values
    if words[:1] == ["exec"]:
        s, inner = scan(call.args[1:], "", opts("--timeout"), stop_at_operand=True)
        return Delegate(argv=inner[1:]) if len(inner) > 1 else Finding(UNKNOWN, "crictl exec without a command")
    return judge(call, replace(spec, handler=None))


__all__ = ["DES", "RO"]

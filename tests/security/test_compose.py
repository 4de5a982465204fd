"""docker-compose.yml, read by Compose's own parser (compose-go): no committed secrets (it refuses to
render without them), Qdrant with the API key Ordo uses, auth on, and only the gateway published."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = str(Path(sys.executable).parent / "docker-compose")


def _config(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [COMPOSE, "-f", str(REPO / "docker-compose.yml"), *args, "--profile", "cpu", "--profile", "watch", "config"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_compose_requires_its_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = _config("--env-file", str(empty))
    assert "required variable" in refused.stdout + refused.stderr and "make-env.sh" in refused.stdout + refused.stderr


def test_compose_with_generated_secrets(tmp_path: Path) -> None:
    env = tmp_path / "ci.env"
    subprocess.run(["sh", str(REPO / "deploy" / "make-env.sh"), str(env)], check=True, capture_output=True)
    assert env.stat().st_mode & 0o077 == 0  # written for the owner only
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    rendered = _config("--env-file", str(env))
    assert rendered.returncode == 0 and not rendered.stderr.strip(), rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"gateway"}
    assert services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == values["QDRANT_API_KEY"]
    for name in ("ingest", "search", "analysis", "gateway", "worker-cpu", "watcher", "flower"):
        assert services[name]["environment"]["ORDO_QDRANT_API_KEY"] == values["QDRANT_API_KEY"], name
        assert services[name]["environment"]["ORDO_AUTH"] == "required", name
        assert services[name]["environment"]["ORDO_S3_SECRET_KEY"] == values["MINIO_ROOT_PASSWORD"], name
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == values["FLOWER_BASIC_AUTH"]
    committed = (REPO / "docker-compose.yml").read_text() + (REPO / "deploy" / "ordo.env").read_text()
    assert "ordo-secret" not in committed and "change-me" not in committed


def test_make_env_never_overwrites(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("KEEP=1\n")
    result = subprocess.run(["sh", str(REPO / "deploy" / "make-env.sh"), str(env)], capture_output=True, text=True)
    assert result.returncode != 0 and env.read_text() == "KEEP=1\n"
    assert shutil.which("sh")

"""The Dockerfile has the essentials (it cannot be built here: no container engine), checked as text."""

from __future__ import annotations

import re

from tests.ops.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.startswith("#")]


def test_base_image_is_python_311_slim_pinned_to_a_version() -> None:
    arg = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert arg, "the base image is set once, in ARG PYTHON_IMAGE"
    image = arg.group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image
    assert all(line.split()[1] in ("${PYTHON_IMAGE}",) for line in INSTRUCTIONS if line.startswith("FROM"))


def test_build_is_multi_stage_and_installs_the_lock_before_the_project() -> None:
    assert len([line for line in INSTRUCTIONS if line.startswith("FROM")]) >= 2
    assert DOCKERFILE.index("pip install -r requirements.lock") < DOCKERFILE.index("pip install --no-deps .")


def test_runs_as_a_non_root_user() -> None:
    users = [line.split()[1] for line in INSTRUCTIONS if line.startswith("USER ")]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert INSTRUCTIONS.index(next(line for line in INSTRUCTIONS if line.startswith("USER "))) > max(
        i for i, line in enumerate(INSTRUCTIONS) if line.startswith("FROM")
    )


def test_has_a_healthcheck_on_healthz() -> None:
    assert "HEALTHCHECK" in DOCKERFILE
    assert "/healthz" in DOCKERFILE


def test_contains_no_secrets_and_ships_no_local_state() -> None:
    lowered = DOCKERFILE.lower()
    for word in ("password=", "token=", "secret=", "api_key=", "apikey="):
        assert word not in lowered
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", "var", ".env", "tests"):
        assert path in ignored

"""docker-compose.yml on its own: valid Compose, and it declares what users rely on.

Running its services is tests/system/test_compose.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.common import REPO

COMPOSE = REPO / "docker-compose.yml"
# The Compose Specification's schema is not part of this repository: it is read from
# the reference folder beside the checkout when that exists (as in CI), else skipped.
SCHEMA = REPO.parent / "shared" / "reference" / "compose-spec.json"


def _load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates_against_the_compose_schema():
    if not SCHEMA.is_file():
        pytest.skip(f"Compose schema not found at {SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(_load())


def test_compose_declares_what_users_rely_on():
    services = _load()["services"]
    assert set(services) == {"cloud", "scheduler", "mobile"}
    mobile = services["mobile"]
    assert "NET_ADMIN" in mobile["cap_add"]
    assert float(mobile["cpus"]) < 2
    assert mobile["environment"]["COLLABDNN_CLOUD"].startswith("dns:///cloud:")
    # Only the agent is published; the cloud has no fixed host port, so it can scale.
    assert [s for s, spec in services.items() if spec.get("ports")] == ["mobile"]
    assert "container_name" not in services["cloud"]
    for name, spec in services.items():
        assert spec["healthcheck"]["test"][:3] == ["CMD", "collabdnn", "health"], name
        for dependency in spec.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy"

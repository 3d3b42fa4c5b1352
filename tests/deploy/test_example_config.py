"""config/authsvc.example.yaml documents every option of the settings model, with its default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from authsvc.settings import Settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "authsvc.example.yaml"


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= field_paths(annotation, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


def key_paths(data: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and value:
            paths |= key_paths(value, f"{prefix}{key}.")
        else:
            paths.add(f"{prefix}{key}")
    return paths


def test_example_loads_and_equals_the_defaults() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert settings_from_mapping(data, str(EXAMPLE)) == Settings()


def test_example_covers_every_field() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert key_paths(data) == field_paths(Settings)


def test_example_is_what_the_generator_writes() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts/example_config.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_a_typo_in_the_example_is_an_error() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["server"]["bnid"] = "0.0.0.0:1"
    try:
        settings_from_mapping(data, "example")
    except Exception as e:  # ConfigError: one line naming the dotted path
        assert "server.bnid" in str(e)
    else:
        raise AssertionError("an unknown key was accepted")

"""Rules from JSON or YAML files (YAML read with ``safe_load``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from contrec.errors import ConfigError, error_line
from contrec.rules.parser import parse_rule
from contrec.rules.syntax import Rule

__all__ = ["load_rule"]


def load_rule(path: "str | Path") -> tuple[Rule, dict[str, Any]]:
    """Read a rule from a JSON or YAML file: a string, a rule dict, or ``{"rule": …, "fallback": …}``.

    Returns the rule and any other settings found next to it (e.g. fallback).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such rule file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            content = yaml.safe_load(text)
        else:
            content = json.loads(text)
    except Exception as err:  # json and yaml raise their own types
        first = error_line(err)
        raise ConfigError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                          f"({first})") from None
    settings: dict[str, Any] = {}
    if isinstance(content, Mapping) and "rule" in content:
        settings = {k: v for k, v in content.items() if k != "rule"}
        content = content["rule"]
    try:
        return parse_rule(content), settings
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None

"""Hatch build hook: keep VCS files out of the sdist (hatchling always adds .gitignore)."""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    """Drop ``.gitignore`` from the files hatchling force-includes in the sdist."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Called by hatchling before the sdist is built."""
        build_data["force_include"] = {
            source: target
            for source, target in build_data["force_include"].items()
            if target != ".gitignore"
        }

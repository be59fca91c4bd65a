"""Workflow templates: YAML files under questflow/workflows/, keyed by file name."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

TEMPLATE_DIR = Path(__file__).resolve().parent / "workflows"


@dataclass(frozen=True)
class StepSpec:
    agent: str  # an agent type (ceo_mimi …), name or UUID
    instruction: str


@dataclass(frozen=True)
class WorkflowTemplate:
    key: str
    name: str
    description: str
    steps: tuple[StepSpec, ...]


@cache
def workflow_templates() -> dict[str, WorkflowTemplate]:
    templates = {}
    for path in sorted(TEMPLATE_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        templates[path.stem] = WorkflowTemplate(
            key=path.stem,
            name=data["name"],
            description=data.get("description", ""),
            steps=tuple(StepSpec(s["agent"], s["instruction"].strip()) for s in data["steps"]),
        )
    return templates


def template_by_name(name: str) -> WorkflowTemplate | None:
    """By key ("plugin_development") or display name ("Plugin Development")."""
    templates = workflow_templates()
    if name in templates:
        return templates[name]
    return next((t for t in templates.values() if t.name.lower() == name.strip().lower()), None)

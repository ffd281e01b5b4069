"""Make the Kubernetes JSON schemas shipped by kubernetes-validate standalone, for kubeconform.

kubernetes-validate's files point into a shared `_definitions.json` ($defs); kubeconform cannot follow a reference
into another file, so each resource kind's schema gets the definitions it reaches copied in.
Usage: python kubernetes_schemas.py SOURCE_DIR TARGET_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MARKER = "_definitions.json#/$defs/"  # refs read "/api/_definitions.json#/$defs/<name>"


def _target(ref: object) -> str | None:
    """The definition a reference names, if it points into the shared file."""
    if isinstance(ref, str) and MARKER in ref:
        return ref.split(MARKER, 1)[1]
    if isinstance(ref, str) and ref.startswith("#/$defs/"):  # between definitions, inside the shared file
        return ref[len("#/$defs/") :]
    return None


def references(node: Any) -> set[str]:
    """Definition names referenced anywhere inside a schema node."""
    if isinstance(node, dict):
        found = set()
        name = _target(node.get("$ref"))
        if name is not None:
            found.add(name)
        for value in node.values():
            found |= references(value)
        return found
    if isinstance(node, list):
        return set().union(*(references(item) for item in node)) if node else set()
    return set()


def localised(node: Any) -> Any:
    """The same schema with every reference pointing into its own definitions."""
    if isinstance(node, dict):
        return {
            key: (
                "#/$defs/" + str(_target(value)) if key == "$ref" and _target(value) is not None else localised(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [localised(item) for item in node]
    return node


def standalone(schema: dict, definitions: dict[str, Any]) -> dict:
    """One schema plus the transitive closure of the definitions it uses."""
    needed, todo = set(), list(references(schema))
    while todo:
        name = todo.pop()
        if name in needed or name not in definitions:
            continue
        needed.add(name)
        todo.extend(references(definitions[name]))
    result = localised(schema)
    result.pop("$id", None)  # an https $id would make references resolve against the network
    result["$defs"] = {name: localised(definitions[name]) for name in sorted(needed)}
    return result


def main(argv: list[str]) -> int:
    """Write a standalone copy of every resource kind's schema."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted(source.glob("*.json")):
        if path.name.startswith("_") or path.name == "all.json":
            continue
        schema = json.loads(path.read_text())
        if "x-kubernetes-group-version-kind" not in schema:
            continue  # a fragment such as affinity-v1.json, not a resource kind
        (target / path.name).write_text(json.dumps(standalone(schema, definitions), separators=(",", ":")))
        written += 1
    print(f"kubernetes_schemas: {written} resource kinds in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Structure figures of src/saescope: import cycles (of imports that run: not those under
`if TYPE_CHECKING:`), function-level imports, long lines,
suppressions and the longest functions. Run: `.venv/bin/python scripts/code_health.py [SRC]`."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

LINE_LIMIT = 100


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(node: ast.AST, current: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = current.split(".") if is_package else current.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        return [f"{base}.{alias.name}" for alias in node.names] + [base]
    return []


def typing_only_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks: imports there never run, so they
    name a type from another layer without making an import edge."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            inside.update(id(inner) for body in node.body for inner in ast.walk(body))
    return inside


def package_of(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def function_level_imports(tree: ast.Module) -> int:
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            count += sum(
                isinstance(inner, ast.Import | ast.ImportFrom)
                for inner in ast.walk(node)
                if inner is not node
            )
    return count


def package_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return components


def measure(src: Path) -> dict:
    root = src / "saescope"
    edges: dict[str, set[str]] = {}
    functions: list[tuple[int, str]] = []
    long_lines = suppressions_noqa = suppressions_type = local_imports = 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        module = module_name(path, src)
        package = package_of(module, 2)
        local_imports += function_level_imports(tree)
        long_lines += sum(len(line) > LINE_LIMIT for line in text.splitlines())
        suppressions_noqa += text.count("# noqa")
        suppressions_type += text.count("# type: ignore") + text.count("# pyright: ignore")
        typing_only = typing_only_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            for target in imported_modules(node, module, path.name == "__init__.py"):
                if target.startswith("saescope.") and package_of(target, 2) != package:
                    edges.setdefault(package, set()).add(package_of(target, 2))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{path.relative_to(src)}:{node.lineno} {node.name}"))
    functions.sort(reverse=True)
    return {
        "package_import_cycles": package_cycles(edges),
        "function_level_imports": local_imports,
        "lines_over_limit": long_lines,
        "noqa": suppressions_noqa,
        "type_ignores": suppressions_type,
        "longest_functions": [f"{n} lines  {where}" for n, where in functions[:10]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("src", nargs="?", default="src", type=Path)
    args = parser.parse_args()
    print(json.dumps(measure(args.src), indent=2))


if __name__ == "__main__":
    main()

import json
import subprocess
import sys

HEAVY = ("pyspark", "ray", "pyarrow", "pandas", "numpy", "filelock", "psutil", "kubernetes", "hdfs", "conda_pack",
         "venv_pack", "orca_local", "orca_standalone", "orca_yarn", "orca_k8s", "orca_storage_disk", "orca_slurm")


def test_import_loads_no_engine_and_no_plugin():
    code = f"import json, sys, orca_core; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_plugins_load_only_when_asked():
    code = ("import json, sys; from orca_core import OrcaContext, plan_orca_context; "
            "before = 'orca_local' in sys.modules; plan_orca_context(cores=1); "
            "print(json.dumps([before, 'orca_local' in sys.modules, 'pyspark' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, True, False]


def _import_graph() -> dict[str, set[str]]:
    """Every module of orca-core and the first-party plugins, and the modules of them it imports
    (at any level: top, inside functions, for type checking)."""
    import ast
    from pathlib import Path

    repo = Path(__file__).parents[2]
    packages = [repo / "orca_core", *sorted(p for p in (repo / "plugins").glob("*/orca_*") if p.is_dir())]
    files = {}
    for package in packages:
        for path in package.rglob("*.py"):
            parts = path.relative_to(package.parent).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in files.items():
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                names = [s for s in subs if s in files] + ([node.module] if any(s not in files for s in subs) else [])
            else:
                continue
            graph[module] |= {n for n in names if n in files and n != module}
    return graph


def test_no_module_imports_itself_through_others():
    graph = _import_graph()
    cycles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            module, path = stack.pop()
            for target in graph[module]:
                if target == start:
                    cycles.append(" -> ".join((*path, start)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, (*path, target)))
    assert cycles == []

"""The import closure of the board commands, computed from the source (not a hand-kept list).

Starts at each command in ``edgerestore.cli.BOARD_COMMANDS`` and follows every ``edgerestore``
import at any depth (module level or inside a function, absolute or relative), and every
``"edgerestore.x.y:attr"`` string a plugin registry imports later. It stops at
``edgerestore.host``, the one door to torch code.
"""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_DOOR = "edgerestore.host"
_REF = re.compile(r"^(edgerestore(?:\.[a-z_0-9]+)+)(?::[A-Za-z_0-9]+)?$")


def module_path(name):
    """The file of module ``name`` in this checkout, or None."""
    base = os.path.join(ROOT, *name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _parents(name):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(name, path):
    """(edgerestore modules, third-party top-level names) that ``name`` imports anywhere."""
    tree = ast.parse(open(path).read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.startswith("edgerestore") else theirs).add(
                    alias.name if alias.name.startswith("edgerestore") else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("edgerestore"):
                theirs.add(module.split(".")[0])
                continue
            ours.add(module)
            for alias in node.names:
                if module_path(module + "." + alias.name):
                    ours.add(module + "." + alias.name)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and name != "edgerestore.cli"):
            match = _REF.match(node.value)
            if match and module_path(match.group(1)):
                ours.add(match.group(1))
    return ours, theirs


def closure(roots, via=None):
    """``{module: set of third-party names it imports}`` for everything ``roots`` can import.

    ``via``, a dict, gets ``{module: the module that first imported it}`` to explain a failure.
    """
    seen, todo = {}, [(root, None) for root in roots]
    via = {} if via is None else via
    while todo:
        name, parent = todo.pop()
        if name in seen or name == HOST_DOOR:
            continue
        path = module_path(name)
        if path is None:
            continue
        ours, theirs = _imports(name, path)
        seen[name], via[name] = theirs, parent
        todo.extend((child, name) for child in sorted(ours | set(_parents(name))))
    return seen


def chain(via, name):
    """``a -> b -> name``: how a board command reaches ``name``."""
    steps = [name]
    while via.get(steps[-1]):
        steps.append(via[steps[-1]])
    return " -> ".join(reversed(steps))


def board_modules(via=None):
    """Every module a board command can import, with its file and its third-party imports."""
    from edgerestore.cli import BOARD_COMMANDS, COMMANDS

    roots = [COMMANDS[command].split(":")[0] for command in BOARD_COMMANDS]
    found = closure(roots, via)
    found[HOST_DOOR] = set()
    return {name: (module_path(name), theirs) for name, theirs in sorted(found.items())}

"""The context-file dialect: safe YAML plus `!secret` / `!env NAME`, with guards against alias bombs and deep nesting.

`load_context_file` reads one file into plain data (secrets as `Secret`); every other tag is
refused, and every error names the file and, where known, the line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._secrets import Secret
from .errors import ContextFileError

__all__ = ["load_context_file", "MAX_ALIASED_VALUES", "MAX_CONTEXT_DEPTH"]


class _Refused(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_loader_class: Any = None


def _yaml_loader() -> Any:
    """A yaml.SafeLoader with `!secret` and `!env NAME`; every other tag is refused."""
    global _loader_class
    if _loader_class is not None:
        return _loader_class
    try:
        import yaml
    except ImportError:  # PyYAML is a dependency; a broken install should still say what to do
        from .errors import MissingExtraError

        raise MissingExtraError("PyYAML", "yaml", "reading a context file") from None

    class ContextLoader(yaml.SafeLoader):
        environ: Mapping[str, str] = os.environ

    def scalar(loader: Any, node: Any, tag: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise _Refused(f"{tag} applies to a single value, not to a {node.id}", node.start_mark.line + 1)
        return str(loader.construct_scalar(node))

    def construct_secret(loader: Any, node: Any) -> Secret:
        return Secret(scalar(loader, node, "!secret"))

    def construct_env(loader: Any, node: Any) -> Secret:
        name = scalar(loader, node, "!env").strip()
        if name not in loader.environ:
            raise _Refused(
                f"environment variable {name!r} (from !env) is not set; set it or change the value",
                node.start_mark.line + 1,
            )
        return Secret(loader.environ[name])

    def refuse(loader: Any, node: Any) -> Any:
        tag = node.tag
        shown = "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
        if "python/" in tag:
            why = "the context loader builds plain data only (yaml.safe_load), never Python objects"
        else:
            why = "the context loader knows only !secret and !env"
        raise _Refused(f"the tag {shown!r} is not allowed: {why}; remove the tag", node.start_mark.line + 1)

    ContextLoader.add_constructor("!secret", construct_secret)
    ContextLoader.add_constructor("!env", construct_env)
    ContextLoader.add_constructor(None, refuse)
    _loader_class = ContextLoader
    return ContextLoader


#: How many values a context file may expand to through YAML aliases (`&a` ... `*a`).
MAX_ALIASED_VALUES = 100_000
#: How deeply a context file's mappings and lists may nest: far beyond any real configuration, and
#: low enough that freezing, merging, masking and reporting the context never exhaust Python's stack.
MAX_CONTEXT_DEPTH = 100


def _too_deep(path: Path, line: int | None) -> ContextFileError:
    where = f", line {line}" if line is not None else ""
    return ContextFileError(
        f"context file '{path}'{where}: its mappings and lists nest more than {MAX_CONTEXT_DEPTH} levels deep; "
        f"flatten the structure (a context holds configuration, not deep data)",
        str(path),
        line,
    )


def _check_expansion(root: Any, path: Path) -> None:
    """Refuse a document whose aliases multiply it beyond MAX_ALIASED_VALUES ("billion laughs").

    PyYAML shares an aliased node, but the context is frozen, merged and shown value by value, so
    nine nested aliases of ten items each would become a billion values. Counted per distinct node.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any, depth: int = 1) -> int:
        if id(node) in open_nodes:
            raise ContextFileError(
                f"context file '{path}', line {node.start_mark.line + 1}: a value contains an alias of itself "
                f"(a recursive alias), which the context cannot hold; replace the alias with the values it should have",
                str(path),
                node.start_mark.line + 1,
            )
        known = sizes.get(id(node))
        if known is not None:
            return known
        open_nodes.add(id(node))
        if isinstance(node.value, list):  # a mapping or a sequence: one level deeper
            if depth > MAX_CONTEXT_DEPTH:
                raise _too_deep(path, node.start_mark.line + 1)
            children = (item for pair in node.value for item in (pair if isinstance(pair, tuple) else (pair,)))
            total = 1 + sum(size(child, depth + 1) for child in children)
        else:
            total = 1
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    if size(root) > MAX_ALIASED_VALUES and size(root) > len(sizes):
        raise ContextFileError(
            f"context file '{path}': its YAML aliases expand to more than {MAX_ALIASED_VALUES:,} values; use fewer "
            f"or smaller aliases (the limit keeps a small file from taking every byte of memory)",
            str(path),
        )


def load_context_file(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a context YAML file (safe loader plus `!secret` / `!env NAME`); errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ContextFileError(
            f"cannot read context file '{path}': it is not UTF-8 text ({error.reason} at byte {error.start})",
            str(path),
        ) from None
    except OSError as error:
        raise ContextFileError(
            f"cannot read context file '{path}': {error.strerror or error}; check the path and its permissions",
            str(path),
        ) from None
    loader_class = _yaml_loader()
    import yaml

    loader = loader_class(text)
    loader.environ = os.environ if environ is None else environ
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, path)
        data = loader.construct_document(node) if node is not None else None
    except _Refused as refused:
        raise ContextFileError(
            f"context file '{path}', line {refused.line}: {refused}", str(path), refused.line
        ) from None
    except RecursionError:  # PyYAML's parser recurses per level: thousands of levels end here
        raise _too_deep(path, None) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f", line {line}, column {mark.column + 1}" if mark is not None else ""
        problem = error.problem or "malformed YAML"
        if error.context and error.context_mark is not None:
            problem += f" ({error.context} that starts on line {error.context_mark.line + 1})"
        raise ContextFileError(
            f"context file '{path}' is not valid YAML{where}: {problem}; fix the file", str(path), line
        ) from None
    except yaml.YAMLError as error:
        raise ContextFileError(f"context file '{path}' is not valid YAML: {error}; fix the file", str(path)) from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContextFileError(
            f"context file '{path}' must hold a mapping (key: value lines) at the top level, "
            f"not a {type(data).__name__}",
            str(path),
        )
    return data

"""Loading a pipeline from a CLI target: a module name, a `.py` file, or a package folder."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ._pipeline import Pipeline
from ._secrets import error_text
from .errors import TargetError

__all__ = ["load_pipeline", "loading_target"]

# The targets being imported right now (innermost last): a module that runs its own pipeline at
# import time (`PipelineExecutor().run()` outside `if __name__ == "__main__":`) is told, not obeyed.
_LOADING: list[str] = []


def loading_target() -> str | None:
    """The CLI / DAG-folder target whose module is being imported now, or None."""
    return _LOADING[-1] if _LOADING else None


@contextmanager
def _importing(target: str) -> Iterator[None]:
    _LOADING.append(target)
    try:
        yield
    finally:
        _LOADING.pop()


def load_pipeline(target: str) -> Pipeline:
    """Import `target` and return its tasks as a fresh Pipeline named after it.

    Tasks registered with the bare `@register` during the import land in that pipeline, so two
    targets loaded in one process never share tasks. A module that defines its own `Pipeline`
    object (and registers into it) gives that pipeline instead; `module:attribute` (or
    `file.py:attribute`) names one such object explicitly.
    """
    with _importing(target):
        return _load(target)


def _load(target: str) -> Pipeline:
    source, sep, attribute = target.rpartition(":")
    if sep and source and attribute.isidentifier():
        return _load_attribute(source, attribute, target)
    path = Path(target)
    is_path = target.endswith(".py") or os.sep in target or path.is_dir()
    pipeline = Pipeline(path.stem if is_path else target)
    with pipeline.collecting():
        module = _import_path(path, target) if is_path else _import_module(target)
        if not len(pipeline) and hasattr(module, "__path__"):
            _import_submodules(module)
    if len(pipeline):
        return pipeline
    own = [value for value in vars(module).values() if isinstance(value, Pipeline) and len(value)]
    if len(own) == 1:
        return own[0]
    if len(own) > 1:
        names = ", ".join(repr(p.name) for p in own)
        raise TargetError(f"{target!r} defines several pipelines ({names}); give one per module")
    return pipeline  # empty: the executor reports it as EmptyPipelineError


def _load_attribute(source: str, attribute: str, target: str) -> Pipeline:
    path = Path(source)
    is_path = source.endswith(".py") or os.sep in source or path.is_dir()
    module = _import_path(path, source) if is_path else _import_module(source)
    value = getattr(module, attribute, None)
    if value is None:
        found = sorted(name for name, item in vars(module).items() if isinstance(item, Pipeline))
        hint = f"pipelines there: {', '.join(found)}" if found else "it defines no Pipeline object"
        raise TargetError(f"{source!r} has no attribute {attribute!r} (target {target!r}); {hint}")
    if not isinstance(value, Pipeline):
        kind = type(value).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise TargetError(
            f"{target!r} is {article} {kind}, not a Pipeline; point at a Pipeline object or at the module"
        )
    return value


def _import_module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    _forget(name)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and (name == error.name or name.startswith(error.name + ".")):
            raise TargetError(
                f"no module named {error.name!r} (target {name!r}); check the spelling, run from the "
                f"project folder, or pass the path of a .py file"
            ) from None
        raise _import_failure(name, error) from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - SystemExit: script code that runs on import
        raise _import_failure(name, error) from None


def _import_path(path: Path, target: str) -> ModuleType:
    if not path.exists():
        raise TargetError(f"no such file or folder: {target!r}; pass a module name, a .py file or a package folder")
    path = path.resolve()
    if path.is_dir():
        if not (path / "__init__.py").exists():
            raise TargetError(f"folder {target!r} is not a package (it has no __init__.py)")
        sys.path.insert(0, str(path.parent))
        return _import_module(path.name)
    sys.path.insert(0, str(path.parent))
    name = path.stem
    _forget(name)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {target!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - SystemExit: script code that runs on import
        sys.modules.pop(name, None)
        raise _import_failure(target, error) from None
    return module


def _import_submodules(package: ModuleType) -> None:
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            importlib.import_module(info.name)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - SystemExit: script code that runs on import
            raise _import_failure(info.name, error) from None


def _forget(name: str) -> None:
    """Drop `name` and its submodules from sys.modules so their tasks register again."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]


def _import_failure(target: str, error: BaseException) -> TargetError:
    if isinstance(error, SyntaxError):
        where = f"{error.filename}, line {error.lineno}"
        return TargetError(f"cannot load {target!r}: syntax error in {where}: {error.msg}")
    frames = traceback.extract_tb(error.__traceback__)
    # Point at the user's line (a bad `@retries(0)`), not at the library code that raised.
    user_frames = [f for f in frames if "importlib" not in f.filename and not _is_ours(f.filename)]
    where = f" at {user_frames[-1].filename}, line {user_frames[-1].lineno}" if user_frames else ""
    if isinstance(error, SystemExit):
        return TargetError(
            f"cannot load {target!r}: it called sys.exit({error.code!r}) while being imported{where}; a pipeline "
            f'module should only define tasks: put script code under `if __name__ == "__main__":`'
        )
    return TargetError(f"cannot load {target!r}: {type(error).__name__}: {error_text(error)}{where}")


_PACKAGE_DIRECTORY = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _is_ours(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIRECTORY)

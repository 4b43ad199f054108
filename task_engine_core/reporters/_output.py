"""Output files of reporters: checked before a run starts, written whole at its end."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .._text import encodable
from ..errors import OutputPathError

__all__ = ["check_writable", "write_file", "mask_values", "redactor", "Redactor"]

#: Turns a text that may hold a secret into one that does not.
Redactor = Callable[[str], str]


def check_writable(path: str | os.PathLike[str], what: str) -> Path:
    """Return `path` as a Path, or raise OutputPathError when the file could not be written."""
    target = Path(path)
    shown = str(path)
    if target.is_dir():
        raise OutputPathError(shown, what, "it is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise OutputPathError(shown, what, f"directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise OutputPathError(shown, what, f"{str(parent)!r} is not a directory")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise OutputPathError(shown, what, "the file is not writable")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(shown, what, f"directory {str(parent)!r} is not writable")
    _try_writing_in(parent, shown, what)
    return target


def _try_writing_in(parent: Path, shown: str, what: str) -> None:
    # Permission bits say yes to root, and /proc or a read-only mount may still refuse: create
    # and remove a file where write_file() will put its temporary file.
    probe = parent / f".{os.getpid()}.{threading.get_ident()}.write-probe"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as error:
        raise OutputPathError(shown, what, f"directory {str(parent)!r} is not writable ({error.strerror})") from None
    os.unlink(probe)


def write_file(path: Path, text: str) -> None:
    """Write `text` through a temporary file so readers never see half a report; a failed write leaves none."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(encodable(text), encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        # Disk full, a file-size limit, a signal: the report is lost, but no 0-byte file is left behind.
        temporary.unlink(missing_ok=True)
        raise


def mask_values(secrets: Iterable[str], mask: str = "***") -> Redactor:
    """A redactor that replaces every occurrence of each secret value (longest first) with `mask`."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(v) for v in values))
    return lambda text: pattern.sub(mask, text)


def redactor(extra: Redactor | None = None) -> Redactor:
    """Mask every known context secret (`Secret` values), then apply `extra` if given."""
    from .._secrets import mask_text

    if extra is None:
        return mask_text
    return lambda text: extra(mask_text(text))

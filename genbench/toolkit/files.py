"""Files that are whole or absent, and that say when they are damaged.

Every write goes to a temporary file that is then renamed over the target, so a crash leaves either the old
file or the new one, never half of one; ``remove_stale_temporaries`` removes what a killed process left.

A JSON file carries the SHA-256 of its canonical JSON in its own ``sha256`` field; a safetensors file carries
its hash in the ``tensors_sha256`` field of its JSON sidecar. Reading verifies it. A file that fails its check,
does not parse or does not fit its schema is never used: it is reported in one warning line
(``DamagedFileWarning``), moved aside to ``<name>.corrupt`` (never deleted) and computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genbench.contract import GenbenchError
from genbench.toolkit.checks import non_finite_paths

if TYPE_CHECKING:
    pass


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then rename the result over ``path``.

    A file-system fault (a read-only or full disk, a file where a folder should be) is a GenbenchError that
    names the path: the user can act on it, and nothing half-written is left behind.
    """
    try:
        _write_atomic(path, write)
    except OSError as error:
        file_in_the_way = next((p for p in path.parents if p.is_file()), None)
        reason = f"{file_in_the_way} is a file, not a folder" if file_in_the_way else error.strerror or str(error)
        raise GenbenchError(f"cannot write {path}: {reason}") from error


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's process id in the name tells a later run whether the file is half-made by a dead process.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        # mkstemp (and some writers) make the file owner-only; results are meant to be shared: the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Strict JSON: a NaN or infinity is a bug of whatever produced it, named here rather than written."""
    refuse_non_finite(path, data)
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=False)
    write_atomic(path, lambda temporary: _write_text(temporary, text + "\n"))


def refuse_non_finite(path: Path, data: Any) -> None:
    unwritable = non_finite_paths(data)
    if unwritable:
        raise ValueError(f"refusing to write NaN or infinity into {path} (at {', '.join(unwritable)})")


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


# ------------------------------------------------------------------------------------ half-made files

#: write_atomic's temporary files: ".<target>.<pid>.<mkstemp's 8 characters>.tmp" (the pid is optional: files
#: of genbench versions before it was added).
TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")


def remove_stale_temporaries(folders: Iterable[Path]) -> list[Path]:
    """Delete write_atomic's temporary files under ``folders`` whose writer is no longer running; return them.

    Only genbench's own pattern is touched. A file whose writer still runs (another genbench process sharing the
    cache) is left alone; so is one of another machine sharing the folder, if its process id is alive here.
    """
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob(".*.tmp")):
            match = TEMPORARY_NAME.match(path.name)
            if match is None or not path.is_file() or _process_alive(match["pid"]):
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid: str | None) -> bool:
    if pid is None or int(pid) == os.getpid():
        return False  # an old-style name, or this process, which is not writing yet
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # another user's process (PermissionError): alive
    return True


# --------------------------------------------------------------------------------------- checksums

CHECKSUM_FIELD = "sha256"
TENSORS_CHECKSUM_FIELD = "tensors_sha256"
CORRUPT_SUFFIX = ".corrupt"


class DamagedFileWarning(UserWarning):
    """A result or cache file failed its checksum, did not parse or did not fit its schema; it was not used."""


class DamagedFile(Exception):
    """Raised by the checked readers: the file is unusable, for the reason given."""


def json_checksum(data: Any) -> str:
    """SHA-256 of the canonical JSON of ``data`` (sorted keys, no spaces): independent of indentation."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_checked_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically with its checksum in the field ``sha256``."""
    refuse_non_finite(path, data)
    # The checksum is of the data as it reads back (tuples as lists, paths as strings), so that it verifies.
    plain = json.loads(json.dumps(dict(data), default=str, allow_nan=False))
    plain.pop(CHECKSUM_FIELD, None)
    write_json_atomic(path, {**plain, CHECKSUM_FIELD: json_checksum(plain)})


def read_checked_json(
    path: Path, schema: Callable[[dict[str, Any]], str | None] | None = None, *, unchecked_ok: bool = False
) -> dict[str, Any]:
    """The JSON object in ``path`` without its checksum; DamagedFile if it is not what was written.

    ``schema`` returns what is wrong with the object, or None. ``unchecked_ok`` accepts an object without a
    checksum field (written by a genbench before checksums), still checked against ``schema``.
    """
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFile(f"not valid JSON ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise DamagedFile(f"a JSON {type(data).__name__} where an object was expected")
    checksum = data.pop(CHECKSUM_FIELD, None)
    if checksum is None and not unchecked_ok:
        raise DamagedFile(f"no {CHECKSUM_FIELD} field")
    if checksum is not None and checksum != json_checksum(data):
        raise DamagedFile("SHA-256 mismatch: its content changed after it was written")
    problem = schema(data) if schema is not None else None
    if problem:
        raise DamagedFile(problem)
    return data


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (checkpoints and sample files may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checked_tensors(
    tensors_path: Path, sidecar_path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Tensors as safetensors, then the JSON sidecar with their SHA-256: a sidecar on disk means a whole entry."""
    from safetensors.torch import save_file

    checksum = []

    def write(temporary: Path) -> None:
        save_file({name: value.contiguous() for name, value in tensors.items()}, str(temporary))
        checksum.append(file_sha256(temporary))

    write_atomic(tensors_path, write)
    write_checked_json(sidecar_path, {**meta, TENSORS_CHECKSUM_FIELD: checksum[0]})


def load_checked_tensors(
    tensors_path: Path, sidecar_path: Path, schema: Callable[[dict[str, Any]], str | None] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The tensors and sidecar written by ``save_checked_tensors``, verified; None when there is no entry.

    A damaged entry (either file) is set aside with a warning and None is returned, so the caller computes it
    again. Tensors without a sidecar are an entry whose writer was killed: None, and the next save replaces it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not sidecar_path.is_file():
        return None
    try:
        meta = read_checked_json(sidecar_path, _with_tensors_checksum(schema))
    except DamagedFile as damage:
        set_aside([sidecar_path, tensors_path], str(damage))
        return None
    try:
        if not tensors_path.is_file():
            raise DamagedFile("the file is missing while its sidecar exists")
        if file_sha256(tensors_path) != meta[TENSORS_CHECKSUM_FIELD]:
            raise DamagedFile("SHA-256 mismatch: its content changed after it was written")
        tensors = load_file(str(tensors_path), device="cpu")
    except (DamagedFile, SafetensorError) as damage:
        set_aside([tensors_path, sidecar_path], str(damage))
        return None
    meta.pop(TENSORS_CHECKSUM_FIELD)
    return tensors, meta


def _with_tensors_checksum(
    schema: Callable[[dict[str, Any]], str | None] | None,
) -> Callable[[dict[str, Any]], str | None]:
    def check(meta: dict[str, Any]) -> str | None:
        if not isinstance(meta.get(TENSORS_CHECKSUM_FIELD), str):
            return f"the sidecar has no {TENSORS_CHECKSUM_FIELD}"
        return schema(meta) if schema is not None else None

    return check


def set_aside(paths: Sequence[Path], reason: str) -> list[Path]:
    """Rename the existing ``paths`` (the damaged file first, then files that belong with it) to
    ``<name>.corrupt`` (``.corrupt.1``, ... if taken), and warn in one line."""
    moved = []
    for path in paths:
        if not path.exists():
            continue
        target = path.with_name(path.name + CORRUPT_SUFFIX)
        number = 0
        while target.exists():
            number += 1
            target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}.{number}")
        os.replace(path, target)
        moved.append(target)
    where = ", ".join(str(target) for target in moved) or "nothing left to move"
    # One line, after the move: even where warnings are errors, the damaged file is out of the way.
    warnings.warn(
        f"damaged file {paths[0]}: {' '.join(reason.split())}; moved aside to {where}; it is computed again",
        DamagedFileWarning,
        stacklevel=3,
    )
    return moved


def stable_hash(data: Any, length: int = 16) -> str:
    """A short hash of JSON-able data, independent of dict order: the hash in every key and cell id."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]

"""Check a version's files against the sha256 the registry recorded when it was registered,
before they are loaded: a file edited or swapped afterwards (a symlink pointed elsewhere
included) would otherwise serve weights that lineage does not describe. Hashing a
checkpoint takes a while, so a file whose size and modification time are unchanged since
it last matched (and that is still the same file: inode and device) is not hashed again."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from mlxhub.digest import sha256_file
from mlxhub.errors import FailedPrecondition


@dataclass(frozen=True)
class RecordedFile:
    """One file of a version as the registry recorded it: `path` is relative to the version's directory."""

    path: str
    sha256: str


class Verifier:
    """Verifies files against recorded hashes; remembers the stat of files that matched."""

    def __init__(self) -> None:
        self._verified: dict[Path, tuple[int, int, int, int, str]] = {}
        self._lock = threading.Lock()

    def verify(self, version: str, directory: str, files: tuple[RecordedFile, ...]) -> None:
        """FailedPrecondition naming the file and both hashes when one differs from its record."""
        for recorded in files:
            path = Path(directory) / recorded.path
            try:
                stat = path.stat()
            except OSError:
                raise FailedPrecondition(
                    f"{path} of {version} is missing (the registry recorded sha256 {recorded.sha256}); "
                    "restore the file or register the directory as a new version",
                    resource_type="file", resource_name=str(path), reason="ARTIFACT_CHANGED",
                ) from None
            with self._lock:
                known = self._verified.get(path)
            seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev, recorded.sha256)
            if known == seen:
                continue
            actual = sha256_file(path)
            if actual != recorded.sha256:
                raise FailedPrecondition(
                    f"{path} of {version} has sha256 {actual}, but the registry recorded {recorded.sha256}: "
                    "it changed after registration; restore it or register the directory as a new version",
                    resource_type="file", resource_name=str(path), reason="ARTIFACT_CHANGED",
                    metadata={"file": str(path), "expected_sha256": recorded.sha256, "actual_sha256": actual},
                )
            with self._lock:
                self._verified[path] = seen

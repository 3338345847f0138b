"""The report every dataset validator returns (a list of problems, each naming where it is), and
the image reading the validators share."""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image


@dataclass(frozen=True)
class Problem:
    """One defect in a dataset.

    Attributes:
        file: the file (or directory) the defect is in.
        where: the key, annotation id, image id or line number inside that file ("" if none).
        message: what is wrong and what was expected.
    """

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        location = f"{self.file} [{self.where}]" if self.where else self.file
        return f"{location}: {self.message}"


@dataclass
class CheckReport:
    """Outcome of ``data check KIND ROOT``: counts seen and problems found."""

    kind: str
    root: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: str, where: str, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(str(file), str(where), message))

    def render(self, limit: int = 50) -> str:
        """A readable multi-line report; at most ``limit`` problems are listed."""
        lines = [f"{self.kind} dataset at {self.root}: " + ("OK" if self.ok else f"{len(self.problems)} problem(s)")]
        lines += [f"  {name}: {count}" for name, count in self.counts.items()]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  - {problem}" for problem in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    def to_json(self) -> str:
        payload = asdict(self)
        payload["ok"] = self.ok
        return json.dumps(payload, indent=2)


def read_image(path: Path, *, quick: bool = False) -> tuple[tuple[int, int] | None, str | None]:
    """Open an image file and, unless ``quick``, decode every pixel of it.

    A header-only read passes truncated JPEGs (the header is intact); training would then fail
    on the first epoch that draws the file. (A process that set PIL's
    ``ImageFile.LOAD_TRUNCATED_IMAGES`` would decode truncated files leniently; nothing in this
    package does.)

    Returns:
        ``((width, height), None)`` for a good image, ``(None, message)`` otherwise.
    """
    errors = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
    try:
        if path.stat().st_size == 0:
            return None, "image unreadable: the file is empty (0 bytes)"
        with Image.open(path) as image:
            size = image.size
            if not quick:
                try:
                    image.load()
                except errors as error:
                    return None, f"image unreadable: {error} (the header reads, the pixels do not decode)"
    except errors as error:
        return None, f"image unreadable: {error}"
    return size, None


def outside_base(relative: str, base: Path) -> str | None:
    """Why the listed image path ``relative`` does not name a file under ``base``, or None.

    An annotation file names its images relative to a folder of the dataset; an absolute path or
    one that climbs out with ``..`` would read a file the dataset does not hold (the path is
    judged as written: symlinks inside the dataset are the user's to make).
    """
    if PurePosixPath(relative).is_absolute() or Path(relative).is_absolute():
        return f"image path {relative!r} is absolute, outside the dataset root; expected a path relative to {base}"
    normal = posixpath.normpath(relative.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        return f"image path {relative!r} climbs out of {base} with '..', outside the dataset root; expected a path " \
               f"relative to {base} inside it"
    return None

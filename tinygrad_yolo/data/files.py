"""Finding files in a dataset folder: a sorted walk, the split a path is in, and the check that
a path named by a dataset file stays inside the dataset."""
import os
from pathlib import Path
from typing import Optional

SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing")


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (resolved, links followed) lies inside ``root``."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False


def walk_files(root: Path, max_depth: int = 6):
    """Files under root, as Paths (sorted; hidden files and folders and __pycache__ skipped)."""
    out = []
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and d != "__pycache__" and depth < max_depth)
        out.extend(Path(folder) / f for f in sorted(files) if not f.startswith("."))
    return out


def split_of(relative: Path) -> Optional[str]:
    """The first folder in a relative path that names a split (train/, valid/, test/ ...)."""
    for part in relative.parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return part
    return None

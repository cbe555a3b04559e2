"""Which document an id names, and the ids uploads get.

The rule (docs/security.md states it for users):

- A document's id is made where it is loaded (ingest/load.py): a file in an
  ingested folder gets its path relative to that folder (`notes/a.md`), a file
  ingested alone its name, a feed item or a BEIR line its own id. These can repeat:
  two folders may each hold a README.md. The source (the file's real path, with
  `#item` for a feed item or a jsonl line) is what is unique in a store.
- An upload's id is `uploads/NAME`, NAME being its file in the store's `uploads/`
  folder, and an upload never takes an id that another source holds: when
  `uploads/a.md` belongs to something else, the upload is stored as `a-2.md`
  (`a-3.md`, ...). Uploading a name again replaces that upload (same id).
- Anything that acts on one document by its id (delete it, open its file) takes
  the id's single source, or refuses with `Ambiguous` listing the sources when
  there are several, unless it is also given the source. Nothing ever removes
  more than the one document asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import Ambiguous, NotFound
from ingest.paths import decode_source, encode_source, stored_path
from ingest.store import Store

UPLOADS = "uploads"  # the folder of a store that holds uploaded files
MAX_NAME = 120
_UNSAFE = re.compile(r"[^\w.\- ]+")
_LISTED = 10  # sources named in an Ambiguous message


def safe_name(name: str) -> str:
    """A plain base name: no folders, no NUL, no leading dots, at most 120 characters.

    Example:
        >>> safe_name("../../etc/pass wd.md")
        'pass wd.md'
    """
    base = (name or "").replace("\\", "/").replace("\x00", "").split("/")[-1]
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    stem, dot, suffix = base.rpartition(".")
    if dot and len(base) > MAX_NAME:
        base = stem[: MAX_NAME - 1 - len(suffix)] + "." + suffix
    return base[:MAX_NAME]


def uploads_dir(store: Store) -> Path:
    return store.root / UPLOADS


def upload_doc_id(name: str) -> str:
    """The id of the upload stored as `uploads/NAME` (what ingest gives it when the
    store's root is the file's id root)."""
    return encode_source(f"{UPLOADS}/{name}")


@dataclass(frozen=True)
class UploadTarget:
    """Where one uploaded file goes, and the id it will have."""

    filename: str  # as the client sent it
    path: Path  # its file under the store's uploads/ folder
    doc_id: str
    replaces: bool  # an earlier upload of the same name is in the store

    @property
    def previous(self) -> Path:
        """Where the earlier upload's file waits while the new one is ingested."""
        return self.path.with_name(f".{self.path.name}.previous")


def upload_target(store: Store, filename: str) -> UploadTarget | None:
    """The file and id for an upload named `filename` (None: no usable name is left
    of it). Its id is held by no other source; the first free one of NAME, NAME-2,
    NAME-3 ... is taken, or NAME itself when the id is that same upload's."""
    name = safe_name(filename)
    if not name:
        return None
    folder = uploads_dir(store)
    stem, suffix = os.path.splitext(name)
    for n in range(1, 1000):
        candidate = name if n == 1 else f"{stem[: MAX_NAME - len(suffix) - 4]}-{n}{suffix}"
        path = folder / candidate
        doc_id = upload_doc_id(candidate)
        holders = store.sources_of(doc_id)
        own = stored_path(path)
        if not holders or holders == [own]:
            return UploadTarget(filename, path, doc_id, replaces=bool(holders))
    raise Ambiguous(f"{name}: a thousand uploads of this name are stored; rename the file",
                    param="files")


def save_upload(target: UploadTarget, stream: BinaryIO) -> None:
    """Write the upload's bytes to its file (a temporary file, then a rename); an
    earlier upload of that name is set aside until `settle_upload`."""
    folder = target.path.parent
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{target.path.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        if target.replaces and target.path.is_file():
            os.replace(target.path, target.previous)
        os.replace(tmp, target.path)
    finally:
        tmp.unlink(missing_ok=True)


def settle_upload(target: UploadTarget, stored: bool) -> None:
    """After ingest: drop the earlier file if the new one was stored; otherwise put
    it back (or remove the new file), so the store and uploads/ still agree."""
    if stored:
        target.previous.unlink(missing_ok=True)
    elif target.previous.is_file():
        os.replace(target.previous, target.path)
    else:
        target.path.unlink(missing_ok=True)


def upload_file(store: Store, source: str) -> Path | None:
    """The file in the store's uploads/ folder that `source` is, if it is one."""
    folder = os.path.realpath(uploads_dir(store))
    path = Path(decode_source(source))
    if os.path.dirname(path) == folder and not path.is_symlink() and path.is_file():
        return path
    return None


def discard_upload_files(store: Store, sources: Iterable[str]) -> list[Path]:
    """Delete the uploads/ files of removed `sources`; those deleted."""
    gone = []
    for source in sources:
        path = upload_file(store, source)
        if path is not None:
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def resolve_source(store: Store, doc_id: str, source: str | None = None) -> str:
    """The one live source the id `doc_id` names (and `source`, when given, must be
    one of its sources). Raises NotFound, or Ambiguous listing the sources when
    several share the id and none was chosen."""
    sources = store.sources_of(doc_id)
    if source is not None:
        if source in sources:
            return source
        if not sources:
            raise NotFound(f"no document with id {doc_id!r}", param="doc_id")
        raise NotFound(f"document {doc_id!r} does not come from {source!r}; its "
                       f"source{'s are' if len(sources) > 1 else ' is'} "
                       f"{_listed(sources)}", param="source")
    if not sources:
        raise NotFound(f"no document with id {doc_id!r}", param="doc_id")
    if len(sources) > 1:
        raise Ambiguous(f"{len(sources)} documents have the id {doc_id!r}, from "
                        f"{_listed(sources)}; name the one you mean by its source",
                        param="source")
    return sources[0]


def _listed(sources: Sequence[str]) -> str:
    shown = ", ".join(sources[:_LISTED])
    return shown + (f" and {len(sources) - _LISTED} more" if len(sources) > _LISTED else "")

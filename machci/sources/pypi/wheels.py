"""What a wheel installs, from its zip directory, `RECORD` and entry points (nothing extracted).

Wheels come through the cache by sha256, so a wheel already fetched (for its metadata, or by an
earlier check) is not downloaded again; what is read from it is kept as a derived cache entry,
so a later check does not even reread the archive. Members are read under the metadata size
limit: a small archive can hold a member that inflates to gigabytes.
"""

from __future__ import annotations

import configparser
import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from machci.config.options import SourceOptions
from machci.errors import SourceError
from machci.limits import Limit
from machci.lock.collisions import WheelContents, WheelEntry
from machci.lock.model import LockedFile
from machci.sources.auth import Credentials
from machci.sources.cache import Cache, default_cache_dir
from machci.sources.http import Http, Progress

DERIVED_KIND = "wheel-contents-v1"
# Whole wheels are held in memory while read (Http.file returns bytes): a few at a time.
READERS = 4


def read_member(archive: zipfile.ZipFile, name: str, filename: str, limit: Limit) -> bytes:
    """One member of a wheel, refused when its declared size is over `limit` (zipfile never
    inflates a member past its declared size)."""
    size = archive.getinfo(name).file_size
    if size > limit.size:
        raise limit.refuse(f"{filename}: {name}", size)
    return archive.read(name)


def read_contents(data: bytes, filename: str, limit: Limit) -> WheelContents:
    """The file members with their RECORD hashes and modes, and the entry-point scripts."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            records = [
                i.filename
                for i in infos
                if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/RECORD")
            ]
            if len(records) != 1:
                raise SourceError(f"{filename}: not a valid wheel (no single .dist-info/RECORD)")
            dist_info = records[0].rpartition("/")[0]
            hashes = _record_hashes(read_member(archive, records[0], filename, limit))
            names = {i.filename for i in infos}
            entry_points = f"{dist_info}/entry_points.txt"
            scripts = (
                _scripts(read_member(archive, entry_points, filename, limit))
                if entry_points in names
                else ()
            )
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{filename}: not a valid wheel ({exc})") from exc
    entries = tuple(
        WheelEntry(i.filename, hashes.get(i.filename), bool((i.external_attr >> 16) & 0o111))
        for i in infos
        if not i.is_dir()
    )
    return WheelContents(entries, scripts)


def _record_hashes(record: bytes) -> dict[str, str]:
    rows = csv.reader(io.StringIO(record.decode("utf-8", errors="replace")))
    return {row[0]: row[1] for row in rows if len(row) >= 2 and row[1]}


def _scripts(text: bytes) -> tuple[str, ...]:
    """Names of console and GUI scripts, as installer reads them (an unreadable file: none,
    and installer refuses the wheel anyway)."""
    parser = configparser.ConfigParser(delimiters="=", interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # names keep their case
    try:
        parser.read_string(text.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError):
        return ()
    names = [
        name
        for section in ("console_scripts", "gui_scripts")
        if parser.has_section(section)
        for name in parser.options(section)
    ]
    return tuple(sorted(set(names)))


def _to_json(contents: WheelContents) -> dict[str, object]:
    return {
        "entries": [[e.path, e.digest, e.executable] for e in contents.entries],
        "scripts": list(contents.scripts),
    }


def _from_json(value: object) -> WheelContents | None:
    """A cached entry, or None when absent or not of the expected shape (then read again)."""
    if not isinstance(value, dict):
        return None
    entries, scripts = value.get("entries"), value.get("scripts")
    if not isinstance(entries, list) or not isinstance(scripts, list):
        return None
    parsed = []
    for item in entries:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and (item[1] is None or isinstance(item[1], str))
            and isinstance(item[2], bool)
        ):
            return None
        parsed.append(WheelEntry(item[0], item[1], item[2]))
    if not all(isinstance(s, str) for s in scripts):
        return None
    return WheelContents(tuple(parsed), tuple(scripts))


def wheel_contents(http: Http, file: LockedFile) -> WheelContents:
    cache = http.cache
    contents = _from_json(cache.derived(DERIVED_KIND, file.sha256))
    if contents is None:
        data = http.file(file.url, file.sha256)
        contents = read_contents(data, file.filename, http.limits.metadata)
        cache.put_derived(DERIVED_KIND, file.sha256, _to_json(contents))
    return contents


def fetch_contents(
    files: Iterable[LockedFile], indexes: Sequence[str], options: SourceOptions
) -> dict[str, WheelContents]:
    """The contents of each wheel, by sha256 (downloaded, hash-checked, when not cached), with
    the credentials of the `indexes` the lock was made from."""
    cache = Cache(options.cache_dir or default_cache_dir())
    progress = Progress()
    http = Http(
        cache,
        credentials=Credentials(indexes),
        offline=options.offline,
        timeout=options.timeout,
        progress=progress,
    )
    wanted = {f.sha256: f for f in files}
    try:
        with ThreadPoolExecutor(READERS, thread_name_prefix="machci-wheel") as pool:
            found = list(pool.map(lambda f: wheel_contents(http, f), wanted.values()))
    finally:
        progress.close()
    return dict(zip(wanted, found, strict=True))

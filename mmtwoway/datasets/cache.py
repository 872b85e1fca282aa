"""Parsed annotation indexes cached next to the data as plain JSON, rebuilt
when a source file changes.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import sys
import tempfile
from typing import (Any, Callable, Iterable, Iterator, List, Optional,
                    Sequence, Union)

from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmtwoway.utils.misc import json_safe

# Bump when the layout of what a dataset stores changes: old entries are
# then rebuilt instead of misread.
CACHE_VERSION = 1

# Folder created under ``data_root`` when ``cache=True``.
CACHE_DIR_NAME = '.mmtwoway_cache'


def resolve_cache_dir(cache: Union[bool, str], data_root: str,
                      first_source: str) -> Optional[str]:
    """The folder a dataset caches its index in.

    Args:
        cache (bool | str): ``True``: ``.mmtwoway_cache`` under
            ``data_root`` (or, without a ``data_root``, next to
            ``first_source``); a str: that folder; ``False``: no cache.
        data_root (str): The dataset's root folder, may be ''.
        first_source (str): The dataset's first annotation file.

    Returns:
        str | None: The cache folder, or None when caching is off.
    """
    if cache is False or cache is None:
        return None
    if isinstance(cache, str):
        return osp.expanduser(cache)
    if cache is not True:
        raise TypeError(f'`cache` must be a bool or a folder path, got '
                        f'{cache!r}')
    base = data_root or osp.dirname(osp.abspath(first_source))
    return osp.join(base, CACHE_DIR_NAME)


def file_signature(paths: Sequence[str]) -> List[list]:
    """``[absolute path, mtime_ns, size]`` of every file, in order.

    Args:
        paths (Sequence[str]): Existing files.

    Returns:
        list[list]: One entry per path.
    """
    signature = []
    for path in paths:
        st = os.stat(path)
        signature.append([osp.abspath(path), st.st_mtime_ns, st.st_size])
    return signature


def digest(obj: Any) -> str:
    """A stable hex digest of a JSON-serialisable object."""
    text = json.dumps(obj, sort_keys=True, separators=(',', ':'))
    return hashlib.sha1(text.encode('utf-8')).hexdigest()


def read_json_cache(path: str) -> Optional[dict]:
    """Read a cache file, or None if it is absent or unreadable.

    A corrupt cache is never an error: it is only a reason to rebuild.
    """
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        print_log(
            f'mmtwoway cache: ignoring unreadable cache file "{path}" '
            f'({err}); it will be rebuilt.',
            logger='current',
            level=logging.WARNING)
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: str, data: dict) -> bool:
    """Write ``data`` to ``path`` atomically.

    Args:
        path (str): The target file; its folder is created if needed.
        data (dict): JSON-serialisable content.

    Returns:
        bool: Whether the file was written. On failure (e.g. a read-only
        data folder) a warning is logged and False returned: a cache is an
        optimisation, never a reason to stop.
    """
    folder = osp.dirname(path)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=osp.basename(path) + '.', suffix='.tmp', dir=folder)
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            # mkstemp creates the file private (0600); a cache next to
            # shared data should be readable like any file the user makes.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            json.dump(data, f, separators=(',', ':'))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError as err:
        if tmp is not None and osp.exists(tmp):
            os.unlink(tmp)
        print_log(
            f'mmtwoway cache: could not write "{path}" ({err}); continuing '
            'without a cache. Pass `cache=<a writable folder>` to the '
            'dataset to cache elsewhere.',
            logger='current',
            level=logging.WARNING)
        return False


def cached_index(name: str, kind: str, sources: Sequence[str],
                 cache_dir: Optional[str], build: Callable[[], Any]) -> Any:
    """Return ``build()``, read from / stored in the cache when possible.

    Reading some benchmarks in their original form is slow at every start: VAW
    ships 229k training instances in large JSON files, VISPR one small JSON
    file per image (22k of them), and the instance datasets need the size of
    every image. Those datasets parse once, store what they need as a compact
    JSON file in a cache folder (by default ``<data_root>/.mmtwoway_cache/``),
    and read it back on later runs.

    A cache entry is valid only for the exact source files it was built from:
    its key is a digest of every source file's absolute path, modification time
    (ns) and size, so replacing, editing or re-extracting a source rebuilds the
    entry automatically. Entries are written atomically (a temporary file in
    the same folder, then ``os.replace``), so an interrupted run or several
    ranks writing at once never leave a half-written cache that a later run
    trusts. Caches are plain JSON, never pickle: loading one cannot run code,
    even from a shared data folder. If the folder is not writable the dataset
    still works, without a cache, and the log says so.

    Args:
        name (str): The dataset name, for log messages.
        kind (str): What is cached (e.g. ``'vaw-index'``); part of the file
            name and of the key.
        sources (Sequence[str]): The files ``build`` reads; the key is their
            paths, modification times and sizes.
        cache_dir (str, optional): The cache folder; None disables caching.
        build (Callable): Parses the sources; its result must be
            JSON-serialisable (tuples come back as lists).

    Returns:
        Any: What ``build`` returned, now or on the run that cached it.
    """
    if cache_dir is None:
        return json_safe(build())
    key = digest([CACHE_VERSION, kind, file_signature(sources)])
    # The file name depends on which files are read (not on their state),
    # so a changed source overwrites its entry instead of adding one.
    paths = sorted(osp.abspath(p) for p in sources)
    path = osp.join(cache_dir, f'{kind}-{digest(paths)[:16]}.json')
    entry = read_json_cache(path)
    if entry is not None and entry.get('key') == key:
        print_log(
            f'{name}: read the parsed index of {len(sources)} annotation '
            f'file(s) from the cache "{path}".',
            logger='current')
        return entry['payload']
    payload = json_safe(build())
    if write_json_atomic(path, dict(key=key, payload=payload)):
        print_log(
            f'{name}: parsed {len(sources)} annotation file(s) and cached '
            f'the index in "{path}"; later runs read it instead (it is '
            'rebuilt automatically when an annotation file changes).',
            logger='current')
    return payload


def track(items: Iterable, total: int) -> Iterator:
    """Yield ``items`` while drawing mmengine's progress bar on stdout.

    Used for the slow first run that builds a cache. The bar is drawn on
    the ``sys.stdout`` of the moment (mmengine's default is the one at
    import time), and the cursor is moved past it at the end.
    """
    bar = ProgressBar(total, file=sys.stdout)
    for item in items:
        yield item
        bar.update()
    sys.stdout.write('\n')

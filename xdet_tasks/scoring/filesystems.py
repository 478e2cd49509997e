"""Which filesystem holds a path, and whether it is shared between machines over a network.

SQLite's write-ahead log needs every process that opens a database to be on one host: the readers
and writers share an index through a memory-mapped ``-shm`` file, and SQLite states that "WAL does
not work over a network filesystem" (https://www.sqlite.org/wal.html, "Disadvantages"); over network
filesystems its locking itself may be broken (https://www.sqlite.org/useovernet.html). On a cluster
the cache folder is usually such a filesystem (a home or project directory over NFS, Lustre, GPFS,
BeeGFS), with jobs on several nodes writing at once, so the score cache
(:mod:`xdet_tasks.scoring.cache`) asks :func:`network_filesystem_of` before it opens its database.

Linux names a mount's type in ``/proc/self/mountinfo`` (proc(5): ``mount ID, parent ID, major:minor,
root, mount point, options, optional fields..., "-", filesystem type, source, super options``); the
mount holding a path is the one with the longest mount point above the path's real location, the
latest mount winning where one is mounted over another. Elsewhere (no ``/proc``) the type is
unknown and the path counts as local; ``XDET_SCORER_CACHE_SHARED`` decides instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class NetworkFilesystem:
    """A filesystem type (as mountinfo spells it) whose files machines share over a network or a shared disk."""

    fstype: str
    name: str
    source: str  # where that type name is documented


NETWORK_FILESYSTEMS: dict[str, NetworkFilesystem] = {
    f.fstype: f
    for f in (
        NetworkFilesystem("nfs", "NFS (v2/v3)", "nfs(5), Linux man-pages"),
        NetworkFilesystem("nfs4", "NFS v4", "nfs(5), Linux man-pages"),
        NetworkFilesystem("cifs", "SMB/CIFS", "mount.cifs(8), cifs-utils"),
        NetworkFilesystem("smb3", "SMB 3", "mount.smb3(8), cifs-utils"),
        NetworkFilesystem("lustre", "Lustre", "Lustre Operations Manual, 'mount -t lustre'"),
        NetworkFilesystem("gpfs", "IBM Storage Scale (GPFS)", "IBM Storage Scale documentation, mmmount"),
        NetworkFilesystem("beegfs", "BeeGFS", "BeeGFS documentation, client mount (beegfs-mounts.conf)"),
        NetworkFilesystem("ceph", "CephFS (kernel client)", "Linux Documentation/filesystems/ceph.rst"),
        NetworkFilesystem("fuse.ceph-fuse", "CephFS (ceph-fuse)", "Ceph documentation, ceph-fuse"),
        NetworkFilesystem("glusterfs", "GlusterFS", "GlusterFS documentation, native client"),
        NetworkFilesystem("fuse.glusterfs", "GlusterFS (FUSE client)", "GlusterFS documentation, native client"),
        NetworkFilesystem("fuse.sshfs", "SSHFS", "sshfs(1)"),
        NetworkFilesystem("fuse.s3fs", "s3fs (object storage)", "s3fs-fuse README"),
        NetworkFilesystem("fuse.juicefs", "JuiceFS", "JuiceFS documentation"),
        NetworkFilesystem("fuse.rclone", "rclone mount", "rclone mount documentation"),
        NetworkFilesystem("9p", "9P (a host folder shared into a VM)", "Linux Documentation/filesystems/9p.rst"),
        NetworkFilesystem("afs", "AFS (kernel client)", "Linux Documentation/filesystems/afs.rst"),
        NetworkFilesystem("orangefs", "OrangeFS", "Linux Documentation/filesystems/orangefs.rst"),
        NetworkFilesystem("pvfs2", "OrangeFS/PVFS2", "Linux Documentation/filesystems/orangefs.rst"),
        NetworkFilesystem("panfs", "Panasas PanFS", "Panasas DirectFlow client documentation"),
        NetworkFilesystem("wekafs", "WekaFS", "WEKA documentation, stateless client mount"),
        NetworkFilesystem("gfs2", "GFS2 (shared disk)", "Linux Documentation/filesystems/gfs2.rst"),
        NetworkFilesystem("ocfs2", "OCFS2 (shared disk)", "Linux Documentation/filesystems/ocfs2.rst"),
    )
}


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str
    source: str


_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (``\\040``)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a mountinfo text, in its order; malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 3:
            continue
        mounts.append(Mount(_unescape(fields[4]), fields[sep + 1], _unescape(fields[sep + 2])))
    return mounts


def mount_of(path: str | Path, mounts: list[Mount]) -> Mount | None:
    """The mount holding ``path`` (already resolved): the longest mount point above it, the latest of equals."""
    text = str(path)
    best: Mount | None = None
    for m in mounts:
        mp = m.mount_point.rstrip("/") or "/"
        if mp == "/" or text == mp or text.startswith(mp + "/"):
            if best is None or len(mp) >= len(best.mount_point.rstrip("/") or "/"):
                best = m
    return best


def _existing(path: Path) -> Path:
    """``path`` with symbolic links resolved, or its nearest existing ancestor's (a folder not made yet)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.resolve()


def filesystem_type(path: str | Path, mountinfo: Path = MOUNTINFO) -> str | None:
    """The filesystem type of the mount holding ``path`` (``ext4``, ``nfs4``, ``lustre``...), or ``None`` if unknown."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    found = mount_of(_existing(Path(path)), parse_mountinfo(text))
    return found.fstype if found else None


def network_filesystem(fstype: str | None) -> NetworkFilesystem | None:
    """The record of a network or shared-disk filesystem type; ``None`` for a local (or unknown) one."""
    return NETWORK_FILESYSTEMS.get(fstype or "")


def network_filesystem_of(path: str | Path, mountinfo: Path = MOUNTINFO) -> NetworkFilesystem | None:
    """The network filesystem ``path`` lies on, or ``None`` when it is local or cannot be told."""
    return network_filesystem(filesystem_type(path, mountinfo))

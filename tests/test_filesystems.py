"""Which filesystem holds a path: this machine's real mounts against util-linux's ``findmnt``, and
mountinfo lines of the network filesystems a cluster's cache folder lies on (written out here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xdet_tasks.scoring.filesystems import (
    NETWORK_FILESYSTEMS,
    filesystem_type,
    mount_of,
    network_filesystem,
    network_filesystem_of,
    parse_mountinfo,
)

ROOT = Path(__file__).resolve().parents[1]


def _findmnt(path: Path) -> str:
    """The type of the mount that holds ``path`` as ``findmnt`` reports it (the top one of an overmount)."""
    proc = subprocess.run(["findmnt", "--noheadings", "--output", "FSTYPE", "--target", str(path)],
                          capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout.split()[-1]


def test_this_machines_mounts_agree_with_findmnt(tmp_path):
    if shutil.which("findmnt") is None:
        pytest.skip("findmnt (util-linux) is not installed: nothing independent to compare with")
    if not Path("/proc/self/mountinfo").is_file():
        pytest.skip("no /proc/self/mountinfo here (not Linux)")
    link = tmp_path / "to-shm"
    paths = [ROOT, tmp_path, Path("/tmp"), Path("/dev/shm"), Path("/proc"), Path("/sys"), Path("/dev"), Path("/")]
    seen = {}
    for path in paths:
        if path.exists():
            seen[str(path)] = filesystem_type(path)
            assert seen[str(path)] == _findmnt(path), path
    assert seen.get("/proc") == "proc" and seen.get("/sys") == "sysfs"
    if Path("/dev/shm").is_dir():
        link.symlink_to("/dev/shm")  # a link is followed to where the files are
        assert filesystem_type(link) == _findmnt(Path("/dev/shm"))
        # a folder not made yet: the filesystem it would be made on
        assert filesystem_type(link / "not" / "yet") == _findmnt(Path("/dev/shm"))
    # none of this machine's mounts is a network filesystem (the cache stays one SQLite file here)
    assert {str(p): network_filesystem_of(p) for p in paths if p.exists()} == {str(p): None for p in paths if p.exists()}


# Lines as the kernel writes them (proc(5)): id, parent, major:minor, root, mount point, options,
# optional fields, "-", type, source, super options; a space in a path is written \040.
MOUNTINFO = r"""
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 27 0:27 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=8g
41 27 0:41 / /home rw,relatime shared:20 - nfs4 fs01:/export/home rw,vers=4.2,rsize=1048576
42 27 0:42 / /home/alice/local rw,relatime - xfs /dev/sdb1 rw
43 27 0:43 / /scratch rw,relatime shared:21 master:3 - lustre 10.0.0.1@o2ib:/scratch rw,flock
44 27 0:44 / /gpfs/projects rw,relatime - gpfs projects rw
45 27 0:45 / /mnt/win\040share rw,relatime - cifs //server/share rw,vers=3.0
46 27 0:46 / /mnt/remote rw,nosuid,nodev - fuse.sshfs alice@login:/data rw,user_id=1000
47 27 0:47 / /beegfs rw,relatime - beegfs beegfs_nodev rw,cfgFile=/etc/beegfs/beegfs-client.conf
48 27 0:48 / /nfs3 rw,relatime - nfs fs02:/vol rw,vers=3
49 30 0:49 / /tmp rw,relatime - nfs fs03:/tmp rw,vers=3
this line is not a mount
""".strip()


@pytest.mark.parametrize("path, fstype, network", [
    ("/", "ext4", False),
    ("/var/lib/thing", "ext4", False),
    ("/home/alice/.cache/xdet", "nfs4", True),
    ("/home/alice/local/cache", "xfs", False),  # a local disk mounted inside the NFS home
    ("/homework", "ext4", False),  # a name that starts like a mount point is not inside it
    ("/scratch/alice/sweeps", "lustre", True),
    ("/gpfs/projects/x/cache", "gpfs", True),
    ("/mnt/win share/cache", "cifs", True),  # \040 in mountinfo
    ("/mnt/remote/cache", "fuse.sshfs", True),
    ("/beegfs/alice", "beegfs", True),
    ("/nfs3", "nfs", True),
    ("/tmp/x", "nfs", True),  # mounted over the tmpfs: the later mount hides the earlier
])
def test_mountinfo_lines_of_network_filesystems(path, fstype, network):
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 11  # the line that is no mount is skipped
    found = mount_of(path, mounts)
    assert found is not None and found.fstype == fstype
    assert (network_filesystem(found.fstype) is not None) is network


def test_detection_reads_a_mountinfo_file(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(f"27 1 254:0 / / rw - ext4 /dev/vda rw\n88 27 0:88 / {tmp_path}/shared rw - lustre mds:/fs rw\n")
    (tmp_path / "shared").mkdir()
    assert filesystem_type(tmp_path / "shared" / "cache", info) == "lustre"
    assert network_filesystem_of(tmp_path / "shared", info).name == "Lustre"
    assert network_filesystem_of(tmp_path / "elsewhere", info) is None
    assert filesystem_type(tmp_path, tmp_path / "missing") is None  # no /proc: unknown, counted local


def test_every_record_names_its_type_and_source():
    assert {"nfs", "nfs4", "lustre", "gpfs", "cifs", "fuse.sshfs", "beegfs"} <= set(NETWORK_FILESYSTEMS)
    for key, record in NETWORK_FILESYSTEMS.items():
        assert record.fstype == key and record.name and record.source

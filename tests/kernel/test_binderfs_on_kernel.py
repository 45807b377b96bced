"""The real 6.1 binderfs (the oracle's ``run.sh -B``) prints what tests/fs/expected records.

tests/fs/binderfs_probe.py runs in a VM whose binder_linux has binderfs (setup.sh builds it
with ORACLE_NO_BINDERFS=0), with the devices binder, hwbinder and vndbinder as a vbinder mount
has them; tests/fs/test_binderfs.py holds vbinder to the same record.
"""

from __future__ import annotations

from tests.fs.test_binderfs import EXPECTED, PROBE
from tests.kernel import vm
from tests.kernel.conftest import need_kernel


def test_binderfs_on_the_kernel_matches_its_record() -> None:
    need_kernel(binderfs=True)
    r = vm.run([str(PROBE), "/dev/binderfs"], devices="binder,hwbinder,vndbinder", binderfs=True, timeout=240)
    if r.returncode == 125:  # the VM failed to boot: once more
        r = vm.run([str(PROBE), "/dev/binderfs"], devices="binder,hwbinder,vndbinder", binderfs=True, timeout=240)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert r.stdout.splitlines() == EXPECTED.read_text().splitlines()

"""The kernel side of the tests: a VM with the real 6.1 driver (tests/kernel/vm.py).

Where the VM cannot run, these tests are skipped and the run says so at its end in a banner
(tests/conftest.py), and with ``VBINDER_REQUIRE_KERNEL=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os

import pytest

from tests.kernel import vm

SKIPPED: list[str] = []  # why the kernel side did not run, for the banner


def need_kernel(binderfs: bool = False) -> None:
    """Skip (fail, under VBINDER_REQUIRE_KERNEL) when the VM (with ``binderfs``, its binderfs
    variant) cannot run here."""
    why = vm.binderfs_unavailable() if binderfs else vm.unavailable()
    if why is None:
        return
    if os.environ.get(vm.REQUIRE) == "1":
        pytest.fail(f"the real kernel's checks cannot run ({vm.REQUIRE}=1): {why}")
    if why not in SKIPPED:
        SKIPPED.append(why)
    pytest.skip(f"THE REAL KERNEL'S CHECKS DID NOT RUN: {why}")

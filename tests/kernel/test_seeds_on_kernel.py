"""The seed scripts on the real 6.1 driver: the kernel still prints what tests/seeds compares
vbinder's 6.1 profile with (tests/seeds/expected/<seed>.6.1.txt, recorded by tests/seeds/record.py).

Each seed runs in a fresh VM (the kernel's module cannot be reloaded, and a seed's debug ids and
rate limit start from a fresh driver), two at once: about a minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kernel.conftest import need_kernel
from tests.seeds.record import EXPECTED, on_kernel
from tests.seeds.run_seeds import seed_scripts

SEEDS = sorted(seed_scripts())


@pytest.fixture(scope="module")
def kernel_outputs() -> dict[str, Any]:
    need_kernel()
    got, log = on_kernel(SEEDS)
    return {"outputs": got, "log": log}


@pytest.mark.parametrize("name", SEEDS)
def test_seed_on_the_kernel_matches_its_record(name: str, kernel_outputs: dict[str, Any]) -> None:
    got = kernel_outputs["outputs"].get(name)
    assert got is not None, f"{name}: no output from the VM\n{kernel_outputs['log']}"
    assert got == (EXPECTED / f"{name}.6.1.txt").read_text(), f"{name}: the kernel's output changed:\n{got}"

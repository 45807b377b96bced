"""The C test programs on the real 6.1 driver, in the oracle's VM: the recorded transcripts
(``expected/``, which vbinder is compared with) still hold there.
"""

from __future__ import annotations

import json

from tests.conformance.test_conformance import diff
from tests.kernel.conftest import need_kernel
from tests.preload import record_kernel, scenarios


def test_programs_on_the_kernel_match_their_record() -> None:
    need_kernel()
    got = record_kernel.on_kernel(list(scenarios.SCENARIOS))
    for name in scenarios.SCENARIOS:
        expected = json.loads((record_kernel.EXPECTED / f"{name}.json").read_text())
        assert name in got, f"{name}: no transcript from the VM"
        assert got[name] == expected, f"{name}: the kernel's transcript changed\n{diff(expected, got[name])}"

"""Which Android a process speaks: its service manager's protocol and its parcels' stability words.

libbinder is built for one Android release, and so is every process that talks to it: the
service manager's transaction codes and parcels, and the format of the word that follows each
binder object, differ between releases (docs/android-versions.md). vbinder's client speaks one
release per process, the newest unless asked: ``ProcessState.init(android=N)``, or
``$VBINDER_ANDROID`` for programs that do not choose (``vbinder service``, ``dumpsys``, ...).
"""

from __future__ import annotations

import os
from typing import Final

VERSIONS: Final = (11, 12, 13, 14, 15, 16)
NEWEST: Final = VERSIONS[-1]
API_LEVELS: Final = {11: 30, 12: 31, 13: 33, 14: 34, 15: 35, 16: 36}  # 12L (API 32) speaks as 12
ENV: Final = "VBINDER_ANDROID"


def check(version: int) -> int:
    """``version`` if vbinder speaks it, else ValueError naming the ones it does."""
    if version not in VERSIONS:
        raise ValueError(f"Android {version} is not one vbinder speaks ({', '.join(map(str, VERSIONS))})")
    return version


def default() -> int:
    """$VBINDER_ANDROID (a release number, or an API level: 36), else the newest."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return NEWEST
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"${ENV}={text!r}: not an Android release number") from None
    by_api = {api: v for v, api in API_LEVELS.items()} | {32: 12}
    return check(by_api.get(value, value))

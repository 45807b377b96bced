"""vbinder's benchmark suite: ``python -m bench`` (``make bench``), ``python -m bench --quick``.

The coordinator (:mod:`bench.run`) starts every process it measures as a worker
(``python -m bench.worker ROLE ARGS``, :mod:`bench.worker`) that answers JSON commands on its
stdin, mounts vbinder and the floor file system (:mod:`bench.floorfs`) in their own processes,
prints a markdown report (:mod:`bench.report`) and cleans up after itself, also on Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def ensure_client() -> None:
    """Make ``vbinder_client`` importable when the repository is not pip-installed.

    An installed (``pip install -e .``) tree maps ``client/`` to ``vbinder_client``; a plain
    checkout run with ``PYTHONPATH=.`` does not, so register the package from its directory.
    """
    if "vbinder_client" in sys.modules or importlib.util.find_spec("vbinder_client") is not None:
        return
    init = REPO / "client" / "__init__.py"
    spec = importlib.util.spec_from_file_location("vbinder_client", init,
                                                  submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise ImportError("cannot find vbinder_client (client/)")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vbinder_client"] = module
    spec.loader.exec_module(module)

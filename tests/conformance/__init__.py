"""Conformance scenarios, written once with the client, run on vbinder and on the real kernel.

- ``framework.py``: roles forked before they open the device, messages, transcripts, raw helpers.
- ``scenarios_client.py``, ``scenarios_raw.py``: the scenarios (client-level and BC/BR-level).
- ``runner.py --device DEV [NAME ...]``: run scenarios on one device, print their transcripts.
- ``run_kernel.py [NAME ...]``: run them in the oracle VM, write ``expected/<name>.json``.
- ``test_conformance.py``: each scenario on a fresh vbinder mount, compared with ``expected/``.
"""

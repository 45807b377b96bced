# vbinder: `make run` to try it, `make test` to test it. Both install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MNT ?= mnt
export VENV

.PHONY: all bootstrap run test lint static bench umount clean

all: test

bootstrap:
	@scripts/bootstrap.sh

## run: mount vbinder at $(MNT), start the service manager and the echo example, show a call and the tree
run: bootstrap
	@PY=$(PY) scripts/demo.sh start $(MNT)

## test: the static checks, the whole test suite (pass more pytest arguments with PYTEST_ARGS=...;
## tests/kernel runs the client on the real 6.1 driver in the oracle's VM), then the core's tests
## again in pure Python (VBINDER_PURE=1), the fallback when the compiled build is absent
test:
	@scripts/bootstrap.sh --test
	@$(MAKE) --no-print-directory static
	$(PY) -m pytest $(PYTEST_ARGS)
	VBINDER_PURE=1 $(PY) -m pytest -q tests/driver tests/test_native.py

## lint: the static checks (ruff; mypy in strict mode on vbinder and the client)
lint: bootstrap static

static:
	$(PY) -m ruff check .
	$(PY) scripts/typecheck.py

include bench/Makefile.inc

.PHONY: faults-long fuzz-long conformance-kernel
## conformance-kernel: record the real 6.1 kernel's transcripts of tests/conformance (oracle VMs, 2 at once; SCENARIOS=... for some)
conformance-kernel: bootstrap
	$(PY) tests/conformance/run_kernel.py $(SCENARIOS)

## faults-long: the long fault, fuzz-through-a-mount and load runs (tests/faults, marker `long`)
faults-long: bootstrap
	$(PY) -m pytest tests/faults -m long $(PYTEST_ARGS)

## fuzz-long: the long fuzz runs of the device ABI, on the core and through a mount
fuzz-long: bootstrap
	VBINDER_FUZZ_EXAMPLES=5000 $(PY) -m pytest tests/driver/test_fuzz.py $(PYTEST_ARGS)
	$(PY) -m pytest tests/faults/test_fuzz_mount.py -m long $(PYTEST_ARGS)

## umount: stop what `make run` started and unmount $(MNT)
umount:
	@PY=$(PY) scripts/demo.sh stop $(MNT)

clean: umount
	rm -rf $(VENV) .run .pytest_cache .ruff_cache

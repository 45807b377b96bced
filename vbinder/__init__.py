"""vbinder: Android's binder driver in Python, served over FUSE (see README.md)."""

from .native import package_path

__path__ = package_path(__path__, __name__)  # the compiled modules first, when built and current

"""The tools that show a mount's traffic: ``trace record``, ``top``, ``trace diagram``, ``graph``."""

"""A sandbox for programs a model wrote: own processes, limits, no network, nothing left over.

See `isolation.probe().describe()` for what this host isolates and what it cannot.
"""

from gnomon.sandbox.isolation import Isolation, probe
from gnomon.sandbox.runner import Limits, Program, Sandbox, Verdict

__all__ = ["Isolation", "Limits", "Program", "Sandbox", "Verdict", "probe"]

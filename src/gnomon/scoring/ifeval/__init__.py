"""IFEval (Zhou et al. 2023): verifiable instructions, each checked by a rule on the response.

`checkers` holds one rule per instruction kind, `verdicts` applies a prompt's instructions to
a response strictly and loosely, as Google's reference scorer (and lm-eval's `ifeval`) does.
"""

from gnomon.scoring.ifeval.checkers import CHECKERS
from gnomon.scoring.ifeval.verdicts import Verdicts, judge, loose_variants

__all__ = ["CHECKERS", "Verdicts", "judge", "loose_variants"]

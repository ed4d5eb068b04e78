"""The alignment losses (Eq. 1-3) live in avgas.core.losses; this name is kept for the notebooks and
scripts that say `losses.separator_loss`."""

from avgas.core.losses import *  # noqa: F403

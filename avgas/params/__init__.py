"""A run's settings, in three rooms:

- :mod:`avgas.params.schema`: the typed :class:`Params` and every key's type, default, rules and help;
- :mod:`avgas.params.loading`: reading a params file, -p overrides and --sweep, validated before any
  work (errors name the file and the key), and the write protection of the inputs they name;
- :mod:`avgas.params.design`: the experiment design (combinations, groups, unseen pairings).

Everything a notebook or a user needs is here too: ``from avgas.params import Params, load``.
"""

from avgas.params.loading import (
    from_notebook,
    load,
    parse_override,
    protect_inputs,
    save,
    sweep,
    sweep_grid,
    validate,
)
from avgas.params.schema import (
    FIELDS,
    HINTS,
    INGEST_INPUT_KEYS,
    INPUT_KEYS,
    WEIGHT_KEYS,
    Params,
    ParamsError,
    describe,
)

__all__ = [
    "FIELDS",
    "HINTS",
    "INGEST_INPUT_KEYS",
    "INPUT_KEYS",
    "WEIGHT_KEYS",
    "Params",
    "ParamsError",
    "describe",
    "from_notebook",
    "load",
    "parse_override",
    "protect_inputs",
    "save",
    "sweep",
    "sweep_grid",
    "validate",
]

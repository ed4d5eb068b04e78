"""The claims of Tables 1-3, the old protocol (issue 11) beside the new one, on one finished run.

    python scripts/claims_old_new.py RUN_FOLDER

The run's metric files get the judges' claim checks and the test tuples' clip clusters when they
lack them (scoring.add_checks: the scores themselves are kept), so point it at a copy of a run
you do not want changed. Prints the counts, then each claim's verdict under both protocols.
"""

import sys

import pandas as pd

from avgas import results, scoring, validation


def main(run_folder: str) -> pd.DataFrame:
    p = validation.for_run(run_folder)
    changed = scoring.add_checks(p)
    if changed:
        print(f"added checks and clusters to {', '.join(changed)}")
    collected = results.collect(p)
    print(results.protocol_counts(collected).to_string())
    old = results.old_verdicts(collected)
    both = pd.DataFrame(
        [{"claim": r["claim"], "old": old.get(r["claim"], "–"), "new": r["verdict"]} for r in collected["claims"]]
    ).set_index("claim")
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        print(both.to_string())
    return both


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

"""Two run logs of one eval, paired sample by sample: the regression gate for CI.

    evalkit compare BASE_LOG NEW_LOG [--max-drop 0.01] [--alpha 0.05] [--json]

Samples are paired by id; only ids scored in both logs count (errors and ids in one log only are
reported as unpaired). For the eval's main metric, overall and per group, it reports new - base
with a paired-bootstrap 95% interval and a two-sided p-value: the exact McNemar test when scores
are 0/1 (accuracy), a paired bootstrap otherwise (F1). The samples that flipped are listed.

The gate fails (exit 1) when the overall drop base - new exceeds `max_drop` AND is significant
(p < alpha); per-group changes are reported, not gated (57 MMLU subjects would otherwise make a
false alarm likely). It also fails when NEW lacks samples that BASE scored (missing, or ended in
an error): a killed or broken run must not pass the gate on the few samples it has. Pass
`allow_missing` (`--allow-missing`) to compare on the shared samples anyway.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from evalkit.core.errors import EvalkitError
from evalkit.results.runlog import read_log
from evalkit.results.metrics import paired_difference


def _scores(samples: dict) -> dict[str, tuple[str | None, float]]:
    return {sid: (r.group, float(r.score)) for sid, r in samples.items() if r.score is not None and not r.error}


def compare_logs(base_path: str, new_path: str, max_drop: float = 0.0, alpha: float = 0.05, seed: int = 0,
                 list_flips: int = 50, allow_missing: bool = False) -> dict:
    base_log, new_log = read_log(base_path), read_log(new_path)
    base_h, base_s, new_h, new_s = base_log.header, base_log.samples, new_log.header, new_log.samples
    if base_h.get("eval") != new_h.get("eval"):
        raise EvalkitError(f"{new_path}: eval {new_h.get('eval')!r} differs from the base log's {base_h.get('eval')!r}; "
                           "compare runs of the same eval")
    metric = (base_h.get("spec") or {}).get("metrics", ["accuracy"])[0]
    base, new = _scores(base_s), _scores(new_s)
    shared = sorted(set(base) & set(new))
    if not shared:
        raise EvalkitError(f"{base_path} and {new_path} share no scored sample ids")
    b = np.array([base[i][1] for i in shared])
    n = np.array([new[i][1] for i in shared])
    overall = paired_difference(b, n, seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for k, sid in enumerate(shared):
        if (group := base[sid][0]) is not None:
            groups[group].append(k)
    per_group = {g: paired_difference(b[idx], n[idx], seed) for g, idx in sorted(groups.items())}
    worse = [sid for k, sid in enumerate(shared) if n[k] < b[k]]
    better = [sid for k, sid in enumerate(shared) if n[k] > b[k]]
    drop = -overall["diff"]
    significant = overall["p_value"] is not None and overall["p_value"] < alpha
    regression = drop > max_drop and significant
    missing = sorted(set(base) - set(new))
    failures = ([f"a significant drop of {drop:.4f}, more than --max-drop {max_drop}"] if regression else []) + \
        ([f"NEW lacks {len(missing)} of the {len(base)} samples BASE scored (first: {missing[0]}); "
          "rerun NEW to finish it, or pass --allow-missing"] if missing and not allow_missing else [])
    return {
        "eval": base_h.get("eval"), "metric": metric,
        "base": {"log": str(base_path), "model": base_h.get("model")},
        "new": {"log": str(new_path), "model": new_h.get("model")},
        "paired": len(shared),
        # scored in one log only (in the other it is missing or ended in an error), and errors per log
        "unpaired": {"base_only": len(set(base) - set(new)), "new_only": len(set(new) - set(base)),
                     "errors": {"base": sum(1 for r in base_s.values() if r.error),
                                "new": sum(1 for r in new_s.values() if r.error)},
                     # scored 0 because the token limit cut them off (see `evalkit.backends.thinking`)
                     "truncated": {"base": sum(1 for r in base_s.values() if r.truncated),
                                   "new": sum(1 for r in new_s.values() if r.truncated)}},
        "overall": overall, "groups": per_group,
        "flipped": {"worse": worse[:list_flips], "better": better[:list_flips],
                    "worse_count": len(worse), "better_count": len(better)},
        "gate": {"max_drop": max_drop, "alpha": alpha, "drop": round(drop, 6), "significant": significant,
                 "regression": regression, "missing": len(missing), "allow_missing": allow_missing,
                 "passed": not failures, "failures": failures},
    }

"""What one `evalkit view` shows: the logs given (indexed), the pairs of runs of one eval, the exams.

Both faces of the viewer ask this object: the local server answers the page's JSON requests from
it, and `--out` embeds its answers in one file. Exam results (`<log dir>/exams/<exam>/<model>.json`,
read as `evalkit report` reads them) bring the logs of their sections along, so each step of the
chain section -> composite -> scaled -> percentile links to the items behind it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.analysis.report_logs import load_exam
from evalkit.analysis.view.index import FLAGS, LogIndex, open_index
from evalkit.analysis.view.query import Pairing, Searcher, pair_runs, parse_query, select, select_pairs


class Viewer:
    def __init__(self, paths: list[str]):
        if not paths:
            raise EvalkitError("view: give at least one run log or exam result")
        self.runs: list[LogIndex] = []
        self.searchers: list[Searcher] = []
        self._by_path: dict[Path, int] = {}
        try:
            self.exams = [self._exam(p, e) for p in paths if (e := load_exam(p)) is not None]
            for p in paths:
                if not str(p).endswith(".json"):
                    self._add_run(Path(p))
        except BaseException:
            self.close()
            raise
        self.pair_plan = self._plan_pairs()
        self._pairings: dict[int, Pairing] = {}
        self._pair_lock = threading.Lock()      # compare reads both logs whole: seconds for 100,000 samples

    def _add_run(self, path: Path) -> int:
        key = path.resolve()
        if key not in self._by_path:
            self._by_path[key] = len(self.runs)
            self.runs.append(open_index(path))
            self.searchers.append(Searcher(self.runs[-1]))
        return self._by_path[key]

    def _exam(self, path: str, exam: dict) -> dict:
        """An exam result's chain, each section tied to the run (log) its items are in."""
        log_dir = Path(path).resolve().parents[2] if len(Path(path).resolve().parents) > 2 else Path(".")
        sections = []
        listed = exam.get("sections")
        if not isinstance(listed, list) or not all(isinstance(s, dict) for s in listed):
            raise EvalkitError(f"{path}: not an exam result (its \"sections\" is not a list of sections)")
        for s in listed:
            log = s.get("log") if isinstance(s.get("log"), str) else None
            where = next((c for c in (Path(log), log_dir / log) if c.is_file()), None) if log else None
            sec = {k: s.get(k) for k in ("name", "n", "correct", "wrong", "blank", "errors", "accuracy", "raw",
                                         "max_raw", "scaled")}
            sec["run"] = self._add_run(where) if where else None
            sec["log"] = log
            sections.append(sec)
        pct = exam.get("percentile")
        return {"file": str(path), "exam": exam.get("exam"), "title": exam.get("title"), "model": exam.get("model"),
                "sections": sections, "composite": exam.get("composite"), "composite_max": exam.get("composite_max"),
                "scaled": exam.get("scaled"), "scale": exam.get("scale"), "scaled_ci95": exam.get("scaled_ci95"),
                "percentile": pct.get("text") if isinstance(pct, dict) else None,
                "percentile_ci95": exam.get("percentile_ci95"), "incomplete": bool(exam.get("incomplete")),
                "notes": exam.get("notes") or []}

    def _plan_pairs(self) -> list[tuple[int, int]]:
        """Per eval, the first log given is the base and each later log of that eval is paired with it."""
        first: dict[str, int] = {}
        plan = []
        for i, run in enumerate(self.runs):
            name = str(run.header.get("eval"))
            if name in first:
                plan.append((first[name], i))
            else:
                first[name] = i
        return plan

    def close(self) -> None:
        for run in self.runs:
            run.close()

    def meta(self) -> dict:
        runs = [{"run": i, "path": str(r.path), "eval": r.header.get("eval"), "model": r.header.get("model"),
                 "created": r.header.get("created"), "samples": len(r.rows), "groups": r.groups(),
                 "bad_lines": r.bad_lines, "bad_count": r.bad_count, "superseded": r.superseded, "summary": _headline(r.summary),
                 "scorer": _scorer(r.header)}
                for i, r in enumerate(self.runs)]
        pairs = [{"pair": k, "base": b, "new": n, "eval": self.runs[b].header.get("eval")}
                 for k, (b, n) in enumerate(self.pair_plan)]
        return {"filters": list(FLAGS), "runs": runs, "pairs": pairs, "exams": self.exams}

    def run(self, params: dict[str, str]) -> int:
        try:
            i = int(params.get("run", ""))
        except ValueError:
            raise ValueError("run is a whole number") from None
        if not 0 <= i < len(self.runs):
            raise ValueError(f"no run {i}")
        return i

    def samples(self, params: dict[str, str]) -> dict:
        i = self.run(params)
        return select(self.runs[i], self.searchers[i], parse_query(params, FLAGS))

    def sample(self, params: dict[str, str]) -> dict:
        i = self.run(params)
        try:
            n = int(params.get("n", ""))
        except ValueError:
            raise ValueError("n is a whole number") from None
        if not 0 <= n < len(self.runs[i].rows):
            raise ValueError(f"run {i} has no sample {n}")
        return self.runs[i].record(n)

    def pairing(self, k: int) -> Pairing:
        if not 0 <= k < len(self.pair_plan):
            raise ValueError(f"no pair {k}")
        with self._pair_lock:
            if k not in self._pairings:
                b, n = self.pair_plan[k]
                self._pairings[k] = pair_runs(b, self.runs[b], n, self.runs[n])
        return self._pairings[k]

    def compare_ahead(self) -> None:
        """Pair the runs in the background, so the compare view is ready when it is asked for."""
        def work() -> None:
            for k in range(len(self.pair_plan)):
                self.pairing(k)

        if self.pair_plan:
            threading.Thread(target=work, daemon=True).start()

    def pairs(self, params: dict[str, str]) -> dict:
        try:
            k, offset, limit = (int(params.get(x, d)) for x, d in (("pair", ""), ("offset", 0), ("limit", 100)))
        except ValueError:
            raise ValueError("pair, offset and limit are whole numbers") from None
        p = self.pairing(k)
        if offset < 0 or not 0 < limit <= 500:
            raise ValueError("offset must be >= 0 and limit 1-500")
        page = select_pairs(p, self.runs[p.base_run], self.runs[p.new_run], params.get("kind", "all"),
                            params.get("q", ""), offset, limit)
        return {"comparison": p.comparison, "error": p.error, **page}


def _scorer(header: dict) -> str | None:
    """The eval's scoring method (`code`: the extracted field is the sandbox's verdict)."""
    scoring = (header.get("spec") or {}).get("scoring") if isinstance(header.get("spec"), dict) else None
    return scoring.get("method") if isinstance(scoring, dict) and isinstance(scoring.get("method"), str) else None


def _headline(summary: dict | None) -> dict | None:
    """The log's own summary line: status and main metric (the page says it is the log's claim)."""
    if not isinstance(summary, dict):
        return None
    metric = summary.get("primary_metric")
    stat = (summary.get("metrics") or {}).get(metric) if isinstance(summary.get("metrics"), dict) else None
    return {"status": summary.get("status"), "metric": metric,
            "value": stat.get("value") if isinstance(stat, dict) else None,
            "ci95": stat.get("ci95") if isinstance(stat, dict) else None}

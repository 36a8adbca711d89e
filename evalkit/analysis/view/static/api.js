"use strict";
// The page's data: the local server's JSON API (served), or the data block of a self-contained file.
// Both answer the same questions with the same shapes (see evalkit/analysis/view/session.py).

EV.Served = class {
  async get(path, params) {
    const q = new URLSearchParams(params || {}).toString();
    const resp = await fetch(path + (q ? "?" + q : ""));
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    return body;
  }
  meta() { return this.get("/api/meta"); }
  samples(p) { return this.get("/api/samples", p); }
  sample(run, n) { return this.get("/api/sample", {run, n}); }
  pairs(p) { return this.get("/api/pairs", p); }
};

EV.SORTS = {
  line: (r) => r.line, id: (r) => r.id, time: (r) => r.time_s, tokens: (r) => r.tokens,
  score: (r) => (r.score === null ? Infinity : r.score), cost: (r) => (r.cost === null ? Infinity : r.cost),
};

EV.Embedded = class {
  constructor(node) { this.data = JSON.parse(node.textContent); this.found = new Map(); }
  async meta() { return this.data.meta; }
  async sample(run, n) { return this.data.runs[run].records[n]; }
  matches(run, q) {
    const key = run + "\u0000" + q;
    if (!this.found.has(key)) {
      const recs = this.data.runs[run].records, needle = q.toLowerCase(), hit = new Set();
      recs.forEach((rec, i) => { if (EV.sampleText(rec).toLowerCase().includes(needle)) hit.add(i); });
      this.found.set(key, hit);
    }
    return this.found.get(key);
  }
  async samples(p) {
    const rows = this.data.runs[Number(p.run)].rows;
    let cand = rows.filter((r) => !p.group || r.group === p.group);
    if (p.q) { const hit = this.matches(Number(p.run), p.q); cand = cand.filter((r) => hit.has(r.n)); }
    const counts = {all: cand.length};
    for (const f of this.data.meta.filters) counts[f] = cand.filter((r) => r.flags.includes(f)).length;
    let chosen = p.filter === "all" ? cand.slice() : cand.filter((r) => r.flags.includes(p.filter));
    if (p.sort !== "line" || p.desc === "1") {
      const key = EV.SORTS[p.sort], dir = p.desc === "1" ? -1 : 1;
      chosen.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * dir; });
    }
    const offset = Number(p.offset);
    return {total: chosen.length, offset, counts, rows: chosen.slice(offset, offset + Number(p.limit))};
  }
  async pairs(p) {
    const all = this.data.pairs[Number(p.pair)];
    const q = (p.q || "").toLowerCase();
    const chosen = all.rows.filter((x) => !q || x.id.toLowerCase().includes(q));
    const counts = {all: chosen.length};
    for (const k of ["worse", "better", "same", "base_only", "new_only", "unscored", "paired"])
      counts[k] = chosen.filter((x) => x.kind === k).length;
    const rows = p.kind === "all" ? chosen : chosen.filter((x) => x.kind === p.kind);
    const offset = Number(p.offset);
    return {comparison: all.comparison, error: all.error, total: rows.length, offset, counts,
            rows: rows.slice(offset, offset + Number(p.limit))};
  }
};

EV.api = (function () {
  const node = document.getElementById("evalkit-data");
  return node ? new EV.Embedded(node) : new EV.Served();
})();

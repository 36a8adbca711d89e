"use strict";
// Two runs of one eval side by side: compare's paired difference and interval (computed by
// `evalkit compare`'s code on the server side), the flips, the samples only one run scored.

EV.KIND_LABEL = {all: "all", worse: "flipped to wrong", better: "flipped to right", same: "unchanged",
  paired: "paired", base_only: "scored only in base", new_only: "scored only in new", unscored: "scored in neither"};

EV.pairs = {
  state: {pair: 0, kind: "all", q: "", offset: 0, limit: 100},
  page: null,

  async show(change) {
    Object.assign(this.state, change || {});
    const st = this.state;
    if (!this.page) {
      EV.clear(EV.$("#pairs-view")).append(EV.el("p", {class: "muted", id: "pairs-loading"},
        "Pairing the runs (evalkit compare's code reads both logs whole; seconds for 100,000 samples)…"));
      EV.tabs.show("pairs");
    }
    const ticket = this.ticket = (this.ticket || 0) + 1;
    let page;
    try { page = await EV.api.pairs({pair: st.pair, kind: st.kind, q: st.q, offset: st.offset, limit: st.limit}); }
    catch (err) { return EV.showError(err); }
    if (ticket !== this.ticket) return;           // a later request was made meanwhile: its answer counts
    this.page = page;
    this.render(page);
    EV.tabs.show("pairs");
  },

  render(page) {
    const meta = EV.meta.pairs[this.state.pair];
    const base = EV.meta.runs[meta.base], nw = EV.meta.runs[meta.new];
    const view = EV.clear(EV.$("#pairs-view"));
    if (EV.meta.pairs.length > 1) {
      const sel = EV.el("select", {id: "pair"});
      EV.meta.pairs.forEach((p) => sel.append(EV.el("option", {value: p.pair},
        `${p.eval}: ${EV.meta.runs[p.base].model} vs ${EV.meta.runs[p.new].model}`)));
      sel.value = String(this.state.pair);
      sel.addEventListener("change", () => this.show({pair: Number(sel.value), offset: 0}));
      view.append(sel);
    }
    view.append(EV.el("h2", {}, `${meta.eval}: ${base.model} (base) vs ${nw.model} (new)`),
      EV.el("div", {class: "muted"}, `base ${base.path} · new ${nw.path}`), this.summary(page));
    const filters = EV.el("div", {class: "filters", id: "pair-filters"});
    for (const k of Object.keys(EV.KIND_LABEL)) {
      if (k !== "all" && !page.counts[k] && k !== "worse" && k !== "better") continue;
      const b = EV.el("button", {"data-kind": k, class: k === this.state.kind ? "active" : ""},
        `${EV.KIND_LABEL[k]} `, EV.el("span", {class: "count"}, String(page.counts[k] || 0)));
      b.addEventListener("click", () => this.show({kind: k, offset: 0}));
      filters.append(b);
    }
    view.append(filters, this.table(page));
  },

  summary(page) {
    if (page.error) return EV.el("p", {class: "error-text", id: "compare-error"}, `compare: ${page.error}`);
    const c = page.comparison, o = c.overall, u = c.unpaired;
    const line = `${c.metric}: ${EV.num(o.base)} → ${EV.num(o.new)}, difference ${o.diff >= 0 ? "+" : ""}${EV.num(o.diff)} ` +
      `(95% CI ${EV.num(o.ci95[0])} to ${EV.num(o.ci95[1])}, p=${EV.num(o.p_value)}, ${o.test}) over ${c.paired} paired samples`;
    return EV.el("div", {id: "compare-summary"}, EV.el("p", {class: "diff"}, line),
      EV.el("p", {class: "muted"}, `flipped: ${c.flipped.worse_count} to wrong, ${c.flipped.better_count} to right · ` +
        `scored only in base ${u.base_only}, only in new ${u.new_only} · errors ${u.errors.base} in base, ${u.errors.new} in new · ` +
        `gate: ${c.gate.passed ? "passed" : "fails: " + c.gate.failures.join("; ")}`));
  },

  table(page) {
    const t = EV.el("table", {class: "rows", id: "pairs"}, EV.el("thead", {}, EV.el("tr", {},
      ...["id", "group", "base score", "new score", "kind"].map((h) => EV.el("th", {}, h)))));
    const body = EV.el("tbody");
    for (const p of page.rows) {
      const tr = EV.el("tr", {"data-id": p.id}, EV.el("td", {class: "id"}, p.id), EV.el("td", {}, p.group || ""),
        EV.el("td", {class: "base-score"}, p.base ? EV.num(p.base.score) : "absent"),
        EV.el("td", {class: "new-score"}, p.new ? EV.num(p.new.score) : "absent"),
        EV.el("td", {class: "kind"}, EV.flagSpan(p.kind)));
      tr.addEventListener("click", () => this.open(p));
      body.append(tr);
    }
    t.append(body);
    const pages = Math.max(1, Math.ceil(page.total / this.state.limit));
    const pager = EV.el("div", {class: "pager"});
    const prev = EV.el("button", {}, "prev"), next = EV.el("button", {}, "next");
    prev.addEventListener("click", () => this.show({offset: Math.max(0, this.state.offset - this.state.limit)}));
    next.addEventListener("click", () => { if (this.state.offset + this.state.limit < page.total) this.show({offset: this.state.offset + this.state.limit}); });
    pager.append(prev, EV.el("span", {}, `page ${Math.floor(page.offset / this.state.limit) + 1} of ${pages} · ${page.total} pair(s)`), next);
    return EV.el("div", {}, pager, t);
  },

  async open(p) {
    const meta = EV.meta.pairs[this.state.pair];
    const view = EV.clear(EV.$("#sample-view"));
    const back = EV.el("button", {id: "back"}, "← back to the pairs (esc)");
    back.addEventListener("click", () => EV.tabs.show("pairs"));
    const sides = EV.el("div", {class: "sides"});
    for (const [label, run, row] of [["base", meta.base, p.base], ["new", meta.new, p.new]]) {
      const col = EV.el("div", {class: "side " + label}, EV.el("h3", {}, `${label}: ${EV.meta.runs[run].model}`));
      if (row) col.append(EV.detail.render(await EV.api.sample(run, row.n), EV.meta.runs[run]));
      else col.append(EV.el("p", {class: "muted"}, "this run has no line for this sample"));
      sides.append(col);
    }
    view.append(back, EV.el("div", {class: "muted"}, EV.KIND_LABEL[p.kind]), sides);
    EV.tabs.from = "pairs";
    EV.tabs.show("sample");
  },
};

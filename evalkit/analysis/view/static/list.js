"use strict";
// The sample list: filters with their counts, group, free-text search, sorting, pages, keyboard.

EV.list = {
  state: {run: 0, filter: "all", group: "", q: "", sort: "line", desc: false, offset: 0, limit: 100},
  page: null,
  selected: 0,

  init(meta) {
    const runSel = EV.$("#run");
    meta.runs.forEach((r) => runSel.append(EV.el("option", {value: r.run},
      `${r.eval} · ${r.model} · ${r.samples.toLocaleString("en")} samples`)));
    runSel.addEventListener("change", () => this.show({run: Number(runSel.value), group: "", offset: 0}));
    EV.$("#group").addEventListener("change", (e) => this.show({group: e.target.value, offset: 0}));
    EV.$("#sort").addEventListener("change", (e) => this.show({sort: e.target.value, offset: 0}));
    EV.$("#desc").addEventListener("change", (e) => this.show({desc: e.target.checked, offset: 0}));
    let timer = null;
    EV.$("#search").addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => this.show({q: e.target.value, offset: 0}), 250);
    });
    EV.$("#search").addEventListener("keydown", (e) => {
      if (e.key === "Enter") { clearTimeout(timer); this.show({q: e.target.value, offset: 0}); e.target.blur(); }
    });
    EV.$("#first").addEventListener("click", () => this.show({offset: 0}));
    EV.$("#prev").addEventListener("click", () => this.show({offset: Math.max(0, this.state.offset - this.state.limit)}));
    EV.$("#next").addEventListener("click", () => this.nextPage());
    EV.$("#last").addEventListener("click", () => {
      const total = this.page ? this.page.total : 0;
      this.show({offset: Math.max(0, Math.floor((total - 1) / this.state.limit) * this.state.limit)});
    });
  },

  nextPage() {
    if (this.page && this.state.offset + this.state.limit < this.page.total)
      return this.show({offset: this.state.offset + this.state.limit});
  },

  runInfo(run) {
    const s = run.summary;
    const head = s ? `the log's summary: ${s.status}, ${s.metric} ${EV.num(s.value)}` +
      (s.ci95 ? ` [${EV.num(s.ci95[0])}, ${EV.num(s.ci95[1])}]` : "") : "no summary line (an unfinished run)";
    return `${run.path} · ${head}` + (run.superseded ? ` · ${run.superseded} sample line(s) superseded by a later line` : "");
  },

  async show(change, keepSelection) {
    const prevRun = this.state.run;
    Object.assign(this.state, change || {});
    const run = EV.meta.runs[this.state.run];
    if (!run) return;
    EV.$("#run").value = String(this.state.run);
    if (prevRun !== this.state.run || !EV.$("#group").options.length) this.fillGroups(run);
    EV.$("#run-info").textContent = this.runInfo(run);
    const st = this.state;
    const params = {run: st.run, filter: st.filter, group: st.group, q: st.q, sort: st.sort,
                    desc: st.desc ? "1" : "0", offset: st.offset, limit: st.limit};
    const ticket = this.ticket = (this.ticket || 0) + 1;
    let page;
    try { page = await EV.api.samples(params); } catch (err) { return EV.showError(err); }
    if (ticket !== this.ticket) return;           // a later request was made meanwhile: its answer counts
    this.page = page;
    if (!keepSelection) this.selected = 0;
    this.renderFilters(page.counts);
    this.renderRows(page);
    EV.tabs.show("list");
  },

  fillGroups(run) {
    const sel = EV.clear(EV.$("#group"));
    sel.append(EV.el("option", {value: ""}, `all groups (${run.groups.length})`));
    run.groups.forEach((g) => sel.append(EV.el("option", {value: g}, g)));
    sel.value = this.state.group;
  },

  renderFilters(counts) {
    const box = EV.clear(EV.$("#filters"));
    for (const f of ["all", ...EV.meta.filters]) {
      const b = EV.el("button", {"data-filter": f, class: f === this.state.filter ? "active" : ""},
        `${f} `, EV.el("span", {class: "count"}, (counts[f] || 0).toLocaleString("en")));
      b.addEventListener("click", () => this.show({filter: f, offset: 0}));
      box.append(b);
    }
  },

  renderRows(page) {
    const body = EV.clear(EV.$("#samples tbody"));
    page.rows.forEach((r, i) => {
      const tr = EV.el("tr", {"data-n": r.n, class: i === this.selected ? "selected" : ""},
        EV.el("td", {class: "n"}, String(page.offset + i + 1)), EV.el("td", {class: "id", title: r.id}, r.id),
        EV.el("td", {class: "group"}, r.group || ""), EV.el("td", {class: "score"}, EV.num(r.score)),
        EV.el("td", {class: "flags"}, ...r.flags.map(EV.flagSpan)),
        EV.el("td", {}, EV.num(r.time_s, 2)), EV.el("td", {}, String(r.tokens)), EV.el("td", {}, EV.cost(r.cost)),
        EV.el("td", {class: "line"}, String(r.line)));
      tr.addEventListener("click", () => { this.selected = i; this.open(); });
      body.append(tr);
    });
    const pages = Math.max(1, Math.ceil(page.total / this.state.limit));
    const at = Math.floor(page.offset / this.state.limit) + 1;
    EV.$("#page-info").textContent =
      `page ${at} of ${pages} · ${page.total.toLocaleString("en")} sample(s)` + (page.total ? ` · ${page.offset + 1}-${page.offset + page.rows.length}` : "");
  },

  move(step) {
    if (!this.page || !this.page.rows.length) return;
    const next = this.selected + step;
    if (next >= this.page.rows.length) { if (this.page.offset + this.state.limit < this.page.total) this.nextPage(); return; }
    if (next < 0) {
      if (this.state.offset > 0) this.show({offset: this.state.offset - this.state.limit}).then(() => this.select(this.page.rows.length - 1));
      return;
    }
    this.select(next);
  },

  select(i) {
    const rows = EV.$("#samples tbody").children;
    if (rows[this.selected]) rows[this.selected].classList.remove("selected");
    this.selected = i;
    if (rows[i]) { rows[i].classList.add("selected"); rows[i].scrollIntoView({block: "nearest"}); }
  },

  open() {
    const r = this.page && this.page.rows[this.selected];
    if (r) EV.detail.open(this.state.run, r.n);
  },
};

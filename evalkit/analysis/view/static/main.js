"use strict";
// Start: read what is shown, build the tabs, say which log lines could not be read, wire the keys.

EV.tabs = {
  names: {list: "#list-view", sample: "#sample-view", pairs: "#pairs-view", exams: "#exam-view"},
  current: "list",
  from: "list",
  show(name) {
    if (name === "list" || name === "pairs" || name === "exams") this.from = name;
    this.current = name;
    for (const [k, sel] of Object.entries(this.names)) EV.$(sel).hidden = k !== name;
    for (const b of EV.$("#tabs").children) b.classList.toggle("active", b.dataset.tab === name);
  },
  build(meta) {
    const nav = EV.$("#tabs");
    const add = (tab, label, go) => {
      const b = EV.el("button", {"data-tab": tab}, label);
      b.addEventListener("click", go);
      nav.append(b);
    };
    add("list", "samples", () => EV.list.show());
    if (meta.pairs.length) add("pairs", `compare (${meta.pairs.length})`, () => EV.pairs.show());
    if (meta.exams.length) add("exams", `exams (${meta.exams.length})`, () => EV.exam.show());
  },
};

EV.showError = function (err) {
  const box = EV.$("#problems");
  box.hidden = false;
  box.append(EV.el("div", {class: "error-text"}, `error: ${err.message || err}`));
};

EV.showBadLines = function (meta) {
  const bad = meta.runs.filter((r) => r.bad_lines.length);
  if (!bad.length) return;
  const box = EV.$("#problems");
  box.hidden = false;
  for (const r of bad) {
    const list = EV.el("ul", {class: "bad-lines", "data-run": r.run});
    r.bad_lines.slice(0, 50).forEach((b) => list.append(EV.el("li", {}, `line ${b.line}: ${b.reason}`)));
    box.append(EV.el("div", {}, `${r.path}: ${r.bad_count} line(s) could not be read and are not shown:`), list);
    if (r.bad_count > 50) box.append(EV.el("div", {}, `… and ${r.bad_count - 50} more`));
  }
};

EV.keys = function (e) {
  const typing = e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT");
  if (e.key === "Escape") {
    if (typing) { e.target.blur(); return; }
    if (EV.tabs.current === "sample") EV.tabs.show(EV.tabs.from);
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "/") { e.preventDefault(); EV.list.show().then(() => EV.$("#search").focus()); return; }
  if (EV.tabs.current !== "list") return;
  if (e.key === "j") EV.list.move(1);
  else if (e.key === "k") EV.list.move(-1);
  else if (e.key === "Enter") EV.list.open();
};

(async function start() {
  try { EV.meta = await EV.api.meta(); } catch (err) { return EV.showError(err); }
  EV.tabs.build(EV.meta);
  EV.showBadLines(EV.meta);
  EV.list.init(EV.meta);
  document.addEventListener("keydown", EV.keys);
  if (EV.meta.runs.length) await EV.list.show({run: 0});
  else if (EV.meta.exams.length) EV.exam.show();
  document.body.dataset.ready = "1";
})();

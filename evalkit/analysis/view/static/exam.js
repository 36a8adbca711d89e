"use strict";
// An exam run's chain: each section's items -> raw score -> composite -> scaled score -> percentile,
// every step linked to the sample list of the items behind it.

EV.exam = {
  show() {
    const view = EV.clear(EV.$("#exam-view"));
    EV.meta.exams.forEach((e, i) => view.append(this.render(e, i)));
    EV.tabs.show("exams");
  },

  itemsLink(run, label) {
    if (run === null || run === undefined) return EV.el("span", {class: "muted"}, "items: log not found");
    const b = EV.el("button", {class: "link items"}, label);
    b.addEventListener("click", () => EV.list.show({run, filter: "all", group: "", q: "", offset: 0}));
    return b;
  },

  // A step computed from every section: a link to each section's items.
  allItems(e) {
    const box = EV.el("div", {class: "all-items"}, "items: ");
    e.sections.forEach((s, i) => box.append(i ? " · " : "", this.itemsLink(s.run, s.name)));
    return box;
  },

  step(title, value, detail, link) {
    return EV.el("div", {class: "step"}, EV.el("div", {class: "muted"}, title),
      EV.el("div", {class: "value"}, value), EV.el("div", {class: "muted"}, detail || ""), link || "");
  },

  render(e, i) {
    const box = EV.el("div", {class: "exam", "data-exam": e.exam});
    box.append(EV.el("h2", {}, `${e.title || e.exam} · ${e.model || "?"}` + (e.incomplete ? " (incomplete)" : "")),
      EV.el("div", {class: "muted"}, e.file));
    const t = EV.el("table", {class: "rows sections"}, EV.el("thead", {}, EV.el("tr", {},
      ...["section", "items scored", "correct", "wrong", "blank", "errors", "accuracy", "raw on a form", "section scaled", ""]
        .map((h) => EV.el("th", {}, h)))));
    const body = EV.el("tbody");
    for (const s of e.sections) {
      body.append(EV.el("tr", {"data-section": s.name}, EV.el("td", {}, s.name), EV.el("td", {}, EV.num(s.n)),
        EV.el("td", {}, EV.num(s.correct)), EV.el("td", {}, EV.num(s.wrong)), EV.el("td", {}, EV.num(s.blank)),
        EV.el("td", {}, EV.num(s.errors)), EV.el("td", {}, EV.num(s.accuracy)),
        EV.el("td", {}, `${EV.num(s.raw)} / ${EV.num(s.max_raw)}`), EV.el("td", {}, EV.num(s.scaled)),
        EV.el("td", {}, this.itemsLink(s.run, `${EV.num(s.n)} items`))));
    }
    t.append(body);
    const names = e.sections.map((s) => s.name).join(" + ");
    const scale = e.scale || {};
    const chain = EV.el("div", {class: "chain"},
      this.step("sections", `${e.sections.length} section(s)`, names, this.allItems(e)), EV.el("span", {class: "arrow"}, "→"),
      this.step("composite", `${EV.num(e.composite)} / ${EV.num(e.composite_max)}`, "weighted section scores", this.allItems(e)),
      EV.el("span", {class: "arrow"}, "→"),
      this.step("scaled", EV.num(e.scaled), (e.scaled_ci95 ? `95% CI ${EV.num(e.scaled_ci95[0])}-${EV.num(e.scaled_ci95[1])} · ` : "") +
        `${EV.num(scale.min)}-${EV.num(scale.max)} ${scale.unit || ""}`, this.allItems(e)),
      EV.el("span", {class: "arrow"}, "→"),
      this.step("percentile", e.percentile || "–", e.percentile_ci95 ? `95% CI ${e.percentile_ci95.join(" to ")}` : "", this.allItems(e)));
    box.append(chain, t);
    for (const n of e.notes) box.append(EV.el("p", {class: "muted"}, String(n)));
    return box;
  },
};

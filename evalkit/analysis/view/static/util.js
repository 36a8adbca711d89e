"use strict";
// evalkit view: helpers. Log data only ever becomes text nodes (textContent), never markup.
const EV = {};

// el("td", {class: "id"}, "text", child): an element; strings become text nodes.
EV.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) throw new Error("no inline handlers");
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
};

EV.clear = function (node) { node.replaceChildren(); return node; };
EV.$ = (sel) => document.querySelector(sel);

EV.num = function (x, digits) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? String(x) : x.toFixed(digits === undefined ? 4 : digits);
};

EV.cost = (x) => (typeof x === "number" ? "$" + x.toFixed(6) : "–");

EV.SHOW_CHARS = 100000;   // longer texts show their start and a button for the rest

// A block of log text: shown as text, long ones cut with a button to show all of it.
EV.textBlock = function (text, cls) {
  const s = typeof text === "string" ? text : JSON.stringify(text, null, 1);
  const pre = EV.el("pre", {class: "text " + (cls || "")});
  const wrap = EV.el("div", {}, pre);
  if (s.length <= EV.SHOW_CHARS) { pre.textContent = s; return wrap; }
  pre.textContent = s.slice(0, EV.SHOW_CHARS);
  const more = EV.el("button", {class: "link show-all"}, `show all ${s.length.toLocaleString("en")} characters`);
  more.addEventListener("click", () => { pre.textContent = s; more.remove(); note.remove(); });
  const note = EV.el("div", {class: "bigtext"},
    `${s.length.toLocaleString("en")} characters; the first ${EV.SHOW_CHARS.toLocaleString("en")} are shown. `);
  wrap.append(note, more);
  return wrap;
};

EV.flagSpan = (name) => EV.el("span", {class: "flag " + name}, name);

EV.kv = function (pairs) {
  const t = EV.el("table", {class: "kv"});
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    t.append(EV.el("tr", {}, EV.el("th", {}, k), EV.el("td", {"data-key": k}, v instanceof Node ? v : EV.num(v))));
  }
  return t;
};

// The text the free-text search looks in (as evalkit/analysis/view/index.py sample_text does).
EV.sampleText = function (rec) {
  const parts = [rec.target, rec.completion, rec.raw_completion];
  for (const m of rec.messages || []) {
    const c = m && m.content;
    if (typeof c === "string") parts.push(c);
    else if (Array.isArray(c)) for (const p of c) if (p && typeof p.text === "string") parts.push(p.text);
  }
  return parts.filter((p) => typeof p === "string").join("\n");
};

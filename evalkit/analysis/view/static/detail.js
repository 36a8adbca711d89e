"use strict";
// One sample: the messages as the model saw them, its reply and thinking, how it was scored, and how
// the request went. Everything from the log is shown as text.

EV.IMAGE_TYPES = /^image\/(png|jpeg|gif|webp)$/;
EV.BASE64 = /^[A-Za-z0-9+/=\s]*$/;

EV.detail = {
  async open(run, n) {
    let rec;
    try { rec = await EV.api.sample(run, n); } catch (err) { return EV.showError(err); }
    const view = EV.clear(EV.$("#sample-view"));
    const back = EV.el("button", {id: "back"}, "← back to the list (esc)");
    back.addEventListener("click", () => EV.tabs.show(EV.tabs.from || "list"));
    view.append(back, this.render(rec, EV.meta.runs[run]));
    EV.tabs.show("sample");
    window.scrollTo(0, 0);
  },

  render(rec, run) {
    const box = EV.el("div", {class: "sample", "data-id": rec.id});
    box.append(EV.el("h2", {class: "sample-id"}, rec.id),
      EV.el("div", {class: "muted"}, `${run.eval} · ${run.model} · line ${rec.line}` + (rec.group ? ` · group ${rec.group}` : "")));
    box.append(EV.el("h3", {}, "Score"), this.scoring(rec, run));
    if (rec.error) box.append(EV.el("h3", {}, "Error"), EV.textBlock(rec.error, "error-text"));
    box.append(EV.el("h3", {}, "Reply"), rec.completion === null ? EV.el("div", {class: "muted"}, "no reply")
      : EV.textBlock(rec.completion, "reply"));
    if (rec.raw_completion !== null && rec.raw_completion !== undefined)
      box.append(EV.el("h3", {}, "Reply as received (before stops and thinking were cut)"), EV.textBlock(rec.raw_completion, "raw"));
    if (typeof rec.reasoning === "string") box.append(EV.el("h3", {}, "Thinking"), EV.textBlock(rec.reasoning, "thinking"));
    else if (rec.reasoning_chars) box.append(EV.el("h3", {}, "Thinking"),
      EV.el("div", {class: "muted"}, `${rec.reasoning_chars} characters, not logged (run with --log-reasoning to keep them)`));
    if (rec.grader) box.append(this.grader(rec.grader));
    box.append(EV.el("h3", {}, "Prompt"), this.messages(rec));
    box.append(EV.el("h3", {}, "Request"), this.request(rec));
    for (const k of ["extras", "option_probs", "top_logprobs"])
      if (rec[k]) box.append(EV.el("h3", {}, k), EV.textBlock(JSON.stringify(rec[k], null, 1), k));
    return box;
  },

  scoring(rec, run) {
    const verdict = run.scorer === "code" ? "sandbox verdict" : "extracted answer";
    return EV.kv([
      ["score", EV.num(rec.score)],
      ["flags", EV.el("span", {}, ...(rec.flags || []).map(EV.flagSpan))],
      [verdict, rec.extracted === null ? "–" : String(rec.extracted)],
      ["parsed", rec.parsed === null ? "–" : String(rec.parsed)],
      ["target", rec.target === null ? "–" : String(rec.target)],
      ["finish reason", rec.finish_reason || "–"],
      ["truncated", rec.truncated ? String(rec.truncated) : undefined],
    ]);
  },

  grader(g) {
    const box = EV.el("div", {class: "grader"}, EV.el("h3", {}, "Grader"));
    box.append(EV.kv([["grader", String(g.grader)], ["eval type", String(g.eval_type)],
      ["choice", g.choice === null ? "none (invalid grade)" : String(g.choice)], ["valid", String(g.valid)]]));
    if (Array.isArray(g.messages)) {
      const d = EV.el("details", {class: "grader-prompt"}, EV.el("summary", {}, `the grader's prompt (${g.messages.length} message(s))`));
      g.messages.forEach((m) => d.append(this.message(m)));
      box.append(d);
    }
    box.append(EV.el("div", {class: "muted"}, "the grader's reply"), EV.textBlock(g.reply === undefined ? "" : g.reply, "grader-reply"));
    return box;
  },

  messages(rec) {
    if (rec.messages !== null && rec.messages !== undefined && !Array.isArray(rec.messages))
      return EV.textBlock(JSON.stringify(rec.messages), "content");     // not a list of messages: shown as logged
    const msgs = Array.isArray(rec.messages) ? rec.messages : null;
    if (!msgs) return EV.el("div", {class: "muted"}, "The prompt was not logged (run with --log-prompts to keep it); " +
      `its sha256 starts ${rec.messages_sha256 || "–"}.`);
    const box = EV.el("div", {class: "messages"});
    let lastUser = -1;
    msgs.forEach((m, i) => { if (m && m.role === "user") lastUser = i; });
    const start = msgs.length && msgs[0] && msgs[0].role === "system" ? 1 : 0;
    if (start) box.append(this.message(msgs[0]));
    if (lastUser > start) {
      const shots = EV.el("details", {class: "fewshot"},
        EV.el("summary", {}, `${lastUser - start} few-shot turn(s)`));
      msgs.slice(start, lastUser).forEach((m) => shots.append(this.message(m)));
      box.append(shots);
    }
    msgs.slice(Math.max(start, lastUser)).forEach((m) => box.append(this.message(m)));
    return box;
  },

  message(m) {
    const role = m && typeof m.role === "string" ? m.role : "?";
    const box = EV.el("div", {class: "msg " + role.replace(/[^a-z]/g, "")}, EV.el("div", {class: "role"}, role));
    const c = m ? m.content : null;
    if (typeof c === "string") box.append(EV.textBlock(c, "content"));
    else if (Array.isArray(c)) c.forEach((p) => box.append(this.part(p)));
    else box.append(EV.textBlock(JSON.stringify(c), "content"));
    return box;
  },

  part(p) {
    if (p && typeof p.text === "string") return EV.textBlock(p.text, "content");
    if (p && p.type === "image" && EV.IMAGE_TYPES.test(String(p.media_type)) && typeof p.data === "string" && EV.BASE64.test(p.data))
      return EV.el("img", {src: `data:${p.media_type};base64,${p.data.replace(/\s/g, "")}`, alt: "image in the prompt"});
    const url = p && p.image_url && p.image_url.url;
    if (typeof url === "string" && /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]*$/.test(url))
      return EV.el("img", {src: url, alt: "image in the prompt"});
    return EV.textBlock(JSON.stringify(p), "content");
  },

  request(rec) {
    const u = rec.usage && typeof rec.usage === "object" ? rec.usage : {};
    return EV.kv([
      ["attempts", rec.attempts], ["model seconds", EV.num(rec.model_s, 3)], ["queue seconds", EV.num(rec.queue_s, 3)],
      ["cached", String(rec.cached)], ["cost", EV.cost(rec.cost_usd)],
      ["prompt tokens", u.prompt_tokens], ["completion tokens", u.completion_tokens],
      ["reasoning tokens", u.reasoning_tokens], ["cached tokens", u.cached_tokens],
      ["completion of", rec.sample_id || undefined], ["prompt sha256", rec.messages_sha256 || "–"],
    ]);
  },
};

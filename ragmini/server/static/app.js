// ragmini's page: plain JavaScript over the same /api/ endpoints a script would use.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};
// A hit or a source as a citation names it: "report.pdf p. 7-8", or the doc id alone.
const cite = (h) => (h.location ? `${h.doc_id} ${h.location}` : h.doc_id);

// ---- API --------------------------------------------------------------------
function headers(extra = {}) {
  const token = sessionStorage.getItem("ragmini-token");
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (res.status === 401 && askToken()) return api(path, options);
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error?.message || `${res.status} ${res.statusText}`);
  return body;
}

function askToken() {
  const token = prompt("This server needs its access token:");
  if (!token) return false;
  sessionStorage.setItem("ragmini-token", token);
  return true;
}

function setState(id, text, error = false) {
  const node = $(`#${id}-state`);
  node.textContent = text;
  node.classList.toggle("error", error);
}

async function busy(id, button, work) {
  button.disabled = true;
  try { await work(); } catch (err) { setState(id, err.message, true); } finally { button.disabled = false; }
}

// ---- tabs -------------------------------------------------------------------
const tabs = [...document.querySelectorAll('[role="tab"]')];
function show(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    $(`#${t.getAttribute("aria-controls")}`).hidden = !on;
  }
  history.replaceState(null, "", `#${tab.getAttribute("aria-controls")}`);
  if (tab.id === "tab-documents") loadDocuments();
  if (tab.id === "tab-evals") loadHistory();
}
tabs.forEach((t, i) => {
  t.addEventListener("click", () => show(t));
  t.addEventListener("keydown", (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (step) { const next = tabs[(i + step + tabs.length) % tabs.length]; next.focus(); show(next); }
  });
});

// ---- shared rendering -----------------------------------------------------------
const words = (q) => [...new Set(q.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || [])];

function highlighted(text, query) {
  const frag = document.createDocumentFragment();
  const terms = words(query);
  if (!terms.length) { frag.append(text); return frag; }
  const re = new RegExp(`(${terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
  let last = 0;
  for (const m of text.matchAll(re)) {
    frag.append(text.slice(last, m.index), el("mark", { text: m[0] }));
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

// "type=md, tags=faiss" -> ["type=md", "tags=faiss"]: the --where conditions, all must hold.
const whereOf = (text) => text.split(",").map((w) => w.trim()).filter(Boolean);

const snippet = (text, n = 420) => (text.length > n ? `${text.slice(0, n).replace(/\s\S*$/, "")} …` : text);

// ---- search -----------------------------------------------------------------
$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("#search-q").value, method = $("#search-method").value, k = $("#search-k").value;
  const params = new URLSearchParams({ q, method, k });
  for (const w of whereOf($("#search-where").value)) params.append("where", w);
  busy("search", $("#search-form button"), async () => {
    setState("search", "searching…");
    const body = await api(`/api/search?${params}`);
    const list = $("#search-results");
    list.replaceChildren(...body.hits.map((h) => el("li", { "data-chunk": h.chunk_id },
      el("div", { class: "meta", text: `${h.score.toFixed(3)} · ${cite(h)} · ${h.title} · ${h.source}` }),
      el("p", { class: "passage" }, highlighted(h.text, q)))));
    setState("search", body.hits.length ? `${body.hits.length} chunks by ${body.method}` : "nothing found");
  });
});

// ---- compare ----------------------------------------------------------------
// The store's own methods (from /api/status) and the hybrids over them; these until it answers.
let COMPARE = ["glove", "sbert", "bm25", "hybrid"];
const colour = (id) => `hsl(${(id * 137.508) % 360} 70% 55%)`;

$("#compare-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("#compare-q").value, k = Number($("#compare-k").value);
  busy("compare", $("#compare-form button"), async () => {
    await statusLoaded;  // the columns are the store's methods
    setState("compare", "ranking with every method…");
    const body = await api("/api/compare", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ q, k, methods: COMPARE }) });
    const shared = new Map(body.overlap.map((o) => [o.chunk_id, o.ranks]));
    const columns = COMPARE.map((m) => {
      const r = body.methods[m];
      const cards = r.hits.map((h) => {
        const ranks = shared.get(h.chunk_id);
        const others = ranks ? Object.entries(ranks).filter(([n]) => n !== m).map(([n, rk]) => `${n} #${rk}`).join(", ") : "";
        return el("div", { class: "card", tabindex: "0", "data-chunk": h.chunk_id, style: `--c: ${ranks ? colour(h.chunk_id) : "#ccd"}`,
            onmouseenter: () => light(h.chunk_id, true), onmouseleave: () => light(h.chunk_id, false),
            onfocus: () => light(h.chunk_id, true), onblur: () => light(h.chunk_id, false) },
          el("div", { class: "meta", text: `#${h.rank} · ${h.score.toFixed(3)} · ${cite(h)}` }),
          el("div", { class: "ranks", text: others ? `also: ${others}` : "only here" }),
          el("p", { class: "snippet" }, highlighted(snippet(h.text, 260), q)));
      });
      return el("div", { class: "column", "data-method": m }, el("h3", { text: m }),
        r.error ? el("p", { class: "state error", text: r.error.message }) : "", ...cards);
    });
    $("#compare-columns").replaceChildren(...columns);
    setState("compare", `${body.overlap.length} chunks found by more than one method`);
  });
});

function light(chunk, on) {
  document.querySelectorAll(`#compare-columns [data-chunk="${chunk}"]`).forEach((c) => c.classList.toggle("lit", on));
}

// ---- ask --------------------------------------------------------------------
$("#ask-advanced-toggle").addEventListener("click", (e) => {
  const box = $("#ask-advanced");
  box.hidden = !box.hidden;
  e.target.setAttribute("aria-expanded", String(!box.hidden));
});

$("#ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const seed = $("#ask-seed").value;
  const request = {
    question: $("#ask-q").value, generator: $("#ask-generator").value, k: Number($("#ask-k").value),
    strict: $("#ask-strict").checked, abstain: $("#ask-abstain").checked,
    temperature: Number($("#ask-temperature").value), top_p: Number($("#ask-top-p").value),
    top_k: Number($("#ask-top-k").value), max_new_tokens: Number($("#ask-max").value),
    seed: seed === "" ? null : Number(seed), where: whereOf($("#ask-where").value),
  };
  const answer = $("#ask-answer");
  answer.replaceChildren();
  $("#ask-summary").textContent = "";
  $("#ask-sources").replaceChildren();
  busy("ask", $("#ask-form button[type=submit]"), async () => {
    setState("ask", "retrieving and writing… (the first answer loads the model)");
    const res = await fetch("/api/ask", { method: "POST", body: JSON.stringify(request),
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }) });
    if (res.status === 401 && askToken()) return $("#ask-form").requestSubmit();
    if (!res.ok) { const b = await res.json(); throw new Error(b.error?.message || res.statusText); }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] || "null");
        if (event === "token") answer.append(data.text);
        else if (event === "done") { renderAnswer(data); setState("ask", `answered by ${data.generator}`); }
        else if (event === "error") throw new Error(data.error.message);
      }
    }
  });
});

function renderAnswer(body) {
  const answer = $("#ask-answer");
  if (body.abstained) {
    answer.replaceChildren(el("p", { class: "abstained", text:
      `${body.answer} (confidence the documents hold an answer: ${body.abstain_score.toFixed(2)}, below ${body.abstain_threshold.toFixed(2)}). The closest sources are below.` }));
  } else if (body.sentences.length) {
    answer.replaceChildren(...body.sentences.map((s) => {
      const label = s.support.label;
      const title = label === "supported" ? `supported by [${s.support.source_id}]`
        : `${label}: nearest source sentence: “${s.support.source_sentence}” (score ${s.support.score.toFixed(2)})`;
      return el("span", { class: `sentence ${label}`, title, "data-support": label }, ...cited(s.text));
    }));
    const supported = body.sentences.filter((s) => s.support.label === "supported").length;
    $("#ask-summary").textContent = `${supported} of ${body.sentences.length} sentences supported by the sources`
      + (body.notes.length ? ` · ${body.notes.join(" · ")}` : "");
  } else {
    answer.replaceChildren(...cited(body.answer || "(no text)"));
  }
  $("#ask-sources").replaceChildren(...body.sources.map((s) => el("li", { id: `src-${s.n}` },
    el("details", {}, el("summary", { text: `[${s.n}] ${cite(s)} · ${s.title}${body.citations.includes(s.n) ? " (cited)" : ""}` }),
      el("p", { class: "passage", text: s.text || "" })))));
}

function cited(text) {
  // [n] becomes a link that opens source n.
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    parts.push(text.slice(last, m.index));
    const n = m[1];
    parts.push(el("a", { class: "cite", href: `#src-${n}`, text: m[0], onclick: (e) => {
      e.preventDefault();
      const item = $(`#src-${n}`);
      if (item) { item.querySelector("details").open = true; item.scrollIntoView({ block: "nearest" }); item.classList.add("lit"); setTimeout(() => item.classList.remove("lit"), 1500); }
    } }));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

// ---- documents --------------------------------------------------------------
let docOffset = 0;
const PAGE = 25;

async function loadDocuments() {
  try {
    $("#documents-page").textContent = "loading…";  // the state line keeps the last action's result
    const body = await api(`/api/documents?offset=${docOffset}&limit=${PAGE}`);
    $("#documents-table tbody").replaceChildren(...body.documents.map((d) => el("tr", { "data-doc": d.doc_id },
      el("td", { text: d.doc_id }), el("td", { text: d.title }), el("td", { class: "num", text: d.chunks }),
      el("td", { text: d.ingested_at.replace("T", " ").replace("+00:00", "") }),
      el("td", {}, el("button", { type: "button", class: "link", text: "delete", "aria-label": `delete ${d.doc_id}`,
        onclick: () => removeDocument(d.doc_id) })))));
    $("#documents-page").textContent = `${body.total ? docOffset + 1 : 0}–${docOffset + body.documents.length} of ${body.total}`;
    $("#documents-prev").disabled = docOffset === 0;
    $("#documents-next").disabled = docOffset + PAGE >= body.total;
  } catch (err) { setState("documents", err.message, true); }
}
$("#documents-prev").addEventListener("click", () => { docOffset = Math.max(0, docOffset - PAGE); loadDocuments(); });
$("#documents-next").addEventListener("click", () => { docOffset += PAGE; loadDocuments(); });

async function removeDocument(docId) {
  if (!confirm(`Remove ${docId} from the store?`)) return;
  try {
    setState("documents", `removing ${docId}…`);
    await api(`/api/documents/${encodeURIComponent(docId)}`, { method: "DELETE" });
    setState("documents", `removed ${docId}`);
    await loadDocuments();
  } catch (err) { setState("documents", err.message, true); }
}

function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f);
  const bar = $("#upload-progress");
  bar.hidden = false; bar.value = 0;
  setState("documents", `uploading ${files.length} file(s)…`);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/documents");
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  xhr.upload.onload = () => setState("documents", "ingesting and embedding…");
  xhr.onload = () => {
    bar.hidden = true;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status >= 400) return setState("documents", body?.error?.message || xhr.statusText, true);
    setState("documents", body.files.map((f) => `${f.file}: ${f.status}${f.reason ? ` (${f.reason})` : ""}`).join("; "));
    loadDocuments();
  };
  xhr.onerror = () => { bar.hidden = true; setState("documents", "upload failed", true); };
  xhr.send(form);
}
$("#upload-input").addEventListener("change", (e) => upload([...e.target.files]));
const drop = $("#drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload([...e.dataTransfer.files]); });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#upload-input").click(); } });

// ---- evals ------------------------------------------------------------------
$("#eval-run").addEventListener("click", () => busy("eval", $("#eval-run"), async () => {
  setState("eval", "evaluating every method on the labelled queries…");
  let job = await api("/api/eval", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  while (job.state === "queued" || job.state === "running") {
    await new Promise((r) => setTimeout(r, 700));
    job = await api(`/api/eval/${job.id}`);
  }
  if (job.state === "failed") throw new Error(job.error.message);
  renderEval(job);
  setState("eval", `done: ${job.result.n_queries} queries`);
  loadHistory();
}));

function renderEval(job) {
  const r = job.result;
  const metrics = Object.keys(Object.values(r.methods)[0]);
  const table = el("table", { id: "eval-table" },
    el("thead", {}, el("tr", {}, el("th", { text: "method" }), ...metrics.map((m) => el("th", { class: "num", text: m })))),
    el("tbody", {}, ...Object.entries(r.methods).map(([name, m]) => el("tr", {}, el("td", { text: name }),
      ...metrics.map((k) => el("td", { class: "num", text: m[k].toFixed(3) }))))));
  const significant = r.comparisons.filter((c) => c.significant).map((c) =>
    el("li", { text: `${c.b} − ${c.a} on ${c.metric}: ${c.delta >= 0 ? "+" : ""}${c.delta.toFixed(3)} (Holm p ${c.p_holm.toFixed(4)})` }));
  $("#eval-result").replaceChildren(table,
    el("p", { class: "muted", text: significant.length ? "Significant differences:" : "No difference is significant." }),
    el("ul", {}, ...significant),
    job.plot ? el("img", { src: job.plot, alt: "recall@k per method" }) : "");
}

async function loadHistory() {
  try {
    const body = await api("/api/eval/history");
    $("#eval-history tbody").replaceChildren(...body.runs.map((r) => el("tr", {},
      el("td", { text: r.id }), el("td", { text: r.ran_at.replace("T", " ").replace("+00:00", "") }),
      el("td", { class: "num", text: r.n_queries }),
      el("td", { text: Object.entries(r.metrics).map(([m, v]) => `${m} ${(v["recall@10"] ?? NaN).toFixed(3)}`).join(", ") }))));
  } catch (err) { setState("eval", err.message, true); }
}

// ---- start ------------------------------------------------------------------
const statusLoaded = (async () => {
  const start = tabs.find((t) => `#${t.getAttribute("aria-controls")}` === location.hash) || tabs[0];
  show(start);
  try {
    const s = await api("/api/status");
    $("#store-line").textContent = `${s.documents} documents · ${s.chunks} chunks · ${s.methods.map((m) => m.method).join(", ")}`;
    const indexed = s.methods.map((m) => m.method);
    const fused = indexed.includes("bm25") && indexed.includes("sbert") ? ["hybrid", "hybrid-rrf"] : [];
    COMPARE = [...indexed, ...fused].slice(0, 8);
    const pick = $("#search-method"), current = pick.value;
    pick.replaceChildren(...COMPARE.map((m) => el("option", { text: m })));
    pick.value = COMPARE.includes(current) ? current : COMPARE[0];
  } catch (err) { $("#store-line").textContent = err.message; }
})();

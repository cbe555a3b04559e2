// ragmini's page: plain JavaScript over the same /api/ endpoints a script would use.
// Method names, fusions, generators and defaults come from /api/methods: none is written here.
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
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
// A hit or a source as a citation names it: "report.pdf p. 7-8", or the doc id alone.
const cite = (h) => (h.location ? `${h.doc_id} ${h.location}` : h.doc_id);

// ---- API --------------------------------------------------------------------
const TOKEN_KEY = "ragmini-token";
function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (res.status === 401 && askToken()) return api(path, options);
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error?.message || `${res.status} ${res.statusText}`);
  return body;
}

// Asked again after a 401: a stored token that was refused is said to be wrong.
function askToken() {
  const refused = sessionStorage.getItem(TOKEN_KEY) !== null;
  sessionStorage.removeItem(TOKEN_KEY);
  const token = prompt(refused ? "That token was not accepted. This server needs its access token:"
    : "This server needs its access token:");
  if (!token) {
    if (refused) throw new Error("wrong token: the server did not accept it");
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  return true;
}

// Messages may quote commands or headers in `backticks`: shown as code.
function message(text) {
  const frag = document.createDocumentFragment();
  String(text).split(/`([^`]+)`/).forEach((part, i) => frag.append(i % 2 ? el("code", { text: part }) : part));
  return frag;
}

function setState(id, text, error = false) {
  const node = $(`#${id}-state`);
  node.replaceChildren(message(text));
  node.classList.toggle("error", error);
}

async function busy(id, button, work) {
  button.disabled = true;
  try { await work(); } catch (err) { setState(id, err.message, true); } finally { button.disabled = false; }
}

// ---- what the store offers: methods, defaults, counts ---------------------------
let METHODS = null;  // the /api/methods body

async function loadMethods() {
  METHODS = await api("/api/methods");
  const rankers = [...METHODS.methods, ...METHODS.fusions.filter((f) => f.available).map((f) => f.name)];
  const pick = $("#search-method");
  pick.replaceChildren(...rankers.map((m) => el("option", { text: m })));
  pick.value = METHODS.defaults.method;
  for (const id of ["#search-k", "#compare-k"]) if (!$(id).value) $(id).value = METHODS.defaults.k;
  $("#compare-methods").replaceChildren(el("legend", { text: "Methods" }), ...rankers.map((m) => el("label", { class: "check" },
    el("input", { type: "checkbox", value: m, ...(METHODS.defaults.compare.includes(m) ? { checked: "" } : {}) }), ` ${m}`)));
  const gen = $("#ask-generator");
  gen.replaceChildren(...METHODS.generators.map((g) => el("option", { value: g.name, text: `${g.name} (${g.note})` })));
  gen.value = METHODS.defaults.generator;
}

async function refreshCounts() {
  try {
    const s = await api("/api/status");
    $("#store-line").textContent = `${plural(s.documents, "document")} · ${plural(s.chunks, "chunk")} · ${s.methods.map((m) => m.method).join(", ")}`;
  } catch (err) { $("#store-line").textContent = err.message; }
}

// ---- tabs and the reader -----------------------------------------------------------
const tabs = [...document.querySelectorAll('[role="tab"]')];
const panel = (tab) => $(`#${tab.getAttribute("aria-controls")}`);
let lastTab = tabs[0];

function show(tab, push = false) {
  lastTab = tab;
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    panel(t).hidden = !on;
  }
  $("#reader").hidden = true;
  const hash = `#${tab.getAttribute("aria-controls")}`;
  if (location.hash !== hash) history[push ? "pushState" : "replaceState"](null, "", hash);
  if (tab.id === "tab-documents") loadDocuments();
  if (tab.id === "tab-evals") { loadQuerySets(); loadHistory(); }
}
tabs.forEach((t, i) => {
  t.addEventListener("click", () => show(t));
  t.addEventListener("keydown", (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (step) { const next = tabs[(i + step + tabs.length) % tabs.length]; next.focus(); show(next); }
  });
});

// "#read?doc=ID&source=S&chunk=N" opens the reader; any other hash names a tab.
let routed = 0, fromTab = false;  // fromTab: the reader was opened from a tab here (back returns)
function route() {
  const first = routed++ === 0;
  if (location.hash.startsWith("#read?")) {
    if (first || !$("#reader").hidden) fromTab = fromTab && !first;
    else fromTab = true;
    return openReader(new URLSearchParams(location.hash.slice(6)));
  }
  const tab = tabs.find((t) => `#${t.getAttribute("aria-controls")}` === location.hash) || lastTab;
  show(tab);
}
window.addEventListener("hashchange", route);
$("#reader-back").addEventListener("click", () => (fromTab ? history.back() : show(lastTab)));

// Where a hit or source opens: a PDF at its first cited page, anything else in the reader.
const docPath = (h, what) => `/api/documents/${encodeURIComponent(h.doc_id)}/${what}?source=${encodeURIComponent(h.source)}`;
function docHref(h) {
  if (h.pages) return `${docPath(h, "file")}#page=${h.pages[0]}`;
  const params = new URLSearchParams({ doc: h.doc_id, source: h.source });
  if (h.chunk_id !== undefined) params.set("chunk", h.chunk_id);
  return `#read?${params}`;
}

function docLink(h, text = cite(h)) {
  const href = docHref(h);
  const pdf = !href.startsWith("#");
  return el("a", { class: "doc", href, ...(pdf ? { target: "_blank", rel: "noopener" } : {}),
    title: pdf ? `open ${h.doc_id} at page ${h.pages[0]}` : `read ${h.doc_id}`,
    onclick: pdf ? (e) => openWithToken(e, href) : () => {} }, text);
}

// A link cannot carry the token: with one, the file is fetched here and opened as a blob.
async function openWithToken(event, href) {
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  event.preventDefault();
  const [url, fragment = ""] = href.split("#");
  const res = await fetch(url, { headers: headers() });
  if (!res.ok) return;
  window.open(`${URL.createObjectURL(await res.blob())}${fragment ? `#${fragment}` : ""}`, "_blank", "noopener");
}

async function openReader(params) {
  for (const t of tabs) panel(t).hidden = true;
  const reader = $("#reader");
  reader.hidden = false;
  const doc = { doc_id: params.get("doc"), source: params.get("source") };
  const chunk = params.has("chunk") ? Number(params.get("chunk")) : null;
  $("#reader-title").textContent = doc.doc_id;
  $("#reader-meta").replaceChildren();
  $("#reader-text").replaceChildren();
  try {
    setState("reader", "loading…");
    const body = await api(docPath(doc, "text"));
    const cited = body.chunks.find((c) => c.chunk_id === chunk);
    $("#reader-title").textContent = body.title || body.doc_id;
    const file = el("a", { href: docPath(body, "file"), target: "_blank", rel: "noopener", text: "open the original file" });
    file.addEventListener("click", (e) => openWithToken(e, file.getAttribute("href")));
    $("#reader-meta").replaceChildren(`${body.doc_id} · ${plural(body.chunks.length, "chunk")}`,
      cited?.location ? ` · cited at ${cited.location}` : "", " · ", file, ` · ${body.source}`);
    const text = body.text;
    if (cited) {
      $("#reader-text").replaceChildren(text.slice(0, cited.start),
        el("mark", { id: "reader-cited", "data-chunk": cited.chunk_id, text: text.slice(cited.start, cited.end) }),
        text.slice(cited.end));
      $("#reader-cited").scrollIntoView({ block: "center" });
    } else {
      $("#reader-text").textContent = text;
      window.scrollTo(0, 0);
    }
    setState("reader", cited ? `the cited chunk is highlighted` : "");
  } catch (err) { setState("reader", err.message, true); }
}

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

// "type=md, tags=faiss" -> ["type=md", "tags=faiss"]: metadata conditions, all must hold.
const whereOf = (text) => text.split(",").map((w) => w.trim()).filter(Boolean);

const snippet = (text, n = 420) => (text.length > n ? `${text.slice(0, n).replace(/\s\S*$/, "")} …` : text);

// ---- search -----------------------------------------------------------------
$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy("search", $("#search-form button"), async () => {
    await methodsLoaded;
    const q = $("#search-q").value, method = $("#search-method").value, k = $("#search-k").value;
    const params = new URLSearchParams({ q, method, k });
    for (const w of whereOf($("#search-where").value)) params.append("where", w);
    setState("search", "searching…");
    const body = await api(`/api/search?${params}`);
    const list = $("#search-results");
    list.replaceChildren(...body.hits.map((h) => el("li", { "data-chunk": h.chunk_id },
      el("div", { class: "meta" }, `${h.score.toFixed(3)} · `, docLink(h), ` · ${h.title} · ${h.source}`),
      el("p", { class: "passage" }, highlighted(h.text, q)))));
    setState("search", body.hits.length ? `${plural(body.hits.length, "chunk")} by ${body.method}` : "nothing found");
  });
});

// ---- compare ----------------------------------------------------------------
const colour = (id) => `hsl(${(id * 137.508) % 360} 70% 55%)`;
const picked = () => [...document.querySelectorAll("#compare-methods input:checked")].map((i) => i.value);

$("#compare-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy("compare", $("#compare-form button"), async () => {
    await methodsLoaded;
    const q = $("#compare-q").value, k = Number($("#compare-k").value), methods = picked();
    if (!methods.length) throw new Error("pick at least one method to compare");
    setState("compare", `ranking with ${plural(methods.length, "method")}…`);
    const body = await api("/api/compare", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ q, k, methods }) });
    const shared = new Map(body.overlap.map((o) => [o.chunk_id, o.ranks]));
    const columns = methods.map((m) => {
      const r = body.methods[m];
      const cards = r.hits.map((h) => {
        const ranks = shared.get(h.chunk_id);
        const others = ranks ? Object.entries(ranks).filter(([n]) => n !== m).map(([n, rk]) => `${n} #${rk}`).join(", ") : "";
        return el("div", { class: "card", tabindex: "0", "data-chunk": h.chunk_id, style: `--c: ${ranks ? colour(h.chunk_id) : "#ccd"}`,
            onmouseenter: () => light(h.chunk_id, true), onmouseleave: () => light(h.chunk_id, false),
            onfocus: () => light(h.chunk_id, true), onblur: () => light(h.chunk_id, false) },
          el("div", { class: "meta" }, `#${h.rank} · ${h.score.toFixed(3)} · `, docLink(h)),
          el("div", { class: "ranks", text: others ? `also: ${others}` : "only here" }),
          el("p", { class: "snippet" }, highlighted(snippet(h.text, 260), q)));
      });
      return el("div", { class: "column", "data-method": m }, el("h3", { text: m }),
        r.error ? el("p", { class: "state error" }, message(r.error.message)) : "", ...cards);
    });
    const grid = $("#compare-columns");
    grid.style.setProperty("--cols", String(methods.length));
    grid.replaceChildren(...columns);
    setState("compare", `${plural(body.overlap.length, "chunk")} found by more than one method`);
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

// The conversation: earlier turns stay in this browser tab (sessionStorage) and go
// with each question as `history`, so a follow-up is made standalone before retrieval.
const TURNS_KEY = "ragmini.conversation";
const MAX_TURNS = 10;
const turns = () => JSON.parse(sessionStorage.getItem(TURNS_KEY) || "[]");

function saveTurns(list) {
  sessionStorage.setItem(TURNS_KEY, JSON.stringify(list.slice(-MAX_TURNS)));
  renderConversation();
}

function renderConversation() {
  const list = turns();
  $("#conversation").hidden = list.length === 0;
  $("#conversation-count").textContent = list.length ? `${plural(list.length, "earlier question")}; follow-ups lean on them` : "";
  $("#conversation-turns").replaceChildren(...list.map((t) => el("li", {},
    el("p", { class: "turn-q", text: t.question }),
    el("p", { class: "turn-a muted", text: snippet(t.answer, 300) }))));
}

$("#conversation-new").addEventListener("click", () => {
  saveTurns([]);
  $("#ask-searched").hidden = true;
  $("#ask-q").focus();
});
renderConversation();

$("#ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const seed = $("#ask-seed").value;
  const answer = $("#ask-answer");
  answer.replaceChildren();
  $("#ask-summary").textContent = "";
  $("#ask-searched").hidden = true;
  $("#ask-sources").replaceChildren();
  busy("ask", $("#ask-form button[type=submit]"), async () => {
    await methodsLoaded;
    const request = {
      question: $("#ask-q").value, generator: $("#ask-generator").value, k: Number($("#ask-k").value),
      strict: $("#ask-strict").checked, abstain: $("#ask-abstain").checked,
      temperature: Number($("#ask-temperature").value), top_p: Number($("#ask-top-p").value),
      top_k: Number($("#ask-top-k").value), max_new_tokens: Number($("#ask-max").value),
      seed: seed === "" ? null : Number(seed), where: whereOf($("#ask-where").value),
      history: turns().map((t) => ({ question: t.question, answer: t.answer })),
    };
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
        else if (event === "done") {
          renderAnswer(data); setState("ask", outcome(data));
          if (data.searched_for && data.searched_for !== data.question) {
            const searched = $("#ask-searched");
            searched.textContent = `searched for: ${data.searched_for} (${data.rewrite})`;
            searched.hidden = false;
          }
          saveTurns([...turns(), { question: data.question, answer: data.answer }]);
        }
        else if (event === "error") throw new Error(data.error.message);
      }
    }
  });
});

function outcome(body) {
  if (body.abstained) return "declined: the documents do not seem to answer this";
  if (!body.answer.trim()) return `no answer: every sentence ${body.generator} wrote was unsupported and dropped`;
  return `answered by ${body.generator}`;
}

function renderAnswer(body) {
  const answer = $("#ask-answer");
  const given = new Set(body.sources.map((s) => s.n));
  if (body.abstained) {
    answer.replaceChildren(el("p", { class: "abstained", text:
      `${body.answer} (confidence the documents hold an answer: ${body.abstain_score.toFixed(2)}, below ${body.abstain_threshold.toFixed(2)}). The closest sources are below.` }));
  } else if (body.sentences.length) {
    answer.replaceChildren(...body.sentences.map((s) => {
      const label = s.support.label;
      const title = label === "supported" ? `supported by [${s.support.source_id}]`
        : `${label}: nearest source sentence: “${s.support.source_sentence}” (score ${s.support.score.toFixed(2)})`;
      return el("span", { class: `sentence ${label}`, title, "data-support": label }, ...cited(s.text, given));
    }));
    const supported = body.sentences.filter((s) => s.support.label === "supported").length;
    $("#ask-summary").textContent = `${supported} of ${plural(body.sentences.length, "sentence")} supported by the sources`
      + (body.notes.length ? ` · ${body.notes.join(" · ")}` : "");
  } else {
    answer.replaceChildren(...cited(body.answer || "(no text)", given));
  }
  $("#ask-sources").replaceChildren(...body.sources.map((s) => el("li", { id: `src-${s.n}` },
    el("details", {}, el("summary", {}, `[${s.n}] `, docLink(s), ` · ${s.title}${body.citations.includes(s.n) ? " (cited)" : ""}`),
      el("p", { class: "passage", text: s.text || "" })))));
}

function cited(text, given) {
  // [n] of a source the model was given opens that source; any other [n] is marked, not linked.
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    parts.push(text.slice(last, m.index));
    const n = Number(m[1]);
    parts.push(given.has(n) ? el("a", { class: "cite", href: `#src-${n}`, text: m[0], onclick: (e) => {
      e.preventDefault();
      const item = $(`#src-${n}`);
      item.querySelector("details").open = true; item.scrollIntoView({ block: "nearest" });
      item.classList.add("lit"); setTimeout(() => item.classList.remove("lit"), 1500);
    } }) : el("span", { class: "cite invalid", title: `no source [${n}]: the model was given ${plural(given.size, "source")}`, text: m[0] }));
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
      el("td", {}, docLink(d, d.doc_id)), el("td", { text: d.title }), el("td", { class: "num", text: d.chunks }),
      el("td", { text: d.ingested_at.replace("T", " ").replace("+00:00", "") }),
      el("td", {}, el("a", { href: docPath(d, "file"), target: "_blank", rel: "noopener", text: "file",
        onclick: (e) => openWithToken(e, docPath(d, "file")) })),
      el("td", {}, el("button", { type: "button", class: "link", text: "delete", "aria-label": `delete ${d.doc_id}`,
        onclick: () => removeDocument(d) })))));
    $("#documents-page").textContent = `${body.total ? docOffset + 1 : 0}–${docOffset + body.documents.length} of ${body.total}`;
    $("#documents-prev").disabled = docOffset === 0;
    $("#documents-next").disabled = docOffset + PAGE >= body.total;
  } catch (err) { setState("documents", err.message, true); }
}
$("#documents-prev").addEventListener("click", () => { docOffset = Math.max(0, docOffset - PAGE); loadDocuments(); });
$("#documents-next").addEventListener("click", () => { docOffset += PAGE; loadDocuments(); });

async function removeDocument(d) {
  if (!confirm(`Remove ${d.doc_id} from the store?`)) return;
  try {
    setState("documents", `removing ${d.doc_id}…`);
    // By its source too: an id several documents share would be refused.
    await api(`/api/documents/${encodeURIComponent(d.doc_id)}?source=${encodeURIComponent(d.source)}`, { method: "DELETE" });
    setState("documents", `removed ${d.doc_id}`);
    await Promise.all([loadDocuments(), refreshCounts()]);
  } catch (err) { setState("documents", err.message, true); }
}

function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f);
  const bar = $("#upload-progress");
  bar.hidden = false; bar.value = 0;
  setState("documents", `uploading ${plural(files.length, "file")}…`);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/documents");
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  xhr.upload.onload = () => setState("documents", "ingesting and embedding…");
  xhr.onload = () => {
    bar.hidden = true;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 401 && askToken()) return upload(files);
    if (xhr.status >= 400) return setState("documents", body?.error?.message || xhr.statusText, true);
    setState("documents", body.files.map((f) => `${f.file}: ${f.status}${f.doc_id ? ` as ${f.doc_id}` : ""}${f.reason ? ` (${f.reason})` : ""}`).join("; "));
    loadDocuments();
    refreshCounts();
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
let querySets = null;
async function loadQuerySets() {
  if (querySets) return;
  try {
    const body = await api("/api/eval/query-sets");
    querySets = body.query_sets;
    const pick = $("#eval-set");
    pick.replaceChildren(...querySets.map((q) => el("option", { value: q.id, text: q.label, title: q.path })));
    pick.value = body.default;
  } catch (err) { setState("eval", err.message, true); }
}

$("#eval-run").addEventListener("click", () => busy("eval", $("#eval-run"), async () => {
  await loadQuerySets();
  const set = $("#eval-set").selectedOptions[0];
  setState("eval", `evaluating every method on ${set ? set.textContent : "the labelled queries"}…`);
  let job = await api("/api/eval", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(set ? { query_set: set.value } : {}) });
  while (job.state === "queued" || job.state === "running") {
    await new Promise((r) => setTimeout(r, 700));
    job = await api(`/api/eval/${job.id}`);
  }
  if (job.state === "failed") throw new Error(job.error.message);
  renderEval(job);
  setState("eval", `done: ${plural(job.result.n_queries, "query", "queries")} of ${set ? set.textContent : "the labelled queries"}`);
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
      el("td", { text: r.split ? `${r.dataset} (${r.split})` : r.dataset }),
      el("td", { class: "num", text: r.n_queries }),
      el("td", { text: Object.entries(r.metrics).map(([m, v]) => `${m} ${(v["recall@10"] ?? NaN).toFixed(3)}`).join(", ") }))));
  } catch (err) { setState("eval", err.message, true); }
}

// ---- start ------------------------------------------------------------------
const methodsLoaded = loadMethods().catch((err) => { $("#store-line").textContent = err.message; });
refreshCounts();
route();

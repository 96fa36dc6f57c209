// lipdub studio: a little JavaScript over the REST API (the lipdub_session cookie authenticates).
// The page's Content-Security-Policy allows no inline script or style attribute: styles are set through CSSOM.
"use strict";

async function api(method, url, body, headers) {
  const opts = { method, headers: headers || {}, credentials: "same-origin" };
  if (body instanceof Blob) { opts.body = body; opts.headers["Content-Type"] = "application/octet-stream"; }
  else if (body !== undefined || method !== "GET") {  // state changes made with the cookie must be JSON (CSRF check)
    opts.body = JSON.stringify(body === undefined ? {} : body); opts.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(url, opts);
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) {
    const d = data && data.detail;
    throw new Error(d && d.message ? `${d.message}${d.hint ? " — " + d.hint : ""}` : (typeof d === "string" ? d : `HTTP ${r.status}`));
  }
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function progressOf(job) {
  const st = job.stages || [];
  const finished = st.filter(s => s.state === "done" || s.state === "reused").length;
  const running = st.find(s => s.state === "running");
  return { finished, count: st.length, running };
}

function bar(frac) {
  const b = el("div", { class: "bar" }), fill = el("span");
  fill.style.width = `${Math.round(100 * frac)}%`;
  b.append(fill); return b;
}

// -- index page --------------------------------------------------------------------------------
async function refreshJobs() {
  const body = document.getElementById("jobs-body");
  try {
    const jobs = await api("GET", "/jobs");
    body.replaceChildren(...(jobs.length ? jobs.map(j => {
      const p = progressOf(j);
      const label = p.running ? `${p.running.stage} ${p.running.total ? p.running.done + "/" + p.running.total : ""}` : `${p.finished} stages`;
      return el("tr", { "data-job": j.id, "data-state": j.state },
        el("td", {}, el("a", { href: `/ui/jobs/${j.id}` }, j.id.slice(0, 8))), el("td", {}, j.kind), el("td", {}, j.language || "—"),
        el("td", {}, el("span", { class: `badge ${j.state}` }, j.state)),
        el("td", {}, bar(j.state === "done" ? 1 : p.count ? p.finished / (p.count + (p.running ? 0 : 1)) : 0), el("small", { class: "muted" }, label)),
        el("td", { class: "muted" }, new Date(j.created_at).toLocaleTimeString()));
    }) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no jobs yet"))]));
  } catch (e) { body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error" }, e.message))); }
}

function initIndex() {
  const form = document.getElementById("new-dub"), status = document.getElementById("upload-status");
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const file = document.getElementById("file").files[0];
    const langs = document.getElementById("languages").value.split(",").map(s => s.trim()).filter(Boolean);
    const options = { lipsync: document.getElementById("lipsync").value, separation: document.getElementById("separation").value,
                      asr_model: document.getElementById("asr").value };
    document.getElementById("start").disabled = true;
    try {
      status.textContent = `uploading ${file.name}…`;
      const src = await api("POST", `/sources?filename=${encodeURIComponent(file.name)}`, file);
      status.textContent = `uploaded (${src.duration_s.toFixed(1)} s); starting…`;
      if (langs.length === 1) {
        const job = await api("POST", "/jobs", { source_id: src.id, language: langs[0], options });
        status.textContent = `job ${job.id.slice(0, 8)} queued`;
      } else {
        const c = await api("POST", "/campaigns", { source_id: src.id, languages: langs, options });
        status.textContent = `campaign ${c.id.slice(0, 8)}: ${c.jobs.length} jobs`;
      }
      status.className = "muted"; refreshJobs();
    } catch (e) { status.textContent = e.message; status.className = "error"; }
    finally { document.getElementById("start").disabled = false; }
  });
  refreshJobs(); setInterval(refreshJobs, 1500);
}

// -- job page ----------------------------------------------------------------------------------
const J = {};

function renderStages(job) {
  const box = document.getElementById("stages");
  const latest = job.attempts.length;
  box.replaceChildren(...job.stages.map(s => {
    const old = s.attempt < latest;  // not touched by the latest run (e.g. render after a re-synthesis)
    const frac = s.state === "running" ? (s.total ? s.done / s.total : 0) : 1;
    const txt = s.state === "running" ? (s.total ? `${s.done}/${s.total}` : "…") : s.state === "reused" ? "reused" : `${(s.duration_s || 0).toFixed(1)} s`;
    return el("div", { class: old ? "stage old" : "stage", "data-stage": s.stage, "data-state": s.state, title: `attempt ${s.attempt}` },
      el("span", {}, s.stage), bar(frac), el("small", { class: "muted" }, txt));
  }));
}

async function refreshJob() {
  const job = await api("GET", `/jobs/${J.id}`);
  const stateChanged = J.state !== job.state;
  J.state = job.state;
  const st = document.getElementById("state"); st.textContent = job.state; st.className = `badge ${job.state}`;
  document.getElementById("error").textContent = job.error || "";
  const active = ["waiting", "queued", "running"].includes(job.state);
  document.getElementById("btn-cancel").disabled = !active;
  document.getElementById("btn-retry").disabled = !["failed", "cancelled"].includes(job.state);
  document.getElementById("btn-resynth").disabled = active || J.kind !== "dub";
  document.getElementById("btn-render").disabled = active || J.kind !== "dub";
  renderStages(job);
  if (J.kind === "dub" && (stateChanged || !J.scriptLoaded)) {
    const dl = document.getElementById("downloads");
    J.downloads = job.downloads;
    const names = Object.keys(job.downloads);
    dl.replaceChildren(...(names.length ? names.map(k => el("li", {}, el("a", { href: job.downloads[k], "data-kind": k }, k.replaceAll("_", " ")))) : [el("li", { class: "muted" }, "after the render")]));
    if (job.downloads.video) {
      const v = document.getElementById("video-dub"), url = `${job.downloads.video}?inline=true&t=${Date.now()}`;
      if (!active) v.src = url;
    }
    await loadScript();
    await loadReport();
  }
  return job;
}

async function loadScript() {
  let script;
  try { script = await api("GET", `/jobs/${J.id}/script`); } catch (e) { return; }
  J.scriptLoaded = true;
  const L = J.language, busy = ["waiting", "queued", "running"].includes(J.state);
  const body = document.getElementById("script-body");
  body.replaceChildren(...script.segments.map(seg => {
    const t = seg.targets[L];
    const sel = el("select", { "data-field": "speaker" }, ...script.speakers.map(s => { const o = el("option", { value: s.id }, s.name); if (s.id === seg.speaker) o.selected = true; return o; }));
    const ta = el("textarea", { "data-field": "text" }); ta.value = t ? t.text : "";
    // the effective speed-up (TTS rate x stretch / natural speed), the figure the fit and the QC report judge
    const fit = t && t.fit ? `×${(t.fit.speedup ?? t.fit.stretch_ratio * (t.fit.tts_rate || 1)).toFixed(2)}${t.fit.overrun_s > 0.01 ? ` +${t.fit.overrun_s.toFixed(2)} s` : ""}` +
      (t.fit.hearing ? ` · WER ${t.fit.hearing.wer.toFixed(2)}${t.fit.hearing.flagged ? " ⚠" : ""}` : "") : "—";
    const row = el("tr", { "data-segment": seg.id, class: t && t.machine_text && t.text !== t.machine_text ? "edited" : "" },
      el("td", {}, String(seg.id)), el("td", {}, sel),
      el("td", { class: "times" }, `${seg.start_s.toFixed(2)}–${seg.end_s.toFixed(2)}`),
      el("td", { class: "src" }, seg.source_text), el("td", { class: "tgt" }, ta), el("td", { class: "muted" }, fit),
      el("td", { class: "tools" },
        el("button", { class: "secondary", "data-action": "play-source", onclick: () => playLine(seg.id, "source") }, "▶ source"),
        el("button", { class: "secondary", "data-action": "play-dub", onclick: () => playLine(seg.id, "dub") }, "▶ dub"), el("br"),
        el("button", { "data-action": "save", onclick: () => saveLine(seg.id, row) }, "Save"),
        el("button", { "data-action": "save-resynth", onclick: async () => { if (await saveLine(seg.id, row)) action("resynthesize"); } }, "Save + re-synthesize")));
    if (busy) row.querySelectorAll("[data-action^=save], textarea, select").forEach(x => x.disabled = true);
    return row;
  }));
}

async function saveLine(id, row) {
  try {
    await api("PATCH", `/jobs/${J.id}/segments/${id}`, { text: row.querySelector("textarea").value, speaker: row.querySelector("select").value });
    row.classList.add("edited"); return true;
  } catch (e) { document.getElementById("error").textContent = e.message; return false; }
}

function playLine(id, which) {
  const a = document.getElementById("line-player");
  a.src = `/jobs/${J.id}/segments/${id}/audio/${which}?t=${Date.now()}`; a.play().catch(() => {});
}

async function loadReport() {
  const box = document.getElementById("report");
  let r;
  try { r = await api("GET", `/jobs/${J.id}/report`); } catch (e) { return; }
  if (r.verdict === null) { box.textContent = "after the quality report stage"; return; }
  const rows = Object.entries(r.checks).map(([k, c]) => el("tr", {}, el("td", {}, c.label || k.replaceAll("_", " ")), el("td", {}, String(c.value) + (c.unit ? ` ${c.unit}` : "")), el("td", { class: "muted" }, c.threshold), el("td", {}, el("span", { class: `badge ${c.verdict}` }, c.verdict))));
  const table = el("table", { class: "report" }, el("thead", {}, el("tr", {}, el("th", {}, "check"), el("th", {}, "value"), el("th", {}, "threshold"), el("th", {}, "verdict"))), el("tbody", {}, ...rows));
  const tracks = r.lipsync && r.lipsync.tracks ? Object.entries(r.lipsync.tracks).map(([id, t]) => `track ${id}: ${t.frames} frames re-animated`).join("; ") : "no lip-sync";
  const fmt = v => typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v);
  table.querySelectorAll("tbody tr").forEach((tr, i) => {
    const c = Object.values(r.checks)[i];
    tr.children[1].textContent = c.value === null ? (c.note || "not measured") : fmt(c.value) + (c.unit ? ` ${c.unit}` : "");
  });
  const full = J.downloads && J.downloads.report_html
    ? el("a", { href: `${J.downloads.report_html}?inline=true`, target: "_blank", id: "full-report" }, "full QC report (lip sync, fidelity, voice)") : "";
  box.className = ""; box.replaceChildren(el("p", {}, "summary: ", el("span", { class: `badge ${r.verdict || ""}` }, r.verdict || "—"), "  ", el("small", { class: "muted" }, tracks)), table, full);
}

async function action(name) {
  try { await api("POST", `/jobs/${J.id}/${name}`); await refreshJob(); }
  catch (e) { document.getElementById("error").textContent = e.message; }
}

function initJob() {
  const d = document.getElementById("job").dataset;
  Object.assign(J, { id: d.job, language: d.language, kind: d.kind, state: null, scriptLoaded: false });
  for (const [btn, name] of [["btn-cancel", "cancel"], ["btn-retry", "retry"], ["btn-resynth", "resynthesize"], ["btn-render", "render"]])
    document.getElementById(btn).addEventListener("click", () => action(name));
  const both = document.getElementById("btn-play-both");
  if (both) both.addEventListener("click", () => {
    const a = document.getElementById("video-src"), b = document.getElementById("video-dub");
    a.currentTime = 0; b.currentTime = 0; a.muted = true; a.play(); b.play();
  });
  const tick = async () => { try { await refreshJob(); } catch (e) { document.getElementById("error").textContent = e.message; } };
  tick(); setInterval(tick, 1000);
}

if (document.body.dataset.page === "index") initIndex();
if (document.body.dataset.page === "job") initJob();

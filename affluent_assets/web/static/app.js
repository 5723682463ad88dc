// The upload page: upload with progress, follow the batch's state, show its list; hand back
// campaign outcome files and see what became of them. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["scored", "quarantined", "failed"]);
const STATUS_TEXT = {
  waiting: "Received. Waiting for the scoring run to start…",
  scoring: "Scoring: checking every row against the data contract, then scoring and explaining…",
  scored: "Scored.",
  quarantined: "This file was not scored: it does not meet the data contract. Nothing was stored. Fix the file and upload it again.",
  failed: "The scoring run failed for a reason that is not the file's. It is retried once automatically.",
};
let token = localStorage.getItem("affluent-token");
let polling = null;

function headers() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function askToken() {
  token = window.prompt("This server needs its access token:") || null;
  if (token) localStorage.setItem("affluent-token", token);
}

async function api(path) {
  let response = await fetch(path, { headers: headers() });
  if (response.status === 401) {
    askToken();
    response = await fetch(path, { headers: headers() });
  }
  if (!response.ok) throw new Error((await response.json()).error || response.statusText);
  return response.json();
}

function fmt(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en");
}

// Where each kind of file goes and what follows its upload: a batch to score is followed
// until scored; an outcome file joins the list of outcome files.
const UPLOADS = {
  batch: { url: "/api/batches", ids: "", error: "upload-error", done: (body) => follow(body.batch) },
  outcome: { url: "/api/outcomes", ids: "outcome-", error: "outcome-error", done: () => refreshOutcomes() },
};

function upload(file, kind = "batch") {
  const target = UPLOADS[kind];
  const part = (id) => $(target.ids + id);
  $(target.error).hidden = true;
  part("progress").hidden = false;
  part("progress-name").textContent = file.name;
  part("progress-fill").style.width = "0";
  const form = new FormData();
  form.append("file", file);
  const request = new XMLHttpRequest();
  request.open("POST", target.url);
  if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
  request.upload.onprogress = (event) => {
    if (!event.lengthComputable) return;
    const share = Math.round((100 * event.loaded) / event.total);
    part("progress-fill").style.width = `${share}%`;
    part("progress-text").textContent = `${share}% of ${(event.total / 1e6).toFixed(1)} MB`;
  };
  request.onload = () => {
    const body = JSON.parse(request.responseText || "{}");
    if (request.status === 401) { askToken(); return upload(file, kind); }
    if (request.status !== 202) return showUploadError(target.error, body.error || request.statusText);
    part("progress-fill").style.width = "100%";
    part("progress-text").textContent = "uploaded";
    target.done(body);
  };
  request.onerror = () => showUploadError(target.error, "The upload was interrupted; nothing was kept. Try again.");
  request.send(form);
}

function showUploadError(id, message) {
  $(id).textContent = message;
  $(id).hidden = false;
}

function follow(batch) {
  clearInterval(polling);
  $("batch-card").hidden = false;
  $("results").hidden = true;
  $("batch-key").textContent = batch;
  history.replaceState(null, "", `?batch=${encodeURIComponent(batch)}`);
  const tick = async () => {
    const state = await api(`/api/batches/${encodeURIComponent(batch)}`);
    showState(state);
    if (FINAL.has(state.status)) {
      clearInterval(polling);
      if (state.status === "scored") await showResults(state);
      refreshBatches();
    }
  };
  tick();
  polling = setInterval(tick, 1000);
}

function showState(state) {
  const badge = $("status-badge");
  badge.textContent = state.status;
  badge.className = `badge ${state.status}`;
  $("status-text").textContent = STATUS_TEXT[state.status] || state.status;
  $("reason").hidden = !state.reason;
  $("reason").textContent = state.reason || "";
  $("reason").classList.toggle("note", state.status === "scored");
  const warnings = state.warnings || [];
  $("warnings-box").hidden = warnings.length === 0;
  $("warnings").replaceChildren(...warnings.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

async function showResults(state) {
  $("fig-rows").textContent = fmt(state.rows);
  $("fig-candidates").textContent = fmt(state.candidates);
  $("fig-model").textContent = state.model_version ? `v${state.model_version}` : "–";
  const base = `/api/batches/${encodeURIComponent(state.batch)}/candidates`;
  $("download-csv").href = base + ".csv";
  $("download-xlsx").href = base + ".xlsx";
  const body = $("candidates").querySelector("tbody");
  body.replaceChildren();
  if (state.candidates) {
    const list = await api(base + ".json");
    for (const row of list.top) body.append(candidateRow(row));
    drawChart(list.curve);
    showControl(list.groups);
    showEstimates(list.estimates || []);
  }
  $("results").hidden = false;
}

function withInterval(value, low, high) {
  if (value === null || value === undefined) return "–";
  return `${percent(value)} (${percent(low)}–${percent(high)})`;
}

function appendCells(tr, cells) {
  for (const [text, cls] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    td.className = cls;
    tr.append(td);
  }
}

// The control group is part of every list: say how many are held back and why.
function showControl(groups) {
  const note = $("control-note");
  note.hidden = !groups || !groups.control;
  if (note.hidden) return;
  note.textContent = `${fmt(groups.control)} of ${fmt(groups.campaign + groups.control)} candidates ` +
    `(${(100 * groups.control_share).toFixed(0)}%) are held back as a control group: column group = control ` +
    "in the downloads. Do not call them. They were drawn at random within each score decile of the list, " +
    "so comparing their upgrades with those of the customers called shows what the campaign itself changed. " +
    "Hand back their outcomes too.";
}

function showEstimates(rows) {
  const body = $("estimates").querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    appendCells(tr, [
      [row.policy === "threshold" ? `model threshold ${Number(row.score_cut).toFixed(3)}` : row.setting, ""],
      [fmt(row.flagged), "num"],
      [withInterval(row.estimated_precision, row.precision_low, row.precision_high), "num"],
      [percent(row.holdout_precision), "num"],
      [withInterval(row.estimated_recall, row.recall_low, row.recall_high), "num"],
      [percent(row.holdout_recall), "num"],
    ]);
    body.append(tr);
  }
}

function candidateRow(row) {
  const tr = document.createElement("tr");
  const reasons = [row.reason_1, row.reason_2, row.reason_3].filter(Boolean);
  if (row.group === "control") tr.className = "control";
  appendCells(tr, [
    [row.rank, "num"], [row.customer_key, ""], [row.group || "campaign", ""], [Number(row.score).toFixed(3), "num"],
    [withInterval(row.estimated_precision, row.estimated_precision_low, row.estimated_precision_high), "num"],
    [row.expected_precision === null ? "–" : `${(100 * row.expected_precision).toFixed(0)}%`, "num"],
  ]);
  const why = document.createElement("td");
  const ul = document.createElement("ul");
  for (const reason of reasons) {
    const li = document.createElement("li");
    li.textContent = reason;
    ul.append(li);
  }
  why.append(ul);
  tr.append(why);
  return tr;
}

function drawChart(curve) {
  const svg = $("chart");
  const [w, h, left, bottom, top] = [640, 220, 48, 30, 12];
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const points = curve.filter((p) => p.expected_precision !== null);
  if (!points.length) return;
  const maxX = Math.max(...points.map((p) => p.called));
  const x = (v) => left + ((w - left - 12) * v) / maxX;
  const y = (v) => top + (h - top - bottom) * (1 - v);
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    add("line", { x1: left, x2: w - 12, y1: y(tick), y2: y(tick), stroke: "#e3e8ef" });
    add("text", { x: left - 8, y: y(tick) + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b7a" }, `${tick * 100}%`);
  }
  const line = (rows, key) => rows.map((p, i) => `${i ? "L" : "M"}${x(p.called).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  const own = curve.filter((p) => p.estimated_precision !== null && p.estimated_precision !== undefined);
  if (own.length) {
    const band = line(own, "estimated_precision_high") + " " +
      own.slice().reverse().map((p) => `L${x(p.called).toFixed(1)},${y(p.estimated_precision_low).toFixed(1)}`).join(" ") + " Z";
    add("path", { d: band, fill: "#f2a65a", opacity: 0.25, stroke: "none" });
    add("path", { d: line(own, "estimated_precision"), fill: "none", stroke: "#c2600f", "stroke-width": 2 });
  }
  add("path", { d: line(points, "expected_precision"), fill: "none", stroke: "#0b5cad", "stroke-width": 2.5 });
  add("text", { x: w - 14, y: top + 12, "text-anchor": "end", "font-size": 11, fill: "#0b5cad" }, "holdout");
  add("text", { x: w - 14, y: top + 26, "text-anchor": "end", "font-size": 11, fill: "#c2600f" }, "estimate from the list's own scores (90% band)");
  add("text", { x: (w + left) / 2, y: h - 6, "text-anchor": "middle", "font-size": 12, fill: "#5f6b7a" },
    `customers called, best first (up to ${fmt(maxX)})`);
}

async function refreshBatches() {
  let list;
  try { list = await api("/api/batches"); } catch (error) { return; }
  const body = $("batches").querySelector("tbody");
  body.replaceChildren();
  $("no-batches").hidden = list.batches.length > 0;
  for (const batch of list.batches) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.onclick = () => follow(batch.batch);
    const badge = `<span class="badge ${batch.status}"></span>`;
    tr.innerHTML = `<td class="mono"></td><td>${badge}</td><td class="num"></td><td class="num"></td><td></td>`;
    tr.children[0].textContent = batch.batch;
    tr.children[1].firstChild.textContent = batch.status;
    tr.children[2].textContent = fmt(batch.rows);
    tr.children[3].textContent = fmt(batch.candidates);
    tr.children[4].textContent = batch.model_version ? `v${batch.model_version}` : "–";
    body.append(tr);
  }
}

const OUTCOME_WAITING = "Received. The outcomes run reads it within about a minute (it needs the Dagster daemon).";
let outcomePolling = null;

// Refreshed every few seconds while a file waits for the outcomes run, then left alone.
async function refreshOutcomes() {
  clearTimeout(outcomePolling);
  let list;
  try { list = await api("/api/outcomes"); } catch (error) { return; }
  const body = $("outcomes").querySelector("tbody");
  body.replaceChildren();
  $("no-outcomes").hidden = list.files.length > 0;
  for (const file of list.files) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td class="mono"></td><td><span class="badge ${file.status}"></span></td><td class="detail ${file.status}"></td>`;
    tr.children[0].textContent = file.file;
    tr.children[1].firstChild.textContent = file.status;
    tr.children[2].textContent = file.detail || (file.status === "waiting" ? OUTCOME_WAITING : "");
    body.append(tr);
  }
  await refreshFigures();
  await refreshUplift();
  if (list.files.some((file) => file.status === "waiting")) outcomePolling = setTimeout(refreshOutcomes, 3000);
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`;
}

async function refreshFigures() {
  let answer;
  try { answer = await api("/api/outcomes/figures"); } catch (error) { return; }
  const body = $("outcome-figures").querySelector("tbody");
  body.replaceChildren();
  $("no-figures").hidden = answer.figures.length > 0;
  for (const row of answer.figures) {
    const tr = document.createElement("tr");
    const cells = [
      [row.source, ""], [`v${row.model_version}`, ""], [fmt(row.customers), "num"], [fmt(row.flagged), "num"],
      [fmt(row.affluent), "num"], [percent(row.realized_precision), "num"],
      [withInterval(row.estimated_precision, row.estimated_low, row.estimated_high), "num"],
      [percent(row.expected_precision), "num"],
    ];
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      td.className = cls;
      tr.append(td);
    }
    body.append(tr);
  }
}

async function refreshUplift() {
  let answer;
  try { answer = await api("/api/outcomes/uplift"); } catch (error) { return; }
  const body = $("uplift").querySelector("tbody");
  body.replaceChildren();
  $("no-uplift").hidden = answer.uplift.length > 0;
  $("no-uplift").textContent = answer.note || "";
  for (const row of answer.uplift) {
    const tr = document.createElement("tr");
    const uplift = row.uplift === null ? "–" :
      `${(100 * row.uplift).toFixed(1)} pts (${(100 * row.uplift_low).toFixed(1)} to ${(100 * row.uplift_high).toFixed(1)})`;
    appendCells(tr, [
      [`v${row.model_version}`, ""], [row.scope, ""], [fmt(row.called), "num"], [percent(row.called_rate), "num"],
      [fmt(row.control), "num"], [percent(row.control_rate), "num"], [uplift, "num"],
    ]);
    body.append(tr);
  }
  drawQini(answer.qini);
}

// Incremental upgrades as the campaign calls further down the list; dotted: a random order.
function drawQini(points) {
  const svg = $("qini");
  svg.hidden = !points.length;
  svg.replaceChildren();
  if (!points.length) return;
  const [w, h, left, bottom, top] = [640, 220, 56, 30, 12];
  const values = points.map((p) => p.incremental_upgrades);
  const [low, high] = [Math.min(0, ...values), Math.max(1, ...values)];
  const x = (v) => left + (w - left - 12) * v;
  const y = (v) => top + (h - top - bottom) * (1 - (v - low) / (high - low));
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  add("line", { x1: left, x2: w - 12, y1: y(0), y2: y(0), stroke: "#e3e8ef" });
  for (const version of [...new Set(points.map((p) => p.model_version))]) {
    const mine = points.filter((p) => p.model_version === version);
    const last = mine[mine.length - 1];
    add("path", { d: mine.map((p, i) => `${i ? "L" : "M"}${x(p.share_called).toFixed(1)},${y(p.incremental_upgrades).toFixed(1)}`).join(" "),
      fill: "none", stroke: "#0b5cad", "stroke-width": 2.5 });
    add("line", { x1: x(0), y1: y(0), x2: x(last.share_called), y2: y(last.incremental_upgrades), stroke: "#5f6b7a", "stroke-dasharray": "4 4" });
    add("text", { x: x(last.share_called) - 4, y: y(last.incremental_upgrades) - 6, "text-anchor": "end", "font-size": 11, fill: "#0b5cad" },
      `v${version}: ${Number(last.incremental_upgrades).toFixed(0)} upgrades the campaign added`);
  }
  add("text", { x: left - 8, y: y(high) + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b7a" }, fmt(Math.round(high)));
  add("text", { x: left - 8, y: y(0) + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b7a" }, "0");
  add("text", { x: (w + left) / 2, y: h - 6, "text-anchor": "middle", "font-size": 12, fill: "#5f6b7a" },
    "share of the list called, best scores first (Qini curve)");
}

function dropZone(zoneId, inputId, kind) {
  const zone = $(zoneId);
  $(inputId).addEventListener("change", (event) => event.target.files[0] && upload(event.target.files[0], kind));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) upload(event.dataTransfer.files[0], kind);
  });
}

dropZone("drop", "file-input", "batch");
dropZone("outcome-drop", "outcome-input", "outcome");
// One after the other: with a token needed, the first answer asks for it once.
refreshBatches().then(refreshOutcomes);
const wanted = new URLSearchParams(location.search).get("batch");
if (wanted) follow(wanted);

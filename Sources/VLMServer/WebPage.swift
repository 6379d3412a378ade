/// The page at `/`: one self-contained HTML document (inline CSS and JS, no CDN) so it works offline and
/// under a strict Content-Security-Policy.
///
/// Modes, chosen from `/healthz`:
/// - index loaded: a typed query or dropped image goes to `POST /v1/search`
///   (`{"query": {"text": ...} | {"image": dataURL}, "top_k": N}` -> `{"data": [{"id", "score", "path", "name"?, "url"?}]}`);
/// - no index: results against what the user gives: a typed query ranks the typed labels (cosine of
///   embeddings), dropped images are each classified against the labels, and query + images ranks the images
///   (a search over the dropped set).
/// - a chat model picked: the query (with the first dropped image) goes to `POST /v1/chat/completions` and the
///   answer is shown.
/// - a model that runs vision tasks picked (`/healthz` lists its `tasks`): the vision-tasks panel (task, optional
///   text or region box) sends each dropped image to `POST /v1/vision/tasks` and draws the boxes, quad boxes and
///   polygons with their labels over the image (an SVG overlay in image pixels).
/// The model picker lists every served model (`/healthz` `models`); requests name the picked one in "model".
/// `?q=...&labels=...&image=dataURL&model=ID&task=T&text=...` runs a query on load (used by the headless-browser check).
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SwiftVLM</title>
<style>
  :root { --bg:#f6f7f9; --fg:#1d2430; --muted:#6b7280; --accent:#2563eb; --card:#fff; --line:#e5e7eb; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; align-items:center; gap:12px; padding:14px 24px; background:#111827; color:#fff; }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  .badge { font-size:12px; padding:2px 8px; border-radius:999px; background:#374151; color:#e5e7eb; }
  .badge.search { background:#065f46; }
  main { max-width:1100px; margin:0 auto; padding:20px 24px 40px; }
  .controls { display:grid; grid-template-columns: 1fr 1fr; gap:16px; }
  label.field { display:block; font-size:13px; color:var(--muted); margin-bottom:4px; }
  input[type=text], textarea { width:100%; padding:10px 12px; border:1px solid var(--line); border-radius:8px; font:inherit; background:#fff; }
  textarea { min-height:64px; resize:vertical; }
  #drop { grid-column: 1 / -1; border:2px dashed #cbd5e1; border-radius:12px; padding:18px; text-align:center; color:var(--muted);
          background:#fff; cursor:pointer; transition: background .15s, border-color .15s; }
  #drop.over { background:#eff6ff; border-color:var(--accent); color:var(--accent); }
  #thumbs { display:flex; gap:8px; justify-content:center; flex-wrap:wrap; margin-top:10px; }
  #thumbs img { height:56px; border-radius:6px; border:1px solid var(--line); }
  .row { grid-column: 1 / -1; display:flex; gap:10px; align-items:center; }
  button { padding:9px 18px; border:0; border-radius:8px; background:var(--accent); color:#fff; font:inherit; cursor:pointer; }
  button.secondary { background:#e5e7eb; color:var(--fg); }
  #status { color:var(--muted); font-size:13px; }
  #status.error { color:#b91c1c; }
  #grid { display:grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap:14px; margin-top:22px; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden; }
  .card img { width:100%; height:160px; object-fit:cover; display:block; background:#f1f5f9; }
  .card .body { padding:10px 12px; }
  .card .title { font-weight:600; overflow-wrap:anywhere; }
  .score { font-variant-numeric: tabular-nums; color:var(--muted); font-size:13px; }
  .bar { height:6px; background:#e5e7eb; border-radius:3px; margin-top:6px; overflow:hidden; }
  .bar > div { height:100%; background:var(--accent); }
  .labels { margin:6px 0 0; padding:0; list-style:none; font-size:13px; }
  .labels li { display:flex; justify-content:space-between; gap:8px; }
  details { grid-column: 1 / -1; font-size:13px; color:var(--muted); }
  #vtask { grid-column: 1 / -1; display:grid; grid-template-columns: 1fr 2fr 1fr; gap:12px; }
  #vtask select { width:100%; padding:9px 10px; border:1px solid var(--line); border-radius:8px; font:inherit; background:#fff; }
  .overlay { position:relative; line-height:0; background:#f1f5f9; }
  .overlay img { width:100%; height:auto; max-height:none; object-fit:contain; }
  .overlay svg { position:absolute; left:0; top:0; width:100%; height:100%; pointer-events:none; }
  .card.wide { grid-column: 1 / -1; max-width:900px; }
  @media (max-width: 700px) { .controls { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header><h1>SwiftVLM</h1><select id="picker" class="badge" title="model"></select><span id="model" class="badge">…</span><span id="mode" class="badge">…</span></header>
<main>
  <div class="controls">
    <div>
      <label class="field" for="q">Query</label>
      <input id="q" type="text" placeholder="a photo of a cat" autocomplete="off">
    </div>
    <div>
      <label class="field" for="labels">Labels (comma separated)</label>
      <textarea id="labels">a cat, a dog, an astronaut, a cup of coffee, a car, a landscape</textarea>
    </div>
    <div id="vtask" hidden>
      <div><label class="field" for="task">Vision task</label><select id="task"></select></div>
      <div><label class="field" for="vtext">Text (grounding, referring expressions)</label><input id="vtext" type="text" placeholder="a cat on a sofa" autocomplete="off"></div>
      <div><label class="field" for="vbox">Region x0,y0,x1,y1 (region tasks)</label><input id="vbox" type="text" placeholder="10,20,200,180" autocomplete="off"></div>
    </div>
    <div id="drop">Drop images here, or click to choose
      <input id="file" type="file" accept="image/*" multiple hidden>
      <div id="thumbs"></div>
    </div>
    <div class="row">
      <button id="go">Run</button>
      <button id="clear" class="secondary">Clear images</button>
      <span id="status"></span>
    </div>
    <details><summary>API key</summary>
      <input id="key" type="text" placeholder="only if the server was started with --api-key --protect-reads">
    </details>
  </div>
  <div id="grid"></div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let health = null, images = [];   // images: [{name, dataURL}]

function setStatus(text, isError) { const s = $("status"); s.textContent = text; s.className = isError ? "error" : ""; }
function labels() { return $("labels").value.split(/[,\n]/).map(s => s.trim()).filter(Boolean); }
function headers() {
  const h = { "Content-Type": "application/json" };
  const k = $("key").value.trim();
  if (k) h["Authorization"] = "Bearer " + k;
  return h;
}
async function post(path, body) {
  const m = $("picker").value;
  if (m && path !== "/v1/search") body = Object.assign({ model: m }, body);
  const r = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  let j = null;
  try { j = await r.json(); } catch (_) {}
  if (!r.ok) throw new Error((j && j.error && j.error.message) || ("HTTP " + r.status));
  return j;
}
function cosine(a, b) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; }
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

function card({ title, score, scoreText, image, link, list }) {
  const c = el("div", "card");
  if (image) {
    const i = el("img"); i.src = image; i.alt = title || ""; i.loading = "lazy";
    if (link) { const a = el("a"); a.href = link; a.target = "_blank"; a.rel = "noopener"; a.appendChild(i); c.appendChild(a); } else c.appendChild(i);
  }
  const b = el("div", "body");
  if (title) b.appendChild(el("div", "title", title));
  if (score != null) {
    b.appendChild(el("div", "score", scoreText || score.toFixed(4)));
    const bar = el("div", "bar"), fill = el("div");
    fill.style.width = Math.max(0, Math.min(1, score)) * 100 + "%";
    bar.appendChild(fill); b.appendChild(bar);
  }
  if (list) {
    const ul = el("ul", "labels");
    for (const [name, value] of list) { const li = el("li"); li.appendChild(el("span", null, name)); li.appendChild(el("span", "score", value)); ul.appendChild(li); }
    b.appendChild(ul);
  }
  c.appendChild(b);
  return c;
}
function show(cards) { const g = $("grid"); g.replaceChildren(...cards); }

// Large photos are scaled down (longest side 1024) on white before upload: smaller requests, same result
// as the server's own compositing for transparent PNGs.
function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(new Error("cannot read " + file.name));
    reader.onload = () => {
      const url = reader.result, img = new Image();
      img.onerror = () => reject(new Error(file.name + " is not an image the browser can open"));
      img.onload = () => {
        const m = Math.max(img.naturalWidth, img.naturalHeight);
        if (m <= 1024) return resolve({ name: file.name, dataURL: url });
        const s = 1024 / m, c = document.createElement("canvas");
        c.width = Math.round(img.naturalWidth * s); c.height = Math.round(img.naturalHeight * s);
        const ctx = c.getContext("2d"); ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
        ctx.drawImage(img, 0, 0, c.width, c.height);
        resolve({ name: file.name, dataURL: c.toDataURL("image/jpeg", 0.92) });
      };
      img.src = url;
    };
    reader.readAsDataURL(file);
  });
}
async function addFiles(files) {
  for (const f of files) {
    if (!/^image\//.test(f.type)) { setStatus(f.name + ": not an image", true); continue; }
    try { images.push(await readImage(f)); } catch (e) { setStatus(e.message, true); }
  }
  const t = $("thumbs"); t.replaceChildren(...images.map(i => { const im = el("img"); im.src = i.dataURL; im.title = i.name; return im; }));
  run();
}

async function runSearch(q) {
  const query = images.length ? { image: images[0].dataURL } : { text: q };
  const r = await post("/v1/search", { query, top_k: 24 });
  show(r.data.map(h => card({ title: h.name || h.path || String(h.id), score: h.score, scoreText: "cosine " + h.score.toFixed(4), image: h.thumbnail || h.url, link: h.url })));
  return r.data.length + " results";
}
async function rankLabels(q, ls) {
  const r = await post("/v1/embeddings", { input: [q, ...ls] });
  const v = r.data.map(d => d.embedding), scores = ls.map((l, i) => [l, cosine(v[0], v[i + 1])]);
  scores.sort((a, b) => b[1] - a[1]);
  show(scores.map(([l, s]) => card({ title: l, score: s, scoreText: "cosine " + s.toFixed(4) })));
  return "labels ranked by similarity to \u201c" + q + "\u201d";
}
async function rankImages(q) {
  const input = [q, ...images.map(i => ({ type: "image_url", image_url: { url: i.dataURL } }))];
  const r = await post("/v1/embeddings", { input });
  const v = r.data.map(d => d.embedding);
  const ranked = images.map((im, i) => [im, cosine(v[0], v[i + 1])]).sort((a, b) => b[1] - a[1]);
  show(ranked.map(([im, s]) => card({ title: im.name, score: s, scoreText: "cosine " + s.toFixed(4), image: im.dataURL })));
  return images.length + " images ranked by \u201c" + q + "\u201d";
}
async function classifyImages(ls) {
  const results = await Promise.all(images.map(im => post("/v1/classify", { image: im.dataURL, labels: ls, top_k: 3 })));
  show(results.map((r, i) => card({ title: r.data[0].label, image: images[i].dataURL, score: r.data[0].probability,
    scoreText: "p = " + r.data[0].probability.toFixed(3),
    list: r.data.map(s => [s.label, s.probability.toFixed(3)]) })));
  return images.length + " image(s) classified against " + ls.length + " labels";
}

function pickedKind() {
  const m = health && (health.models || []).find(x => x.id === $("picker").value);
  return m ? m.kind : "embedding";
}
async function runChat(q) {
  const content = images.length ? [{ type: "image_url", image_url: { url: images[0].dataURL } }, { type: "text", text: q }] : q;
  const r = await post("/v1/chat/completions", { messages: [{ role: "user", content }], max_tokens: 128 });
  show([card({ title: r.choices[0].message.content, image: images.length ? images[0].dataURL : null, list: [["asked", q]] })]);
  return r.usage.completion_tokens + " tokens";
}
function pickedModel() {
  const ms = (health && health.models) || [];
  return ms.find(x => x.id === $("picker").value) || ms[0] || null;
}
function pickedTasks() { const m = pickedModel(); return m && m.tasks && m.tasks.length ? m.tasks : null; }
// The vision-tasks panel replaces the query and labels while a model that runs vision tasks is picked.
function updatePanel() {
  const tasks = pickedTasks();
  $("vtask").hidden = !tasks;
  $("q").parentElement.hidden = !!tasks;
  $("labels").parentElement.hidden = !!tasks || !!(health && health.index);
  if (tasks && $("task").dataset.model !== pickedModel().id) {
    $("task").replaceChildren(...tasks.map(t => { const o = el("option", null, t); o.value = t; return o; }));
    $("task").dataset.model = pickedModel().id;
  }
}
// The SVG namespace, derived from the page's own (XHTML) one so the page names no URL at all.
const SVG = document.documentElement.namespaceURI.replace("1999/xhtml", "2000/svg");
function svgEl(tag, attrs) { const e = document.createElementNS(SVG, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; }
const COLOURS = ["#e6194b", "#3cb44b", "#0082c8", "#f58231", "#911eb4", "#46f0f0"];
// The shapes of a task's answer ({bboxes|quad_boxes|polygons, labels}): each as [x, y, ...] points in image pixels.
function taskShapes(answer) {
  const out = [], labels = answer.labels || answer.bboxes_labels || [];
  (answer.bboxes || []).forEach((b, i) => out.push({ points: [b[0], b[1], b[2], b[1], b[2], b[3], b[0], b[3]], label: labels[i] || "" }));
  (answer.quad_boxes || []).forEach((q, i) => out.push({ points: q, label: labels[i] || "" }));
  const pl = answer.polygons_labels || labels;
  (answer.polygons || []).forEach((inst, i) => inst.forEach(p => out.push({ points: p, label: pl[i] || "" })));
  return out;
}
// The image with the shapes outlined and labelled (white text on the label's colour), in an SVG sized in image pixels.
function overlay(dataURL, size, shapes) {
  const wrap = el("div", "overlay"), img = el("img"); img.src = dataURL; wrap.appendChild(img);
  const svg = svgEl("svg", { viewBox: "0 0 " + size.width + " " + size.height, preserveAspectRatio: "none" });
  const fs = Math.max(10, Math.round(Math.max(size.width, size.height) / 45)), stroke = Math.max(2, fs / 6), colours = {};
  for (const s of shapes) {
    if (!(s.label in colours)) colours[s.label] = COLOURS[Object.keys(colours).length % COLOURS.length];
    const c = colours[s.label], pts = [];
    for (let i = 0; i + 1 < s.points.length; i += 2) pts.push(s.points[i] + "," + s.points[i + 1]);
    svg.appendChild(svgEl("polygon", { points: pts.join(" "), fill: "none", stroke: c, "stroke-width": stroke }));
  }
  for (const s of shapes) {
    if (!s.label) continue;
    const xs = s.points.filter((_, i) => i % 2 === 0), ys = s.points.filter((_, i) => i % 2 === 1);
    const w = s.label.length * fs * 0.62 + fs * 0.5, h = fs * 1.3;
    const x = Math.max(0, Math.min(Math.min(...xs), size.width - w)), top = Math.min(...ys), y = top - h >= 0 ? top - h : Math.max(top, 0);
    svg.appendChild(svgEl("rect", { x, y, width: w, height: h, fill: colours[s.label] }));
    const t = svgEl("text", { x: x + fs * 0.25, y: y + fs, fill: "#fff", "font-size": fs, "font-family": "monospace" });
    t.textContent = s.label; svg.appendChild(t);
  }
  wrap.appendChild(svg);
  return wrap;
}
async function runVisionTask() {
  if (!images.length) throw new Error("Drop an image.");
  const body = { task: $("task").value }, text = $("vtext").value.trim(), box = $("vbox").value.trim();
  if (text) body.text = text;
  if (box) {
    const v = box.split(",").map(Number);
    if (v.length !== 4 || v.some(n => !isFinite(n))) throw new Error("The region is four numbers x0,y0,x1,y1.");
    body.box = v;
  }
  const cards = [];
  for (const im of images) {
    const r = await post("/v1/vision/tasks", Object.assign({ image: im.dataURL }, body));
    const answer = r.result[r.task], c = el("div", "card wide");
    const shapes = typeof answer === "string" ? [] : taskShapes(answer);
    c.appendChild(overlay(im.dataURL, r.image_size, shapes));
    const b = el("div", "body");
    b.appendChild(el("div", "title", typeof answer === "string" ? answer : shapes.length + " region(s): " + shapes.map(s => s.label || "(region)").join(", ")));
    b.appendChild(el("div", "score", r.task + " · " + im.name + " · " + r.usage.completion_tokens + " tokens"));
    c.appendChild(b); cards.push(c); show(cards);
  }
  return images.length + " image(s), " + body.task;
}
async function run() {
  const q = $("q").value.trim(), ls = labels();
  if (!q && !images.length) { setStatus(pickedTasks() ? "Drop an image." : "Type a query or drop an image."); return; }
  setStatus("Working…");
  const t0 = performance.now();
  try {
    let what;
    if (pickedTasks()) what = await runVisionTask();
    else if (pickedKind() === "chat") { if (!q) throw new Error("Type a question."); what = await runChat(q); }
    else if (health && health.index) what = await runSearch(q);
    else if (images.length && q) what = await rankImages(q);
    else if (images.length) { if (!ls.length) throw new Error("Give at least one label."); what = await classifyImages(ls); }
    else { if (!ls.length) throw new Error("Give at least one label."); what = await rankLabels(q, ls); }
    setStatus(what + " in " + Math.round(performance.now() - t0) + " ms");
  } catch (e) { setStatus(e.message, true); }
}

$("go").onclick = run;
$("q").addEventListener("keydown", e => { if (e.key === "Enter") run(); });
$("clear").onclick = () => { images = []; $("thumbs").replaceChildren(); show([]); setStatus(""); };
const drop = $("drop");
drop.onclick = (e) => { if (e.target === drop) $("file").click(); };
$("file").onchange = (e) => addFiles(e.target.files);
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });

(async () => {
  try {
    const r = await fetch("/healthz"); health = await r.json();
    for (const m of health.models || []) {
      const o = el("option", null, m.id + " (" + m.kind + ")"); o.value = m.id; $("picker").appendChild(o);
    }
    const want = new URLSearchParams(location.search).get("model");
    if (want) $("picker").value = want;
    $("picker").hidden = (health.models || []).length < 2;
    $("picker").onchange = () => { updatePanel(); show([]); };
    $("model").textContent = health.model + (health.dimensions ? " \u00b7 " + health.dimensions + "-d" : "");
    $("mode").textContent = health.index ? "search: " + health.index.size + " items" : "no index: classify / similarity";
    if (health.index) {
      // Labels play no part in a search: give the query the whole row.
      $("mode").classList.add("search");
      $("labels").parentElement.hidden = true;
      $("q").parentElement.style.gridColumn = "1 / -1";
      $("q").placeholder = "search the index: a photo of a cat";
    }
    updatePanel();
  } catch (e) { setStatus("server not reachable: " + e.message, true); }
  const p = new URLSearchParams(location.search);
  if (p.get("task")) $("task").value = p.get("task");
  if (p.get("text")) $("vtext").value = p.get("text");
  if (p.get("labels")) $("labels").value = p.get("labels");
  // ?image=data:image/...;base64,... stands in for a dropped file (headless checks cannot drag and drop).
  const img = p.get("image");
  if (img && /^data:image\/[a-z0-9.+-]+;base64,/.test(img)) {
    images.push({ name: "image", dataURL: img });
    const t = el("img"); t.src = img; $("thumbs").replaceChildren(t);
  }
  if (p.get("q")) $("q").value = p.get("q");
  if (p.get("q") || images.length) run();
})();
</script>
</body>
</html>
"""#
}

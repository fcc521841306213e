"""The page at ``GET /``: type a text, see what a served run makes of it.

One self-contained HTML file (its script and style inline; nothing fetched from elsewhere: the
server sends it with a Content-Security-Policy that allows only its own origin). A classifier
shows its labels with their probabilities, a language model a sampled continuation, word vectors
the nearest neighbours. ``/?run=NAME&text=TEXT`` opens the page with that run and text and asks
at once (a link to one query).
"""

from __future__ import annotations

import html
import json
from typing import Any

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ffnlp serve</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
h1 { font-size: 1.3rem; }
textarea { width: 100%; box-sizing: border-box; font: inherit; padding: .4rem; }
.row { display: flex; gap: .6rem; align-items: center; margin: .6rem 0; flex-wrap: wrap; }
table { border-collapse: collapse; margin-top: .8rem; }
td, th { padding: .2rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #4a7fb5; height: .7rem; }
#error { color: #a00; }
#continuation { white-space: pre-wrap; background: #f4f4f4; padding: .6rem; }
.muted { color: #666; font-size: .9rem; }
</style>
</head>
<body>
<h1>ffnlp serve</h1>
<p class="muted">Runs served here: __RUN_LIST__. The API: <code>POST /v1/&lt;run&gt;/&lt;endpoint&gt;</code>;
<code>GET /v1/models</code> lists the runs.</p>
<form id="ask">
<div class="row"><label for="run">Run</label> <select id="run"></select>
<span id="task" class="muted"></span></div>
<textarea id="text" rows="3" placeholder="Type a text (a word for word vectors, a prompt for a language model)"></textarea>
<div class="row"><label for="k">How many</label> <input id="k" type="number" min="1" max="100" value="3" style="width:4rem">
<button id="go" type="submit">Ask</button></div>
</form>
<div id="result" data-state="idle"><p id="error"></p><div id="output"></div></div>
<script>
"use strict";
const RUNS = __RUNS__;
// the endpoint the page asks a run: the first of these the run serves (GET /v1/models lists them)
const ASKED = ["predict", "generate", "neighbors"];
function endpointOf(run) {
  const served = run.endpoints.map(function (e) { return e.split("/").pop(); });
  return ASKED.find(function (e) { return served.indexOf(e) >= 0; }) || served[0];
}
const select = document.getElementById("run");
const result = document.getElementById("result");
const output = document.getElementById("output");
const error = document.getElementById("error");
for (const run of RUNS) {
  const option = document.createElement("option");
  option.value = run.name;
  option.textContent = run.name + " (" + run.task + ", " + run.type + ")";
  select.appendChild(option);
}
function current() { return RUNS.find(function (r) { return r.name === select.value; }); }
function showTask() {
  const run = current();
  document.getElementById("task").textContent = run ? "POST /v1/" + run.name + "/" + endpointOf(run) : "";
}
select.addEventListener("change", showTask);
function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.appendChild(td);
  return td;
}
function table(head, rows) {
  const t = document.createElement("table");
  const h = document.createElement("tr");
  for (const name of head) { const th = document.createElement("th"); th.textContent = name; h.appendChild(th); }
  t.appendChild(h);
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.className = "answer";
    cell(tr, r[0], false).className = "name";
    cell(tr, r[1].toFixed(4), true).className = "num value";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = Math.max(0, Math.min(1, Math.abs(r[1]))) * 12 + "rem";
    const td = document.createElement("td"); td.appendChild(bar); tr.appendChild(td);
    t.appendChild(tr);
  }
  return t;
}
async function ask(event) {
  if (event) event.preventDefault();
  const run = current();
  if (!run) return;
  const text = document.getElementById("text").value;
  const k = parseInt(document.getElementById("k").value, 10) || 3;
  const endpoint = endpointOf(run);
  let body;
  if (endpoint === "predict") body = {text: text, k: Math.min(k, run.labels.length)};
  else if (endpoint === "generate") body = {prompt: text, max_tokens: 30, seed: Math.floor(Math.random() * 1000000)};
  else body = {word: text.trim(), k: k};
  result.dataset.state = "asking";
  error.textContent = "";
  output.replaceChildren();
  try {
    const response = await fetch("/v1/" + encodeURIComponent(run.name) + "/" + endpoint, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const answer = await response.json();
    if (!response.ok) {
      error.textContent = answer.error || ("HTTP " + response.status);
      result.dataset.state = "error";
      return;
    }
    if (endpoint === "predict") {
      output.appendChild(table(["label", "probability", ""], answer.top.map(function (t) { return [t.label, t.prob]; })));
    } else if (endpoint === "generate") {
      const p = document.createElement("p");
      p.id = "continuation";
      p.textContent = answer.text;
      output.appendChild(p);
    } else {
      output.appendChild(table(["neighbour", "cosine", ""], answer.neighbors.map(function (n) { return [n.word, n.score]; })));
    }
    result.dataset.state = "done";
  } catch (e) {
    error.textContent = "no answer from the server (" + e + ")";
    result.dataset.state = "error";
  }
}
document.getElementById("ask").addEventListener("submit", ask);
const params = new URLSearchParams(window.location.search);
if (params.get("run") && RUNS.some(function (r) { return r.name === params.get("run"); })) select.value = params.get("run");
showTask();
if (params.get("text") !== null) { document.getElementById("text").value = params.get("text"); ask(null); }
</script>
</body>
</html>
"""


def render_page(runs: list[dict[str, Any]]) -> str:
    """The page for the runs described by ``runs`` (``GET /v1/models``'s objects)."""
    shown = ("name", "task", "type", "labels", "endpoints")  # the page asks the run's endpoint
    data = json.dumps([{k: run.get(k) for k in shown} for run in runs])
    # inside <script>: no "</script>" or "<!--" can come out of a run's name or labels
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    listed = ", ".join(html.escape(str(run["name"])) for run in runs) or "none"
    return _PAGE.replace("__RUNS__", data).replace("__RUN_LIST__", listed)

// cdcsync console: fills the server-rendered pages from the JSON
// endpoints. Plain JavaScript, no framework, no build step.
"use strict";

const TOKEN_KEY = "cdcsync.api_token";
const POLL_MS = 2000;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// api calls the JSON endpoint and returns the parsed body; a non-2xx
// answer throws an Error carrying status and the server's message.
async function api(method, url) {
  const headers = { "Accept": "application/json" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  const resp = await fetch(url, { method, headers, cache: "no-store" });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = new Error((body && (body.message || body.error)) || resp.statusText);
    err.status = resp.status;
    err.body = body;
    throw err;
  }
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function setRows(tbody, rows, empty, cols) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: String(cols), class: "muted" }, empty))]));
}

function describe(err) {
  if (err.status === 401) return "401 Unauthorized: " + err.message + " — enter the API token at the top of the page.";
  if (err.status === 403) return "403 Forbidden: " + err.message;
  return (err.status ? err.status + ": " : "") + err.message;
}

function notice(msg, kind) {
  const n = document.getElementById("notice");
  if (!msg) { n.hidden = true; return; }
  n.textContent = msg;
  n.className = kind || "error";
  n.hidden = false;
}

// showError reports a failed call, and points at the token field on 401.
function showError(target, err) {
  const msg = describe(err);
  if (target) { target.textContent = msg; target.className = "error"; }
  notice(msg, "error");
  if (err.status === 401) {
    const t = document.getElementById("token");
    t.classList.add("wanted");
    t.focus();
  }
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const state = document.getElementById("token-state");
  const show = () => { state.textContent = token() ? "token kept for this tab" : "no token"; };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value); else sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    input.classList.remove("wanted");
    notice("");
    show();
  });
  show();
}

function stateBadge(badge, st) {
  const s = (st && st.state) || "unknown";
  badge.textContent = s;
  badge.className = "badge state-" + s;
}

// every calls f now and then POLL_MS after each call has finished, so a
// slow answer never stacks requests.
function every(f) {
  const loop = async () => {
    try { await f(); } finally { setTimeout(loop, POLL_MS); }
  };
  loop();
}

function fmtNum(n) { return n == null ? "–" : Number(n).toLocaleString("en"); }
function fmtSecs(n) { return n == null ? "–" : Number(n).toFixed(1); }
function fmtTime(t) { return t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–"; }

function partitionsOf(st) { return (st && st.partitions) || []; }

// breakerBadges renders {dependency: state} as one badge each.
function breakerBadges(m) {
  const deps = Object.keys(m || {}).sort();
  if (!deps.length) return ["–"];
  return deps.map((d) => el("span", { class: "badge breaker-" + m[d] }, d + ": " + m[d]));
}

// Index page: each topology's state, partition count and total lag.
async function indexPage() {
  let rows = document.querySelectorAll("#topologies tbody tr[data-topology]");
  if (rows.length === 0) {
    // A protected worker (api_token_read) renders no names: list them
    // from the API with the token.
    try {
      const list = await api("GET", "/topologies");
      const tbody = document.querySelector("#topologies tbody");
      tbody.replaceChildren(...list.map((t) => el("tr", { "data-topology": t.name },
        el("td", {}, el("a", { href: "/console/topologies/" + encodeURIComponent(t.name) }, t.name)),
        el("td", { class: "state" }, el("span", { class: "badge" }, t.state)),
        el("td", {}, "–"), el("td", {}, "–"), el("td", { class: "partitions" }, "…"),
        el("td", { class: "lag" }, "…"), el("td", {}, "–"))));
      rows = tbody.querySelectorAll("tr[data-topology]");
    } catch (err) {
      showError(null, err);
      return;
    }
  }
  const poll = async () => {
    for (const row of rows) {
      const name = row.dataset.topology;
      try {
        const st = await api("GET", "/topologies/" + encodeURIComponent(name) + "/status");
        stateBadge(row.querySelector(".state .badge"), st);
        const parts = partitionsOf(st);
        row.querySelector(".partitions").textContent = parts.length;
        // A partition whose end could not be read makes the sum a lower bound.
        const lag = fmtNum(parts.reduce((a, p) => a + (p.lag_records || 0), 0));
        row.querySelector(".lag").textContent = parts.some((p) => p.lag_unknown) ? "≥ " + lag : lag;
      } catch (err) {
        row.querySelector(".state .badge").textContent = describe(err);
      }
    }
  };
  every(poll);
}

// Topology page.
function topologyPage(root) {
  const name = root.dataset.topology;
  const base = "/topologies/" + encodeURIComponent(name);
  let selection = {}; // the DLQ records shown, and what a replay writes

  const pollStatus = async () => {
    try {
      const st = await api("GET", base + "/status");
      stateBadge(document.getElementById("state"), st);
      const errEl = document.getElementById("state-error");
      errEl.hidden = !st.error;
      errEl.textContent = st.error || "";
      const rows = partitionsOf(st).map((p) => el("tr", { "data-partition": p.topic + "/" + p.partition },
        el("td", {}, p.topic), el("td", {}, p.partition), el("td", {}, p.worker || "–"),
        el("td", { class: "num", title: p.lag_unknown ? "the partition's end could not be read: at least this much" : "" },
          (p.lag_unknown ? "≥ " : "") + fmtNum(p.lag_records)),
        el("td", { class: "num" }, fmtSecs(p.lag_seconds)),
        el("td", {}, ...breakerBadges(p.breakers)),
        el("td", { class: "num" }, p.ledger_keys < 0 ? "–" : fmtNum(p.ledger_keys))));
      setRows(document.querySelector("#partitions tbody"), rows, "no partition assigned", 7);
      const workers = st.workers || [];
      const wt = document.getElementById("workers");
      wt.hidden = workers.length === 0;
      setRows(wt.querySelector("tbody"), workers.map((w) => el("tr", { "data-worker": w.id },
        el("td", {}, w.id + (w.self ? " (this one)" : "")),
        el("td", {}, el("span", { class: "badge state-" + w.state }, w.state + (w.stale ? ", stale" : ""))),
        el("td", {}, (w.partitions || []).length), el("td", {}, ...breakerBadges(w.breakers)),
        el("td", {}, fmtTime(w.reported_at)), el("td", { class: "msg" }, w.error || w.phase || ""))), "", 6);
      document.getElementById("partitions-updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    } catch (err) {
      document.getElementById("partitions-updated").textContent = describe(err);
    }
  };

  const loadPlan = async () => {
    try {
      const plan = await api("GET", base);
      const rows = (plan.options || []).map((o) => el("tr", {}, el("th", {}, o.key), el("td", {}, o.value),
        el("td", { class: "muted" }, o.default ? "default" : "")));
      setRows(document.querySelector("#plan tbody"), rows, "no options", 3);
      document.getElementById("plan-file").textContent = plan.file || "";
    } catch (err) {
      setRows(document.querySelector("#plan tbody"), [], describe(err), 3);
    }
  };

  const query = () => {
    const q = new URLSearchParams();
    if ("stage" in selection) q.set("stage", selection.stage);
    if ("exception" in selection) q.set("exception", selection.exception);
    return q;
  };

  const loadRecords = async () => {
    const q = query();
    document.getElementById("dlq-filter").textContent = q.toString()
      ? "stage " + (selection.stage || "(none)") + ", exception " + (selection.exception || "(none)") : "all";
    try {
      const list = await api("GET", base + "/dlq/records?" + q);
      const rows = list.records.map((r) => el("tr", {},
        el("td", {}, el("a", { href: "/console/topologies/" + encodeURIComponent(name) + "/dlq/" + r.partition + "/" + r.offset, class: "record-link" }, r.partition + "/" + r.offset)),
        el("td", {}, fmtTime(r.time)), el("td", {}, r.stage), el("td", {}, r.exception), el("td", {}, r.key),
        el("td", {}, r.origin.topic + "/" + r.origin.partition + "@" + r.origin.offset), el("td", { class: "msg" }, r.message)));
      setRows(document.querySelector("#dlq-records tbody"), rows, "no dead letters", 7);
    } catch (err) {
      showError(null, err);
    }
  };

  const loadSummary = async () => {
    try {
      const s = await api("GET", base + "/dlq");
      document.getElementById("dlq-total").textContent = s.total + " record(s)" +
        (s.total ? ", first " + fmtTime(s.first_seen) + ", last " + fmtTime(s.last_seen) : "") +
        (s.skipped ? "; " + s.skipped + " unreadable record(s) skipped" : "") +
        (s.truncated ? "; only the first " + fmtNum(s.total) + " read: narrow with cdcsync dlq inspect" : "");
      const all = el("tr", { class: "group" }, el("td", { colspan: "2" }, el("a", { href: "#", "data-stage": "*" }, "all stages and exceptions")), el("td", { class: "num" }, s.total));
      const rows = s.groups.map((g) => el("tr", { class: "group" },
        el("td", {}, el("a", { href: "#", "data-stage": g.stage, "data-exception": g.exception }, g.stage || "(none)")),
        el("td", {}, g.exception || "(none)"), el("td", { class: "num" }, g.count)));
      setRows(document.querySelector("#dlq-groups tbody"), [all, ...rows], "", 3);
      document.querySelectorAll("#dlq-groups a").forEach((a) => a.addEventListener("click", (ev) => {
        ev.preventDefault();
        selection = a.dataset.stage === "*" ? {} : { stage: a.dataset.stage, exception: a.dataset.exception };
        resetReplay();
        loadRecords();
      }));
    } catch (err) {
      document.getElementById("dlq-total").textContent = describe(err);
    }
    loadRecords();
  };

  const resetReplay = () => {
    document.getElementById("replay-run").disabled = true;
    document.getElementById("replay-result").textContent = "";
    document.getElementById("replay-preview-table").hidden = true;
  };

  document.getElementById("replay-preview").addEventListener("click", async () => {
    const out = document.getElementById("replay-result");
    const q = query();
    q.set("dry_run", "true");
    try {
      const r = await api("POST", base + "/dlq/replay?" + q);
      out.className = r.refused ? "error" : "ok";
      out.textContent = r.refused ? "Dry run: " + r.count + " record(s), but the replay would be refused: " + r.refused
        : "Dry run: " + r.count + " record(s) would be replayed" + (r.truncated ? " (the first ones read; replay again for the rest)." : ".");
      out.dataset.count = r.count;
      const t = document.getElementById("replay-preview-table");
      setRows(t.querySelector("tbody"), r.preview.map((p) => el("tr", {}, el("td", {}, p.partition + "/" + p.offset),
        el("td", {}, p.stage), el("td", {}, p.exception), el("td", {}, p.key),
        el("td", {}, p.origin.topic + "/" + p.origin.partition))), "nothing to replay", 5);
      t.hidden = false;
      const run = document.getElementById("replay-run");
      run.disabled = r.count === 0 || !!r.refused;
      run.textContent = "Replay " + r.count + " record(s)";
    } catch (err) {
      showError(out, err);
    }
  });

  document.getElementById("replay-run").addEventListener("click", async () => {
    const out = document.getElementById("replay-result");
    const q = query();
    q.set("dry_run", "false");
    q.set("expect", out.dataset.count); // refused (409) if the DLQ changed since the preview
    try {
      const r = await api("POST", base + "/dlq/replay?" + q);
      out.className = "ok";
      out.textContent = "Replayed " + r.written + " record(s) to their source partitions.";
      document.getElementById("replay-run").disabled = true;
    } catch (err) {
      showError(out, err);
    }
  });

  document.querySelectorAll(".actions button[data-action]").forEach((b) => b.addEventListener("click", async () => {
    const out = document.getElementById("action-result");
    try {
      await api(b.dataset.method, base + "/" + b.dataset.action);
      out.className = "ok";
      out.textContent = b.textContent + ": done";
      notice("");
      pollStatus();
    } catch (err) {
      showError(out, err);
    }
  }));
  document.getElementById("dlq-refresh").addEventListener("click", () => { resetReplay(); loadSummary(); });

  every(pollStatus);
  loadPlan();
  loadSummary();
}

// Record page: one dead letter.
async function recordPage(root) {
  const url = "/topologies/" + encodeURIComponent(root.dataset.topology) + "/dlq/records/" + root.dataset.partition + "/" + root.dataset.offset;
  try {
    const r = await api("GET", url);
    const facts = [["Origin", r.origin.topic + " partition " + r.origin.partition + " offset " + r.origin.offset],
      ["Topology", r.topology], ["Stage", r.stage], ["Exception", r.exception], ["Failing class", r.class],
      ["Message", r.message], ["Attempts", r.attempts], ["First failure", fmtTime(r.first_failure)],
      ["Record timestamp", fmtTime(r.timestamp)]];
    if (r.event_id) facts.push(["Event ID", r.event_id]);
    if (r.schema_id) facts.push(["Schema ID", r.schema_id]);
    setRows(document.querySelector("#record-facts tbody"), facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))), "", 2);
    setRows(document.querySelector("#record-headers tbody"), r.headers.map((h) => el("tr", { class: h.error ? "error-header" : "" },
      el("td", { class: "hkey" }, h.key), el("td", { class: "hval" }, h.value), el("td", {}, h.error ? el("span", { class: "tag" }, "error") : ""))),
    "no headers", 3);
    document.getElementById("record-key").textContent = r.key.text;
    document.getElementById("record-key-enc").textContent = r.key.encoding + ", " + r.key.size + " bytes";
    document.getElementById("record-value").textContent = r.value.text;
    document.getElementById("record-value-enc").textContent = r.value.encoding + ", " + r.value.size + " bytes";
  } catch (err) {
    showError(document.querySelector("#record-facts td"), err);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  const root = document.querySelector("[data-page]");
  if (!root) return;
  switch (root.dataset.page) {
    case "index": indexPage(); break;
    case "topology": topologyPage(root); break;
    case "record": recordPage(root); break;
  }
});

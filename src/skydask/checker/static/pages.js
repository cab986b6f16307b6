// Gallery, own reports and admin review pages. User text goes in via textContent only.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) throw new Error(data && typeof data.detail === "string" ? data.detail : `HTTP ${r.status}`);
    return data;
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function button(td, text, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.addEventListener("click", onClick);
    td.appendChild(b);
  }

  let labels = {};
  async function loadLabels() {
    const p = await api("GET", "/api/problems");
    p.groups.forEach((g) => g.classes.forEach((c) => { labels[c.code] = c.label; }));
  }

  async function gallery() {
    const sel = $("gallery-class").value;
    const items = await api("GET", `/api/gallery${sel ? `?problem=${encodeURIComponent(sel)}` : ""}`);
    const box = $("gallery");
    box.replaceChildren();
    items.forEach((r) => {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = `/api/reports/${r.id}/stamp.png`;
      img.alt = labels[r.problem] || r.problem;
      const cap = document.createElement("figcaption");
      cap.textContent = `${labels[r.problem] || r.problem}${r.label ? `: ${r.label}` : ""} (${r.user})`;
      fig.append(img, cap);
      box.appendChild(fig);
    });
  }

  async function mine() {
    const rows = await api("GET", "/api/reports");
    const body = $("my-table").querySelector("tbody");
    body.replaceChildren();
    rows.forEach((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = String(r.id);
      [r.id, r.image_id, labels[r.problem] || r.problem, r.label, r.x.toFixed(1), r.y.toFixed(1),
        r.false_positive ? "yes" : "", r.status].forEach((v) => cell(tr, v));
      button(cell(tr, ""), "delete", async () => { await api("DELETE", `/api/reports/${r.id}`); mine(); });
      body.appendChild(tr);
    });
  }

  async function admin() {
    const status = $("admin-status").value;
    const data = await api("GET", `/api/admin/reports${status ? `?status=${status}` : ""}`);
    const body = $("admin-table").querySelector("tbody");
    body.replaceChildren();
    data.reports.forEach((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = String(r.id);
      [r.id, r.image_id, r.user, labels[r.problem] || r.problem, r.label,
        r.false_positive ? "yes" : "", r.merged_into ? `merged into ${r.merged_into}` : r.status]
        .forEach((v) => cell(tr, v));
      const td = cell(tr, "");
      ["confirmed", "rejected", "open"].forEach((s) => button(td, s, async () => {
        await api("POST", `/api/admin/reports/${r.id}/review`, { status: s });
        admin();
      }));
      body.appendChild(tr);
    });
    $("admin-status-line").textContent = `${data.total} reports`;
  }

  async function main() {
    await loadLabels();
    if ($("gallery")) { $("gallery-class").addEventListener("change", gallery); await gallery(); }
    if ($("my-table")) await mine();
    if ($("admin-table")) {
      $("admin-status").addEventListener("change", admin);
      $("merge-form").addEventListener("submit", async (e) => {
        e.preventDefault();
        const others = $("merge-others").value.split(/[ ,]+/).filter(Boolean).map(Number);
        try {
          const r = await api("POST", "/api/admin/merge", { into: Number($("merge-into").value), others });
          $("admin-status-line").textContent = `merged ${r.merged}`;
          admin();
        } catch (err) {
          $("admin-status-line").textContent = err.message;
        }
      });
      await admin();
    }
  }
  main();
})();

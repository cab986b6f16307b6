// The viewer of the skydask exposure checker: fetch the next image, zoom/pan, click marks,
// submit. Plain JS, no build step. User text only ever goes into the page via textContent.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("checker-config").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const classes = {};
  const byKey = {};
  cfg.groups.forEach((g) => g.classes.forEach((c) => {
    classes[c.code] = c;
    if (c.key) byKey[c.key] = c.code;
  }));
  const st = { image: null, marks: [], cls: null, stretch: "asinh", s: 1, tx: 0, ty: 0, busy: false };
  const counts = { checks: cfg.counts.checks, reports: cfg.counts.reports };

  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    let data = null;
    if (r.status !== 204) data = await r.json().catch(() => null);
    if (!r.ok) {
      const detail = data && data.detail;
      const err = new Error(typeof detail === "string" ? detail : `HTTP ${r.status}`);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function status(text, bad) {
    $("status").textContent = text;
    $("status").classList.toggle("bad", !!bad);
  }

  function applyTransform() {
    $("canvas").style.transform = `translate(${st.tx}px, ${st.ty}px) scale(${st.s})`;
    document.querySelectorAll(".marker").forEach((m) => { m.style.transform = `scale(${1 / st.s})`; });
  }

  function fit() {
    if (!st.image) return;
    const box = $("stage").getBoundingClientRect();
    st.s = Math.min(box.width / st.image.nx, box.height / st.image.ny);
    st.tx = (box.width - st.image.nx * st.s) / 2;
    st.ty = (box.height - st.image.ny * st.s) / 2;
    applyTransform();
  }

  function zoom(factor, cx, cy) {
    const box = $("stage").getBoundingClientRect();
    if (cx === undefined) { cx = box.width / 2; cy = box.height / 2; }
    const s = Math.min(64, Math.max(0.02, st.s * factor));
    const f = s / st.s;
    st.tx = cx - (cx - st.tx) * f;
    st.ty = cy - (cy - st.ty) * f;
    st.s = s;
    applyTransform();
  }

  function setImage() {
    const im = st.image;
    document.body.dataset.loaded = "";
    $("image").src = `${im.image_url}?stretch=${encodeURIComponent(st.stretch)}`;
    $("mask").src = im.mask_url;
  }

  function renderMarks() {
    const list = $("marks");
    const layer = $("markers");
    list.replaceChildren();
    layer.replaceChildren();
    st.marks.forEach((m, i) => {
      const li = document.createElement("li");
      const text = `${classes[m.problem].label}${m.label ? ` "${m.label}"` : ""}` +
        `${m.false_positive ? " (false positive)" : ""} at (${m.x.toFixed(1)}, ${m.y.toFixed(1)})`;
      li.textContent = text;
      const rm = document.createElement("button");
      rm.type = "button";
      rm.textContent = "remove";
      rm.addEventListener("click", () => { st.marks.splice(i, 1); renderMarks(); });
      li.appendChild(rm);
      list.appendChild(li);
      const dot = document.createElement("div");
      dot.className = m.false_positive ? "marker fp" : "marker";
      dot.style.left = `${m.x + 0.5}px`;
      dot.style.top = `${st.image.ny - m.y - 0.5}px`;
      const tag = document.createElement("span");
      tag.textContent = String(i + 1);
      dot.appendChild(tag);
      layer.appendChild(dot);
    });
    applyTransform();
  }

  function showImage(im) {
    st.image = im;
    st.marks = [];
    document.body.dataset.imageId = im ? String(im.id) : "";
    $("empty").classList.toggle("hidden", !!im);
    $("canvas").classList.toggle("hidden", !im);
    if (!im) return;
    $("image-key").textContent = im.key;
    $("image-band").textContent = im.band;
    $("image-visit").textContent = im.visit;
    $("image-detector").textContent = im.detector || "-";
    $("image-checks").textContent = String(im.n_checks);
    $("canvas").style.width = `${im.nx}px`;
    $("canvas").style.height = `${im.ny}px`;
    setImage();
    renderMarks();
    fit();
  }

  async function loadNext() {
    try {
      const r = await api("GET", "/api/next");
      if (!r.image) {
        $("empty").textContent = r.message || "nothing left to check";
        showImage(null);
        return;
      }
      showImage(r.image);
    } catch (e) {
      status(`could not load the next image: ${e.message}`, true);
    }
  }

  function addMark(clientX, clientY) {
    if (!st.image) return;
    if (!st.cls) { status("pick a problem class first (a button or its key)", true); return; }
    const label = $("label").value.trim();
    if (st.cls === "other" && !label) { status('class "other" needs a label', true); return; }
    const r = $("image").getBoundingClientRect();
    const col = ((clientX - r.left) / r.width) * st.image.nx;
    const row = ((clientY - r.top) / r.height) * st.image.ny;
    const x = Math.min(st.image.nx - 0.5, Math.max(-0.5, col - 0.5));
    const y = Math.min(st.image.ny - 0.5, Math.max(-0.5, st.image.ny - row - 0.5));
    st.marks.push({ x, y, problem: st.cls, label: label || null,
      false_positive: $("false-positive").checked });
    $("false-positive").checked = false;
    status(`marked ${classes[st.cls].label}`);
    renderMarks();
  }

  async function send(verdict) {
    if (!st.image || st.busy) return;
    if (verdict === "problem" && st.marks.length === 0) {
      status("mark a problem first, or press No problem", true);
      return;
    }
    if (verdict === "fine" && st.marks.length > 0) {
      status("remove your marks first, or submit them", true);
      return;
    }
    st.busy = true;
    try {
      const marks = verdict === "fine" ? [] : st.marks;
      const r = await api("POST", `/api/images/${st.image.id}/checks`, { verdict, marks });
      counts.checks += 1;
      counts.reports += r.reports.length;
      $("my-checks").textContent = String(counts.checks);
      $("my-reports").textContent = String(counts.reports);
      status(verdict === "fine" ? "saved: no problem" : `saved ${r.reports.length} problem(s)`);
      $("label").value = "";
      await loadNext();
    } catch (e) {
      status(`not saved: ${e.message}`, true);
      if (e.status === 409 || e.status === 404) await loadNext();
    } finally {
      st.busy = false;
    }
  }

  function selectClass(code) {
    st.cls = code;
    document.querySelectorAll(".cls").forEach((b) => b.classList.toggle("selected", b.dataset.code === code));
    if (code === "other") $("label").focus();
  }

  document.querySelectorAll(".cls").forEach((b) => b.addEventListener("click", () => selectClass(b.dataset.code)));
  $("submit").addEventListener("click", () => send("problem"));
  $("fine").addEventListener("click", () => send("fine"));
  $("stretch").addEventListener("change", () => { st.stretch = $("stretch").value; if (st.image) setImage(); });
  $("mask-toggle").addEventListener("change", () => $("mask").classList.toggle("hidden", !$("mask-toggle").checked));
  $("zoom-in").addEventListener("click", () => zoom(1.5));
  $("zoom-out").addEventListener("click", () => zoom(1 / 1.5));
  $("zoom-reset").addEventListener("click", fit);
  $("image").addEventListener("load", () => { document.body.dataset.loaded = String(st.image ? st.image.id : ""); });
  window.addEventListener("resize", fit);

  const stage = $("stage");
  let drag = null;
  stage.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, tx: st.tx, ty: st.ty, moved: false };
    stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    if (drag.moved) { st.tx = drag.tx + dx; st.ty = drag.ty + dy; applyTransform(); }
  });
  stage.addEventListener("pointerup", (e) => {
    if (drag && !drag.moved) addMark(e.clientX, e.clientY);
    drag = null;
  });
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = stage.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });

  document.addEventListener("keydown", (e) => {
    const typing = (e.target instanceof HTMLInputElement && e.target.type === "text") ||
      e.target instanceof HTMLSelectElement;
    if (typing) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    if (byKey[k]) selectClass(byKey[k]);
    else if (k === "n") send("fine");
    else if (k === "Enter") send("problem");
    else if (k === "u") { st.marks.pop(); renderMarks(); }
    else if (k === "f") $("false-positive").checked = !$("false-positive").checked;
    else if (k === "m") { $("mask-toggle").checked = !$("mask-toggle").checked; $("mask-toggle").dispatchEvent(new Event("change")); }
    else if (k === "z") { $("stretch").value = st.stretch === "asinh" ? "zscale" : "asinh"; $("stretch").dispatchEvent(new Event("change")); }
    else if (k === "+" || k === "=") zoom(1.5);
    else if (k === "-") zoom(1 / 1.5);
    else if (k === "0") fit();
    else return;
    e.preventDefault();
  });

  loadNext();
})();

// metricgate's web console: manages API keys through the admin API.
//
// The admin key lives in this script's memory only: not in localStorage,
// sessionStorage, a cookie or a URL, so a reload signs out. It is sent as
// "Authorization: Bearer", which a browser never adds to another site's
// request. Everything the server says is put in the page as text, never as
// HTML.
"use strict";

(function () {
  const state = { key: null, keys: [], editing: null, revoking: null, rotating: null };
  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat("en");

  // ---- the admin API ----

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = {
      method,
      headers: { "Authorization": "Bearer " + state.key, "Accept": "application/json" },
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      referrerPolicy: "no-referrer",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new APIError(0, "The gateway cannot be reached: " + e.message);
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      let msg = (data && (data.message || data.error)) || resp.statusText || "request failed";
      if (resp.status === 429 && resp.headers.get("Retry-After")) {
        msg += " (retry after " + resp.headers.get("Retry-After") + " s)";
      }
      throw new APIError(resp.status, msg);
    }
    return data;
  }

  // A 401 in the middle of a session means the admin key stopped working
  // (revoked, expired): go back to the sign-in form.
  function handleError(err, where) {
    if (err instanceof APIError && err.status === 401 && state.key) {
      signOut("Your admin key is no longer accepted (revoked, expired or not bound to this address). Sign in again.");
      return;
    }
    where.textContent = err.message;
  }

  // ---- signing in and out ----

  async function signIn(ev) {
    ev.preventDefault();
    const input = $("signin-key");
    const key = input.value.trim();
    $("signin-error").textContent = "";
    if (!key) {
      $("signin-error").textContent = "Paste an admin key.";
      return;
    }
    state.key = key;
    $("signin-submit").disabled = true;
    let keys;
    try {
      keys = await api("GET", listPath());
    } catch (err) {
      state.key = null;
      if (err instanceof APIError && err.status === 401) {
        $("signin-error").textContent = "This key is not accepted: it is unknown, revoked or expired, or not bound to this computer's address.";
      } else {
        $("signin-error").textContent = err.message;
      }
      return;
    } finally {
      $("signin-submit").disabled = false;
    }
    input.value = "";
    $("session-who").textContent = "signed in with " + key.slice(0, 8) + "…";
    $("session").hidden = false;
    $("signin-view").hidden = true;
    $("keys-view").hidden = false;
    state.keys = keys;
    render();
  }

  function signOut(message) {
    state.key = null;
    state.keys = [];
    $("keys-body").replaceChildren();
    for (const d of document.querySelectorAll("dialog")) {
      if (d.open) d.close();
    }
    $("secret-value").value = "";
    $("session").hidden = true;
    $("keys-view").hidden = true;
    $("signin-view").hidden = false;
    $("signin-error").textContent = message || "";
    $("signin-key").focus();
  }

  // ---- the key list ----

  function listPath() {
    const params = new URLSearchParams({ status: $("filter-status").value });
    const host = $("filter-host").value.trim();
    if (host) params.set("hostname", host);
    return "api/keys?" + params.toString();
  }

  // load lists the keys again. The table is aria-busy until it shows them.
  async function load() {
    const table = $("keys-table");
    table.setAttribute("aria-busy", "true");
    try {
      state.keys = await api("GET", listPath());
      render();
    } catch (err) {
      handleError(err, $("notice"));
      $("notice").classList.add("bad");
    } finally {
      table.setAttribute("aria-busy", "false");
    }
  }

  function render() {
    const body = $("keys-body");
    const busiest = Math.max(0, ...state.keys.map((k) => k.points));
    body.replaceChildren(...state.keys.map((k) => row(k, busiest)));
    $("empty").hidden = state.keys.length > 0;
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "class") e.className = value;
      else if (name === "title") e.title = value;
      else if (name.startsWith("data-")) e.setAttribute(name, value);
      else e[name] = value;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function row(k, busiest) {
    const tr = el("tr", { "data-key-id": String(k.id), "data-prefix": k.prefix, "data-status": k.status });
    tr.append(
      el("td", { class: "num mono" }, k.id),
      el("td", {}, el("span", { class: "mono" }, k.hostname), el("span", { class: "sub mono" }, k.prefix + "…")),
      el("td", { class: "desc" }, k.description || "—"),
      el("td", {}, el("span", { class: "status status-" + k.status }, k.status), quarantineBadge(k)),
      el("td", {}, ...k.scopes.map((s) => el("span", { class: "scope scope-" + s }, s)), policyNote(k)),
      el("td", { title: k.created_at }, formatDate(k.created_at)),
      el("td", {}, expiryText(k)),
      lastUsedCell(k),
      el("td", {}, usage(k, busiest)),
      actions(k),
    );
    return tr;
  }

  function policyNote(k) {
    const parts = [];
    if (k.rate) parts.push("≤ " + numberFormat.format(k.rate) + " pts/s" + (k.burst ? ", burst " + numberFormat.format(k.burst) : ""));
    else if (k.burst) parts.push("burst " + numberFormat.format(k.burst));
    if (k.measurements.length) parts.push("only " + k.measurements.join(", "));
    if (k.bucket) parts.push("bucket " + k.bucket);
    if (k.max_series) parts.push("≤ " + numberFormat.format(k.max_series) + " series/h");
    return parts.length ? el("span", { class: "sub policy" }, parts.join(" · ")) : null;
  }

  // quarantineBadge marks a key whose writes the gateway refuses because
  // InfluxDB kept refusing its points, its title saying since when and
  // why, with the button that releases it.
  function quarantineBadge(k) {
    if (!k.quarantined) return null;
    return el("div", { class: "quarantine" },
      el("span", { class: "status status-quarantined", title: "since " + formatTime(k.quarantined_at) + " UTC: " + k.quarantine_reason },
        "quarantined"),
      el("button", { type: "button", class: "small quiet release", onclick: () => release(k) }, "Release"));
  }

  function expiryText(k) {
    if (k.status === "revoked") {
      return el("span", { title: "revoked at " + k.revoked_at }, "—", el("span", { class: "sub" }, "revoked " + formatTime(k.revoked_at)));
    }
    if (!k.expires_at) return "never";
    return formatTime(k.expires_at);
  }

  function lastUsedCell(k) {
    if (!k.last_used_at) return el("td", {}, el("span", { class: "sub" }, "never"));
    return el("td", { title: k.last_used_at + " from " + k.last_used_addr },
      ago(k.last_used_at), el("span", { class: "sub mono" }, "from " + k.last_used_addr));
  }

  // usage draws the key's points as a bar relative to the busiest key
  // listed: the counts the store keeps, nothing more.
  function usage(k, busiest) {
    const width = 80, height = 8;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");
    const share = busiest > 0 ? k.points / busiest : 0;
    svg.setAttribute("aria-label", busiest > 0 ? Math.round(share * 100) + "% of the busiest key's points" : "no points yet");
    const track = document.createElementNS(ns, "rect");
    track.setAttribute("class", "bar-track");
    track.setAttribute("width", width);
    track.setAttribute("height", height);
    track.setAttribute("rx", 2);
    svg.append(track);
    if (k.points > 0) {
      const fill = document.createElementNS(ns, "rect");
      fill.setAttribute("class", "bar-fill");
      fill.setAttribute("width", Math.max(2, share * width).toFixed(1));
      fill.setAttribute("height", height);
      fill.setAttribute("rx", 2);
      svg.append(fill);
    }
    return el("div", { class: "usage" }, svg,
      el("span", {}, count(k.points, "point"), el("span", { class: "sub" }, count(k.requests, "request"))));
  }

  function actions(k) {
    const td = el("td", { class: "actions" });
    if (k.status === "revoked") return td;
    td.append(el("button", { type: "button", class: "small quiet edit", onclick: () => openEdit(k) }, "Edit"));
    if (k.status === "active") {
      td.append(el("button", { type: "button", class: "small quiet rotate", onclick: () => openRotate(k) }, "Rotate"));
    }
    td.append(el("button", { type: "button", class: "small danger revoke", onclick: () => openRevoke(k) }, "Revoke"));
    return td;
  }

  function count(n, what) {
    return numberFormat.format(n) + " " + what + (n === 1 ? "" : "s");
  }

  function formatDate(iso) {
    return iso ? iso.slice(0, 10) : "—";
  }

  function formatTime(iso) {
    if (!iso) return "—";
    return iso.replace("T", " ").replace(/:\d\dZ$/, "");
  }

  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 5) return "just now";
    if (s < 90) return s + " s ago";
    if (s < 90 * 60) return Math.round(s / 60) + " min ago";
    if (s < 36 * 3600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  function describe(k) {
    return "key " + k.id + " (" + k.prefix + "…, host " + k.hostname + ")";
  }

  function notice(text) {
    $("notice").classList.remove("bad");
    $("notice").textContent = text;
  }

  // ---- creating a key ----

  function openCreate() {
    $("create-form").reset();
    $("create-error").textContent = "";
    $("create-dialog").showModal();
    $("create-hostname").focus();
  }

  function listField(value) {
    return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }

  function scopesFrom(prefix) {
    const scopes = [];
    if ($(prefix + "-scope-submit").checked) scopes.push("submit");
    if ($(prefix + "-scope-admin").checked) scopes.push("admin");
    return scopes;
  }

  async function create(ev) {
    ev.preventDefault();
    $("create-error").textContent = "";
    const scopes = scopesFrom("create");
    if (scopes.length === 0) {
      $("create-error").textContent = "Choose at least one scope.";
      return;
    }
    const req = {
      hostname: $("create-hostname").value.trim(),
      description: $("create-description").value,
      scopes,
      measurements: listField($("create-measurements").value),
      rate: Number($("create-rate").value || 0),
      burst: Number($("create-burst").value || 0),
      bucket: $("create-bucket").value.trim(),
      max_series: Number($("create-max-series").value || 0),
    };
    const days = $("create-expires").value.trim();
    if (days) req.expires_in = Math.round(Number(days) * 24) + "h";
    $("create-submit").disabled = true;
    try {
      const k = await api("POST", "api/keys", req);
      $("create-dialog").close();
      showSecret("Key created", "Key " + k.id + " for host " + k.hostname + ".", k.key);
      notice("Created " + describe(k) + ".");
      await load();
    } catch (err) {
      handleError(err, $("create-error"));
    } finally {
      $("create-submit").disabled = false;
    }
  }

  function showSecret(title, about, value) {
    $("secret-title").textContent = title;
    $("secret-about").textContent = about;
    $("secret-value").value = value;
    $("secret-copy").textContent = "Copy";
    $("secret-dialog").showModal();
    $("secret-value").select();
  }

  async function copySecret() {
    const input = $("secret-value");
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (e) {
      input.select();
      document.execCommand("copy");
    }
    $("secret-copy").textContent = "Copied";
  }

  // ---- editing ----

  function openEdit(k) {
    state.editing = k;
    $("edit-title").textContent = "Edit " + describe(k);
    $("edit-description").value = k.description;
    $("edit-expiry").value = "keep";
    $("edit-days").value = "";
    $("edit-days").disabled = true;
    $("edit-current-expiry").textContent = k.expires_at ? "Now expires " + formatTime(k.expires_at) + " UTC." : "Now never expires.";
    $("edit-scope-submit").checked = k.scopes.includes("submit");
    $("edit-scope-admin").checked = k.scopes.includes("admin");
    $("edit-measurements").value = k.measurements.join(", ");
    $("edit-rate").value = k.rate;
    $("edit-burst").value = k.burst;
    $("edit-bucket").value = k.bucket;
    $("edit-max-series").value = k.max_series;
    $("edit-error").textContent = "";
    $("edit-dialog").showModal();
  }

  async function saveEdit(ev) {
    ev.preventDefault();
    const k = state.editing;
    const patch = {};
    $("edit-error").textContent = "";
    if ($("edit-description").value !== k.description) patch.description = $("edit-description").value;
    switch ($("edit-expiry").value) {
      case "never":
        patch.no_expiry = true;
        break;
      case "days": {
        const days = Number($("edit-days").value);
        if (!(days > 0)) {
          $("edit-error").textContent = "Give a number of days.";
          return;
        }
        patch.expires_in = Math.round(days * 24) + "h";
        break;
      }
    }
    const scopes = scopesFrom("edit");
    if (scopes.length === 0) {
      $("edit-error").textContent = "Choose at least one scope.";
      return;
    }
    const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
    if (!sameSet(scopes, k.scopes)) patch.scopes = scopes;
    const ms = listField($("edit-measurements").value);
    if (ms.join(",") !== k.measurements.join(",")) patch.measurements = ms;
    const rate = Number($("edit-rate").value || 0);
    if (rate !== k.rate) patch.rate = rate;
    const burst = Number($("edit-burst").value || 0);
    if (burst !== k.burst) patch.burst = burst;
    const bucket = $("edit-bucket").value.trim();
    if (bucket !== k.bucket) patch.bucket = bucket;
    const series = Number($("edit-max-series").value || 0);
    if (series !== k.max_series) patch.max_series = series;
    if (Object.keys(patch).length === 0) {
      $("edit-dialog").close();
      notice("Nothing changed.");
      return;
    }
    $("edit-submit").disabled = true;
    try {
      const updated = await api("PATCH", "api/keys/" + k.id, patch);
      $("edit-dialog").close();
      notice("Updated " + describe(updated) + ".");
      await load();
    } catch (err) {
      handleError(err, $("edit-error"));
    } finally {
      $("edit-submit").disabled = false;
    }
  }

  // ---- rotating ----

  function openRotate(k) {
    state.rotating = k;
    $("rotate-title").textContent = "Rotate " + describe(k);
    $("rotate-grace").value = "24h";
    $("rotate-error").textContent = "";
    $("rotate-dialog").showModal();
  }

  async function rotate(ev) {
    ev.preventDefault();
    const k = state.rotating;
    $("rotate-submit").disabled = true;
    try {
      const nk = await api("POST", "api/keys/" + k.id + "/rotate", { grace: $("rotate-grace").value });
      $("rotate-dialog").close();
      const until = nk.old_key_expires_at && Date.parse(nk.old_key_expires_at) > Date.now()
        ? "keeps working until " + formatTime(nk.old_key_expires_at) + " UTC"
        : "has stopped working";
      showSecret("Key rotated", "Key " + nk.id + " replaces key " + nk.old_key_id + ", which " + until + ".", nk.key);
      notice("Rotated key " + k.id + ".");
      await load();
    } catch (err) {
      handleError(err, $("rotate-error"));
    } finally {
      $("rotate-submit").disabled = false;
    }
  }

  // ---- releasing ----

  async function release(k) {
    try {
      await api("POST", "api/keys/" + k.id + "/release");
      notice("Released " + describe(k) + ": its writes are taken again.");
      await load();
    } catch (err) {
      handleError(err, $("notice"));
      $("notice").classList.add("bad");
    }
  }

  // ---- revoking ----

  function openRevoke(k) {
    state.revoking = k;
    $("confirm-title").textContent = "Revoke key " + k.id + "?";
    $("confirm-text").textContent = "Revoke " + describe(k) +
      (k.description ? ", “" + k.description + "”" : "") +
      "? It stops working on its next request. This cannot be undone.";
    $("confirm-error").textContent = "";
    $("confirm-dialog").showModal();
  }

  async function revoke(ev) {
    ev.preventDefault();
    const k = state.revoking;
    $("confirm-ok").disabled = true;
    try {
      await api("POST", "api/keys/" + k.id + "/revoke");
      $("confirm-dialog").close();
      notice("Revoked " + describe(k) + ".");
      await load();
    } catch (err) {
      handleError(err, $("confirm-error"));
    } finally {
      $("confirm-ok").disabled = false;
    }
  }

  // ---- wiring ----

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut(""));
    $("filter-form").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    $("filter-status").addEventListener("change", load);
    $("new-key").addEventListener("click", openCreate);
    $("create-form").addEventListener("submit", create);
    $("edit-form").addEventListener("submit", saveEdit);
    $("edit-expiry").addEventListener("change", () => {
      $("edit-days").disabled = $("edit-expiry").value !== "days";
      if (!$("edit-days").disabled) $("edit-days").focus();
    });
    $("rotate-form").addEventListener("submit", rotate);
    $("confirm-form").addEventListener("submit", revoke);
    $("secret-copy").addEventListener("click", copySecret);
    $("secret-done").addEventListener("click", () => {
      $("secret-value").value = "";
      $("secret-dialog").close();
    });
    $("secret-dialog").addEventListener("close", () => { $("secret-value").value = ""; });
    for (const b of document.querySelectorAll("[data-close]")) {
      b.addEventListener("click", () => b.closest("dialog").close());
    }
    $("signin-key").focus();
  });
})();

// The contribute page: a snippet form and a data-set upload with progress and a per-row report.
import { api, apiKey, ApiError, h, installKeyDialog } from "/static/api.js";

const $ = (id) => document.getElementById(id);
const ADDRESS_KEY = "openchat.contributor";
const contributor = $("contributor");
const openKeyDialog = installKeyDialog($("key-button"));

// The payout address is public, not a secret: remembered across visits.
contributor.value = localStorage.getItem(ADDRESS_KEY) || "";
const syncAddress = () => {
  const address = contributor.value.trim();
  localStorage.setItem(ADDRESS_KEY, address);
  $("earnings-link").href = address ? `/earnings/${encodeURIComponent(address)}` : "/earnings";
};
contributor.addEventListener("input", syncAddress);
syncAddress();

function show(box, kind, ...children) {
  box.hidden = false;
  box.className = `result ${kind}`;
  box.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

function errorText(err) {
  if (err instanceof ApiError && err.status === 401) openKeyDialog(err.explain());
  return err instanceof ApiError ? err.explain() : `The request failed: ${err.message}`;
}

/** stored / duplicate / near duplicate / rejected counts, then the reasons, by row. */
function report(r) {
  const counts = h("div", { class: "counts" },
    h("span", {}, h("b", { text: String(r.chunks_stored) }), " stored"),
    h("span", {}, h("b", { text: String(r.chunks_duplicate) }), " duplicate"),
    h("span", {}, h("b", { text: String(r.chunks_near_duplicate) }), " near duplicate"),
    h("span", {}, h("b", { text: String(r.rows_rejected) }), " rejected"));
  const reasons = [];
  for (const e of r.errors || []) reasons.push(h("li", { class: "reason-rejected", text: `line ${e.line}: ${e.error}` }));
  for (const d of r.duplicates || []) {
    if (d.kind === "copied_sentence") {  // origin per sentence (docs/retrieval.md, Sentence origin)
      const whom = d.origin_contributor ? ` by ${d.origin_contributor}` : "";
      const outcome = d.outcome === "sentence_removed" ? "taken out, the rest stored" : "nothing of its own left, not stored";
      reasons.push(h("li", { class: "reason-duplicate",
        text: `${d.line ? `line ${d.line}: ` : ""}sentence "${d.sentence || ""}" copies stored chunk ${d.chunk_id}${whom}: ${outcome}` }));
      continue;
    }
    const what = d.kind === "near_duplicate" ? "near copy" : "copy";
    const of = d.chunk_id !== undefined ? `of stored chunk ${d.chunk_id}` : d.same_as_line !== undefined ? `of line ${d.same_as_line}` : "";
    const sim = d.similarity !== undefined ? ` (similarity ${d.similarity})` : "";
    const reason = d.reason ? ` (${d.reason})` : "";
    reasons.push(h("li", { class: "reason-duplicate", text: `${d.line ? `line ${d.line}: ` : ""}${what} ${of}${sim}${reason}, not stored` }));
  }
  const shown = reasons.slice(0, 100);
  const more = reasons.length > shown.length ? h("p", { class: "muted small", text: `…and ${reasons.length - shown.length} more` }) : null;
  return [counts, shown.length ? h("ul", {}, shown) : null, more];
}

function kindOf(r) {
  if (r.status === "failed" || r.error) return "error";
  return r.chunks_stored > 0 && !r.rows_rejected ? "ok" : "warn";
}

// ---------------------------------------------------------------- snippet
$("snippet-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("snippet-result");
  const button = $("snippet-submit");
  const body = {
    text: $("snippet-text").value,
    contributor: contributor.value.trim(),
    title: $("snippet-title").value.trim() || undefined,
    source: $("snippet-source").value.trim() || undefined,
    licence: $("snippet-licence").value.trim() || undefined,
  };
  if (!body.contributor) {
    show(box, "error", "Enter your payout address first (a 0x… address).");
    contributor.focus();
    return;
  }
  button.disabled = true;
  try {
    const r = await api("/v1/contributions", { method: "POST", body });
    show(box, kindOf(r), h("h3", { text: r.chunks_stored ? "Stored. It can be cited from now on." : "Nothing new was stored." }), ...report(r));
    $("snippet-text").value = "";
  } catch (err) {
    const duplicate = err instanceof ApiError && err.status === 409;
    show(box, duplicate ? "warn" : "error", h("h3", { text: duplicate ? "Duplicate: not stored" : "Not stored" }),
      h("p", { text: errorText(err) }));
  } finally {
    button.disabled = false;
  }
});

// ---------------------------------------------------------------- data set
/** XMLHttpRequest, not fetch(): only XHR reports upload progress. */
function upload(form, onProgress) {
  return apiKey().then((key) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/datasets");
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new ApiError(xhr.status, xhr.response));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload was interrupted")));
    xhr.send(form);
  }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

$("dataset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("dataset-result");
  const file = $("dataset-file").files[0];
  const bar = $("dataset-bar");
  const label = $("dataset-progress-label");
  if (!contributor.value.trim()) {
    show(box, "error", "Enter your payout address first (a 0x… address).");
    contributor.focus();
    return;
  }
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("contributor", contributor.value.trim());
  if ($("dataset-title").value.trim()) form.append("title", $("dataset-title").value.trim());
  if ($("dataset-licence").value.trim()) form.append("licence", $("dataset-licence").value.trim());
  box.hidden = true;
  $("dataset-progress").hidden = false;
  $("dataset-submit").disabled = true;
  try {
    let r = await upload(form, (f) => {
      bar.value = f * 0.5;
      label.textContent = `Uploading ${file.name}: ${Math.round(f * 100)}%`;
    });
    while (r.status === "processing") {
      bar.value = 0.5 + r.progress * 0.5;
      label.textContent = `Reading ${file.name}: ${Math.round(r.progress * 100)}% · ${r.chunks_stored} chunks stored so far`;
      await sleep(400);
      r = await api(`/v1/datasets/${r.id}`);
    }
    bar.value = 1;
    label.textContent = `${file.name}: done`;
    const title = r.error ? `Failed: ${r.error}` : `Read ${r.rows} rows of ${file.name}.`;
    show(box, kindOf(r), h("h3", { text: title }), ...report(r));
  } catch (err) {
    label.textContent = "";
    $("dataset-progress").hidden = true;
    show(box, "error", h("h3", { text: "Upload refused" }), h("p", { text: errorText(err) }));
  } finally {
    $("dataset-submit").disabled = false;
  }
});


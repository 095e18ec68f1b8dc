// What every part of the page shares: finding elements, calling the server, showing an
// error or a status line.

export const $ = (selector, root = document) => root.querySelector(selector);

// The JSON answer of GET `path` (no body) or POST `path` with `body`; an error answer
// (every one is {"detail": "one line"}) throws an Error "STATUS: detail".
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON: reported below */ }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

export function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

export function showStatus(message) {
  $("#status").textContent = message || "";
}

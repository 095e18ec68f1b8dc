// What every part of the page shares: finding elements, calling the server, showing an
// error or a status line.

export const $ = (selector, root = document) => root.querySelector(selector);

// The server's API key, when it needs one: kept in this tab only (sessionStorage: gone
// when the tab closes, never shared with other tabs, never in localStorage or a cookie).
const KEY = "attnmt-api-key";
export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

// The JSON answer of GET `path` (no body) or POST `path` with `body`, sending the API key
// if there is one; an error answer (every one is {"detail": "one line"}) throws an Error
// "STATUS: detail". A 401 forgets the key and asks for one (the "needs-key" event).
export async function api(path, body) {
  const headers = body === undefined ? {} : { "content-type": "application/json" };
  const key = apiKey.get();
  if (key) headers.authorization = `Bearer ${key}`;
  const init = body === undefined ? { headers } : {
    method: "POST", headers, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON: reported below */ }
  if (response.status === 401) {
    apiKey.clear();
    document.dispatchEvent(new CustomEvent("needs-key", { detail: Boolean(key) }));
  }
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

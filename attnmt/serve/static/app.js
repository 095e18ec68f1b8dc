// The attention explorer, the page of `attnmt serve`: a Translate tab (translate.js) and
// a Chat tab (chat.js), each showing where the model looked (heatmap.js). Plain JS
// modules and SVG, no libraries and no build step.

import { $, api, apiKey, showError, showStatus } from "./common.js";
import { setupChat, wireChat } from "./chat.js";
import { setupTranslate, wireTranslate } from "./translate.js";

const TABS = ["translate", "chat"];
let loaded = false;  // the models are listed (once: a new key later needs no reload)

// Show one tab (and say so in the address: #translate or #chat).
function openTab(name, focus = false) {
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    const selected = tab === name;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#${tab}-tab`).hidden = !selected;
    if (selected && focus) button.focus();
  }
  showError("");
  showStatus("");
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function wireTabs() {
  TABS.forEach((name, i) => {
    const button = $(`#tab-${name}`);
    button.addEventListener("click", () => openTab(name));
    button.addEventListener("keydown", (e) => {  // arrows move between tabs
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) openTab(TABS[(i + step + TABS.length) % TABS.length], true);
    });
  });
}

// The key form: shown when the server answers 401 (no key, or a wrong one), it keeps the
// key in this tab (common.js) and loads the models again.
function wireKeyForm() {
  const form = $("#key-form");
  document.addEventListener("needs-key", (event) => {
    $("#key-note").textContent = event.detail
      ? "The server refused that API key. Enter another."
      : "This server needs an API key.";
    form.hidden = false;
    $("#api-key").focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    if (!key) return;
    apiKey.set(key);
    $("#api-key").value = "";
    form.hidden = true;
    showError("");
    if (!loaded) loadModels();
  });
}

async function loadModels() {
  let answer;
  try {
    answer = await api("/models");
  } catch (error) {
    showError(`Could not list the models: ${error.message}`);
    return;
  }
  loaded = true;
  setupTranslate(answer.models, answer.default);
  setupChat(answer.models);
  const asked = location.hash.slice(1);
  const first = answer.models.find((m) => m.name === answer.default);
  openTab(TABS.includes(asked) ? asked : first && first.task === "dialogue" ? "chat" : "translate");
}

function main() {
  wireTabs();
  wireTranslate();
  wireChat();
  wireKeyForm();
  loadModels();
}

main();

// The Chat tab: a conversation with a dialogue model, and for each reply where it looked
// in what the model read and the candidates it was chosen from. The data comes from
// POST /chat: `reply`, `tokens` (its words), `source_tokens` (the words read: the last
// context turns and the message, joined by |||), `unknown` (the words read as the
// unknown piece, shown as written), `attention` ((tokens + EOS) x words read),
// `candidates` (best first: text, forward, backward, score, and each one's tokens and
// attention) and `reranked`. Choosing a candidate shows its attention; the reply, its own.
// The server keeps no conversation: each message is sent with the turns before it.

import { $, api, showError, showStatus } from "./common.js";
import { AttentionView, EOS, UNKNOWN_NOTE } from "./heatmap.js";

const SEPARATOR = "|||";  // between the turns the model reads (data.chitchat.SEPARATOR)

// turns: {role: "user" | "bot", text, answer (a bot turn's /chat answer)}, oldest first
// selected: the bot turn shown; candidate: which of its candidates the map shows (0: the reply)
const chat = { models: [], turns: [], selected: null, candidate: 0, view: null, busy: false };

const info = () => chat.models.find((m) => m.name === $("#chat-model").value);
const candidatesOf = (model) => (model.rerank ? model.rerank.candidates : 1);

// ---------------------------------------------------------------------------- the options

// The options a model starts with: its own decoding settings, and reranking when it has
// a backward run (with a beam wide enough for its candidates when it searches).
function resetOptions() {
  const model = info();
  if (!model) return;
  const decode = model.decode || {};
  const rerank = $("#rerank");
  rerank.disabled = !model.reranker;
  rerank.checked = Boolean(model.reranker);
  rerank.title = model.reranker
    ? `backward run: ${model.reranker}`
    : `no backward run: start the server with --rerank ${model.name}=BACKWARD_RUN`;
  $("#chat-sample").checked = Boolean(decode.sample);
  const beam = decode.beam || 1;
  $("#chat-beam").value = model.reranker && !decode.sample ? Math.max(beam, candidatesOf(model)) : beam;
  $("#chat-beam").disabled = $("#chat-sample").checked;
}

// Reranking by beam search needs a beam of at least the candidates: raise it, visibly.
function onRerank() {
  const model = info();
  const beam = $("#chat-beam");
  if ($("#rerank").checked && !$("#chat-sample").checked && +beam.value < candidatesOf(model)) {
    beam.value = candidatesOf(model);
  }
}

// ---------------------------------------------------------------------------- the conversation

function drawConversation() {
  const list = $("#conversation");
  list.textContent = "";
  chat.turns.forEach((turn, k) => {
    const item = document.createElement("li");
    item.className = `turn ${turn.role}`;
    if (turn.pending) item.classList.add("pending");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = turn.role === "user" ? "You" : turn.model;
    item.append(who);
    if (turn.role === "user") {
      const text = document.createElement("p");
      text.className = "text";
      text.textContent = turn.text;
      item.append(text);
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "text reply";
      button.dataset.turn = k;
      button.setAttribute("aria-pressed", String(chat.selected === k));
      button.title = "Show where this reply looked and its candidates";
      button.textContent = turn.text || "(empty)";
      button.addEventListener("click", () => select(k));
      const meta = document.createElement("span");
      meta.className = "meta";
      const count = turn.answer.candidates.length;
      meta.textContent = turn.answer.reranked
        ? `best of ${count} by MMI`
        : `${count} candidate${count === 1 ? "" : "s"}, not reranked`;
      item.append(button, meta);
    }
    list.append(item);
  });
  list.scrollTop = list.scrollHeight;
}

// Show reply `k`'s details: what the model read, the attention, the candidates.
function select(k) {
  chat.selected = k;
  const turn = chat.turns[k];
  const answer = turn.answer;
  const panel = $("#reply-panel");
  panel.hidden = false;
  for (const button of document.querySelectorAll("#conversation .reply")) {
    button.setAttribute("aria-pressed", String(+button.dataset.turn === k));
  }
  $(".reply-title", panel).textContent = `“${answer.reply || "(empty)"}”`;
  drawRead(answer.source_tokens, answer.unknown || []);
  chat.view.unpin();  // other words
  drawCandidates(answer, turn.model);
  showCandidate(0);
}

// Show candidate `i` of the selected reply in the map (0: the reply), its row marked.
function showCandidate(i) {
  const answer = chat.turns[chat.selected].answer;
  const candidate = answer.candidates[i];
  chat.candidate = i;
  const [tokens, attention] = i === 0 || !candidate.tokens
    ? [answer.tokens, answer.attention]
    : [candidate.tokens, candidate.attention];
  chat.view.show(answer.source_tokens, [...tokens, EOS], attention, answer.unknown || []);
  $("#reply-panel .heatmap-box h3").firstChild.textContent = i === 0
    ? "Attention of the reply "
    : `Attention of candidate ${i + 1} (marked below) `;
  $("#reply-panel .heatmap-box .axis-note").textContent = i === 0
    ? "rows: reply, columns: what the model read"
    : "rows: candidate, columns: what the model read";
  for (const row of $("#candidates tbody").rows) {
    const selected = +row.dataset.candidate === i;
    row.classList.toggle("selected", selected);
    row.setAttribute("aria-selected", String(selected));
  }
}

// The words the model read, each turn on its own, the message last; a word read as the
// unknown piece is marked.
function drawRead(words, unknown) {
  const box = $("#read");
  box.textContent = "";
  const marked = new Set(unknown);
  const turns = [[]];
  words.forEach((word, j) => {
    if (word === SEPARATOR) turns.push([]);
    else turns[turns.length - 1].push([word, marked.has(j)]);
  });
  turns.forEach((turn, i) => {
    const line = document.createElement("li");
    turn.forEach(([word, isUnknown], w) => {
      if (w) line.append(" ");
      const span = document.createElement("span");
      span.textContent = word;
      if (isUnknown) {
        span.className = "unknown";
        span.title = UNKNOWN_NOTE;
      }
      line.append(span);
    });
    if (i === turns.length - 1) line.className = "message";
    box.append(line);
  });
}

function drawCandidates(answer, name) {
  const body = $("#candidates tbody");
  body.textContent = "";
  const number = (value) => (value === null || value === undefined ? "—" : value.toFixed(2));
  answer.candidates.forEach((candidate, i) => {
    const row = body.insertRow();
    if (i === 0) row.className = "chosen";
    row.dataset.candidate = i;
    row.tabIndex = 0;
    row.title = i === 0 ? "the reply: show its attention" : "show this candidate's attention";
    row.addEventListener("click", () => showCandidate(i));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showCandidate(i); }
    });
    const cells = [
      i === 0 ? "✓" : `${i + 1}`, candidate.text || "(empty)",
      number(candidate.forward), number(candidate.backward), number(candidate.score),
    ];
    for (const text of cells) row.insertCell().textContent = text;
    if (i === 0) row.cells[0].title = "the reply";
  });
  const model = chat.models.find((m) => m.name === name);
  const rerank = model && model.rerank;
  $("#candidates-note").textContent = answer.reranked && rerank
    ? `Score = (1 − λ)·forward + λ·backward + γ·words, with λ = ${rerank.mmi_weight} and ` +
      `γ = ${rerank.length_bonus}: the backward run asks how well each reply explains the message.`
    : "Not reranked: ordered by search's own score (forward, with its length penalty).";
}

// ---------------------------------------------------------------------------- sending

async function send() {
  const model = info();
  const message = $("#message").value.trim();
  if (!model) { showError("No dialogue model is served."); return; }
  if (!message) { showError("Type a message."); return; }
  if (chat.busy) return;
  const turns = model.context_turns || 0;  // the server reads no more than these
  const history = turns ? chat.turns.slice(-turns).map((turn) => turn.text) : [];
  const sample = $("#chat-sample").checked;
  const body = {
    model: model.name, history, message, rerank: $("#rerank").checked, sample,
    candidate_attention: true,  // each candidate's map, shown on click
  };
  if (!sample) body.beam = +$("#chat-beam").value;
  chat.busy = true;
  $("#send").disabled = true;
  const pending = { role: "user", text: message, pending: true };
  chat.turns.push(pending);
  $("#message").value = "";
  drawConversation();
  showStatus(`${model.name} is replying…`);
  const started = performance.now();
  try {
    const answer = await api("/chat", body);
    showError("");
    pending.pending = false;
    chat.turns.push({ role: "bot", text: answer.reply, answer, model: model.name });
    drawConversation();
    select(chat.turns.length - 1);
    showStatus(`Replied in ${Math.round(performance.now() - started)} ms.`);
  } catch (error) {
    chat.turns.splice(chat.turns.indexOf(pending), 1);  // not sent: the message comes back
    $("#message").value = message;
    drawConversation();
    showError(error.message);
    showStatus("");
  } finally {
    chat.busy = false;
    $("#send").disabled = false;
    $("#message").focus();
  }
}

function newConversation() {
  chat.turns = [];
  chat.selected = null;
  $("#reply-panel").hidden = true;
  drawConversation();
  showError("");
  showStatus("");
  $("#message").focus();
}

// Wire the tab to the dialogue models among `models` (GET /models).
export function setupChat(models) {
  chat.models = models.filter((m) => m.task === "dialogue");
  chat.view = new AttentionView($("#reply-panel .heatmap"), $("#reply-panel .focus-note"));
  for (const model of chat.models) $("#chat-model").add(new Option(model.name, model.name));
  const none = chat.models.length === 0;
  $("#chat-none").hidden = !none;
  for (const element of $("#chat-form").elements) element.disabled = none;
  if (!none) resetOptions();
}

export function wireChat() {
  $("#chat-form").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("#message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $("#chat-model").addEventListener("change", resetOptions);
  $("#rerank").addEventListener("change", onRerank);
  $("#chat-sample").addEventListener("change", () => {
    $("#chat-beam").disabled = $("#chat-sample").checked;
    onRerank();
  });
  $("#new-conversation").addEventListener("click", newConversation);
}

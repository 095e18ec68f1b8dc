// The Translate tab: translate a sentence with one model or two side by side, then look
// at where each output word attended. The data comes from POST /translate: per
// translation `source_tokens`, `tokens`, `attention` ((tokens + EOS) x source) and
// `hypotheses`, each with its own tokens and attention (and `attention_heads`: layers x
// heads x rows x columns, for models with heads).

import { $, api, showError, showStatus } from "./common.js";
import { AttentionView, EOS, drawHeatmap } from "./heatmap.js";

// ---------------------------------------------------------------------------- one panel

// A model's answer: the translation, its n-best list and the heatmap of the chosen
// hypothesis, with hover, focus and pin. `record` is one entry of `translations`.
class Panel {
  constructor(info, record) {
    this.info = info;
    this.record = record;
    this.hypothesis = 0;
    this.layer = 0;
    this.head = "mean";
    this.root = $("#panel-template").content.firstElementChild.cloneNode(true);
    this.root.setAttribute("aria-label", `Translation by ${info.name}`);
    this.root.dataset.model = info.name;
    this.view = new AttentionView($(".heatmap", this.root), $(".focus-note", this.root));
    $(".model-name", this.root).textContent = info.name;
    $(".model-summary", this.root).textContent = summary(info);
    this.buildNbest();
    this.buildHeads();
    this.show(0);
  }

  current() { return this.record.hypotheses[this.hypothesis] || this.record; }

  // The map on show: one head of one layer, the mean over a layer's heads ("average"),
  // or the model's own map when it has no heads.
  matrix() {
    const hypothesis = this.current();
    const heads = hypothesis.attention_heads;
    if (!heads) return hypothesis.attention;
    if (this.head !== "mean") return heads[this.layer][this.head];
    const layer = heads[this.layer];
    return layer[0].map((row, t) => row.map((_, j) => {
      let sum = 0;
      for (const head of layer) sum += head[t][j];
      return sum / layer.length;
    }));
  }

  buildNbest() {
    const list = $(".nbest", this.root);
    this.record.hypotheses.forEach((hypothesis, k) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "hypothesis";
      button.dataset.index = k;
      button.setAttribute("aria-pressed", "false");
      button.append(hypothesis.text || "(empty)");
      const score = document.createElement("span");
      score.className = "hyp-score";
      score.textContent = hypothesis.score.toFixed(3);
      button.append(score);
      button.addEventListener("click", () => this.show(k));
      item.append(button);
      list.append(item);
    });
    $(".nbest-box", this.root).hidden = this.record.hypotheses.length < 2;
  }

  buildHeads() {
    const heads = this.record.attention_heads;
    const box = $(".heads", this.root);
    if (!heads) { box.hidden = true; return; }
    box.hidden = false;
    const layer = $(".layer", box), head = $(".head", box);
    heads.forEach((_, l) => layer.add(new Option(`${l + 1}`, l)));
    head.add(new Option("average", "mean"));
    heads[0].forEach((_, h) => head.add(new Option(`${h + 1}`, h)));
    layer.addEventListener("change", () => { this.layer = +layer.value; this.redraw(); });
    head.addEventListener("change", () => {
      this.head = head.value === "mean" ? "mean" : +head.value;
      this.redraw();
    });
    const toggle = $(".all-heads", box);
    toggle.addEventListener("click", () => {
      const on = toggle.getAttribute("aria-pressed") !== "true";
      toggle.setAttribute("aria-pressed", String(on));
      $(".grid", this.root).hidden = !on;
      this.redraw();
    });
  }

  show(k) {
    this.hypothesis = k;
    const hypothesis = this.current();
    $(".output", this.root).textContent = this.record.text || "(empty)";
    $(".score", this.root).textContent = `score ${this.record.score.toFixed(3)}`;
    for (const button of this.root.querySelectorAll(".nbest button")) {
      button.setAttribute("aria-pressed", String(+button.dataset.index === k));
    }
    this.view.unpin();  // other words
    this.redraw();
    const note = this.record.hypotheses.length > 1 ? ` (hypothesis ${k + 1}: ${hypothesis.text})` : "";
    $(".heatmap-box h3", this.root).firstChild.textContent = `Attention${note} `;
  }

  // Draw the map on show (a new layer or head keeps the pinned word) and the grid.
  redraw() {
    this.source = this.record.source_tokens;
    this.target = [...this.current().tokens, EOS];
    this.view.show(this.source, this.target, this.matrix(), this.record.unknown || []);
    if (!$(".grid", this.root).hidden) this.drawGrid();
  }

  drawGrid() {
    const grid = $(".grid", this.root);
    grid.textContent = "";
    const heads = this.current().attention_heads;
    if (!heads) return;
    grid.style.gridTemplateColumns = `repeat(${heads[0].length}, max-content)`;
    heads.forEach((layer, l) => layer.forEach((matrix, h) => {
      const figure = document.createElement("figure");
      figure.tabIndex = 0;
      figure.setAttribute("role", "button");
      figure.setAttribute("aria-label", `Layer ${l + 1}, head ${h + 1}`);
      figure.classList.toggle("selected", this.layer === l && this.head === h);
      const size = Math.max(3, Math.floor(120 / Math.max(this.source.length, this.target.length)));
      drawHeatmap(figure, this.source, this.target, matrix, size, false);
      const caption = document.createElement("figcaption");
      caption.textContent = `L${l + 1} H${h + 1}`;
      figure.append(caption);
      const choose = () => {
        this.layer = l; this.head = h;
        $(".layer", this.root).value = l; $(".head", this.root).value = h;
        this.redraw();
      };
      figure.addEventListener("click", choose);
      figure.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } });
      grid.append(figure);
    }));
  }
}

// One line about a model's family, from its config (GET /models).
export function summary(info) {
  const model = info.model || {};
  const attention = model.attention || {};
  const parts = [model.arch || "rnn"];
  if (model.arch === "transformer") {
    parts.push(`${model.layers} layers`, `${attention.heads} heads`, `d_model ${model.embed_dim}`);
  } else {
    parts.push(`${model.rnn || ""} decoder ${model.decoder}`.trim());
    if (model.decoder !== "none") parts.push(`score ${attention.score}`);
    if (attention.score === "multihead") parts.push(`${attention.heads} heads`);
  }
  parts.push(`${(info.parameters / 1e6).toFixed(2)}M parameters`);
  return parts.join(" · ");
}

// ---------------------------------------------------------------------------- the form

const state = { models: [], lastText: null };

async function translate() {
  const text = $("#source").value;
  if (!text.trim()) { showError("Type a sentence to translate."); return; }
  const beam = +$("#beam").value;
  const body = {
    text, beam, n_best: Math.min(+$("#nbest").value, beam), units: $("#units").value, heads: true,
  };
  const names = [$("#model").value];
  if ($("#compare").checked && $("#model2").value) names.push($("#model2").value);
  const button = $("#translate");
  button.disabled = true;
  showStatus("Translating…");
  const started = performance.now();
  try {
    const answers = await Promise.all(names.map((model) => api("/translate", { ...body, model })));
    showError("");
    const panels = $("#panels");
    panels.textContent = "";
    answers.forEach((answer, i) => {
      const info = state.models.find((m) => m.name === names[i]) || { name: names[i], parameters: 0 };
      panels.append(new Panel(info, answer.translations[0]).root);
    });
    state.lastText = text;
    const ms = Math.round(performance.now() - started);
    showStatus(`Translated by ${names.join(" and ")} in ${ms} ms.`);
  } catch (error) {
    showError(error.message);
    showStatus("");
  } finally {
    button.disabled = false;
  }
}

// Wire the form to the models of GET /models (`models`, `defaultName` first).
export function setupTranslate(models, defaultName) {
  state.models = models;
  for (const select of [$("#model"), $("#model2")]) {
    for (const info of models) select.add(new Option(info.name, info.name));
  }
  $("#model").value = defaultName;
  if (models.length > 1) $("#model2").value = models.find((m) => m.name !== defaultName).name;
  else $("#compare").disabled = true;
}

export function wireTranslate() {
  $("#form").addEventListener("submit", (e) => { e.preventDefault(); translate(); });
  $("#source").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); translate(); }
  });
  $("#compare").addEventListener("change", () => {
    $("#model2").disabled = !$("#compare").checked;
    if (state.lastText !== null) translate();
  });
  for (const id of ["#beam", "#nbest", "#units", "#model", "#model2"]) {  // watch it move
    $(id).addEventListener("change", () => { if (state.lastText !== null) translate(); });
  }
}

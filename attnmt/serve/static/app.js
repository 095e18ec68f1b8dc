// The attention explorer: translate, then look at where each output word attended.
// Plain JS and SVG, no libraries. The data comes from POST /translate: per translation
// `source_tokens`, `tokens`, `attention` ((tokens + EOS) x source) and `hypotheses`,
// each with its own tokens and attention (and `attention_heads`: layers x heads x rows x
// columns, for models with heads).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const EOS = "</s>";
const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------------------- the server

async function api(path, body) {
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

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---------------------------------------------------------------------------- svg helpers

function svgElement(name, attributes, parent) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function argmax(values) {
  let best = 0;
  values.forEach((value, i) => { if (value > values[best]) best = i; });
  return best;
}

const percent = (weight) => `${Math.round(weight * 100)}%`;

// ---------------------------------------------------------------------------- the heatmap

// Draws `matrix` (rows: target tokens + EOS, columns: source tokens) as SVG cells, with
// the source words across the top and the target words down the left. Returns the svg.
function drawHeatmap(container, sourceTokens, targetTokens, matrix, cellSize, labelled) {
  const rows = targetTokens.length, cols = sourceTokens.length;
  const chars = (tokens) => Math.max(1, ...tokens.map((t) => t.length));
  const left = labelled ? Math.min(160, 8 * chars(targetTokens) + 14) : 0;
  const top = labelled ? Math.min(140, 6 * chars(sourceTokens) + 18) : 0;
  const width = left + cols * cellSize + (labelled ? 40 : 0), height = top + rows * cellSize;
  const svg = svgElement("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: labelled ? "group" : "img",
    "aria-label": `Attention weights: ${rows} output rows by ${cols} source columns`,
  });
  for (let t = 0; t < rows; t++) {
    for (let j = 0; j < cols; j++) {
      const weight = matrix[t][j];
      const cell = svgElement("rect", {
        class: "cell", x: left + j * cellSize, y: top + t * cellSize,
        width: cellSize, height: cellSize, "data-row": t, "data-col": j,
        fill: `rgba(31, 95, 191, ${Math.max(0.03, weight).toFixed(3)})`,
      }, svg);
      if (labelled) {
        svgElement("title", {}, cell).textContent =
          `${targetTokens[t]} → ${sourceTokens[j]}: ${weight.toFixed(3)}`;
      }
    }
  }
  if (!labelled) { container.appendChild(svg); return svg; }
  const label = (side, index, text, x, y, rotate) => {
    svgElement("rect", { class: "label-bg", "data-side": side, "data-index": index, rx: 3 }, svg);
    const element = svgElement("text", {
      class: "label", "data-side": side, "data-index": index, x, y, tabindex: 0,
      role: "button", "aria-pressed": "false",
      "text-anchor": rotate ? "start" : "end", "dominant-baseline": "middle",
      transform: rotate ? `rotate(-45 ${x} ${y})` : "",
    }, svg);
    element.textContent = text;
  };
  sourceTokens.forEach((token, j) => label("src", j, token, left + (j + 0.5) * cellSize, top - 6, true));
  targetTokens.forEach((token, t) => label("tgt", t, token, left - 6, top + (t + 0.5) * cellSize, false));
  container.appendChild(svg);
  return svg;
}

// Size the box behind each label to its text (rotating with it). Text has a size only
// once the svg is in the document, so this runs when a label is first highlighted.
function fitLabelBoxes(svg) {
  for (const background of svg.querySelectorAll(".label-bg")) {
    const { side, index } = background.dataset;
    const label = svg.querySelector(`.label[data-side="${side}"][data-index="${index}"]`);
    const box = label.getBBox();  // in the label's own, unrotated coordinates
    background.setAttribute("x", box.x - 2);
    background.setAttribute("y", box.y - 1);
    background.setAttribute("width", box.width + 4);
    background.setAttribute("height", box.height + 2);
    background.setAttribute("transform", label.getAttribute("transform"));
  }
}

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
    this.pinned = null;  // {side, index} while a word is pinned
    this.root = $("#panel-template").content.firstElementChild.cloneNode(true);
    this.root.setAttribute("aria-label", `Translation by ${info.name}`);
    this.root.dataset.model = info.name;
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
    this.pinned = null;
    this.redraw();
    const note = this.record.hypotheses.length > 1 ? ` (hypothesis ${k + 1}: ${hypothesis.text})` : "";
    $(".heatmap-box h3", this.root).firstChild.textContent = `Attention${note} `;
  }

  redraw() {
    const box = $(".heatmap", this.root);
    box.textContent = "";
    const matrix = this.matrix();
    const hypothesis = this.current();
    this.source = this.record.source_tokens;
    this.target = [...hypothesis.tokens, EOS];
    if (!matrix) { box.textContent = "This model has no attention."; return; }
    if (!this.source.length) { box.textContent = "Nothing to attend to: the source is empty."; return; }
    const cell = Math.max(14, Math.min(34, Math.floor(560 / this.source.length)));
    this.svg = drawHeatmap(box, this.source, this.target, matrix, cell, true);
    this.fitted = false;
    this.wire();
    if (!$(".grid", this.root).hidden) this.drawGrid();
    $(".focus-note", this.root).textContent = "";
    if (this.pinned) {  // a new layer or head: the pinned word stays, with its new weights
      const { side, index } = this.pinned;
      this.pinned = null;
      this.pin(side, index);
    }
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

  wire() {
    for (const label of this.svg.querySelectorAll(".label")) {
      const side = label.dataset.side, index = +label.dataset.index;
      label.setAttribute("aria-label", this.describe(side, index));
      const enter = () => { if (!this.pinned) this.highlight(side, index); };
      const leave = () => { if (!this.pinned) this.clear(); };
      label.addEventListener("mouseenter", enter);
      label.addEventListener("mouseleave", leave);
      label.addEventListener("focus", enter);
      label.addEventListener("blur", leave);
      label.addEventListener("click", () => this.pin(side, index));
      label.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.pin(side, index); }
        if (e.key === "Escape") { this.pinned = null; this.clear(); }
      });
    }
    for (const cell of this.svg.querySelectorAll(".cell")) {  // a cell: its output word's row
      cell.addEventListener("mouseenter", () => { if (!this.pinned) this.highlight("tgt", +cell.dataset.row); });
      cell.addEventListener("mouseleave", () => { if (!this.pinned) this.clear(); });
      cell.addEventListener("click", () => this.pin("tgt", +cell.dataset.row));
    }
  }

  // The weights of one output word over the source (side tgt) or of one source word
  // across the outputs (side src).
  weights(side, index) {
    const matrix = this.matrix();
    return side === "tgt" ? matrix[index] : matrix.map((row) => row[index]);
  }

  describe(side, index) {
    const words = side === "tgt" ? this.source : this.target;
    const word = (side === "tgt" ? this.target : this.source)[index];
    const ranked = this.weights(side, index).map((w, i) => [w, words[i]]).sort((a, b) => b[0] - a[0]);
    const top = ranked.slice(0, 3).map(([w, other]) => `${other} ${percent(w)}`).join(", ");
    return side === "tgt" ? `“${word}” looked at: ${top}` : `“${word}” was looked at by: ${top}`;
  }

  highlight(side, index) {
    if (!this.fitted) { fitLabelBoxes(this.svg); this.fitted = true; }
    this.clear();
    const other = side === "tgt" ? "src" : "tgt";
    const weights = this.weights(side, index);
    const best = argmax(weights);
    const attribute = side === "tgt" ? "row" : "col";
    for (const cell of this.svg.querySelectorAll(".cell")) {
      const mine = +cell.dataset[attribute] === index;
      cell.classList.toggle("active", mine);
      cell.classList.toggle("dim", !mine);
    }
    for (const label of this.svg.querySelectorAll(`.label[data-side="${other}"]`)) {
      const i = +label.dataset.index;
      label.classList.toggle("top", i === best);
      const background = this.svg.querySelector(`.label-bg[data-side="${other}"][data-index="${i}"]`);
      background.style.fill = `rgba(240, 165, 0, ${(0.85 * weights[i]).toFixed(3)})`;
    }
    const label = this.svg.querySelector(`.label[data-side="${side}"][data-index="${index}"]`);
    label.classList.add("current");
    $(".focus-note", this.root).textContent = this.describe(side, index);
  }

  clear() {
    if (!this.svg) return;
    for (const cell of this.svg.querySelectorAll(".cell")) cell.classList.remove("active", "dim");
    for (const label of this.svg.querySelectorAll(".label")) {
      label.classList.remove("top", "current", "pinned");
      label.setAttribute("aria-pressed", "false");
    }
    for (const background of this.svg.querySelectorAll(".label-bg")) background.style.fill = "";
    $(".focus-note", this.root).textContent = "";
  }

  pin(side, index) {
    const same = this.pinned && this.pinned.side === side && this.pinned.index === index;
    this.pinned = same ? null : { side, index };
    if (!this.pinned) { this.clear(); return; }
    this.highlight(side, index);
    const label = this.svg.querySelector(`.label[data-side="${side}"][data-index="${index}"]`);
    label.classList.add("pinned");
    label.setAttribute("aria-pressed", "true");
  }
}

// One line about a model's family, from its config (GET /models).
function summary(info) {
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

const page = { models: [], lastText: null, busy: false };

async function loadModels() {
  try {
    const answer = await api("/models");
    page.models = answer.models;
    for (const select of [$("#model"), $("#model2")]) {
      for (const info of answer.models) select.add(new Option(info.name, info.name));
    }
    $("#model").value = answer.default;
    if (answer.models.length > 1) $("#model2").value = answer.models[1].name;
    else $("#compare").disabled = true;
  } catch (error) {
    showError(`Could not list the models: ${error.message}`);
  }
}

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
  $("#status").textContent = "Translating…";
  const started = performance.now();
  try {
    const answers = await Promise.all(names.map((model) => api("/translate", { ...body, model })));
    showError("");
    const panels = $("#panels");
    panels.textContent = "";
    answers.forEach((answer, i) => {
      const info = page.models.find((m) => m.name === names[i]) || { name: names[i], parameters: 0 };
      panels.append(new Panel(info, answer.translations[0]).root);
    });
    page.lastText = text;
    const ms = Math.round(performance.now() - started);
    $("#status").textContent = `Translated by ${names.join(" and ")} in ${ms} ms.`;
  } catch (error) {
    showError(error.message);
    $("#status").textContent = "";
  } finally {
    button.disabled = false;
  }
}

function main() {
  $("#form").addEventListener("submit", (e) => { e.preventDefault(); translate(); });
  $("#source").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); translate(); }
  });
  $("#compare").addEventListener("change", () => {
    $("#model2").disabled = !$("#compare").checked;
    if (page.lastText !== null) translate();
  });
  for (const id of ["#beam", "#nbest", "#units", "#model", "#model2"]) {  // watch it move
    $(id).addEventListener("change", () => { if (page.lastText !== null) translate(); });
  }
  loadModels();
}

main();

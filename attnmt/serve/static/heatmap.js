// The attention heatmap: rows are output words (and EOS), columns the source words, one
// cell per weight. Hover or focus a word to see where it looked (an output word) or who
// looked at it (a source word); click (or Enter) pins it. Plain SVG, no libraries.

const SVG_NS = "http://www.w3.org/2000/svg";
export const EOS = "</s>";

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
export function drawHeatmap(container, sourceTokens, targetTokens, matrix, cellSize, labelled) {
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

// ---------------------------------------------------------------------------- the view

export const UNKNOWN_NOTE = "not in the model's vocabulary: it read <unk>";

// Mark a word the model read as the unknown piece: a style of its own and a tooltip.
export function markUnknown(element) {
  if (!element) return;
  element.classList.add("unknown");
  const title = element.ownerDocument.createElementNS(element.namespaceURI, "title");
  title.textContent = UNKNOWN_NOTE;
  element.append(title);
}

// A heatmap in `box` that answers hover, focus and pins, and says in `note` where the
// word in focus looked. `show` draws a new map; a pinned word stays pinned across maps of
// the same words (a new layer or head), `unpin` forgets it (new words).
export class AttentionView {
  constructor(box, note) {
    this.box = box;
    this.note = note;
    this.svg = null;
    this.pinned = null;  // {side, index} while a word is pinned
  }

  // `matrix`: (target.length) x (source.length), `target` ending with EOS; null: the
  // model has no attention. `unknown`: positions in `source` the model read as the
  // unknown piece (shown as written, marked).
  show(source, target, matrix, unknown = []) {
    this.source = source;
    this.unknown = new Set(unknown);
    this.target = target;
    this.matrix = matrix;
    this.box.textContent = "";
    this.note.textContent = "";
    this.svg = null;
    if (!matrix) { this.box.textContent = "This model has no attention."; return; }
    if (!source.length) { this.box.textContent = "Nothing to attend to: the source is empty."; return; }
    const cell = Math.max(14, Math.min(34, Math.floor(560 / source.length)));
    this.svg = drawHeatmap(this.box, source, target, matrix, cell, true);
    for (const j of this.unknown) markUnknown(this.svg.querySelector(`.label[data-side="src"][data-index="${j}"]`));
    this.fitted = false;
    this.wire();
    if (this.pinned) {  // the pinned word stays, with its new weights
      const { side, index } = this.pinned;
      this.pinned = null;
      this.pin(side, index);
    }
  }

  unpin() { this.pinned = null; this.clear(); }

  wire() {
    for (const label of this.svg.querySelectorAll(".label")) {
      const side = label.dataset.side, index = +label.dataset.index;
      const unknown = side === "src" && this.unknown.has(index) ? ` (${UNKNOWN_NOTE})` : "";
      label.setAttribute("aria-label", this.describe(side, index) + unknown);
      const enter = () => { if (!this.pinned) this.highlight(side, index); };
      const leave = () => { if (!this.pinned) this.clear(); };
      label.addEventListener("mouseenter", enter);
      label.addEventListener("mouseleave", leave);
      label.addEventListener("focus", enter);
      label.addEventListener("blur", leave);
      label.addEventListener("click", () => this.pin(side, index));
      label.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.pin(side, index); }
        if (e.key === "Escape") this.unpin();
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
    return side === "tgt" ? this.matrix[index] : this.matrix.map((row) => row[index]);
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
    this.note.textContent = this.describe(side, index);
  }

  clear() {
    this.note.textContent = "";
    if (!this.svg) return;
    for (const cell of this.svg.querySelectorAll(".cell")) cell.classList.remove("active", "dim");
    for (const label of this.svg.querySelectorAll(".label")) {
      label.classList.remove("top", "current", "pinned");
      label.setAttribute("aria-pressed", "false");
    }
    for (const background of this.svg.querySelectorAll(".label-bg")) background.style.fill = "";
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

"use strict";
// vaelab explorer: everything comes from the JSON payload above (explorer/page.py); no request is ever made.
(function () {
  const P = JSON.parse(document.getElementById("payload").textContent);
  const $ = (id) => document.getElementById(id);

  // --- payload arrays (base64 of little-endian typed arrays) ---------------------------------
  function bytes(s) {
    const bin = atob(s), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  const f32 = (s) => new Float32Array(bytes(s));
  const i32 = (s) => new Int32Array(bytes(s));
  const u8 = (s) => new Uint8Array(bytes(s));

  const D = P.latent_dim, N = P.n, IMG = P.kind === "image";
  const XY = f32(P.xy), CODES = f32(P.codes);
  const LABELS = P.labels ? i32(P.labels) : null;
  const NAMES = P.label_names;
  const [X0, X1, Y0, Y1] = P.extent;
  const PL = P.plane, M = PL.others.length;
  const sliders = new Float64Array(M);
  const DEC = P.decoder, PAGE = DEC.mode === "page";
  const C = IMG ? P.image.channels : 0, H = IMG ? P.image.height : 0, W = IMG ? P.image.width : 0;
  const EXAMPLES = IMG ? u8(P.examples) : null;
  const RECON = IMG && P.recon ? u8(P.recon) : null;
  const VOCAB = IMG ? null : P.vocabulary;
  const DOC_WORDS = IMG ? null : i32(P.doc_words), DOC_COUNTS = IMG ? null : i32(P.doc_counts);
  const TOP = 12;
  // a conditional model (Sohn et al. 2015): the decoder reads [z, onehot(y)], y the class chosen in the selector
  const CLASSES = P.classes || null, K = CLASSES ? CLASSES.length : 0;

  // --- the plane: z = origin + a axes[0] + b axes[1] + sum_k s_k sds[k] others[k] ------------
  function codeAt(a, b) {
    const z = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      let v = PL.origin[d] + a * PL.axes[0][d] + b * PL.axes[1][d];
      for (let k = 0; k < M; k++) v += sliders[k] * PL.sds[k] * PL.others[k][d];
      z[d] = v;
    }
    return z;
  }
  const pointCode = (i) => CODES.subarray(i * D, (i + 1) * D);

  // --- decoder in the page: Linear layers (float32 weights, float64 sums) + activations ------
  const ACTS = {
    identity: (x) => x, relu: (x) => (x > 0 ? x : 0), tanh: Math.tanh,
    sigmoid: (x) => 1 / (1 + Math.exp(-x)), softplus: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  };
  const LAYERS = PAGE ? DEC.layers.map((L) => ({
    n_in: L.in, n_out: L.out, w: f32(L.w), b: f32(L.b),
    act: L.act === "leaky_relu" ? ((x) => (x >= 0 ? x : L.slope * x)) : ACTS[L.act],
  })) : [];
  function forward(z) {  // the mean of p(x|z): sigmoid, identity or softmax of the last layer
    let h = z;
    for (const L of LAYERS) {
      const o = new Float64Array(L.n_out);
      for (let j = 0; j < L.n_out; j++) {
        let s = L.b[j];
        const off = j * L.n_in;
        for (let i = 0; i < L.n_in; i++) s += L.w[off + i] * h[i];
        o[j] = L.act(s);
      }
      h = o;
    }
    if (DEC.output === "sigmoid") for (let j = 0; j < h.length; j++) h[j] = 1 / (1 + Math.exp(-h[j]));
    if (DEC.output === "softmax") {
      let m = -Infinity, s = 0;
      for (const v of h) m = Math.max(m, v);
      for (let j = 0; j < h.length; j++) { h[j] = Math.exp(h[j] - m); s += h[j]; }
      for (let j = 0; j < h.length; j++) h[j] /= s;
    }
    return h;
  }

  function withClass(z, y) {  // [z, onehot(y)] (D + K) for a conditional model, z itself otherwise
    if (!K) return z;
    const v = new Float64Array(D + K);
    v.set(z);
    v[D + y] = 1;
    return v;
  }
  const decode = (z, y) => forward(withClass(z, y));

  // --- decoder from the pre-decoded grid: node (i, j) at a = linspace(X0, X1)[i], b = linspace(Y0, Y1)[j]
  const G = PAGE ? 0 : DEC.n;
  const NODES = !PAGE && IMG ? u8(DEC.nodes) : null;
  function gridPos(a, b) {
    const fx = Math.min(Math.max((a - X0) / (X1 - X0) * (G - 1), 0), G - 1);
    const fy = Math.min(Math.max((b - Y0) / (Y1 - Y0) * (G - 1), 0), G - 1);
    return [fx, fy];
  }
  function gridImage(a, b) {  // bilinear between the four nearest nodes, values in [0, 1]
    const [fx, fy] = gridPos(a, b), D2 = C * H * W, base = (K ? state.y : 0) * G * G;  // a class's own grid
    const i0 = Math.floor(fx), j0 = Math.floor(fy), i1 = Math.min(i0 + 1, G - 1), j1 = Math.min(j0 + 1, G - 1);
    const tx = fx - i0, ty = fy - j0, out = new Float64Array(D2);
    const n00 = (base + j0 * G + i0) * D2, n10 = (base + j0 * G + i1) * D2;
    const n01 = (base + j1 * G + i0) * D2, n11 = (base + j1 * G + i1) * D2;
    for (let k = 0; k < D2; k++) {
      out[k] = ((1 - ty) * ((1 - tx) * NODES[n00 + k] + tx * NODES[n10 + k])
        + ty * ((1 - tx) * NODES[n01 + k] + tx * NODES[n11 + k])) / 255;
    }
    return out;
  }

  // --- words: the most probable, and the most raised against the plane's centre ------------
  function topk(v, k) {
    const idx = [];
    for (let j = 0; j < v.length; j++) {
      if (idx.length < k || v[j] > v[idx[idx.length - 1]]) {
        let p = idx.length < k ? idx.length : k - 1;
        while (p > 0 && v[idx[p - 1]] < v[j]) p--;
        idx.splice(p, 0, j);
        if (idx.length > k) idx.pop();
      }
    }
    return idx;
  }
  const P0 = !IMG && PAGE ? decode(Float64Array.from(PL.origin), 0) : null;
  function pageWords(z) {
    const p = decode(z, state.y), lift = new Float64Array(p.length);
    for (let j = 0; j < p.length; j++) lift[j] = Math.log(p[j]) - Math.log(P0[j]);
    const likely = topk(p, TOP);
    return { likely, p: likely.map((j) => p[j]), raised: topk(lift, TOP) };
  }
  const GL = !IMG && !PAGE ? i32(DEC.likely) : null, GR = !IMG && !PAGE ? i32(DEC.raised) : null;
  const GP = !IMG && !PAGE ? f32(DEC.likely_p) : null;
  function gridWords(a, b) {  // the nearest node's lists
    const [fx, fy] = gridPos(a, b), n = Math.round(fy) * G + Math.round(fx);
    const sl = (A) => Array.from(A.subarray(n * TOP, (n + 1) * TOP));
    return { likely: sl(GL), p: Array.from(GP.subarray(n * TOP, (n + 1) * TOP)), raised: sl(GR) };
  }

  // --- drawing -------------------------------------------------------------------------------
  function pixelCanvas(cls) {
    const c = document.createElement("canvas");
    c.width = W; c.height = H; c.className = cls || "px";
    return c;
  }
  function drawLevels(canvas, get) {  // get(k) -> 0..255 of value k (channel-first C x H x W)
    const ctx = canvas.getContext("2d"), im = ctx.createImageData(W, H), HW = H * W;
    for (let i = 0; i < HW; i++) {
      const r = get(i), g = C === 3 ? get(HW + i) : r, b = C === 3 ? get(2 * HW + i) : r;
      im.data[4 * i] = r; im.data[4 * i + 1] = g; im.data[4 * i + 2] = b; im.data[4 * i + 3] = 255;
    }
    ctx.putImageData(im, 0, 0);
  }
  const level = (v) => Math.round(255 * Math.min(Math.max(v, 0), 1));
  const drawMean = (canvas, mean) => drawLevels(canvas, (k) => level(mean[k]));
  const drawExample = (canvas, i) => drawLevels(canvas, (k) => EXAMPLES[i * C * H * W + k]);
  // every string from the data (labels, words, the run's name) enters the page as text, never as markup
  function node(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function wordList(ids, probs) {
    const ol = document.createElement("ol");
    ol.className = "words";
    ids.forEach((j, r) => {
      if (j < 0) return;
      const li = document.createElement("li");
      li.textContent = VOCAB[j] + " ";
      if (probs) { const s = document.createElement("span"); s.textContent = probs[r]; li.appendChild(s); }
      ol.appendChild(li);
    });
    return ol;
  }
  function wordsBlock(w) {
    const div = document.createElement("div");
    div.className = "cols";
    const a = document.createElement("div"), b = document.createElement("div");
    a.appendChild(node("b", "most probable"));
    a.appendChild(wordList(w.likely, w.p.map((v) => (100 * v).toFixed(2) + "%")));
    b.appendChild(node("b", "most raised vs the centre"));
    b.appendChild(wordList(w.raised));
    div.append(a, b);
    return div;
  }
  const labelOf = (i) => (LABELS ? (NAMES ? NAMES[LABELS[i]] : String(LABELS[i])) : "no label");

  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"];
  const colour = (l) => (l < 10 ? TAB10[l] : `hsl(${(l * 137.5) % 360},65%,45%)`);

  const plane = $("plane"), PW = plane.width, PH = plane.height;
  const toPx = (a, b) => [(a - X0) / (X1 - X0) * PW, (Y1 - b) / (Y1 - Y0) * PH];
  const fromPx = (x, y) => [X0 + x / PW * (X1 - X0), Y1 - y / PH * (Y1 - Y0)];
  const PX = new Float64Array(2 * N);
  for (let i = 0; i < N; i++) [PX[2 * i], PX[2 * i + 1]] = toPx(XY[2 * i], XY[2 * i + 1]);
  const back = document.createElement("canvas");
  back.width = PW; back.height = PH;
  (function drawBack() {
    const ctx = back.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, PW, PH);
    ctx.strokeStyle = "#ddd";
    const [zx, zy] = toPx(0, 0);
    ctx.beginPath(); ctx.moveTo(zx, 0); ctx.lineTo(zx, PH); ctx.moveTo(0, zy); ctx.lineTo(PW, zy); ctx.stroke();
    ctx.globalAlpha = 0.7;
    for (let i = 0; i < N; i++) {
      ctx.fillStyle = LABELS ? colour(LABELS[i]) : "#1f77b4";
      ctx.beginPath(); ctx.arc(PX[2 * i], PX[2 * i + 1], 2.3, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.globalAlpha = 1; ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
    const names = PL.what === "pca" ? ["PC1", "PC2"] : ["z1", "z2"];
    ctx.fillText(`${names[0]} ${X0.toFixed(2)} … ${X1.toFixed(2)} →`, 6, PH - 6);
    ctx.save(); ctx.translate(12, PH - 60); ctx.rotate(-Math.PI / 2);
    ctx.fillText(`${names[1]} ${Y0.toFixed(2)} … ${Y1.toFixed(2)} →`, 0, 0); ctx.restore();
  })();

  // --- state and redraw ----------------------------------------------------------------------
  const state = { a: null, b: null, z: null, y: 0, ms: null, hover: null, selected: [], times: [] };
  const given = () => (K ? ` given y = ${CLASSES[state.y]}` : "");
  const decodedBox = $("decoded");
  const outCanvas = IMG ? pixelCanvas("px") : null;
  if (IMG) { outCanvas.id = "out"; outCanvas.setAttribute("role", "img"); decodedBox.appendChild(outCanvas); }

  function drawPlane() {
    const ctx = plane.getContext("2d");
    ctx.drawImage(back, 0, 0);
    const sel = state.selected.map((i) => [PX[2 * i], PX[2 * i + 1]]);
    if (sel.length === 2) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(...sel[0]); ctx.lineTo(...sel[1]); ctx.stroke();
    }
    ctx.lineWidth = 2;
    for (const [x, y] of sel) { ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.stroke(); }
    if (state.hover !== null) {
      ctx.strokeStyle = "#d00";
      ctx.beginPath(); ctx.arc(PX[2 * state.hover], PX[2 * state.hover + 1], 5, 0, 2 * Math.PI); ctx.stroke();
    }
    if (state.a !== null) {
      const [x, y] = toPx(state.a, state.b);
      ctx.strokeStyle = "rgba(0,0,0,.45)"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y); ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9); ctx.stroke();
    }
  }

  // the text alternative of what is decoded: read by screen readers (aria-live) after a tap or a key, shown below
  const live = $("live");
  const say = (text) => { live.textContent = text; };
  function describe(a, b, words) {
    const where = `${PL.what === "pca" ? "PC" : "z"} = (${a.toFixed(2)}, ${b.toFixed(2)})`;
    if (!IMG) return `At ${where}, the most probable words: ${words.likely.slice(0, 6).map((j) => VOCAB[j]).join(", ")}.`;
    const [x, y] = toPx(a, b), i = nearest(x, y, Infinity);
    return `Decoded image at ${where}${given()}; the nearest test example is ${labelOf(i)} (test example ${P.index[i]}).`;
  }

  function decodeAt(a, b, announce) {  // decode the plane point (a, b) (and the sliders) into the "decoded" box
    const t0 = performance.now();
    const z = codeAt(a, b);
    let words = null;
    if (IMG) drawMean(outCanvas, PAGE ? decode(z, state.y) : gridImage(a, b));
    else { words = PAGE ? pageWords(z) : gridWords(a, b); decodedBox.replaceChildren(wordsBlock(words)); }
    const text = describe(a, b, words);
    if (IMG) outCanvas.setAttribute("aria-label", text);
    if (announce) say(text);
    Object.assign(state, { a, b, z: Array.from(z) });
    drawPlane();
    state.ms = performance.now() - t0;
    state.times.push(state.ms);
    $("coords").textContent = `${PL.what === "pca" ? "PC" : "z"} = (${a.toFixed(3)}, ${b.toFixed(3)})` +
      (D > 2 ? `; z = [${state.z.map((v) => v.toFixed(2)).join(", ")}]` : "");
    $("footer").textContent = `Last redraw (decode and draw): ${state.ms.toFixed(2)} ms. ` +
      `Scatter: ${N} of the ${P.n_test} test examples. Run: ${P.run}.`;
  }

  function nearest(x, y, radius) {
    let best = null, bd = radius * radius;
    for (let i = 0; i < N; i++) {
      const d = (PX[2 * i] - x) ** 2 + (PX[2 * i + 1] - y) ** 2;
      if (d <= bd) { bd = d; best = i; }
    }
    return best;
  }

  function showHover(i) {
    const box = $("hover");
    box.replaceChildren();
    box.className = "";
    const lab = document.createElement("div");
    lab.id = "hoverLabel";
    lab.append(node("b", labelOf(i)), " ", node("span", `(test example ${P.index[i]})`, "note"));
    if (IMG) {
      const pair = document.createElement("div"), f1 = document.createElement("figure"), f2 = document.createElement("figure");
      pair.className = "pair";
      const cx = pixelCanvas(), cr = pixelCanvas();
      cx.id = "hoverImage"; cr.id = "hoverRecon";
      drawExample(cx, i);
      if (PAGE) drawMean(cr, decode(pointCode(i), K ? LABELS[i] : 0));  // a conditional model: its own label
      else drawLevels(cr, (k) => RECON[i * C * H * W + k]);
      const cap = (t) => { const c = document.createElement("figcaption"); c.textContent = t; return c; };
      f1.append(cx, cap("image")); f2.append(cr, cap("reconstruction: decoder mean at its code"));
      pair.append(f1, f2);
      box.append(lab, pair);
    } else {
      const K = DOC_WORDS.length / N;
      const ids = Array.from(DOC_WORDS.subarray(i * K, (i + 1) * K));
      const counts = Array.from(DOC_COUNTS.subarray(i * K, (i + 1) * K));
      const t = document.createElement("div");
      t.appendChild(node("b", "its most frequent words"));
      t.appendChild(wordList(ids, counts.map((n) => "×" + n)));
      const r = document.createElement("div");
      r.appendChild(node("b", "words its code raises most (decoded)"));
      const raised = PAGE ? pageWords(Float64Array.from(pointCode(i))).raised
        : Array.from(i32(P.recon_raised).subarray(i * TOP, (i + 1) * TOP));
      r.appendChild(wordList(raised));
      box.append(lab, t, r);
    }
  }

  function interpolate(i, j, steps) {
    const box = $("interp");
    box.replaceChildren();
    box.className = "";
    const head = document.createElement("p");
    head.className = "note";
    head.textContent = `${labelOf(i)} (example ${P.index[i]}) → ${labelOf(j)} (example ${P.index[j]}): ` +
      (PAGE ? "the straight line between their full codes, decoded in the page."
        : "the straight line between their points on the plane, read from the grid.") +
      (IMG ? "" : " Each row: the words that step's code raises most against the centre.") +
      (K ? ` Decoded${given()} (the class chosen above).` : "");
    box.appendChild(head);
    const zi = pointCode(i), zj = pointCode(j);
    const at = (t) => {
      const z = new Float64Array(D);
      for (let d = 0; d < D; d++) z[d] = (1 - t) * zi[d] + t * zj[d];
      const a = (1 - t) * XY[2 * i] + t * XY[2 * j], b = (1 - t) * XY[2 * i + 1] + t * XY[2 * j + 1];
      return [z, a, b];
    };
    if (IMG) {
      const strip = document.createElement("div");
      strip.className = "strip";
      const first = pixelCanvas(); drawExample(first, i); strip.appendChild(first);
      for (let s = 0; s < steps; s++) {
        const [z, a, b] = at(s / (steps - 1)), c = pixelCanvas();
        drawMean(c, PAGE ? decode(z, state.y) : gridImage(a, b));
        strip.appendChild(c);
      }
      const last = pixelCanvas(); drawExample(last, j); strip.appendChild(last);
      box.appendChild(strip);
    } else {
      const table = document.createElement("table");
      for (let s = 0; s < 5; s++) {
        const t = s / 4, [z, a, b] = at(t), w = PAGE ? pageWords(z) : gridWords(a, b), tr = document.createElement("tr");
        tr.append(node("th", `t = ${t.toFixed(2)}`), node("td", w.raised.slice(0, 8).map((k) => VOCAB[k]).join(", ")));
        table.appendChild(tr);
      }
      box.appendChild(table);
    }
  }

  // --- traversal (plot --kind traversal, in the page): each swept dimension over the values at the prior's
  // quantiles, the others at a chosen test example's code; a row's slider moves that dimension of the one code
  // decoded beside the example (the sliders add up), its strip keeps the others at the example's code
  const TR = IMG && PAGE && P.traversal ? P.traversal : null;
  const TQ = TR ? f32(TR.values) : null, TS = TR ? TR.probabilities.length : 0;  // (steps, D)
  const trav = { base: null, z: null, mean: null };
  const travOut = $("travOut"), travBase = $("travBase");
  function travDecode() {  // the sliders' code z (D), decoded into #travOut; its mean kept for tests
    const mean = decode(Float64Array.from(trav.z), state.y);
    trav.mean = Array.from(mean);
    drawMean(travOut, mean);
    travOut.setAttribute("aria-label", `Decoded at z = [${trav.z.map((v) => v.toFixed(2)).join(", ")}]${given()}`);
  }
  function traverse(i) {  // test example i's code as the base: every swept dimension's strip, the sliders reset
    const base = pointCode(i), rows = $("travRows");
    trav.base = i; trav.z = Array.from(base);
    drawExample(travBase, i);
    $("travBaseCap").textContent = `${labelOf(i)} (test example ${P.index[i]}); the other dimensions stay at its code`;
    rows.replaceChildren();
    for (const d of TR.dims) {
      const lo = Math.min(TQ[d], base[d]), hi = Math.max(TQ[(TS - 1) * D + d], base[d]);
      const tr = document.createElement("tr"), cell = document.createElement("td"), strip = document.createElement("td");
      const r = document.createElement("input"), v = node("span", base[d].toFixed(2), "val");
      r.type = "range"; r.min = lo; r.max = hi; r.step = (hi - lo) / 200 || 0.01; r.value = base[d];
      r.setAttribute("aria-label", `z${d + 1}`);
      r.addEventListener("input", () => {
        trav.z[d] = Number(r.value); v.textContent = trav.z[d].toFixed(2);
        travDecode();
      });
      cell.append(r, v);
      const row = document.createElement("div");
      row.className = "strip";
      for (let s = 0; s < TS; s++) {
        const z = Float64Array.from(base), c = pixelCanvas();
        z[d] = TQ[s * D + d];
        drawMean(c, decode(z, state.y));
        c.title = `z${d + 1} = ${z[d].toFixed(2)} (p = ${TR.probabilities[s].toFixed(3)})`;
        row.appendChild(c);
      }
      strip.appendChild(row);
      tr.append(node("th", `z${d + 1}`), cell, strip);
      rows.appendChild(tr);
    }
    travDecode();
  }

  // --- events: pointer (mouse, pen, touch), tap, keyboard -----------------------------------
  // the canvas may be drawn smaller than its 600 x 600 pixels (a phone): event offsets are scaled to canvas pixels
  const canvasXY = (e) => [e.offsetX * PW / (plane.clientWidth || PW), e.offsetY * PH / (plane.clientHeight || PH)];
  function pointAt(x, y, announce) {  // the pointer at canvas pixel (x, y): hover the nearest point, decode there
    const [a, b] = fromPx(x, y);
    const i = nearest(x, y, 7);
    if (i !== state.hover) { state.hover = i; if (i !== null) showHover(i); }
    decodeAt(a, b, announce);
  }
  function select(i) {  // a click, tap or Enter on test example i: two selections decode the line between them
    state.selected = state.selected.length >= 2 ? [i] : state.selected.concat([i]);
    if (state.selected.length === 2) interpolate(state.selected[0], state.selected[1], 10);
    if (TR) traverse(i);  // the traversal's base: the example last selected
    drawPlane();
    say(`Selected ${labelOf(i)} (test example ${P.index[i]})` + (state.selected.length === 2
      ? `; the line from ${labelOf(state.selected[0])} is decoded below.` : "; select a second example to join them."));
  }
  plane.addEventListener("pointermove", (e) => pointAt(...canvasXY(e), false));
  plane.addEventListener("pointerdown", (e) => pointAt(...canvasXY(e), true));  // a tap decodes where it lands
  plane.addEventListener("click", (e) => {
    pointAt(...canvasXY(e), false);
    if (state.hover !== null) select(state.hover);
  });
  plane.addEventListener("keydown", (e) => {
    const step = (e.shiftKey ? 0.1 : 0.02);
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (e.key in moves) {
      e.preventDefault();  // the page does not scroll while the plane has the keys
      const [dx, dy] = moves[e.key];
      const a = Math.min(Math.max((state.a ?? (X0 + X1) / 2) + dx * step * (X1 - X0), X0), X1);
      const b = Math.min(Math.max((state.b ?? (Y0 + Y1) / 2) + dy * step * (Y1 - Y0), Y0), Y1);
      pointAt(...toPx(a, b), true);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      const [x, y] = toPx(state.a, state.b);
      const i = nearest(x, y, Infinity);
      if (i !== null) { state.hover = i; showHover(i); select(i); }
    }
  });

  // --- page furniture ------------------------------------------------------------------------
  $("title").textContent = `${P.title} · ${P.run}`;
  $("what").textContent = (PL.what === "pca"
    ? `Plane through the mean of the test posterior means along their two principal directions (PC1 across, PC2 up; ` +
      `latent units); the other ${M} directions are set by the sliders.`
    : `The ${D}-D latent itself (z1 across${D > 1 ? ", z2 up" : ""}).`) +
    ` Points: posterior means of ${IMG ? "the test images" : "the test documents"}` +
    `${K ? " (each encoded with its own label)" : ""}, coloured by label. ` + P.note;
  if (K) {  // the class selector: options built as DOM nodes, each class name set as text
    const sel = $("classSel");
    CLASSES.forEach((name, y) => {
      const o = document.createElement("option");
      o.value = String(y);
      o.textContent = name;
      sel.appendChild(o);
    });
    $("classBox").hidden = false;
    sel.addEventListener("change", () => {
      state.y = Number(sel.value);
      decodeAt(state.a ?? (X0 + X1) / 2, state.b ?? (Y0 + Y1) / 2, true);
      if (state.selected.length === 2) interpolate(state.selected[0], state.selected[1], 10);
      if (TR) traverse(trav.base);  // the strips and the sliders' code again, given the new class
    });
  }
  const sl = $("sliders");
  if (M === 0) $("sliderBox").style.display = "none";
  for (let k = 0; k < M; k++) {
    const lab = document.createElement("label"), r = document.createElement("input"), v = document.createElement("span");
    r.type = "range"; r.min = -3; r.max = 3; r.step = 0.05; r.value = 0; r.disabled = !PAGE;
    v.textContent = "0.00";
    r.addEventListener("input", () => {
      sliders[k] = Number(r.value); v.textContent = sliders[k].toFixed(2);
      decodeAt(state.a ?? (X0 + X1) / 2, state.b ?? (Y0 + Y1) / 2, true);
    });
    lab.append(`PC${k + 3}`, r, v);
    sl.appendChild(lab);
  }
  if (!PAGE && M) sl.insertAdjacentText("afterbegin", "(the grid lies on the plane: sliders are off) ");
  if (TR) {
    travOut.width = travBase.width = W; travOut.height = travBase.height = H;
    $("travWhat").textContent = `Each of ${TR.dims.length === D ? `the ${D}` : `the ${TR.dims.length} of ${D}`} latent` +
      ` dimensions${TR.dims.length === D ? "" : " whose test posterior means vary most"} swept over ${TS} values (the ` +
      `${TR.what} at probabilities (i + 0.5) / ${TS}), the others at the posterior mean of the test example ` +
      `selected on the plane (click or Enter; the first one until then), decoded in the page` +
      `${K ? " given the class chosen above" : ""}. The sliders move one dimension each of the code drawn beside ` +
      `the example.`;
    $("travBox").hidden = false;
    traverse(0);
  }
  const legend = $("legend"), seen = new Map();
  if (LABELS) for (const l of LABELS) seen.set(l, (seen.get(l) || 0) + 1);
  for (const l of [...seen.keys()].sort((p, q) => p - q)) {
    const s = document.createElement("span"), dot = document.createElement("i");
    dot.style.background = colour(l);  // CSSOM, which the page's CSP allows (a style attribute in markup it does not)
    s.append(dot, `${NAMES ? NAMES[l] : l} (${seen.get(l)})`);
    legend.appendChild(s);
  }

  // for tests and screenshots: where a plane point is on screen, and what was last decoded
  window.explorer = {
    state, payload: P, decodeAt, showHover, interpolate, select, trav, traverse,
    toClient(a, b) {
      const r = plane.getBoundingClientRect(), [x, y] = toPx(a, b);
      return [r.left + plane.clientLeft + x * (plane.clientWidth / PW), r.top + plane.clientTop + y * (plane.clientHeight / PH)];
    },
    pointClient(i) { return this.toClient(XY[2 * i], XY[2 * i + 1]); },
  };
  decodeAt((X0 + X1) / 2, (Y0 + Y1) / 2);
})();

// The nabla playground: one ES module, no libraries, no build step.
// Parts: a parser of the expression language -> MathML; the form and its variables;
// calls to POST /v1/differentiate; results typeset as MathML; plots drawn as inline SVG.

const API = "/v1/differentiate";
const SVG_NS = "http://www.w3.org/2000/svg";
const PLOT_SAMPLES = 241;
const GRID = 41;
const MAX_SHOWN = 8;

// ---------------------------------------------------------------- parsing

const TOKEN = /\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z][A-Za-z0-9_]*)|(\*\*|<=|>=|==|!=|[-+*/^()[\],<>]))/y;
const KEYWORDS = new Set(["and", "or", "not"]);
const CONSTANTS = new Set(["pi", "e", "E", "True", "False"]);

class ParseError extends Error {
  constructor(message, position) { super(message); this.position = position; }
}

function tokenize(text) {
  const tokens = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = text.match(TOKEN); // sticky: matches at TOKEN.lastIndex only
    if (!m) throw new ParseError(`unexpected character '${text[at]}'`, at + text.slice(at).search(/\S/));
    const pos = m.index + m[0].search(/\S/);
    if (m[1]) tokens.push({ kind: "num", text: m[1], pos });
    else if (m[2]) tokens.push({ kind: KEYWORDS.has(m[2]) ? "op" : "name", text: m[2], pos });
    else tokens.push({ kind: "op", text: m[3], pos });
    at = TOKEN.lastIndex;
  }
  tokens.push({ kind: "end", text: "", pos: text.length });
  return tokens;
}

/** Parse the expression language into a small tree: {t: "num"|"name"|"bin"|"neg"|...}. */
export function parse(text) {
  const tokens = tokenize(text);
  let i = 0;
  const peek = () => tokens[i];
  const is = (...ops) => peek().kind === "op" && ops.includes(peek().text);
  const expect = (op) => {
    if (!is(op)) throw new ParseError(`expected '${op}'`, peek().pos);
    i++;
  };
  const binary = (next, ops) => () => {
    let a = next();
    while (is(...ops)) { const op = tokens[i++].text; a = { t: "bin", op, a, b: next() }; }
    return a;
  };
  const expr = () => or();
  const not = () => {
    if (is("not")) { i++; return { t: "not", a: not() }; }
    return cmp();
  };
  const unary = () => {
    if (is("-")) { i++; return { t: "neg", a: unary() }; }
    if (is("+")) { i++; return unary(); }
    return power();
  };
  const power = () => {
    const base = postfix();
    if (is("**", "^")) { i++; return { t: "bin", op: "^", a: base, b: unary() }; }
    return base;
  };
  const postfix = () => {
    let a = atom();
    for (;;) {
      if (is("(") && a.t === "name" && isFunction(a.v)) {
        i++;
        const args = is(")") ? [] : list();
        expect(")");
        a = { t: "call", f: a.v, args };
      } else if (is("[")) {
        i++;
        const index = expr();
        expect("]");
        a = { t: "index", a, i: index };
      } else return a;
    }
  };
  const list = () => {
    const items = [expr()];
    while (is(",")) { i++; items.push(expr()); }
    return items;
  };
  const atom = () => {
    const tok = peek();
    if (tok.kind === "num") { i++; return { t: "num", v: tok.text }; }
    if (tok.kind === "name") { i++; return { t: "name", v: tok.text }; }
    if (is("(")) {
      i++;
      const items = list();
      expect(")");
      return items.length === 1 ? { t: "paren", a: items[0] } : { t: "tuple", items };
    }
    throw new ParseError(tok.kind === "end" ? "the expression ends too early" : `unexpected '${tok.text}'`, tok.pos);
  };
  const add = binary(() => binary(unary, ["*", "/"])(), ["+", "-"]);
  const cmp = binary(add, ["<", "<=", ">", ">=", "==", "!="]);
  const and = binary(not, ["and"]);
  const or = binary(and, ["or"]);
  const tree = expr();
  if (peek().kind !== "end") throw new ParseError(`unexpected '${peek().text}'`, peek().pos);
  return tree;
}

/** The names of the language's functions (GET /v1/functions); until they come, every
 * name before "(" is taken for one. */
const FUNCTIONS = new Set();
const isFunction = (name) => FUNCTIONS.size === 0 || FUNCTIONS.has(name);

/** The variables of a text this parser cannot read (2x, sin x, |x|, x², θ): its names
 * that are not functions, constants or keywords, nor written only right before "(". The
 * service reads the text itself, and says what is wrong with it. */
export function looseNames(text) {
  const spelled = [...text].map((c) => (LETTERS[c] ? ` ${LETTERS[c]} ` : c)).join("")
    .replace(/(?<![A-Za-z0-9_.])(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/g, " ");
  const plain = new Set();
  for (const m of spelled.matchAll(/([A-Za-z][A-Za-z0-9_]*)(\()?/g)) {
    const known = FUNCTIONS.has(m[1]) || CONSTANTS.has(m[1]) || KEYWORDS.has(m[1]);
    if (!known && !m[2]) plain.add(m[1]);
  }
  return [...plain].sort();
}

/** The variables of a tree: names that are neither functions nor constants, sorted. */
export function freeNames(tree) {
  const names = new Set();
  const walk = (n) => {
    if (n.t === "name" && !CONSTANTS.has(n.v)) names.add(n.v);
    for (const c of [n.a, n.b, n.i, ...(n.args || []), ...(n.items || [])]) if (c) walk(c);
  };
  walk(tree);
  return [...names].sort();
}

// ---------------------------------------------------------------- MathML

const GREEK = {
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", zeta: "ζ", eta: "η",
  theta: "θ", iota: "ι", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", xi: "ξ", omicron: "ο",
  rho: "ρ", sigma: "σ", tau: "τ", upsilon: "υ", phi: "φ", chi: "χ", psi: "ψ", omega: "ω",
  Gamma: "Γ", Delta: "Δ", Theta: "Θ", Lambda: "Λ", Xi: "Ξ", Pi: "Π", Sigma: "Σ", Phi: "Φ",
  Psi: "Ψ", Omega: "Ω", pi: "π",
};
const LETTERS = Object.fromEntries(Object.entries(GREEK).map(([name, letter]) => [letter, name]));
const RELATIONS = { "<": "&lt;", "<=": "≤", ">": "&gt;", ">=": "≥", "==": "=", "!=": "≠" };
const FUNCTION_LABELS = { sigmoid: "σ", gamma: "Γ", lgamma: "ln Γ", loggamma: "ln Γ", log: "log" };
const PRE = { or: 1, and: 2, not: 3, cmp: 4, add: 5, mul: 6, neg: 7, pow: 8, atom: 9 };

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const mo = (s, attrs = "") => `<mo${attrs}>${s}</mo>`;
const mi = (s) => `<mi>${esc(s)}</mi>`;
const mrow = (...xs) => `<mrow>${xs.join("")}</mrow>`;
const fenced = (x, l = "(", r = ")") => mrow(mo(l), x, mo(r));
const math = (x, block = true) => `<math${block ? ' class="display"' : ""}>${x}</math>`;

function nameML(name) {
  if (name === "e" || name === "E") return '<mi mathvariant="normal">e</mi>';
  if (name === "True" || name === "False") return `<mtext>${name}</mtext>`;
  const under = name.indexOf("_");
  if (under > 0 && under < name.length - 1) {
    return `<msub>${nameML(name.slice(0, under))}${nameML(name.slice(under + 1))}</msub>`;
  }
  if (GREEK[name]) return mi(GREEK[name]);
  if (/^\d+$/.test(name)) return `<mn>${name}</mn>`;
  return mi(name);
}

function numberML(text) {
  const m = text.match(/^([\d.]+)[eE]([+-]?\d+)$/);
  if (!m) return `<mn>${text}</mn>`;
  const exp = Number(m[2]);
  const power = `<msup><mn>10</mn>${exp < 0 ? mrow(mo("−"), `<mn>${-exp}</mn>`) : `<mn>${exp}</mn>`}</msup>`;
  return m[1] === "1" ? power : mrow(`<mn>${m[1]}</mn>`, mo("×"), power);
}

const isWord = (n) => n.t === "name" && n.v.length > 1 && !GREEK[n.v] && !n.v.includes("_");
const leftmost = (n) => (n.t === "bin" ? leftmost(n.a) : n);

/** MathML for a tree, with the precedence it binds at: {ml, p}. */
function ml(n) {
  const wrap = (c, min) => { const r = ml(c); return r.p < min ? fenced(r.ml) : r.ml; };
  switch (n.t) {
    case "num": return { ml: numberML(n.v), p: PRE.atom };
    case "name": return { ml: nameML(n.v), p: PRE.atom };
    case "paren": return ml(n.a);
    case "tuple": return { ml: fenced(n.items.map((x) => ml(x).ml).join(mo(","))), p: PRE.atom };
    case "neg": return { ml: mrow(mo("−"), wrap(n.a, PRE.neg)), p: PRE.neg };
    case "not": return { ml: mrow(mo("¬"), wrap(n.a, PRE.not)), p: PRE.not };
    case "index": return { ml: `<msub>${wrap(n.a, PRE.atom)}${ml(n.i).ml}</msub>`, p: PRE.atom };
    case "call": return callML(n);
    case "bin": return binML(n, wrap);
    default: return { ml: mi("?"), p: PRE.atom };
  }
}

function binML(n, wrap) {
  const { op, a, b } = n;
  if (op === "^") {
    return { ml: `<msup>${wrap(a, PRE.atom)}${ml(b).ml}</msup>`, p: PRE.pow };
  }
  if (op === "/") return { ml: `<mfrac>${ml(a).ml}${ml(b).ml}</mfrac>`, p: PRE.pow };
  if (op === "*") {
    const right = leftmost(b);
    const dot = right.t === "num" || isWord(leftmost(a)) || isWord(right) || right.t === "neg";
    return { ml: mrow(wrap(a, PRE.mul), mo(dot ? "⋅" : "&#x2062;"), wrap(b, PRE.pow)), p: PRE.mul };
  }
  if (op === "+" || op === "-") {
    const rhs = b.t === "neg" ? fenced(ml(b).ml) : wrap(b, op === "-" ? PRE.mul : PRE.add);
    return { ml: mrow(wrap(a, PRE.add), mo(op === "-" ? "−" : "+"), rhs), p: PRE.add };
  }
  if (op === "and" || op === "or") {
    const p = PRE[op];
    return { ml: mrow(wrap(a, p), mo(op === "and" ? "∧" : "∨"), wrap(b, p + 1)), p };
  }
  return { ml: mrow(wrap(a, PRE.add), mo(RELATIONS[op]), wrap(b, PRE.add)), p: PRE.cmp };
}

function cases(rows) {
  const cells = rows.map(([value, cond]) =>
    `<mtr><mtd columnalign="left">${value}</mtd><mtd columnalign="left">${cond === null
      ? "<mtext>otherwise</mtext>" : mrow("<mtext>if&#xA0;</mtext>", cond)}</mtd></mtr>`);
  return { ml: `<mtable class="cases">${cells.join("")}</mtable>`, p: PRE.atom };
}

function callML(n) {
  const args = n.args.map((x) => ml(x).ml);
  const [x, y] = args;
  const apply = (label) => ({ ml: mrow(label, mo("&#x2061;"), fenced(args.join(mo(",")))), p: PRE.atom });
  const one = n.args.length === 1;
  switch (n.f) {
    case "sqrt": if (one) return { ml: `<msqrt>${x}</msqrt>`, p: PRE.atom }; break;
    case "cbrt": if (one) return { ml: `<mroot>${x}<mn>3</mn></mroot>`, p: PRE.atom }; break;
    case "abs": case "Abs": if (one) return { ml: fenced(x, "|", "|"), p: PRE.atom }; break;
    case "norm": if (one) return { ml: fenced(x, "‖", "‖"), p: PRE.atom }; break;
    case "floor": if (one) return { ml: fenced(x, "⌊", "⌋"), p: PRE.atom }; break;
    case "ceil": case "ceiling": if (one) return { ml: fenced(x, "⌈", "⌉"), p: PRE.atom }; break;
    case "exp": if (one) return { ml: `<msup><mi mathvariant="normal">e</mi>${x}</msup>`, p: PRE.pow }; break;
    case "sum": case "prod":
      if (one) return { ml: mrow(mo(n.f === "sum" ? "∑" : "∏", ' largeop="true"'), wrapArg(n.args[0])), p: PRE.mul };
      break;
    case "dot":
      if (n.args.length === 2) {
        const simple = n.args.every((a) => a.t === "name");
        if (simple) return { ml: mrow(`<msup>${x}<mi mathvariant="normal">⊤</mi></msup>`, y), p: PRE.pow };
        return { ml: fenced(mrow(x, mo(","), y), "⟨", "⟩"), p: PRE.atom };
      }
      break;
    case "log":
      if (n.args.length === 2) return { ml: mrow(`<msub><mi>log</mi>${y}</msub>`, mo("&#x2061;"), fenced(x)), p: PRE.atom };
      break;
    case "log2": case "log10":
      if (one) return { ml: mrow(`<msub><mi>log</mi><mn>${n.f.slice(3)}</mn></msub>`, mo("&#x2061;"), fenced(x)), p: PRE.atom };
      break;
    case "where":
      if (n.args.length === 3) return cases([[args[1], args[0]], [args[2], null]]);
      break;
    case "piecewise": case "Piecewise":
      if (n.args.every((a) => a.t === "tuple" && a.items.length === 2)) {
        return cases(n.args.map((a) => {
          const [v, c] = a.items;
          return [ml(v).ml, c.t === "name" && c.v === "True" ? null : ml(c).ml];
        }));
      }
      break;
    default: break;
  }
  return apply(mi(FUNCTION_LABELS[n.f] || n.f));
}

const wrapArg = (n) => { const r = ml(n); return r.p < PRE.pow ? fenced(r.ml) : r.ml; };

/** MathML (inner, without <math>) for an expression text; falls back to the text itself. */
export function exprML(text) {
  try { return ml(parse(text)).ml; } catch { return `<mtext>${esc(text)}</mtext>`; }
}

// ---------------------------------------------------------------- numbers as MathML

function fmt(v) {
  if (v === null || v === undefined) return "NaN";
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(4).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(6)));
}

function numML(v) {
  const s = fmt(v);
  const m = s.match(/^(-?[\d.]+)e([+-]\d+)$/);
  const neg = (t) => (t.startsWith("-") ? mrow(mo("−"), `<mn>${t.slice(1)}</mn>`) : `<mn>${t}</mn>`);
  if (!m) return s === "NaN" ? "<mi>NaN</mi>" : neg(s);
  return mrow(neg(m[1]), mo("×"), `<msup><mn>10</mn>${neg(String(Number(m[2])))}</msup>`);
}

/** Bracketed table of cells, eliding the middle of long rows and columns. */
function matrixML(rows, cell = numML) {
  const cut = (xs, fill) => (xs.length <= MAX_SHOWN ? xs
    : [...xs.slice(0, MAX_SHOWN - 2), fill, xs[xs.length - 1]]);
  const body = cut(rows, null).map((row) => {
    if (row === null) return `<mtr>${cut(rows[0], 0).map(() => `<mtd>${mo("⋮")}</mtd>`).join("")}</mtr>`;
    return `<mtr>${cut(row, null).map((v) => `<mtd>${v === null && row.length > MAX_SHOWN ? mo("⋯") : cell(v)}</mtd>`).join("")}</mtr>`;
  });
  // Brackets drawn by CSS: they stretch with any font, unlike <mo> without a math font.
  return `<mtable class="matrix">${body.join("")}</mtable>`;
}

const column = (xs, cell) => matrixML(xs.map((x) => [x]), cell);
const coordinateML = (name) => exprML(name);
const partial = (of, wrt) => `<mfrac>${mrow(mo("∂"), of)}${wrt}</mfrac>`;

// ---------------------------------------------------------------- the form

const $ = (sel) => document.querySelector(sel);
const form = $("#form");
const input = $("#expression");
const fieldset = $("#variables");
const state = { vars: new Map(), names: [], runs: 0, lastPlot: null };
const orderSelect = $("#order");
const taylorBox = $("#taylor");

/** The chosen derivative order k (1 to 10). */
function chosenOrder() { return Number(orderSelect.value) || 2; }

/** "f", "f′", "f″", "f‴", then f⁽ᵏ⁾. */
function derivativeLabel(k) {
  if (k <= 3) return "f" + ["", "′", "″", "‴"][k];
  const sup = "⁰¹²³⁴⁵⁶⁷⁸⁹";
  return "f⁽" + String(k).split("").map((d) => sup[Number(d)]).join("") + "⁾";
}

const EXAMPLES = [
  { label: "sin(x)", expression: "sin(x)", vars: { x: ["1", "-6.28", "6.28"] } },
  { label: "3x² − 4x", expression: "3*x^2 - 4*x", vars: { x: ["1", "0", "3"] } },
  { label: "x³ − 1/x", expression: "x^3 - 1/x", vars: { x: ["1", "0.25", "3"] } },
  { label: "sigmoid", expression: "sigmoid(x)", vars: { x: ["0", "-8", "8"] } },
  { label: "|x| by where", expression: "where(x > 0, x, -x)", vars: { x: ["0.5", "-2", "2"] } },
  { label: "2xᵀx", expression: "2*dot(x, x)", vars: { x: ["[0, 1, 2, 3]", "-3", "3"] } },
  { label: "x²y + sin y", expression: "x^2*y + sin(y)", vars: { x: ["1", "-2", "2"], y: ["1", "-3", "3"] } },
  { label: "sin x cos y", expression: "sin(x)*cos(y)", vars: { x: ["1", "-3.14", "3.14"], y: ["0.5", "-3.14", "3.14"] } },
];

function field(name, kind, value, label) {
  const el = document.createElement("input");
  Object.assign(el, { type: "text", name: `${kind}:${name}`, value, inputMode: kind === "at" ? "text" : "decimal" });
  el.className = `var-${kind}`;
  el.setAttribute("aria-label", label);
  el.addEventListener("input", () => {
    state.vars.get(name)[kind] = el.value;
    if (kind === "at") el.closest(".var")?.classList.toggle("vector", el.value.trim().startsWith("["));
  });
  return el;
}

/** One row per variable: its value at the point, and the range to plot. */
function renderVariables(names) {
  if (names.join() === state.names.join() && fieldset.querySelector(".var")) return;
  state.names = names;
  fieldset.querySelectorAll(".var, .no-vars").forEach((el) => el.remove());
  if (!names.length) {
    fieldset.insertAdjacentHTML("beforeend", '<p class="no-vars">No variables: f is a constant.</p>');
    return;
  }
  for (const name of names) {
    if (!state.vars.has(name)) state.vars.set(name, { at: "1", from: "-3", to: "3" });
    const v = state.vars.get(name);
    const row = document.createElement("div");
    row.className = v.at.trim().startsWith("[") ? "var vector" : "var";
    row.innerHTML = `<span class="var-name">${math(nameML(name), false)}</span>`
      + '<span class="var-eq">=</span><span class="lbl-from">plot from</span><span class="lbl-to">to</span>';
    row.children[1].after(field(name, "at", v.at, `${name} at the point`));
    row.querySelector(".lbl-from").after(field(name, "from", v.from, `${name} from`));
    row.querySelector(".lbl-to").after(field(name, "to", v.to, `${name} to`));
    fieldset.append(row);
  }
}

function syncVariables() {
  let names;
  try { names = freeNames(parse(input.value)); } catch { names = looseNames(input.value); }
  renderVariables(names);
}

function renderExamples() {
  const box = $(".examples");
  for (const ex of EXAMPLES) {
    const b = document.createElement("button");
    Object.assign(b, { type: "button", className: "chip", textContent: ex.label, title: ex.expression });
    b.addEventListener("click", () => {
      input.value = ex.expression;
      for (const [name, [at, from, to]] of Object.entries(ex.vars)) state.vars.set(name, { at, from, to });
      state.names = [];
      syncVariables();
      form.requestSubmit();
    });
    box.append(b);
  }
}

// ---------------------------------------------------------------- talking to nabla

class Problem extends Error {
  constructor(doc) { super(doc.detail || doc.title || "The request failed"); this.doc = doc; }
}

async function differentiate(body) {
  const response = await fetch(API, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const doc = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw new Problem(doc);
  return doc;
}

/** A value as typed: JSON (a number, a list, a list of rows), or a matrix as MATLAB writes
 * it, rows separated by `;` (`1, 2; 3, 4` or `[1 2; 3 4]`). */
export function readValue(text) {
  text = text.trim();
  if (text.includes(";")) {
    const rows = text.replace(/^\[|\]$/g, "").split(";").map((row) => row.trim()).filter((row) => row)
      .map((row) => row.split(/[\s,]+/).filter((x) => x).map(Number));
    const ok = rows.length && rows.every((row) => row.length === rows[0].length && row.every(Number.isFinite));
    return ok ? rows : NaN;
  }
  let value;
  try { value = JSON.parse(text); } catch { return NaN; }
  const numbers = (xs) => Array.isArray(xs) && xs.length && xs.every((x) => typeof x === "number");
  if (typeof value === "number" || numbers(value)) return value;
  const matrix = Array.isArray(value) && value.length && value.every((row) => numbers(row) && row.length === value[0].length);
  return matrix ? value : NaN;
}

function readPoint() {
  const at = {};
  for (const name of state.names) {
    const value = readValue(state.vars.get(name).at);
    if (typeof value === "number" && Number.isNaN(value)) {
      throw new Problem({ detail: `The value of ${name} must be a number such as 0.5, a list such as [0, 1, 2], or a matrix with rows separated by ; such as 1, 2; 3, 4` });
    }
    at[name] = value;
  }
  return at;
}

function linspace(a, b, n) {
  return Array.from({ length: n }, (_, k) => a + ((b - a) * k) / (n - 1));
}

function readRange(name) {
  const v = state.vars.get(name);
  const a = Number(v.from); const b = Number(v.to);
  if (!Number.isFinite(a) || !Number.isFinite(b) || a >= b) {
    throw new Problem({ detail: `The plot range of ${name} must be two numbers, from < to` });
  }
  return [a, b];
}

async function plotRequest(expression, at) {
  const scalars = state.names.filter((n) => typeof at[n] === "number");
  if (scalars.length !== state.names.length || !(scalars.length === 1 || scalars.length === 2)) return null;
  if (scalars.length === 1) {
    const [a, b] = readRange(scalars[0]);
    const xs = linspace(a, b, PLOT_SAMPLES);
    const k = chosenOrder();
    const r = await differentiate({ expression, points: { [scalars[0]]: xs }, ...(k >= 3 ? { order: k } : {}) });
    return { kind: "1d", name: scalars[0], xs, r, order: k };
  }
  const [nx, ny] = scalars;
  const xs = linspace(...readRange(nx), GRID);
  const ys = linspace(...readRange(ny), GRID);
  const points = { [nx]: [], [ny]: [] };
  for (const y of ys) for (const x of xs) { points[nx].push(x); points[ny].push(y); }
  const r = await differentiate({ expression, points, derivatives: ["value", "gradient"] });
  return { kind: "2d", names: [nx, ny], xs, ys, r };
}

async function run(event) {
  event?.preventDefault();
  const expression = input.value.trim();
  const run = ++state.runs;
  document.body.dataset.state = "busy";
  form.querySelector(".go").disabled = true;
  try {
    syncVariables();
    const at = readPoint();
    const big = Object.values(at).some((v) => Array.isArray(v) && v.length > 64);
    // Small problems also get their formulas (SymPy's, in nabla's own language).
    const body = { expression, at, derivatives: big ? ["value", "gradient"] : ["value", "gradient", "hessian", "symbolic"] };
    const k = chosenOrder();
    const oneScalar = state.names.length === 1 && typeof at[state.names[0]] === "number";
    if (k >= 3 && oneScalar) body.order = k;
    if (taylorBox.checked && oneScalar) body.taylor = { order: k };
    const [point, plot] = await Promise.all([differentiate(body), plotRequest(expression, at)]);
    if (run !== state.runs) return;
    clearError();
    $("#result").classList.remove("stale");
    showPoint(expression, at, point);
    if (plot && plot.kind === "1d") plot.taylor = point.taylor || null;
    showPlot(plot, expression);
    $("#check-result").hidden = true;
    history.replaceState(null, "", `#${encodeURIComponent(expression)}`);
    document.body.dataset.state = "done";
  } catch (err) {
    if (run !== state.runs) return;
    if (!(err instanceof Problem)) throw err;
    showError(err.doc, expression);
    $("#result").classList.add("stale");
    document.body.dataset.state = "error";
  } finally {
    if (run === state.runs) form.querySelector(".go").disabled = false;
    document.body.dataset.runs = String(run);
  }
}

// ---------------------------------------------------------------- errors

function showError(doc, expression) {
  const box = $("#error");
  box.querySelector(".error-detail").textContent = doc.detail || doc.title;
  const echo = box.querySelector(".error-echo");
  echo.replaceChildren();
  const pos = Number.isInteger(doc.position) ? doc.position : null;
  if (pos !== null) {
    const mark = document.createElement("mark");
    mark.className = "error-at";
    mark.dataset.position = String(pos);
    mark.textContent = pos < expression.length ? expression[pos] : " ";
    if (pos >= expression.length) mark.classList.add("at-end");
    echo.append(expression.slice(0, pos), mark, expression.slice(pos + 1));
    input.focus();
    input.setSelectionRange(pos, Math.min(pos + 1, expression.length));
  }
  echo.hidden = pos === null;
  showSuggestions(box.querySelector(".error-suggest"), doc, expression, pos);
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
}

/** Under the field: "Did you mean sin?" (each a button that puts it in place of the
 * unknown name), or the ways to write an ambiguous spelling. */
function showSuggestions(hint, doc, expression, pos) {
  hint.replaceChildren();
  const names = Array.isArray(doc.suggestions) ? doc.suggestions : [];
  const readings = Array.isArray(doc.readings) ? doc.readings : [];
  const options = names.length ? names : readings;
  hint.hidden = options.length === 0;
  if (!options.length) return;
  hint.append(names.length ? "Did you mean " : "Write ");
  options.forEach((text, k) => {
    if (k) hint.append(k === options.length - 1 ? " or " : ", ");
    if (!names.length || pos === null) {
      const code = document.createElement("code");
      code.textContent = text;
      hint.append(code);
      return;
    }
    const b = document.createElement("button");
    Object.assign(b, { type: "button", className: "suggestion", textContent: text });
    b.addEventListener("click", () => {
      const typed = expression.slice(pos).match(/^[A-Za-z][A-Za-z0-9_]*/);
      const length = typed ? typed[0].length : 1;
      input.value = expression.slice(0, pos) + text + expression.slice(pos + length);
      syncVariables();
      form.requestSubmit();
    });
    hint.append(b);
  });
  hint.append(names.length ? "?" : "");
}

function clearError() {
  $("#error").hidden = true;
  input.removeAttribute("aria-invalid");
}

// ---------------------------------------------------------------- results

/** f typeset: as typed when this page's parser reads it, else as nabla read it (the
 * symbolic value it sent back in its own syntax, shortened where SymPy found a shorter
 * form: 2 sin x cos x comes back as sin(2*x)). */
function formulaML(expression, r) {
  try { return ml(parse(expression)).ml; } catch { /* 2x, |x|, x²: the service read it */ }
  const read = r.symbolic && typeof r.symbolic.value === "string" ? r.symbolic.value : expression;
  return exprML(read);
}

function showPoint(expression, at, r) {
  $("#result").hidden = false;
  const args = state.names.map(nameML).join(mo(","));
  const f = state.names.length ? mrow(mi("f"), mo("&#x2061;"), fenced(args)) : mi("f");
  $("#formula").innerHTML = math(mrow(f, mo("="), formulaML(expression, r)));
  const valueML = (v) => (Array.isArray(v) ? (Array.isArray(v[0]) ? matrixML(v) : fenced(v.map(numML).join(mo(",")))) : numML(v));
  $("#where").innerHTML = state.names.length ? "at " + state.names.map((n) => math(mrow(nameML(n), mo("="),
    valueML(at[n])), false)).join(", ") : "";
  const rows = [];
  const vector = Array.isArray(r.value);
  const shaped = (v) => (Array.isArray(v[0]) ? matrixML(v) : column(v));
  rows.push(["value", mrow(mi("f"), mo("="), vector ? shaped(r.value) : numML(r.value))]);
  const coords = r.coordinates;
  const single = !vector && coords.length === 1 && !Array.isArray(at[state.names[0]]);
  if (single && r.gradient) {
    const dx = mrow(mi("d"), coordinateML(coords[0]));
    rows.push(["gradient", mrow(mi("f"), mo("′", ' lspace="0"'), mo("="), `<mfrac>${mrow(mi("d"), mi("f"))}${dx}</mfrac>`, mo("="), numML(r.gradient[0]))]);
  } else if (r.gradient && r.shapes) {
    // Matrix variables: the gradient by variable, each shaped like it (JAX's convention).
    let offset = 0;
    for (const [name, shape] of Object.entries(r.shapes)) {
      const size = shape.reduce((a, b) => a * b, 1);
      const part = r.gradient.slice(offset, offset + size);
      offset += size;
      const shown = shape.length === 2
        ? matrixML(Array.from({ length: shape[0] }, (_, i) => part.slice(i * shape[1], (i + 1) * shape[1])))
        : shape.length === 1 ? column(part) : numML(part[0]);
      rows.push(["gradient", mrow(partial(mi("f"), mrow(mo("∂"), nameML(name))), mo("="), shown)]);
    }
  } else if (r.gradient) {
    const labels = coords.length <= 3
      ? mrow(mo("="), column(coords, (c) => partial(mi("f"), mrow(mo("∂"), coordinateML(c))))) : "";
    rows.push(["gradient", mrow(mrow(mo("∇"), mi("f")), labels, mo("="), column(r.gradient))]);
  }
  if (r.jacobian) {
    const flat = Array.isArray(r.jacobian[0]?.[0]) ? r.jacobian.flat() : r.jacobian;  // f a matrix
    rows.push(["jacobian", mrow(mi("J"), mo("="), matrixML(flat))]);
  }
  if (r.hessian) {
    if (vector) {
      (Array.isArray(r.value[0]) ? r.hessian.flat() : r.hessian).slice(0, 3).forEach((h, k) => rows.push(["hessian", mrow(`<msub><mi>H</mi><mn>${k}</mn></msub>`, mo("="), matrixML(h))]));
    } else if (single) {
      const d2 = `<mfrac>${mrow("<msup><mi>d</mi><mn>2</mn></msup>", mi("f"))}${mrow(mi("d"), `<msup>${coordinateML(coords[0])}<mn>2</mn></msup>`)}</mfrac>`;
      rows.push(["hessian", mrow(mi("f"), mo("″", ' lspace="0"'), mo("="), d2, mo("="), numML(r.hessian[0][0]))]);
    } else rows.push(["hessian", mrow(mi("H"), mo("="), matrixML(r.hessian))]);
  }
  if (single && r.tensors) {
    const k = Math.max(...Object.keys(r.tensors).map(Number));
    let t = r.tensors[String(k)];
    while (Array.isArray(t)) t = t[0];
    rows.push([`order-${k}`, mrow(mi(derivativeLabel(k)), mo("="), numML(t))]);
  }
  if (r.taylor) {
    let poly;
    try { poly = exprML(r.taylor.polynomial); } catch { poly = mi(r.taylor.polynomial); }
    rows.push(["taylor", mrow(`<msub><mi>T</mi><mn>${r.taylor.order}</mn></msub>`, mo("&#x2061;"), fenced(nameML(state.names[0])), mo("="), poly)]);
  }
  $("#numbers").innerHTML = rows.map(([k, x]) => `<div class="out out-${k}" data-kind="${k}">${math(x)}</div>`).join("");
  showSymbolic(r.symbolic);
}

/** The response's `symbolic` formulas (expression strings), typeset like f. */
function showSymbolic(symbolic) {
  const box = $("#symbolic");
  const typeset = (v) => (Array.isArray(v) ? (Array.isArray(v[0]) ? matrixML(v, exprML) : column(v, exprML)) : exprML(String(v)));
  const parts = [];
  if (symbolic && typeof symbolic === "object") {
    const labels = { value: mi("f"), gradient: mrow(mo("∇"), mi("f")), jacobian: mi("J"), hessian: mi("H") };
    for (const key of ["value", "gradient", "jacobian", "hessian"]) {
      if (symbolic[key] !== undefined && symbolic[key] !== null) {
        parts.push(`<div class="out" data-kind="symbolic-${key}">${math(mrow(labels[key], mo("="), typeset(symbolic[key])))}</div>`);
      }
    }
    // By whole variable, in matrix notation (checked by nabla against the numbers).
    for (const [name, formula] of Object.entries(symbolic.by_variable || {})) {
      if (typeof formula !== "string") continue;
      parts.push(`<div class="out" data-kind="symbolic-by-variable" data-name="${esc(name)}">${math(mrow(partial(mi("f"), mrow(mo("∂"), nameML(name))), mo("="), exprML(formula)))}</div>`);
    }
  }
  box.innerHTML = parts.length ? `<h3>Symbolically</h3>${parts.join("")}` : "";
  box.hidden = !parts.length;
}

// ---------------------------------------------------------------- plots

function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  parent?.append(el);
  return el;
}

function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

function quantile(sorted, q) { return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]; }

function yRange(series) {
  const all = series.flat().filter(Number.isFinite).sort((a, b) => a - b);
  if (!all.length) return [-1, 1];
  let lo = quantile(all, 0.01); let hi = quantile(all, 0.99);
  if (all[0] >= lo - (hi - lo) * 0.5) lo = all[0];
  if (all[all.length - 1] <= hi + (hi - lo) * 0.5) hi = all[all.length - 1];
  if (hi - lo < 1e-12) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

function frame(width, height, xr, yr, labels, margin = {}) {
  const m = { left: 52, right: 16, top: 34, bottom: 40, ...margin };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart" });
  const box = { left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom };
  const sx = (x) => box.left + ((x - xr[0]) / (xr[1] - xr[0])) * (box.right - box.left);
  const sy = (y) => box.bottom - ((y - yr[0]) / (yr[1] - yr[0])) * (box.bottom - box.top);
  Object.entries({ xMin: xr[0], xMax: xr[1], yMin: yr[0], yMax: yr[1], ...box })
    .forEach(([k, v]) => { root.dataset[k] = String(v); });
  const clipId = `clip${state.runs}`;
  svg("rect", { x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top }, svg("clipPath", { id: clipId }, svg("defs", {}, root)));
  svg("rect", { x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top, class: "plot-bg" }, root);
  const grid = svg("g", { class: "grid" }, root);
  const axes = svg("g", { class: "axes" }, root);
  const xTicks = niceTicks(xr[0], xr[1], Math.max(3, Math.round(width / 90)));
  const yTicks = niceTicks(yr[0], yr[1], Math.max(3, Math.round(height / 60)));
  for (const t of xTicks) {
    svg("line", { x1: sx(t), x2: sx(t), y1: box.top, y2: box.bottom, class: t === 0 ? "zero" : "" }, grid);
    svg("text", { x: sx(t), y: box.bottom + 18, "text-anchor": "middle", class: "tick" }, axes).textContent = fmt(t);
  }
  for (const t of yTicks) {
    svg("line", { x1: box.left, x2: box.right, y1: sy(t), y2: sy(t), class: t === 0 ? "zero" : "" }, grid);
    svg("text", { x: box.left - 8, y: sy(t) + 4, "text-anchor": "end", class: "tick" }, axes).textContent = fmt(t);
  }
  svg("rect", { x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top, class: "frame" }, axes);
  svg("text", { x: box.right, y: height - 6, "text-anchor": "end", class: "axis-label" }, axes).textContent = labels[0];
  if (labels[1]) svg("text", { x: box.left - 8, y: box.top - 10, class: "axis-label", "text-anchor": "end" }, axes).textContent = labels[1];
  const plotArea = svg("g", { "clip-path": `url(#${clipId})` }, root);
  return { root, box, sx, sy, plotArea };
}

const BASE_SERIES = [
  { key: "f", label: "f", cls: "s-f" },
  { key: "df", label: "f′", cls: "s-df" },
  { key: "d2f", label: "f″", cls: "s-d2f" },
];

/** Flatten a tensor entry of one coordinate ([[...[v]]]) to its number. */
function only(t) { while (Array.isArray(t)) t = t[0]; return t ?? null; }

/** The Taylor polynomial's values over xs, from its coefficients. */
function taylorValues(taylor, name, xs) {
  const a = taylor.center[name];
  return xs.map((x) => taylor.coefficients.reduce((sum, c) => sum + (c.value ?? NaN) * (x - a) ** (c.powers[name] || 0), 0));
}

function plot1d({ name, xs, r, order, taylor }, width) {
  const f = r.value; const df = r.gradient?.map((g) => g?.[0] ?? null); const d2f = r.hessian?.map((h) => h?.[0]?.[0] ?? null);
  if (f.some(Array.isArray)) return null;
  const data = { f, df, d2f };
  const SERIES = BASE_SERIES.slice();
  if (order >= 3 && r.tensors?.[String(order)]) {
    data.dkf = r.tensors[String(order)].map(only);
    SERIES.push({ key: "dkf", label: derivativeLabel(order), cls: "s-dkf" });
  }
  if (taylor) {
    data.taylor = taylorValues(taylor, name, xs);
    SERIES.push({ key: "taylor", label: `T${taylor.order}`, cls: "s-taylor" });
  }
  const height = Math.round(Math.min(440, Math.max(260, width * 0.56)));
  const yr = yRange([f, df || [], d2f || [], data.dkf || []]);
  const span = yr[1] - yr[0];
  const { root, box, sx, sy, plotArea } = frame(width, height, [xs[0], xs[xs.length - 1]], yr, [name, null]);
  root.dataset.kind = "1d";
  for (const s of SERIES) {
    const ys = data[s.key];
    if (!ys) continue;
    let d = ""; let pen = false;
    ys.forEach((y, k) => {
      // Lift the pen at a jump (a step, a pole) rather than draw a vertical line across it.
      const jump = k > 0 && Math.abs(y - ys[k - 1]) > 0.3 * span;
      const ok = Number.isFinite(y) && y > yr[0] - 3 * span && y < yr[1] + 3 * span;
      if (ok) d += `${pen && !jump ? "L" : "M"}${sx(xs[k]).toFixed(2)} ${sy(y).toFixed(2)}`;
      pen = ok;
    });
    svg("path", { d, class: `curve ${s.cls}`, "data-series": s.key }, plotArea);
  }
  const step = Math.min(84, Math.floor((box.right - box.left) / SERIES.length));
  const legend = svg("g", { class: "legend", transform: `translate(${box.right - SERIES.length * step + 8} 14)` }, root);
  SERIES.forEach((s, k) => {
    svg("line", { x1: k * step, x2: k * step + Math.min(26, step / 3), y1: 0, y2: 0, class: `curve ${s.cls}` }, legend);
    svg("text", { x: k * step + Math.min(32, step / 3 + 6), y: 5, class: "legend-text" }, legend).textContent = `${s.label}(${name})`;
  });
  const cursor = svg("g", { class: "cursor", visibility: "hidden" }, root);
  const rule = svg("line", { y1: box.top, y2: box.bottom, class: "rule" }, cursor);
  const dots = SERIES.map((s) => svg("circle", { r: 4, class: `dot ${s.cls}` }, cursor));
  root.addEventListener("pointermove", (ev) => {
    const p = root.getBoundingClientRect();
    const px = ((ev.clientX - p.left) / p.width) * width;
    const k = Math.round(((px - box.left) / (box.right - box.left)) * (xs.length - 1));
    if (k < 0 || k >= xs.length) { cursor.setAttribute("visibility", "hidden"); return; }
    cursor.setAttribute("visibility", "visible");
    rule.setAttribute("x1", sx(xs[k])); rule.setAttribute("x2", sx(xs[k]));
    SERIES.forEach((s, j) => {
      const y = data[s.key]?.[k];
      dots[j].setAttribute("visibility", Number.isFinite(y) && y > yr[0] && y < yr[1] ? "visible" : "hidden");
      if (Number.isFinite(y)) { dots[j].setAttribute("cx", sx(xs[k])); dots[j].setAttribute("cy", sy(y)); }
    });
    $("#readout").textContent = `${name} = ${fmt(xs[k])}:  ` + SERIES.map((s) => `${s.label} = ${fmt(data[s.key]?.[k])}`).join(",  ");
  });
  root.addEventListener("pointerleave", () => cursor.setAttribute("visibility", "hidden"));
  return root;
}

const VIRIDIS = [[68, 1, 84], [65, 68, 135], [42, 120, 142], [34, 168, 132], [122, 209, 81], [253, 231, 37]];
function color(t) {
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(u)); const w = u - k;
  const c = VIRIDIS[k].map((a, j) => Math.round(a + (VIRIDIS[k + 1][j] - a) * w));
  return `rgb(${c.join(",")})`;
}

/** Contour segments of a grid at one level (marching squares, no joining). */
function contour(z, xs, ys, level, sx, sy) {
  let d = "";
  const n = xs.length;
  const at = (i, j) => z[j * n + i];
  const lerp = (a, b, za, zb) => a + ((level - za) / (zb - za)) * (b - a);
  for (let j = 0; j + 1 < ys.length; j++) {
    for (let i = 0; i + 1 < n; i++) {
      const c = [at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)];
      if (!c.every(Number.isFinite)) continue;
      const corners = [[xs[i], ys[j]], [xs[i + 1], ys[j]], [xs[i + 1], ys[j + 1]], [xs[i], ys[j + 1]]];
      const hits = [];
      for (let e = 0; e < 4; e++) {
        const a = e; const b = (e + 1) % 4;
        if ((c[a] < level) !== (c[b] < level)) {
          hits.push([lerp(corners[a][0], corners[b][0], c[a], c[b]), lerp(corners[a][1], corners[b][1], c[a], c[b])]);
        }
      }
      for (let h = 0; h + 1 < hits.length; h += 2) {
        d += `M${sx(hits[h][0]).toFixed(1)} ${sy(hits[h][1]).toFixed(1)}L${sx(hits[h + 1][0]).toFixed(1)} ${sy(hits[h + 1][1]).toFixed(1)}`;
      }
    }
  }
  return d;
}

function plot2d({ names, xs, ys, r }, width) {
  const z = r.value;
  if (z.some(Array.isArray)) return null;
  const finite = z.filter(Number.isFinite).sort((a, b) => a - b);
  const [lo, hi] = finite.length ? [quantile(finite, 0.01), quantile(finite, 0.99)] : [0, 1];
  const zspan = hi - lo || 1;
  const height = Math.round(Math.min(480, Math.max(280, width * 0.8)));
  const { root, box, sx, sy, plotArea } = frame(width, height, [xs[0], xs[xs.length - 1]], [ys[0], ys[ys.length - 1]], names, { right: 64, top: 26 });
  root.dataset.kind = "2d";
  const heat = svg("g", { class: "heat", "shape-rendering": "crispEdges" }, plotArea);
  const dx = (xs[1] - xs[0]) / 2; const dy = (ys[1] - ys[0]) / 2;
  z.forEach((v, k) => {
    const x = xs[k % xs.length]; const y = ys[Math.floor(k / xs.length)];
    const x0 = sx(x - dx); const y0 = sy(y + dy);
    svg("rect", { x: x0.toFixed(1), y: y0.toFixed(1), width: (sx(x + dx) - x0 + 1).toFixed(1), height: (sy(y - dy) - y0 + 1).toFixed(1),
      fill: Number.isFinite(v) ? color((v - lo) / zspan) : "#888" }, heat);
  });
  const levels = niceTicks(lo, hi, 8).filter((l) => l > lo && l < hi);
  const contours = svg("g", { class: "contours" }, plotArea);
  for (const level of levels) svg("path", { d: contour(z, xs, ys, level, sx, sy), class: "contour", "data-level": level }, contours);
  const arrows = svg("g", { class: "arrows" }, plotArea);
  const stride = 5;
  const picks = [];
  for (let j = 2; j < ys.length; j += stride) for (let i = 2; i < xs.length; i += stride) picks.push(j * xs.length + i);
  const norms = picks.map((k) => Math.hypot(...(r.gradient[k] || [NaN, NaN]))).filter(Number.isFinite);
  const maxNorm = Math.max(...norms, 1e-12);
  const cell = (sx(xs[stride]) - sx(xs[0])) * 0.85;
  for (const k of picks) {
    const g = r.gradient[k];
    if (!g || !g.every(Number.isFinite)) continue;
    const x = sx(xs[k % xs.length]); const y = sy(ys[Math.floor(k / xs.length)]);
    const gx = sx(xs[0] + g[0]) - sx(xs[0]); const gy = sy(ys[0] + g[1]) - sy(ys[0]);
    const len = Math.hypot(gx, gy);
    if (len === 0) { svg("circle", { cx: x, cy: y, r: 1.5, class: "arrow-dot" }, arrows); continue; }
    const scale = (cell * Math.hypot(...g)) / maxNorm / len;
    const ex = x + gx * scale; const ey = y + gy * scale;
    const head = Math.min(6, Math.hypot(ex - x, ey - y) * 0.45);
    const ux = (ex - x) / Math.hypot(ex - x, ey - y || 1e-9); const uy = (ey - y) / Math.hypot(ex - x, ey - y || 1e-9);
    svg("path", { class: "arrow", d: `M${x.toFixed(1)} ${y.toFixed(1)}L${ex.toFixed(1)} ${ey.toFixed(1)}`
      + `M${(ex - head * (ux - uy * 0.5)).toFixed(1)} ${(ey - head * (uy + ux * 0.5)).toFixed(1)}L${ex.toFixed(1)} ${ey.toFixed(1)}`
      + `L${(ex - head * (ux + uy * 0.5)).toFixed(1)} ${(ey - head * (uy - ux * 0.5)).toFixed(1)}` }, arrows);
  }
  const bar = svg("g", { class: "colorbar", "shape-rendering": "crispEdges" }, root);
  const bx = box.right + 18; const steps = 32;
  for (let s = 0; s < steps; s++) {
    const h = (box.bottom - box.top) / steps;
    svg("rect", { x: bx, y: (box.bottom - (s + 1) * h).toFixed(1), width: 12, height: (h + 0.6).toFixed(1), fill: color(s / (steps - 1)) }, bar);
  }
  svg("text", { x: bx + 6, y: box.top - 4, "text-anchor": "middle", class: "tick" }, bar).textContent = fmt(Number(hi.toPrecision(3)));
  svg("text", { x: bx + 6, y: box.bottom + 14, "text-anchor": "middle", class: "tick" }, bar).textContent = fmt(Number(lo.toPrecision(3)));
  root.addEventListener("pointermove", (ev) => {
    const p = root.getBoundingClientRect();
    const px = ((ev.clientX - p.left) / p.width) * width; const py = ((ev.clientY - p.top) / p.height) * height;
    const i = Math.round(((px - box.left) / (box.right - box.left)) * (xs.length - 1));
    const j = Math.round(((box.bottom - py) / (box.bottom - box.top)) * (ys.length - 1));
    if (i < 0 || j < 0 || i >= xs.length || j >= ys.length) return;
    const k = j * xs.length + i;
    $("#readout").textContent = `${names[0]} = ${fmt(xs[i])}, ${names[1]} = ${fmt(ys[j])}:  f = ${fmt(z[k])},  ∇f = (${(r.gradient[k] || []).map(fmt).join(", ")})`;
  });
  return root;
}

function showPlot(plot, expression) {
  state.lastPlot = plot;
  const card = $("#plot-card");
  const box = $("#plot");
  box.replaceChildren();
  $("#readout").textContent = "";
  card.hidden = false;
  const width = Math.max(300, Math.floor(box.clientWidth || card.clientWidth || 640));
  const chart = plot && (plot.kind === "1d" ? plot1d(plot, width) : plot2d(plot, width));
  card.hidden = !chart;
  if (!chart) return;
  box.append(chart);
  const extra = plot.kind === "1d" && plot.order >= 3 ? ` and ${derivativeLabel(plot.order)}` : "";
  const poly = plot.kind === "1d" && plot.taylor ? `, and its Taylor polynomial of order ${plot.taylor.order} about the point` : "";
  $("#plot-caption").innerHTML = plot.kind === "1d"
    ? `${math(exprML(expression), false)} with its first and second derivatives${extra}${poly}`
    : `${math(exprML(expression), false)} as a heat map with contours; arrows show ∇f`;
  $("#readout").textContent = "Hover over or tap the plot to read its values.";
}

// ---------------------------------------------------------------- gradient check

function cell(v) {
  if (typeof v === "boolean") return v ? "✓" : "✗";
  if (v === null || v === undefined) return "–";
  return fmt(v);
}

function table(headers, rows, cls) {
  const head = headers.map((h) => `<th scope="col">${h}</th>`).join("");
  const body = rows.map((r) => `<tr class="${r.cls || ""}">${r.cells.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("");
  return `<table class="${cls}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function showCheck(check, coordinates) {
  const box = $("#check-result");
  const subject = check.claimed || check;
  const g = subject.gradient;
  const rows = coordinates.map((c, i) => ({
    cls: g.agree[i] ? "agree" : "disagree",
    cells: [c, cell(g.computed[i]), cell(g.finite_difference[i]), cell(g.error[i]), cell(g.agree[i])] }));
  const rates = (subject.taylor || []).map((t) => ({
    cls: t.agrees ? "agree" : "disagree",
    cells: [t.direction, t.rate === null ? "flat (rounding level)" : t.rate.toFixed(2), cell(t.agrees)] }));
  const verdict = subject.agrees ? "agrees" : "does not agree";
  const who = check.claimed ? "Your gradient" : "nabla's gradient and Hessian";
  box.innerHTML = `<p class="verdict ${subject.agrees ? "agree" : "disagree"}" data-agrees="${subject.agrees}">${who} ${verdict} with finite differences.</p>`
    + table(["coordinate", check.claimed ? "yours" : "nabla", "finite difference", "error", "agrees"], rows, "check-table")
    + "<p>Taylor remainder test: the first-order remainder shrinks as h² (rate 2) when the gradient is right, as h (rate 1) when it is not.</p>"
    + table(["direction", "rate", "agrees"], rates, "rate-table");
  box.hidden = false;
}

async function runCheck() {
  const expression = input.value.trim();
  try {
    syncVariables();
    const at = readPoint();
    const claimed = $("#claimed").value.trim();
    const check = claimed ? { gradient: claimed.split(";").map((t) => t.trim()) } : {};
    const r = await differentiate({ expression, at, derivatives: ["value"], check });
    clearError();
    showCheck(r.check, r.coordinates);
    document.body.dataset.check = "done";
  } catch (err) {
    if (!(err instanceof Problem)) throw err;
    showError(err.doc, expression);
    document.body.dataset.check = "error";
  }
}

// ---------------------------------------------------------------- start

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (state.lastPlot && !$("#result").hidden) showPlot(state.lastPlot, input.value.trim());
  }, 150);
});

form.addEventListener("submit", run);
orderSelect.addEventListener("change", () => form.requestSubmit());
taylorBox.addEventListener("change", () => form.requestSubmit());
$("#check").addEventListener("click", runCheck);
input.addEventListener("input", syncVariables);
input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); form.requestSubmit(); } });
renderExamples();
fetch("/v1/functions").then((response) => response.json()).then((doc) => {
  for (const f of doc.functions || []) for (const name of [f.name, ...(f.aliases || [])]) FUNCTIONS.add(name);
  syncVariables();
}).catch(() => { /* then every name before "(" is taken for a function */ });
const fromHash = decodeURIComponent(location.hash.slice(1));
if (fromHash) input.value = fromHash;
state.vars.set("x", { at: "1", from: "-6.28", to: "6.28" });
syncVariables();
form.requestSubmit();

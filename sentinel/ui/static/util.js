// Small DOM and formatting helpers. Text is always set as text (never parsed as HTML).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function field(labelText, control, cls = "field") {
  // Every control gets a <label for=...>: screen readers and the tests rely on it.
  return h("div", { class: cls }, h("label", { for: control.id, text: labelText }), control);
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

const pad = (n) => String(n).padStart(2, "0");

export function clock(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function clockMs(iso) {
  const d = new Date(iso);
  return `${clock(iso)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return sameDay ? clock(iso) : `${day} ${clock(iso)}`;
}

export function span(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${pad(m % 60)}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "—";
  const ms = now - new Date(iso).getTime();
  if (ms < 5000) return "just now";
  return `${span(ms)} ago`;
}

export function percentText(value) {
  if (value === null || value === undefined) return "—";
  return `${Math.round(value * 10) / 10}%`;
}

export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

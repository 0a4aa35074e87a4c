// Server-Sent Events over fetch(): unlike EventSource it sends the bearer token in a header (never in the
// URL), and it reconnects only when told to. A stream that ends with its terminal event stays closed, so
// a page left open on a finished process does not replay its log every few seconds.

import { api, problemText } from "./auth.js";
import { sleep } from "./util.js";

const MAX_BACKOFF_MS = 30000;

/**
 * Opens `path` as an event stream. `onEvent(type, data, id)` gets each event; it returns "stop" to close
 * the stream for good (a terminal event). `onState(state, detail)` hears "open", "retry" (with the delay)
 * and "failed" (an answer that retrying cannot fix, e.g. 404). Resumes with Last-Event-ID after a drop.
 */
export function openStream(path, { onEvent, onState = () => {}, lastEventId = null }) {
  const control = new AbortController();
  let lastId = lastEventId;
  let stopped = false;
  const stop = () => { stopped = true; control.abort(); };

  (async () => {
    let backoff = 1000;
    while (!stopped) {
      let delay = backoff;
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
        const answer = await api(path, { headers, signal: control.signal });
        if (answer.status === 429 || answer.status === 503) {
          delay = Math.max(1000, Number(answer.headers.get("Retry-After") || 5) * 1000);
        } else if (!answer.ok) {
          onState("failed", (await problemText(answer)) || `${answer.status}`);
          return;
        } else {
          onState("open");
          backoff = 1000;
          await read(answer.body, (type, data, id) => {
            if (id !== null) lastId = id;
            if (onEvent(type, data, id) === "stop") stop();
          });
          delay = 1000; // the server ended the stream without a terminal event (drain, restart)
        }
      } catch (err) {
        if (stopped) return;
        if (err?.status === 401) { onState("failed", err.message); return; }
      }
      if (stopped) return;
      onState("retry", delay);
      await sleep(delay, control.signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  })();
  return { close: stop, get lastEventId() { return lastId; } };
}

async function read(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "message";
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + (buffer.startsWith("\r\n", cut) ? 2 : 1));
      if (line === "") {
        if (data.length) dispatch(type, data.join("\n"), id);
        type = "message";
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "event") type = value;
      else if (name === "data") data.push(value);
      else if (name === "id") id = value;
    }
  }
}

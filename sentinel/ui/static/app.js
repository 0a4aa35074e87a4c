// Process Sentinel dashboard: routing, sign-in and the health strip. Views live in views.js.

import * as auth from "./auth.js";
import { h, field } from "./util.js";
import { processesView, processView, deadLettersView } from "./views.js";

const config = JSON.parse(document.body.dataset.config);
auth.configure(config);

const main = document.getElementById("main");
let current = null; // the mounted view: { unmount() }
let healthTimer = null;

// -- routing: every view is a URL ---------------------------------------------------------------------
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

function route() {
  current?.unmount();
  current = null;
  main.replaceChildren();
  const path = location.pathname;
  for (const link of document.querySelectorAll("nav.views a[data-view]")) {
    const active = (link.dataset.view === "dead-letters") === path.startsWith("/ui/dead-letters");
    if (active && path.startsWith("/ui")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!auth.signedIn()) {
    renderSignIn();
    return;
  }
  const context = { main, config, navigate };
  if (path.startsWith("/ui/processes/")) {
    const id = decodeURIComponent(path.slice("/ui/processes/".length));
    current = processView(context, id);
  } else if (path === "/ui/dead-letters") {
    current = deadLettersView(context);
  } else {
    current = processesView(context);
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", route);

// -- sign-in ----------------------------------------------------------------------------------------
function renderSignIn(message = "") {
  const error = message ? h("div", { class: "error-box", role: "alert", text: message }) : null;
  if (config.dev) {
    const tenant = h("input", { type: "text", id: "dev-tenant", name: "tenant", value: "acme", autocomplete: "off", required: true, maxlength: 50 });
    const admin = h("input", { type: "checkbox", id: "dev-admin", name: "admin" });
    const form = h(
      "form",
      { class: "signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title", text: "Sign in (dev mode)" }),
      h("p", { text: "Dev mode signs you in with a token from this server's local key, for the tenant you name. The page then sees that tenant's processes only." }),
      error,
      field("Tenant", tenant),
      h("div", { class: "check" }, admin, h("label", { for: "dev-admin", text: `with the ${config.adminRole} role (dead letters)` })),
      h("button", { type: "submit", class: "btn btn-primary", id: "dev-sign-in", text: "Sign in" }),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await auth.devSignIn(tenant.value.trim(), admin.checked);
      } catch (err) {
        renderSignIn(err.message);
      }
    });
    main.replaceChildren(form);
    tenant.focus();
    return;
  }
  const button = h("button", { type: "button", class: "btn btn-primary", id: "oidc-sign-in", text: "Sign in" });
  button.addEventListener("click", () => auth.startOidc().catch((err) => renderSignIn(err.message)));
  main.replaceChildren(
    h(
      "div",
      { class: "signin" },
      h("h1", { text: "Sign in" }),
      h("p", { text: config.clientId ? "Sign in with your organisation's identity provider. The page shows your tenant's processes only." : "Sign-in is not configured: the operator must set SENTINEL_UI_CLIENT_ID." }),
      error,
      config.clientId ? button : null,
    ),
  );
}

const who = document.getElementById("who");
document.getElementById("sign-out").addEventListener("click", async () => {
  await auth.signOut();
  navigate("/ui", { replace: true });
});

auth.onChange((isIn) => {
  if (isIn) {
    const me = auth.principal();
    const roles = me.roles.filter((r) => r === config.adminRole);
    document.getElementById("who-tenant").replaceChildren("tenant ", h("b", { text: me.tenant ?? "?" }), roles.length ? ` · ${roles.join(", ")}` : "");
    who.hidden = false;
    if (!healthTimer) startHealth();
    if (!current) route();
  } else {
    who.hidden = true;
    stopHealth();
    route();
  }
});

// -- health strip: every page ---------------------------------------------------------------------------
const healthBox = document.getElementById("health");
const HEALTH_MS = 5000;

function healthItem(label, value, state = "ok") {
  return h("span", { class: "item" }, h("span", { class: `dot ${state === "ok" ? "" : state}`, "aria-hidden": "true" }), `${label} `, h("b", { text: value }));
}

async function refreshHealth() {
  if (document.visibilityState === "hidden") return;
  try {
    const s = await auth.apiJson("/ui/api/health");
    const lag = s.ingest_lag_seconds;
    const items = [
      healthItem("ingest", s.ingest_running ? "running" : "not running", s.ingest_running ? "ok" : "bad"),
      healthItem("ingest lag", lag === null ? "—" : `${lag.toFixed(lag < 10 ? 2 : 0)} s`, lag === null || lag < 5 ? "ok" : lag < 60 ? "warn" : "bad"),
      healthItem("queue depth", s.queue_depth === null ? "—" : s.queue_depth.toLocaleString(), s.queue_depth === null ? "bad" : s.queue_depth < 10000 ? "ok" : "warn"),
      healthItem("core", s.core, s.core === "compiled" ? "ok" : "warn"),
      healthItem("store", `${s.store}${s.store_ok ? "" : " unavailable"}`, s.store_ok ? "ok" : "bad"),
      s.draining ? healthItem("server", "draining", "warn") : null,
      h("span", { class: "item", text: `v${s.version}` }),
    ];
    healthBox.replaceChildren(...items.filter(Boolean));
  } catch (err) {
    if (err.status !== 401) healthBox.replaceChildren(healthItem("server", "unreachable", "bad"));
  }
}

function startHealth() {
  refreshHealth();
  healthTimer = setInterval(refreshHealth, HEALTH_MS);
}

function stopHealth() {
  clearInterval(healthTimer);
  healthTimer = null;
  healthBox.replaceChildren();
}

// -- start ---------------------------------------------------------------------------------------------
(async () => {
  try {
    if (location.pathname === "/ui/callback") {
      const back = await auth.completeOidc();
      history.replaceState(null, "", back);
    } else {
      await auth.resume();
    }
  } catch (err) {
    route();
    renderSignIn(err.message);
    return;
  }
  if (!current) route();
})();

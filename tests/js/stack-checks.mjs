// Checks a running local stack (scripts/dev) as its users meet it, exiting non-zero on the
// first failure:
//   1. CORS: the frontend's origin is allowed with credentials, a foreign one gets nothing
//      (the functions' own policy, as deployed; not cargo-lambda's any-origin default);
//   2. local limits: a developer can register many times from one address;
//   3. a paid order through the stack's own Stripe fake: scripts/dev registered its webhook,
//      so a card declined then a new attempt paid (what Stripe.js does, done here with the
//      fake's secret key: localstripe's Stripe.js cannot confirm a card payment) end with
//      the order confirmed and its ticket issued by the webhook alone;
//   3b. /redoc's script: the pinned ReDoc release's bundle, as npm publishes it, has exactly
//      the page's Subresource Integrity hash (else browsers would refuse it);
//   4. in headless Chromium (Debian's, driven by playwright-core) on the frontend's origin:
//      browser/upload.html must end with the upload ready, and browser/realtime.html must
//      receive its order's "order confirmed" frame over the WebSocket gateway.
//
//   node stack-checks.mjs API_BASE_URL [PAGE_PORT]
//
// The page is served here on http://localhost:PAGE_PORT (default 3000, the frontend's
// origin, which the stack's CORS_ALLOWED_ORIGINS and the bucket's CORS must allow).
import { createServer } from "node:http";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const [api, pagePort = "3000"] = process.argv.slice(2);
if (!api) {
  console.error("usage: node stack-checks.mjs API_BASE_URL [PAGE_PORT]");
  process.exit(2);
}
const frontend = `http://localhost:${pagePort}`;

// 1. CORS, on a route of every HTTP function.
const routes = [
  ["POST", "/api/v1/auth/login"],
  ["GET", "/api/v1/users/me"],
  ["POST", "/api/v1/tasks"],
  ["GET", "/api/v1/notifications"],
  ["POST", "/api/v1/uploads"],
  ["POST", "/api/v1/events"],
  ["POST", "/api/v1/orders"],
  ["GET", "/health"],
];
for (const [method, path] of routes) {
  const preflight = (origin) =>
    fetch(`${api}${path}`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, idempotency-key",
      },
    });
  const allowed = await preflight(frontend);
  assert.equal(allowed.headers.get("access-control-allow-origin"), frontend, `${path}: the frontend's preflight`);
  assert.equal(allowed.headers.get("access-control-allow-credentials"), "true", `${path}: credentials`);
  // Orders are retried with their Idempotency-Key: the browser must be allowed to send it.
  assert.match(allowed.headers.get("access-control-allow-headers") ?? "", /idempotency-key/i, `${path}: Idempotency-Key allowed`);
  const foreign = await preflight("https://evil.example");
  assert.equal(foreign.headers.get("access-control-allow-origin"), null, `${path}: a foreign origin is refused`);
  const simple = await fetch(`${api}${path}`, { method: "GET", headers: { origin: "https://evil.example" } });
  assert.equal(simple.headers.get("access-control-allow-origin"), null, `${path}: a foreign GET gets no CORS grant`);
}
console.log(`CORS: ${frontend} allowed, https://evil.example refused, on ${routes.length} routes`);

// 2. The local register limit is generous (deployed: 10 an hour per address).
const attempts = 15;
for (let i = 0; i < attempts; i++) {
  const response = await fetch(`${api}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      email: `limits-${crypto.randomUUID()}@example.com`,
      password: "correct horse battery staple",
      name: "Limits",
    }),
  });
  assert.equal(response.status, 202, `registration ${i + 1}: ${await response.text()}`);
}
console.log(`local limits: ${attempts} registrations from one address accepted`);

// 3. A paid order, settled by the webhook scripts/dev registered with the Stripe fake. The
// event also gets a free ticket type, which the realtime page (4) orders.
let freeEvent;
{
  const stripe = process.env.STRIPE_API_BASE ?? "http://127.0.0.1:8420";
  const stripeKey = process.env.STRIPE_SECRET_KEY ?? "sk_test_dev_only";
  const admin = { email: process.env.FIRST_ADMIN_EMAIL, password: process.env.FIRST_ADMIN_PASSWORD };
  assert.ok(admin.email && admin.password, "FIRST_ADMIN_EMAIL and FIRST_ADMIN_PASSWORD (the stack's first admin)");
  const call = async (method, path, body, token, headers = {}) => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null, text };
  };
  const expectStatus = (answer, status, what) => assert.equal(answer.status, status, `${what}: ${answer.text}`);
  const login = async (email, password) => {
    const answer = await call("POST", "/api/v1/auth/login", { email, password });
    expectStatus(answer, 200, `login ${email}`);
    return answer.body.access_token;
  };
  const newUser = async (name) => {
    const email = `${name}-${crypto.randomUUID()}@example.com`;
    const password = "correct horse battery staple";
    expectStatus(await call("POST", "/api/v1/auth/register", { email, password, name }), 202, `register ${name}`);
    return login(email, password);
  };
  const stripeCall = async (path, form) => {
    const response = await fetch(`${stripe}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${stripeKey}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form ?? {}),
    });
    return response.json();
  };
  const payWith = async (intent, card) => {
    await stripeCall(`/v1/payment_intents/${intent}`, { payment_method: card });
    return stripeCall(`/v1/payment_intents/${intent}/confirm`);
  };
  const waitForOrder = async (id, token, done, what) => {
    for (let i = 0; i < 60; i++) {
      const answer = await call("GET", `/api/v1/orders/${id}`, undefined, token);
      expectStatus(answer, 200, "reading the order");
      if (done(answer.body)) return answer.body;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    throw new Error(`the webhook never settled the order: ${what}`);
  };

  const adminToken = await login(admin.email, admin.password);
  const organizer = await newUser("organizer");
  const me = await call("GET", "/api/v1/users/me", undefined, organizer);
  expectStatus(await call("PATCH", `/api/v1/users/${me.body.id}`, { role: "organizer" }, adminToken), 200, "promote");
  const event = await call("POST", "/api/v1/events", {
    title: "Stack check social",
    category: "salsa",
    venue: { name: "Sala", address: "Calle 1", city: "Sevilla", country: "ES" },
    starts_at: "2030-05-01T20:00:00Z",
    ends_at: "2030-05-02T02:00:00Z",
    timezone: "Europe/Madrid",
  }, organizer);
  expectStatus(event, 201, "create the event");
  const type = await call("POST", `/api/v1/events/${event.body.id}/ticket-types`,
    { name: "Pass", price_minor: 2500, currency: "EUR", quantity: 10 }, organizer);
  expectStatus(type, 201, "add a ticket type");
  const guest = await call("POST", `/api/v1/events/${event.body.id}/ticket-types`,
    { name: "Guest", price_minor: 0, currency: "EUR", quantity: 10 }, organizer);
  expectStatus(guest, 201, "add a free ticket type");
  freeEvent = { event: event.body.id, type: guest.body.id };
  expectStatus(await call("POST", `/api/v1/events/${event.body.id}/publish`, {}, organizer), 200, "publish");

  const buyer = await newUser("buyer");
  const placed = await call("POST", "/api/v1/orders",
    { event_id: event.body.id, lines: [{ ticket_type_id: type.body.id, quantity: 1 }] },
    buyer, { "idempotency-key": crypto.randomUUID() });
  expectStatus(placed, 201, "place the order");
  const order = placed.body;
  assert.equal(order.payment.publishable_key, process.env.STRIPE_PUBLISHABLE_KEY ?? "pk_test_dev_only");
  await payWith(order.payment.intent_id, "pm_card_chargeCustomerFail");
  await waitForOrder(order.id, buyer, (o) => o.payment.last_error, "the decline");
  const retried = await call("POST", `/api/v1/orders/${order.id}/payment`, {}, buyer);
  expectStatus(retried, 200, "start the payment over");
  assert.notEqual(retried.body.payment.intent_id, order.payment.intent_id, "a new payment attempt");
  await payWith(retried.body.payment.intent_id, "pm_card_visa");
  const paid = await waitForOrder(order.id, buyer, (o) => o.status === "confirmed", "the payment");
  assert.equal(paid.paid_minor, 2500);
  assert.equal(paid.tickets.length, 1);
  console.log(`payments: declined, started over and paid through ${stripe}; order confirmed by the webhook`);
}

// 3b. ReDoc's pinned bundle matches its integrity hash.
{
  const page = await (await fetch(`${api}/redoc`)).text();
  const [, version] = page.match(/npm\/redoc@([0-9.]+)\/bundles\/redoc\.standalone\.js/) ?? [];
  const [, integrity] = page.match(/integrity="(sha384-[^"]+)"/) ?? [];
  assert.ok(version && integrity, `/redoc pins a version with its integrity: ${page}`);
  const dir = await mkdtemp(join(tmpdir(), "redoc-"));
  try {
    const tarball = execFileSync("npm", ["pack", `redoc@${version}`, "--silent", "--pack-destination", dir], {
      encoding: "utf8",
    }).trim().split("\n").pop();
    execFileSync("tar", ["-xzf", join(dir, tarball), "-C", dir, "package/bundles/redoc.standalone.js"]);
    const bundle = await readFile(join(dir, "package/bundles/redoc.standalone.js"));
    const actual = `sha384-${createHash("sha384").update(bundle).digest("base64")}`;
    assert.equal(integrity, actual, `redoc@${version}'s bundle hash`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`docs: /redoc loads redoc@${version} with a matching integrity hash`);
}

const pages = {
  "/upload.html": await readFile(new URL("./browser/upload.html", import.meta.url)),
  "/realtime.html": await readFile(new URL("./browser/realtime.html", import.meta.url)),
};
const server = createServer((request, response) => {
  const page = pages[new URL(request.url, frontend).pathname];
  if (request.url === "/favicon.ico") {
    response.writeHead(204).end();
  } else if (page) {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(page);
  } else {
    response.writeHead(404).end();
  }
});
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(Number(pagePort), "127.0.0.1", resolve);
});

// The machine's network is closed: no background connections, no QUIC, no first-run work.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
// Runs one page to its outcome; true if it ended "done".
async function runPage(name, query) {
  const tab = await browser.newPage();
  tab.on("console", (message) => console.log(`[${name}] ${message.text()}`));
  // ERR_ABORTED only says the page never read a body (a 202, the PUT): not a failure.
  tab.on("requestfailed", (request) =>
    request.failure()?.errorText !== "net::ERR_ABORTED" &&
    console.log(`[${name}] request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`),
  );
  await tab.goto(`http://localhost:${pagePort}/${name}.html?${new URLSearchParams({ api, ...query })}`);
  const outcome = tab.locator("#outcome:not([data-state=running])");
  await outcome.waitFor({ timeout: 240_000 });
  const state = await outcome.getAttribute("data-state");
  console.log(`browser ${name} on ${frontend}: ${state}: ${await outcome.textContent()}`);
  await tab.close();
  return state === "done";
}

let failed = true;
try {
  const uploaded = await runPage("upload", {});
  const pushed = await runPage("realtime", freeEvent);
  failed = !(uploaded && pushed);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);

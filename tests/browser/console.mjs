// Drives the Mailroom console in headless Chromium (Debian's package) the way an operator uses it: list
// messages, filter, open one and read its attempts, resend a failed delivery and see the new attempt, add
// and remove a suppression, add a route, and check that a foreign Host, a missing token and a form from
// elsewhere are refused. Run by cli/tests/console.rs against `mailroom dev` and against a stack in moto;
// it reads what to expect from the environment:
//
//   MAILROOM_CONSOLE_URL   the URL the console printed, with its ?token=
//   MAILROOM_SCENARIO      JSON: { rejected_subject, rejected_sender, subjects, tag, tagged_subject,
//                                  smtp (dev only: "host:port" to send a new message to), recipient,
//                                  erase (dev only: also erase the rejected message's sender) }
//   MAILROOM_SCREENSHOTS   a folder: the overview and a message page are saved there (optional)
//
// Exits 0 when every step passed; otherwise prints the step that failed and exits 1.

import assert from "node:assert/strict";
import http from "node:http";
import { chromium } from "playwright-core";
import nodemailer from "nodemailer";

const consoleUrl = new URL(process.env.MAILROOM_CONSOLE_URL ?? "");
const token = consoleUrl.searchParams.get("token");
const base = `${consoleUrl.protocol}//${consoleUrl.host}`;
const scenario = JSON.parse(process.env.MAILROOM_SCENARIO ?? "{}");
const shots = process.env.MAILROOM_SCREENSHOTS;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // As root in CI; and no background traffic: the machine has no network beyond loopback.
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

let failed = false;
async function step(name, body) {
  if (failed) return;
  const started = Date.now();
  try {
    await body();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed = true;
    const notice = await page.locator(".notice").allTextContents().catch(() => []);
    console.log(`FAIL ${name}\n${error.stack ?? error}\nat ${page.url()}; notice: ${notice.join(" | ")}`);
  }
}

const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.on("dialog", (dialog) => dialog.accept());
const rows = () => page.locator("table#messages tbody tr");

await step("the token URL lets the browser in and leaves the address bar", async () => {
  const answer = await page.goto(consoleUrl.href);
  assert.equal(answer.status(), 200);
  assert.equal(new URL(page.url()).searchParams.get("token"), null);
  assert.match(await page.title(), /Messages/);
});

await step("messages are listed newest first", async () => {
  for (const subject of scenario.subjects) {
    await page.locator("table#messages", { hasText: subject }).waitFor();
  }
  const times = await page.locator("table#messages tbody tr time").evaluateAll((nodes) =>
    nodes.map((n) => n.getAttribute("datetime"))
  );
  assert.ok(times.length >= scenario.subjects.length, `${times.length} rows`);
  assert.deepEqual([...times].sort().reverse(), times);
});

await step("filtering by subject words narrows the list", async () => {
  const words = scenario.rejected_subject.split(" ").slice(-2).join(" ").toLowerCase();
  await page.fill("#filters input[name=subject]", words);
  await page.click("#filters button[type=submit]");
  await page.waitForURL(/subject=/);
  assert.equal(await rows().count(), 1);
  await assert.doesNotReject(rows().first().getByText(scenario.rejected_subject).waitFor());
});

await step("filtering by status and by tag", async () => {
  await page.goto(`${base}/messages?status=rejected`);
  assert.equal(await rows().count(), 1);
  await page.goto(`${base}/messages?tag=${encodeURIComponent(scenario.tag)}`);
  const subjects = await rows().locator("td.subject").allTextContents();
  assert.deepEqual(subjects, [scenario.tagged_subject]);
  await page.goto(`${base}/messages?recipient=${encodeURIComponent(scenario.recipient)}`);
  assert.ok((await rows().count()) >= 1);
  for (const to of await rows().locator("td:nth-child(4)").allTextContents()) {
    assert.equal(to.toLowerCase(), scenario.recipient.toLowerCase());
  }
});

await step("a message shows its envelope, payload and the rejected attempt", async () => {
  await page.goto(`${base}/messages?subject=${encodeURIComponent(scenario.rejected_subject)}`);
  await rows().first().locator("td.subject a").click();
  await page.waitForURL(/\/messages\/[^/?]+/);
  await page.locator("#envelope").getByText(scenario.rejected_sender).first().waitFor();
  const attempts = page.locator("table.attempts tbody tr");
  assert.equal(await attempts.count(), 1);
  assert.match(await attempts.first().textContent(), /400/);
  assert.match(await page.locator("#payload").textContent(), /"envelope"/);
});

await step("the HTML body is sandboxed and loads nothing remote until asked", async () => {
  // Chromium reports a load the frame's policy stops as a request that failed with "csp"; one it lets
  // through fails later on this machine's closed network (name not resolved), or succeeds.
  const remote = [];
  const watch = (request) => {
    if (!request.url().startsWith(base)) remote.push(request);
  };
  page.on("request", watch);
  await page.reload();
  assert.equal(await page.locator("iframe.body").getAttribute("sandbox"), "");
  const body = page.frameLocator("iframe.body");
  await body.locator("b", { hasText: scenario.rejected_subject }).waitFor();
  await page.waitForTimeout(300);
  const blocked = (request) => /csp/i.test(request.failure()?.errorText ?? "");
  assert.ok(remote.every(blocked), remote.map((r) => `${r.url()} ${r.failure()?.errorText}`).join(" "));
  const before = remote.length;
  await page.click("#remote");
  await body.locator("b", { hasText: scenario.rejected_subject }).waitFor();
  for (let i = 0; i < 30 && !remote.slice(before).some((r) => r.failure() || r.response); i++) {
    await page.waitForTimeout(100);
  }
  page.off("request", watch);
  const asked = remote.slice(before).filter((r) => r.url().startsWith("https://tracker.example/"));
  assert.ok(asked.length > 0, "the remote image was not asked for");
  assert.ok(asked.every((r) => !blocked(r)), asked.map((r) => r.failure()?.errorText).join(" "));
});

await step("resending the failed delivery adds an attempt that is delivered", async () => {
  const option = page.locator("#actions select[name=to] option[value^='target:']");
  await page.selectOption("#actions select[name=to]", await option.first().getAttribute("value"));
  await page.locator("#actions button", { hasText: "Resend" }).click();
  await page.locator(".notice", { hasText: "delivered" }).waitFor();
  const attempts = page.locator("table.attempts tbody tr");
  assert.equal(await attempts.count(), 2);
  assert.match(await attempts.nth(1).textContent(), /200/);
  assert.match(await page.locator("section.delivery h3").first().textContent(), /delivered/);
  if (shots) await page.screenshot({ path: `${shots}/console-message.png`, fullPage: false });
});

if (scenario.smtp) {
  await step("a message that arrives while the list is open appears without a reload", async () => {
    await page.goto(`${base}/messages`);
    const before = await rows().count();
    const [host, port] = scenario.smtp.split(":");
    const transport = nodemailer.createTransport({ host, port: Number(port), secure: false, ignoreTLS: true });
    const subject = `Arrived while watching ${Date.now()}`;
    await transport.sendMail({
      from: "watcher@client.test",
      to: scenario.recipient,
      subject,
      text: "New rows appear by themselves.",
    });
    await page.locator("table#messages tr.new", { hasText: subject }).waitFor({ timeout: 20000 });
    assert.equal(await rows().count(), before + 1);
  });
}

await step("a suppression is added and removed", async () => {
  const address = `bounced-${Date.now()}@example.net`;
  await page.goto(`${base}/suppressions`);
  await page.fill("form[action='/suppressions/add'] input[name=address]", address);
  await page.fill("form[action='/suppressions/add'] input[name=note]", "asked by phone");
  await page.click("form[action='/suppressions/add'] button");
  await page.locator(".notice", { hasText: `Suppressed ${address}` }).waitFor();
  const row = page.locator(`#suppressions tr[data-address='${address}']`);
  assert.match(await row.textContent(), /manual.*asked by phone/);
  await row.locator("button", { hasText: "Remove" }).click();
  await page.locator(".notice", { hasText: `Removed ${address}` }).waitFor();
  assert.equal(await page.locator(`#suppressions tr[data-address='${address}']`).count(), 0);
});

await step("a route is added, its secret shown once", async () => {
  await page.goto(`${base}/routes`);
  await page.click("#add-route");
  await page.fill("input[name=pattern]", "orders@example.test");
  await page.fill("input[name=webhook]", "https://orders.example.test/mail");
  await page.selectOption("select[name=format]", "multipart");
  await page.click("form[action='/routes/save'] button[type=submit]");
  const secret = (await page.locator("#secret").textContent()).trim();
  assert.match(secret, /^whsec_/);
  await page.goto(`${base}/routes`);
  const row = page.locator("#routes tr[data-pattern='orders@example.test']");
  assert.match(await row.textContent(), /orders\.example\.test.*multipart.*1 secret.*enabled/s);
  assert.doesNotMatch(await page.content(), new RegExp(secret));
  await row.locator("button", { hasText: "Rotate secret" }).click();
  const rotated = (await page.locator("#secret").textContent()).trim();
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret);
  await page.goto(`${base}/routes`);
  assert.match(await row.textContent(), /2 secrets \(rotating\)/);
  await row.locator("button", { hasText: "Disable" }).click();
  await page.locator(".notice", { hasText: "Disabled route orders@example.test" }).waitFor();
  assert.match(await page.locator("#routes tr[data-pattern='orders@example.test']").textContent(), /disabled/);
});

await step("the overview draws its charts", async () => {
  for (let i = 0; i < 40; i++) {
    await page.goto(`${base}/overview`);
    if ((await page.locator("#per-day svg rect").count()) > 0) break;
    await page.waitForTimeout(500);
  }
  assert.ok((await page.locator("#per-day svg rect").count()) > 0);
  assert.match(await page.locator("#card-records").textContent(), /\d/);
  if (shots) await page.screenshot({ path: `${shots}/console-overview.png`, fullPage: true });
});

/** A GET with a chosen Host header, which fetch() does not allow. */
function getWithHost(host, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: consoleUrl.hostname, port: consoleUrl.port, path, headers: { Host: host, ...headers } },
      (answer) => {
        let body = "";
        answer.on("data", (chunk) => (body += chunk));
        answer.on("end", () => resolve({ status: answer.statusCode, body }));
      }
    );
    request.on("error", reject);
    request.end();
  });
}

await step("a foreign Host is refused, even with the token", async () => {
  const auth = { Authorization: `Bearer ${token}` };
  for (const host of ["rebind.attacker.example", `rebind.attacker.example:${consoleUrl.port}`]) {
    const answer = await getWithHost(host, "/api/messages", auth);
    assert.equal(answer.status, 421);
    assert.doesNotMatch(answer.body, new RegExp(scenario.rejected_subject));
  }
  assert.equal((await getWithHost(consoleUrl.host, "/api/messages", auth)).status, 200);
});

await step("without the token nothing is shown", async () => {
  const stranger = await browser.newContext();
  const other = await stranger.newPage();
  for (const path of ["/", "/messages", "/overview", "/routes", "/suppressions", "/api/messages"]) {
    const answer = await other.goto(`${base}${path}`);
    assert.equal(answer.status(), 401, path);
    assert.doesNotMatch(await other.content(), new RegExp(scenario.rejected_subject));
  }
  const wrong = await other.goto(`${base}/messages?token=${"0".repeat(token.length)}`);
  assert.equal(wrong.status(), 401);
  await stranger.close();
});

await step("a form posted from elsewhere is refused (CSRF)", async () => {
  const port = consoleUrl.port;
  const address = `csrf-${Date.now()}@example.net`;
  const cookie = `mailroom_console_${port}=${token}`;
  const forged = await fetch(`${base}/suppressions/add`, {
    method: "POST",
    headers: { Cookie: cookie, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ address }),
    redirect: "manual",
  });
  assert.equal(forged.status, 403);
  const fromElsewhere = await fetch(`${base}/suppressions/add`, {
    method: "POST",
    headers: {
      Cookie: cookie,
      Origin: "https://attacker.example",
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ address, csrf: "0".repeat(64) }),
    redirect: "manual",
  });
  assert.equal(fromElsewhere.status, 403);
  await page.goto(`${base}/suppressions`);
  assert.equal(await page.locator(`#suppressions tr[data-address='${address}']`).count(), 0);
});

await step("reading works with JavaScript off", async () => {
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const reader = await plain.newPage();
  const answer = await reader.goto(consoleUrl.href);
  assert.equal(answer.status(), 200);
  await reader.locator("table#messages", { hasText: scenario.rejected_subject }).waitFor();
  await reader.locator("table#messages td.subject a").first().click();
  await reader.locator("#envelope").waitFor();
  await plain.close();
});

await step("a data export holds the sender's records", async () => {
  const answer = await fetch(
    `${base}/data/export?address=${encodeURIComponent(scenario.rejected_sender)}`,
    { headers: { Authorization: `Bearer ${token}` } }
  );
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get("content-disposition"), /attachment/);
  const held = await answer.json();
  assert.equal(held.address, scenario.rejected_sender);
  assert.ok(held.deliveries.some((d) => d.subject === scenario.rejected_subject));
});

if (scenario.erase) {
  await step("erasing the sender's data asks first, then leaves nothing of it", async () => {
    await page.goto(`${base}/messages?sender=${encodeURIComponent(scenario.rejected_sender)}`);
    await rows().first().locator("td.subject a").click();
    await page.click("#erase-sender");
    await page.locator("main", { hasText: "record(s)" }).waitFor();
    await page.click("form[action='/data/erase'] button");
    // Not confirmed: the same page again, nothing erased.
    await page.locator("input[name=confirm]").waitFor();
    await page.fill("input[name=confirm]", scenario.rejected_sender);
    await page.click("form[action='/data/erase'] button");
    await page.locator(".notice", { hasText: "Erased:" }).waitFor();
    await page.goto(`${base}/messages?sender=${encodeURIComponent(scenario.rejected_sender)}`);
    assert.equal(await rows().count(), 0);
  });
}

await browser.close();
process.exit(failed ? 1 : 0);

// Drives Debian's chromium through a second-factor step-up: a route with `mfa = true` sends a
// password-only session to enrol a TOTP factor (QR code, key, password and first code), then
// back; the next sign-in asks for a code. Codes are computed here (RFC 6238, node's crypto).
// Called by tests/it/browser.rs with GATEWAY and PASSWORD; one line per step.
import { createHmac } from "node:crypto";
import { chromium } from "playwright-core";

const gateway = process.env.GATEWAY;
const password = process.env.PASSWORD;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function check(condition, step, detail) {
  if (!condition) {
    throw new Error(`${step}: ${detail}`);
  }
  console.log(`ok: ${step}`);
}

function unbase32(text) {
  let bits = 0, value = 0;
  const out = [];
  for (const c of text) {
    value = (value << 5) | "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp(secret, offsetSteps) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offsetSteps));
  const mac = createHmac("sha1", secret).update(counter).digest();
  const at = mac[19] & 0x0f;
  const bin = mac.readUInt32BE(at) & 0x7fffffff;
  return String(bin % 1000000).padStart(6, "0");
}

const browser = await chromium.launch({ executablePath, args, headless: true });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const wanted = `${gateway}/secure/report?q=1`;

  await page.goto(wanted);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "the admin page sends to sign-in", page.url());
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
  check(page.url().startsWith(`${gateway}/auth/second-factor?rd=`), "a password alone goes on to the second factor", page.url());
  check(await page.getByRole("img", { name: "QR code for the authenticator app" }).isVisible(), "a QR code is shown", await page.content());

  const secret = unbase32((await page.locator("#totp-key").textContent()).trim());
  await page.getByLabel("Your password").fill(password);
  await page.getByLabel("First code from the app").fill("000000" === totp(secret, 0) ? "111111" : "000000");
  await page.getByRole("button", { name: "Turn on the second factor" }).click();
  await page.waitForLoadState();
  check((await page.textContent("body")).includes("The one-time code was refused"), "a wrong first code is refused", await page.textContent("body"));

  await page.getByLabel("Your password").fill(password);
  await page.getByLabel("First code from the app").fill(totp(secret, 0));
  await page.getByRole("button", { name: "Turn on the second factor" }).click();
  await page.waitForLoadState();
  check(await page.getByRole("heading", { name: "Recovery codes" }).isVisible(), "recovery codes are shown once", await page.content());
  const codes = await page.locator("ul.recovery code").allTextContents();
  check(codes.length === 10 && codes.every((c) => /^[a-z2-7]{5}-[a-z2-7]{5}$/.test(c)), "ten recovery codes", codes.join(" "));
  await page.getByRole("link", { name: "Continue" }).click();
  await page.waitForLoadState();
  check(page.url() === wanted, "enrolled, back on the page asked for", page.url());
  const headers = JSON.parse(await page.textContent("body")).headers;
  check(headers["x-auth-user"] === "alice", "upstream sees x-auth-user", JSON.stringify(headers));

  // A new browser: the sign-in now asks for the code, and the page opens straight away.
  const fresh = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  await fresh.goto(wanted);
  await fresh.getByLabel("Username").fill("alice");
  await fresh.getByLabel("Password", { exact: true }).fill(password);
  await fresh.getByRole("button", { name: "Sign in" }).click();
  await fresh.waitForLoadState();
  check((await fresh.textContent("body")).includes("one-time code"), "the password alone is no longer enough", await fresh.textContent("body"));
  await fresh.getByLabel("Password", { exact: true }).fill(password);
  await fresh.getByLabel("One-time code").fill(totp(secret, 1));
  await fresh.getByRole("button", { name: "Sign in" }).click();
  await fresh.waitForLoadState();
  check(fresh.url() === wanted, "password and code open the page directly", fresh.url());
} finally {
  await browser.close();
}

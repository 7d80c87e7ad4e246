// Drives Debian's chromium through a sign-in at a real OpenID provider (tests/oidc/) and
// back. Called by tests/it/oidc.rs with GATEWAY=https://127.0.0.1:PORT; prints one line per
// step and exits non-zero at the first step that does not hold.
//
// The return from the provider is a cross-site navigation: the gateway's SameSite=Strict
// cookies would be withheld on a redirect from the callback, so arriving signed in on the
// page asked for shows the callback's same-origin continue step works in a real browser.
import { chromium } from "playwright-core";

const gateway = process.env.GATEWAY;
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

const browser = await chromium.launch({ executablePath, args, headless: true });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const wanted = `${gateway}/api/reports?year=2026`;

  await page.goto(wanted);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "protected page sends to sign-in", page.url());
  await page.getByRole("link", { name: "Corporate login" }).click();
  await page.waitForLoadState();
  check(!page.url().startsWith(gateway), "the button leads to the provider", page.url());

  // oidc-provider's development login form, then its consent form.
  await page.locator("input[name=login]").fill("alice");
  await page.locator("input[name=password]").fill("any password");
  await page.locator("button[type=submit]").click();
  await page.waitForLoadState();
  await page.locator("button[type=submit]").click();

  await page.waitForURL(wanted, { timeout: 20000 });
  check(page.url() === wanted, "signed in at the provider, back on the page asked for", page.url());
  const headers = JSON.parse(await page.textContent("body")).headers;
  check(headers["x-auth-user"] === "corp:alice", "upstream sees the provider's person", JSON.stringify(headers));

  await page.goto(`${gateway}/api/other`);
  check(page.url() === `${gateway}/api/other`, "next navigation needs no sign-in", page.url());
} finally {
  await browser.close();
}

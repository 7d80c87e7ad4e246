// Drives Debian's chromium through the sign-in flow against a running gateway.
// Called by tests/it/browser.rs with GATEWAY=https://127.0.0.1:PORT and the user's password;
// prints one line per step and exits non-zero at the first step that does not hold.
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

async function echoed(page) {
  const text = await page.textContent("body");
  return JSON.parse(text).headers;
}

async function signIn(page, username, secret) {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
}

const browser = await chromium.launch({ executablePath, args, headless: true });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const wanted = `${gateway}/api/reports?year=2026`;

  await page.goto(wanted);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "protected page sends to sign-in", page.url());
  check(await page.getByRole("heading").isVisible(), "sign-in page has a heading", await page.content());

  await signIn(page, "alice", "not the password");
  check(page.url().startsWith(`${gateway}/auth/sign-in`), "wrong password stays on sign-in", page.url());
  check((await page.textContent("body")).includes("Wrong username or password."), "wrong password says so", await page.textContent("body"));

  await signIn(page, "alice", password);
  check(page.url() === wanted, "signed in, back on the page asked for", page.url());
  const headers = await echoed(page);
  check(headers["x-auth-user"] === "alice", "upstream sees x-auth-user", JSON.stringify(headers));
  check(!JSON.stringify(headers).includes("portcullis-access"), "upstream sees no token cookie", JSON.stringify(headers));

  await page.goto(`${gateway}/api/other`);
  check(page.url() === `${gateway}/api/other`, "next navigation needs no sign-in", page.url());

  await page.goto(`${gateway}/auth/sign-out`);
  check((await page.textContent("body")).includes("Signed in as alice"), "sign-out page asks first", await page.textContent("body"));
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForLoadState();
  check((await page.textContent("body")).includes("You have been signed out."), "signed out", await page.textContent("body"));
  await page.goto(wanted);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "after sign-out the page needs sign-in again", page.url());

  // Signed in on two devices; the second ends the first from its sessions page.
  await signIn(page, "alice", password);
  check(page.url() === wanted, "signed in again", page.url());
  const other = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  await other.goto(`${gateway}/auth/sessions`);
  check(other.url().startsWith(`${gateway}/auth/sign-in?rd=`), "sessions page needs sign-in", other.url());
  await signIn(other, "alice", password);
  check(other.url() === `${gateway}/auth/sessions`, "back on the sessions page", other.url());
  const listed = await other.textContent("body");
  check(listed.includes("2 live session(s)") && listed.includes("This device") && listed.includes("Another device"), "both sessions listed", listed);
  await other.locator("li", { hasText: "Another device" }).getByRole("button", { name: "End this session" }).click();
  await other.waitForLoadState();
  check((await other.textContent("body")).includes("1 live session(s)"), "one session left", await other.textContent("body"));
  await page.goto(`${gateway}/api/after`);
  check(page.url().startsWith(`${gateway}/auth/sign-in?rd=`), "the ended session must sign in again", page.url());
  await other.goto(`${gateway}/api/still`);
  check(other.url() === `${gateway}/api/still`, "the other session goes on", other.url());

  // The password page, reached from the sessions page: this session stays, the old
  // password stops working.
  const changed = "a different passphrase 2026";
  await other.goto(`${gateway}/auth/sessions`);
  await other.getByRole("link", { name: "Change password" }).click();
  await other.waitForLoadState();
  check(other.url() === `${gateway}/auth/change-password`, "sessions page links the password page", other.url());
  await other.getByLabel("Current password").fill(password);
  await other.getByLabel("New password", { exact: true }).fill(changed);
  await other.getByLabel("New password again").fill(changed);
  await other.getByRole("button", { name: "Change password" }).click();
  await other.waitForLoadState();
  check((await other.textContent("body")).includes("Your password was changed."), "password changed", await other.textContent("body"));
  await other.goto(`${gateway}/api/after-change`);
  check(other.url() === `${gateway}/api/after-change`, "still signed in after the change", other.url());
  await page.goto(wanted);
  await signIn(page, "alice", password);
  check((await page.textContent("body")).includes("Wrong username or password."), "the old password is refused", await page.textContent("body"));
  await signIn(page, "alice", changed);
  check(page.url() === wanted, "the new password signs in", page.url());
} finally {
  await browser.close();
}

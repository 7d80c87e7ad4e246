// The screenshots in docs/: the sign-in page, and the sessions page with two devices.
// Run by docs/screenshots.sh against a gateway it started.
import { chromium } from "playwright-core";

const { GATEWAY: gateway, PASSWORD: password, OUT: out } = process.env;
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args });
const viewport = { width: 900, height: 640 };

async function signedIn(userAgent) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, userAgent });
  const page = await context.newPage();
  await page.goto(`${gateway}/auth/sessions`);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(password);
  return page;
}

try {
  const laptop = await signedIn("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36");
  await laptop.screenshot({ path: `${out}/sign-in.png` });
  await laptop.getByRole("button", { name: "Sign in" }).click();
  const phone = await signedIn("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148 Safari/604.1");
  await phone.getByRole("button", { name: "Sign in" }).click();
  await laptop.reload();
  await laptop.screenshot({ path: `${out}/sessions.png`, fullPage: true });
  console.log(`wrote ${out}/sign-in.png and ${out}/sessions.png`);
} finally {
  await browser.close();
}

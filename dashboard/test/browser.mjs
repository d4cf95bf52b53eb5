// Drives the dashboard in Debian's Chromium for a Rust integration test, which talks to this script one line at a
// time, so that the test itself needs no browser library:
//
//   node dashboard/test/browser.mjs --url <URL of /dashboard/> --token <bearer token> [--principal <name>]
//        --screenshot <png path>
//
//   stdout: READY                        the page is signed in and its watch is live
//   stdin:  <copy id>                    the copy to follow (the test starts it after READY)
//   stdout: DONE <data-history of row>   the copy's row reached SUCCEEDED with no page reload
//   stdout: FAIL <reason>                anything else; the console of the page goes to stderr; exit code 1
//
// stdout carries only those lines. The browser is Debian's (/usr/bin/chromium): no test tool may download its own
// here. Everything is bounded: each wait has its own limit, and the whole run gives up after 120 s.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const CHROMIUM = "/usr/bin/chromium";
// The background-networking flags keep Chromium from calling Google's hosts, which a closed network refuses.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const LIVE_WITHIN_MS = 30_000;
const SUCCEEDED_WITHIN_MS = 60_000;
const OVERALL_MS = 120_000;
// What is left of the overall limit for the screenshot and closing the browser after a failure.
const CLEANUP_MS = 15_000;

const console_ = [];
let screenshotPath;
let browser;
let page;
let finished = false;

main();

async function main() {
  // The last resort: whatever hangs (even the clean-up), the process ends, and Playwright kills the browser it
  // launched when the process exits.
  setTimeout(() => {
    emit("FAIL overall timeout of 120 s (clean-up hung)");
    process.exit(1);
  }, OVERALL_MS).unref();
  const overall = setTimeout(() => fail(`overall timeout of ${(OVERALL_MS - CLEANUP_MS) / 1000} s`), OVERALL_MS - CLEANUP_MS);

  let options;
  try {
    options = parseArgs({
      options: {
        url: { type: "string" },
        token: { type: "string" },
        principal: { type: "string" },
        screenshot: { type: "string" },
      },
      strict: true,
    }).values;
    for (const name of ["url", "token", "screenshot"]) {
      if (options[name] === undefined) throw new Error(`--${name} is required`);
    }
    screenshotPath = options.screenshot;
  } catch (error) {
    return fail(`bad arguments: ${error.message}`);
  }

  try {
    await run(options);
  } catch (error) {
    return fail(error instanceof Error ? error.message.split("\n")[0] : String(error));
  } finally {
    clearTimeout(overall);
  }
}

async function run({ url, token, principal }) {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  // launch() gives the browser a fresh temporary profile of its own; the test servers use a test CA.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("console", (message) => console_.push(`[${message.type()}] ${message.text()}`));
  page.on("pageerror", (error) => console_.push(`[pageerror] ${error.message}`));
  page.on("requestfailed", (request) =>
    console_.push(`[requestfailed] ${request.method()} ${request.url()}: ${request.failure()?.errorText}`),
  );

  await page.goto(url, { waitUntil: "load", timeout: LIVE_WITHIN_MS });
  // From here on the page must update itself: any navigation of the main frame (a reload) is a failure.
  let navigations = 0;
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });

  await page.fill("#token", token);
  if (principal !== undefined) await page.fill("#principal", principal);
  await page.click("#connect");

  // Waiting for live or error, not live alone, so that a refusal fails at once with the server's message.
  const status = await page.waitForSelector('#status[data-status="live"], #status[data-status="error"]', {
    timeout: LIVE_WITHIN_MS,
  });
  if ((await status.getAttribute("data-status")) !== "live") {
    throw new Error(`the watch did not go live: ${await status.textContent()}`);
  }
  emit("READY");

  const copyId = await readLine();
  if (!/^[A-Za-z0-9_.:-]+$/.test(copyId)) throw new Error(`not a copy id: ${JSON.stringify(copyId)}`);
  const row = `tr[data-copy-id="${copyId}"]`;
  const ended = await page.waitForSelector(
    `${row}[data-state="SUCCEEDED"], ${row}[data-state="FAILED"], ${row}[data-state="CANCELLED"]`,
    { timeout: SUCCEEDED_WITHIN_MS },
  );
  const state = await ended.getAttribute("data-state");
  const history = (await ended.getAttribute("data-history")) ?? "";
  if (state !== "SUCCEEDED") throw new Error(`copy ${copyId} ended ${state} (history ${history})`);
  if (navigations > 0) throw new Error(`the page navigated ${navigations} time(s) after it loaded`);

  await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 10_000 });
  await closeBrowser();
  emit(`DONE ${history}`);
  finished = true;
  process.exit(0);
}

async function fail(reason) {
  if (finished) return;
  finished = true;
  emit(`FAIL ${reason.replace(/\s+/g, " ")}`);
  if (page !== undefined && screenshotPath !== undefined) {
    await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 5_000 }).catch((error) => {
      process.stderr.write(`browser.mjs: no screenshot: ${error.message.split("\n")[0]}\n`);
    });
  }
  process.stderr.write(`browser.mjs: the page's console (${console_.length} messages):\n`);
  for (const line of console_) process.stderr.write(`  ${line}\n`);
  await closeBrowser();
  process.exit(1);
}

async function closeBrowser() {
  if (browser === undefined) return;
  const closing = browser;
  browser = undefined;
  await Promise.race([closing.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5_000))]);
}

function emit(line) {
  process.stdout.write(`${line}\n`);
}

/** The next line of stdin, trimmed; fails if stdin closes first. */
function readLine() {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", (line) => {
      // Settled before close(), which emits "close" at once.
      resolve(line.trim());
      lines.close();
    });
    lines.once("close", () => reject(new Error("stdin closed before a copy id came")));
  });
}

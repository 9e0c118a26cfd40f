// temporal-web-screenshot.js URL OUT.png CHROMIUM — driven by
// temporal-web-screenshot.sh: opens a workflow's history page in Temporal
// Web, expands the newest signal (a conversation's customer messages
// arrive as signals), checks that its input reads in clear (decoded by
// Parley's codec), and takes the screenshot. Needs playwright-core.
//
// Chromium's own --screenshot cannot do it: Temporal Web keeps polling a
// running workflow, so --virtual-time-budget never ends and without it the
// shot is taken before the page has rendered.
const { chromium } = require('playwright-core');

const [url, out, executablePath] = process.argv.slice(2);
if (!url || !out || !executablePath) {
  console.error('usage: node temporal-web-screenshot.js URL OUT.png CHROMIUM');
  process.exit(2);
}

(async () => {
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 2150 } });
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    const signal = page.locator('tr', { hasText: 'Workflow Execution Signaled' }).first();
    await signal.waitFor({ timeout: 30000 });
    await signal.click();
    const input = page.locator('text=Input').last();
    await input.waitFor({ timeout: 15000 });
    await page.waitForTimeout(2000); // the codec's answers, then rendering
    const text = await page.evaluate(() => document.body.innerText);
    if (text.includes('binary/encrypted') || !text.includes('"text"')) {
      console.error('temporal-web-screenshot: the signal does not read in clear: is Temporal Web started with Parley\'s --ui-codec-endpoint?');
      await page.screenshot({ path: out });
      process.exitCode = 1;
      return;
    }
    await page.screenshot({ path: out });
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

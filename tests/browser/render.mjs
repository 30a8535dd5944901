// Opens imgport's HTML reports in headless Chromium (Debian's package, driven by
// playwright-core), saves a full-page PNG of each and prints, as one JSON array on stdout,
// what a reader of each page sees: the disk pictures, the partitions drawn in them, the
// findings, and whatever sticks out past the window. tests/it/report_render.rs runs it and
// judges the facts; this script only measures.
//
// usage: node render.mjs [--width PX] PAGE.html SHOT.png [PAGE.html SHOT.png ...]
// The browser is $IMGPORT_CHROMIUM, else /usr/bin/chromium (scripts/install-deps.sh).

import { chromium } from 'playwright-core';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
let width = 1280;
if (args[0] === '--width') {
  width = Number(args[1]);
  args.splice(0, 2);
}
if (!(width > 0) || args.length === 0 || args.length % 2 !== 0) {
  console.error('usage: node render.mjs [--width PX] PAGE.html SHOT.png [PAGE.html SHOT.png ...]');
  process.exit(2);
}

// The machine has no network: these flags keep Chromium from waiting on connections it would
// otherwise open at start (updates, sync, field trials). `headless: true` adds --headless,
// and Playwright gives it a fresh, empty profile directory of its own.
const browser = await chromium.launch({
  executablePath: process.env.IMGPORT_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: 120_000,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

// Runs inside the page: measures it. Boxes are in page coordinates (CSS pixels).
function measure() {
  const viewport = document.documentElement.clientWidth;
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height };
  };
  // Shown: a box with an area, not hidden by CSS (display, visibility, opacity), and within
  // the window's width, where a reader sees it without scrolling sideways.
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return (
      r.width > 0 &&
      r.height > 0 &&
      el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) &&
      r.left >= -0.5 &&
      r.right <= viewport + 0.5
    );
  };
  const within = (inner, outer) =>
    inner.x >= outer.x - 0.5 &&
    inner.y >= outer.y - 0.5 &&
    inner.x + inner.width <= outer.x + outer.width + 0.5 &&
    inner.y + inner.height <= outer.y + outer.height + 0.5;
  const text = (el) => (el.textContent || '').replace(/\s+/g, ' ').trim();
  const describe = (el) => ({ tag: el.tagName.toLowerCase(), text: text(el).slice(0, 80), box: box(el) });

  const pictures = [...document.querySelectorAll('svg[role="img"]')].map((svg) => {
    const own = box(svg);
    const section = svg.closest('.disk');
    const heading = section && section.querySelector('h3');
    return {
      label: svg.getAttribute('aria-label'),
      disk: heading ? text(heading) : null,
      box: own,
      visible: visible(svg),
      partitions: [...svg.querySelectorAll('[data-partition]')].map((part) => ({
        index: Number(part.getAttribute('data-partition')),
        box: box(part),
        visible: visible(part),
        inside: within(box(part), own),
      })),
    };
  });

  const findings = [...document.querySelectorAll('li')].map((li) => ({
    text: text(li),
    box: box(li),
    visible: visible(li),
  }));

  // What sticks out: an element whose box passes the window's right edge, and a block whose
  // text runs past its own box (overflow left visible), which a table cell hides as a wider
  // table. Inside a box that scrolls (a <pre>), nothing counts: the reader scrolls it.
  const sticksOut = [];
  const spills = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.parentElement && el.parentElement.closest('pre')) continue;
    const r = el.getBoundingClientRect();
    if (r.right > viewport + 0.5) sticksOut.push(describe(el));
    const style = getComputedStyle(el);
    if (
      style.display !== 'inline' &&
      style.overflowX === 'visible' &&
      el.clientWidth > 0 &&
      el.scrollWidth > el.clientWidth + 1
    ) {
      spills.push(describe(el));
    }
  }

  return {
    title: document.title,
    viewport,
    document_width: document.documentElement.scrollWidth,
    overflows: document.documentElement.scrollWidth > viewport || sticksOut.length > 0 || spills.length > 0,
    sticks_out: sticksOut.slice(0, 20),
    spills: spills.slice(0, 20),
    pictures,
    findings,
  };
}

const out = [];
try {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  // A report is self-contained: any request besides the page itself is a defect, reported.
  for (let i = 0; i < args.length; i += 2) {
    const [page_path, shot] = [resolve(args[i]), resolve(args[i + 1])];
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => {
      if (r.url() !== pathToFileURL(page_path).href) requests.push(r.url());
    });
    await page.goto(pathToFileURL(page_path).href, { waitUntil: 'load', timeout: 60_000 });
    await page.screenshot({ path: shot, fullPage: true });
    out.push({ page: page_path, png: shot, width, requests, ...(await page.evaluate(measure)) });
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out, null, 1) + '\n');

/**
 * The web page in a real browser (Debian's Chromium through playwright-core) against a real
 * server with the real checker and sandbox: uploads and pasted code, verdicts, outputs, errors,
 * the page keeping to its own CSP, and untrusted strings staying text.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { readConfig } from '../dist/server/config.js';
import { startServer, type RunningServer } from '../dist/server/serve.js';

const CHROMIUM = '/usr/bin/chromium';
const RESULT_TIMEOUT = 45_000;

let server: RunningServer | undefined;
let browser: Browser | undefined;
const logLines: { event?: string; [key: string]: unknown }[] = [];

/** A page with everything that would show a script ran or the page broke its own CSP. */
interface Watched {
  readonly page: Page;
  readonly context: BrowserContext;
  readonly dialogs: string[];
  readonly pageErrors: string[];
  readonly cspConsole: string[];
  readonly requests: string[];
}

/** .ci/run installs Debian's Chromium; elsewhere the browser tests are skipped without it. */
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

async function openPage(): Promise<Watched> {
  assert.ok(browser && server);
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const watched: Watched = { page, context, dialogs: [], pageErrors: [], cspConsole: [], requests: [] };
  // Injected by the browser driver, so it runs whatever the page's CSP says.
  await page.addInitScript(
    "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
  );
  page.on('dialog', (dialog) => {
    watched.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => watched.pageErrors.push(error.message));
  page.on('console', (message) => {
    if (/content security policy/i.test(message.text())) watched.cspConsole.push(message.text());
  });
  page.on('request', (request) => watched.requests.push(new URL(request.url()).pathname));
  const response = await page.goto(server.url);
  assert.equal(response?.status(), 200);
  await page.locator('#policy option').first().waitFor({ state: 'attached' });
  return watched;
}

/** Clicks Check or Run and waits until the page shows the answer. */
async function submit(page: Page, button: 'Check' | 'Run'): Promise<void> {
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.locator('#results[data-state="done"], #results[data-state="error"]').waitFor({ timeout: RESULT_TIMEOUT });
  assert.equal(await page.getByRole('button', { name: 'Run', exact: true }).isDisabled(), false, 'buttons are enabled again');
}

async function upload(page: Page, name: string, text: string): Promise<void> {
  await page.locator('#file').setInputFiles({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(text) });
}

/** No script ran, no dialog opened, nothing was injected, and the page kept to its CSP. */
async function assertInert(watched: Watched): Promise<void> {
  const { page } = watched;
  assert.equal(await page.evaluate<string>('typeof window.__xss'), 'undefined', 'no payload ran');
  assert.deepEqual(watched.dialogs, [], 'no dialog opened');
  assert.equal(await page.locator('#results :is(img, script, svg, iframe, object, embed, style, link, a, b, i)').count(), 0, 'no element injected into the results');
  assert.equal(await page.locator('script').count(), 1, 'only the page script');
  assert.equal(await page.locator('img, iframe, svg, object, embed').count(), 0);
  assert.ok(!watched.requests.includes('/x'), 'no injected image was loaded');
  assertCspClean(watched);
  assert.deepEqual(await page.evaluate<string[]>('window.__csp'), [], 'no CSP violation event');
}

function assertCspClean(watched: Watched): void {
  assert.deepEqual(watched.cspConsole, [], 'no CSP report in the console');
  assert.deepEqual(watched.pageErrors, [], 'no uncaught error in the page');
}

/** The text the results area shows, whitespace collapsed. */
async function resultsText(page: Page): Promise<string> {
  return (await page.locator('#results').innerText()).replace(/\s+/g, ' ');
}

function notebook(cells: unknown[], metadata: Record<string, unknown> = {}): string {
  return JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata, cells });
}

const codeCell = (id: string, source: string, extra: Record<string, unknown> = {}) => ({
  cell_type: 'code',
  id,
  metadata: {},
  execution_count: null,
  outputs: [],
  source,
  ...extra,
});

before(
  async () => {
    if (SKIP) return;
    const started = startServer(readConfig({ PORT: '0', NBS_RATE_LIMIT_CHECK: '0', NBS_RATE_LIMIT_RUN: '0' }), {
      stream: { write: (line: string) => void logLines.push(JSON.parse(line) as { event?: string }) },
    });
    const launched = chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const [s, b] = await Promise.allSettled([started, launched]);
    if (s.status === 'fulfilled') server = s.value;
    if (b.status === 'fulfilled') browser = b.value;
    if (s.status === 'rejected') throw s.reason;
    if (b.status === 'rejected') throw b.reason;
  },
  { timeout: 300_000 },
);

after(async () => {
  await browser?.close();
  await server?.close();
  assert.deepEqual(
    logLines.filter((line) => line.event === 'server-error'),
    [],
    'the server logged no errors',
  );
});

describe('web page', { timeout: 180_000, skip: SKIP }, () => {
  it('works under its CSP: the script fills the policy list from the API and the stylesheet applies', async () => {
    assert.ok(server);
    const watched = await openPage();
    const { page } = watched;
    const api = (await (await fetch(`${server.url}/v1/policies`)).json()) as { default: string; policies: { id: string; description: string }[] };
    const options = await page.locator('#policy option').evaluateAll((nodes) => nodes.map((node) => (node as unknown as { value: string }).value));
    assert.deepEqual(options, api.policies.map((policy) => policy.id));
    assert.equal(await page.locator('#policy').inputValue(), api.default);
    const described = api.policies.find((policy) => policy.id === api.default)?.description;
    assert.ok(described);
    assert.equal(await page.locator('#policy-description').textContent(), described);
    await page.locator('#policy').selectOption('strict');
    assert.equal(await page.locator('#policy-description').textContent(), api.policies.find((policy) => policy.id === 'strict')?.description);
    assert.equal(await page.evaluate<string>("getComputedStyle(document.querySelector('main')).maxWidth"), '960px', 'app.css applies');
    assert.equal(await page.locator('#filename').inputValue(), 'cell.py');
    assertCspClean(watched);
    await watched.context.close();
  });

  it('denies a malicious .py uploaded through the file input and runs none of it', async () => {
    const watched = await openPage();
    const { page } = watched;
    await upload(page, 'evil.py', 'import os\nos.system("id")\n');
    await submit(page, 'Run');
    assert.equal(await page.locator('#verdict').getAttribute('data-verdict'), 'deny');
    assert.equal(await page.locator('#verdict').getAttribute('class'), 'verdict verdict-deny');
    assert.equal(await page.locator('#run-status').getAttribute('data-status'), 'denied');
    assert.equal(await page.locator('#results .cell').count(), 0, 'no cell ran');
    assert.equal(await page.locator('#results .output').count(), 0, 'no output');
    const row = page.locator('table.findings tbody tr');
    assert.equal(await row.count(), 1);
    assert.deepEqual(
      (await row.locator('td').allInnerTexts()).map((text) => text.trim()),
      ['0', '2:1', 'critical', 'NBS-PROC-001', 'calls os.system'],
    );
    assert.match(await resultsText(page), /Run of evil\.py under policy default/);
    assertCspClean(watched);
    await watched.context.close();
  });

  it('runs a benign notebook, showing a working state while it runs and then its outputs', async () => {
    const watched = await openPage();
    const { page } = watched;
    await upload(page, 'benign.ipynb', notebook([codeCell('greet', 'print("hello from the sandbox")'), codeCell('answer', '6 * 7')]));
    // Hold the request so the working state can be seen, then let it through to the server.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/v1/run', async (route) => {
      await held;
      await route.continue();
    });
    const sent = page.waitForRequest('**/v1/run');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const request = await sent;
    assert.match(request.headers()['content-type'] ?? '', /^multipart\/form-data; boundary=/);
    assert.equal(await page.getByRole('button', { name: 'Run', exact: true }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Check', exact: true }).isDisabled(), true);
    assert.equal(await page.locator('#status').textContent(), 'Working…');
    assert.equal(await page.locator('#submission').getAttribute('aria-busy'), 'true');
    release();
    await page.locator('#results[data-state="done"], #results[data-state="error"]').waitFor({ timeout: RESULT_TIMEOUT });
    assert.equal(await page.locator('#verdict').getAttribute('data-verdict'), 'allow');
    assert.equal(await page.locator('#run-status').getAttribute('data-status'), 'ok');
    assert.equal(await page.locator('#status').textContent(), 'Done: ok');
    assert.equal(await page.getByRole('button', { name: 'Run', exact: true }).isDisabled(), false);
    assert.equal(await page.locator('.output.stream pre').textContent(), 'hello from the sandbox\n');
    assert.equal(await page.locator('.output.result pre').textContent(), '42');
    assert.equal(await page.locator('#results .cell').count(), 2);
    assertCspClean(watched);
    await watched.context.close();
  });

  it('checks pasted code as JSON under the chosen policy', async () => {
    const watched = await openPage();
    const { page } = watched;
    await page.locator('#source').fill('!ls -l\nprint(1)\n');
    assert.equal(await page.locator('#mode-paste').isChecked(), true, 'typing picks the paste mode');
    await page.locator('#policy').selectOption('strict');
    const sent = page.waitForRequest('**/v1/check');
    await submit(page, 'Check');
    const request = await sent;
    assert.equal(request.headers()['content-type'], 'application/json');
    assert.deepEqual(request.postDataJSON(), { source: '!ls -l\nprint(1)\n', filename: 'cell.py', policy: 'strict' });
    assert.equal(await page.locator('#verdict').getAttribute('data-verdict'), 'deny', 'strict denies shell escapes (default only warns)');
    assert.match(await page.locator('table.findings').innerText(), /NBS-SHELL-001/);
    assert.equal(await page.locator('#run-status').count(), 0, 'a check runs nothing');
    assert.match(await resultsText(page), /Check of cell\.py under policy strict/);
    assertCspClean(watched);
    await watched.context.close();
  });

  it("shows an API error's code and message", async () => {
    const watched = await openPage();
    const { page } = watched;
    await upload(page, 'notes.txt', 'hello');
    await submit(page, 'Check');
    assert.equal(await page.locator('#results').getAttribute('data-state'), 'error');
    assert.equal(await page.locator('#error-code').textContent(), 'NBS_INPUT_UNSUPPORTED_TYPE');
    assert.equal(await page.locator('#error-message').textContent(), 'The input is neither a .ipynb notebook nor a .py file');
    assert.equal(await page.getByRole('alert').count(), 1);
    assert.equal(await page.locator('#verdict').count(), 0);
    assertCspClean(watched);
    await watched.context.close();
  });

  it('shows a hostile file name, finding message and outputs as text without running them', async () => {
    const watched = await openPage();
    const { page } = watched;
    const name = '<img src=x onerror="window.__xss=1;alert(1)">.py';
    const printed = '<img src=x onerror="window.__xss=2;alert(2)">';
    const script = '<script>window.__xss=3;alert(3)</script>';
    const path = '/etc/<img src=x onerror=window.__xss=4>';
    const source = [`print('${printed}')`, `print('${script}')`, `open("${path}", "w")`, ''].join('\n');
    await upload(page, name, source);
    await submit(page, 'Run');
    await assertInert(watched);
    assert.equal(await page.locator('#verdict').getAttribute('data-verdict'), 'warn');
    const text = await resultsText(page);
    assert.ok(text.includes(`Run of ${name}`), 'the file name is shown as text');
    assert.ok(text.includes(`writes '${path}' outside the writable paths`), 'the finding message is shown as text');
    assert.equal(await page.locator('.output.stream pre').textContent(), `${printed}\n${script}\n`);
    assert.ok((await page.locator('.output.error').innerText()).includes(path), 'the error output is shown as text');
    await watched.context.close();
  });

  it('never renders HTML from notebook metadata, markdown or stored outputs', async () => {
    const watched = await openPage();
    const { page } = watched;
    const html = '<img src=x onerror="window.__xss=5;alert(5)"><script>window.__xss=6</script>';
    const stored = [
      { output_type: 'display_data', metadata: { html }, data: { 'text/html': html, 'application/javascript': 'window.__xss=7', 'text/plain': 'stored' } },
      { output_type: 'execute_result', execution_count: 1, metadata: {}, data: { 'text/html': html, 'text/plain': 'stored' } },
    ];
    const document = notebook(
      [
        { cell_type: 'markdown', id: 'md', metadata: { title: html }, source: html },
        codeCell('hostile', `print('${html}')`, { metadata: { tags: [html], jupyter: { source_hidden: false } }, execution_count: 1, outputs: stored }),
      ],
      { title: html, kernelspec: { name: 'python3', display_name: html, language: 'python' }, widgets: { 'application/vnd.jupyter.widget-state+json': { html } } },
    );
    await upload(page, '<svg onload=window.__xss=8>.ipynb', document);
    await submit(page, 'Run');
    await assertInert(watched);
    assert.equal(await page.locator('#run-status').getAttribute('data-status'), 'ok');
    assert.equal(await page.locator('.output.stream pre').textContent(), `${html}\n`);
    const text = await resultsText(page);
    assert.ok(text.includes('Run of <svg onload=window.__xss=8>.ipynb'));
    assert.ok(!text.includes('stored'), 'stored outputs are not shown: the notebook ran afresh');
    await watched.context.close();
  });
});

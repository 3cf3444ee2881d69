// The page script: sends an uploaded file or pasted code to /v1/check or /v1/run and shows the
// verdict, the findings and the outputs. Every string that comes from the submission or the
// server (file names, messages, outputs, tracebacks, policy descriptions) is untrusted: it only
// ever reaches the page as a text node, never as markup. Notebook outputs are shown as plain text.

const $ = (id) => document.getElementById(id);
const form = $('submission');
const fileInput = $('file');
const filenameInput = $('filename');
const sourceInput = $('source');
const policySelect = $('policy');
const policyDescription = $('policy-description');
const statusLine = $('status');
const results = $('results');
const report = $('report');
const buttons = [$('check'), $('run')];
const descriptions = new Map();

const VERDICTS = ['allow', 'warn', 'deny'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];
const RUN_STATUSES = ['ok', 'error', 'timeout', 'memory', 'killed', 'denied'];
const CELL_STATUSES = ['ok', 'error', 'interrupted', 'skipped'];
/** A server value as a class-name suffix: only values we know, so classes stay predictable. */
const known = (values, value) => (values.includes(value) ? value : 'unknown');

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Terminal colour codes (IPython tracebacks carry them) removed; the rest stays as it is. */
const plain = (text) => String(text ?? '').replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '');

function setStatus(text, kind) {
  statusLine.textContent = text;
  statusLine.className = kind ? `status-${kind}` : '';
}

function describePolicy() {
  policyDescription.textContent = descriptions.get(policySelect.value) ?? '';
}

const readJson = (response) => response.json().catch(() => null);

/** `{ error: { code, message, requestId } }`, or something standing in for it. */
function problemOf(response, body) {
  const error = body && typeof body === 'object' ? body.error : undefined;
  if (error && typeof error === 'object') return { code: String(error.code), message: String(error.message), requestId: error.requestId };
  return { code: `HTTP ${response.status}`, message: response.ok ? 'The server sent an answer this page cannot read' : response.statusText || 'The request failed' };
}

async function loadPolicies() {
  try {
    const response = await fetch('/v1/policies', { headers: { accept: 'application/json' } });
    const body = await readJson(response);
    if (!response.ok || !Array.isArray(body?.policies)) {
      const problem = problemOf(response, body);
      throw new Error(`${problem.code}: ${problem.message}`);
    }
    for (const policy of body.policies) {
      descriptions.set(String(policy.id), String(policy.description ?? ''));
      policySelect.append(el('option', { value: policy.id }, `${policy.id} (version ${policy.version})`));
    }
    policySelect.value = String(body.default);
  } catch (error) {
    policySelect.append(el('option', { value: '' }, 'the server default'));
    setStatus(`Could not load the policies (${error instanceof Error ? error.message : 'unknown error'}); the server default applies.`, 'error');
  }
  describePolicy();
}

/** The fetch options for the chosen input, or a string saying what is missing. */
function buildRequest() {
  const policy = policySelect.value;
  if (form.elements.mode.value === 'file') {
    const file = fileInput.files?.[0];
    if (!file) return 'Choose a file to upload, or paste code instead.';
    const data = new FormData();
    data.set('file', file);
    if (policy) data.set('policy', policy);
    return { name: file.name, init: { method: 'POST', body: data } };
  }
  const filename = filenameInput.value.trim() || 'cell.py';
  const body = { source: sourceInput.value, filename };
  if (policy) body.policy = policy;
  return { name: filename, init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } };
}

function setBusy(busy) {
  for (const button of buttons) button.disabled = busy;
  form.setAttribute('aria-busy', String(busy));
  if (busy) {
    results.dataset.state = 'working';
    setStatus('Working…', 'working');
  }
}

function findingsTable(findings) {
  if (findings.length === 0) return el('p', { class: 'none' }, 'No findings.');
  const columns = ['Cell', 'Line:Column', 'Severity', 'Rule', 'Message'];
  const rows = findings.map((finding) =>
    el(
      'tr',
      {},
      el('td', {}, finding.cell),
      el('td', {}, `${finding.line}:${finding.column}`),
      el('td', {}, el('span', { class: `severity severity-${known(SEVERITIES, finding.severity)}` }, finding.severity)),
      el('td', {}, el('code', {}, finding.ruleId)),
      el('td', { class: 'message' }, finding.message),
    ),
  );
  return el(
    'table',
    { class: 'findings' },
    el('caption', {}, `Findings (${findings.length})`),
    el('thead', {}, el('tr', {}, columns.map((column) => el('th', { scope: 'col' }, column)))),
    el('tbody', {}, rows),
  );
}

function outputView(output) {
  switch (output?.output_type) {
    case 'stream': {
      const name = output.name === 'stderr' ? 'stderr' : 'stdout';
      return el('figure', { class: `output stream ${name}` }, el('figcaption', {}, name), el('pre', {}, plain(output.text)));
    }
    case 'execute_result': {
      const text = output.data?.['text/plain'];
      return el('figure', { class: 'output result' }, el('figcaption', {}, `Out [${output.execution_count ?? ' '}]`), el('pre', {}, text === undefined ? '(no plain-text form)' : plain(text)));
    }
    case 'error': {
      const traceback = (Array.isArray(output.traceback) ? output.traceback : []).map((line) => plain(line).replace(/\n?$/, '\n')).join('');
      return el(
        'figure',
        { class: 'output error' },
        el('figcaption', {}, el('strong', {}, plain(output.ename)), ': ', plain(output.evalue)),
        traceback ? el('pre', {}, traceback) : null,
      );
    }
    default:
      return el('p', { class: 'hint' }, `An output of type ${String(output?.output_type)} is not shown.`);
  }
}

function runView(run) {
  const parts = [
    el(
      'p',
      { id: 'run-status', class: `run-status run-${known(RUN_STATUSES, run.status)}`, 'data-status': run.status },
      'Run status: ',
      el('strong', {}, run.status),
      run.status !== 'denied' && typeof run.durationMs === 'number' ? ` (${run.durationMs} ms)` : null,
    ),
  ];
  if (run.status === 'denied') parts.push(el('p', {}, 'The static check denied this input, so none of it ran.'));
  if (run.error) parts.push(el('p', { class: 'problem' }, el('strong', {}, run.error.code), ': ', run.error.message));
  if (run.truncated) parts.push(el('p', { class: 'hint' }, 'Some output was cut to the size limit.'));
  for (const cell of run.cells ?? []) {
    const outputs = Array.isArray(cell.outputs) ? cell.outputs : [];
    parts.push(
      el(
        'section',
        { class: `cell cell-${known(CELL_STATUSES, cell.status)}` },
        el('h3', {}, `Cell ${cell.index}`, cell.id ? [' (id ', el('code', {}, cell.id), ')'] : null, `: ${cell.status}`),
        outputs.length > 0 ? outputs.map(outputView) : el('p', { class: 'none' }, 'No output.'),
      ),
    );
  }
  return parts;
}

function resultView(action, name, result) {
  const check = action === 'run' ? result.check : result;
  const parts = [el('p', { class: 'subject' }, action === 'run' ? 'Run of ' : 'Check of ', el('code', { id: 'subject-name' }, name), check ? [' under policy ', el('code', {}, check.policy?.id)] : null)];
  if (check) {
    parts.push(
      el('p', { id: 'verdict', class: `verdict verdict-${known(VERDICTS, check.verdict)}`, 'data-verdict': check.verdict }, 'Verdict: ', el('strong', {}, check.verdict)),
      findingsTable(Array.isArray(check.findings) ? check.findings : []),
    );
  }
  if (action === 'run') parts.push(...runView(result));
  return parts;
}

function problemView(problem) {
  return el(
    'div',
    { class: 'problem', role: 'alert' },
    el('p', {}, el('strong', { id: 'error-code' }, problem.code), ': ', el('span', { id: 'error-message' }, problem.message)),
    problem.requestId ? el('p', { class: 'hint' }, 'Request id: ', el('code', {}, problem.requestId)) : null,
  );
}

function show(state, ...content) {
  report.replaceChildren(...content.flat());
  results.hidden = false;
  results.dataset.state = state;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const action = event.submitter?.value === 'run' ? 'run' : 'check';
  const request = buildRequest();
  if (typeof request === 'string') {
    setStatus(request, 'error');
    return;
  }
  setBusy(true);
  report.replaceChildren();
  try {
    const response = await fetch(`/v1/${action}`, request.init);
    const body = await readJson(response);
    if (!response.ok || !body || typeof body !== 'object' || body.error) {
      const problem = problemOf(response, body);
      show('error', problemView(problem));
      setStatus(`Failed: ${problem.code}`, 'error');
    } else {
      show('done', resultView(action, request.name, body));
      setStatus(action === 'run' ? `Done: ${body.status}` : `Done: ${body.verdict}`, 'done');
    }
  } catch (error) {
    show('error', problemView({ code: 'NETWORK', message: error instanceof Error ? error.message : 'The request failed' }));
    setStatus('Failed: the server could not be reached', 'error');
  } finally {
    setBusy(false);
  }
});

fileInput.addEventListener('change', () => {
  $('mode-file').checked = true;
});
for (const input of [filenameInput, sourceInput]) {
  input.addEventListener('input', () => {
    $('mode-paste').checked = true;
  });
}
policySelect.addEventListener('change', describePolicy);
loadPolicies();

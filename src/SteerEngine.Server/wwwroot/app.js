// The side-by-side page of `steer serve`: 1–6 panels, each with its own steering (vector, layer,
// multiplier, or none) and its own conversation; one message box sends the user turn to every panel,
// and each panel streams its answer from /v1/chat/completions. The settings live in the URL:
//   ?model=NAME&view=split|multi|free&temperature=T&max_tokens=N&projections=1&p=VECTOR,LAYER,MULTIPLIER&p=none
// No build step and no network beyond the server itself.
'use strict';

const MAX_PANELS = 6;
const $ = id => document.getElementById(id);

const state = {
  model: '', view: 'split', temperature: 0.7, maxTokens: null, projections: false,
  panels: [],      // { vector: name | null, layer, multiplier, messages: [{role, content}], controller, element }
};
let vectorNames = [];
// With `steer serve --api-key`, every /v1 call needs the key. It is asked for on the page when the
// server answers 401 and kept for this tab only (sessionStorage), never in the URL that is shared.
let apiKey = sessionStorage.getItem('steer-api-key') || '';
const authorised = (headers = {}) => apiKey ? { ...headers, Authorization: 'Bearer ' + apiKey } : headers;

// ---- settings <-> URL ---------------------------------------------------------------------------

function readUrl() {
  const q = new URLSearchParams(location.search);
  state.model = q.get('model') || '';
  state.view = ['split', 'multi', 'free'].includes(q.get('view')) ? q.get('view') : 'split';
  if (q.has('temperature')) state.temperature = Number(q.get('temperature'));
  state.maxTokens = q.has('max_tokens') ? Number(q.get('max_tokens')) : null;
  state.projections = q.get('projections') === '1';
  const specs = q.getAll('p').slice(0, MAX_PANELS);
  state.panels = specs.map(s => {
    if (s === 'none') return newPanel(null, 0, 0);
    const [vector, layer, multiplier] = s.split(',');
    return newPanel(vector, Number(layer), Number(multiplier));
  });
}

function writeUrl() {
  const q = new URLSearchParams();
  if (state.model) q.set('model', state.model);
  q.set('view', state.view);
  q.set('temperature', String(state.temperature));
  if (state.maxTokens) q.set('max_tokens', String(state.maxTokens));
  if (state.projections) q.set('projections', '1');
  for (const p of state.panels) q.append('p', p.vector ? `${p.vector},${p.layer},${p.multiplier}` : 'none');
  history.replaceState(null, '', '?' + q.toString().replace(/%2C/g, ','));
}

function newPanel(vector, layer, multiplier) {
  return { vector, layer, multiplier, messages: [], controller: null, element: null };
}

// ---- presets ------------------------------------------------------------------------------------

// The preset's own inputs, filled from the panels they describe.
function renderPresetFields() {
  const box = $('preset-fields');
  box.replaceChildren();
  const first = state.panels[0] || newPanel(vectorNames[0] || null, 0, 1);
  if (state.view === 'split') {
    box.append(vectorSelect(first.vector, 'preset-vector'), label('layer', numberInput('preset-layer', first.layer, 1)),
      label('×', numberInput('preset-a', first.multiplier, 0.5)), label('vs ×', numberInput('preset-b', (state.panels[1] || first).multiplier, 0.5)));
  } else if (state.view === 'multi') {
    const layers = state.panels.map(p => p.layer).join(',');
    const input = numberInput('preset-layers', 0, 1);
    input.type = 'text';
    input.className = 'wide';
    input.value = layers || '0';
    box.append(vectorSelect(first.vector, 'preset-vector'), label('×', numberInput('preset-m', first.multiplier, 0.5)), label('layers', input));
  } else {
    const count = numberInput('preset-count', state.panels.length || 2, 1);
    count.min = 1;
    count.max = MAX_PANELS;
    box.append(label('panels', count));
  }
  for (const input of box.querySelectorAll('input, select')) input.addEventListener('change', applyPreset);
}

function applyPreset() {
  const keep = state.panels;
  const value = id => $(id) && $(id).value;
  const vector = value('preset-vector') || null;
  let panels;
  if (state.view === 'split') {
    const layer = Number(value('preset-layer'));
    panels = [newPanel(vector, layer, Number(value('preset-a'))), newPanel(vector, layer, Number(value('preset-b')))];
  } else if (state.view === 'multi') {
    const layers = value('preset-layers').split(',').map(s => s.trim()).filter(s => s !== '').slice(0, MAX_PANELS).map(Number);
    panels = layers.map(l => newPanel(vector, l, Number(value('preset-m'))));
  } else {
    const n = Math.min(MAX_PANELS, Math.max(1, Number(value('preset-count')) || 1));
    panels = Array.from({ length: n }, (_, i) => keep[i] ? newPanel(keep[i].vector, keep[i].layer, keep[i].multiplier) : newPanel(vector, 0, 0));
  }
  panels.forEach((p, i) => { if (keep[i]) p.messages = keep[i].messages; });   // conversations stay with their panel
  keep.forEach(p => p.controller && p.controller.abort());
  state.panels = panels;
  renderPanels();
  writeUrl();
}

// ---- panels -------------------------------------------------------------------------------------

function renderPanels() {
  const box = $('panels');
  box.className = 'n' + state.panels.length;
  box.replaceChildren(...state.panels.map((p, i) => renderPanel(p, i)));
}

function renderPanel(p, index) {
  const el = document.createElement('section');
  el.className = 'panel';
  el.dataset.panel = index;
  el.dataset.state = 'idle';
  const settings = document.createElement('div');
  settings.className = 'settings';
  const title = document.createElement('span');
  title.className = 'title';
  title.textContent = describe(p);
  const vector = vectorSelect(p.vector, null, true);
  const layer = numberInput(null, p.layer, 1);
  const multiplier = numberInput(null, p.multiplier, 0.5);
  const onChange = () => {
    p.vector = vector.value || null;
    p.layer = Number(layer.value);
    p.multiplier = Number(multiplier.value);
    title.textContent = describe(p);
    state.view = 'free';
    $('preset').value = 'free';
    renderPresetFields();
    writeUrl();
  };
  for (const input of [vector, layer, multiplier]) input.addEventListener('change', onChange);
  settings.append(title, vector, label('layer', layer), label('×', multiplier));
  const conversation = document.createElement('div');
  conversation.className = 'conversation';
  const legend = document.createElement('div');
  legend.className = 'legend';
  legend.hidden = true;
  el.append(settings, conversation, legend);
  p.element = el;
  for (const m of p.messages) addMessage(p, m.role, m.content);
  return el;
}

function describe(p) {
  return p.vector ? `${p.vector} · layer ${p.layer} · ×${p.multiplier}` : 'unsteered';
}

function addMessage(p, role, text) {
  const div = document.createElement('div');
  div.className = 'msg ' + role;
  div.textContent = text;
  const conversation = p.element.querySelector('.conversation');
  conversation.append(div);
  conversation.scrollTop = conversation.scrollHeight;
  return div;
}

// ---- talking to the server ----------------------------------------------------------------------

function requestBody(p) {
  const body = { model: state.model, messages: p.messages, stream: true, temperature: state.temperature };
  if (state.maxTokens) body.max_tokens = state.maxTokens;
  body.steering = p.vector ? [{ vector: p.vector, layer: p.layer, multiplier: p.multiplier }] : false;
  if (state.projections && p.vector) {
    body.logprobs = true;                                  // the token strings the projections belong to
    body.monitor = { vector: p.vector, layer: p.layer };   // steer serve's extension: projections per generated token
  }
  return body;
}

async function answer(p) {
  const el = p.element;
  el.dataset.state = 'streaming';
  el.querySelector('.legend').hidden = true;
  const out = addMessage(p, 'assistant', '');
  const tokens = [], turns = p.messages.length;
  let text = '', projections = null, failure = null;
  p.controller = new AbortController();
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST', headers: authorised({ 'Content-Type': 'application/json' }), body: JSON.stringify(requestBody(p)), signal: p.controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    await readEvents(response, event => {
      if (event.error) throw new Error(event.error.message || JSON.stringify(event.error));
      const choice = event.choices && event.choices[0];
      if (!choice) return;
      if (choice.delta && choice.delta.content) { text += choice.delta.content; out.textContent = text; }
      if (choice.logprobs && choice.logprobs.content) tokens.push(...choice.logprobs.content.map(c => c.token));
      if (choice.projections) projections = choice.projections;
      if (choice.finish_reason) el.dataset.finish = choice.finish_reason;
    });
  } catch (e) {
    failure = e.name === 'AbortError' ? null : e.message;
  }
  p.controller = null;
  if (p.messages.length !== turns) return;   // the conversation was reset meanwhile
  if (failure !== null) {
    out.remove();
    addMessage(p, 'error', 'server error: ' + failure);
    p.messages.pop();   // the turn that failed is not part of the conversation
    el.dataset.state = 'error';
    return;
  }
  p.messages.push({ role: 'assistant', content: text });
  if (projections && projections.length && tokens.length) colour(p, out, tokens, projections);
  el.dataset.state = 'done';
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || JSON.stringify(body);
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

// Server-sent events: "data: {json}" blocks separated by blank lines, ending with "data: [DONE]".
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

// Each token coloured by its projection: blue (the answer's lowest) through grey to red (its highest).
function colour(p, out, tokens, projections) {
  while (tokens.length && !out.textContent.endsWith(tokens[tokens.length - 1])) tokens.pop();   // an end-of-turn token has no text
  const low = Math.min(...projections), high = Math.max(...projections);
  out.replaceChildren(...tokens.map((token, i) => {
    const span = document.createElement('span');
    span.textContent = token;
    if (i < projections.length) {
      span.style.color = scale(projections[i], low, high);
      span.title = projections[i].toFixed(2);
    }
    return span;
  }));
  const legend = p.element.querySelector('.legend');
  legend.replaceChildren(`last answer: projection on ${p.vector} at layer ${p.layer}, ${low.toFixed(2)} `, Object.assign(document.createElement('span'), { className: 'scale' }), ` ${high.toFixed(2)}`);
  legend.hidden = false;
}

function scale(value, low, high) {
  const t = high > low ? Math.min(1, Math.max(0, (value - low) / (high - low))) : 0.5;
  const mix = (a, b, u) => a.map((x, k) => Math.round(x + (b[k] - x) * u));
  const [r, g, b] = t < 0.5 ? mix([60, 120, 255], [190, 190, 190], t * 2) : mix([190, 190, 190], [255, 70, 50], t * 2 - 1);
  return `rgb(${r}, ${g}, ${b})`;
}

function send() {
  const text = $('message').value.trim();
  if (!text || state.panels.some(p => p.controller)) return;
  $('message').value = '';
  for (const p of state.panels) {
    p.messages.push({ role: 'user', content: text });
    addMessage(p, 'user', text);
    answer(p);
  }
}

// ---- small builders -----------------------------------------------------------------------------

function label(text, input) {
  const l = document.createElement('label');
  l.append(text + ' ', input);
  return l;
}

function numberInput(id, value, step) {
  const input = document.createElement('input');
  input.type = 'number';
  input.step = String(step);
  input.value = String(value);
  if (id) input.id = id;
  return input;
}

function vectorSelect(selected, id, allowNone = true) {
  const select = document.createElement('select');
  if (id) select.id = id;
  const names = [...vectorNames];
  if (selected && !names.includes(selected)) names.push(selected);
  if (allowNone) select.append(new Option('(no steering)', ''));
  for (const n of names) select.append(new Option(n, n));
  select.value = selected || '';
  return select;
}

async function getJson(url) {
  const response = await fetch(url, { headers: authorised() });
  if (response.status === 401) throw Object.assign(new Error(`${url}: ${await errorMessage(response)}`), { unauthorised: true });
  if (!response.ok) throw new Error(`${url}: ${await errorMessage(response)}`);
  return response.json();
}

// ---- start --------------------------------------------------------------------------------------

/** Reads the server's models and vectors; on 401 shows the API key field. True when the server answered. */
async function loadServer() {
  try {
    const [models, vectors] = await Promise.all([getJson('/v1/models'), getJson('/v1/steering/vectors')]);
    vectorNames = vectors.data.map(v => v.name);
    $('model').replaceChildren(...models.data.map(m => new Option(m.id, m.id)));
    if (!state.model && models.data.length) state.model = models.data[0].id;
    $('model').value = state.model;
    $('key-field').hidden = true;
    $('server-status').textContent = `${models.data.length} model(s), ${vectorNames.length} vector(s)`;
    return true;
  } catch (e) {
    $('key-field').hidden = !e.unauthorised;
    $('server-status').textContent = e.unauthorised
      ? (apiKey ? 'the server refused this API key' : 'this server needs an API key')
      : 'server: ' + e.message;
    return false;
  }
}

function defaultPanels() {
  return [newPanel(vectorNames[0] || null, 0, -2), newPanel(vectorNames[0] || null, 0, 2)];
}

async function start() {
  readUrl();
  const urlHadPanels = state.panels.length > 0;
  await loadServer();
  if (state.panels.length === 0) state.panels = defaultPanels();
  $('preset').value = state.view;
  $('temperature').value = String(state.temperature);
  $('max-tokens').value = state.maxTokens ? String(state.maxTokens) : '';
  $('projections').checked = state.projections;
  renderPresetFields();
  renderPanels();
  writeUrl();

  $('model').addEventListener('change', () => { state.model = $('model').value; writeUrl(); });
  $('preset').addEventListener('change', () => { state.view = $('preset').value; renderPresetFields(); applyPreset(); });
  $('temperature').addEventListener('change', () => { state.temperature = Number($('temperature').value); writeUrl(); });
  $('max-tokens').addEventListener('change', () => { state.maxTokens = Number($('max-tokens').value) || null; writeUrl(); });
  $('projections').addEventListener('change', () => { state.projections = $('projections').checked; writeUrl(); });
  $('send').addEventListener('click', send);
  $('stop').addEventListener('click', () => state.panels.forEach(p => p.controller && p.controller.abort()));
  $('reset').addEventListener('click', () => {
    state.panels.forEach(p => { if (p.controller) p.controller.abort(); p.messages = []; });
    renderPanels();
  });
  $('api-key').addEventListener('change', async () => {
    apiKey = $('api-key').value.trim();
    sessionStorage.setItem('steer-api-key', apiKey);
    if (await loadServer()) {
      if (!urlHadPanels) state.panels = defaultPanels();
      renderPanels();
      writeUrl();
    }
  });
  $('message').addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
  });
}

start();

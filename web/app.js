// Kokoro web UI: plain JS against the server's REST API, no build step.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { voices: [], upload: null, selectedJob: null, audioUrl: null, coverUrl: null };

function headers(json) {
  const h = {};
  const key = $('api-key').value.trim();
  if (key) h['Authorization'] = 'Bearer ' + key;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

// Error text from Kokoro-FastAPI-style {"detail": {"message"}} bodies.
async function errorText(resp) {
  try {
    const j = await resp.json();
    if (j.detail && j.detail.message) return j.detail.message;
    return JSON.stringify(j);
  } catch (e) {
    return resp.status + ' ' + resp.statusText;
  }
}

async function api(path, opts = {}) {
  const resp = await fetch(path, { ...opts, headers: { ...headers(opts.json), ...(opts.headers || {}) } });
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp;
}

function setStatus(el, text, kind) {
  el.textContent = text;
  el.className = 'status' + (kind ? ' ' + kind : '');
}

// ---- tabs ----
function showTab(name) {
  for (const b of document.querySelectorAll('button.tab')) b.classList.toggle('active', b.dataset.tab === name);
  for (const p of document.querySelectorAll('.panel')) p.hidden = p.id !== 'panel-' + name;
  if (name === 'jobs') refreshJobs();
}
for (const b of document.querySelectorAll('button.tab')) b.addEventListener('click', () => showTab(b.dataset.tab));

// ---- voices, languages ----
function voiceOptions(select, selected) {
  select.innerHTML = '';
  for (const v of state.voices) {
    const o = document.createElement('option');
    o.value = v.id;
    o.textContent = v.name;
    if (v.id === selected) o.selected = true;
    select.appendChild(o);
  }
}

async function loadVoices() {
  try {
    const r = await api('/v1/audio/voices');
    state.voices = (await r.json()).voices;
    voiceOptions($('voice'), state.voices.some((v) => v.id === 'af_heart') ? 'af_heart' : undefined);
    const langs = (await (await api('/v1/languages')).json()).languages;
    for (const l of langs) {
      const o = document.createElement('option');
      o.value = l.code;
      o.textContent = l.name + ' (' + l.code + ')';
      $('lang').appendChild(o);
    }
    updateSpec();
    setStatus($('gen-status'), '');
  } catch (e) {
    setStatus($('gen-status'), 'Cannot load voices: ' + e.message, 'error');
  }
}

// ---- blend ----
function addBlendRow() {
  const row = document.createElement('div');
  row.className = 'blend-row';
  const sel = document.createElement('select');
  voiceOptions(sel, state.voices.length > 1 ? state.voices[$('blend').children.length % state.voices.length].id : undefined);
  const w = document.createElement('input');
  w.type = 'number'; w.min = '0.1'; w.step = '0.1'; w.value = '1';
  w.setAttribute('aria-label', 'weight');
  const rm = document.createElement('button');
  rm.type = 'button'; rm.textContent = 'Remove';
  rm.addEventListener('click', () => { row.remove(); updateSpec(); });
  sel.addEventListener('change', updateSpec);
  w.addEventListener('input', updateSpec);
  row.append(sel, w, rm);
  $('blend').appendChild(row);
  updateSpec();
}

// The voice the requests use: one name, or Kokoro-FastAPI's "a(2)+b(1)".
function voiceSpec() {
  const rows = [...$('blend').querySelectorAll('.blend-row')];
  if (rows.length === 0) return $('voice').value;
  return rows.map((r) => r.querySelector('select').value + '(' + (parseFloat(r.querySelector('input').value) || 1) + ')').join('+');
}
function updateSpec() { $('voice-spec').textContent = voiceSpec(); }

// ---- generate ----
function speechBody(input, format) {
  const body = { model: 'kokoro', input, voice: voiceSpec(), response_format: format, speed: parseFloat($('speed').value), stream: false };
  if ($('lang').value) body.lang_code = $('lang').value;
  return JSON.stringify(body);
}

async function synthesize(input, format) {
  const r = await api('/v1/audio/speech', { method: 'POST', json: true, body: speechBody(input, format) });
  return r.blob();
}

async function generate() {
  const text = $('text').value;
  const format = $('format').value;
  if (!text.trim()) { setStatus($('gen-status'), 'Enter some text first.', 'error'); return; }
  $('generate').disabled = true;
  setStatus($('gen-status'), 'Synthesising…');
  const t0 = performance.now();
  try {
    const blob = await synthesize(text, format);
    if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
    state.audioUrl = URL.createObjectURL(blob);
    const dl = $('download');
    dl.href = state.audioUrl;
    dl.download = 'speech.' + format;
    dl.hidden = false;
    if (format === 'pcm') {
      $('player').removeAttribute('src');
      setStatus($('gen-status'), 'Raw PCM cannot play in the page; download it.', 'ok');
    } else {
      $('player').src = state.audioUrl;
      setStatus($('gen-status'), 'Done in ' + ((performance.now() - t0) / 1000).toFixed(1) + ' s', 'ok');
      $('player').play().catch(() => {});
    }
  } catch (e) {
    setStatus($('gen-status'), e.message, 'error');
  } finally {
    $('generate').disabled = false;
  }
}

// A short sentence in the language the preview speaks (the chosen one, else
// the voice's own, named by its first letter), so it sounds as the voice will.
const SAMPLES = {
  a: 'Hello, this is my voice.', b: 'Hello, this is my voice.', e: 'Hola, esta es mi voz.',
  f: 'Bonjour, voici ma voix.', h: 'नमस्ते, यह मेरी आवाज़ है।', i: 'Ciao, questa è la mia voce.',
  j: 'こんにちは、これは私の声です。', p: 'Olá, esta é a minha voz.', z: '你好，这是我的声音。',
};
function sampleText() {
  const lang = $('lang').value || voiceSpec().charAt(0);
  return SAMPLES[lang] || SAMPLES.a;
}

async function preview() {
  setStatus($('gen-status'), 'Preview of ' + voiceSpec() + '…');
  try {
    const blob = await synthesize(sampleText(), 'wav');
    if (state.audioUrl) URL.revokeObjectURL(state.audioUrl);
    state.audioUrl = URL.createObjectURL(blob);
    $('player').src = state.audioUrl;
    $('player').play().catch(() => {});
    setStatus($('gen-status'), 'Preview ready', 'ok');
  } catch (e) {
    setStatus($('gen-status'), e.message, 'error');
  }
}

// ---- files ----
async function uploadFile(file) {
  const fd = new FormData();
  fd.append('file', file, file.name);
  const r = await api('/v1/files', { method: 'POST', body: fd });
  return r.json();
}

async function onBook() {
  const file = $('book').files[0];
  if (!file) return;
  setStatus($('upload-status'), 'Uploading…');
  $('chapters').hidden = true;
  $('meta').hidden = true;
  try {
    const up = await uploadFile(file);
    state.upload = up;
    const tbody = $('chapters').querySelector('tbody');
    tbody.innerHTML = '';
    if (!up.chapters) {
      setStatus($('upload-status'), up.chapters_error || 'This document cannot be read.', 'error');
      return;
    }
    for (const ch of up.chapters) {
      const tr = document.createElement('tr');
      const cb = document.createElement('input');
      cb.type = 'checkbox'; cb.checked = true; cb.dataset.index = ch.index;
      const cells = [cb, String(ch.index + 1), ch.title, String(ch.words)];
      for (const c of cells) {
        const td = document.createElement('td');
        if (typeof c === 'string') td.textContent = c; else td.appendChild(c);
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    $('chapters').hidden = false;
    $('meta').hidden = false;
    // prefilled from the document's own metadata, else from the file name
    $('meta-title').value = up.title || file.name.replace(/\.[^.]+$/, '');
    $('meta-author').value = up.author || '';
    $('meta-cover').value = '';
    await showDocumentCover(up);
    const words = up.chapters.reduce((a, c) => a + c.words, 0);
    setStatus($('upload-status'), up.chapters.length + ' chapters, ' + words + ' words', 'ok');
  } catch (e) {
    setStatus($('upload-status'), e.message, 'error');
  }
}

// source: 'document' or 'upload' (what the preview shows), '' for none.
function setCoverPreview(url, note, source) {
  if (state.coverUrl) URL.revokeObjectURL(state.coverUrl);
  state.coverUrl = url;
  const img = $('cover-preview');
  img.hidden = !url;
  img.dataset.source = source;
  if (url) img.src = url; else img.removeAttribute('src');
  $('cover-note').textContent = note;
}

// The document's own cover goes into the book unless another is chosen.
// Fetched (not an <img src>) so the API key header goes with it.
async function showDocumentCover(up) {
  setCoverPreview(null, 'No cover in the document; choose an image (JPEG or PNG) to add one.', '');
  if (!up.has_cover) return;
  try {
    const r = await api('/v1/files/' + up.id + '/cover');
    setCoverPreview(URL.createObjectURL(await r.blob()), 'The document\'s own cover; choose an image to use another.',
      'document');
  } catch (e) {
    $('cover-note').textContent = 'Cannot show the cover: ' + e.message;
  }
}

function onCoverChosen() {
  const f = $('meta-cover').files[0];
  if (f) {
    setCoverPreview(URL.createObjectURL(f), 'Your image replaces the document\'s cover.', 'upload');
  } else if (state.upload) {
    showDocumentCover(state.upload);
  }
}

async function submitJob() {
  const chosen = [...$('chapters').querySelectorAll('tbody input[type=checkbox]')].filter((c) => c.checked).map((c) => Number(c.dataset.index));
  if (chosen.length === 0) { setStatus($('job-status'), 'Pick at least one chapter.', 'error'); return; }
  const body = { file_id: state.upload.id, voice: voiceSpec(), speed: parseFloat($('speed').value), chapters: chosen };
  if ($('lang').value) body.lang_code = $('lang').value;
  if ($('meta-title').value.trim()) body.title = $('meta-title').value.trim();
  if ($('meta-author').value.trim()) body.author = $('meta-author').value.trim();
  try {
    const cover = $('meta-cover').files[0];
    if (cover) body.cover_file_id = (await uploadFile(cover)).id;
    const r = await api('/v1/jobs', { method: 'POST', json: true, body: JSON.stringify(body) });
    const job = await r.json();
    setStatus($('job-status'), 'Job queued: ' + job.total_chunks + ' chunks', 'ok');
    state.selectedJob = job.id;
    showTab('jobs');
  } catch (e) {
    setStatus($('job-status'), e.message, 'error');
  }
}

// ---- jobs ----
function fmtEta(s) {
  if (s === null || s === undefined) return '';
  s = Math.round(s);
  return s >= 3600 ? Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min' : s >= 60 ? Math.floor(s / 60) + ' min ' + (s % 60) + ' s' : s + ' s';
}

async function jobAction(id, action) {
  try {
    await api('/v1/jobs/' + id + '/' + action, { method: 'POST' });
  } catch (e) {
    alert(e.message);
  }
  refreshJobs();
}

function button(text, fn) {
  const b = document.createElement('button');
  b.type = 'button'; b.textContent = text;
  b.addEventListener('click', fn);
  return b;
}

async function download(job) {
  try {
    const r = await api('/v1/jobs/' + job.id + '/download');
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement('a');
    a.href = url; a.download = job.output_name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    alert(e.message);
  }
}

async function refreshJobs() {
  if ($('panel-jobs').hidden) return;
  try {
    const jobs = (await (await api('/v1/jobs')).json()).jobs;
    const tbody = $('jobs').querySelector('tbody');
    tbody.innerHTML = '';
    for (const j of jobs) {
      const tr = document.createElement('tr');
      tr.dataset.id = j.id;
      tr.className = 'job job-' + j.state;
      const name = document.createElement('td');
      name.textContent = j.output_name;
      name.title = j.input_name;
      const st = document.createElement('td');
      st.className = 'state';
      st.textContent = j.state;
      const pr = document.createElement('td');
      const bar = document.createElement('progress');
      bar.max = 100; bar.value = j.percent;
      const pct = document.createElement('span');
      pct.className = 'percent';
      pct.textContent = ' ' + j.percent.toFixed(0) + '%';
      pr.append(bar, pct);
      const eta = document.createElement('td');
      eta.className = 'eta';
      eta.textContent = fmtEta(j.eta_seconds);
      const ch = document.createElement('td');
      ch.className = 'chapter';
      ch.textContent = j.current_chapter_title || '';
      const act = document.createElement('td');
      if (j.state === 'queued' || j.state === 'running') act.appendChild(button('Cancel', () => jobAction(j.id, 'cancel')));
      if (j.state === 'cancelled' || j.state === 'failed') act.appendChild(button('Resume', () => jobAction(j.id, 'resume')));
      if (j.state === 'completed') {
        const d = button('Download', () => download(j));
        d.className = 'download';
        act.appendChild(d);
      }
      act.appendChild(button('Log', () => { state.selectedJob = j.id; showLog(); }));
      tr.append(name, st, pr, eta, ch, act);
      tbody.appendChild(tr);
    }
    if (state.selectedJob) showLog();
  } catch (e) {
    $('log').textContent = 'Cannot list jobs: ' + e.message;
  }
}

async function showLog() {
  try {
    const j = await (await api('/v1/jobs/' + state.selectedJob)).json();
    $('log-title').hidden = false;
    $('log-title').textContent = 'Log of ' + j.output_name + (j.error ? ' — ' + j.error : '');
    $('log').textContent = j.log.map((e) => new Date(e.time * 1000).toLocaleTimeString() + '  ' + e.message).join('\n');
  } catch (e) {
    $('log').textContent = e.message;
  }
}

// ---- wiring ----
$('api-key').value = localStorage.getItem('kokoro-api-key') || '';
$('api-key').addEventListener('change', () => { localStorage.setItem('kokoro-api-key', $('api-key').value); loadVoices(); });
$('speed').addEventListener('input', () => { $('speed-out').textContent = parseFloat($('speed').value).toFixed(2); });
$('voice').addEventListener('change', updateSpec);
$('blend-add').addEventListener('click', addBlendRow);
$('generate').addEventListener('click', generate);
$('preview').addEventListener('click', preview);
$('book').addEventListener('change', onBook);
$('meta-cover').addEventListener('change', onCoverChosen);
$('submit-job').addEventListener('click', submitJob);
$('ch-all').addEventListener('change', () => {
  for (const c of $('chapters').querySelectorAll('tbody input[type=checkbox]')) c.checked = $('ch-all').checked;
});
setInterval(refreshJobs, 1000);
loadVoices();

// Browser tests of the web UI: Debian's chromium driven by playwright-core.
// usage: node ui.test.mjs BUILD_DIR
// Prints one line per test and, last, a CTest-style summary line that
// scripts/test.sh counts ("100% tests passed, 0 tests failed out of N").
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const build = resolve(process.argv[2] || join(root, 'build'));
const tmp = mkdtempSync(join(tmpdir(), 'kk-browser-'));

function startServer() {
  return new Promise((ok, fail) => {
    const p = spawn(join(build, 'kokoro-server'), ['--test-weights', '--voices', join(root, 'tests/data/voices'),
      '--port', '0', '--data-dir', join(tmp, 'data'), '--web-dir', join(root, 'web'), '--lease', '5',
      '--chunk-tokens', '10'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => fail(new Error('server did not start: ' + out)), 120000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); ok({ proc: p, base: 'http://127.0.0.1:' + m[1] }); }
    });
    p.on('exit', (c) => fail(new Error('server exited ' + c + ': ' + out)));
  });
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// The JSON bodies the page POSTs to path, as they are sent.
function recordPosts(page, path) {
  const bodies = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === path) bodies.push(JSON.parse(r.postData()));
  });
  return bodies;
}

test('generate and play', async (page, base) => {
  const sent = recordPosts(page, '/v1/audio/speech');
  await page.goto(base + '/');
  await page.waitForFunction(() => document.querySelectorAll('#voice option').length === 2);
  await page.fill('#text', 'Hello world.');
  await page.selectOption('#format', 'wav');
  // a language other than the voice's own (British English for an American voice)
  await page.waitForSelector('#lang option[value="b"]', { state: 'attached' });
  await page.selectOption('#lang', 'b');
  await page.click('#generate');
  await page.waitForSelector('#gen-status.ok', { timeout: 300000 });
  assert.equal(sent.length, 1);
  assert.equal(sent[0].lang_code, 'b');
  assert.equal(sent[0].input, 'Hello world.');
  // the audio element holds the WAV and plays it
  const audio = await page.evaluate(async () => {
    const a = document.getElementById('player');
    if (a.readyState < 1) await new Promise((r) => a.addEventListener('loadedmetadata', r, { once: true }));
    a.muted = true;
    await a.play();
    await new Promise((r) => setTimeout(r, 300));
    return { duration: a.duration, time: a.currentTime, paused: a.paused };
  });
  assert.ok(audio.duration > 0.2, 'duration ' + audio.duration);
  assert.ok(audio.time > 0, 'playback did not advance');
  const dl = await page.getAttribute('#download', 'href');
  assert.ok(dl && dl.startsWith('blob:'));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = join(tmp, 'speech.wav');
  await download.saveAs(file);
  assert.equal(readFileSync(file).subarray(0, 4).toString(), 'RIFF');
});

test('blend of two voices and error display', async (page, base) => {
  const sent = recordPosts(page, '/v1/audio/speech');
  await page.goto(base + '/');
  await page.waitForFunction(() => document.querySelectorAll('#voice option').length === 2);
  // voice preview: a short sample of the chosen voice lands in the player
  await page.selectOption('#voice', 'am_adam');
  await page.click('#preview');
  await page.waitForFunction(() => document.getElementById('gen-status').textContent === 'Preview ready', null, { timeout: 300000 });
  assert.ok((await page.getAttribute('#player', 'src')).startsWith('blob:'));
  // a real sentence in the voice's language (text input, not phonemes read as text)
  assert.equal(sent[0].voice, 'am_adam');
  assert.equal(sent[0].input, 'Hello, this is my voice.');
  assert.equal(sent[0].lang_code, undefined);
  await page.click('#blend-add');
  await page.click('#blend-add');
  await page.fill('#blend .blend-row:nth-child(1) input', '2');
  const spec = await page.textContent('#voice-spec');
  assert.equal(spec, 'af_heart(2)+am_adam(1)');
  await page.fill('#text', 'Hi.');
  await page.selectOption('#format', 'mp3');
  await page.click('#generate');
  await page.waitForSelector('#gen-status.ok', { timeout: 300000 });
  const dur = await page.evaluate(async () => {
    const a = document.getElementById('player');
    if (a.readyState < 1) await new Promise((r) => a.addEventListener('loadedmetadata', r, { once: true }));
    return a.duration;
  });
  assert.ok(dur > 0.1, 'mp3 duration ' + dur);
  // an error from the server is shown: a language code it does not know
  await page.evaluate(() => {
    const o = document.createElement('option');
    o.value = 'xx'; o.textContent = 'xx';
    document.getElementById('lang').appendChild(o);
  });
  await page.selectOption('#lang', 'xx');
  await page.click('#generate');
  await page.waitForSelector('#gen-status.error', { timeout: 60000 });
  assert.match(await page.textContent('#gen-status'), /lang_code/);
});

test('upload an EPUB, pick a chapter, run the job to the end, download the m4b', async (page, base) => {
  const book = join(root, 'tests/data/corpus/epub/wasteland.epub');
  await page.goto(base + '/');
  await page.waitForFunction(() => document.querySelectorAll('#voice option').length === 2);
  await page.evaluate(() => { const s = document.getElementById('speed'); s.value = '2'; s.dispatchEvent(new Event('input')); });
  await page.click('#tab-files');
  await page.setInputFiles('#book', book);
  await page.waitForSelector('#chapters:not([hidden]) tbody tr');
  const rows = await page.$$eval('#chapters tbody tr', (trs) => trs.map((t) => [...t.cells].slice(1).map((c) => c.textContent)));
  assert.equal(rows.length, 6);
  assert.deepEqual(rows[3], ['4', 'IV. DEATH BY WATER', '74']);
  assert.equal(await page.inputValue('#meta-title'), 'The Waste Land');
  // the book's own cover (wasteland-cover.jpg) is shown, a real image
  await page.waitForSelector('#cover-preview[data-source="document"]:not([hidden])');
  await page.waitForFunction(() => document.getElementById('cover-preview').naturalWidth > 0);
  // another cover can still be chosen: it replaces the preview and goes into the book
  const png = join(tmp, 'cover.png');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=blue:s=20x30', '-frames:v', '1', png]);
  await page.setInputFiles('#meta-cover', png);
  await page.waitForSelector('#cover-preview[data-source="upload"]:not([hidden])');
  await page.waitForFunction(() => document.getElementById('cover-preview').naturalHeight === 30);
  // only chapter 4
  for (const i of [1, 2, 3, 5, 6]) await page.uncheck(`#chapters tbody tr:nth-child(${i}) input`);
  await page.fill('#meta-title', 'Tiny Book');
  await page.fill('#meta-author', 'Someone');
  await page.click('#submit-job');
  await page.waitForSelector('#panel-jobs:not([hidden]) tr.job');
  await page.waitForSelector('tr.job-completed', { timeout: 300000 });
  assert.match(await page.textContent('tr.job-completed .percent'), /100%/);
  assert.match(await page.textContent('#log'), /Completed/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('tr.job-completed button.download')]);
  assert.equal(download.suggestedFilename(), 'Tiny_Book.m4b');
  const file = join(tmp, 'book.m4b');
  await download.saveAs(file);
  const m4b = readFileSync(file);
  assert.equal(m4b.subarray(4, 8).toString(), 'ftyp'); // MPEG-4
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_chapters', '-show_format', '-show_streams', '-of', 'json', file]).toString());
  const pics = probe.streams.filter((s) => s.disposition && s.disposition.attached_pic === 1);
  assert.equal(pics.length, 1);
  assert.equal(pics[0].codec_name, 'png'); // ours, not the book's JPEG
  assert.equal(probe.chapters.length, 1);
  assert.equal(probe.chapters[0].tags.title, 'IV. DEATH BY WATER');
  assert.equal(probe.format.tags.title, 'Tiny Book');
  assert.equal(probe.format.tags.artist, 'Someone');
  assert.ok(parseFloat(probe.format.duration) > 5, 'duration ' + probe.format.duration);
});

test('cancel and resume a job from the Jobs tab', async (page, base) => {
  const book = join(tmp, 'long.md');
  writeFileSync(book, '# Part One\n\n' + Array.from({ length: 12 }, () => 'Hello world.').join('\n\n') + '\n');
  await page.goto(base + '/');
  await page.waitForFunction(() => document.querySelectorAll('#voice option').length === 2);
  await page.click('#tab-files');
  await page.setInputFiles('#book', book);
  await page.waitForSelector('#chapters:not([hidden]) tbody tr');
  await page.click('#submit-job');
  await page.waitForSelector('tr.job-running', { timeout: 300000 });
  // while it runs the list shows its ETA (known after the first chunk) and chapter
  const shown = await (await page.waitForFunction(() => {
    const r = document.querySelector('tr.job-running');
    const eta = r && r.querySelector('td.eta').textContent;
    return eta && /^\d+ (s|min)/.test(eta) && { eta, chapter: r.querySelector('td.chapter').textContent };
  }, null, { timeout: 300000 })).jsonValue();
  assert.equal(shown.chapter, 'Part One', JSON.stringify(shown));
  await page.click('tr.job-running button:has-text("Cancel")');
  await page.waitForSelector('tr.job-cancelled', { timeout: 60000 });
  await page.click('tr.job-cancelled button:has-text("Resume")');
  await page.waitForSelector('tr.job-completed >> nth=0', { timeout: 300000 });
  await page.waitForFunction(() => !document.querySelector('tr.job-queued, tr.job-running, tr.job-cancelled'), null, { timeout: 300000 });
  assert.match(await page.textContent('#log'), /Resumed/);
});

let passed = 0, failed = 0;
let server, browser;
try {
  server = await startServer();
  // a fresh profile in the temp folder (playwright passes it as --user-data-dir)
  browser = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: process.env.KOKORO_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  for (const t of tests) {
    const page = await browser.newPage();
    page.setDefaultTimeout(120000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    try {
      await t.fn(page, server.base);
      assert.deepEqual(errors, [], 'page errors');
      passed++;
      console.log('PASS ' + t.name);
    } catch (e) {
      failed++;
      console.log('FAIL ' + t.name + ': ' + (e && e.stack ? e.stack : e));
    }
    await page.close();
  }
} catch (e) {
  console.log('FAIL setup: ' + (e && e.stack ? e.stack : e));
  failed += tests.length - passed - failed;
} finally {
  if (browser) await browser.close();
  if (server) {
    server.proc.removeAllListeners('exit');
    server.proc.kill('SIGTERM');
    await new Promise((r) => server.proc.once('exit', r));
  }
  rmSync(tmp, { recursive: true, force: true });
}
const total = passed + failed;
console.log(`${total ? Math.round((100 * passed) / total) : 0}% tests passed, ${failed} tests failed out of ${total}`);
process.exit(failed ? 1 : 0);

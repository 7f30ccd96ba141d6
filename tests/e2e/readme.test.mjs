// The README and docs/ cannot drift from the code: every relative link (files and #anchors) of
// README.md and docs/*.md resolves; the README stays short and each doc opens with what it covers;
// the README's command blocks run as written (in a scratch folder whose www/ is this one's, with
// the test bundle as www/data), except the two commands themselves, left out by name
// (`scripts/start` builds and serves until stopped, `scripts/test` is this suite), and the line
// that scripts/test runs itself (`wasm-pack test`), which is checked to be there instead; and the
// widget's HTML in the README uses only attributes the widget understands.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/readme.test.mjs`.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, DATA_DIR, ROOT, prepare } from './harness.mjs';

const README = join(ROOT, 'README.md');
const DOCS = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f));
/** The README's budget: the first two minutes of a newcomer. */
const README_MAX_LINES = 150;

/** Markdown without its fenced code blocks and inline code (links there are not links). */
const prose = (md) => md.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');

/** The anchors of a Markdown file: one per heading (a repeated one gets -1, -2, ...). */
function anchors(file) {
  const seen = new Map();
  const out = new Set();
  for (const m of readFileSync(file, 'utf8').replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const s = slug(m[1]);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n ? `${s}-${n}` : s);
  }
  return out;
}

/** Every relative link target of `file`: `[text](target)` and `![alt](target)`. */
function links(file) {
  return [...prose(readFileSync(file, 'utf8')).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1])
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t)); // http:, https:, mailto:
}

describe('README.md and docs/', () => {
  test('every relative link resolves, files and anchors', () => {
    const broken = [];
    let checked = 0;
    for (const file of [README, ...DOCS]) {
      for (const target of links(file)) {
        checked += 1;
        const [path, anchor] = target.split('#');
        const dest = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
        const where = `${relative(ROOT, file)}: ${target}`;
        if (!existsSync(dest)) { broken.push(`${where} (no such file)`); continue; }
        if (anchor !== undefined) {
          if (!dest.endsWith('.md')) broken.push(`${where} (an anchor into a file that is not Markdown)`);
          else if (!anchors(dest).has(anchor)) broken.push(`${where} (no heading with that anchor)`);
        }
      }
    }
    assert.deepEqual(broken, []);
    // The README links to every doc, and the screenshot is shown as an image.
    const readmeLinks = links(README);
    for (const doc of DOCS) assert.ok(readmeLinks.includes(relative(ROOT, doc)), `README.md links to ${relative(ROOT, doc)}`);
    assert.ok(/!\[[^\]]+\]\(docs\/screenshot\.png\)/.test(readFileSync(README, 'utf8')), 'the README shows docs/screenshot.png');
    assert.ok(checked > DOCS.length, `links checked: ${checked}`);
  });

  test('the README is short, and each doc opens with a title and the line of what it covers', () => {
    const lines = readFileSync(README, 'utf8').split('\n').length;
    assert.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines (at most ${README_MAX_LINES})`);
    for (const doc of DOCS) {
      const [title, blank, covers] = readFileSync(doc, 'utf8').split('\n');
      assert.match(title, /^# \S/, `${relative(ROOT, doc)}: a title first`);
      assert.equal(blank, '', `${relative(ROOT, doc)}: a blank line after the title`);
      assert.ok(covers.length > 20 && !covers.startsWith('#'), `${relative(ROOT, doc)}: the line of what it covers, not "${covers}"`);
    }
  });

  test('the widget HTML in the README uses only attributes the widget understands', async () => {
    const { attributeProblems } = await import('../../www/widget/attributes.js');
    const blocks = [...readFileSync(README, 'utf8').matchAll(/^```html\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    const elements = blocks.flatMap((b) => [...b.matchAll(/<skywatch-trainer([^>]*)>/g)]);
    assert.ok(elements.length > 0, 'the README shows <skywatch-trainer>');
    for (const [, attrs] of elements) {
      const attributes = [...attrs.matchAll(/([a-z-]+)(?:="([^"]*)")?/g)].map(([, name, value]) => ({ name, value: value ?? '' }));
      const host = { attributes, getAttribute: (n) => attributes.find((a) => a.name === n)?.value ?? null };
      assert.deepEqual(attributeProblems(host), [], attrs);
    }
  });
});

/** The README's ```sh lines: {command, comment}. */
function readmeCommands() {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  return blocks.flatMap((b) => b.split('\n').filter((l) => l.trim()).map((line) => {
    const at = line.search(/\s#\s/);
    return { command: (at < 0 ? line : line.slice(0, at)).trim(), comment: at < 0 ? '' : line.slice(at).replace(/^\s*#\s*/, '') };
  }));
}

/** The output a comment states: its opening parenthesis up to the one that closes it, or null. */
function statedOutput(comment) {
  if (!comment.startsWith('(')) return null;
  let depth = 0;
  for (let i = 0; i < comment.length; i++) {
    depth += { '(': 1, ')': -1 }[comment[i]] ?? 0;
    if (depth === 0) return comment.slice(0, i + 1);
  }
  return null;
}

/** Left out by name, and why; each is checked some other way in the test below. */
const LEFT_OUT = [
  [/^scripts\/start\b/, 'builds, downloads the data when it has none, and serves until stopped'],
  [/^scripts\/test\b/, 'the suite itself'],
  [/^wasm-pack test\b/, 'scripts/test runs this very line'],
];

describe('the README\'s command blocks', () => {
  let scratch;
  before(() => {
    prepare();
    // A scratch folder that looks like the repository root to the commands: www/ holds this
    // checkout's files and build output, www/data the test bundle.
    scratch = mkdtempSync(join(tmpdir(), 'skywatch-readme-'));
    mkdirSync(join(scratch, 'www'));
    for (const entry of readdirSync(join(ROOT, 'www'))) {
      if (entry === 'data' || entry === 'data-quick') continue;
      symlinkSync(join(ROOT, 'www', entry), join(scratch, 'www', entry));
    }
    symlinkSync(DATA_DIR, join(scratch, 'www', 'data'));
  });
  after(() => { if (scratch) rmSync(scratch, { recursive: true, force: true }); });

  test('run as written, from a root with the data', { timeout: 300_000 }, async () => {
    const commands = readmeCommands();
    assert.ok(commands.length >= 5, `commands found: ${commands.length}`);
    const script = readFileSync(join(ROOT, 'scripts/test'), 'utf8');
    const env = { ...process.env, PATH: `${dirname(BIN)}:${process.env.PATH}` };
    const ran = [];
    for (const { command, comment } of commands) {
      const left = LEFT_OUT.find(([re]) => re.test(command));
      if (left) {
        if (/^wasm-pack/.test(command)) assert.ok(script.includes(command), `scripts/test runs "${command}"`);
        else assert.ok(existsSync(join(ROOT, command.split(' ')[0])), `${command}: the script exists`);
        continue;
      }
      if (/^skywatch serve\b/.test(command)) {
        await serveOnce(command, env);
        ran.push(command);
        continue;
      }
      const r = spawnSync('bash', ['-c', command], { cwd: scratch, env, encoding: 'utf8', timeout: 240_000 });
      assert.equal(r.status, 0, `${command} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
      // A comment that opens with the output in parentheses states what the command prints.
      const stated = statedOutput(comment);
      if (stated) assert.equal(r.stdout.trim(), stated, command);
      ran.push(command);
    }
    // What the commands leave behind is what they say.
    assert.ok(statSync(join(scratch, 'model.safetensors')).size > 6e6, 'train --save wrote the checkpoint');
    assert.ok(existsSync(join(scratch, 'site', 'widget.js')) && existsSync(join(scratch, 'site', 'index.html')), 'build wrote the site');
    assert.ok(ran.length >= 4, `ran: ${ran.join('; ')}`);
  });
});

/** Runs `skywatch serve` as written plus `--port 0` (a free port: 8080 may be taken on a shared
 *  machine), fetches the page from the URL it prints, and stops it. */
async function serveOnce(command, env) {
  const [, ...args] = command.split(/\s+/);
  const child = spawn(BIN, [...args, '--port', '0'], { cwd: join(ROOT), env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolveUrl, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${command}: no URL in 15 s:\n${out}`)), 15_000);
      const onData = (c) => {
        out += c;
        const m = /Serving (http:\/\/\S+?\/)/.exec(out);
        if (m) { clearTimeout(timer); resolveUrl(m[1]); }
      };
      child.stdout.setEncoding('utf8').on('data', onData);
      child.stderr.setEncoding('utf8').on('data', onData);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${command} exited (${code}):\n${out}`)); });
    });
    const res = await fetch(url);
    assert.equal(res.status, 200, `${command}: GET ${url}`);
    assert.match(await res.text(), /<title>[^<]*Skywatch/i, `${command}: the page`);
    assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin', `${command}: cross-origin isolated`);
  } finally {
    child.kill('SIGTERM');
  }
}

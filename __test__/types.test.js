'use strict';
// The declarations as a TypeScript user meets them: consumer files under __test__/types/ import
// every subpath export through the package's own `exports` (self-reference, node16 resolution)
// and are compiled with `tsc --strict --noEmit`. The right calls must compile, and each
// `// @ts-expect-error` line must really fail, each for its own reason: the files are compiled
// again with the directives removed, and every error must sit on a marked line and every marked
// line must have one (so a directive can neither hide a second error nor go stale).
//
// Each tsconfig is one app (one program): the express-session consumer has its own, since an app
// picks one session API and both augment Express's `req.session`; so has the Fastify app that
// declares its session data, since that types every Fastify request of the program.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '..');
const DIR = path.join(__dirname, 'types');
const PROJECTS = ['tsconfig.json', 'tsconfig.express-session.json', 'tsconfig.fastify-typed.json', 'tsconfig.fastify-express-session.json'];
const DIRECTIVE = /^\s*\/\/ @ts-expect-error\b.*$/;

function parsedConfig(tsconfig) {
  const read = ts.readConfigFile(tsconfig, ts.sys.readFile);
  assert.equal(read.error, undefined);
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, DIR);
  assert.deepEqual(parsed.errors, []);
  return parsed;
}

test('every consumer file belongs to exactly one project', () => {
  const listed = PROJECTS.flatMap((p) => parsedConfig(path.join(DIR, p)).fileNames.map((f) => path.basename(f)));
  const present = fs.readdirSync(DIR).filter((f) => /\.m?ts$/.test(f));
  assert.deepEqual([...listed].sort(), [...present].sort());
});

for (const project of PROJECTS) {
  const tsconfig = path.join(DIR, project);

  test(`${project}: tsc --strict --noEmit accepts the consumer files (and every @ts-expect-error is used)`, () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', tsconfig, '--strict', '--noEmit', '--pretty', 'false'], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
    assert.equal(r.error, undefined);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
    assert.equal(r.status, 0);
  });

  test(`${project}: each @ts-expect-error line fails on its own once the directive is removed, and nothing else does`, () => {
    expectErrorsFail(tsconfig);
  });
}

function expectErrorsFail(tsconfig) {
  const { options, fileNames } = parsedConfig(tsconfig);
  assert.equal(options.strict, true);
  // 1-based line numbers of the lines each directive guards, per consumer file.
  const marked = new Map();
  const stripped = new Map();
  for (const file of fileNames) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const guarded = new Set();
    lines.forEach((line, i) => {
      if (DIRECTIVE.test(line)) {
        guarded.add(i + 2);
        lines[i] = ''; // keeps line numbers
      }
    });
    assert.ok(guarded.size >= 4, `${path.basename(file)} has only ${guarded.size} wrong calls`);
    marked.set(path.resolve(file), guarded);
    stripped.set(path.resolve(file), lines.join('\n'));
  }
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => stripped.get(path.resolve(f)) ?? readFile(f);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, onError) => {
    const text = stripped.get(path.resolve(f));
    return text === undefined ? getSourceFile(f, lang, onError) : ts.createSourceFile(f, text, lang, true);
  };
  const program = ts.createProgram(fileNames, options, host);
  const diags = ts.getPreEmitDiagnostics(program);
  const hit = new Map([...marked.keys()].map((f) => [f, new Set()]));
  const stray = [];
  for (const d of diags) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const file = d.file && path.resolve(d.file.fileName);
    const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    if (file && marked.has(file) && marked.get(file).has(line)) hit.get(file).add(line);
    else stray.push(`${file ? path.relative(ROOT, file) : '(global)'}:${line}: TS${d.code} ${msg}`);
  }
  assert.deepEqual(stray, [], 'errors outside the marked lines');
  for (const [file, lines] of marked) {
    const missing = [...lines].filter((l) => !hit.get(file).has(l));
    assert.deepEqual(missing, [], `${path.basename(file)}: marked lines that compile`);
  }
}

test('every subpath export has a types condition, next to its JS, used by a consumer file', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const consumers = fs.readdirSync(DIR).filter((f) => /\.m?ts$/.test(f)).map((f) => fs.readFileSync(path.join(DIR, f), 'utf8')).join('\n');
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (sub === './package.json') continue;
    assert.equal(typeof target, 'object', `${sub} has conditions`);
    assert.deepEqual(Object.keys(target)[0], 'types', `${sub}: "types" comes first (conditions match in order)`);
    assert.equal(target.types.replace(/\.d\.ts$/, ''), target.default.replace(/\.js$/, ''), `${sub}: the declarations sit next to the JS`);
    assert.ok(fs.existsSync(path.join(ROOT, target.types)), `${sub}: ${target.types} exists`);
    const spec = sub === '.' ? '@ostro/session' : `@ostro/session/${sub.slice(2)}`;
    assert.ok(consumers.includes(`'${spec}'`), `${spec} is imported by a consumer file`);
  }
});

test('typesVersions gives node10 consumers (no "exports") the same declarations as exports does', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  // An installed copy, as an app sees it: node_modules/@ostro/session linked to this checkout.
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'ostro-session-types-'));
  try {
    fs.mkdirSync(path.join(app, 'node_modules', '@ostro'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(app, 'node_modules', '@ostro', 'session'), 'dir');
    const consumer = path.join(app, 'index.ts');
    const modes = {
      node10: { moduleResolution: ts.ModuleResolutionKind.Node10, module: ts.ModuleKind.CommonJS },
      node16: { moduleResolution: ts.ModuleResolutionKind.Node16, module: ts.ModuleKind.Node16 },
      bundler: { moduleResolution: ts.ModuleResolutionKind.Bundler, module: ts.ModuleKind.ESNext },
    };
    for (const [sub, target] of Object.entries(pkg.exports)) {
      if (sub === './package.json') continue;
      const spec = sub === '.' ? '@ostro/session' : `@ostro/session/${sub.slice(2)}`;
      for (const [mode, options] of Object.entries(modes)) {
        const r = ts.resolveModuleName(spec, consumer, options, ts.sys);
        const file = r.resolvedModule && path.relative(ROOT, fs.realpathSync(r.resolvedModule.resolvedFileName));
        assert.equal(file, path.normalize(target.types), `${spec} under moduleResolution ${mode}`);
      }
    }
  } finally {
    fs.rmSync(app, { recursive: true, force: true });
  }
});

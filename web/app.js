// The page: fragment archives in, the object and its missing archives out. An archive is one
// fragment index's fragments of every segment, end to end, each behind liberasurecode's
// 80-byte header. The headers give the index, the payload size, each segment's size and the
// backend; k follows from the sizes. m is recorded nowhere: it decides which indexes are
// missing (and, for jerasure_rs_vand, the parity rows beyond the first), so the page proposes
// the smallest m the indexes allow and lets it be corrected. Archives are read segment by
// segment (Blob.slice), so large objects do not have to fit in memory twice.
import { BACKENDS, ECDriver, EC_TYPES, HEADER_SIZE, FRAGMENT_MAGIC, MAX_FRAGMENTS, backendName, blockSize, crc32Short } from 'fragmend/codec';
import { MD5 } from './md5.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const KERNELS = params.get('kernels') ?? 'auto';

/** Every file given so far: { name, blob, status: 'ok' | 'error' | 'unused', message, ... }. */
let sources = [];
/** The object the usable archives describe, once analysed. */
let object = null;
let busy = false;

// ------------------------------------------------------------------ fragment headers

class ArchiveError extends Error {}

/** The fields of one fragment header that frame an archive; throws ArchiveError if unreadable. */
function parseHeader(head, at) {
  const dv = new DataView(head.buffer, head.byteOffset, HEADER_SIZE);
  let le = true;
  if (dv.getUint32(59, true) !== FRAGMENT_MAGIC) {
    if (dv.getUint32(59, false) !== FRAGMENT_MAGIC) {
      throw new ArchiveError(
        at === 0
          ? 'not a fragment archive: it does not start with a liberasurecode fragment header'
          : `no fragment header at byte ${at}: the archive is corrupt, or two files were joined`,
      );
    }
    le = false;
  }
  const libecVersion = dv.getUint32(63, le);
  const stored = dv.getUint32(67, le);
  // Headers written by liberasurecode 1.2.0 and later carry a checksum of their first 59 bytes.
  if (libecVersion >= 0x010200) {
    const meta = head.subarray(0, 59);
    if (crc32Short(meta, false) !== stored && crc32Short(meta, true) !== stored) {
      throw new ArchiveError(`the fragment header at byte ${at} fails its checksum: corrupt`);
    }
  }
  return {
    index: dv.getUint32(0, le),
    size: dv.getUint32(4, le),
    origDataSize: Number(dv.getBigUint64(12, le)),
    backendId: dv.getUint8(54),
    backendVersion: dv.getUint32(55, le),
  };
}

async function read(blob, offset, length) {
  return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
}

/** Walks an archive's headers: its index, backend and segment layout. */
async function scanArchive(blob) {
  if (blob.size === 0) throw new ArchiveError('empty: an archive of a zero-byte object holds no fragment to read');
  const segments = [];
  let first = null;
  for (let at = 0; at < blob.size; ) {
    const head = await read(blob, at, HEADER_SIZE);
    if (head.length < HEADER_SIZE) throw new ArchiveError(`truncated: it ends inside a fragment header at byte ${at}`);
    const h = parseHeader(head, at);
    const length = HEADER_SIZE + h.size;
    if (at + length > blob.size) {
      throw new ArchiveError(`truncated: the fragment at byte ${at} needs ${length} bytes, only ${blob.size - at} remain`);
    }
    if (!first) {
      first = h;
      const ecType = EC_TYPES.find((t) => BACKENDS[t].id === h.backendId);
      if (!ecType) throw new ArchiveError(`written by ${backendName(h.backendId)}, a backend this page does not decode`);
      if (h.index >= MAX_FRAGMENTS) throw new ArchiveError(`fragment index ${h.index} is out of range (at most ${MAX_FRAGMENTS} fragments)`);
    } else if (h.index !== first.index || h.backendId !== first.backendId) {
      throw new ArchiveError(`mixes fragments: index ${first.index} at byte 0, index ${h.index} at byte ${at}`);
    }
    if (h.origDataSize > h.size * MAX_FRAGMENTS) throw new ArchiveError(`the fragment at byte ${at} claims an impossible segment size`);
    segments.push({ offset: at, length, origDataSize: h.origDataSize });
    at += length;
  }
  const ecType = EC_TYPES.find((t) => BACKENDS[t].id === first.backendId);
  if (first.backendVersion !== BACKENDS[ecType].version) {
    throw new ArchiveError(
      `${ecType} backend version 0x${first.backendVersion.toString(16)}, not the 0x${BACKENDS[ecType].version.toString(16)} Swift's liberasurecode writes`,
    );
  }
  return { index: first.index, ecType, segments };
}

/** The k that give every segment of this layout the payload sizes its headers state. */
function kCandidates(ecType, segments, maxIndex) {
  const { w } = BACKENDS[ecType];
  const out = [];
  for (let k = 1; k < MAX_FRAGMENTS; k++) {
    if (maxIndex >= MAX_FRAGMENTS) break;
    if (segments.every((s) => blockSize(s.origDataSize, k, w) === s.length - HEADER_SIZE)) out.push(k);
  }
  return out;
}

// ------------------------------------------------------------------ the object

function layoutKey(src) {
  return `${src.ecType}|${src.segments.map((s) => `${s.length}:${s.origDataSize}`).join(',')}`;
}

/** Groups the readable archives: the object is the layout most indexes share. */
function analyse() {
  const readable = sources.filter((s) => s.segments);
  for (const s of readable) {
    s.status = 'ok';
    s.message = '';
  }
  const groups = new Map();
  for (const s of readable) {
    const key = layoutKey(s);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(s);
  }
  const distinct = (g) => new Set(g.map((s) => s.index)).size;
  const main = [...groups.values()].sort((a, b) => distinct(b) - distinct(a))[0];
  object = null;
  if (!main) return;
  for (const s of readable) {
    if (!main.includes(s)) {
      s.status = 'unused';
      s.message = 'its segments differ from the other archives: a different object, or another version of it';
    }
  }
  const byIndex = new Map();
  for (const s of main) {
    if (byIndex.has(s.index)) {
      s.status = 'unused';
      s.message = `a second archive of index ${s.index} (${byIndex.get(s.index).name} is used)`;
    } else byIndex.set(s.index, s);
  }
  const ref = main[0];
  const maxIndex = Math.max(...byIndex.keys());
  const candidates = kCandidates(ref.ecType, ref.segments, maxIndex);
  object = {
    ecType: ref.ecType,
    segments: ref.segments,
    size: ref.segments.reduce((n, s) => n + s.origDataSize, 0),
    byIndex,
    maxIndex,
    candidates,
    k: null,
    m: null,
  };
  if (candidates.length === 0) return;
  // Several k fit a small object; the largest the archives at hand can decode is proposed.
  const usable = candidates.filter((k) => k <= byIndex.size);
  object.k = usable.length ? usable[usable.length - 1] : candidates[0];
  object.m = Math.max(1, maxIndex + 1 - object.k);
}

function missingOf(o) {
  return [...Array(o.k + o.m).keys()].filter((i) => !o.byIndex.has(i));
}

const drivers = new Map();
function driverFor(ecType, k, m) {
  const key = `${ecType} ${k} ${m}`;
  if (!drivers.has(key)) drivers.set(key, ECDriver.create({ ecType, k, m, kernels: KERNELS }));
  return drivers.get(key);
}

/**
 * With more than k archives, one of them rebuilt from k others must equal itself: that
 * confirms k and the archives (and m, where the parity rows depend on it).
 */
async function crossCheck(o) {
  const present = [...o.byIndex.keys()].sort((a, b) => a - b);
  if (present.length <= o.k) return { ok: null, text: `no spare archive to check k and m against (${present.length} present, k=${o.k})` };
  const target = present[present.length - 1];
  const from = present.filter((i) => i !== target).slice(0, o.k);
  const ec = await driverFor(o.ecType, o.k, o.m);
  const seg = o.segments[0];
  const frags = await Promise.all(from.map((i) => read(o.byIndex.get(i).blob, seg.offset, seg.length)));
  const actual = await read(o.byIndex.get(target).blob, seg.offset, seg.length);
  const [rebuilt] = ec.reconstruct(frags, [target]);
  const same = rebuilt.length === actual.length && rebuilt.subarray(HEADER_SIZE).every((b, i) => b === actual[HEADER_SIZE + i]);
  return same
    ? { ok: true, text: `index ${target} rebuilt from ${from.join(', ')} matches its archive: k, m and the archives agree` }
    : { ok: false, text: `index ${target} rebuilt from ${from.join(', ')} does not match its archive: an archive is corrupt, or k or m is wrong` };
}

// ------------------------------------------------------------------ rendering

const fmtBytes = (n) => {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]} (${n.toLocaleString('en')} B)`;
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function showError(message) {
  $('error').hidden = !message;
  $('error').textContent = message ?? '';
}

function errorText(e) {
  if (e instanceof ArchiveError) return e.message;
  return e && e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : String(e?.message ?? e);
}

let checkRun = 0;
async function render() {
  const rows = $('source-rows');
  rows.replaceChildren(
    ...sources.map((s) =>
      el(
        'tr',
        { class: s.status, 'data-index': s.index ?? '' },
        el('td', { class: 'name' }, s.name),
        el('td', { class: 'num' }, s.blob ? s.blob.size.toLocaleString('en') : '–'),
        el('td', { class: 'num' }, s.index ?? '–'),
        el('td', { class: 'num' }, s.segments ? String(s.segments.length) : '–'),
        el('td', { class: 'status' }, s.status === 'ok' ? 'ok' : s.status === 'reading' ? 'reading…' : s.message),
      ),
    ),
  );
  $('sources').hidden = sources.length === 0;
  $('results').hidden = true;
  const o = object;
  $('object').hidden = !o;
  if (!o) {
    document.body.dataset.state = 'ready';
    return;
  }
  $('ec-type').textContent = o.ecType;
  const k = $('k');
  k.replaceChildren(...o.candidates.map((c) => el('option', { value: String(c) }, String(c))));
  if (o.k !== null) k.value = String(o.k);
  k.disabled = o.candidates.length < 2;
  $('k-note').textContent =
    o.candidates.length === 0
      ? 'no k gives these fragment sizes: not archives of a Swift EC object?'
      : o.candidates.length > 1
        ? `several k fit these sizes (a small object): set your policy's ec_num_data_fragments`
        : 'from the fragment sizes';
  $('m').value = o.m ?? '';
  $('m').max = String(MAX_FRAGMENTS - (o.k ?? 1));
  $('object-size').textContent = fmtBytes(o.size);
  const n = o.segments.length;
  const bytes = (v) => `${v.toLocaleString('en')} B`;
  const [head, last] = [o.segments[0].origDataSize, o.segments.at(-1).origDataSize];
  $('segments').textContent =
    n === 1 ? '1' : head === last ? `${n} × ${bytes(head)}` : `${n}: ${n - 1} × ${bytes(head)}, then ${bytes(last)}`;
  const present = [...o.byIndex.keys()].sort((a, b) => a - b);
  $('present').replaceChildren(...present.map((i) => el('span', { class: 'idx ok' }, String(i))));
  const missing = o.k === null ? [] : missingOf(o);
  $('missing').replaceChildren(...(missing.length ? missing.map((i) => el('span', { class: 'idx missing' }, String(i))) : ['none']));
  const run = $('run');
  const enough = o.k !== null && present.length >= o.k;
  run.disabled = !enough || busy;
  run.textContent = missing.length ? `Rebuild ${missing.length} archive${missing.length > 1 ? 's' : ''} and decode` : 'Decode';
  const check = $('check');
  check.className = '';
  if (o.k === null) check.textContent = '–';
  else if (!enough) {
    check.textContent = `${present.length} of the k=${o.k} archives needed: add ${o.k - present.length} more`;
    check.className = 'bad';
  } else {
    check.textContent = 'checking…';
    const me = ++checkRun;
    document.body.dataset.state = 'checking';
    try {
      const r = await crossCheck(o);
      if (me !== checkRun) return;
      check.textContent = r.text;
      check.className = r.ok === true ? 'good' : r.ok === false ? 'bad' : '';
    } catch (e) {
      if (me !== checkRun) return;
      check.textContent = errorText(e);
      check.className = 'bad';
    }
  }
  document.body.dataset.state = 'analysed';
}

// ------------------------------------------------------------------ input

async function addSources(items) {
  showError(null);
  const added = items.map(({ name, blob, message }) => ({ name, blob, status: blob ? 'reading' : 'error', message }));
  sources.push(...added);
  document.body.dataset.state = 'reading';
  await render();
  document.body.dataset.state = 'reading';
  await Promise.all(
    added
      .filter((s) => s.blob)
      .map(async (s) => {
        try {
          Object.assign(s, await scanArchive(s.blob));
          s.status = 'ok';
        } catch (e) {
          s.status = 'error';
          s.message = errorText(e);
        }
      }),
  );
  analyse();
  await render();
}

async function fetchUrls(text) {
  const urls = text
    .split(/\s+/)
    .map((u) => u.trim())
    .filter(Boolean);
  if (urls.length === 0) return;
  const items = await Promise.all(
    urls.map(async (u) => {
      const name = decodeURIComponent(new URL(u, location.href).pathname.split('/').pop() || u);
      try {
        const res = await fetch(u);
        if (!res.ok) return { name, message: `fetching ${u} failed: HTTP ${res.status}` };
        return { name, blob: await res.blob() };
      } catch (e) {
        return { name, message: `fetching ${u} failed: ${errorText(e)}` };
      }
    }),
  );
  await addSources(items);
}

// ------------------------------------------------------------------ rebuild and decode

/** Swift names a .data file <timestamp>#<index>[#d].data; rebuilt archives follow suit. */
function archiveName(o, index) {
  for (const s of o.byIndex.values()) {
    const m = /^(.*)#\d+(#d)?\.data$/.exec(s.name);
    if (m) return `${m[1]}#${index}${m[2] ?? ''}.data`;
  }
  return `fragment-${index}.data`;
}

let urls = [];
async function rebuildAndDecode() {
  const o = object;
  if (!o || busy) return;
  busy = true;
  showError(null);
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
  $('run').disabled = true;
  $('results').hidden = true;
  const progress = $('progress');
  progress.hidden = false;
  progress.value = 0;
  document.body.dataset.state = 'running';
  try {
    const ec = await driverFor(o.ecType, o.k, o.m);
    const missing = missingOf(o);
    const use = ec.fragmentsNeeded(missing);
    const md5 = new MD5();
    // Blobs, folded every few segments, so that the browser may keep big results out of memory.
    let out = new Blob([]);
    let pending = [];
    const rebuilt = missing.map(() => ({ blob: new Blob([]), pending: [] }));
    const fold = () => {
      out = new Blob([out, ...pending]);
      pending = [];
      for (const r of rebuilt) {
        r.blob = new Blob([r.blob, ...r.pending]);
        r.pending = [];
      }
    };
    for (let s = 0; s < o.segments.length; s++) {
      const seg = o.segments[s];
      const frags = await Promise.all(use.map((i) => read(o.byIndex.get(i).blob, seg.offset, seg.length)));
      const data = ec.decode(frags);
      md5.update(data);
      pending.push(data);
      if (missing.length) ec.reconstruct(frags, missing).forEach((f, j) => rebuilt[j].pending.push(f));
      if (pending.length >= 32) fold();
      progress.value = (s + 1) / o.segments.length;
    }
    fold();
    if (out.size !== o.size) throw new Error(`decoded ${out.size} bytes where the headers promise ${o.size}`);
    const link = (blob, name, id) => {
      const href = URL.createObjectURL(blob);
      urls.push(href);
      return el('a', { href, download: name, id }, name);
    };
    const items = [
      el(
        'li',
        { class: 'object' },
        link(out, 'object.bin', 'object-link'),
        ' the object: ',
        el('span', { id: 'object-bytes' }, fmtBytes(out.size)),
        ', MD5 (its Swift ETag) ',
        el('code', { id: 'object-md5' }, md5.hex()),
      ),
      ...missing.map((idx, j) =>
        el(
          'li',
          {},
          link(rebuilt[j].blob, archiveName(o, idx), `archive-${idx}`),
          ` archive of index ${idx}, rebuilt: ${fmtBytes(rebuilt[j].blob.size)}`,
        ),
      ),
    ];
    $('downloads').replaceChildren(...items);
    $('results').hidden = false;
    document.body.dataset.state = 'done';
  } catch (e) {
    showError(`Could not rebuild the object: ${errorText(e)}`);
    document.body.dataset.state = 'analysed';
  } finally {
    busy = false;
    progress.hidden = true;
    $('run').disabled = false;
  }
}

// ------------------------------------------------------------------ wiring

function wire() {
  $('files').addEventListener('change', (e) => {
    const files = [...e.target.files];
    e.target.value = '';
    void addSources(files.map((f) => ({ name: f.name, blob: f })));
  });
  const drop = $('drop');
  for (const ev of ['dragenter', 'dragover']) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const files = [...(e.dataTransfer?.files ?? [])];
    void addSources(files.map((f) => ({ name: f.name, blob: f })));
  });
  $('fetch').addEventListener('click', () => void fetchUrls($('urls').value));
  $('clear').addEventListener('click', () => {
    sources = [];
    object = null;
    showError(null);
    void render();
  });
  $('k').addEventListener('change', () => {
    if (!object) return;
    object.k = Number($('k').value);
    object.m = Math.max(object.m ?? 1, object.maxIndex + 1 - object.k, 1);
    void render();
  });
  $('m').addEventListener('change', () => {
    if (!object) return;
    const m = Math.floor(Number($('m').value));
    const least = Math.max(1, object.maxIndex + 1 - object.k);
    if (!(m >= least && object.k + m <= MAX_FRAGMENTS)) {
      showError(`m must be at least ${least} (index ${object.maxIndex} is present) and k + m at most ${MAX_FRAGMENTS}`);
      $('m').value = String(object.m);
      return;
    }
    showError(null);
    object.m = m;
    void render();
  });
  $('run').addEventListener('click', () => void rebuildAndDecode());
}

async function start() {
  wire();
  try {
    // A driver up front: the wasm loads once, and the footer says which build runs.
    const ec = await ECDriver.create({ ecType: 'liberasurecode_rs_vand', k: 4, m: 2, kernels: KERNELS });
    const names = { relaxed: 'relaxed-SIMD', simd: 'SIMD128', scalar: 'scalar' };
    $('kernel').textContent = `fragmend codec, WebAssembly ${names[ec.kernel] ?? ec.kernel} build`;
    $('kernel').dataset.kernel = ec.kernel;
    document.body.dataset.state = 'ready';
  } catch (e) {
    showError(`The codec did not load: ${errorText(e)}`);
    document.body.dataset.state = 'failed';
  }
  const list = params.get('urls');
  if (list) {
    $('urls').value = list.split(',').join('\n');
    $('by-url').open = true;
    await fetchUrls($('urls').value);
  }
}

void start();

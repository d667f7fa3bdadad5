// PyECLib's golden cases (as in test/fixtures/golden.json) run through a fragmend/codec
// namespace passed in, in any runtime with WebCrypto: each case's fragment digests, first
// header, rebuilt digests and whether decode gave the input back, plus which build ran.
// Inputs come from the same xorshift32 generator as test/helpers/prng.ts; digests are the
// first 16 hex digits of SHA-256. Imports nothing, so that a copy runs anywhere.
export function prngBytes(seed, length) {
  let s = seed >>> 0 || 1;
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    words[i] = s;
  }
  return new Uint8Array(words.buffer, 0, length).slice();
}

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const sha256 = async (b) => hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)));
const digest = async (b) => (await sha256(b)).slice(0, 16);

/** Runs the cases with `codec` (a fragmend/codec namespace) on the build `kernels` names. */
export async function runGolden(codec, cases, kernels) {
  const { createRuntime, ECDriver, init, wasmSource } = codec;
  // The build 'auto' picks here, then one of the build asked for, which reports what it is.
  const auto = (await init()).kernel;
  const runtime = await createRuntime(kernels);
  const { source } = await wasmSource(kernels);
  const results = [];
  for (const c of cases) {
    const ec = await ECDriver.create({ ecType: c.ec_type, k: c.k, m: c.m, kernels });
    const data = prngBytes(c.seed, c.length);
    const frags = ec.encode(data);
    const result = {
      kernel: ec.kernel,
      fragmentLength: frags[0].length,
      header0: hex(frags[0].subarray(0, 80)),
      fragments: await Promise.all(frags.map(digest)),
      rebuilt: [],
      decoded: [],
    };
    const want = await sha256(data);
    for (const p of c.reconstruct) {
      const survivors = frags.filter((_, i) => !p.missing.includes(i));
      result.rebuilt.push(await Promise.all(ec.reconstruct(survivors, p.missing).map(digest)));
      result.decoded.push((await sha256(ec.decode([...survivors].reverse()))) === want);
    }
    results.push(result);
  }
  return {
    auto,
    kernel: runtime.kind,
    kernelKind: runtime.exports.kernelKind(),
    moduleSource: source instanceof WebAssembly.Module,
    results,
  };
}

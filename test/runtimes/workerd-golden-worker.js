// A worker that runs PyECLib's golden cases through fragmend/codec inside workerd: POST
// { cases } to /golden?kernels=simd|scalar|auto; the answer is golden-run.js's.
import * as codec from 'fragmend/codec';
import { runGolden } from './golden-run.js';

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname !== '/golden') return new Response('fragmend golden worker\n');
    try {
      return Response.json(await runGolden(codec, (await request.json()).cases, url.searchParams.get('kernels') ?? 'auto'));
    } catch (e) {
      return Response.json({ error: `${e?.name}: ${e?.message}`, stack: e?.stack }, { status: 500 });
    }
  },
};

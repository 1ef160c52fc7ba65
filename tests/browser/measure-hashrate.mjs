// Measures one mining worker's Argon2d rate in headless Chromium (the miner page's own worker:
// @phi-ag/argon2's SIMD build, or hash-wasm without WASM SIMD) for given parameters. Needs a
// running HashPass server for the worker script. tests/browser/compare-argon2.mjs compares the
// Argon2 builds themselves.
//
// node tests/browser/measure-hashrate.mjs --base http://127.0.0.1:PORT --out DIR --memory 65536 --time 3 [--seconds 20]
import { args, launch, watchedContext, run } from './common.mjs';

run(async () => {
  const opts = args();
  const memoryCost = Number(opts.memory || 65536);
  const timeCost = Number(opts.time || 3);
  const seconds = Number(opts.seconds || 20);
  const browser = await launch(opts);
  try {
    const { context, problems } = await watchedContext(browser, opts.base);
    const page = await context.newPage();
    await page.goto(`${opts.base}/admin`);
    const result = await page.evaluate(async ({ memoryCost, timeCost, seconds }) => {
      // Relative to the console's page, so any mount works.
      const worker = new Worker(new URL('static/js/miner-worker.js', document.baseURI), { type: 'module' });
      let hashes = 0;
      let started = 0;
      const done = new Promise((resolve, reject) => {
        worker.onmessage = (event) => {
          const m = event.data;
          if (m.type === 'error') reject(new Error(m.message));
          if (m.type !== 'progress') return;
          if (!started) {
            // Skip the first report: it includes the WebAssembly start-up.
            started = performance.now();
            return;
          }
          hashes += m.count;
          if (performance.now() - started >= seconds * 1000) resolve();
        };
      });
      worker.postMessage({
        type: 'start', seed: '00112233445566778899aabbccddeeff', visitorId: 'measure', ip: '127.0.0.1',
        difficulty: 256, timeCost, memoryCost, parallelism: 1, start: 0, stride: 1,
      });
      await done;
      const elapsed = (performance.now() - started) / 1000;
      worker.terminate();
      return { hashes, elapsed };
    }, { memoryCost, timeCost, seconds });
    if (problems.length) throw new Error(problems.join('\n'));
    const rate = result.hashes / result.elapsed;
    console.log(`chromium worker, m=${memoryCost} KiB t=${timeCost}: ${rate.toFixed(2)} H/s (${(1000 / rate).toFixed(2)} ms per hash, ${result.hashes} hashes in ${result.elapsed.toFixed(1)} s)`);
  } finally {
    await browser.close();
  }
});

import { createSandbox } from '../dist/index.js';
for (const snapshot of [true, false]) {
  const sb = await createSandbox({ warmProcesses: 1, snapshot });
  let t = performance.now();
  await sb.warmUp();
  console.log(snapshot, 'warmup', Math.round(performance.now() - t), sb.stats());
  const r = await sb.run('import random, sys, os, tempfile\nprint(hash("abc"), random.random(), os.getcwd(), sys.flags.hash_randomization)\nimport js');
  console.log(r.status, r.stdout, r.cells.map(c=>JSON.stringify(c.outputs).slice(0,200)));
  const r2 = await sb.run('import random\nprint(hash("abc"), random.random())\nimport gc; print(hasattr(gc,"get_objects"))\nimport sys; print("_nbsandbox_runtime" in sys.modules)');
  console.log(r2.status, r2.stdout, r2.durationMs, r2.peakMemoryMb);
  t = performance.now();
  const r3 = await sb.run('print(1)');
  console.log('run', Math.round(performance.now() - t), r3.status);
  await sb.close();
}

// Runs scripts/words.py with the first Python that works, so `jlpm build`
// regenerates src/words.json from kmagic.registry on every platform.
// Order: $KMAGIC_PYTHON, $PYTHON, python3, python (the script needs only the stdlib).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), 'words.py');
const candidates = [process.env.KMAGIC_PYTHON, process.env.PYTHON, 'python3', 'python'].filter(Boolean);
const failures = [];
for (const python of candidates) {
  const result = spawnSync(python, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (result.error) {
    failures.push(`${python}: ${result.error.message}`);
    continue;
  }
  process.exit(result.status ?? 1);
}
console.error(`words.mjs: no Python interpreter found to run ${script}:\n  ${failures.join('\n  ')}`);
process.exit(1);

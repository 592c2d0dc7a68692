import { SqliteKvStore } from '../../src/store/sqlite-store.js';

// A separate process hammering one SQLite store file with compare-and-swap increments, so the contract test can
// prove that two processes sharing the file neither lose updates nor reorder revisions.
// Usage: node sqlite-cas-worker.js <db path> <counter key> <increments>

async function main(): Promise<void> {
  const [path, key, countText] = process.argv.slice(2);
  if (path === undefined || key === undefined || countText === undefined) throw new Error('usage: sqlite-cas-worker <db> <key> <count>');
  const store = new SqliteKvStore(path);
  let conflicts = 0;
  for (let done = 0; done < Number(countText); ) {
    const current = await store.get(key);
    const value = String(Number(current?.value ?? '0') + 1);
    const compare = current === undefined ? { key, absent: true as const } : { key, modRevision: current.modRevision };
    const { succeeded } = await store.txn({ compare: [compare], success: [{ type: 'put', key, value }] });
    if (succeeded) done++;
    else conflicts++;
  }
  await store.close();
  process.stdout.write(`${JSON.stringify({ conflicts })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});

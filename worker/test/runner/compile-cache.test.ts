import t from 'tap'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cacheForRun, cacheForSource } from '../../src/runner/compile-cache.ts'

// What a run's start-up compiled before go is the cache proper, and the next run of the source
// must find it: the links that freeze it at go change each file's ctime too, and on a file system
// that stamps ctime to the nanosecond (multigrain timestamps) a `since` taken in the same
// millisecond read them as written after go. 170 of 200 runs lost their whole cache so.
t.test('start-up files survive the freeze at go, run after run', async t => {
  const dir = t.testdir()
  const runs = 50
  let kept = 0
  for (let i = 0; i < runs; i++) {
    const source = await cacheForSource(join(dir, String(i)), 'abc')
    const run = await cacheForRun(join(dir, String(i)), 'abc')
    mkdirSync(join(run.dir, 'inductor'), { recursive: true })
    writeFileSync(join(run.dir, 'inductor', 'compiled.py'), 'compiled before go')
    await run.atGo()
    await run.close()
    if (existsSync(join(source, 'inductor', 'compiled.py'))) kept++
  }
  t.equal(kept, runs, 'every run kept what its start-up wrote')
})

t.test('a file written after go is not kept, nor one written over in place', async t => {
  const dir = t.testdir()
  const source = await cacheForSource(dir, 'abc')
  const first = await cacheForRun(dir, 'abc')
  writeFileSync(join(first.dir, 'startup.bin'), 'before')
  await first.atGo()
  await first.close()
  const second = await cacheForRun(dir, 'abc')
  await second.atGo()
  writeFileSync(join(second.dir, 'startup.bin'), 'after go')
  writeFileSync(join(second.dir, 'stash.bin'), 'after go')
  await second.close()
  t.notOk(existsSync(join(source, 'stash.bin')), 'new after go: dropped')
  t.notOk(existsSync(join(source, 'startup.bin')), 'written in place after go: dropped')
})

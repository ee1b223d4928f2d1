import t from 'tap'
import { corpus } from '../fixtures/hostile/corpus-test.ts'
import { VARIANTS, type Variant } from '../fixtures/hostile/variants.ts'

// DESIGN §11, issue 14 item 6: every hostile train.py of the corpus (fixtures/hostile/variants.ts)
// goes through the real runner inside the sandbox in a fake worker's world, and none of its effects
// reaches that world: no file of it changes, the secret comes back nowhere, no listener is reached,
// the "worker" process lives. The control runs the same payload without the sandbox (the
// volunteer's --unsafe-no-sandbox) in a world of its own and shows the effect is real.
// This file runs the quick ones (payload at the top of train.py, no evaluation); those that start
// the evaluator are in hostile-evaluation.test.ts. ARG_HOSTILE_ONLY=<text> runs the variants named so.
const only = (v: Variant) => !process.env.ARG_HOSTILE_ONLY || v.name.includes(process.env.ARG_HOSTILE_ONLY)

t.test('the corpus is large and covers every class', async t => {
  t.ok(VARIANTS.length >= 40, `${VARIANTS.length} variants`)
  const classes = new Set(VARIANTS.map(v => v.cls))
  for (const c of ['write', 'secret', 'process', 'native', 'network', 'cache', 'git', 'persistence', 'symlink', 'kernel'] as const) t.ok(classes.has(c), c)
  t.ok(VARIANTS.filter(v => v.phase === 'eval').length >= 5, 'several act during evaluation')
  t.ok(VARIANTS.filter(v => v.phase === 'real').length >= 3, 'several hide in the real train.py')
})

await corpus(t, VARIANTS.filter(v => v.phase === 'train' && !v.summary && only(v)))

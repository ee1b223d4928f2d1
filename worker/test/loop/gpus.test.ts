import t from 'tap'
import { parseGpuList, planLoops } from '../../src/loop/gpus.ts'

t.test('--gpus 0,1 plans one worker per GPU, each with its device and state', async t => {
  t.same(planLoops('box', '/s', parseGpuList('0, 1,1')), [
    { name: 'box-gpu0', stateDir: '/s/gpu0', env: { CUDA_VISIBLE_DEVICES: '0' }, lane: 'gpu0' },
    { name: 'box-gpu1', stateDir: '/s/gpu1', env: { CUDA_VISIBLE_DEVICES: '1' }, lane: 'gpu1' },
  ])
})

t.test('without --gpus (or with none found) there is one loop under the plain name', async t => {
  t.same(planLoops('box', '/s', []), [{ name: 'box', stateDir: '/s', lane: '' }])
})

t.test('a malformed list says what to type', async t => {
  t.throws(() => parseGpuList('first'), /--gpus takes "all" or device indices like 0,1/)
  t.throws(() => parseGpuList('-1'))
})

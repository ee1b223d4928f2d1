import t from 'tap'
import { Hardware } from '@autoresearch-grid/shared'
import { findPython } from '@autoresearch-grid/trainer'
import { readdirSync } from 'node:fs'
import { probeHardware, probeRaw, toHardware } from '../../src/hardware/probe.ts'

const RAW = { gpus: [], mps: false, torch: '1.13.1', arch: 'x86_64', platform: 'linux', cores: 2, cpu: 'Intel Xeon' }

t.test('a CPU-only report becomes cpu-<arch> hardware', async t => {
  const hw = toHardware(RAW)
  t.equal(hw.hardwareClass, 'cpu-x86_64')
  t.same(hw.cpu, { model: 'Intel Xeon', cores: 2, arch: 'x86_64' })
  t.equal(hw.torch, '1.13.1')
})

t.test('GPUs are kept with their memory and decide the class', async t => {
  const hw = toHardware({ ...RAW, gpus: [{ name: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 }] })
  t.same(hw.gpus, [{ name: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 }])
  t.equal(hw.hardwareClass, 'h100-80g')
})

t.test('an empty CPU model is reported as unknown rather than rejected', async t => {
  t.equal(toHardware({ ...RAW, cpu: '' }).cpu.model, 'unknown')
})

t.test('over-long strings are clipped to the shared limits', async t => {
  const hw = toHardware({ ...RAW, cpu: 'x'.repeat(500), torch: 'v'.repeat(200) })
  t.equal(hw.cpu.model.length, 200)
  t.equal(hw.torch?.length, 80)
})

const python = await findPython().catch(() => null)

t.test('probing this machine through its Python gives valid Hardware', { skip: python ? false : 'no Python with torch here' }, async t => {
  if (!python) return
  const hw = await probeHardware({ python: python.path })
  t.ok(Hardware.safeParse(hw).success)
  t.equal(hw.torch, python.torchVersion)
  t.ok(hw.cpu.cores >= 1)
})

t.test('a probe through a broken interpreter says which one failed', async t => {
  await t.rejects(probeHardware({ python: '/nonexistent/python' }), /hardware probe through \/nonexistent\/python failed/)
})

t.test('where no GPU can be, the probe reads torch\'s version without importing it, and gives the same version', { skip: python ? false : 'no Python with torch here' }, async t => {
  if (!python) return
  const raw = await probeRaw({ python: python.path })
  const gpuNodes = process.platform === 'linux' ? readdirSync('/dev').filter(n => /^(nvidia|kfd|dxg)/.test(n)) : ['not linux']
  t.equal(raw.torchFrom, gpuNodes.length ? 'import' : 'version.py', `GPU device nodes here: ${gpuNodes.join(', ') || 'none'}`)
  t.equal(raw.torch, python.torchVersion, 'the version torch itself reports')
  t.same(raw.gpus, gpuNodes.length ? raw.gpus : [], 'no GPUs where there are no device nodes')
})

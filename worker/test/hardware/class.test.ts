import t from 'tap'
import { gpuClass, hardwareClass, memoryGb } from '../../src/hardware/class.ts'

const gpu = (name: string, memoryMb: number) => ({ name, memoryMb })
const H100 = gpu('NVIDIA H100 80GB HBM3', 81559)

t.test('one H100 80GB is h100-80g', async t => {
  t.equal(hardwareClass({ gpus: [H100], arch: 'x86_64' }), 'h100-80g')
})

t.test('two H100s are 2xh100-80g', async t => {
  t.equal(hardwareClass({ gpus: [H100, H100], arch: 'x86_64' }), '2xh100-80g')
})

t.test('GeForce is dropped and memory comes from the reported MiB', async t => {
  t.equal(gpuClass('NVIDIA GeForce RTX 4090', 24564), 'rtx4090-24g')
})

t.test('form factor in the name is dropped, memory in the name is kept', async t => {
  t.equal(gpuClass('NVIDIA A100-SXM4-40GB', 40536), 'a100-40g')
  t.equal(gpuClass('NVIDIA A100-PCIE-40GB', 40536), 'a100-40g')
  t.equal(gpuClass('NVIDIA A100-SXM4-80GB', 81920), 'a100-80g')
})

t.test('usable memory snaps to the marketed size', async t => {
  t.equal(gpuClass('Tesla T4', 15360), 't4-16g')
  t.equal(gpuClass('NVIDIA H200', 143771), 'h200-141g')
  t.equal(gpuClass('NVIDIA L4', 23034), 'l4-24g')
  t.equal(gpuClass('NVIDIA H100 PCIe', 81559), 'h100-80g')
})

t.test('memory far from any marketed size rounds to whole GiB', async t => {
  t.equal(memoryGb(56 * 1024), 56)
})

t.test('case, spacing and punctuation do not change the class', async t => {
  t.equal(gpuClass('  nvidia   geforce rtx 4090 ', 24564), gpuClass('NVIDIA GeForce RTX 4090', 24564))
  t.equal(gpuClass('Tesla V100-SXM2-16GB', 16160), 'v100-16g')
})

t.test('suffixes that change speed stay in the class', async t => {
  t.equal(gpuClass('NVIDIA GeForce GTX 1080 Ti', 11264), 'gtx1080ti-11g')
  t.equal(gpuClass('NVIDIA GeForce RTX 4090 Laptop GPU', 16376), 'rtx4090laptop-16g')
  t.equal(gpuClass('NVIDIA RTX 6000 Ada Generation', 49140), 'rtx6000ada-48g')
})

t.test('other vendors normalize the same way', async t => {
  t.equal(gpuClass('AMD Instinct MI300X', 196592), 'mi300x-192g')
  t.equal(gpuClass('Intel(R) Arc(TM) A770 Graphics', 16256), 'arca770-16g')
})

t.test('a GPU with unknown memory has no memory suffix', async t => {
  t.equal(gpuClass('NVIDIA H100', 0), 'h100')
})

t.test('a name that is all noise still gives a class', async t => {
  t.equal(gpuClass('NVIDIA', 8192), 'gpu-8g')
})

t.test('mixed GPUs list each model with its count, independent of order', async t => {
  const a = hardwareClass({ gpus: [gpu('NVIDIA GeForce RTX 4090', 24564), H100, H100], arch: 'x86_64' })
  const b = hardwareClass({ gpus: [H100, gpu('NVIDIA GeForce RTX 4090', 24564), H100], arch: 'x86_64' })
  t.equal(a, '2xh100-80g_1xrtx4090-24g')
  t.equal(a, b)
})

t.test('no GPU is cpu-<arch>', async t => {
  t.equal(hardwareClass({ gpus: [], arch: 'x86_64' }), 'cpu-x86_64')
  t.equal(hardwareClass({ gpus: [], arch: 'aarch64' }), 'cpu-aarch64')
  t.equal(hardwareClass({ gpus: [], arch: 'AMD64' }), 'cpu-x86_64')
})

t.test('Apple MPS is mps-<arch>', async t => {
  t.equal(hardwareClass({ gpus: [], arch: 'arm64', mps: true }), 'mps-arm64')
})

t.test('every class fits the shared pattern, even for absurd input', async t => {
  const many = Array.from({ length: 40 }, (_, i) => gpu(`Weird GPU Model Number ${i} Extra Long Name`, 1000 * i))
  const id = hardwareClass({ gpus: many, arch: '???' })
  t.match(id, /^[a-z0-9][a-z0-9_.-]{0,63}$/)
  t.match(hardwareClass({ gpus: [], arch: '' }), /^[a-z0-9][a-z0-9_.-]{0,63}$/)
})

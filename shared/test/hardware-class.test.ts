import t from 'tap'
import { gpuClass, hardwareClass, marketedGb } from '../src/hardware-class.ts'

const one = (name: string, memoryMb?: number) => hardwareClass({ gpus: [{ name, memoryMb }], arch: 'x86_64' })

t.test('nvidia-smi names of one GPU', async t => {
  const cases: [string, number | undefined, string][] = [
    ['NVIDIA H100 80GB HBM3', 81559, 'h100-80g'],
    ['NVIDIA H100 80GB HBM3', undefined, 'h100-80g'],
    ['NVIDIA H100 PCIe', 81559, 'h100-pcie-80g'],
    ['NVIDIA H100 NVL', 95830, 'h100-nvl-94g'],
    ['NVIDIA H200', 143771, 'h200-141g'],
    ['NVIDIA GH200 480GB', 97871, 'gh200-96g'],
    ['NVIDIA A100-SXM4-40GB', 40960, 'a100-40g'],
    ['NVIDIA A100-SXM4-80GB', 81920, 'a100-80g'],
    ['NVIDIA A100-PCIE-40GB', 40960, 'a100-pcie-40g'],
    ['NVIDIA A100 80GB PCIe', 81920, 'a100-pcie-80g'],
    ['Tesla V100-SXM2-16GB', 16160, 'v100-16g'],
    ['Tesla V100-PCIE-32GB', 32768, 'v100-pcie-32g'],
    ['Tesla T4', 15360, 't4-16g'],
    ['NVIDIA A10G', 23028, 'a10g-24g'],
    ['NVIDIA L4', 23034, 'l4-24g'],
    ['NVIDIA L40S', 46068, 'l40s-48g'],
    ['NVIDIA GeForce RTX 4090', 24564, 'rtx4090-24g'],
    ['NVIDIA GeForce RTX 4090 Laptop GPU', 16376, 'rtx4090-laptop-16g'],
    ['NVIDIA GeForce RTX 3080 Ti', 12288, 'rtx3080ti-12g'],
    ['NVIDIA GeForce RTX 4070 Ti SUPER', 16376, 'rtx4070tisuper-16g'],
    ['NVIDIA GeForce GTX 1080 Ti', 11264, 'gtx1080ti-11g'],
    ['NVIDIA GeForce RTX 2080 with Max-Q Design', 8192, 'rtx2080-8g'],
    ['NVIDIA RTX A6000', 49140, 'rtxa6000-48g'],
    ['NVIDIA RTX 6000 Ada Generation', 49140, 'rtx6000ada-48g'],
    ['Quadro RTX 8000', 48601, 'rtx8000-48g'],
    ['AMD Instinct MI300X', 196592, 'mi300x-192g'],
    ['AMD Radeon RX 7900 XTX', 24560, 'rx7900xtx-24g'],
  ]
  for (const [name, mb, expected] of cases) t.equal(one(name, mb), expected, `${name} (${mb ?? '?'} MiB)`)
})

t.test('case, spacing and punctuation do not matter', async t => {
  for (const name of ['  nvidia   GEFORCE rtx 4090 ', 'NVIDIA_GeForce_RTX_4090', 'NVIDIA GeForce(R) RTX 4090'])
    t.equal(one(name, 24564), 'rtx4090-24g', name)
})

t.test("the driver's memory wins over a size in the name", async t => {
  t.equal(gpuClass({ name: 'NVIDIA GH200 480GB', memoryMb: 97871 }), 'gh200-96g')
})

t.test('without a memory figure the size in the name is used, and without either none is shown', async t => {
  t.equal(gpuClass({ name: 'NVIDIA A100-SXM4-40GB' }), 'a100-40g')
  t.equal(gpuClass({ name: 'NVIDIA GeForce RTX 4090', memoryMb: 0 }), 'rtx4090')
})

t.test('reported MiB map to the marketed size at or above them', async t => {
  t.equal(marketedGb(81559), 80)
  t.equal(marketedGb(23034), 24)
  t.equal(marketedGb(15360), 16)
  t.equal(marketedGb(24576), 24)
  t.equal(marketedGb(143771), 141)
  t.equal(marketedGb(400 * 1024), 400)
})

t.test('several identical GPUs on one worker are counted', async t => {
  const gpu = { name: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 }
  t.equal(hardwareClass({ gpus: [gpu, gpu] }), '2xh100-80g')
  t.equal(hardwareClass({ gpus: Array(8).fill(gpu) }), '8xh100-80g')
})

t.test('mixed GPUs are listed in a fixed order whatever the device order', async t => {
  const h100 = { name: 'NVIDIA H100 80GB HBM3', memoryMb: 81559 }
  const a100 = { name: 'NVIDIA A100-SXM4-40GB', memoryMb: 40960 }
  t.equal(hardwareClass({ gpus: [h100, a100, h100] }), 'a100-40g_2xh100-80g')
  t.equal(hardwareClass({ gpus: [h100, h100, a100] }), 'a100-40g_2xh100-80g')
})

t.test('an unrecognizable GPU name still gives a stable class', async t => {
  t.equal(gpuClass({ name: '', memoryMb: 8192 }), 'gpu-8g')
})

t.test('CPU-only machines are classed by architecture', async t => {
  for (const arch of ['x86_64', 'x64', 'amd64', 'AMD64']) t.equal(hardwareClass({ gpus: [], arch }), 'cpu-x86_64', arch)
  for (const arch of ['arm64', 'aarch64']) t.equal(hardwareClass({ gpus: [], arch }), 'cpu-arm64', arch)
  t.equal(hardwareClass({ gpus: [] }), 'cpu-unknown')
})

t.test('Apple Metal is one class', async t => {
  t.equal(hardwareClass({ gpus: [], arch: 'arm64', mps: true }), 'mps-apple')
})

t.test('a CUDA GPU wins over the MPS flag', async t => {
  t.equal(hardwareClass({ gpus: [{ name: 'NVIDIA L4', memoryMb: 23034 }], mps: true }), 'l4-24g')
})

t.test('every class id fits the protocol’s pattern', async t => {
  const pattern = /^[a-z0-9][a-z0-9_.-]{0,63}$/
  for (const id of [one('NVIDIA H100 80GB HBM3', 81559), one('Tesla T4', 15360), hardwareClass({ gpus: [], arch: 'aarch64' }), 'mps-apple'])
    t.match(id, pattern)
})

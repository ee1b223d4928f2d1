import { z } from 'zod'

export const Gpu = z.object({
  name: z.string().max(200),
  memoryMb: z.number().nonnegative(),
})

export const Hardware = z.object({
  gpus: z.array(Gpu).max(64),
  cpu: z.object({ model: z.string().max(200), cores: z.number().int().positive(), arch: z.string().max(40) }),
  platform: z.string().max(40),
  torch: z.string().max(80).nullable(),
  /** Normalized class id (`h100-80g`, `cpu-x86_64`); results are only compared within a class. */
  hardwareClass: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/),
})
export type Hardware = z.infer<typeof Hardware>

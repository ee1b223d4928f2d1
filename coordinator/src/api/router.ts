import { router } from './trpc.ts'
import { workerRouter } from './worker.ts'
import { dashboardRouter } from './dashboard.ts'
import { adminRouter } from './admin.ts'
import { swarmRouter } from './swarm.ts'

export const appRouter = router({ worker: workerRouter, dashboard: dashboardRouter, admin: adminRouter, swarm: swarmRouter })
export type AppRouter = typeof appRouter

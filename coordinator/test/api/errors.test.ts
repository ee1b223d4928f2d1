import t from 'tap'
import { TRPCClientError } from '@trpc/client'
import { httpClient, startCoordinator } from '../helpers.ts'

/** What a caller can act on: tRPC's code (workers decide retries on it) and the stable errorCode beside it. */
async function refusal(call: Promise<unknown>): Promise<{ code?: string; errorCode?: string; message: string }> {
  try {
    await call
  } catch (err) {
    if (!(err instanceof TRPCClientError)) throw err
    const data = err.data as { code?: string; errorCode?: string } | undefined
    return { code: data?.code, errorCode: data?.errorCode, message: err.message }
  }
  throw new Error('the call was not refused')
}

t.test('API refusals carry a stable errorCode beside tRPC\'s code, and a message that says what to do', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const admin = httpClient(c.url, c.adminToken())

  t.match(await refusal(admin.admin.revertMerge.mutate({ mergeId: 'm_nope' })), { code: 'BAD_REQUEST', errorCode: 'not-found', message: /no merge "m_nope"/ })
  t.match(await refusal(admin.admin.pause.mutate({ campaign: 'nope' })), { code: 'BAD_REQUEST', errorCode: 'not-found' })
  t.match(await refusal(admin.admin.addHypothesis.mutate({ campaign: 'demo', title: 'x' })), { code: 'BAD_REQUEST', errorCode: 'invalid', message: /3-\d+ characters/ })
  t.match(await refusal(httpClient(c.url, null).admin.pause.mutate({ campaign: 'demo' })), { code: 'UNAUTHORIZED', errorCode: 'unauthorized', message: /admin token/ })
  t.match(await refusal(admin.admin.pause.mutate({ campaign: 'x'.repeat(500) })), { code: 'BAD_REQUEST', errorCode: 'invalid' }, 'input the schema refuses')
})

t.test('HTTP routes refuse with { error, code } and the code\'s status', async t => {
  const c = await startCoordinator()
  t.teardown(c.close)
  await c.campaign('demo')
  const get = async (path: string, token?: string) => {
    const res = await fetch(c.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} })
    return { status: res.status, body: await res.json() as { error: string; code: string } }
  }
  t.match(await get('/tokenizer/demo'), { status: 404, body: { code: 'not-found', error: /no pinned tokenizer/ } })
  t.match(await get('/git/nope/info/refs'), { status: 404, body: { code: 'not-found', error: /no campaign "nope"/ } })
  t.match(await get('/data/demo'), { status: 401, body: { code: 'unauthorized', error: /worker token is required/ } })
  t.match(await get('/data/demo', c.workerToken()), { status: 404, body: { code: 'not-found', error: /serves no data set/ } })
})

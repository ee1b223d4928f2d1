import type { Ctx } from '../context.ts'
import type { GitStore } from '../git/store.ts'

/**
 * The editable files of a commit, as the coordinator hands them out and compares reports with:
 * assignments, reports (a baseline's source check, a candidate's lines delta), reuses and merges
 * all ask for the same few commits (the best and its recent children) again and again. Commits
 * never change, so a file set read once is kept. One cache per git store, so two coordinators in
 * one process (the tests) never share one; bounded by clearing it once it holds 500 file sets.
 */
const caches = new WeakMap<GitStore, Map<string, Record<string, string>>>()

export async function sourceOf(ctx: Pick<Ctx, 'git'>, commit: string, files: string[]): Promise<Record<string, string>> {
  let sources = caches.get(ctx.git)
  if (!sources) caches.set(ctx.git, (sources = new Map()))
  const key = `${commit}:${files.join(',')}`
  let s = sources.get(key)
  if (!s) {
    s = await ctx.git.readFiles(commit, files)
    if (sources.size > 500) sources.clear()
    sources.set(key, s)
  }
  return s
}

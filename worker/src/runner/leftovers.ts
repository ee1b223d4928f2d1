import { readFileSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { signalGroup } from './process-group.ts'

/**
 * While a trainer runs, `<runDir>.pid` names its process group, so a worker that died without
 * stopping it (the launcher could not: a kill of the launcher itself, a platform without a
 * parent-death signal) kills it on its next start rather than leaving it on the GPU. A pid can be
 * reused after the process is gone: the record also holds the process's start time since boot
 * and the boot's id, and a process that does not match both is someone else's.
 */
export interface GroupRecord {
  pgid: number
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot); null where there is no /proc. */
  startTicks: number | null
  bootId: string | null
  startedAt: string
}

export const pidFileOf = (runDir: string) => `${runDir}.pid`

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return null
  }
}

/** Pure: the start time (field 22) and state (field 3) of a /proc/<pid>/stat line. */
export function parseStat(stat: string): { state: string; startTicks: number } {
  // The command name (field 2) may hold spaces and parentheses: count from its last `)`.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { state: rest[0], startTicks: Number(rest[19]) }
}

function procStat(pid: number): { state: string; startTicks: number } | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

export async function recordGroup(runDir: string, pgid: number): Promise<void> {
  const record: GroupRecord = { pgid, startTicks: procStat(pgid)?.startTicks ?? null, bootId: bootId(), startedAt: new Date().toISOString() }
  await writeFile(pidFileOf(runDir), JSON.stringify(record))
}

export async function forgetGroup(runDir: string): Promise<void> {
  await rm(pidFileOf(runDir), { force: true })
}

/**
 * Pure: whether the recorded group is still this worker's trainer. `now` is the leader's
 * /proc entry today (null if it has exited), `groupExists` whether signal 0 reaches the group.
 */
export function isLeftover(record: GroupRecord, now: { bootId: string | null; leader: { startTicks: number } | null; groupExists: boolean }): boolean {
  if (record.bootId === null || record.startTicks === null || record.bootId !== now.bootId) return false
  // A leader that still runs must be the one recorded; a leader gone with members left keeps its
  // pid from being reused as anyone's group id, so that group is still ours.
  if (now.leader) return now.leader.startTicks === record.startTicks
  return now.groupExists
}

/**
 * Kills the trainer a previous run of this lane left behind, if any, and forgets it. Returns the
 * group id it killed, or null.
 */
export async function killLeftover(runDir: string): Promise<number | null> {
  let record: GroupRecord
  try {
    record = JSON.parse(await readFile(pidFileOf(runDir), 'utf8')) as GroupRecord
  } catch {
    return null
  }
  const leader = procStat(record.pgid)
  const alive = leader && leader.state !== 'Z' ? { startTicks: leader.startTicks } : null
  const groupExists = () => {
    try {
      return signalGroup(record.pgid, 0)
    } catch {
      return false // EPERM: not ours to signal, so not our trainer
    }
  }
  const leftover = Number.isInteger(record.pgid) && record.pgid > 1 &&
    isLeftover(record, { bootId: bootId(), leader: alive, groupExists: groupExists() })
  if (leftover) signalGroup(record.pgid, 'SIGKILL')
  await forgetGroup(runDir)
  return leftover ? record.pgid : null
}

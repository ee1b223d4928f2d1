/**
 * Lines added minus lines deleted between two versions of the editable files, as `git diff
 * --numstat` sums them, without running git: in a text file every line of either side is context,
 * added or deleted, so added − deleted is the change in its line count. A file git takes for
 * binary (a NUL byte among its first 8000) counts 0, like numstat's "-". Negative means the
 * candidate is shorter than its parent, which the ratchet rewards as a simplification at equal
 * val_bpb (DESIGN §7).
 */
export function linesDelta(before: Record<string, string>, after: Record<string, string>): number {
  let delta = 0
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[name] ?? ''
    const b = after[name] ?? ''
    if (isBinary(a) || isBinary(b)) continue
    delta += lineCount(b) - lineCount(a)
  }
  return delta
}

/** Lines as git counts them: a last line without a newline is a line. */
function lineCount(text: string): number {
  let n = 0
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) n++
  return text.length > 0 && !text.endsWith('\n') ? n + 1 : n
}

const utf8 = new TextEncoder()

function isBinary(text: string): boolean {
  return text.includes('\0') && utf8.encode(text.slice(0, 8000)).subarray(0, 8000).includes(0)
}

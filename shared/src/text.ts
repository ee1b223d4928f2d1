/**
 * Characters that make text show other than it is, in one place for the coordinator (which stores
 * them as spaces: protocol.ts `plainText`), the worker (which prints them as visible escapes:
 * worker/src/ui/printable.ts) and both ends' refusal of source files that hold bidirectional
 * controls (`bidiControlIn`).
 *   - C0 controls and DEL and C1: ESC and U+009B (a one-character CSI) start terminal escapes; NUL
 *     and the rest break the one-line formats text is printed in.
 *   - The bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they
 *     reorder what a terminal, an editor or a browser shows, so a line of code or a description can
 *     read as something other than what runs or what was written ("Trojan Source", CVE-2021-42574).
 */
const C0_BUT_LINES = '\\u0000-\\u0008\\u000b-\\u001f'
const DEL_AND_C1 = '\\u007f-\\u009f'
const BIDI = '\\u202a-\\u202e\\u2066-\\u2069'

/** Every character above, line feed and tab included (global: for `replace`). */
export const HIDING_CHARACTERS = new RegExp(`[\\n\\t${C0_BUT_LINES}${DEL_AND_C1}${BIDI}]`, 'g')
/** The same but line feed and tab (global: for `replace`). */
export const HIDING_BUT_LINES = new RegExp(`[${C0_BUT_LINES}${DEL_AND_C1}${BIDI}]`, 'g')
const BIDI_CONTROL = new RegExp(`[${BIDI}]`)
const HIDING_ONE = new RegExp(HIDING_CHARACTERS.source)

/** Whether `s` holds any of the characters above (line feed and tab included): display names refuse them. */
export function hidesText(s: string): boolean {
  return HIDING_ONE.test(s)
}

/**
 * The first bidirectional control in these source files, or null: one in code makes a reviewer (the
 * maintainer's diff, the review agent's, `git log -p`) read one program while Python runs another.
 * No honest edit of a training script needs one; both ends refuse such a source.
 */
export function bidiControlIn(files: Readonly<Record<string, string>>): { file: string; line: number; message: string } | null {
  for (const [file, text] of Object.entries(files)) {
    const at = text.search(BIDI_CONTROL)
    if (at < 0) continue
    const code = text.codePointAt(at)!.toString(16).toUpperCase().padStart(4, '0')
    return { file, line: text.slice(0, at).split('\n').length,
      message: `U+${code} is a Unicode bidirectional control: it makes code read differently from how it runs, so no source may hold one (remove it)` }
  }
  return null
}

import { HIDING_BUT_LINES } from '@autoresearch-grid/shared'

/**
 * Text from strangers made safe to print on the volunteer's terminal. What the worker prints holds
 * what campaign code wrote (a crash's last error line, the model server's stderr in an evaluation
 * error) and what the coordinator sent (a hypothesis, a description). Raw, an escape sequence in it
 * is obeyed by the terminal: OSC 52 puts text on the volunteer's clipboard (a command to paste), a
 * clear-screen or cursor move hides or forges lines, a title report answers into the shell's input
 * on some terminals. Every control character but newline and tab, DEL, the C1 range and the
 * bidirectional overrides (which reorder what is shown) are printed as visible escapes instead
 * (the characters of shared/src/text.ts; the coordinator stores the same ones as spaces).
 */
export function printable(text: string): string {
  return text.replace(HIDING_BUT_LINES, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

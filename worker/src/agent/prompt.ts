import type { AgentTask, Failure } from './agent.ts'
import { renderSwarm } from '../swarm/render.ts'

/** Used when neither the campaign nor the checkout has a program.md. */
export const DEFAULT_PROGRAM = `# Research program

Lower val_bpb (bits per byte on the pinned validation split) of the small GPT in train.py, trained
for a fixed wall-clock budget. Prefer changes that are small, readable and testable in one run:
hyperparameters, schedules, architecture tweaks, optimizer details. A simplification that keeps
val_bpb equal is a win. Never touch prepare.py (data, tokenizer, metric).`

/** What the safety policy allows, said once so the model does not write code that is refused. */
const POLICY = `train.py must pass a static safety policy before it is run, or it is rejected unrun:
- imports only from: torch (not torch.hub/onnx/distributed/multiprocessing/profiler/utils.cpp_extension/...),
  prepare (its loaders and constants), math, time, gc, dataclasses, functools, itertools, typing,
  collections, contextlib, warnings, random, copy, enum, re; os only for os.environ/os.getenv/os.path/os.cpu_count;
  sys only for sys.stdout/sys.stderr/sys.exit
- no open(), eval, exec, compile, __import__, type(), getattr with a computed name, match statements,
  string type annotations, dunder attributes other than __init__/__name__, no torch.save/torch.load,
  no subprocess, sockets, file writes or ctypes (beyond the existing mallopt lines)`

export function systemPrompt(task: AgentTask): string {
  const u = task.unit
  return `You are an autonomous ML researcher running one experiment of the campaign "${u.campaign}",
one of many volunteers' GPUs working on it together. The maintainer's research program follows.

<program>
${task.program.trim()}
</program>

## This experiment
- The worker runs \`python train.py\` in a sandbox with a wall-clock training budget of ${u.budgetSeconds} s (profile
  "${u.profile}"); its clock stops the run shortly after the budget. train.py sees the training split only and must end
  by saving its weights with \`save_model(model, config)\`. Then the locked evaluator rebuilds the model with
  train.py's \`build_model(config)\`, feeds it validation inputs and computes val_bpb itself (lower is better): the
  model's \`forward(idx)\` must return logits (B, T, vocab) that depend only on earlier tokens (a check catches
  models that look ahead).
- You may view and edit only: ${u.editableFiles.join(', ')}. prepare.py is locked; it provides PROFILE, SEED,
  SEQ_LEN, TIME_BUDGET, load_data, make_loader and save_model.
- ${POLICY.split('\n').join('\n  ')}
${swarmNote(task)}- Make one focused change. Edit with the tools, then call \`finish\` once with a one-line description
  (what changed), a short rationale and 0-3 follow-up hypotheses. Do not explain at length outside the tools.${lockedContext(task)}`
}

/** What the system prompt says about the other agents, when the unit brings their memory. */
function swarmNote(task: AgentTask): string {
  if (!task.unit.swarm && !task.search) return ''
  return `- Other agents work on the same campaign: the first message shows what the swarm measured near this code${task.search ? ', and search_experiments looks up more' : ''}.
  Never submit a change already measured on this parent: it is refused.
`
}

/** The locked files, to read (the tools cannot open them). */
function lockedContext(task: AgentTask): string {
  const files = Object.entries(task.locked ?? {})
  if (!files.length) return ''
  return `\n\n## Locked files, for reading only\n\n${files.map(([n, t]) => `<locked_file name="${n}">\n${t}\n</locked_file>`).join('\n\n')}`
}

const fence = (name: string, text: string) => `<file name="${name}">\n${text}\n</file>`

/**
 * Another contributor's text (a hypothesis, a rebase's reference diff) inside `<tag>`: a closing
 * tag of its own (`</hypothesis>`, then words of its own) put those words outside the fence, where
 * the prompt's own instructions are. Inside, it is written `<\/tag`.
 */
const unclosing = (tag: string, text: string) => text.replace(new RegExp(`</(?=\\s*${tag})`, 'gi'), '<\\/')
const fenced = (tag: string, attributes: string, text: string) => `<${tag}${unclosing(tag, attributes)}>\n${unclosing(tag, text)}\n</${tag}>`

export function firstMessage(task: AgentTask): string {
  const u = task.unit
  const parts: string[] = []
  if (u.kind === 'rebase' && u.referenceDiff) {
    parts.push(`This is a rebase: another worker's change improved val_bpb, but the code moved on since. Re-implement the idea of this diff on the current files below (not a blind patch: the lines may differ).\n\n${fenced('reference_diff', '', u.referenceDiff)}`)
  } else if (u.hypothesis) {
    parts.push(`Test this hypothesis:\n\n${fenced('hypothesis', ` title="${u.hypothesis.title.replace(/"/g, "'")}"`, u.hypothesis.body || u.hypothesis.title)}`)
  } else {
    parts.push('No hypothesis was assigned: choose the most promising change you can think of.')
  }
  if (u.swarm) parts.push(renderSwarm(u.swarm, Boolean(task.search)))
  else if (u.triedOnParent.length) {
    parts.push(`Already tried on this exact code (do not repeat these):\n${u.triedOnParent.slice(-50).map(d => `- ${d}`).join('\n')}`)
  }
  parts.push(`The current files:\n\n${Object.entries(task.files).map(([n, t]) => fence(n, t)).join('\n\n')}`)
  return parts.join('\n\n')
}

export function repairMessage(failure: Failure): string {
  if (failure.kind === 'duplicate') {
    return `${failure.error}\n\nUndo or change your edit with the tools (look at the swarm's experiments first if you like), then call finish again.`
  }
  if (failure.kind === 'unsafe') {
    return `Your candidate was refused by the safety policy and was not run:\n${failure.error}\n\nChange the code so it passes the policy (attempt ${failure.attempt + 1}), then call finish again.`
  }
  return `The training run of your candidate failed: ${failure.error}\n\nLast lines of its log:\n<log>\n${failure.logTail}\n</log>\n\nFix the cause with the tools (attempt ${failure.attempt + 1}), then call finish again. If the idea itself cannot work, make the smallest change that keeps it and runs.`
}

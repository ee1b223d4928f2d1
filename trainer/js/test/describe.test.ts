import t from 'tap'
import { parseDescription } from '../describe.ts'

const FP = 'ab'.repeat(32)
const OUTPUT = `training a 512-token BPE tokenizer on embedded ...
tokenizing ...
prepared in 5.8s
data_dir: /c/data/embedded-bpe512
tokenizer: /c/data/embedded-bpe512/tokenizer.model
vocab_size: 512
train_tokens: 5139102
val_tokens: 632829
profile: cpu-tiny
fingerprint: ${FP}
`

t.test('reads fingerprint, tokenizer, data dir, vocabulary and profile', async t => {
  t.same(parseDescription(OUTPUT), {
    fingerprint: FP,
    tokenizerPath: '/c/data/embedded-bpe512/tokenizer.model',
    dataDir: '/c/data/embedded-bpe512',
    vocabSize: 512,
    profile: 'cpu-tiny',
  })
})

t.test('a missing fingerprint line is an error that names it', async t => {
  t.throws(() => parseDescription('tokenizer: /x\n'), /no fingerprint/)
})

t.test('a malformed fingerprint is an error', async t => {
  t.throws(() => parseDescription('tokenizer: /x\nfingerprint: not-hex\n'), /malformed fingerprint/)
})

t.test('tokenizer paths with spaces survive', async t => {
  t.equal(parseDescription(`tokenizer: /my cache/tok.model\nfingerprint: ${FP}\n`).tokenizerPath, '/my cache/tok.model')
})

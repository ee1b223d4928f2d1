#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (a bundle replaces this in releases).
import { register } from 'tsx/esm/api'
register()
await import('../src/cli.ts')

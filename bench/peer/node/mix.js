// A weighted mix of GraphQL operations under autocannon (bench/peer/mix.py writes the spec).
// usage: node mix.js spec.json
// spec: {url, connections, duration, seed, ops: [{kind: "read"|"write", weight, headers, body, bodies?}]}
// An operation with `bodies` sends bodies[k] from the k-th connection (writes: one campaign per connection).
// In a write's body (a JSON string), "__N__" becomes a number unique to this run and "__T__" the time
// (ISO 8601): every ingest event has an idempotency key of its own.
// Prints {result: <autocannon's JSON result>, issued: {read, write}}.
'use strict'
const fs = require('fs')
const autocannon = require('autocannon')

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
let state = (spec.seed >>> 0) || 1
function random () { // mulberry32: the same sequence of operations for every server
  state = (state + 0x6D2B79F5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const total = spec.ops.reduce((s, op) => s + op.weight, 0)
const bodies = spec.ops.map(op => (op.bodies || [op.body]).map(b => JSON.stringify(b)))
let slots = 0
const issued = { read: 0, write: 0 }
let n = 0
const run = spec.run || `${Date.now()}`

function pick () {
  let x = random() * total
  for (let i = 0; i < spec.ops.length; i++) {
    x -= spec.ops[i].weight
    if (x < 0) return i
  }
  return spec.ops.length - 1
}

const instance = autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.duration,
  requests: [{
    method: 'POST',
    setupRequest (req, context) {
      if (context.slot === undefined) context.slot = slots++ // one per connection
      const i = pick()
      const op = spec.ops[i]
      issued[op.kind]++
      let body = bodies[i][context.slot % bodies[i].length]
      if (op.kind === 'write') {
        n++
        body = body.split('__N__').join(`${run}-${n}`).split('__T__').join(new Date().toISOString())
      }
      req.headers = op.headers
      req.body = body
      return req
    }
  }]
}, (err, result) => {
  if (err) { console.error(err); process.exit(1) }
  process.stdout.write(JSON.stringify({ result, issued }))
})
process.once('SIGINT', () => instance.stop())

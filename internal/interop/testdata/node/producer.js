#!/usr/bin/env node
// kafkajs producer for evproxy's interop tests.
//
// Reads records from a JSON lines file written by the Go test, one object a
// line: {"k": base64 or null, "v": base64, "h": [[name, base64 or null]],
// "p": partition or -1}. Sends them in file order, a batch at a time, and
// prints "ok <index> <partition>" for each acknowledged record (-1: kafkajs
// reports offsets per partition, not per record), then "delivered <n>".
// Errors go to stderr with a non-zero exit status.
//
// Usage: node producer.js --bootstrap host:port --topic t --records file
//        [--codec none|gzip] [--acks -1|1] [--idempotent] [--batch 50]

'use strict'

const fs = require('fs')
const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs')

function parseArgs(argv) {
  const args = { codec: 'none', acks: -1, idempotent: false, batch: 50 }
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '')
    if (name === 'idempotent') {
      args.idempotent = true
      continue
    }
    if (i + 1 >= argv.length) throw new Error(`missing value for ${argv[i]}`)
    args[name] = argv[++i]
  }
  for (const required of ['bootstrap', 'topic', 'records']) {
    if (!args[required]) throw new Error(`--${required} is required`)
  }
  args.acks = Number(args.acks)
  args.batch = Number(args.batch)
  return args
}

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
}

const b64 = s => (s === null ? null : Buffer.from(s, 'base64'))

// toMessage turns a record line into a kafkajs message. kafkajs takes
// headers as an object; a repeated name becomes an array of values, so
// repeated names keep their order only when they are adjacent.
function toMessage(r) {
  const m = { key: b64(r.k), value: b64(r.v) }
  if (r.h.length > 0) {
    const headers = {}
    for (const [name, value] of r.h) {
      const v = b64(value)
      if (!(name in headers)) headers[name] = v
      else if (Array.isArray(headers[name])) headers[name].push(v)
      else headers[name] = [headers[name], v]
    }
    m.headers = headers
  }
  if (r.p >= 0) m.partition = r.p
  return m
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (!(args.codec in codecs)) throw new Error(`unsupported codec ${args.codec}`)
  const records = fs
    .readFileSync(args.records, 'utf8')
    .split('\n')
    .filter(line => line.trim() !== '')
    .map(line => JSON.parse(line))

  const kafka = new Kafka({
    clientId: 'evproxy-interop',
    brokers: [args.bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 5 },
  })
  const producer = kafka.producer({
    idempotent: args.idempotent,
    maxInFlightRequests: args.idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  let delivered = 0
  try {
    for (let start = 0; start < records.length; start += args.batch) {
      const batch = records.slice(start, start + args.batch)
      await producer.send({
        topic: args.topic,
        acks: args.acks,
        compression: codecs[args.codec],
        messages: batch.map(toMessage),
      })
      for (let i = 0; i < batch.length; i++) {
        process.stdout.write(`ok ${start + i} -1\n`)
        delivered++
      }
    }
  } finally {
    await producer.disconnect()
  }
  process.stdout.write(`delivered ${delivered}\n`)
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
